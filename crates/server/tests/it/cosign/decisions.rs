//! What a co-sign request is answered: approved (co-signed once, replayed the same), denied,
//! pending until an approver approves, and in shadow mode decided but never signed.

use axum::http::StatusCode;
use chaperone_core::{Bytes, U256, policy::Token, recover_low_s};
use serde_json::json;

use super::{body, cosign, execute, ready};
use crate::{ADMIN, APPROVER, NOW, admin::policy_json, call, call_text};

#[tokio::test]
async fn approved_request_gets_a_valid_cosignature_once() {
    let s = ready().await;
    let e = execute(400, 0);
    let (status, response) = cosign(&s, &body(&s, &e)).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    let sig: Bytes = response["cosigner_signature"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let sig = chaperone_core::Signature::from_raw(&sig).unwrap();
    assert_eq!(
        recover_low_s(&sig, &e.digest(31337, s.wallet)).unwrap(),
        s.cosigner.address()
    );

    // The same request again: same answer, reserved once.
    let (status, again) = cosign(&s, &body(&s, &e)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["replayed"], true);
    assert_eq!(again["cosigner_signature"], response["cosigner_signature"]);
    assert_eq!(
        s.store
            .committed_spend(s.wallet, Token::Native)
            .await
            .unwrap()
            .0,
        U256::from(400)
    );
}

#[tokio::test]
async fn denied_and_pending_requests_get_403_and_202_with_reasons() {
    let s = ready().await;
    let (status, response) = cosign(&s, &body(&s, &execute(1001, 0))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{response}");
    assert_eq!(response["outcome"], "denied");
    assert_eq!(response["reasons"][0]["code"], "per_transaction_cap");
    assert_eq!(
        response["reasons_text"][0],
        "0.000000000000001001 ETH is over the per-payment cap of 0.000000000000001 ETH"
    );
    assert!(response["cosigner_signature"].is_null());

    let pending = execute(600, 1);
    let (status, response) = cosign(&s, &body(&s, &pending)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{response}");
    assert_eq!(response["reasons"][0]["code"], "needs_human_approval");

    // An approver approves; the agent asks again and gets the co-signature.
    let id = response["request_id"].as_str().unwrap().to_owned();
    let (status, list) = call(
        &s.router,
        "GET",
        "/v1/admin/approvals",
        Some(APPROVER),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["pending"][0]["request_id"], id.as_str());
    let (status, csv, content_type, _) =
        call_text(&s.router, "/v1/admin/approvals?format=csv", APPROVER).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("text/csv; charset=utf-8"));
    assert_eq!(
        csv.lines().collect::<Vec<_>>(),
        [
            "request_id,wallet,expires_at,expires_at_iso".to_owned(),
            format!(
                "{id},{},{},{}",
                s.wallet.to_string().to_lowercase(),
                NOW + 600,
                chaperone_core::readable::iso8601(NOW + 600)
            )
        ]
    );
    let (status, _, _, _) = call_text(&s.router, "/v1/admin/approvals?limit=5", APPROVER).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the approvals are not paginated"
    );
    let (status, _) = call(
        &s.router,
        "POST",
        &format!("/v1/admin/approvals/{id}/approve"),
        Some(APPROVER),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, response) = cosign(&s, &body(&s, &pending)).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    assert!(response["cosigner_signature"].is_string());
}

#[tokio::test]
async fn shadow_mode_decides_and_records_but_never_signs() {
    let s = ready().await;
    let uri = format!("/v1/admin/wallets/{}/policy", s.wallet);
    let mut shadow: serde_json::Value = serde_json::from_str(&policy_json(2)).unwrap();
    shadow["mode"] = json!("shadow");
    let (status, _) = call(
        &s.router,
        "PUT",
        &uri,
        Some(ADMIN),
        Some(shadow.to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, response) = cosign(&s, &body(&s, &execute(10, 0))).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    assert_eq!(response["outcome"], "approved");
    assert!(response["cosigner_signature"].is_null());
    assert_eq!(response["reasons"][0]["code"], "shadow_mode");
    assert_eq!(response["policy_version"], 2);
}

use axum::http::StatusCode;
use serde_json::json;

use crate::{ADMIN, APPROVER, call, service};

pub fn policy_json(version: u32) -> String {
    json!({
        "version": version,
        "chains": [31337],
        "limits": [{ "token": "native", "per_transaction": "1000", "windows": [{ "window": "1h", "max": "1500" }] }],
        "approval": { "expires_after": "10m", "above": [{ "token": "native", "amount": "500" }] }
    })
    .to_string()
}

#[tokio::test]
async fn admin_endpoints_need_the_right_bearer_token() {
    let s = service().await;
    let wallet =
        json!({ "address": s.wallet, "chain_id": 31337, "agent": s.agent.address() }).to_string();
    let (status, body) = call(
        &s.router,
        "POST",
        "/v1/admin/wallets",
        None,
        Some(wallet.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, _) = call(
        &s.router,
        "POST",
        "/v1/admin/wallets",
        Some("wrong"),
        Some(wallet.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = call(
        &s.router,
        "POST",
        "/v1/admin/wallets",
        Some(APPROVER),
        Some(wallet.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = call(
        &s.router,
        "POST",
        "/v1/admin/wallets",
        Some(ADMIN),
        Some(wallet.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = call(
        &s.router,
        "POST",
        "/v1/admin/wallets",
        Some(ADMIN),
        Some(wallet),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("wallet_exists"))
    );
}

#[tokio::test]
async fn policies_are_validated_versioned_and_readable() {
    let s = service().await;
    crate::cosign::register_wallet(&s).await;
    let uri = format!("/v1/admin/wallets/{}/policy", s.wallet);

    let (status, body) = call(&s.router, "PUT", &uri, Some(ADMIN), Some(policy_json(1))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call(&s.router, "PUT", &uri, Some(ADMIN), Some(policy_json(1))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("stale_policy_version"))
    );
    let bad = policy_json(2).replace("per_transaction", "per_transation");
    let (status, body) = call(&s.router, "PUT", &uri, Some(ADMIN), Some(bad)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_policy"))
    );
    let (status, body) = call(&s.router, "GET", &uri, Some(APPROVER), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["version"], 1);
    let (status, _) = call(
        &s.router,
        "PUT",
        "/v1/admin/wallets/not-an-address/policy",
        Some(ADMIN),
        Some(policy_json(3)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

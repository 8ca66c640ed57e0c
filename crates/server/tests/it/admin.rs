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

#[tokio::test]
async fn an_agent_has_a_label_and_its_last_activity() {
    let s = crate::cosign::ready_on(service().await).await;
    let mut agent = crate::TestAgent::new();
    let key = agent.key.address();
    let address = format!("{key:#x}");
    let register = |label: &str| Some(json!({ "address": key, "label": label }).to_string());
    let listed = |list: &serde_json::Value, address: &str| {
        list["agents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["address"] == address)
            .cloned()
    };
    // A label people could not read (a control character, or nothing) is refused, and the
    // agent is not registered either.
    for bad in ["bot\u{7}", "   ", &"x".repeat(65)] {
        let (status, body) = call(
            &s.router,
            "POST",
            "/v1/admin/agents",
            Some(ADMIN),
            register(bad),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:?}: {body}");
        assert_eq!(body["error"]["code"], "invalid_name");
    }
    let (_, list) = call(&s.router, "GET", "/v1/admin/agents", Some(ADMIN), None).await;
    assert_eq!(listed(&list, &address), None, "{list}");

    let (status, _) = call(
        &s.router,
        "POST",
        "/v1/admin/agents",
        Some(ADMIN),
        register("support <bot>"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, list) = call(&s.router, "GET", "/v1/admin/agents", Some(ADMIN), None).await;
    let entry = listed(&list, &address).unwrap();
    assert_eq!(entry["label"], "support <bot>");
    assert!(entry.get("last_record_ms").is_none(), "{entry}");

    // It logs: its last record shows. The wallet's agent asks for a co-signature: its last
    // request shows.
    let batch = serde_json::to_string(&agent.batch(2, "label")).unwrap();
    let (status, _) = call(&s.router, "POST", "/v1/records", None, Some(batch)).await;
    assert!(status.is_success(), "{status}");
    assert_eq!(crate::cosign::request(&s, 10, 0).await.0, StatusCode::OK);
    let (_, list) = call(&s.router, "GET", "/v1/admin/agents", Some(ADMIN), None).await;
    let entry = listed(&list, &address).unwrap();
    assert!(entry["last_record_ms"].as_u64().unwrap() > 0, "{entry}");
    assert!(
        entry.get("last_decision_at").is_none(),
        "it has no wallet: {entry}"
    );
    let wallet_agent = listed(&list, &format!("{:#x}", s.agent.address())).unwrap();
    assert_eq!(
        wallet_agent["last_decision_at"],
        crate::NOW,
        "{wallet_agent}"
    );

    // Registering again with another label relabels it.
    let (status, _) = call(
        &s.router,
        "POST",
        "/v1/admin/agents",
        Some(ADMIN),
        register("treasury"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, list) = call(&s.router, "GET", "/v1/admin/agents", Some(ADMIN), None).await;
    assert_eq!(listed(&list, &address).unwrap()["label"], "treasury");
}

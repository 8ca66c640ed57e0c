//! Binding an approved payment to the model call it was made in: once, by the agent, and only
//! to its own call logged while the co-signature was valid.

use axum::http::StatusCode;
use chaperone_core::B256;
use chaperone_testkit::sign;
use serde_json::json;

use super::{execute, ready, request};
use crate::{ADMIN, TestAgent, call};

/// The agent binds an approved payment to the model call it was made in, once, and only to
/// its own call, logged while the co-signature was valid.
#[tokio::test]
async fn a_payment_is_bound_to_its_call_once_by_the_agent() {
    use chaperone_core::PaymentCall;
    let s = ready().await;
    let (status, body) = request(&s, 10, 0).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id: B256 = body["request_id"].as_str().unwrap().parse().unwrap();
    let valid_until = execute(10, 0).validUntil;
    let bind = |leaf: B256, signer: &chaperone_core::Secp256k1Signer| {
        let digest = PaymentCall {
            request: id,
            call: leaf,
        }
        .digest(31337, s.wallet);
        json!({ "leaf_hash": leaf, "agent_signature": sign(signer, &digest) }).to_string()
    };
    let uri = format!("/v1/decisions/{id}/call");
    let mut agent = TestAgent {
        key: s.agent.clone(),
        ..TestAgent::new()
    };
    let mut stranger = TestAgent::registered(&s.store).await;
    let mut logged = Vec::new();
    for batch in [
        agent.batch(1, "the call"),
        stranger.batch(1, "another agent's call"),
    ] {
        let (status, body) = call(
            &s.router,
            "POST",
            "/v1/records",
            None,
            Some(serde_json::to_string(&batch).unwrap()),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        logged.push(batch.verify().unwrap()[0]);
    }
    let (leaf, strangers_leaf) = (logged[0], logged[1]);
    let other = agent.batch(1, "a second call");
    let (status, _) = call(
        &s.router,
        "POST",
        "/v1/records",
        None,
        Some(serde_json::to_string(&other).unwrap()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let other = other.verify().unwrap()[0];
    // Logged after the co-signature expired (after the call: the log's receive times never go
    // backwards, so it comes last).
    let late = agent.batch(1, "logged after the co-signature expired");
    let [late_leaf] = late.verify().unwrap()[..] else {
        panic!("one record")
    };
    s.store
        .append_batch(&late, &[late_leaf], (valid_until + 1) * 1000, &[])
        .await
        .unwrap();

    let (status, _) = call(
        &s.router,
        "POST",
        &uri,
        None,
        Some(bind(leaf, &stranger.key)),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "not the agent");
    // The attacks: a leaf hash that is in no log, another agent's call, a call logged after the
    // co-signature expired. Each was bound before.
    for (what, target, status, code) in [
        (
            "a made-up leaf",
            B256::repeat_byte(0x1e),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_call",
        ),
        (
            "another agent's call",
            strangers_leaf,
            StatusCode::FORBIDDEN,
            "not_your_call",
        ),
        (
            "a call outside the validity",
            late_leaf,
            StatusCode::UNPROCESSABLE_ENTITY,
            "call_outside_validity",
        ),
    ] {
        let (got, body) = call(&s.router, "POST", &uri, None, Some(bind(target, &s.agent))).await;
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{what}: {body}"
        );
    }
    let (status, body) = call(&s.router, "POST", &uri, None, Some(bind(leaf, &s.agent))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["call_leaf_hash"], json!(leaf));
    let (status, _) = call(&s.router, "POST", &uri, None, Some(bind(leaf, &s.agent))).await;
    assert_eq!(status, StatusCode::OK, "the same binding again is a no-op");
    let (status, body) = call(&s.router, "POST", &uri, None, Some(bind(other, &s.agent))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let unknown = format!("/v1/decisions/{}/call", B256::repeat_byte(9));
    let (status, _) = call(
        &s.router,
        "POST",
        &unknown,
        None,
        Some(bind(leaf, &s.agent)),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(
        &s.router,
        "POST",
        "/v1/decisions/0x12/call",
        None,
        Some(bind(leaf, &s.agent)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, page) = call(&s.router, "GET", "/v1/decisions", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"][0]["call_leaf_hash"], json!(leaf));
}

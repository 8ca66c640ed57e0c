//! `POST /v1/cosign` driven through the router: the helpers other test modules use
//! (`ready_on`, `register_wallet`, `request`) and, by concern, the decisions (`decisions`),
//! input validation (`validation`), load and rate limits (`limits`), x402 payment methods
//! (`payments`) and binding a payment to its model call (`binding`).

mod binding;
mod decisions;
mod limits;
mod payments;
mod validation;

use axum::http::StatusCode;
use chaperone_api::Payment;
use chaperone_core::{Address, Bytes, Call, Execute, U256};
use chaperone_testkit::signed_cosign_json;
use serde_json::json;

use crate::{ADMIN, NOW, Service, admin::policy_json, call, service};

async fn ready() -> Service {
    ready_on(service().await).await
}

/// `s` with its wallet registered under the test policy.
pub async fn ready_on(s: Service) -> Service {
    register_wallet(&s).await;
    let uri = format!("/v1/admin/wallets/{}/policy", s.wallet);
    call(&s.router, "PUT", &uri, Some(ADMIN), Some(policy_json(1))).await;
    s
}

/// Registers `s`'s wallet and agent, with no policy yet.
pub async fn register_wallet(s: &Service) {
    let wallet =
        json!({ "address": s.wallet, "chain_id": 31337, "agent": s.agent.address() }).to_string();
    let (status, body) = call(
        &s.router,
        "POST",
        "/v1/admin/wallets",
        Some(ADMIN),
        Some(wallet),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

fn execute(value: u64, nonce: u64) -> Execute {
    Execute {
        calls: vec![Call {
            to: Address::repeat_byte(0xb0),
            value: U256::from(value),
            data: Bytes::new(),
        }],
        nonce: U256::from(nonce),
        validUntil: NOW + 60,
    }
}

/// The co-sign body of `e`, signed by `s`'s agent.
fn body(s: &Service, e: &Execute) -> serde_json::Value {
    signed_cosign_json(&s.agent, 31337, s.wallet, Payment::Execute(e.clone()))
}

/// Asks for a co-signature of a `value` transfer with `nonce`.
pub async fn request(s: &Service, value: u64, nonce: u64) -> (StatusCode, serde_json::Value) {
    cosign(s, &body(s, &execute(value, nonce))).await
}

async fn cosign(s: &Service, body: &serde_json::Value) -> (StatusCode, serde_json::Value) {
    call(
        &s.router,
        "POST",
        "/v1/cosign",
        None,
        Some(body.to_string()),
    )
    .await
}

//! The service's router driven without a socket (`oneshot`), on a real SQLite store.
#![allow(missing_docs, unreachable_pub, clippy::unwrap_used)]

mod admin;
mod anvil;
mod cosign;

use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode, header},
};
use chaperone_core::{Address, Secp256k1Signer};
use chaperone_server::{AppState, app, token_hash};
use chaperone_store::Store;
use http_body_util::BodyExt;
use tower::ServiceExt;

pub const NOW: u64 = 1_750_000_000;
pub const ADMIN: &str = "admin-secret";
pub const APPROVER: &str = "approver-secret";

pub struct Service {
    pub router: Router,
    pub store: Store,
    pub agent: Secp256k1Signer,
    pub cosigner: Secp256k1Signer,
    pub wallet: Address,
}

fn clock() -> u64 {
    NOW
}

pub async fn service() -> Service {
    let path = std::env::temp_dir().join(format!(
        "chaperone_server_{}_{}.db",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let store = Store::connect(&format!("sqlite:{}?mode=rwc", path.display()))
        .await
        .unwrap();
    store
        .add_api_token(token_hash(ADMIN), "ops", "admin", NOW)
        .await
        .unwrap();
    store
        .add_api_token(token_hash(APPROVER), "alice", "approver", NOW)
        .await
        .unwrap();
    let cosigner = Secp256k1Signer::random().unwrap();
    let router = app(AppState::with_clock(
        store.clone(),
        cosigner.clone(),
        31337,
        clock,
    ));
    Service {
        router,
        store,
        agent: Secp256k1Signer::random().unwrap(),
        cosigner,
        wallet: Address::repeat_byte(0xaa),
    }
}

pub async fn call(
    router: &Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<String>,
) -> (StatusCode, serde_json::Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let request = match body {
        Some(b) => request
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b)),
        None => request.body(Body::empty()),
    }
    .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, json)
}

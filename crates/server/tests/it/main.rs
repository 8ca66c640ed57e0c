//! The service's router driven without a socket (`oneshot`), on a real SQLite store and, when
//! `CHAPERONE_TEST_PG_URL` is set, a real PostgreSQL database; end-to-end tests on Anvil.
#![allow(missing_docs, unreachable_pub, clippy::unwrap_used)]

mod admin;
mod anvil;
mod approval_endings;
mod audit;
mod audit_anvil;
mod bind_limits;
mod compliance;
mod contract;
mod cosign;
mod decision_kinds;
mod evidence;
mod observability;
mod openapi;
mod payments;
pub(crate) mod people;
mod sessions;
mod tool_approvals;
mod tool_arguments;
mod tools;
pub(crate) mod untrusted;
mod webhooks;

use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode, header},
};
use chaperone_core::{Address, CommitmentKind, Opening, Record, Secp256k1Signer, SignedBatch};
use chaperone_server::{AppState, app, token_hash};
use chaperone_store::Store;
use chaperone_testkit::sqlite_file;
use http_body_util::BodyExt;
use tower::ServiceExt;

pub const NOW: u64 = 1_750_000_000;
pub const ADMIN: &str = "admin-secret";
pub const APPROVER: &str = "approver-secret";
pub const AUDITOR: &str = "auditor-secret";

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

/// The service on SQLite, and on PostgreSQL (a fresh database) when `CHAPERONE_TEST_PG_URL`
/// is set.
pub async fn services() -> Vec<Service> {
    let mut out = vec![service().await];
    if let Some(url) = chaperone_testkit::postgres_database("chaperone_srv").await {
        out.push(service_on(Store::connect(&url).await.unwrap()).await);
    }
    out
}

pub async fn service() -> Service {
    service_on(Store::connect(&sqlite_file("server").url).await.unwrap()).await
}

pub async fn service_on(store: Store) -> Service {
    // The service decides at the fake time `NOW` (2025), far from the database's clock.
    let store = store.with_max_clock_skew(None);
    store
        .add_api_token(token_hash(ADMIN), "ops", "admin", NOW)
        .await
        .unwrap();
    store
        .add_api_token(token_hash(APPROVER), "alice", "approver", NOW)
        .await
        .unwrap();
    store
        .add_api_token(token_hash(AUDITOR), "carol", "auditor", NOW)
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

/// Like [`call`], returning the raw body text and the `X-Next-Cursor` header.
pub async fn call_text(
    router: &Router,
    uri: &str,
    token: &str,
) -> (StatusCode, String, Option<String>, Option<String>) {
    let request = Request::builder()
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let header = |name| {
        response
            .headers()
            .get(name)
            .map(|v: &axum::http::HeaderValue| v.to_str().unwrap().to_owned())
    };
    let (content_type, cursor) = (header("content-type"), header("x-next-cursor"));
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        String::from_utf8(bytes.to_vec()).unwrap(),
        content_type,
        cursor,
    )
}

/// Logs in to the console with `token` as a browser does (the login form's CSRF cookie and
/// field, then the form): the `Cookie` header value of the session it opens.
pub async fn login(router: &Router, token: &str) -> String {
    let csrf = "ab".repeat(32);
    let request = Request::builder()
        .method("POST")
        .uri("/login")
        .header(header::COOKIE, format!("chaperone_login={csrf}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("token={token}&csrf={csrf}&next=/")))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let set = response
        .headers()
        .get(header::SET_COOKIE)
        .unwrap_or_else(|| panic!("login with {token} set no cookie: {}", response.status()))
        .to_str()
        .unwrap();
    set.split(';').next().unwrap().to_owned()
}

/// A GET with `cookie`: the status, the `Location` header and the body.
pub async fn get_with_cookie(
    router: &Router,
    uri: &str,
    cookie: &str,
) -> (StatusCode, Option<String>, String) {
    let request = Request::builder()
        .uri(uri)
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let location = response
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        location,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
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

/// An agent as the SDK will be: it commits to content with fresh salts, chains its records and
/// signs each batch once. It keeps the openings (content + salts) for later disclosure.
pub struct TestAgent {
    pub key: Secp256k1Signer,
    pub sequence: u64,
    pub previous: chaperone_core::B256,
    pub openings: std::collections::HashMap<chaperone_core::B256, (Opening, Opening)>,
}

impl Default for TestAgent {
    fn default() -> Self {
        Self::new()
    }
}

impl TestAgent {
    /// A new agent, registered with `store`'s deployment so it may append to the log.
    pub async fn registered(store: &Store) -> Self {
        let agent = Self::new();
        store
            .register_agent(agent.key.address(), "test", NOW)
            .await
            .unwrap();
        agent
    }

    pub fn new() -> Self {
        Self {
            key: Secp256k1Signer::random().unwrap(),
            sequence: 0,
            previous: chaperone_core::B256::ZERO,
            openings: Default::default(),
        }
    }

    /// The next `n` records (content carries `marker`), signed as one batch.
    pub fn batch(&mut self, n: usize, marker: &str) -> SignedBatch {
        let mut records = Vec::with_capacity(n);
        for _ in 0..n {
            let input = Opening::new(
                CommitmentKind::Input,
                format!("prompt {} {marker}", self.sequence).into_bytes(),
            )
            .unwrap();
            let output = Opening::new(
                CommitmentKind::Output,
                format!("answer {} {marker}", self.sequence).into_bytes(),
            )
            .unwrap();
            let record = Record {
                agent: self.key.address(),
                sequence: self.sequence,
                timestamp_ms: NOW * 1000 + self.sequence,
                model: if self.sequence.is_multiple_of(2) {
                    "model-a"
                } else {
                    "model-b"
                }
                .into(),
                input: input.commitment(),
                output: output.commitment(),
                metadata: None,
                previous: self.previous,
            };
            self.previous = record.leaf_hash().unwrap();
            self.openings.insert(self.previous, (input, output));
            self.sequence += 1;
            records.push(record);
        }
        SignedBatch::sign(records, &self.key).unwrap()
    }
}

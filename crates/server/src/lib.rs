//! Chaperone's HTTP service. [`app`] builds the router; tests drive it without a socket.
//!
//! - `POST /v1/cosign`: the agent's signed `Execute`; 200 with the co-signature, 202 pending a
//!   human, 403 denied with every reason.
//! - `/v1/admin/...`: register wallets, set and read policies, list and resolve pending
//!   approvals; bearer tokens (stored hashed) with roles `admin` and `approver`.
//! - [`Watcher`] settles reservations when wallets execute and releases expired ones.

mod admin;
mod api;
mod cosign;
mod watcher;

use std::sync::Arc;

use axum::{Router, extract::DefaultBodyLimit, routing::get};
use chaperone_core::Secp256k1Signer;
use chaperone_store::Store;

pub use api::ApiError;
pub use watcher::{WatchReport, Watcher};

/// The largest request body accepted (a policy or a batch of calls); larger gets 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    cosigner: Secp256k1Signer,
    chain_id: u64,
    clock: fn() -> u64,
}

impl AppState {
    /// State for a service on `chain_id` that co-signs with `cosigner`.
    pub fn new(store: Store, cosigner: Secp256k1Signer, chain_id: u64) -> Self {
        Self::with_clock(store, cosigner, chain_id, unix_now)
    }

    /// The same with a custom clock (Unix seconds), for tests of expiry.
    pub fn with_clock(
        store: Store,
        cosigner: Secp256k1Signer,
        chain_id: u64,
        clock: fn() -> u64,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                cosigner,
                chain_id,
                clock,
            }),
        }
    }

    fn store(&self) -> &Store {
        &self.inner.store
    }

    fn now(&self) -> u64 {
        (self.inner.clock)()
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The service's router.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(cosign::router())
        .merge(admin::router())
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// SHA-256 of a bearer token, as stored.
pub fn token_hash(token: &str) -> chaperone_core::B256 {
    use sha2::Digest;
    chaperone_core::B256::new(sha2::Sha256::digest(token.as_bytes()).into())
}

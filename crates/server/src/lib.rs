//! Chaperone's HTTP service. [`app`] builds the router; tests drive it without a socket.
//!
//! - `POST /v1/cosign`: the agent's signed `Execute`; 200 with the co-signature, 202 pending a
//!   human, 403 denied with every reason.
//! - `/v1/admin/...`: register wallets, set and read policies, list and resolve pending
//!   approvals; bearer tokens (stored hashed) with roles `admin` and `approver`.
//! - `POST /v1/records`, `GET /v1/records/{leaf_hash}/proof`, `GET /v1/checkpoints/latest`,
//!   `POST /v1/verify`: the audit log (audit.rs).
//! - `GET /v1/agents`, `/v1/agents/{address}/records`, `/v1/decisions`, `/v1/spend`: the
//!   compliance API for role `auditor` (compliance.rs); `GET /openapi.json` describes it all.
//! - [`Anchorer`] logs decisions, signs checkpoints and anchors them; [`Indexer`] follows the
//!   contracts' events and settles or releases reservations from confirmed blocks.

mod admin;
mod admission;
mod anchor;
mod api;
mod audit;
mod compliance;
mod cosign;
mod indexer;
mod openapi;
mod service;

use std::sync::Arc;

use alloy::providers::DynProvider;
use axum::{Router, extract::DefaultBodyLimit, routing::get};
use chaperone_core::{Address, B256, Secp256k1Signer};
use chaperone_store::Store;

pub use admission::MAX_INFLIGHT_PER_WALLET;
pub use anchor::{AnchorPolicy, AnchorReport, Anchorer, DECISION_MODEL};
pub use api::ApiError;
pub use audit::{MAX_BATCH_BODY_BYTES, MAX_BATCH_RECORDS};
pub use indexer::{IndexReport, Indexer, MAX_LOG_RANGE};
pub use openapi::openapi;
pub use service::{
    AuditLogConfig, CheckpointConfig, KeySource, RunningService, ServiceConfig, ServiceKeys,
    WalletConfig, read_policy, start,
};

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
    log: LogConfig,
    /// Per-wallet admission control of `/v1/cosign` (admission.rs).
    admission: admission::Admission,
}

/// The audit log this server runs: its origin (the name in its checkpoints), the operator key
/// that signs checkpoints and receipts, and where it is anchored.
#[derive(Clone)]
pub struct LogConfig {
    /// The origin line of checkpoints; also the operator's key name.
    pub origin: String,
    /// Signs checkpoints and receipts (and, in the [`Anchorer`], anchoring transactions).
    pub operator: Secp256k1Signer,
    /// The `AuditLog` contract and log id, when the server has a chain.
    pub chain: Option<ChainLog>,
}

/// Where the log is anchored.
#[derive(Clone)]
pub struct ChainLog {
    /// A provider for reads (verification).
    pub provider: DynProvider,
    /// The `AuditLog` contract.
    pub audit_log: Address,
    /// The log's id in it.
    pub log_id: B256,
}

impl LogConfig {
    /// A log anchored at `audit_log`/`log_id` on `chain_id`.
    pub fn anchored(
        chain_id: u64,
        operator: Secp256k1Signer,
        provider: DynProvider,
        audit_log: Address,
        log_id: B256,
    ) -> Self {
        Self {
            origin: log_origin(chain_id, Some((audit_log, log_id))),
            operator,
            chain: Some(ChainLog {
                provider,
                audit_log,
                log_id,
            }),
        }
    }

    /// A log with no chain (development without Anvil): checkpoints are signed, not anchored.
    pub fn unanchored(chain_id: u64, operator: Secp256k1Signer) -> Self {
        Self {
            origin: log_origin(chain_id, None),
            operator,
            chain: None,
        }
    }
}

/// The origin of a log: `chaperone.dev/<chain id>/<AuditLog address>/<log id>` (lowercase hex),
/// or `chaperone.dev/<chain id>/unanchored`.
pub fn log_origin(chain_id: u64, anchor: Option<(Address, B256)>) -> String {
    match anchor {
        Some((audit_log, log_id)) => format!(
            "chaperone.dev/{chain_id}/{}/{log_id}",
            audit_log.to_string().to_lowercase()
        ),
        None => format!("chaperone.dev/{chain_id}/unanchored"),
    }
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
        // Until told otherwise, the co-signer also operates an unanchored log.
        let log = LogConfig::unanchored(chain_id, cosigner.clone());
        Self {
            inner: Arc::new(Inner {
                store,
                cosigner,
                chain_id,
                clock,
                log,
                admission: Default::default(),
            }),
        }
    }

    /// The same state running `log`.
    pub fn with_log(self, log: LogConfig) -> Self {
        let inner = &self.inner;
        Self {
            inner: Arc::new(Inner {
                store: inner.store.clone(),
                cosigner: inner.cosigner.clone(),
                chain_id: inner.chain_id,
                clock: inner.clock,
                log,
                admission: Default::default(),
            }),
        }
    }

    fn admission(&self) -> &admission::Admission {
        &self.inner.admission
    }

    fn log(&self) -> &LogConfig {
        &self.inner.log
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
        .route("/openapi.json", get(|| async { axum::Json(openapi()) }))
        .merge(cosign::router())
        .merge(admin::router())
        .merge(audit::router())
        .merge(compliance::router())
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// SHA-256 of a bearer token, as stored.
pub fn token_hash(token: &str) -> chaperone_core::B256 {
    use sha2::Digest;
    chaperone_core::B256::new(sha2::Sha256::digest(token.as_bytes()).into())
}

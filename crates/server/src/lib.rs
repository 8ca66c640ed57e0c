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
//! - `GET /metrics`: Prometheus metrics (metrics.rs).
//! - [`Anchorer`] logs decisions, signs checkpoints and anchors them; [`Indexer`] follows the
//!   contracts' events and settles or releases reservations from confirmed blocks.

mod admin;
mod admission;
mod anchor;
mod api;
mod audit;
mod compliance;
mod console;
mod cosign;
mod decider;
mod indexer;
mod metrics;
mod openapi;
mod payability;
mod service;
mod tokens;
mod webhooks;

use std::{sync::Arc, time::Duration};

use alloy::providers::DynProvider;
use axum::{
    Router, extract::DefaultBodyLimit, http::HeaderName, response::IntoResponse, routing::get,
};
use chaperone_core::{Address, B256, Secp256k1Signer, policy::Token, readable::TokenUnits};
use chaperone_store::Store;
use tower_http::{
    LatencyUnit,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::{DefaultOnResponse, TraceLayer},
};

pub use admission::MAX_INFLIGHT_PER_WALLET;
pub use anchor::{AnchorPolicy, AnchorReport, Anchorer, DECISION_MODEL};
pub use api::ApiError;
pub use audit::{MAX_BATCH_BODY_BYTES, MAX_BATCH_RECORDS};
pub use indexer::{IndexReport, Indexer, MAX_LOG_RANGE};
pub use metrics::Metrics;
pub use openapi::openapi;
pub use service::{
    AuditLogConfig, CheckpointConfig, KeySource, RunningService, ServiceConfig, ServiceKeys,
    WalletConfig, read_policy, start,
};
pub use webhooks::{
    MAX_ATTEMPTS as WEBHOOK_MAX_ATTEMPTS, Notifier, Webhook, WebhookConfig, WebhookFormat,
    WebhookSender, signature as webhook_signature,
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
    /// Decides `/v1/cosign` requests in batches (decider.rs).
    decider: decider::Decider,
    /// What `/metrics` reports (shared with the background workers).
    metrics: Arc<Metrics>,
    /// How long a request may take before it is answered 503.
    request_timeout: Duration,
    /// Webhook notifications of pending approvals and denials, when configured.
    notifier: Option<Arc<Notifier>>,
    /// Token symbols and decimals, read from the chain once each (the console's amounts),
    /// with when the read failed if it did.
    token_units: std::sync::Mutex<
        std::collections::HashMap<Address, (TokenUnits, Option<std::time::Instant>)>,
    >,
    /// Wallets' EIP-1271 budgets read from the chain (payability.rs).
    budgets: payability::BudgetCache,
    /// A provider for reads of the wallets' chain, when the service has one.
    chain: Option<DynProvider>,
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
        let decider = decider::Decider::new(store.clone(), cosigner.clone(), chain_id, clock);
        Self {
            inner: Arc::new(Inner {
                decider,
                store,
                cosigner,
                chain_id,
                clock,
                log,
                admission: Default::default(),
                metrics: Default::default(),
                request_timeout: REQUEST_TIMEOUT,
                notifier: None,
                token_units: Default::default(),
                budgets: Default::default(),
                chain: None,
            }),
        }
    }

    /// The same state running `log`, reporting to `metrics`.
    pub fn with_log(self, log: LogConfig, metrics: Arc<Metrics>) -> Self {
        self.rebuilt(|inner| {
            inner.log = log;
            inner.metrics = metrics;
        })
    }

    /// The same state reading the wallets' chain through `provider` (token symbols, the
    /// wallets' EIP-1271 budgets).
    pub fn with_chain(self, provider: DynProvider) -> Self {
        self.rebuilt(|inner| inner.chain = Some(provider))
    }

    /// The same state answering 503 to requests that take longer than `timeout`.
    pub fn with_request_timeout(self, timeout: Duration) -> Self {
        self.rebuilt(|inner| inner.request_timeout = timeout)
    }

    /// The same state notifying pending approvals and denials through `notifier`.
    pub fn with_notifier(self, notifier: Arc<Notifier>) -> Self {
        self.rebuilt(|inner| inner.notifier = Some(notifier))
    }

    /// A new state from this one's parts (with fresh admission counters), changed by `change`.
    fn rebuilt(self, change: impl FnOnce(&mut Inner)) -> Self {
        let i = &self.inner;
        let mut inner = Inner {
            decider: decider::Decider::new(
                i.store.clone(),
                i.cosigner.clone(),
                i.chain_id,
                i.clock,
            ),
            store: i.store.clone(),
            cosigner: i.cosigner.clone(),
            chain_id: i.chain_id,
            clock: i.clock,
            log: i.log.clone(),
            admission: Default::default(),
            metrics: i.metrics.clone(),
            request_timeout: i.request_timeout,
            notifier: i.notifier.clone(),
            token_units: Default::default(),
            budgets: Default::default(),
            chain: i.chain.clone(),
        };
        change(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    fn admission(&self) -> &admission::Admission {
        &self.inner.admission
    }

    fn log(&self) -> &LogConfig {
        &self.inner.log
    }

    fn notifier(&self) -> Option<&Notifier> {
        self.inner.notifier.as_deref()
    }

    /// The wallets' chain, for reads: the configured one, else the log's.
    fn chain(&self) -> Option<&DynProvider> {
        self.inner
            .chain
            .as_ref()
            .or(self.inner.log.chain.as_ref().map(|c| &c.provider))
    }

    fn budgets(&self) -> &payability::BudgetCache {
        &self.inner.budgets
    }

    fn decider(&self) -> &decider::Decider {
        &self.inner.decider
    }

    fn store(&self) -> &Store {
        &self.inner.store
    }

    fn now(&self) -> u64 {
        (self.inner.clock)()
    }

    /// How `token`'s amounts are written: native is ETH; an ERC-20's symbol and decimals are
    /// read from the chain once. Without a chain, or while it does not answer, the amount
    /// stays in base units under the token's short address (and the chain is asked again a
    /// minute later, not on every call: this runs on the co-sign path of denials).
    async fn token_units(&self, token: Token) -> TokenUnits {
        const RETRY_AFTER: Duration = Duration::from_secs(60);
        let Token::Erc20(address) = token else {
            return TokenUnits::native();
        };
        let cached = self
            .inner
            .token_units
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&address)
            .cloned();
        match cached {
            Some((units, None)) => return units,
            Some((units, Some(failed_at))) if failed_at.elapsed() < RETRY_AFTER => return units,
            _ => {}
        }
        let read = async {
            let erc20 = chaperone_chain::TestToken::new(address, self.chain()?);
            let symbol = erc20.symbol().call().await.ok()?;
            let decimals = erc20.decimals().call().await.ok()?;
            Some(TokenUnits { symbol, decimals })
        };
        let (units, failed_at) = match read.await {
            Some(units) => (units, None),
            None => {
                let text = address.to_string();
                let units = TokenUnits {
                    symbol: format!("units of {}…{}", &text[..6], &text[text.len() - 4..]),
                    decimals: 0,
                };
                (units, Some(std::time::Instant::now()))
            }
        };
        self.inner
            .token_units
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(address, (units.clone(), failed_at));
        units
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The longest a request may take by default; a slower one is answered 503 and its work
/// abandoned (a decision's transaction rolls back unless it committed).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The service's router: the endpoints, then (outermost last) the body limit, the timeout,
/// request/response tracing and the request id (`x-request-id`, taken from the client or
/// made up, returned on every response and named in every log line of the request).
pub fn app(state: AppState) -> Router {
    let x_request_id = HeaderName::from_static("x-request-id");
    let timeout = state.inner.request_timeout;
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics::metrics))
        .route("/openapi.json", get(|| async { axum::Json(openapi()) }))
        .merge(cosign::router())
        .merge(admin::router())
        .merge(tokens::router())
        .merge(audit::router())
        .merge(compliance::router())
        .merge(console::router())
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| async move {
                match tokio::time::timeout(timeout, next.run(request)).await {
                    Ok(response) => response,
                    Err(_) => ApiError::unavailable(format!(
                        "the request took longer than {} ms; nothing was decided or written \
                         unless an earlier answer said so: send it again",
                        timeout.as_millis()
                    ))
                    .into_response(),
                }
            },
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &axum::http::Request<_>| {
                    let id = request
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    // The path only: queries carry no secrets, but bodies and headers may.
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = %request.uri().path(),
                        request_id = %id,
                    )
                })
                .on_response(
                    DefaultOnResponse::new()
                        .level(tracing::Level::DEBUG)
                        .latency_unit(LatencyUnit::Micros),
                ),
        )
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
        .with_state(state)
}

/// SHA-256 of a bearer token, as stored.
pub fn token_hash(token: &str) -> chaperone_core::B256 {
    use sha2::Digest;
    chaperone_core::B256::new(sha2::Sha256::digest(token.as_bytes()).into())
}

/// How log lines are written: for people (`text`) or for a log pipeline (`json`, one object per
/// line, with the request's span fields such as `request_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!("--log-format takes text or json, not `{other}`")),
        }
    }
}

/// Installs the process's log subscriber (stderr), at most `level`.
pub fn init_logging(format: LogFormat, level: tracing::Level) {
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().with_current_span(true).init(),
    }
}

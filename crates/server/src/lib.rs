//! Chaperone's HTTP service. [`app`] builds the router; tests drive it without a socket.
//!
//! The areas, each one file (or folder) that imports only the shared modules below, never
//! another area:
//! - `cosign.rs`: `POST /v1/cosign` (the agent's signed payment; 200 with the co-signature,
//!   202 pending a human, 403 denied with every reason) and the binding of a payment to its
//!   call; `payability.rs` refuses what the wallet could never honour, `admission.rs` bounds
//!   each wallet's load, `decider.rs` decides in batches.
//! - `audit.rs`: the audit log's records, proofs, checkpoints and verification; [`Anchorer`]
//!   (anchor.rs) signs checkpoints and anchors them; [`Indexer`] (indexer.rs) follows the
//!   contracts' events and settles or releases reservations.
//! - `admin.rs`, `tokens.rs`: wallets, agents, policies, approvals and API tokens.
//! - `compliance.rs`: the auditor's lists; `payments.rs`: the payment ledger.
//! - `compliance.rs`: the auditor's lists; `actions.rs`: who did what (administrative actions).
//! - `console/`: the browser console (HTML).
//! - `webhooks.rs`: notifications of pending approvals and denials; `metrics.rs`: `/metrics`.
//!
//! Shared by the areas: `state.rs` ([`AppState`]), `http/` (errors, the JSON extractor, the
//! caller's token, the service's own routes), `paging.rs` (pages and export formats),
//! `words.rs` (reasons and amounts in words), `ledger.rs` (the ledger's rows and the
//! payment columns of decisions), `verification.rs` (a disclosure checked end to
//! end), `openapi.rs` (the document, derived from the handlers). The wire types are in the
//! `chaperone-api` crate. `service.rs` starts it all from a configuration file.

mod actions;
mod admin;
mod admission;
mod alerts;
mod anchor;
mod app;
mod audit;
mod compliance;
mod console;
mod cosign;
mod decider;
mod decision_kinds;
mod evidence;
mod http;
mod indexer;
mod ledger;
mod logging;
mod metrics;
mod openapi;
mod paging;
mod payability;
mod payments;
mod service;
mod state;
mod tokens;
mod tools;
mod verification;
mod webhooks;
mod words;

pub use admission::MAX_INFLIGHT_PER_WALLET;
pub use anchor::{ADMIN_ACTION_MODEL, AnchorPolicy, AnchorReport, Anchorer, DECISION_MODEL};
pub use app::app;
pub use audit::{MAX_BATCH_BODY_BYTES, MAX_BATCH_RECORDS};
pub use http::{ApiError, token_hash};
pub use indexer::{IndexReport, Indexer, MAX_LOG_RANGE};
pub use logging::{LogFormat, init_logging, init_logging_capped};
pub use metrics::Metrics;
pub use openapi::openapi;
pub use service::{
    AuditLogConfig, CheckpointConfig, KeySource, PolicyInstall, RunningService, ServiceConfig,
    ServiceKeys, WalletConfig, read_policy, start,
};
pub use state::{AppState, ChainLog, LogConfig, REQUEST_TIMEOUT, log_origin};
pub use webhooks::{
    MAX_ATTEMPTS as WEBHOOK_MAX_ATTEMPTS, Notifier, Webhook, WebhookConfig, WebhookFormat,
    WebhookSender, signature as webhook_signature,
};

/// The largest request body accepted (a policy or a batch of calls); larger gets 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

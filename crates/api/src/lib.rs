//! Chaperone's HTTP contract, in one place: every request and response body the server reads
//! and writes, the error body and its [`ErrorCode`]s (each with its one status), and — behind
//! the `client` feature — the typed [`Client`] the SDK, the CLI and the Python package call
//! the server with. The server derives its OpenAPI document from these types (feature
//! `openapi`), so a body cannot change on one side of the wire only.
//!
//! - [`cosign`]: `POST /v1/cosign` and the [`Payment`] being co-signed (one variant per payment
//!   method), `POST /v1/decisions/{request_id}/call`.
//! - [`audit`]: the audit log's records, proofs, checkpoints and verification.
//! - [`admin`]: wallets, agents, policies, approvals and API tokens.
//! - [`compliance`]: the auditor's paginated lists ([`Page`]) and their export formats.
//! - [`ledger`]: the payment ledger and the payment columns decisions share with it.
//! - [`alerts`]: reconciliation's unauthorized spends.
//! - [`evidence`]: the auditor's evidence pack (a checkable bundle and a report).

pub mod admin;
pub mod alerts;
pub mod audit;
#[cfg(feature = "client")]
mod client;
pub mod compliance;
pub mod cosign;
mod error;
pub mod evidence;
pub mod ledger;
mod payment;
pub mod tools;

#[cfg(feature = "client")]
pub use client::{Client, ClientError, CosignAnswer, Export, url_escape};
pub use compliance::{Format, Page};
pub use cosign::{CosignBody, CosignRequest, CosignResponse};
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use payment::{Authorization, Method, Payment, PaymentAuthorization, Permit2Payment, Subject};

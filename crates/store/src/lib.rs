//! Chaperone's persistence through sqlx: SQLite as the embedded default (a file), PostgreSQL by
//! URL. One code path serves both (sqlx's `Any` driver); the few dialect differences (migrations,
//! row locking) are chosen by [`Backend`].
//!
//! The store owns the invariant that keeps the policy service from ever co-signing beyond a
//! limit: [`Store::decide`] (and [`Store::decide_batch`], many requests in one transaction)
//! reads the wallet's spend history, runs the pure engine and reserves
//! the approved spend in one transaction that holds the wallet's lock.

mod access;
mod agents;
mod approval_endings;
mod audit;
mod calls;
mod checkpoint;
mod compliance;
mod console;
mod cosign;
mod decide;
mod error;
mod evidence;
mod ledger;
mod people;
mod reconcile;
mod sql_filter;
mod store;
mod tools;
mod totals;
mod unauthorized;
mod webhooks;

pub use access::ApiTokenInfo;
pub use agents::RegisteredAgent;
pub use audit::{
    AgentSummary, Anchor, AnchoringLock, AppendedBatch, DecisionOpening, LoggedRecord,
    ReceivedFilter, RecordFilter, ServiceRecord, StoredCheckpoint, UnloggedDecision,
};
pub use calls::{ApprovedDecision, CallBinding, ReceivedRecord};
pub use compliance::{ChainEvent, DecisionFilter, DecisionRow, QueueDepths, SpendTotal};
pub use console::{CheckpointStatus, PendingDetail, PolicyVersion, Verdict};
pub use cosign::{AuthorizedTransfer, Decided, RequestRecord, Settlement, StoredDecision};
pub use decide::MAX_BATCH;
pub use error::{Error, Result};
pub use evidence::AnchorLag;
pub use ledger::{LedgerRow, PaymentDetail, PaymentFilter, PaymentState};
pub use people::{Actor, AdminAction, CastVote, NewAdminAction, VoteCount};
pub use store::{Backend, MAX_CLOCK_SKEW_SECS, Store, WalletRecord};
pub use tools::{
    NewToolDecision, StoredToolDecision, ToolApprovalState, ToolDecisionFilter, ToolDecisionStore,
    ToolVerdict,
};
pub use unauthorized::UnauthorizedSpend;
pub use webhooks::WebhookDelivery;

//! The evidence pack for an auditor: `GET /v1/evidence/bundle` (this machine-checkable
//! [`EvidenceBundle`]) and `GET /v1/evidence/report` (a self-contained HTML report), both for a
//! period and a set of agents and wallets ([`EvidenceQuery`]).
//!
//! A bundle is checked offline by `chaperone verify --bundle` (against a chain RPC and the log
//! the auditor names) and by a second implementation of RFC 9162 in the Python tests: every
//! record's leaf hash from its leaf data, its inclusion proof against the first anchored
//! checkpoint that covers it, a consistency proof between each pair of consecutive
//! checkpoints, and each checkpoint's signature and its anchoring transaction. A decision is
//! checked against its own record (a record of the policy service) through its opening
//! ([`DecisionOpening`]): what the record commits to, with the salts.
//!
//! Records are selected by when the server received them, not by the timestamp their agent
//! wrote into them: an agent chooses its own clock.

use chaperone_core::{
    Address, B256, Bytes, InclusionProof, Salt,
    policy::{Outcome, Reason},
};
use serde::{Deserialize, Serialize};

use crate::{audit::AnchorView, compliance::DecisionView};

/// The format version of [`EvidenceBundle`]: 2 added [`EvidenceBundle::decision_openings`]
/// and [`EvidenceRecord::received_ms`] (a version-1 bundle has neither: its decisions cannot
/// be checked against their records).
pub const EVIDENCE_VERSION: u32 = 2;
/// The most records one bundle carries: a longer period is asked for in parts.
pub const MAX_EVIDENCE_RECORDS: usize = 20_000;
/// The most co-sign decisions one bundle or report covers: a longer period is asked for in
/// parts.
pub const MAX_EVIDENCE_DECISIONS: usize = 20_000;
/// The model-id prefix of the policy service's own records (decisions, admin actions): the
/// service refuses it in an agent's batch, so an agent key cannot log a record that reads as
/// the service's (a made-up "approved" decision in an evidence bundle).
pub const SERVICE_MODEL_PREFIX: &str = "chaperone-policy/";
/// The model id of the policy service's decision records: the input commits to the co-sign
/// request as received, the output to [`DecisionRecordContent`] as JSON.
pub const DECISION_RECORD_MODEL: &str = "chaperone-policy/decision/v1";
/// The longest period one bundle or report covers (seconds): 366 days.
pub const MAX_EVIDENCE_PERIOD_SECS: u64 = 366 * 86_400;

/// What an evidence pack covers: `[from, to)` in Unix seconds, and optionally only some agents
/// and wallets (comma-separated addresses; none means all).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct EvidenceQuery {
    /// The period's start, Unix seconds (inclusive).
    pub from: u64,
    /// The period's end, Unix seconds (exclusive).
    pub to: u64,
    /// Only these agents' records (comma-separated addresses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agents: Option<String>,
    /// Only these wallets' decisions, and their decision records (comma-separated addresses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wallets: Option<String>,
}

/// A logged record with what proves it is in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EvidenceRecord {
    /// Its index in the log.
    pub index: u64,
    /// SHA-256(0x00 ‖ `leaf_data`): the RFC 9162 leaf hash.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub leaf_hash: B256,
    /// The record's canonical encoding (what the leaf hashes).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub leaf_data: Bytes,
    /// The signing agent (also inside `leaf_data`; here for reading).
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::HexAddress))]
    pub agent: Address,
    /// Its model id (also inside `leaf_data`).
    pub model: String,
    /// The agent's timestamp, ms (also inside `leaf_data`): the agent's claim.
    pub timestamp_ms: u64,
    /// When the server received it, ms (what the pack's period selects by; the server's
    /// claim, bounded above by its checkpoint's anchoring block).
    #[serde(default)]
    pub received_ms: u64,
    /// Its inclusion in the tree of `inclusion.size` leaves: a checkpoint of the bundle.
    pub inclusion: InclusionProof,
}

/// A signed checkpoint and the transaction that anchored it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EvidenceCheckpoint {
    /// The tree size.
    pub size: u64,
    /// The root.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub root: B256,
    /// The operator's signed note (C2SP tlog-checkpoint).
    pub note: String,
    /// Its anchoring transaction, as the server recorded it (a verifier reads the chain).
    pub anchor: AnchorView,
}

/// Proof that the tree of `second` leaves extends the tree of `first` (RFC 9162 §2.1.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EvidenceConsistency {
    /// The older size.
    pub first: u64,
    /// The newer size.
    pub second: u64,
    /// The proof nodes.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<chaperone_core::openapi::Hex32>))]
    pub path: Vec<B256>,
}

/// The machine-checkable evidence of a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EvidenceBundle {
    /// [`EVIDENCE_VERSION`].
    pub version: u32,
    /// What was asked for.
    pub from: u64,
    /// What was asked for.
    pub to: u64,
    /// The agents asked for (empty: all).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<chaperone_core::openapi::HexAddress>))]
    pub agents: Vec<Address>,
    /// The wallets asked for (empty: all).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<chaperone_core::openapi::HexAddress>))]
    pub wallets: Vec<Address>,
    /// The period's records in log order, each proved against a checkpoint below.
    pub records: Vec<EvidenceRecord>,
    /// Records of the period not yet covered by an anchored checkpoint (left out: ask again
    /// after the next anchoring).
    pub unanchored_records: u64,
    /// The anchored checkpoints the proofs need, by increasing size.
    pub checkpoints: Vec<EvidenceCheckpoint>,
    /// One consistency proof per pair of consecutive checkpoints, in the same order.
    pub consistency: Vec<EvidenceConsistency>,
    /// The period's co-sign decisions; each `logged_leaf` is a record above once anchored.
    pub decisions: Vec<DecisionView>,
    /// What the records of those decisions commit to, with the salts: a verifier checks each
    /// decision's fields against its record through them (absent in version 1).
    #[serde(default)]
    pub decision_openings: Vec<DecisionOpening>,
}

/// A decision's record opened: its input (the co-sign request as the service received it)
/// and its output (the decision, [`DecisionRecordContent`] as JSON), with their salts. Both
/// are the policy service's own data, not an agent's private content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DecisionOpening {
    /// The decision.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub request_id: B256,
    /// The leaf hash of its record.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub leaf_hash: B256,
    /// The request as received (JSON text, exactly the bytes committed to).
    pub request: String,
    /// The input commitment's salt.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub input_salt: Salt,
    /// The decision as JSON text (exactly the bytes committed to).
    pub decision: String,
    /// The output commitment's salt.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub output_salt: Salt,
}

/// What a decision record's output commits to (as JSON), read back by a verifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionRecordContent {
    /// The outcome.
    pub outcome: Outcome,
    /// Every reason.
    pub reasons: Vec<Reason>,
    /// The policy version that decided.
    pub policy_version: u32,
    /// Its hash.
    pub policy_hash: B256,
    /// The co-signature (hex), when one was given.
    pub cosigner_signature: Option<String>,
}

//! The operator's endpoints under `/v1/admin` (bearer tokens with roles `admin`, `approver`,
//! `auditor`): wallets, agents, policies (`chaperone_core::policy::Policy` as JSON), pending
//! approvals and API tokens.

use chaperone_core::{Address, B256};
use serde::{Deserialize, Serialize};

/// A wallet to register with its agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewWallet {
    /// The wallet.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::HexAddress))]
    pub address: Address,
    /// Its chain.
    pub chain_id: u64,
    /// The agent key that signs its payments.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::HexAddress))]
    pub agent: Address,
}

/// A wallet or agent registered (or unregistered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Registered {
    /// Its address.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::HexAddress))]
    pub address: Address,
}

/// A policy stored: its version and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicySet {
    /// The version stored.
    pub version: u32,
    /// Its hash.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub hash: B256,
}

/// A request waiting for a human.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PendingApproval {
    /// The request's id.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub request_id: B256,
    /// The wallet that would pay.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::HexAddress))]
    pub wallet: Address,
    /// Unix seconds.
    pub expires_at: u64,
    /// The same time in ISO 8601 UTC.
    pub expires_at_iso: String,
}

/// The pending, unexpired approvals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PendingApprovals {
    /// Oldest first.
    pub pending: Vec<PendingApproval>,
}

/// An approver's vote on a pending request, and where the request stands after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Resolved {
    /// The request's id.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub request_id: B256,
    /// This vote: approve (true) or deny.
    pub approved: bool,
    /// `approved` (the quorum is reached: the agent's next ask is co-signed), `denied` (one
    /// denial denies) or `pending` (more approvers are needed).
    pub status: String,
    /// How many distinct approvers the policy asks for.
    pub required: u32,
    /// The distinct approvers so far, in voting order.
    pub approved_by: Vec<String>,
    /// How many more approvers are needed (0 unless `pending`).
    pub remaining: u32,
    /// False when this approver had voted before: a name counts once.
    pub counted: bool,
}

/// An administrative action on the record: who did what, when, and the leaf hash of its record
/// in the log (fetch its inclusion proof at `/v1/records/{leaf_hash}/proof`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminActionRow {
    /// Its id (the list's cursor).
    pub id: u64,
    /// Unix seconds.
    pub at: u64,
    /// The same time in ISO 8601 UTC.
    pub at_iso: String,
    /// The token name that acted.
    pub actor: String,
    /// Its role.
    pub actor_role: String,
    /// `verdict`, `policy.set`, `token.create`, `token.revoke`, `agent.register`, …
    pub action: String,
    /// What it was done to: a request id, a wallet, a token's name, an agent.
    pub subject: String,
    /// The exact bytes the record's input commitment commits to (JSON).
    pub content: String,
    /// The leaf hash of its record, once logged (the anchorer logs it on its next pass).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chaperone_core::openapi::Hex32>))]
    pub leaf_hash: Option<B256>,
    /// The salt of the input commitment (hex), once logged: with `content`, it opens the
    /// record's input commitment.
    pub input_salt: Option<String>,
}

/// An agent to allow to append to the log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewAgent {
    /// The agent's key.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::HexAddress))]
    pub address: Address,
    /// What people call it (1 to 64 printable characters); registering again with another
    /// label relabels it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// An agent that may append to the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentRegistration {
    /// The agent's key.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::HexAddress))]
    pub address: Address,
    /// Unix seconds.
    pub registered_at: u64,
    /// An admin's name, or "with its wallet".
    pub registered_by: String,
    /// What people call it (empty when none was given).
    #[serde(default)]
    pub label: String,
    /// The time its last logged record claims (Unix milliseconds); absent if it logged none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_record_ms: Option<u64>,
    /// When a wallet of this agent's last asked for a co-signature (Unix seconds); absent if
    /// never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_decision_at: Option<u64>,
}

/// Every agent that may append to the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisteredAgents {
    /// Every registration.
    pub agents: Vec<AgentRegistration>,
}

/// A token to issue.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// Who will hold it (1 to 64 printable characters), recorded with what they do.
    pub name: String,
    /// `admin`, `approver` or `auditor`.
    pub role: String,
}

/// A token issued: the only time the token itself is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IssuedToken {
    /// Who holds it.
    pub name: String,
    /// Its role.
    pub role: String,
    /// The bearer token (`chp_…`).
    pub token: String,
}

/// A token as listed (never the token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenView {
    /// Who holds it.
    pub name: String,
    /// Its role.
    pub role: String,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds, if revoked.
    pub revoked_at: Option<u64>,
    /// The admin who issued it (none: the service's configuration).
    #[serde(default)]
    pub created_by: Option<String>,
}

/// Every token, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tokens {
    /// Every token.
    pub tokens: Vec<TokenView>,
}

/// Tokens revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Revoked {
    /// Their name.
    pub name: String,
    /// How many live tokens of that name were revoked.
    pub revoked: u64,
}

//! Tool-policy decisions: `POST /v1/tool-decisions` (the MCP gateway reports each decision,
//! signed by the agent's record key), listed beside the wallets' decisions in `GET /v1/decisions`
//! (`kind=tool`, or `kind=all` for both in one listing) and on their own at
//! `GET /v1/tool-decisions`.
//!
//! A row of its own type rather than a [`crate::compliance::DecisionView`]: a wallet decision
//! is about money (a wallet, an EIP-712 request, spends, a settlement), a tool decision about a
//! call (an upstream, a tool, the call's record). [`DecisionItem`] holds either, tagged by
//! `kind`, so one listing shows both without half-empty rows.

use chaperone_core::{Address, B256, Signature, keccak256};
use serde::{Deserialize, Serialize};

/// The longest upstream or tool name a decision may carry (bytes).
pub const MAX_TOOL_NAME_LEN: usize = 256;
/// The most reasons one decision may carry.
pub const MAX_TOOL_REASONS: usize = 32;
/// The longest reason (bytes).
pub const MAX_TOOL_REASON_LEN: usize = 1024;

/// What the tool policy did with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ToolOutcome {
    /// Forwarded to the upstream.
    Allowed,
    /// Refused; the upstream never saw it.
    Denied,
    /// Waits for a human.
    ApprovalRequired,
}

impl ToolOutcome {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Denied => "denied",
            Self::ApprovalRequired => "approval_required",
        }
    }
}

impl std::str::FromStr for ToolOutcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "allowed" => Ok(Self::Allowed),
            "denied" => Ok(Self::Denied),
            "approval_required" => Ok(Self::ApprovalRequired),
            other => Err(format!(
                "`{other}` is not an outcome: use allowed, denied or approval_required"
            )),
        }
    }
}

/// One decision of an agent's tool policy, as the agent signs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ToolDecision {
    /// A random id the gateway chose: the same id sent twice is one decision.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub id: B256,
    /// The agent whose gateway decided (its record key signs the body).
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::HexAddress))]
    pub agent: Address,
    /// The upstream MCP server's name in the gateway's configuration.
    pub upstream: String,
    /// The upstream's own tool name.
    pub tool: String,
    /// What happened to the call.
    pub outcome: ToolOutcome,
    /// Why, in words (empty when allowed).
    pub reasons: Vec<String>,
    /// The tool policy's version.
    pub policy_version: u64,
    /// SHA-256 of the tool policy's canonical JSON, `0x`-hex.
    pub policy_hash: String,
    /// The leaf hash of the call's record, once recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chaperone_core::openapi::Hex32>))]
    pub leaf_hash: Option<B256>,
    /// When the gateway decided, by its clock (Unix milliseconds).
    pub decided_at_ms: u64,
    /// For `approval_required`: [`arguments_hash`] of the arguments the call is held with. The
    /// approver sees it and approves it; the gateway forwards only a call whose arguments hash
    /// to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chaperone_core::openapi::Hex32>))]
    pub arguments_hash: Option<B256>,
    /// For `approval_required`: how long the gateway waits for a human (seconds, at most
    /// [`MAX_APPROVAL_TIMEOUT_SECS`]); the approval expires then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_timeout_seconds: Option<u64>,
}

/// The longest a held tool call may wait for a human (seconds): the server expires a pending
/// approval after its decision's `approval_timeout_seconds`, or this.
pub const MAX_APPROVAL_TIMEOUT_SECS: u64 = 3_600;

/// The wait when a held decision names none (the gateway's default).
pub const DEFAULT_APPROVAL_TIMEOUT_SECS: u64 = 300;

/// How many tool calls one agent may have waiting for a human at once: past it, another is
/// refused 429 `too_many_pending_approvals` (a looping or hostile agent cannot bury the inbox).
pub const MAX_PENDING_TOOL_APPROVALS: u64 = 20;

/// The hash a held call's approval binds to: keccak-256 of a domain tag and the arguments'
/// JSON exactly as the gateway forwards them.
pub fn arguments_hash(arguments: &serde_json::Map<String, serde_json::Value>) -> B256 {
    let json = serde_json::to_vec(arguments).unwrap_or_default();
    keccak256([b"chaperone tool arguments v1 ".as_slice(), &json].concat())
}

impl ToolDecision {
    /// The EIP-191 message the agent signs: a domain tag and the keccak-256 of the decision's
    /// JSON (both sides serialise this one type, so the bytes agree).
    pub fn signing_message(&self) -> Vec<u8> {
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("chaperone tool decision v1 {}", keccak256(json)).into_bytes()
    }
}

/// `POST /v1/tool-decisions`: a decision and the agent's signature over
/// [`ToolDecision::signing_message`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ToolDecisionBody {
    /// The decision.
    pub decision: ToolDecision,
    /// The agent's EIP-191 signature.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::SignatureJson))]
    pub signature: Signature,
}

/// The answer to `POST /v1/tool-decisions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ToolDecisionStored {
    /// The decision's id.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub id: B256,
    /// Whether this id had been stored before (the same decision: nothing changed).
    pub replayed: bool,
}

/// A row of `GET /v1/tool-decisions`: the decision as the agent signed it, its signature, and
/// when the server received it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ToolDecisionView {
    /// The decision's id.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub id: B256,
    /// The agent.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::HexAddress))]
    pub agent: Address,
    /// The upstream's name.
    pub upstream: String,
    /// The tool's name.
    pub tool: String,
    /// What happened to the call.
    pub outcome: ToolOutcome,
    /// Why.
    pub reasons: Vec<String>,
    /// The reasons joined by "; " (for CSV).
    pub reasons_text: String,
    /// The tool policy's version.
    pub policy_version: u64,
    /// The tool policy's hash.
    pub policy_hash: String,
    /// The call's record, if the gateway had recorded it.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chaperone_core::openapi::Hex32>))]
    pub leaf_hash: Option<B256>,
    /// When the gateway decided (its clock, Unix ms).
    pub decided_at_ms: u64,
    /// For a held call: the hash of the arguments it was held with (what an approver approves).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chaperone_core::openapi::Hex32>))]
    pub arguments_hash: Option<B256>,
    /// For a held call: pending, approved, denied or expired.
    pub approval_status: Option<String>,
    /// For a held call: who gave the verdict (an approver's or admin's token name).
    pub approval_by: Option<String>,
    /// For a held call: when the verdict was given, or the approval expires while pending
    /// (Unix seconds).
    pub approval_at: Option<u64>,
    /// When the server received it (Unix seconds).
    pub received_at: u64,
    /// The agent's signature over the decision.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::SignatureJson))]
    pub signature: Signature,
}

impl ToolDecisionView {
    /// The row of a signed decision received at `received_at` (its approval, if it asked for
    /// one, is set by [`ToolDecisionView::with_approval`]).
    pub fn new(body: ToolDecisionBody, received_at: u64) -> Self {
        let d = body.decision;
        Self {
            arguments_hash: d.arguments_hash,
            approval_status: None,
            approval_by: None,
            approval_at: None,
            id: d.id,
            agent: d.agent,
            upstream: d.upstream,
            tool: d.tool,
            outcome: d.outcome,
            reasons_text: d.reasons.join("; "),
            reasons: d.reasons,
            policy_version: d.policy_version,
            policy_hash: d.policy_hash,
            leaf_hash: d.leaf_hash,
            decided_at_ms: d.decided_at_ms,
            received_at,
            signature: body.signature,
        }
    }

    /// The row with its approval's state.
    pub fn with_approval(mut self, status: String, by: Option<String>, at: Option<u64>) -> Self {
        self.approval_status = Some(status);
        self.approval_by = by;
        self.approval_at = at;
        self
    }
}

/// A row of `GET /v1/decisions`: a wallet's co-sign decision or an agent's tool decision,
/// tagged by `kind` (`payment` or `tool`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DecisionItem {
    /// A co-sign decision about a payment.
    Payment(crate::compliance::DecisionView),
    /// A tool-policy decision about a tool call.
    Tool(ToolDecisionView),
}

/// `GET /v1/tool-decisions/{id}/approval`: the state of a held tool call (the gateway polls it
/// while the call waits). Anyone holding the id may read it, so it says only the state, the
/// arguments hash the approval binds to and when it expires: who decided, and when, is for
/// the authenticated listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ToolApproval {
    /// The decision's id.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub id: B256,
    /// pending, approved, denied or expired.
    pub status: String,
    /// The hash of the arguments the call was held with: an approval approves only these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chaperone_core::openapi::Hex32>))]
    pub arguments_hash: Option<B256>,
    /// When a pending approval expires (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

/// The body of `POST /v1/admin/tool-approvals/{id}/approve`: the arguments hash the approver
/// was shown, so an approval approves exactly the call it was shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ToolVerdictBody {
    /// The held call's `arguments_hash`.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub arguments_hash: B256,
}

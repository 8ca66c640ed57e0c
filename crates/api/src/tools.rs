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

/// The most bytes of a held call's arguments (their compact JSON) an approver is shown: past
/// it, the first bytes are shown and marked cut, and the hash still binds the whole.
pub const MAX_SHOWN_ARGUMENTS_LEN: usize = 64 * 1024;

/// The hash a held call's approval binds to. Arguments whose compact JSON (exactly as the
/// gateway forwards it) fits [`MAX_SHOWN_ARGUMENTS_LEN`]: keccak-256 of a domain tag and that
/// JSON. Longer ones: of another tag, the length, the part an approver is shown and the
/// keccak-256 of the rest (see [`HeldArguments`]), so the server can check that what it shows
/// is the start of what the hash binds.
pub fn arguments_hash(arguments: &serde_json::Map<String, serde_json::Value>) -> B256 {
    HeldArguments::of(arguments).hash()
}

/// A held call's arguments as the gateway sends them for the approver (beside the signed
/// decision, which binds them by its `arguments_hash`). Raw content: sent only for a held
/// call, kept by the server only while the approval is pending, never listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct HeldArguments {
    /// The arguments' compact JSON as forwarded, or (when `rest_hash` is set) its first bytes,
    /// at most [`MAX_SHOWN_ARGUMENTS_LEN`], cut on a character boundary.
    pub json: String,
    /// The length of the whole JSON (bytes).
    pub total_bytes: u64,
    /// Set when `json` is cut: the keccak-256 of the bytes not shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chaperone_core::openapi::Hex32>))]
    pub rest_hash: Option<B256>,
    /// The call also carries the agent's answers to the tool's input requests or a request
    /// state (2026 protocol), which are forwarded with the arguments and so bound with them:
    /// `json` is then `{"arguments": …, "inputResponses": …, "requestState": …}`, hashed
    /// under its own tag (no arguments can pass for it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub with_inputs: bool,
}

impl HeldArguments {
    /// The view of `arguments` an approver is shown.
    pub fn of(arguments: &serde_json::Map<String, serde_json::Value>) -> Self {
        Self::of_json(serde_json::to_string(arguments).unwrap_or_default(), false)
    }

    /// The view of a call's `arguments` and, when it has them, its `inputResponses` and
    /// `requestState`: everything the gateway forwards that the tool acts on.
    pub fn of_call(
        arguments: &serde_json::Map<String, serde_json::Value>,
        input_responses: Option<serde_json::Value>,
        request_state: Option<&str>,
    ) -> Self {
        if input_responses.is_none() && request_state.is_none() {
            return Self::of(arguments);
        }
        let mut call = serde_json::Map::new();
        call.insert("arguments".into(), arguments.clone().into());
        if let Some(responses) = input_responses {
            call.insert("inputResponses".into(), responses);
        }
        if let Some(state) = request_state {
            call.insert("requestState".into(), state.into());
        }
        Self::of_json(serde_json::to_string(&call).unwrap_or_default(), true)
    }

    fn of_json(json: String, with_inputs: bool) -> Self {
        let total_bytes = json.len() as u64;
        if json.len() <= MAX_SHOWN_ARGUMENTS_LEN {
            return Self {
                json,
                total_bytes,
                rest_hash: None,
                with_inputs,
            };
        }
        let mut cut = MAX_SHOWN_ARGUMENTS_LEN;
        while !json.is_char_boundary(cut) {
            cut -= 1;
        }
        let rest_hash = Some(keccak256(&json.as_bytes()[cut..]));
        let mut json = json;
        json.truncate(cut);
        Self {
            json,
            total_bytes,
            rest_hash,
            with_inputs,
        }
    }

    /// Whether the view is cut (the approver sees the first bytes only).
    pub fn is_cut(&self) -> bool {
        self.rest_hash.is_some()
    }

    /// The [`arguments_hash`] of the arguments this view shows (whole or cut): the server
    /// compares it with the signed decision's.
    pub fn hash(&self) -> B256 {
        let (whole, cut): (&[u8], &[u8]) = if self.with_inputs {
            (b"chaperone tool call v1 ", b"chaperone tool call v2 ")
        } else {
            (
                b"chaperone tool arguments v1 ",
                b"chaperone tool arguments v2 ",
            )
        };
        match self.rest_hash {
            None => keccak256([whole, self.json.as_bytes()].concat()),
            Some(rest) => keccak256(
                [
                    cut,
                    &self.total_bytes.to_be_bytes(),
                    &(self.json.len() as u64).to_be_bytes(),
                    self.json.as_bytes(),
                    rest.as_slice(),
                ]
                .concat(),
            ),
        }
    }

    /// Whether the view is consistent in itself: a whole one is as long as it says and fits
    /// the cap; a cut one fits the cap and is shorter than the whole.
    pub fn is_well_formed(&self) -> bool {
        let len = self.json.len() as u64;
        len <= MAX_SHOWN_ARGUMENTS_LEN as u64
            && match self.rest_hash {
                None => len == self.total_bytes,
                Some(_) => len < self.total_bytes,
            }
    }
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
    /// For `approval_required` only (and required then): the arguments the call is held with,
    /// for the approver to read. Not signed: the decision's `arguments_hash` binds them, and
    /// the server refuses a view that does not hash to it. Kept only while the approval is
    /// pending; never in a listing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<HeldArguments>,
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
    /// For a held call: pending, approved, denied, withdrawn or expired.
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
/// while the call waits). Anyone holding the id may read it, so it says only the state and
/// when it expires: who decided, and when, and the arguments hash (unsalted: low-entropy
/// arguments could be guessed from it) are for authenticated readers (the listing, and the
/// answer to a verdict).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ToolApproval {
    /// The decision's id.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub id: B256,
    /// pending, approved, denied, withdrawn (by the agent) or expired.
    pub status: String,
    /// The hash of the arguments the call was held with (an approval approves only these):
    /// in the answer to a verdict, not in the open state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chaperone_core::openapi::Hex32>))]
    pub arguments_hash: Option<B256>,
    /// When a pending approval expires (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

/// A held call waiting for a human, as `GET /v1/admin/tool-approvals` gives it to approvers:
/// its decision and the arguments the approver reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PendingToolApproval {
    /// The held decision, with its approval's state and expiry.
    pub decision: ToolDecisionView,
    /// What the call will forward (absent only if the server no longer has it).
    pub arguments: Option<HeldArguments>,
}

/// The answer to `GET /v1/admin/tool-approvals`: the oldest pending held calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PendingToolApprovals {
    /// At most 100, the oldest first.
    pub items: Vec<PendingToolApproval>,
    /// How many are pending in all.
    pub pending: u64,
}

/// The body of `POST /v1/tool-decisions/{id}/withdraw`: the agent's signature over
/// [`withdrawal_message`]. The gateway withdraws a held call the agent cancelled, so that no
/// approver approves a call that will not run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ToolWithdrawalBody {
    /// The agent's EIP-191 signature (the agent that reported the held call).
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::SignatureJson))]
    pub signature: Signature,
}

/// The EIP-191 message an agent signs to withdraw its held call `id`.
pub fn withdrawal_message(id: B256) -> Vec<u8> {
    format!("chaperone tool approval withdrawal v1 {id}").into_bytes()
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::{Map, Value, json};

    use super::*;

    fn object(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn short_arguments_are_shown_whole_and_hash_as_before() {
        let arguments = object(json!({ "a": 2, "b": 3 }));
        let shown = HeldArguments::of(&arguments);
        assert!(!shown.is_cut() && shown.is_well_formed());
        assert_eq!(shown.json, r#"{"a":2,"b":3}"#);
        assert_eq!(
            shown.hash(),
            keccak256(br#"chaperone tool arguments v1 {"a":2,"b":3}"#)
        );
    }

    #[test]
    fn a_cut_view_shows_the_start_and_binds_the_whole() {
        // Two-byte characters, so the cap falls inside one: the cut moves back to a boundary.
        let long = |tail: &str| object(json!({ "memo": "é".repeat(40_000), "tail": tail }));
        let shown = HeldArguments::of(&long("one"));
        assert!(shown.is_cut() && shown.is_well_formed());
        assert!(shown.json.len() <= MAX_SHOWN_ARGUMENTS_LEN);
        assert!(shown.json.len() > MAX_SHOWN_ARGUMENTS_LEN - 4);
        assert_eq!(
            shown.total_bytes,
            serde_json::to_string(&long("one")).unwrap().len() as u64
        );
        assert!(
            serde_json::to_string(&long("one"))
                .unwrap()
                .starts_with(&shown.json)
        );
        // The part not shown is bound: another tail is another hash, with the same view.
        let other = HeldArguments::of(&long("two"));
        assert_eq!(other.json, shown.json);
        assert_ne!(other.hash(), shown.hash());
        assert_eq!(arguments_hash(&long("one")), shown.hash());
        // A view claiming to be whole, or a cut one claiming a shorter whole, is malformed.
        let mut whole = shown.clone();
        whole.rest_hash = None;
        assert!(!whole.is_well_formed());
        let mut short = shown;
        short.total_bytes = short.json.len() as u64;
        assert!(!short.is_well_formed());
    }

    #[test]
    fn input_responses_and_request_state_are_bound_with_the_arguments() {
        let arguments = object(json!({ "a": 2 }));
        assert_eq!(
            HeldArguments::of_call(&arguments, None, None),
            HeldArguments::of(&arguments)
        );
        let answered = HeldArguments::of_call(&arguments, Some(json!({ "q": "yes" })), None);
        let other = HeldArguments::of_call(&arguments, Some(json!({ "q": "no" })), None);
        let stated = HeldArguments::of_call(&arguments, None, Some("s1"));
        assert!(answered.with_inputs && answered.json.contains("inputResponses"));
        assert_ne!(answered.hash(), other.hash());
        assert_ne!(stated.hash(), HeldArguments::of(&arguments).hash());
        // Arguments shaped like a call with inputs do not hash as one.
        let lookalike = object(serde_json::from_str(&answered.json).unwrap());
        assert_eq!(HeldArguments::of(&lookalike).json, answered.json);
        assert_ne!(HeldArguments::of(&lookalike).hash(), answered.hash());
    }
}

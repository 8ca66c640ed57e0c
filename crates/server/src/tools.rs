//! Tool-policy decisions of the MCP gateway: `POST /v1/tool-decisions` (the agent reports a
//! decision, signed by its record key, as it signs its batches) and `GET /v1/tool-decisions`
//! (auditors and admins list them, filtered by tool, upstream, agent, outcome and time; the
//! same rows are `kind=tool` of `GET /v1/decisions`, see `compliance`).
//!
//! Held calls (`approval_required`): the gateway waits for a human's verdict
//! (`/v1/admin/tool-approvals/…`, the console's inbox). A held call names the hash of its
//! arguments, which the approver is shown and approves; it expires after its rule's timeout
//! (at most [`MAX_APPROVAL_TIMEOUT_SECS`]); one agent has at most
//! [`MAX_PENDING_TOOL_APPROVALS`] waiting.

use axum::{
    Json,
    extract::{DefaultBodyLimit, Path, Query, State, rejection::QueryRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chaperone_api::{
    ErrorCode,
    tools::{
        DEFAULT_APPROVAL_TIMEOUT_SECS, HeldArguments, MAX_APPROVAL_TIMEOUT_SECS,
        MAX_PENDING_TOOL_APPROVALS, MAX_SHOWN_ARGUMENTS_LEN, MAX_TOOL_NAME_LEN,
        MAX_TOOL_REASON_LEN, MAX_TOOL_REASONS, PendingToolApproval, PendingToolApprovals,
        ToolApproval, ToolDecisionBody, ToolDecisionStored, ToolDecisionView, ToolOutcome,
        ToolVerdictBody, ToolWithdrawalBody, withdrawal_message,
    },
};
use chaperone_core::{Address, B256, recover_low_s};
use chaperone_store::{NewToolDecision, ToolDecisionFilter, ToolDecisionStore, ToolVerdict};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    http::{ApiError, ApiJson, Caller},
    openapi::error_answers,
    paging::{Paging, Params, invalid, next_cursor, page, row},
};

/// The largest `POST /v1/tool-decisions` body: a held call carries its arguments (at most
/// [`MAX_SHOWN_ARGUMENTS_LEN`] bytes of JSON, up to twice that once quoted in a string) beside
/// the decision and its reasons.
pub(crate) const MAX_TOOL_DECISION_BODY_BYTES: usize = 256 * 1024;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    let reports = OpenApiRouter::new()
        .routes(routes!(report))
        .layer(DefaultBodyLimit::max(MAX_TOOL_DECISION_BODY_BYTES));
    OpenApiRouter::new()
        .merge(reports)
        .routes(routes!(list))
        .routes(routes!(approval))
        .routes(routes!(withdraw))
        .routes(routes!(pending))
        .routes(routes!(resolve))
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, message)
}

/// Checks what the types do not: lengths, and no control characters in names (a NUL is
/// refused by PostgreSQL, the others are nobody's tool name).
fn check(body: &ToolDecisionBody) -> Result<(), ApiError> {
    let d = &body.decision;
    for (field, value) in [
        ("upstream", &d.upstream),
        ("tool", &d.tool),
        ("policy_hash", &d.policy_hash),
    ] {
        if value.len() > MAX_TOOL_NAME_LEN {
            return Err(bad(format!(
                "decision.{field} is longer than {MAX_TOOL_NAME_LEN} bytes"
            )));
        }
        if value.chars().any(char::is_control) {
            return Err(bad(format!("decision.{field} holds a control character")));
        }
    }
    if d.tool.is_empty() {
        return Err(bad("decision.tool is empty"));
    }
    // What an approver approves: without it, an approval would approve any arguments.
    if d.outcome == ToolOutcome::ApprovalRequired && d.arguments_hash.is_none() {
        return Err(bad(
            "decision.arguments_hash is required for approval_required: an approval approves \
             the arguments the call is held with",
        ));
    }
    check_arguments(body)?;
    if d.reasons.len() > MAX_TOOL_REASONS {
        return Err(bad(format!(
            "decision.reasons holds more than {MAX_TOOL_REASONS} reasons"
        )));
    }
    for (i, reason) in d.reasons.iter().enumerate() {
        if reason.len() > MAX_TOOL_REASON_LEN || reason.contains('\0') {
            return Err(bad(format!(
                "decision.reasons[{i}] is longer than {MAX_TOOL_REASON_LEN} bytes or holds a NUL"
            )));
        }
    }
    for (field, value) in [
        ("policy_version", d.policy_version),
        ("decided_at_ms", d.decided_at_ms),
    ] {
        if i64::try_from(value).is_err() {
            return Err(ApiError::new(
                ErrorCode::OutOfRange,
                format!("decision.{field} {value} is out of range: it must be below 2^63"),
            ));
        }
    }
    Ok(())
}

/// A held call carries the arguments its approver reads, and they must be the ones its signed
/// `arguments_hash` binds; any other decision carries none (raw content leaves the agent only
/// for a human to judge it).
fn check_arguments(body: &ToolDecisionBody) -> Result<(), ApiError> {
    let d = &body.decision;
    let Some(arguments) = &body.arguments else {
        return match d.outcome {
            ToolOutcome::ApprovalRequired => Err(bad(
                "arguments are required for approval_required: the approver reads what the call \
                 will do",
            )),
            ToolOutcome::Allowed | ToolOutcome::Denied => Ok(()),
        };
    };
    if d.outcome != ToolOutcome::ApprovalRequired {
        return Err(bad(format!(
            "arguments are sent only for approval_required, not for {}: raw content leaves the \
             agent only for a human to judge it",
            d.outcome.as_str()
        )));
    }
    if !arguments.is_well_formed() {
        return Err(bad(format!(
            "arguments: at most {MAX_SHOWN_ARGUMENTS_LEN} bytes are shown, total_bytes is the \
             whole JSON's length, and rest_hash is set exactly when the view is cut"
        )));
    }
    if arguments.json.contains('\0') {
        return Err(bad("arguments.json holds a NUL (compact JSON escapes it)"));
    }
    let shown = arguments.hash();
    if d.arguments_hash != Some(shown) {
        return Err(bad(format!(
            "arguments hash to {shown}, not to the decision's arguments_hash: the approver \
             would be shown another call than the one approved"
        )));
    }
    Ok(())
}

error_answers!(ReportErrors:
    InvalidRequest, OutOfRange, MalformedSignature, BadSignature, AgentNotRegistered,
    TooManyPendingApprovals);

/// Report a decision of the agent's tool policy (the MCP gateway does, for every tool call).
#[utoipa::path(
    post,
    path = "/v1/tool-decisions",
    description = "Signed by the agent's record key (EIP-191 over `chaperone tool decision v1 \
                   <keccak-256 of the decision's JSON>`); the agent must be registered. A held \
                   call (`approval_required`) names its `arguments_hash`; it expires after its \
                   `approval_timeout_seconds` (default 300, at most 3600); an agent with 20 \
                   unexpired held calls pending gets 429 `too_many_pending_approvals`. A held \
                   call (only) carries `arguments` for the approver, which must hash to its \
                   `arguments_hash`; they are kept only while the approval is pending and never \
                   listed. Bodies up to 256 KiB.",
    request_body = ToolDecisionBody,
    responses(
        (status = 201, description = "stored", body = ToolDecisionStored),
        (status = 200, description = "this exact decision was stored before", body = ToolDecisionStored),
        ReportErrors,
    )
)]
async fn report(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ToolDecisionBody>,
) -> Result<Response, ApiError> {
    check(&body)?;
    let d = &body.decision;
    let digest = alloy::primitives::eip191_hash_message(d.signing_message());
    let signer = recover_low_s(&body.signature, &digest)
        .map_err(|e| ApiError::new(ErrorCode::MalformedSignature, e.to_string()))?;
    // The agent named is the agent that signed: no key writes another agent's decisions.
    if signer != d.agent {
        return Err(ApiError::new(
            ErrorCode::BadSignature,
            format!(
                "the decision names agent {} but is signed by {signer}",
                d.agent
            ),
        ));
    }
    if !state.store().agent_registered(d.agent).await? {
        return Err(ApiError::new(
            ErrorCode::AgentNotRegistered,
            format!(
                "agent {} is not registered with this deployment: an admin registers it",
                d.agent
            ),
        ));
    }
    let now = state.now();
    let approval_expires_at = (d.outcome == ToolOutcome::ApprovalRequired).then(|| {
        let wait = d
            .approval_timeout_seconds
            .unwrap_or(DEFAULT_APPROVAL_TIMEOUT_SECS)
            .min(MAX_APPROVAL_TIMEOUT_SECS);
        now + wait
    });
    let reasons = serde_json::to_string(&d.reasons).unwrap_or_default();
    // The signed decision is kept for good; the arguments beside it only while pending.
    let arguments = body
        .arguments
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|_| ApiError::internal("encoding a held call's arguments"))?;
    let kept = ToolDecisionBody {
        decision: body.decision.clone(),
        signature: body.signature,
        arguments: None,
    };
    let stored_body =
        serde_json::to_string(&kept).map_err(|_| ApiError::internal("encoding a decision"))?;
    let new = NewToolDecision {
        id: d.id,
        agent: d.agent,
        upstream: &d.upstream,
        tool: &d.tool,
        outcome: d.outcome.as_str(),
        reasons,
        policy_version: d.policy_version,
        policy_hash: &d.policy_hash,
        leaf_hash: d.leaf_hash,
        decided_at_ms: d.decided_at_ms,
        body: stored_body,
        arguments_hash: d.arguments_hash,
        approval_expires_at,
        arguments,
    };
    let (status, replayed) = match state
        .store()
        .insert_tool_decision(&new, now, MAX_PENDING_TOOL_APPROVALS)
        .await?
    {
        ToolDecisionStore::Inserted => (StatusCode::CREATED, false),
        ToolDecisionStore::Replayed => (StatusCode::OK, true),
        ToolDecisionStore::Conflict => {
            return Err(bad(format!(
                "decision {} was stored before with other content: an id names one decision",
                d.id
            )));
        }
        ToolDecisionStore::TooManyPending => {
            return Err(ApiError::new(
                ErrorCode::TooManyPendingApprovals,
                format!(
                    "agent {} has {MAX_PENDING_TOOL_APPROVALS} tool calls waiting for a human: \
                     another is asked for when one is decided or expires",
                    d.agent
                ),
            ));
        }
    };
    Ok((status, Json(ToolDecisionStored { id: d.id, replayed })).into_response())
}

/// The filters of the tool decisions.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // declared for the document and the parser; `Params` reads the query
struct ToolDecisionFilters {
    /// One tool's (its name in its upstream).
    tool: Option<String>,
    /// One upstream's.
    upstream: Option<String>,
    /// One agent's.
    agent: Option<String>,
    /// allowed, denied or approval_required.
    outcome: Option<ToolOutcome>,
    /// Received at or after, Unix seconds.
    from: Option<u64>,
    /// Received before, Unix seconds.
    to: Option<u64>,
}

const COLUMNS: &[&str] = &[
    "id",
    "agent",
    "upstream",
    "tool",
    "outcome",
    "reasons",
    "reasons_text",
    "policy_version",
    "policy_hash",
    "leaf_hash",
    "decided_at_ms",
    "received_at",
    "signature",
];

error_answers!(ListErrors: InvalidQuery, OutOfRange);

/// Decisions of agents' tool policies (the MCP gateway's), oldest first.
#[utoipa::path(
    get,
    path = "/v1/tool-decisions",
    description = "Roles: auditor, admin.",
    security(("bearer" = [])),
    params(ToolDecisionFilters, Paging),
    responses(
        (status = 200, description = "a page of tool decisions", content(
            (chaperone_api::Page<ToolDecisionView> = "application/json"),
            (ToolDecisionView = "application/x-ndjson"),
            (String = "text/csv"),
        )),
        ListErrors,
    )
)]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(&["auditor", "admin"])?;
    let params = Params::parse::<ToolDecisionFilters>(query)?;
    let (filter, format) = filter_of(&params)?;
    let views = tool_decision_views(&state, &filter).await?;
    let next = next_cursor(
        views.len(),
        filter.limit,
        views.last().map(|v| format!("{}:{}", v.received_at, v.id)),
    );
    Ok(page(
        format,
        COLUMNS,
        views.into_iter().map(row).collect(),
        next,
    ))
}

pub(crate) fn filter_of(
    params: &Params,
) -> Result<(ToolDecisionFilter, chaperone_api::Format), ApiError> {
    let outcome = params
        .0
        .get("outcome")
        .map(|o| o.parse::<ToolOutcome>().map_err(invalid))
        .transpose()?;
    let after = params
        .cursor()
        .map(|c| {
            c.split_once(':')
                .and_then(|(at, id)| Some((at.parse().ok()?, id.parse::<B256>().ok()?)))
                .ok_or_else(|| invalid("`cursor` is not one this API gave"))
        })
        .transpose()?;
    let filter = ToolDecisionFilter {
        tool: params.0.get("tool").cloned(),
        upstream: params.0.get("upstream").cloned(),
        agent: params.get::<Address>("agent", "an address")?,
        outcome: outcome.map(|o| o.as_str().to_owned()),
        from: params.get("from", "a time in Unix seconds")?,
        to: params.get("to", "a time in Unix seconds")?,
        after,
        limit: params.limit()?,
        newest_first: false,
    };
    Ok((filter, params.format()?))
}

/// The decisions `filter` selects, as rows.
pub(crate) async fn tool_decision_views(
    state: &AppState,
    filter: &ToolDecisionFilter,
) -> Result<Vec<ToolDecisionView>, ApiError> {
    state
        .store()
        .tool_decisions(filter, state.now())
        .await?
        .into_iter()
        .map(view)
        .collect()
}

/// A stored decision as its row: the body as the agent signed it, and its approval.
pub(crate) fn view(
    stored: chaperone_store::StoredToolDecision,
) -> Result<ToolDecisionView, ApiError> {
    let body: ToolDecisionBody = serde_json::from_str(&stored.body)
        .map_err(|_| ApiError::internal("a stored tool decision does not parse"))?;
    let row = ToolDecisionView::new(body, stored.received_at);
    Ok(match stored.approval {
        None => row,
        Some(a) => {
            let at = if a.status == "pending" || a.status == "expired" {
                a.expires_at
            } else {
                a.at
            };
            row.with_approval(a.status, a.by, at)
        }
    })
}

fn decision_id(text: &str) -> Result<B256, ApiError> {
    text.parse().map_err(|_| {
        bad(format!(
            "`{text}` is not a decision id (0x and 64 hex digits)"
        ))
    })
}

/// The state of approval `id`; `with_hash` for an authenticated caller (the open state leaves
/// out the arguments hash: unsalted, it would let anyone holding the id test guesses of
/// low-entropy arguments).
async fn approval_of(
    state: &AppState,
    id: B256,
    with_hash: bool,
) -> Result<ToolApproval, ApiError> {
    let approval = state
        .store()
        .tool_approval(id, state.now())
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::NoPendingApproval,
                format!("no tool call waiting for a human has id {id}"),
            )
        })?;
    Ok(ToolApproval {
        id,
        status: approval.status,
        arguments_hash: approval.arguments_hash.filter(|_| with_hash),
        expires_at: approval.expires_at,
    })
}

error_answers!(ApprovalErrors: InvalidRequest, NoPendingApproval);
error_answers!(VerdictErrors:
    InvalidRequest, InvalidJson, InvalidBody, NoPendingApproval, ArgumentsMismatch);

/// The state of a tool call waiting for approval (the gateway polls it). Open like a record's
/// proof, to whoever holds the id the gateway chose: it says only pending, approved, denied or
/// expired and the expiry; who decided, and the arguments hash, are for the authenticated
/// listing.
#[utoipa::path(
    get,
    path = "/v1/tool-decisions/{id}/approval",
    params(("id" = chaperone_core::openapi::Hex32, Path, description = "the decision's id")),
    responses(
        (status = 200, description = "pending, approved, denied or expired", body = ToolApproval),
        ApprovalErrors,
    )
)]
async fn approval(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ToolApproval>, ApiError> {
    Ok(Json(approval_of(&state, decision_id(&id)?, false).await?))
}

/// The most held calls `GET /v1/admin/tool-approvals` returns (the console's inbox shows as
/// many).
const MAX_PENDING_LISTED: u32 = 100;

/// Tool calls waiting for a human, with the arguments each would forward (the console's inbox,
/// for an approver using the API). Raw content: for approvers and admins, not auditors.
#[utoipa::path(
    get,
    path = "/v1/admin/tool-approvals",
    description = "Roles: admin, approver. The oldest 100 pending, unexpired held calls.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "pending held calls", body = PendingToolApprovals),
    )
)]
async fn pending(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<PendingToolApprovals>, ApiError> {
    caller.require(&["admin", "approver"])?;
    let (held, pending) = state
        .store()
        .pending_tool_approvals(state.now(), MAX_PENDING_LISTED)
        .await?;
    let items = held
        .into_iter()
        .map(|mut stored| {
            let arguments = stored
                .arguments
                .take()
                .and_then(|a| serde_json::from_str::<HeldArguments>(&a).ok());
            Ok(PendingToolApproval {
                decision: view(stored)?,
                arguments,
            })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(Json(PendingToolApprovals { items, pending }))
}

error_answers!(WithdrawErrors:
    InvalidRequest, InvalidJson, MalformedSignature, BadSignature, NoPendingApproval);

/// The agent withdraws its held call (it cancelled the call): a call that will not run must
/// not be approved.
#[utoipa::path(
    post,
    path = "/v1/tool-decisions/{id}/withdraw",
    description = "Signed by the agent that reported the held call (EIP-191 over `chaperone \
                   tool approval withdrawal v1 <id>`). A pending approval becomes `withdrawn`: \
                   it takes no verdict and its arguments are cleared.",
    params(("id" = chaperone_core::openapi::Hex32, Path, description = "the decision's id")),
    request_body = ToolWithdrawalBody,
    responses(
        (status = 200, description = "withdrawn", body = ToolApproval),
        WithdrawErrors,
    )
)]
async fn withdraw(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ToolWithdrawalBody>,
) -> Result<Json<ToolApproval>, ApiError> {
    let id = decision_id(&id)?;
    let not_pending = || {
        ApiError::new(
            ErrorCode::NoPendingApproval,
            format!("no tool call waiting for a human has id {id}"),
        )
    };
    let agent = state
        .store()
        .tool_approval_agent(id)
        .await?
        .ok_or_else(not_pending)?;
    let digest = alloy::primitives::eip191_hash_message(withdrawal_message(id));
    let signer = recover_low_s(&body.signature, &digest)
        .map_err(|e| ApiError::new(ErrorCode::MalformedSignature, e.to_string()))?;
    // Only the agent that asked may withdraw: another agent's key is refused.
    if signer != agent {
        return Err(ApiError::new(
            ErrorCode::BadSignature,
            format!("held call {id} is agent {agent}'s, but the withdrawal is signed by {signer}"),
        ));
    }
    if !state
        .store()
        .withdraw_tool_approval(id, state.now())
        .await?
    {
        return Err(not_pending());
    }
    Ok(Json(approval_of(&state, id, true).await?))
}

/// Approve or deny a tool call waiting for a human. An approver's or admin's token: the
/// agent's key gives no verdict on its own calls. An approval names the arguments hash the
/// approver was shown: it approves only the call held with those arguments.
#[utoipa::path(
    post,
    path = "/v1/admin/tool-approvals/{id}/{verdict}",
    description = "Roles: admin, approver. `approve` takes `{\"arguments_hash\": …}` (the held \
                   call's, as listed); `deny` takes no body.",
    security(("bearer" = [])),
    params(
        ("id" = chaperone_core::openapi::Hex32, Path, description = "the decision's id"),
        ("verdict" = String, Path, description = "approve or deny"),
    ),
    request_body(content = Option<ToolVerdictBody>, description = "for approve: the arguments hash shown"),
    responses(
        (status = 200, description = "resolved", body = ToolApproval),
        VerdictErrors,
    )
)]
async fn resolve(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, verdict)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<ToolApproval>, ApiError> {
    caller.require(&["admin", "approver"])?;
    let id = decision_id(&id)?;
    let approval_of_hash = match verdict.as_str() {
        "approve" => Some(verdict_hash(&body)?),
        "deny" => None,
        _ => return Err(ApiError::not_found("use /approve or /deny")),
    };
    give_verdict(&state, id, approval_of_hash, &caller.name).await?;
    Ok(Json(approval_of(&state, id, true).await?))
}

/// The arguments hash an approval names (its JSON body).
fn verdict_hash(body: &[u8]) -> Result<B256, ApiError> {
    if body.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "an approval names the arguments hash it approves: {\"arguments_hash\": \"0x…\"}",
        ));
    }
    serde_json::from_slice::<ToolVerdictBody>(body)
        .map(|v| v.arguments_hash)
        .map_err(|e| ApiError::new(ErrorCode::InvalidBody, format!("the approval's body: {e}")))
}

/// Gives a verdict (the API's and the console's): `approval_of` is the arguments hash an
/// approval names, `None` a denial.
pub(crate) async fn give_verdict(
    state: &AppState,
    id: B256,
    approval_of: Option<B256>,
    by: &str,
) -> Result<(), ApiError> {
    match state
        .store()
        .resolve_tool_approval(id, approval_of, by, state.now())
        .await?
    {
        ToolVerdict::Given => Ok(()),
        ToolVerdict::NotPending => Err(ApiError::new(
            ErrorCode::NoPendingApproval,
            format!(
                "no tool call is waiting for a human with id {id} (decided, expired or never held)"
            ),
        )),
        ToolVerdict::ArgumentsMismatch => Err(ApiError::new(
            ErrorCode::ArgumentsMismatch,
            format!(
                "tool call {id} is held with other arguments than the hash this approval names: \
                 nothing was approved"
            ),
        )),
    }
}

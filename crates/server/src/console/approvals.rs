//! The approvals inbox: pending requests with what they move and why a human is asked;
//! approve or deny with a comment, recorded with the approver's name. A request that needs a
//! quorum shows who has approved so far and how many more are needed; after each verdict the
//! inbox confirms what became of it. A request whose agent gave up (its `validUntil` passed)
//! or whose approval expired leaves the inbox.

use std::collections::HashMap;

use axum::{
    Form, Router,
    extract::{Path, Query, State},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use chaperone_api::{ErrorCode, tools::HeldArguments};
use chaperone_core::{B256, policy::Effect};
use maud::{Markup, html};
use serde::Deserialize;

use super::{PageError, Session, page, reason_line, short, when};
use crate::{
    AppState,
    http::{ApiError, vote},
    words::{reason_tokens, shown_escaped, units_of},
};

/// Who issued each token name (its latest token's issuer; `None`: the configuration).
async fn issuers(state: &AppState) -> Result<HashMap<String, Option<String>>, PageError> {
    let mut by_name = HashMap::new();
    // Oldest first: a name's latest token wins.
    for token in state.store().api_tokens().await? {
        by_name.insert(token.name, token.created_by);
    }
    Ok(by_name)
}

/// The chain of issuers behind a token `admin` issued, back to a token of the configuration
/// (fourth red-team review of issue 29, C): who ultimately stands behind a vote.
fn issuer_chain(admin: &str, issuers: &HashMap<String, Option<String>>) -> Markup {
    const DEPTH: usize = 8;
    let mut names = vec![admin.to_owned()];
    let mut configured = false;
    let mut current = admin.to_owned();
    while names.len() <= DEPTH {
        match issuers.get(&current) {
            Some(Some(next)) if !names.contains(next) => {
                names.push(next.clone());
                current = next.clone();
            }
            Some(None) => {
                configured = true;
                break;
            }
            _ => break,
        }
    }
    html! {
        @for (i, name) in names.iter().enumerate() {
            @if i > 0 { ", issued by " }
            span.approver { (name) }
        }
        ", issued by "
        @if configured { em.configured { "the configuration" } } @else { em.unknown { "an issuer not found" } }
    }
}

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/approvals", get(inbox))
        .route("/approvals/{request_id}", post(resolve))
        .route("/approvals/tools/{id}", post(resolve_tool))
}

const ROLES: &[&str] = &["admin", "approver"];

/// A held call's arguments as the approver reads them: pretty-printed JSON in a `<pre>`
/// (escaped by maud: an argument is the agent's data, never markup), or, when cut, the start
/// of the JSON as sent and how much is not shown.
fn arguments_shown(stored: Option<&str>) -> Markup {
    let Some(arguments) = stored.and_then(|s| serde_json::from_str::<HeldArguments>(s).ok()) else {
        return html! { p.arguments-missing { "The arguments are not available: deny unless you know what this call does." } };
    };
    let inputs = html! {
        @if arguments.with_inputs {
            p.arguments-inputs {
                "With the agent's answers to the tool's input requests (" code { "inputResponses" }
                ") and/or its " code { "requestState" } ": all are forwarded, all are approved."
            }
        }
    };
    if arguments.is_cut() {
        return html! {
            (inputs)
            p.arguments-cut role="alert" {
                strong { "Cut: " }
                "only the first " (grouped(arguments.json.len() as u64)) " of "
                (grouped(arguments.total_bytes)) " bytes are shown. The approval binds all of them, "
                "including the part nobody here can read: deny unless this start is enough to judge the call."
            }
            pre.arguments { (shown_escaped(&arguments.json)) "…" }
        };
    }
    html! { (inputs) pre.arguments { (laid_out(&shown_escaped(&arguments.json))) } }
}

/// Deepest level the layout indents: deeper members stay at this indent (red team i30c #1:
/// two spaces a level at every `,` let 64 KiB nested 120 deep become megabytes of HTML).
const MAX_INDENT_DEPTH: usize = 8;

/// Bytes the layout may add to the JSON as sent; past it the approver reads the compact JSON.
const MAX_LAYOUT_EXTRA: usize = 4 * 1024;

/// The JSON laid out by [`indented`] when that stays within twice its size plus
/// [`MAX_LAYOUT_EXTRA`], else the compact JSON as sent: one held call's HTML stays bounded by
/// its (capped) arguments, whatever their shape.
fn laid_out(json: &str) -> String {
    let limit = json
        .len()
        .saturating_mul(2)
        .saturating_add(MAX_LAYOUT_EXTRA);
    indented(json, limit).unwrap_or_else(|| json.to_owned())
}

/// Compact JSON laid out one member a line, two spaces a level (at most
/// [`MAX_INDENT_DEPTH`] levels), or `None` once the layout would pass `limit` bytes.
/// Re-indented as text, not parsed and printed again: the approver reads the very keys, order
/// and numbers sent (a parser would round a large number, or keep one of two equal keys).
fn indented(json: &str, limit: usize) -> Option<String> {
    let mut out = String::with_capacity(json.len() * 2);
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let mut chars = json.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n("  ", depth.min(MAX_INDENT_DEPTH)));
    };
    while let Some(c) = chars.next() {
        if out.len() > limit {
            return None;
        }
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                if chars.peek().is_some_and(|n| *n != '}' && *n != ']') {
                    depth += 1;
                    newline(&mut out, depth);
                } else if let Some(close) = chars.next() {
                    out.push(close);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            _ => out.push(c),
        }
    }
    (out.len() <= limit).then_some(out)
}

/// `1234567` as `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Requests the inbox shows at once, the oldest first: a flood of requests (an agent looping
/// on payments above the threshold) must not make the page, or its queries, unbounded.
const MAX_SHOWN: u32 = 100;

/// Bytes of held calls' arguments (as HTML) one inbox view shows at most.
const MAX_ARGUMENTS_PAGE_BYTES: usize = 4 * 1024 * 1024;

/// Time left before an approval expires, to the minute.
fn time_left(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s} s"),
        s if s < 3_600 => format!("{} min", s / 60),
        s => format!("{} h {} min", s / 3_600, s / 60 % 60),
    }
}

/// The inbox after a verdict: `done` names the request just voted on.
#[derive(Deserialize)]
struct InboxQuery {
    done: Option<String>,
}

/// What became of the request just voted on, read back from the store (never from the URL,
/// which anyone can write).
async fn confirmation(
    state: &AppState,
    done: Option<&str>,
) -> Result<Option<(B256, String)>, PageError> {
    let Some(id) = done.and_then(|d| d.parse::<B256>().ok()) else {
        return Ok(None);
    };
    let verdicts = state.store().verdicts(&[id]).await?;
    let votes = state.store().votes(&[id]).await?;
    let Some(verdict) = verdicts.get(&id) else {
        return Ok(None);
    };
    let (required, cast) = votes.get(&id).cloned().unwrap_or((1, Vec::new()));
    let approvers = cast.iter().filter(|v| v.approve).count();
    let text = match verdict.status.as_str() {
        "approved" => format!(
            "Approved by {}: the agent's next ask is co-signed.",
            verdict.decided_by.as_deref().unwrap_or("?")
        ),
        "denied" => format!(
            "Denied by {}: the agent is told no.",
            verdict.decided_by.as_deref().unwrap_or("?")
        ),
        _ => format!(
            "Your approval is recorded: {approvers} of {required} approvers so far, {} more needed.",
            (required as usize).saturating_sub(approvers)
        ),
    };
    Ok(Some((id, text)))
}

async fn inbox(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<InboxQuery>,
) -> Result<Response, PageError> {
    session.require(ROLES)?;
    let now = state.now();
    let done = confirmation(&state, query.done.as_deref()).await?;
    let pending = state
        .store()
        .pending_approval_details(now, MAX_SHOWN)
        .await?;
    let waiting = if pending.len() == MAX_SHOWN as usize {
        state.store().pending_approval_count(now).await?
    } else {
        pending.len() as u64
    };
    let ids: Vec<B256> = pending.iter().map(|p| p.request_id).collect();
    let votes = state.store().votes(&ids).await?;
    let issuers = issuers(&state).await?;
    let mut rows = Vec::new();
    for request in &pending {
        // What the recorded request moves, as the policy counts it.
        let effects = serde_json::from_str::<chaperone_api::CosignRequest>(&request.request)
            .map(|r| r.payment.effects())
            .unwrap_or_default();
        let spends: Vec<_> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::Spend {
                    token,
                    amount,
                    recipient,
                } => Some((*token, *amount, *recipient)),
                Effect::OpaqueCall { .. } => None,
            })
            .collect();
        let mut tokens = reason_tokens(&request.reasons);
        tokens.extend(spends.iter().map(|(token, _, _)| *token));
        let units = units_of(&state, tokens).await;
        rows.push((request, spends, units));
    }
    // Tool calls an agent's MCP gateway holds until a human decides (names and reasons are the
    // agent's and its upstreams': maud escapes them). Expired ones are gone: the gateway has
    // stopped waiting.
    let (held, tools_waiting) = state.store().pending_tool_approvals(now, MAX_SHOWN).await?;
    // The oldest first, until their arguments fill the page's budget: the rest wait for the
    // next view, counted in the overflow line (red team i30c #1).
    let mut shown_bytes = 0usize;
    let tools: Vec<(chaperone_api::tools::ToolDecisionView, Markup)> = held
        .into_iter()
        .map_while(|mut stored| {
            let arguments = arguments_shown(stored.arguments.take().as_deref());
            shown_bytes += arguments.0.len();
            (shown_bytes <= MAX_ARGUMENTS_PAGE_BYTES || shown_bytes == arguments.0.len())
                .then_some((stored, arguments))
        })
        .filter_map(|(stored, arguments)| Some((crate::tools::view(stored).ok()?, arguments)))
        .collect();
    Ok(page(
        "Approvals",
        &session,
        html! {
            @for (tool, arguments) in &tools {
                section.approval.tool id=(format!("tool-{}", tool.id)) {
                    h2 { "Tool call " code { (shown_escaped(&tool.upstream)) "/" (shown_escaped(&tool.tool)) } }
                    p { "Agent " code { (tool.agent) } " · waiting since " (super::when(tool.received_at))
                        " · tool policy v" (tool.policy_version) " · decision " code { (short(&tool.id)) } }
                    h3 { "Arguments" }
                    (arguments)
                    @if !tool.reasons.is_empty() {
                        // The gateway's words, quoting names the agent chose: not the server's.
                        h3 { "Reasons " small { "(the agent's own words, as its gateway reported them)" } }
                        blockquote.agent-words { @for reason in &tool.reasons { div.reason { (shown_escaped(reason)) } } }
                    }
                    dl {
                        dt { "Arguments hash" }
                        dd.arguments { code { (tool.arguments_hash.map(|h| h.to_string()).unwrap_or_default()) } }
                        @if let Some(expires) = tool.approval_at {
                            dt { "Expires" }
                            dd { (when(expires)) " (" (time_left(expires.saturating_sub(now))) " left)" }
                        }
                    }
                    form.verdict method="post" action=(format!("/approvals/tools/{}", tool.id)) {
                        (session.csrf_field())
                        // The approval approves the arguments shown here, nothing else.
                        input type="hidden" name="arguments_hash" value=(tool.arguments_hash.map(|h| h.to_string()).unwrap_or_default());
                        button type="submit" name="verdict" value="approve" class="approve" { "Approve" }
                        button type="submit" name="verdict" value="deny" class="deny" { "Deny" }
                    }
                }
            }
            @if let Some((id, text)) = &done {
                p.confirmation role="status" { (text) " " small { "Request " (short(id)) } }
            }
            p.exports { "Export: " a href="/v1/admin/approvals?format=csv" { "CSV" } " · " a href="/v1/admin/approvals?format=jsonl" { "JSON Lines" } }
            @if pending.is_empty() && tools.is_empty() {
                p.empty { "Nothing is waiting for a human." }
            }
            @if tools_waiting > tools.len() as u64 {
                p.overflow role="status" {
                    (tools_waiting) " tool calls are waiting; the oldest " (tools.len()) " are shown."
                }
            }
            @if waiting > pending.len() as u64 {
                p.overflow role="status" {
                    (waiting) " requests are waiting; the oldest " (pending.len()) " are shown. "
                    "Each verdict makes room for the next."
                }
            }
            @for (request, spends, units) in &rows {
                section.approval id=(format!("request-{}", request.request_id)) {
                    h2 { "Request " code { (request.request_id) } }
                    dl {
                        dt { "Wallet" } dd { (short(&request.wallet)) }
                        @for (token, amount, recipient) in spends {
                            dt { "Pays" }
                            dd.amount {
                                (units.get(token).map_or_else(|| amount.to_string(), |u| u.format(*amount)))
                                " to " (short(recipient))
                                small { " (" (amount) " base units of " (token) ")" }
                            }
                        }
                        dt { "Why a human" }
                        dd { @for reason in &request.reasons { div.reason { (reason_line(reason, units)) } } }
                        dt { "Asked" } dd { (when(request.created_at)) }
                        dt { "Expires" }
                        dd { (when(request.expires_at)) " (" (time_left(request.expires_at.saturating_sub(now))) " left)" }
                        @let (required, cast) = votes.get(&request.request_id).cloned().unwrap_or((1, Vec::new()));
                        @if required > 1 || !cast.is_empty() {
                            dt { "Approvers" }
                            dd.quorum {
                                @let approved: Vec<_> = cast.iter().filter(|v| v.approve).collect();
                                (approved.len()) " of " (required) " approved"
                                @if !approved.is_empty() {
                                    " (" @for (i, vote) in approved.iter().enumerate() {
                                        @if i > 0 { ", " } span.approver { (vote.approver) }
                                        // Who stands behind each voter (red team rt29 F8).
                                        small.issuer {
                                            " (token issued by "
                                            @match &vote.issued_by {
                                                Some(admin) => (issuer_chain(admin, &issuers)),
                                                // Markup no name can produce (names are
                                                // escaped text, and reserved: fourth review C).
                                                None => em.configured { "the configuration" },
                                            }
                                            ")"
                                        }
                                    } ")"
                                }
                                "; " (required as usize - approved.len().min(required as usize)) " more needed"
                                @if cast.iter().any(|v| v.approver == session.name) {
                                    " · you have voted"
                                }
                            }
                        }
                    }
                    form.verdict method="post" action=(format!("/approvals/{}", request.request_id)) {
                        (session.csrf_field())
                        label { "Comment " input type="text" name="comment" maxlength="500" placeholder="why (recorded with your verdict)"; }
                        button type="submit" name="verdict" value="approve" class="approve" { "Approve" }
                        button type="submit" name="verdict" value="deny" class="deny" { "Deny" }
                    }
                }
            }
        },
    ))
}

#[derive(Deserialize)]
struct VerdictForm {
    #[serde(default)]
    csrf: String,
    verdict: String,
    #[serde(default)]
    comment: String,
    /// A tool call's: the arguments hash the approver was shown.
    #[serde(default)]
    arguments_hash: String,
}

async fn resolve(
    State(state): State<AppState>,
    session: Session,
    Path(request_id): Path<String>,
    Form(form): Form<VerdictForm>,
) -> Result<Response, PageError> {
    session.require(ROLES)?;
    session.check_csrf(&form.csrf)?;
    let id: B256 = request_id.parse().map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("`{request_id}` is not a request id"),
        )
    })?;
    let approve = match form.verdict.as_str() {
        "approve" => true,
        "deny" => false,
        other => {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("verdict `{other}`: approve or deny"),
            )
            .into());
        }
    };
    let comment = form.comment.trim();
    if comment.len() > 500 {
        return Err(
            ApiError::new(ErrorCode::InvalidRequest, "comments are at most 500 bytes").into(),
        );
    }
    let resolved = vote(
        &state,
        &session.actor(),
        id,
        approve,
        (!comment.is_empty()).then_some(comment),
    )
    .await?;
    tracing::info!(request = %id, approve, status = %resolved.status, by = %session.name, "vote cast in the console");
    Ok(Redirect::to(&format!("/approvals?done={id}")).into_response())
}

/// A verdict on a tool call waiting in an agent's MCP gateway.
async fn resolve_tool(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Form(form): Form<VerdictForm>,
) -> Result<Response, PageError> {
    session.require(ROLES)?;
    session.check_csrf(&form.csrf)?;
    let id: B256 = id.parse().map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("`{id}` is not a decision id"),
        )
    })?;
    let approval_of = match form.verdict.as_str() {
        "approve" => Some(form.arguments_hash.trim().parse::<B256>().map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                "an approval names the arguments hash it was shown",
            )
        })?),
        "deny" => None,
        other => {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("verdict `{other}`: approve or deny"),
            )
            .into());
        }
    };
    crate::tools::give_verdict(&state, id, approval_of, &session.name).await?;
    let approve = approval_of.is_some();
    tracing::info!(decision = %id, approve, by = %session.name, "tool call verdict in the console");
    Ok(Redirect::to("/approvals").into_response())
}

#[cfg(test)]
mod tests {
    use chaperone_api::tools::{HeldArguments, MAX_SHOWN_ARGUMENTS_LEN};

    use super::{MAX_INDENT_DEPTH, arguments_shown, laid_out};

    #[test]
    fn arguments_are_laid_out_as_sent() {
        let json =
            r#"{"b":[1,{"x":"a,b:{c}\\\"]"}],"a":123456789012345678901234567890,"e":{},"f":[]}"#;
        assert_eq!(
            laid_out(json),
            "{\n  \"b\": [\n    1,\n    {\n      \"x\": \"a,b:{c}\\\\\\\"]\"\n    }\n  ],\n  \
             \"a\": 123456789012345678901234567890,\n  \"e\": {},\n  \"f\": []\n}"
        );
    }

    /// Red team i30c #1: arguments just under the shown cap, nested as deep as serde_json
    /// parses, stay a bounded page each (they were ~8 MB of inbox HTML per held call).
    #[test]
    fn deeply_nested_arguments_keep_the_inbox_small() {
        let depth = 120;
        let head = format!("{{\"a\":{}", "[".repeat(depth));
        let tail = format!("{}}}", "]".repeat(depth));
        let n = (MAX_SHOWN_ARGUMENTS_LEN - head.len() - tail.len() - 1) / 2;
        let json = format!("{head}{}1{tail}", "1,".repeat(n));
        let value: serde_json::Value = serde_json::from_str(&json).expect("serde_json parses it");
        let arguments = value.as_object().expect("an object").clone();
        let view = HeldArguments::of(&arguments);
        assert!(!view.is_cut(), "fits the shown cap: {}", view.json.len());
        let stored = serde_json::to_string(&view).expect("serialises");
        let html = arguments_shown(Some(&stored)).into_string();
        assert!(
            html.len() <= 2 * view.json.len() + 8 * 1024,
            "one held call of {} bytes is {} bytes of inbox HTML",
            view.json.len(),
            html.len()
        );
        assert!(
            20 * html.len() < 8 * 1024 * 1024,
            "one agent's 20 held calls stay small"
        );
        // Still laid out when it fits: the deep members sit at the capped indent.
        let small = format!("{}1{}", "[".repeat(12), "]".repeat(12));
        let shown = laid_out(&small);
        assert!(shown.contains(&format!("\n{}1", "  ".repeat(MAX_INDENT_DEPTH))));
        assert!(!shown.contains(&" ".repeat(2 * MAX_INDENT_DEPTH + 1)));
    }

    /// Red team i30c #5: a bidi override (or a zero-width or C1 character) in an argument is
    /// shown to the approver as `\u202E`, never as the character that reorders the line.
    #[test]
    fn unicode_format_characters_in_arguments_are_shown_escaped() {
        let arguments = serde_json::json!({
            "pay_to": "alice\u{202E}0001",
            "note": "a\u{200B}b\u{0085}c\u{2028}d\u{E0041}",
        });
        let view = HeldArguments::of(arguments.as_object().expect("an object"));
        let stored = serde_json::to_string(&view).expect("serialises");
        let html = arguments_shown(Some(&stored)).into_string();
        for hidden in ['\u{202E}', '\u{200B}', '\u{0085}', '\u{2028}', '\u{E0041}'] {
            assert!(
                !html.contains(hidden),
                "{hidden:?} reaches the page: {html}"
            );
        }
        assert!(html.contains(r"alice\u202E0001"), "{html}");
        assert!(
            html.contains(r"a\u200Bb\u0085c\u2028d\uDB40\uDC41"),
            "{html}"
        );
    }
}

//! Every decision in one place: the wallets' co-sign decisions, filterable by wallet, outcome,
//! reason code (a list of the codes that exist) and date, each with its reasons in words, what
//! it pays to whom and how that ended, the policy version, the human verdict if one was asked,
//! its record in the audit log, and the model call an x402 payment was made in; and the agents'
//! tool-policy decisions (their MCP gateways'), filterable by tool, outcome and date. `kind`
//! shows one kind or both; a filter only one kind has shows that kind. Exports are
//! `/v1/decisions` with the same filters.

use axum::{
    Router,
    extract::{Query, State},
    response::Response,
    routing::get,
};
use chaperone_api::ledger::ReasonCode;
use chaperone_api::tools::ToolOutcome;
use chaperone_core::{
    Address,
    policy::{Outcome, Token},
    readable::date_start,
};
use chaperone_store::{DecisionFilter, ToolDecisionFilter};
use maud::html;
use serde::Deserialize;

use super::{
    PageError, Session, export_url, filter_status, page_response, reason_line, short, when,
};
use crate::{
    AppState,
    ledger::{asked, decision_payments},
    metrics::{outcome_label, reason_code},
    words::{reason_tokens, units_of},
};

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/decisions", get(decisions))
}

/// The most decisions one page reads (newest first).
const PAGE: u32 = 200;

#[derive(Deserialize, Default)]
struct Filter {
    /// all (the default), payment or tool.
    #[serde(default)]
    kind: String,
    #[serde(default)]
    tool: String,
    #[serde(default)]
    wallet: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// What the page lists: payment decisions (`None`: none of them match), tool decisions.
type Parsed = (Option<DecisionFilter>, Option<ToolDecisionFilter>);

/// The filters of both kinds, or the message saying which value is wrong.
fn parse_filters(filter: &Filter) -> Result<Parsed, String> {
    let (payments, tools) = match filter.kind.as_str() {
        "" | "all" => (true, true),
        "payment" => (true, false),
        "tool" => (false, true),
        other => return Err(format!("kind `{other}` is not all, payment or tool")),
    };
    let tool = filter.tool.trim();
    let payment_only = !filter.wallet.trim().is_empty() || !filter.reason.trim().is_empty();
    let tool_outcome = match filter.outcome.as_str() {
        "" => Ok(None),
        o => o
            .parse::<ToolOutcome>()
            .map(|o| Some(o.as_str().to_owned())),
    };
    // An outcome only tool calls have selects no payment (with kind all); any other value
    // a payment filter cannot take is the officer's to fix.
    let tool_only_outcome = matches!(filter.outcome.as_str(), "allowed" | "approval_required");
    let payment = if payments && tool.is_empty() && !(tools && tool_only_outcome) {
        Some(parse_filter(filter)?)
    } else {
        None
    };
    let tools = if tools && !payment_only {
        match tool_outcome {
            Ok(outcome) => {
                let dates = parse_filter(&Filter {
                    from: filter.from.clone(),
                    to: filter.to.clone(),
                    ..Filter::default()
                })?;
                Some(ToolDecisionFilter {
                    tool: Some(tool.to_owned()).filter(|t| !t.is_empty()),
                    outcome,
                    from: dates.from,
                    to: dates.to,
                    limit: PAGE,
                    newest_first: true,
                    ..ToolDecisionFilter::default()
                })
            }
            Err(_) if payment.is_some() => None,
            Err(message) => return Err(message),
        }
    } else {
        None
    };
    if payment.is_none() && tools.is_none() {
        return Err("these filters select no decision of either kind (a wallet or reason is a payment's, a tool a tool call's)".into());
    }
    Ok((payment, tools))
}

/// The payment filters as the store takes them, or the message saying which value is wrong.
fn parse_filter(filter: &Filter) -> Result<DecisionFilter, String> {
    let bad =
        |what: &str, value: &str, expected: &str| format!("{what} `{value}` is not {expected}");
    let wallet = match filter.wallet.trim() {
        "" => None,
        text => Some(
            text.parse::<Address>()
                .map_err(|_| bad("wallet", text, "an address (0x and 40 hex digits)"))?,
        ),
    };
    let outcome = match filter.outcome.as_str() {
        "" => None,
        "approved" => Some(Outcome::Approved),
        "pending_approval" => Some(Outcome::PendingApproval),
        "denied" => Some(Outcome::Denied),
        other => {
            return Err(bad(
                "outcome",
                other,
                "approved, pending approval or denied",
            ));
        }
    };
    let reason = match filter.reason.trim() {
        "" => None,
        text => Some(text.parse::<ReasonCode>()?.as_str().to_owned()),
    };
    let day = |text: &str| match text.trim() {
        "" => Ok(None),
        text => date_start(text)
            .map(Some)
            .ok_or_else(|| bad("date", text, "a date (YYYY-MM-DD)")),
    };
    Ok(DecisionFilter {
        wallet,
        outcome,
        reason,
        from: day(&filter.from)?,
        to: day(&filter.to)?.map(|t| t + 86_400),
        after: None,
        limit: PAGE,
    })
}

async fn decisions(
    State(state): State<AppState>,
    session: Session,
    Query(filter): Query<Filter>,
) -> Result<Response, PageError> {
    session.require(&["admin", "auditor"])?;
    // A bad filter value is the officer's to fix: the page comes back with the message.
    let (payments, tool_filter, problem) = match parse_filters(&filter) {
        Ok((payments, tools)) => (payments, tools, None),
        Err(message) => (None, None, Some(message)),
    };
    let rows = match &payments {
        Some(parsed) => state.store().decisions(parsed).await?,
        None => Vec::new(),
    };
    let tool_rows = match &tool_filter {
        Some(parsed) => crate::tools::tool_decision_views(&state, parsed).await?,
        None => Vec::new(),
    };
    let ids: Vec<_> = rows.iter().map(|d| d.request_id).collect();
    let details = state.store().payment_details(&ids).await?;
    let mut tokens: Vec<Token> = rows
        .iter()
        .flat_map(|d| reason_tokens(&d.reasons))
        .collect();
    for detail in details.values() {
        if let Some(asked) = asked(&detail.request_json) {
            tokens.extend(asked.spends.into_iter().map(|s| s.token));
        }
    }
    let units = units_of(&state, tokens).await;
    let verdicts = state.store().verdicts(&ids).await?;
    let export = |format: &str| {
        let kind = match (payments.is_some(), tool_filter.is_some()) {
            (true, true) => "all",
            (false, true) => "tool",
            _ => "payment",
        };
        export_url(
            "/v1/decisions",
            format,
            &[
                ("kind", kind),
                ("wallet", &filter.wallet),
                ("outcome", &filter.outcome),
                ("reason", &filter.reason),
                ("tool", &filter.tool),
            ],
        )
    };
    let status = filter_status(&problem);
    Ok(page_response(
        status,
        "Decisions",
        Some(&session),
        html! {
            p.see-also { "The wallets' co-sign decisions about payments, and the tool calls agents' MCP gateways decided ("
                a href="/decisions/tools" { "tool decisions alone" } ")." }
            form.filters method="get" action="/decisions" {
                label { "Kind "
                    select name="kind" {
                        @for (value, label) in [("all", "all"), ("payment", "payments"), ("tool", "tool calls")] {
                            option value=(value) selected[filter.kind == value || (filter.kind.is_empty() && value == "all")] { (label) }
                        }
                    }
                }
                label { "Tool " input type="text" name="tool" value=(filter.tool) placeholder="a tool's name"; }
                label { "Wallet " input type="text" name="wallet" value=(filter.wallet) placeholder="0x…"; }
                label { "Outcome "
                    select name="outcome" {
                        @for (value, label) in [("", "any"), ("approved", "approved"), ("pending_approval", "pending approval"), ("denied", "denied"), ("allowed", "allowed (tool calls)"), ("approval_required", "approval required (tool calls)")] {
                            option value=(value) selected[filter.outcome == value] { (label) }
                        }
                    }
                }
                label { "Reason "
                    select name="reason" {
                        option value="" { "any" }
                        @for code in ReasonCode::ALL {
                            option value=(code.as_str()) selected[filter.reason == code.as_str()] { (code.as_str().replace('_', " ")) }
                        }
                    }
                }
                label { "From " input type="date" name="from" value=(filter.from); }
                label { "To " input type="date" name="to" value=(filter.to); }
                button type="submit" { "Filter" }
            }
            @if let Some(problem) = &problem {
                p.error role="alert" { "This filter cannot be applied: " (problem) }
            } @else {
                p.exports { "Export: " a href=(export("csv")) { "CSV" } " · " a href=(export("jsonl")) { "JSON Lines" } }
                @if rows.is_empty() && tool_rows.is_empty() { p.empty { "No decisions match." } }
            }
            @if tool_filter.is_some() {
                h2 { "Tool calls" }
                (super::tool_decisions::table(&tool_rows))
            }
            @if payments.is_some() || problem.is_some() {
            @if tool_filter.is_some() { h2 { "Payments" } }
            table.decisions {
                thead { tr { th { "Time" } th { "Wallet" } th { "Outcome" } th { "Reasons" } th { "Payment" } th { "Policy" } th { "Record" } } }
                tbody {
                    @for row in &rows {
                        @let verdict = verdicts.get(&row.request_id);
                        // A human's "no" is final: the request is denied (its row keeps the
                        // pending verdict the policy gave).
                        @let human_denied = verdict.is_some_and(|v| v.status == "denied");
                        @let shown = if human_denied { "denied" } else { outcome_label(row.outcome) };
                        tr class=(shown) {
                            td { (when(row.created_at)) }
                            td { (short(&row.wallet)) }
                            td.outcome { (shown.replace('_', " ")) @if human_denied { " by a human" } }
                            td {
                                @for reason in &row.reasons {
                                    div.reason title=(reason_code(reason)) { (reason_line(reason, &units)) }
                                }
                                @if let Some(v) = verdict {
                                    @if v.status != "pending" {
                                        div.verdict {
                                            (v.status) " by " (v.decided_by.clone().unwrap_or_default())
                                            @if let Some(at) = v.decided_at { " at " (when(at)) }
                                            @if let Some(comment) = &v.comment { ": “" (comment) "”" }
                                        }
                                    }
                                }
                            }
                            td {
                                @if let Some(detail) = details.get(&row.request_id) {
                                    @let (method, payments) = decision_payments(detail, &units);
                                    @if let Some(method) = method { small { (method.as_str()) " · agent " (short(&detail.agent)) } }
                                    @for p in &payments {
                                        div.payment {
                                            (p.amount) " " (p.token_symbol)
                                            @if let Token::Erc20(address) = p.token { " " small.token { "(" code { (address) } ")" } }
                                            @for to in &p.recipients { " → " (short(to)) }
                                            @if let Some(status) = p.status { " · " strong { (status.as_str()) } }
                                            @if let Some(tx) = p.settlement_tx { " in " (short(&tx)) }
                                        }
                                    }
                                }
                            }
                            td { "v" (row.policy_version) }
                            td {
                                @if let Some(leaf) = row.logged_leaf {
                                    a href=(format!("/audit/records/{leaf}")) { "record" }
                                } @else { "not yet logged" }
                                // The agent's record of the model call this payment was made in.
                                @if let Some(call) = row.call_leaf_hash {
                                    div.call { a href=(format!("/audit/records/{call}")) { "paid in call " (short(&call)) } }
                                }
                            }
                        }
                    }
                }
            }
            }
        },
    ))
}

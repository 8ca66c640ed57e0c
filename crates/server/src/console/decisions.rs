//! Every co-sign decision, filterable by wallet, outcome, reason code (a list of the codes
//! that exist) and date, each with its reasons in words, what it pays to whom and how that
//! ended, the policy version, the human verdict if one was asked, its record in
//! the audit log, and the model call an x402 payment was made in.

use axum::{
    Router,
    extract::{Query, State},
    http::StatusCode,
    response::Response,
    routing::get,
};
use chaperone_api::ledger::ReasonCode;
use chaperone_core::{
    Address,
    policy::{Outcome, Token},
    readable::date_start,
};
use chaperone_store::DecisionFilter;
use maud::html;
use serde::Deserialize;

use super::{PageError, Session, page_response, reason_line, short, url_encode, when};
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

/// The filters as the store takes them, or the message saying which value is wrong.
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
    let (rows, problem) = match parse_filter(&filter) {
        Ok(parsed) => (state.store().decisions(&parsed).await?, None),
        Err(message) => (Vec::new(), Some(message)),
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
        let mut url = format!("/v1/decisions?format={format}");
        for (name, value) in [
            ("wallet", &filter.wallet),
            ("outcome", &filter.outcome),
            ("reason", &filter.reason),
        ] {
            if !value.trim().is_empty() {
                url.push_str(&format!("&{name}={}", url_encode(value.trim())));
            }
        }
        url
    };
    let status = if problem.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(page_response(
        status,
        "Decisions",
        Some(&session),
        html! {
            p.see-also { "The wallet's co-sign decisions. Tool calls decided by agents' MCP gateways are on "
                a href="/decisions/tools" { "Tool decisions" } "." }
            form.filters method="get" action="/decisions" {
                label { "Wallet " input type="text" name="wallet" value=(filter.wallet) placeholder="0x…"; }
                label { "Outcome "
                    select name="outcome" {
                        @for (value, label) in [("", "any"), ("approved", "approved"), ("pending_approval", "pending approval"), ("denied", "denied")] {
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
                @if rows.is_empty() { p.empty { "No decisions match." } }
            }
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
        },
    ))
}

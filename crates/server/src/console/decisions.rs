//! Every co-sign decision, filterable by wallet, outcome, reason code and date, each with its
//! reasons in words, the policy version, the human verdict if one was asked, its record in
//! the audit log, and the model call an x402 payment was made in.

use axum::{
    Router,
    extract::{Query, State},
    response::Response,
    routing::get,
};
use chaperone_api::ErrorCode;
use chaperone_core::{Address, policy::Outcome, readable::date_start};
use chaperone_store::DecisionFilter;
use maud::html;
use serde::Deserialize;

use super::{PageError, Session, page, reason_line, short, url_encode, when};
use crate::{
    AppState,
    http::ApiError,
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

async fn decisions(
    State(state): State<AppState>,
    session: Session,
    Query(filter): Query<Filter>,
) -> Result<Response, PageError> {
    session.require(&["admin", "auditor"])?;
    let bad = |what: &str, value: &str| {
        PageError::from(ApiError::new(
            ErrorCode::InvalidQuery,
            format!("{what} `{value}` does not parse"),
        ))
    };
    let wallet = match filter.wallet.trim() {
        "" => None,
        text => Some(text.parse::<Address>().map_err(|_| bad("wallet", text))?),
    };
    let outcome = match filter.outcome.as_str() {
        "" => None,
        "approved" => Some(Outcome::Approved),
        "pending_approval" => Some(Outcome::PendingApproval),
        "denied" => Some(Outcome::Denied),
        other => return Err(bad("outcome", other)),
    };
    let day = |text: &str| match text {
        "" => Ok(None),
        text => date_start(text).map(Some).ok_or_else(|| bad("date", text)),
    };
    let from = day(&filter.from)?;
    let to = day(&filter.to)?.map(|t| t + 86_400);
    let rows = state
        .store()
        .decisions(&DecisionFilter {
            wallet,
            outcome,
            reason: None,
            from,
            to,
            after: None,
            limit: PAGE,
        })
        .await?;
    let reason = filter.reason.trim();
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|d| reason.is_empty() || d.reasons.iter().any(|r| reason_code(r) == reason))
        .collect();
    let tokens = rows
        .iter()
        .flat_map(|d| reason_tokens(&d.reasons))
        .collect();
    let units = units_of(&state, tokens).await;
    let ids: Vec<_> = rows.iter().map(|d| d.request_id).collect();
    let verdicts = state.store().verdicts(&ids).await?;
    let export = |format: &str| {
        let mut url = format!("/v1/decisions?format={format}");
        if let Some(wallet) = wallet {
            url.push_str(&format!("&wallet={wallet}"));
        }
        if !filter.outcome.is_empty() {
            url.push_str(&format!("&outcome={}", url_encode(&filter.outcome)));
        }
        url
    };
    Ok(page(
        "Decisions",
        &session,
        html! {
            form.filters method="get" action="/decisions" {
                label { "Wallet " input type="text" name="wallet" value=(filter.wallet) placeholder="0x…"; }
                label { "Outcome "
                    select name="outcome" {
                        @for (value, label) in [("", "any"), ("approved", "approved"), ("pending_approval", "pending approval"), ("denied", "denied")] {
                            option value=(value) selected[filter.outcome == value] { (label) }
                        }
                    }
                }
                label { "Reason code " input type="text" name="reason" value=(filter.reason) placeholder="per_transaction_cap"; }
                label { "From " input type="date" name="from" value=(filter.from); }
                label { "To " input type="date" name="to" value=(filter.to); }
                button type="submit" { "Filter" }
            }
            p.exports { "Export: " a href=(export("csv")) { "CSV" } " · " a href=(export("jsonl")) { "JSON Lines" } }
            @if rows.is_empty() { p.empty { "No decisions match." } }
            table.decisions {
                thead { tr { th { "Time" } th { "Wallet" } th { "Outcome" } th { "Reasons" } th { "Policy" } th { "Record" } } }
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

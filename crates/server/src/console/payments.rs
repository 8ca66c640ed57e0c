//! The payment ledger: what each agent paid, to whom, under which decision, approved by whom,
//! in which model call, and how it ended on chain. The same rows, filters and cursor as
//! `GET /v1/payments`, whose CSV and JSON Lines exports the page links to. A bad filter value
//! gets this page back with the API's message and no rows.

use std::collections::HashMap;

use axum::{
    Router,
    extract::{Query, State},
    response::Response,
    routing::get,
};
use chaperone_api::ledger::{PaymentRow, PaymentStatus};
use chaperone_core::policy::Token;
use maud::{Markup, html};

use super::{PageError, Session, filter_status, page_response, short, url_encode, when};
use crate::{
    AppState,
    ledger::{LedgerQuery, ledger_page},
    paging::Params,
};

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/payments", get(payments))
}

/// The filters the page's form sends (and the API takes), in the form's order.
const FILTERS: &[&str] = &[
    "wallet",
    "agent",
    "token",
    "recipient",
    "min_amount",
    "max_amount",
    "status",
    "from",
    "to",
];

/// Rows per page.
const PAGE: &str = "50";

async fn payments(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    session.require(&["admin", "auditor"])?;
    // Empty fields are filters not set; anything the form does not send is ignored.
    let mut given: HashMap<String, String> = query
        .iter()
        .filter(|(k, v)| FILTERS.contains(&k.as_str()) && !v.trim().is_empty())
        .map(|(k, v)| (k.clone(), v.trim().to_owned()))
        .collect();
    let filters = given.clone();
    if let Some(cursor) = query.get("cursor").filter(|c| !c.is_empty()) {
        given.insert("cursor".into(), cursor.clone());
    }
    given.insert("limit".into(), PAGE.into());
    let answer = match LedgerQuery::parse(&Params(given)) {
        Ok(ledger) => ledger_page(&state, &ledger).await.map_err(|e| (e, true)),
        Err(e) => Err((e, false)),
    };
    let (rows, next, problem) = match answer {
        Ok((rows, next)) => (rows, next, None),
        // A refused filter is the officer's to fix: shown on the page. Anything else failed.
        Err((e, false)) => (Vec::new(), None, Some(e.message().to_owned())),
        Err((e, true)) => return Err(e.into()),
    };
    let query_string = |extra: &[(&str, &str)]| {
        filters
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(extra.iter().copied())
            .map(|(k, v)| format!("{k}={}", url_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    };
    let value = |name: &str| filters.get(name).cloned().unwrap_or_default();
    let status = filter_status(&problem);
    let body = html! {
        form.filters method="get" action="/payments" {
            label { "Wallet " input type="text" name="wallet" value=(value("wallet")) placeholder="0x…"; }
            label { "Agent " input type="text" name="agent" value=(value("agent")) placeholder="0x…"; }
            label { "Token " input type="text" name="token" value=(value("token")) placeholder="native or 0x…"; }
            label { "Recipient " input type="text" name="recipient" value=(value("recipient")) placeholder="0x…"; }
            label { "Min (base units) " input type="text" name="min_amount" value=(value("min_amount")) inputmode="numeric"; }
            label { "Max (base units) " input type="text" name="max_amount" value=(value("max_amount")) inputmode="numeric"; }
            label { "Status "
                select name="status" {
                    option value="" { "any" }
                    @for s in PaymentStatus::ALL {
                        option value=(s.as_str()) selected[value("status") == s.as_str()] { (s.as_str()) }
                    }
                }
            }
            label { "From (UTC) " input type="datetime-local" name="from" value=(value("from")); }
            label { "To (UTC) " input type="datetime-local" name="to" value=(value("to")); }
            button type="submit" { "Filter" }
        }
        @if let Some(problem) = &problem {
            p.error role="alert" { "This filter cannot be applied: " (problem) }
        } @else {
            p.exports {
                "Export (these filters, every column): "
                a href=(format!("/v1/payments?{}", query_string(&[("format", "csv"), ("limit", "1000")]))) { "CSV" }
                " · "
                a href=(format!("/v1/payments?{}", query_string(&[("format", "jsonl"), ("limit", "1000")]))) { "JSON Lines" }
            }
            @if rows.is_empty() && next.is_none() { p.empty { "No payments match." } }
            @if rows.len() < PAGE.parse::<usize>().unwrap_or_default() && next.is_some() {
                p.note { "The search stopped after the most recent payments it read; older ones may still match." }
            }
        }
        @if !rows.is_empty() {
            table.payments {
                thead { tr {
                    th { "Time" } th { "Wallet / agent" } th { "Method" } th { "Amount" }
                    th { "To" } th { "Status" } th { "Decision" } th { "Approved by" } th { "Call" }
                } }
                tbody { @for row in &rows { (payment_row(row)) } }
            }
        }
        @if let Some(next) = &next {
            p.more { a href=(format!("/payments?{}", query_string(&[("cursor", next.as_str())]))) { "Older payments →" } }
        }
    };
    Ok(page_response(status, "Payments", Some(&session), body))
}

fn payment_row(row: &PaymentRow) -> Markup {
    html! {
        tr class=(row.status.as_str()) {
            td { (when(row.created_at)) }
            td { (short(&row.wallet)) br; small { "agent " (short(&row.agent)) } }
            td { (match row.method {
                chaperone_api::ledger::PaymentKind::Execute => "execute",
                chaperone_api::ledger::PaymentKind::Eip3009 => "EIP-3009",
                chaperone_api::ledger::PaymentKind::Permit2 => "Permit2",
            }) }
            td.amount {
                // The symbol is the token deployer's choice: the address stands beside it.
                (row.amount) " " (row.token_symbol)
                @if let Token::Erc20(address) = row.token { br; small.token { code { (address) } } }
                br; small { (row.amount_base_units.0) " base units" }
            }
            td { @for to in &row.recipients { div { (short(to)) } } }
            td.status {
                strong { (row.status.as_str()) }
                @if let Some(tx) = row.settlement_tx { div { "tx " (short(&tx)) } }
                @if let Some(block) = row.settlement_block { div { small { "block " (block) } } }
                @if let Some(at) = row.settled_at { div { (when(at)) } }
            }
            td {
                code title=(row.request_id) { (row.request_id.to_string()[..10]) "…" }
                br; small { "policy v" (row.policy_version) }
            }
            td {
                @for name in &row.approvers { div { (name) } }
                @if let Some(comment) = &row.approval_comment { div.verdict { "“" (comment) "”" } }
                @if row.approvers.is_empty() { span.empty { "within policy" } }
            }
            td {
                @if let Some(call) = row.call_leaf_hash {
                    a href=(format!("/audit/records/{call}")) { (short(&call)) }
                } @else { span.empty { "not bound" } }
            }
        }
    }
}

//! The compliance API (role `auditor`, or `admin`): agents, their records, co-sign decisions and
//! spend. Every list is paginated by an opaque cursor (`next_cursor`), filterable, and exported
//! as JSON (default), JSON Lines (`format=jsonl`) or CSV (`format=csv`); in the two export
//! formats the next cursor travels in the `X-Next-Cursor` header. Unknown or malformed query
//! parameters get 400 `invalid_query`.

use axum::{
    extract::{Path, Query, State, rejection::QueryRejection},
    response::Response,
};
use chaperone_api::{
    Format, Page,
    compliance::{AgentRow, DecisionView, RecordRow, SpendRow},
    ledger::ReasonCode,
};
use chaperone_core::{
    Address, B256,
    policy::{Amount, Outcome, Seconds, Token},
};
use chaperone_store::{DecisionFilter, RecordFilter};
use serde_json::Value;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    decision_kinds::Kind,
    http::{ApiError, Caller},
    ledger::{asked, decision_payments},
    openapi::error_answers,
    paging::{Paging, Params, invalid, keyed_page, next_cursor, page, row},
};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(agents))
        .routes(routes!(agent_records))
        .routes(routes!(decisions))
        .routes(routes!(spend))
}

error_answers!(ListErrors: InvalidQuery, OutOfRange);
error_answers!(RecordListErrors: InvalidQuery, OutOfRange, NotFound);

/// The filters of an agent's records.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // declared for the document and the parser; `Params` reads the query
struct RecordFilters {
    /// Exact model id.
    model: Option<String>,
    /// At or after, ms since the Unix epoch.
    from_ms: Option<u64>,
    /// Before, ms since the Unix epoch.
    to_ms: Option<u64>,
}

/// The filters of the decisions.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // declared for the document and the parser; `Params` reads the query
struct DecisionFilters {
    /// payment (the wallets' co-sign decisions: the default, unless a tool filter is given),
    /// tool (the agents' tool-policy decisions) or all (both, one listing by time).
    kind: Option<String>,
    /// One wallet's (payments).
    wallet: Option<String>,
    /// Payments: approved, pending_approval or denied. Tools: allowed, denied or
    /// approval_required. With `kind=all`, rows of the kind the outcome names (denied: both).
    outcome: Option<String>,
    /// One tool's, its name in its upstream (tool decisions).
    tool: Option<String>,
    /// One MCP upstream's (tool decisions).
    upstream: Option<String>,
    /// One agent's (tool decisions).
    agent: Option<String>,
    /// Decisions with a reason of this code.
    #[param(inline)]
    reason: Option<ReasonCode>,
    /// At or after, Unix seconds.
    from: Option<u64>,
    /// Before, Unix seconds.
    to: Option<u64>,
}

/// The filters of the spend totals.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // declared for the document and the parser; `Params` reads the query
struct SpendFilters {
    /// One wallet's.
    wallet: Option<String>,
    /// `native` or a token address.
    token: Option<String>,
    /// e.g. 1h, 24h (default), 7d, or seconds.
    window: Option<String>,
}

const AGENT_COLUMNS: &[&str] = &[
    "address",
    "record_count",
    "next_sequence",
    "last_leaf_hash",
    "first_seen_ms",
    "last_seen_ms",
];

/// Agents with records in the log.
#[utoipa::path(
    get,
    path = "/v1/agents",
    description = "Roles: auditor, admin.",
    security(("bearer" = [])),
    params(Paging),
    responses(
        (status = 200, description = "a page of agents", content(
            (Page<AgentRow> = "application/json"),
            (AgentRow = "application/x-ndjson"),
            (String = "text/csv"),
        )),
        ListErrors,
    )
)]
async fn agents(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(&["auditor", "admin"])?;
    keyed_page(
        query,
        AGENT_COLUMNS,
        |after: Option<Address>, limit| state.store().agents(after, limit),
        |a| a.address.to_string(),
        |a| {
            row(AgentRow {
                address: a.address,
                record_count: a.record_count,
                next_sequence: a.next_sequence,
                last_leaf_hash: a.last_leaf_hash,
                first_seen_ms: a.first_seen_ms,
                last_seen_ms: a.last_seen_ms,
            })
        },
    )
    .await
}

const RECORD_COLUMNS: &[&str] = &[
    "index",
    "leaf_hash",
    "agent",
    "sequence",
    "timestamp_ms",
    "model",
    "input_commitment",
    "output_commitment",
    "metadata_commitment",
    "previous",
];

/// An agent's records (commitments only), by model and time range.
#[utoipa::path(
    get,
    path = "/v1/agents/{address}/records",
    description = "Roles: auditor, admin.",
    security(("bearer" = [])),
    params(("address" = chaperone_core::openapi::HexAddress, Path, description = "the agent's address"), RecordFilters, Paging),
    responses(
        (status = 200, description = "a page of records", content(
            (Page<RecordRow> = "application/json"),
            (RecordRow = "application/x-ndjson"),
            (String = "text/csv"),
        )),
        RecordListErrors,
    )
)]
async fn agent_records(
    State(state): State<AppState>,
    caller: Caller,
    Path(address): Path<String>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(&["auditor", "admin"])?;
    let agent: Address = address
        .parse()
        .map_err(|_| invalid(format!("`{address}` is not an address")))?;
    let params = Params::parse::<RecordFilters>(query)?;
    let filter = RecordFilter {
        agent: Some(agent),
        model: params.0.get("model").cloned(),
        from_ms: params.get("from_ms", "a time in ms since the Unix epoch")?,
        to_ms: params.get("to_ms", "a time in ms since the Unix epoch")?,
        after_index: params
            .cursor()
            .map(|c| {
                c.parse()
                    .map_err(|_| invalid("`cursor` is not one this API gave"))
            })
            .transpose()?,
        limit: params.limit()?,
    };
    let format = params.format()?;
    if state.store().agent_head(agent).await?.0 == 0 {
        return Err(ApiError::not_found(format!("agent {agent} has no records")));
    }
    let records = state.store().records(&filter).await?;
    let next = next_cursor(
        records.len(),
        filter.limit,
        records.last().map(|r| r.index.to_string()),
    );
    let rows = records
        .into_iter()
        .map(|r| {
            row(RecordRow {
                index: r.index,
                leaf_hash: r.leaf_hash,
                agent: r.record.agent,
                sequence: r.record.sequence,
                timestamp_ms: r.record.timestamp_ms,
                model: r.record.model,
                input_commitment: r.record.input.0,
                output_commitment: r.record.output.0,
                metadata_commitment: r.record.metadata.map(|m| m.0),
                previous: r.record.previous,
            })
        })
        .collect();
    Ok(page(format, RECORD_COLUMNS, rows, next))
}

pub(crate) const DECISION_COLUMNS: &[&str] = &[
    "request_id",
    "wallet",
    "created_at",
    "created_at_iso",
    "outcome",
    "reasons",
    "reasons_text",
    "policy_version",
    "policy_hash",
    "signed",
    "logged_leaf",
    "call_leaf_hash",
    "agent",
    "method",
    "payments_text",
    "token_symbol",
    "token",
    "amount",
    "amount_base_units",
    "recipients",
    "status",
    "settlement_tx",
    "settled_at_iso",
    "approvers",
    "approval_comment",
];

/// Co-sign decisions with their reasons.
#[utoipa::path(
    get,
    path = "/v1/decisions",
    description = "Roles: auditor, admin.",
    security(("bearer" = [])),
    params(DecisionFilters, Paging),
    responses(
        (status = 200, description = "a page of decisions", content(
            (Page<chaperone_api::tools::DecisionItem> = "application/json"),
            (chaperone_api::tools::DecisionItem = "application/x-ndjson"),
            (String = "text/csv"),
        )),
        ListErrors,
    )
)]
async fn decisions(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(&["auditor", "admin"])?;
    let params = Params::parse::<DecisionFilters>(query)?;
    let kind = Kind::of(&params)?;
    if kind != Kind::Payment {
        return crate::decision_kinds::list(&state, &params, kind).await;
    }
    let filter = payment_filter(&params, true)?.unwrap_or_default();
    let format = params.format()?;
    let rows = payment_rows(&state, &filter, format).await?;
    let next = next_cursor(rows.len(), filter.limit, rows.last().map(payment_cursor));
    Ok(page(format, DECISION_COLUMNS, rows, next))
}

/// The cursor after a payment decision's row.
pub(crate) fn payment_cursor(row: &Value) -> String {
    format!(
        "{}:{}",
        row["created_at"],
        row["request_id"].as_str().unwrap_or_default()
    )
}

/// The cursor of a page: (time, id) of the last row already returned, of either kind.
pub(crate) fn cursor_of(params: &Params) -> Result<Option<(u64, B256)>, ApiError> {
    params
        .cursor()
        .map(|c| {
            c.split_once(':')
                .and_then(|(at, id)| Some((at.parse().ok()?, id.parse::<B256>().ok()?)))
                .ok_or_else(|| invalid("`cursor` is not one this API gave"))
        })
        .transpose()
}

/// The payment decisions' filter. An outcome that is not a payment's is 400 when `strict`,
/// else `None` (with `kind=all`: no payment has it).
pub(crate) fn payment_filter(
    params: &Params,
    strict: bool,
) -> Result<Option<DecisionFilter>, ApiError> {
    let outcome = match params.0.get("outcome").map(String::as_str) {
        None => None,
        Some("approved") => Some(Outcome::Approved),
        Some("pending_approval") => Some(Outcome::PendingApproval),
        Some("denied") => Some(Outcome::Denied),
        Some(_) if !strict => return Ok(None),
        Some(other) => {
            return Err(invalid(format!(
                "`outcome={other}`: use approved, pending_approval or denied"
            )));
        }
    };
    let reason = params
        .0
        .get("reason")
        .map(|r| r.parse::<ReasonCode>().map_err(invalid))
        .transpose()?;
    Ok(Some(DecisionFilter {
        wallet: params.get("wallet", "an address")?,
        outcome,
        reason: reason.map(|r| r.as_str().to_owned()),
        from: params.get("from", "a time in Unix seconds")?,
        to: params.get("to", "a time in Unix seconds")?,
        after: cursor_of(params)?,
        limit: params.limit()?,
    }))
}

/// The payment decisions `filter` selects, as rows of `format`.
pub(crate) async fn payment_rows(
    state: &AppState,
    filter: &DecisionFilter,
    format: Format,
) -> Result<Vec<Value>, ApiError> {
    let decisions = state.store().decisions(filter).await?;
    let ids: Vec<B256> = decisions.iter().map(|d| d.request_id).collect();
    let details = state.store().payment_details(&ids).await?;
    let verdicts = state.store().verdicts(&ids).await?;
    let mut tokens: Vec<Token> = decisions
        .iter()
        .flat_map(|d| crate::words::reason_tokens(&d.reasons))
        .collect();
    for detail in details.values() {
        if let Some(asked) = asked(&detail.request_json) {
            tokens.extend(asked.spends.into_iter().map(|s| s.token));
        }
    }
    let units = crate::words::units_of(state, tokens).await;
    let rows = decisions
        .into_iter()
        .map(|d| {
            let detail = details.get(&d.request_id);
            let (method, payments) =
                detail.map_or((None, Vec::new()), |p| decision_payments(p, &units));
            let verdict = verdicts
                .get(&d.request_id)
                .filter(|v| v.status != "pending");
            let mut value = row(DecisionView {
                request_id: d.request_id,
                wallet: d.wallet,
                created_at: d.created_at,
                created_at_iso: chaperone_core::readable::iso8601(d.created_at),
                outcome: d.outcome,
                reasons_text: d
                    .reasons
                    .iter()
                    .map(|r| crate::words::reason_words(r, &units))
                    .collect(),
                reasons: d.reasons.clone(),
                policy_version: d.policy_version,
                policy_hash: d.policy_hash,
                signed: d.signed,
                logged_leaf: d.logged_leaf,
                call_leaf_hash: d.call_leaf_hash,
                agent: detail.map(|p| p.agent),
                method,
                payments_text: payments
                    .iter()
                    .map(chaperone_api::ledger::DecisionPayment::words)
                    .collect(),
                payments,
                approvers: verdict.map(|v| v.approvers.clone()).unwrap_or_default(),
                approval_comment: verdict.and_then(|v| v.comment.clone()),
            });
            // A spreadsheet reads codes, not the reasons' JSON: `reasons_text` beside them
            // has the words and the figures in token units.
            if format == Format::Csv {
                let codes: Vec<&str> = d
                    .reasons
                    .iter()
                    .map(|r| ReasonCode::of(r).as_str())
                    .collect();
                value["reasons"] = serde_json::json!(codes);
                flatten_payments(&mut value);
            }
            // The listing's rows are tagged by kind (`DecisionItem`): tool decisions share it.
            value["kind"] = serde_json::json!("payment");
            value
        })
        .collect();
    Ok(rows)
}

/// A decision's payments as the ledger's columns, for CSV: one value per token moved in each
/// (a list when a batch moves several), readable beside exact as in `/v1/payments`.
fn flatten_payments(value: &mut Value) {
    let payments = value["payments"].as_array().cloned().unwrap_or_default();
    for column in [
        "token_symbol",
        "token",
        "amount",
        "amount_base_units",
        "status",
        "settlement_tx",
    ] {
        let cells: Vec<Value> = payments.iter().map(|p| p[column].clone()).collect();
        value[column] = Value::Array(cells);
    }
    let recipients: Vec<Value> = payments
        .iter()
        .flat_map(|p| p["recipients"].as_array().cloned().unwrap_or_default())
        .collect();
    value["recipients"] = Value::Array(recipients);
    let settled: Vec<Value> = payments
        .iter()
        .filter_map(|p| p["settled_at"].as_u64())
        .map(|t| Value::String(chaperone_core::readable::iso8601(t)))
        .collect();
    value["settled_at_iso"] = Value::Array(settled);
}

const SPEND_COLUMNS: &[&str] = &[
    "wallet",
    "token",
    "window_seconds",
    "reserved",
    "settled",
    "released",
    "committed",
    "approvals",
];

/// Reserved, settled and released spend per wallet and token within a window.
#[utoipa::path(
    get,
    path = "/v1/spend",
    description = "Roles: auditor, admin.",
    security(("bearer" = [])),
    params(SpendFilters, Paging),
    responses(
        (status = 200, description = "a page of totals", content(
            (Page<SpendRow> = "application/json"),
            (SpendRow = "application/x-ndjson"),
            (String = "text/csv"),
        )),
        ListErrors,
    )
)]
async fn spend(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(&["auditor", "admin"])?;
    let params = Params::parse::<SpendFilters>(query)?;
    let wallet: Option<Address> = params.get("wallet", "an address")?;
    let token: Option<Token> = params.get("token", "`native` or a token address")?;
    let window = match params.0.get("window") {
        None => 86_400,
        Some(text) => {
            serde_json::from_value::<Seconds>(Value::String(text.clone()))
                .map_err(|e| invalid(format!("`window`: {e}")))?
                .0
        }
    };
    let (limit, format) = (params.limit()?, params.format()?);
    let totals = state
        .store()
        .spend(wallet, token, state.now().saturating_sub(window))
        .await?;
    // Totals are few (wallets × tokens) and computed whole; the cursor pages through them.
    let key = |t: &chaperone_store::SpendTotal| format!("{}:{}", t.wallet, t.token);
    let start = match params.cursor() {
        None => 0,
        Some(c) => totals
            .iter()
            .position(|t| key(t) == c)
            .map_or(totals.len(), |i| i + 1),
    };
    let page_rows: Vec<_> = totals.iter().skip(start).take(limit as usize).collect();
    let next = next_cursor(page_rows.len(), limit, page_rows.last().map(|t| key(t)))
        .filter(|_| start + page_rows.len() < totals.len());
    let rows = page_rows
        .into_iter()
        .map(|t| {
            row(SpendRow {
                wallet: t.wallet,
                token: t.token,
                window_seconds: window,
                reserved: t.reserved,
                settled: t.settled,
                released: t.released,
                committed: Amount(t.reserved.0.saturating_add(t.settled.0)),
                approvals: t.approvals,
            })
        })
        .collect();
    Ok(page(format, SPEND_COLUMNS, rows, next))
}

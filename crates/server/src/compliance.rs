//! The compliance API (role `auditor`, or `admin`): agents, their records, co-sign decisions and
//! spend. Every list is paginated by an opaque cursor (`next_cursor`), filterable, and exported
//! as JSON (default), JSON Lines (`format=jsonl`) or CSV (`format=csv`); in the two export
//! formats the next cursor travels in the `X-Next-Cursor` header. Unknown or malformed query
//! parameters get 400 `invalid_query`.

use std::{collections::HashMap, str::FromStr};

use axum::{
    Json, Router,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
    routing::get,
};
use chaperone_core::{
    Address, B256,
    openapi::{Hex32, HexAddress},
    policy::{Amount, Outcome, Reason, Seconds, Token},
};
use chaperone_store::{DecisionFilter, RecordFilter};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::{AppState, admin::Caller, api::ApiError};

/// Page size when `limit` is not given, and the largest one allowed.
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/agents", get(agents))
        .route("/v1/agents/{address}/records", get(agent_records))
        .route("/v1/decisions", get(decisions))
        .route("/v1/spend", get(spend))
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_query", message)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    JsonLines,
    Csv,
}

/// Query parameters, checked against the endpoint's list.
struct Params(HashMap<String, String>);

impl Params {
    fn parse(
        query: Result<Query<Vec<(String, String)>>, QueryRejection>,
        allowed: &[&str],
    ) -> Result<Self, ApiError> {
        let Query(pairs) = query.map_err(|e| invalid(e.body_text()))?;
        let mut map = HashMap::new();
        for (key, value) in pairs {
            let known = ["cursor", "limit", "format"].contains(&key.as_str())
                || allowed.contains(&key.as_str());
            if !known {
                let mut all: Vec<&str> = allowed.to_vec();
                all.extend(["cursor", "limit", "format"]);
                return Err(invalid(format!(
                    "unknown parameter `{key}` (this endpoint takes {})",
                    all.join(", ")
                )));
            }
            if map.insert(key.clone(), value).is_some() {
                return Err(invalid(format!("parameter `{key}` is given twice")));
            }
        }
        Ok(Self(map))
    }

    fn get<T: FromStr>(&self, name: &str, expected: &str) -> Result<Option<T>, ApiError> {
        self.0
            .get(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| invalid(format!("`{name}={v}` is not {expected}")))
            })
            .transpose()
    }

    fn limit(&self) -> Result<u32, ApiError> {
        let limit = self
            .get::<u32>("limit", "a number")?
            .unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(invalid(format!("`limit` must be 1 to {MAX_LIMIT}")));
        }
        Ok(limit)
    }

    fn format(&self) -> Result<Format, ApiError> {
        match self.0.get("format").map(String::as_str) {
            None | Some("json") => Ok(Format::Json),
            Some("jsonl") => Ok(Format::JsonLines),
            Some("csv") => Ok(Format::Csv),
            Some(other) => Err(invalid(format!("`format={other}`: use json, jsonl or csv"))),
        }
    }

    fn cursor(&self) -> Option<&str> {
        self.0.get("cursor").map(String::as_str)
    }
}

/// One CSV cell (RFC 4180), the only way any export writes one.
///
/// Officers open exports in spreadsheets, which run a cell starting with `=`, `+`, `-`, `@`,
/// a tab or a carriage return as a formula (OWASP "CSV injection"), and agents choose model
/// ids, token deployers symbols. Such a cell gets a leading `'` (shown as text) and quotes.
/// No column holds a negative number (amounts, times and counts are unsigned), so a `-5`
/// here is always text and is neutralised like any other.
fn csv_field(value: &Value) -> String {
    let text = match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let formula = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if formula || text.contains([',', '"', '\n', '\r']) {
        let quote = if formula { "'" } else { "" };
        format!("\"{quote}{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// A page of a compliance list (`format=json`); the export formats carry the same rows.
#[derive(Serialize, ToSchema)]
pub(crate) struct Page<T> {
    items: Vec<T>,
    /// The `cursor` of the next page; absent on the last one.
    next_cursor: Option<String>,
}

/// An agent with records in the log.
#[derive(Serialize, ToSchema)]
pub(crate) struct AgentRow {
    #[schema(value_type = HexAddress)]
    address: Address,
    record_count: u64,
    next_sequence: u64,
    #[schema(value_type = Hex32)]
    last_leaf_hash: B256,
    first_seen_ms: u64,
    last_seen_ms: u64,
}

/// A record of the log, its commitments only.
#[derive(Serialize, ToSchema)]
pub(crate) struct RecordRow {
    index: u64,
    #[schema(value_type = Hex32)]
    leaf_hash: B256,
    #[schema(value_type = HexAddress)]
    agent: Address,
    sequence: u64,
    timestamp_ms: u64,
    model: String,
    #[schema(value_type = Hex32)]
    input_commitment: B256,
    #[schema(value_type = Hex32)]
    output_commitment: B256,
    #[schema(value_type = Option<Hex32>)]
    metadata_commitment: Option<B256>,
    #[schema(value_type = Hex32)]
    previous: B256,
}

/// A co-sign decision.
#[derive(Serialize, ToSchema)]
pub(crate) struct DecisionView {
    #[schema(value_type = Hex32)]
    request_id: B256,
    #[schema(value_type = HexAddress)]
    wallet: Address,
    /// Unix seconds.
    created_at: u64,
    /// The same time in ISO 8601 UTC.
    created_at_iso: String,
    outcome: Outcome,
    reasons: Vec<Reason>,
    /// Each reason in words, amounts in token units ("0.5 ETH is over the per-payment cap of
    /// 0.1 ETH"); `reasons` keeps the exact base-unit values.
    reasons_text: Vec<String>,
    policy_version: u32,
    #[schema(value_type = Hex32)]
    policy_hash: B256,
    signed: bool,
    #[schema(value_type = Option<Hex32>)]
    logged_leaf: Option<B256>,
    /// The agent's audit record of the model call this payment was made within (x402), once
    /// the agent bound it: its disclosure shows what the agent read, answered and paid.
    #[schema(value_type = Option<Hex32>)]
    call_leaf_hash: Option<B256>,
}

/// Spend of one token by one wallet within the window.
#[derive(Serialize, ToSchema)]
pub(crate) struct SpendRow {
    #[schema(value_type = HexAddress)]
    wallet: Address,
    token: Token,
    window_seconds: u64,
    reserved: Amount,
    settled: Amount,
    released: Amount,
    /// Reserved plus settled: what counts against the limits.
    committed: Amount,
    approvals: u64,
}

fn row(value: impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// The `format` of a list that is not paginated (it takes no other parameter).
pub(crate) fn list_format(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Format, ApiError> {
    let params = Params::parse(query, &[])?;
    if let Some(key) = ["cursor", "limit"]
        .into_iter()
        .find(|k| params.0.contains_key(*k))
    {
        return Err(invalid(format!(
            "this list is not paginated: `{key}` does not apply (it takes format)"
        )));
    }
    params.format()
}

/// Renders one page of `rows` (JSON objects with `columns` as keys) in `format`.
pub(crate) fn page(
    format: Format,
    columns: &[&str],
    rows: Vec<Value>,
    next: Option<String>,
) -> Response {
    let mut response = match format {
        Format::Json => Json(Page {
            items: rows,
            next_cursor: next.clone(),
        })
        .into_response(),
        Format::JsonLines => {
            let mut body = String::new();
            for row in &rows {
                body.push_str(&row.to_string());
                body.push('\n');
            }
            ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
        }
        Format::Csv => {
            let mut body = columns.join(",");
            body.push('\n');
            for row in &rows {
                let fields: Vec<String> = columns
                    .iter()
                    .map(|c| csv_field(row.get(*c).unwrap_or(&Value::Null)))
                    .collect();
                body.push_str(&fields.join(","));
                body.push('\n');
            }
            ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response()
        }
    };
    if format != Format::Json
        && let Some(cursor) = next.and_then(|c| HeaderValue::from_str(&c).ok())
    {
        response.headers_mut().insert("x-next-cursor", cursor);
    }
    response
}

/// The cursor for the next page: the last row's key, when the page is full.
fn next_cursor(rows: usize, limit: u32, last: Option<String>) -> Option<String> {
    (rows == limit as usize).then_some(last).flatten()
}

const AGENT_COLUMNS: &[&str] = &[
    "address",
    "record_count",
    "next_sequence",
    "last_leaf_hash",
    "first_seen_ms",
    "last_seen_ms",
];

async fn agents(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(&["auditor", "admin"])?;
    let params = Params::parse(query, &[])?;
    let (limit, format) = (params.limit()?, params.format()?);
    let after = params
        .cursor()
        .map(|c| {
            c.parse::<Address>()
                .map_err(|_| invalid("`cursor` is not one this API gave"))
        })
        .transpose()?;
    let agents = state.store().agents(after, limit).await?;
    let next = next_cursor(
        agents.len(),
        limit,
        agents.last().map(|a| a.address.to_string()),
    );
    let rows = agents
        .into_iter()
        .map(|a| {
            row(AgentRow {
                address: a.address,
                record_count: a.record_count,
                next_sequence: a.next_sequence,
                last_leaf_hash: a.last_leaf_hash,
                first_seen_ms: a.first_seen_ms,
                last_seen_ms: a.last_seen_ms,
            })
        })
        .collect();
    Ok(page(format, AGENT_COLUMNS, rows, next))
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
    let params = Params::parse(query, &["model", "from_ms", "to_ms"])?;
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

const DECISION_COLUMNS: &[&str] = &[
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
];

async fn decisions(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(&["auditor", "admin"])?;
    let params = Params::parse(query, &["wallet", "outcome", "from", "to"])?;
    let outcome = match params.0.get("outcome").map(String::as_str) {
        None => None,
        Some("approved") => Some(Outcome::Approved),
        Some("pending_approval") => Some(Outcome::PendingApproval),
        Some("denied") => Some(Outcome::Denied),
        Some(other) => {
            return Err(invalid(format!(
                "`outcome={other}`: use approved, pending_approval or denied"
            )));
        }
    };
    let after = params
        .cursor()
        .map(|c| {
            c.split_once(':')
                .and_then(|(at, id)| Some((at.parse().ok()?, id.parse::<B256>().ok()?)))
                .ok_or_else(|| invalid("`cursor` is not one this API gave"))
        })
        .transpose()?;
    let filter = DecisionFilter {
        wallet: params.get("wallet", "an address")?,
        outcome,
        from: params.get("from", "a time in Unix seconds")?,
        to: params.get("to", "a time in Unix seconds")?,
        after,
        limit: params.limit()?,
    };
    let format = params.format()?;
    let decisions = state.store().decisions(&filter).await?;
    let next = next_cursor(
        decisions.len(),
        filter.limit,
        decisions
            .last()
            .map(|d| format!("{}:{}", d.created_at, d.request_id)),
    );
    let tokens = decisions
        .iter()
        .flat_map(|d| crate::console::reason_tokens(&d.reasons))
        .collect();
    let units = crate::console::units_of(&state, tokens).await;
    let rows = decisions
        .into_iter()
        .map(|d| {
            row(DecisionView {
                request_id: d.request_id,
                wallet: d.wallet,
                created_at: d.created_at,
                created_at_iso: chaperone_core::readable::iso8601(d.created_at),
                outcome: d.outcome,
                reasons_text: d
                    .reasons
                    .iter()
                    .map(|r| crate::console::reason_words(r, &units))
                    .collect(),
                reasons: d.reasons,
                policy_version: d.policy_version,
                policy_hash: d.policy_hash,
                signed: d.signed,
                logged_leaf: d.logged_leaf,
                call_leaf_hash: d.call_leaf_hash,
            })
        })
        .collect();
    Ok(page(format, DECISION_COLUMNS, rows, next))
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

async fn spend(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(&["auditor", "admin"])?;
    let params = Params::parse(query, &["wallet", "token", "window"])?;
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

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
use chaperone_api::{
    ErrorCode, Format, Page,
    compliance::{AgentRow, DEFAULT_LIMIT, DecisionView, MAX_LIMIT, RecordRow, SpendRow},
};
use chaperone_core::{
    Address, B256,
    policy::{Amount, Outcome, Seconds, Token},
};
use chaperone_store::{DecisionFilter, RecordFilter};
use serde_json::Value;

use crate::{AppState, admin::Caller, api::ApiError};

/// Page size when `limit` is not given, and the largest one allowed.

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/agents", get(agents))
        .route("/v1/agents/{address}/records", get(agent_records))
        .route("/v1/decisions", get(decisions))
        .route("/v1/spend", get(spend))
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidQuery, message)
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
        self.0
            .get("format")
            .map_or(Ok(Format::Json), |f| f.parse().map_err(invalid))
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

fn row(value: impl serde::Serialize) -> Value {
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

//! `GET /v1/decisions` beyond the wallets' co-sign decisions: `kind=tool` lists the agents'
//! tool-policy decisions (the MCP gateway's, the rows of `/v1/tool-decisions`), `kind=all` both
//! in one listing by time, each row tagged by `kind` (`chaperone_api::tools::DecisionItem`), so
//! a compliance officer reads every decision in one place and exports it as CSV or JSON Lines.
//!
//! Without `kind`, the listing is the payments' (as it was before tool decisions existed: the
//! SDKs, the evidence pack and officers' scripts read those columns), unless a filter only tool
//! decisions have (`tool`, `upstream`, `agent`) is given, which selects `kind=tool`.

use axum::response::Response;
use chaperone_api::tools::ToolOutcome;
use chaperone_store::ToolDecisionFilter;
use serde_json::{Value, json};

use crate::{
    AppState,
    compliance::{DECISION_COLUMNS, cursor_of, payment_filter, payment_rows},
    http::ApiError,
    paging::{Params, invalid, next_cursor, page, row},
    tools::tool_decision_views,
};

/// Which decisions a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The wallets' co-sign decisions.
    Payment,
    /// The agents' tool-policy decisions.
    Tool,
    /// Both.
    All,
}

/// Filters only payment decisions have, and only tool decisions have.
const PAYMENT_ONLY: &[&str] = &["wallet", "reason"];
const TOOL_ONLY: &[&str] = &["tool", "upstream", "agent"];

impl Kind {
    /// The listing's kind: `kind`, or the one its filters imply. A filter of the other kind is
    /// 400 (it would select nothing, silently).
    pub(crate) fn of(params: &Params) -> Result<Self, ApiError> {
        let has = |names: &'static [&'static str]| {
            names.iter().find(|n| params.0.contains_key(**n)).copied()
        };
        let kind = match params.0.get("kind").map(String::as_str) {
            None if has(TOOL_ONLY).is_some() => Self::Tool,
            None | Some("payment") => Self::Payment,
            Some("tool") => Self::Tool,
            Some("all") => Self::All,
            Some(other) => {
                return Err(invalid(format!("`kind={other}`: use payment, tool or all")));
            }
        };
        let other = match kind {
            Self::Payment => has(TOOL_ONLY).map(|f| (f, "tool")),
            Self::Tool => has(PAYMENT_ONLY).map(|f| (f, "payment")),
            Self::All => has(PAYMENT_ONLY).and(has(TOOL_ONLY)).map(|f| (f, "tool")),
        };
        if let Some((filter, of)) = other {
            let message = if kind == Self::All {
                format!(
                    "`{filter}` filters {of} decisions and `{}` payment decisions: together they select nothing",
                    has(PAYMENT_ONLY).unwrap_or_default()
                )
            } else {
                format!("`{filter}` filters {of} decisions: use kind={of} or kind=all")
            };
            return Err(invalid(message));
        }
        Ok(kind)
    }
}

/// The tool decisions' filter, or `None` when `kind=all` selects none of them (an outcome
/// only payments have, or a payment-only filter).
fn tool_filter(params: &Params, kind: Kind) -> Result<Option<ToolDecisionFilter>, ApiError> {
    let strict = kind == Kind::Tool;
    if !strict && PAYMENT_ONLY.iter().any(|f| params.0.contains_key(*f)) {
        return Ok(None);
    }
    let outcome = match params.0.get("outcome").map(|o| o.parse::<ToolOutcome>()) {
        None => None,
        Some(Ok(o)) => Some(o.as_str().to_owned()),
        Some(Err(_)) if !strict => return Ok(None),
        Some(Err(e)) => return Err(invalid(format!("`outcome`: {e}"))),
    };
    Ok(Some(ToolDecisionFilter {
        tool: params.0.get("tool").cloned(),
        upstream: params.0.get("upstream").cloned(),
        agent: params.get("agent", "an address")?,
        outcome,
        from: params.get("from", "a time in Unix seconds")?,
        to: params.get("to", "a time in Unix seconds")?,
        after: cursor_of(params)?,
        limit: params.limit()?,
        newest_first: false,
    }))
}

/// A tool decision's columns in the listing (beside `kind`).
const TOOL_COLUMNS: &[&str] = &[
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
    "arguments_hash",
    "approval_status",
    "approval_by",
    "approval_at",
    "decided_at_ms",
    "received_at",
    "signature",
];

/// The tool decisions `filter` selects, as tagged rows, each with the (time, id) it sorts by.
async fn tool_rows(
    state: &AppState,
    filter: &ToolDecisionFilter,
) -> Result<Vec<((u64, String), Value)>, ApiError> {
    Ok(tool_decision_views(state, filter)
        .await?
        .into_iter()
        .map(|view| {
            let key = (view.received_at, view.id.to_string());
            let mut value = row(view);
            value["kind"] = json!("tool");
            (key, value)
        })
        .collect())
}

/// `GET /v1/decisions?kind=tool|all`.
pub(crate) async fn list(
    state: &AppState,
    params: &Params,
    kind: Kind,
) -> Result<Response, ApiError> {
    let format = params.format()?;
    let limit = params.limit()?;
    let tools = match tool_filter(params, kind)? {
        Some(filter) => tool_rows(state, &filter).await?,
        None => Vec::new(),
    };
    if kind == Kind::Tool {
        let next = next_cursor(
            tools.len(),
            limit,
            tools.last().map(|((at, id), _)| format!("{at}:{id}")),
        );
        let columns: Vec<&str> = std::iter::once("kind")
            .chain(TOOL_COLUMNS.iter().copied())
            .collect();
        return Ok(page(
            format,
            &columns,
            tools.into_iter().map(|(_, v)| v).collect(),
            next,
        ));
    }
    if params.0.contains_key("outcome")
        && tool_filter(params, kind)?.is_none()
        && payment_filter(params, false)?.is_none()
    {
        return Err(invalid(format!(
            "`outcome={}`: use approved, pending_approval, denied (payments), allowed or approval_required (tool calls)",
            params.0["outcome"]
        )));
    }
    let payments = match payment_filter(params, false)? {
        Some(filter) if !TOOL_ONLY.iter().any(|f| params.0.contains_key(*f)) => {
            payment_rows(state, &filter, format)
                .await?
                .into_iter()
                .map(|value| {
                    let at = value["created_at"].as_u64().unwrap_or_default();
                    let id = value["request_id"].as_str().unwrap_or_default().to_owned();
                    ((at, id), value)
                })
                .collect()
        }
        _ => Vec::new(),
    };
    // Both are sorted by (time, id) and the cursor applies to both: merge, keep `limit`.
    let mut merged: Vec<((u64, String), Value)> = payments.into_iter().chain(tools).collect();
    merged.sort_by(|a, b| a.0.cmp(&b.0));
    merged.truncate(limit as usize);
    let next = next_cursor(
        merged.len(),
        limit,
        merged.last().map(|((at, id), _)| format!("{at}:{id}")),
    );
    let mut columns: Vec<&str> = vec!["kind"];
    columns.extend(DECISION_COLUMNS);
    columns.extend(
        TOOL_COLUMNS
            .iter()
            .filter(|c| !DECISION_COLUMNS.contains(c)),
    );
    Ok(page(
        format,
        &columns,
        merged.into_iter().map(|(_, v)| v).collect(),
        next,
    ))
}

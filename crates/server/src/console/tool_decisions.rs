//! The decisions of agents' tool policies (the MCP gateway's, `GET /v1/tool-decisions`),
//! newest first, filterable by tool, upstream and outcome; each with its reasons, policy and
//! the call's record. A page of its own, linked from the Decisions page: those are the wallet's
//! decisions about money, these are about tool calls (see `chaperone_api::tools`).
//!
//! Tool names and reasons are chosen by the agent's upstreams and the agent: maud escapes them.

use axum::{
    Router,
    extract::{Query, State},
    response::Response,
    routing::get,
};
use chaperone_api::tools::{ToolDecisionView, ToolOutcome};
use chaperone_store::ToolDecisionFilter;
use maud::{Markup, html};
use serde::Deserialize;

use super::{PageError, Session, export_url, filter_status, page_response, short, when};
use crate::{AppState, words::shown_escaped};

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/decisions/tools", get(tool_decisions))
}

/// The most decisions one page shows.
const PAGE: u32 = 200;

#[derive(Deserialize, Default)]
struct Filter {
    #[serde(default)]
    tool: String,
    #[serde(default)]
    upstream: String,
    #[serde(default)]
    outcome: String,
}

async fn tool_decisions(
    State(state): State<AppState>,
    session: Session,
    Query(filter): Query<Filter>,
) -> Result<Response, PageError> {
    session.require(&["admin", "auditor"])?;
    let text = |t: &str| Some(t.trim().to_owned()).filter(|t| !t.is_empty());
    let outcome = match text(&filter.outcome) {
        None => Ok(None),
        Some(o) => o.parse::<ToolOutcome>().map(Some),
    };
    let (rows, problem) = match outcome {
        Ok(outcome) => {
            let parsed = ToolDecisionFilter {
                tool: text(&filter.tool),
                upstream: text(&filter.upstream),
                outcome: outcome.map(|o| o.as_str().to_owned()),
                limit: PAGE,
                newest_first: true,
                ..Default::default()
            };
            (
                crate::tools::tool_decision_views(&state, &parsed).await?,
                None,
            )
        }
        Err(message) => (Vec::new(), Some(message)),
    };
    let export = |format: &str| {
        export_url(
            "/v1/tool-decisions",
            format,
            &[
                ("tool", &filter.tool),
                ("upstream", &filter.upstream),
                ("outcome", &filter.outcome),
            ],
        )
    };
    let status = filter_status(&problem);
    Ok(page_response(
        status,
        "Tool decisions",
        Some(&session),
        html! {
            p { "Each tool call an agent made through " code { "chaperone mcp" } ", as its tool policy decided it. "
                "The wallet's decisions about payments are on " a href="/decisions" { "Decisions" } "." }
            form.filters method="get" action="/decisions/tools" {
                label { "Tool " input type="text" name="tool" value=(filter.tool); }
                label { "Upstream " input type="text" name="upstream" value=(filter.upstream); }
                label { "Outcome "
                    select name="outcome" {
                        @for (value, label) in [("", "any"), ("allowed", "allowed"), ("denied", "denied"), ("approval_required", "approval required")] {
                            option value=(value) selected[filter.outcome == value] { (label) }
                        }
                    }
                }
                button type="submit" { "Filter" }
            }
            @if let Some(problem) = &problem {
                p.error role="alert" { "This filter cannot be applied: " (problem) }
            } @else {
                p.exports { "Export: " a href=(export("csv")) { "CSV" } " · " a href=(export("jsonl")) { "JSON Lines" } }
                @if rows.is_empty() { p.empty { "No tool decisions match." } }
            }
            (table(&rows))
        },
    ))
}

/// The tool decisions' table (this page's and the Decisions page's): tool names, reasons and
/// hashes are the agents' and their upstreams', escaped by maud; characters drawn as nothing
/// or that reorder text are shown as `\uXXXX` (`shown_escaped`), as in the approvals inbox.
pub(super) fn table(rows: &[ToolDecisionView]) -> Markup {
    html! {
        table.decisions.tools {
            thead { tr { th { "Received" } th { "Agent" } th { "Tool" } th { "Outcome" } th { "Reasons" } th { "Approval" } th { "Policy" } th { "Record" } } }
            tbody {
                @for row in rows {
                    tr class=(row.outcome.as_str()) {
                        td { (when(row.received_at)) }
                        td { (short(&row.agent)) }
                        td { code { (shown_escaped(&row.upstream)) "/" (shown_escaped(&row.tool)) } }
                        td.outcome { (row.outcome.as_str().replace('_', " ")) }
                        td { @for reason in &row.reasons { div.reason { (shown_escaped(reason)) } } }
                        td.approval {
                            @if let Some(status) = &row.approval_status {
                                (status)
                                @if let Some(by) = &row.approval_by { " by " (by) }
                                @if let Some(hash) = row.arguments_hash {
                                    div { small { "arguments " code { (hash) } } }
                                }
                            }
                        }
                        td { "v" (row.policy_version) " " small { (row.policy_hash.get(..10).unwrap_or(&row.policy_hash)) } }
                        td {
                            @if let Some(leaf) = row.leaf_hash {
                                a href=(format!("/audit/records/{leaf}")) { "record" }
                            }
                        }
                    }
                }
            }
        }
    }
}

//! The auditor's evidence pack (roles `auditor`, `admin`), for a period and a set of agents
//! and wallets: `GET /v1/evidence/bundle`, the machine-checkable [`EvidenceBundle`] (records
//! with their leaf data and inclusion proofs, the anchored checkpoints they are proved against,
//! consistency proofs between consecutive checkpoints, and the decisions), and
//! `GET /v1/evidence/report`, one self-contained HTML page with plots (report.rs, charts.rs)
//! that the console offers as a button and `chaperone report` saves.

mod bundle;
mod charts;
mod report;

use axum::{
    extract::{Query, State, rejection::QueryRejection},
    http::header,
    response::{IntoResponse, Response},
};
use chaperone_api::{
    ErrorCode,
    evidence::{EvidenceBundle, EvidenceQuery, MAX_EVIDENCE_PERIOD_SECS},
};
use chaperone_core::Address;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    http::{ApiError, Caller},
    openapi::error_answers,
};

/// The most agents or wallets one pack names.
const MAX_SELECTED: usize = 100;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(evidence_bundle))
        .routes(routes!(evidence_report))
}

/// What a pack covers, checked.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    pub(crate) from: u64,
    pub(crate) to: u64,
    pub(crate) agents: Vec<Address>,
    pub(crate) wallets: Vec<Address>,
}

impl Scope {
    fn parse(query: Result<Query<EvidenceQuery>, QueryRejection>) -> Result<Self, ApiError> {
        let Query(query) =
            query.map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.body_text()))?;
        if query.from >= query.to {
            return Err(ApiError::new(
                ErrorCode::InvalidQuery,
                format!("`from` ({}) must be before `to` ({})", query.from, query.to),
            ));
        }
        if query.to - query.from > MAX_EVIDENCE_PERIOD_SECS {
            return Err(ApiError::new(
                ErrorCode::OutOfRange,
                format!(
                    "a pack covers at most {} days: ask for the period in parts",
                    MAX_EVIDENCE_PERIOD_SECS / 86_400
                ),
            ));
        }
        Ok(Self {
            from: query.from,
            to: query.to,
            agents: addresses("agents", query.agents.as_deref())?,
            wallets: addresses("wallets", query.wallets.as_deref())?,
        })
    }

    /// Whether the pack covers everything (no agent or wallet named).
    pub(crate) fn everything(&self) -> bool {
        self.agents.is_empty() && self.wallets.is_empty()
    }
}

/// A comma-separated list of addresses; each is named when it does not parse.
fn addresses(name: &str, list: Option<&str>) -> Result<Vec<Address>, ApiError> {
    let Some(list) = list.filter(|l| !l.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let mut parsed = Vec::new();
    for (i, item) in list.split(',').enumerate() {
        // The item itself is not echoed: the message may end up in a page.
        let address = item.trim().parse::<Address>().map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidQuery,
                format!(
                    "`{name}`: item {} is not an address (0x and 40 hex digits)",
                    i + 1
                ),
            )
        })?;
        if !parsed.contains(&address) {
            parsed.push(address);
        }
    }
    if parsed.len() > MAX_SELECTED {
        return Err(ApiError::new(
            ErrorCode::OutOfRange,
            format!("`{name}` names at most {MAX_SELECTED} addresses"),
        ));
    }
    Ok(parsed)
}

error_answers!(EvidenceErrors: InvalidQuery, OutOfRange);

/// The machine-checkable evidence of a period: records (leaf data), inclusion proofs,
/// anchored checkpoints, consistency proofs between them, and the co-sign decisions.
/// `chaperone verify --bundle` checks it offline against the chain.
#[utoipa::path(
    get,
    path = "/v1/evidence/bundle",
    description = "Roles: auditor, admin. Records not yet covered by an anchored checkpoint \
                   are left out and counted in `unanchored_records`.",
    security(("bearer" = [])),
    params(EvidenceQuery),
    responses(
        (status = 200, description = "the bundle", body = EvidenceBundle),
        EvidenceErrors,
    )
)]
async fn evidence_bundle(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<EvidenceQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(&["auditor", "admin"])?;
    let scope = Scope::parse(query)?;
    let bundle = bundle::build(&state, &scope).await?;
    Ok(axum::Json(bundle).into_response())
}

/// The human-readable report of a period: one self-contained HTML page (no scripts, no
/// external fonts or images; printable to PDF from a browser) with spend against the caps,
/// decisions by outcome and reason, approvals and their latency, records per agent per day,
/// anchoring lag, and how the log meets record-keeping rules (EU AI Act Article 12).
#[utoipa::path(
    get,
    path = "/v1/evidence/report",
    description = "Roles: auditor, admin.",
    security(("bearer" = [])),
    params(EvidenceQuery),
    responses(
        (status = 200, description = "the report", content_type = "text/html", body = String),
        EvidenceErrors,
    )
)]
async fn evidence_report(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<EvidenceQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(&["auditor", "admin"])?;
    let scope = Scope::parse(query)?;
    let html = report::render(&state, &scope).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // The page is self-contained: forbid anything it might load or run.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
            ),
        ],
        html,
    )
        .into_response())
}

//! The audit log: agents and their records with each record's anchoring status (received →
//! checkpointed → anchored, with block and transaction), the latest checkpoint and anchor, and
//! a page that verifies an uploaded disclosure bundle.

use axum::{
    Router,
    extract::{Multipart, Path, State},
    response::Response,
    routing::get,
};
use chaperone_api::ErrorCode;
use chaperone_core::{Address, B256, DisclosureBundle};
use chaperone_store::{Anchor, LoggedRecord, RecordFilter, StoredCheckpoint};
use maud::{Markup, html};

use super::{PageError, Session, page, short, when};
use crate::{AppState, http::ApiError, verification::verify_bundle};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/audit", get(overview))
        .route("/audit/agents/{address}", get(agent))
        .route("/audit/records/{leaf_hash}", get(record))
        .route("/audit/verify", get(verify_form).post(verify))
}

const ROLES: &[&str] = &["admin", "auditor"];

/// The log's progress: the latest checkpoint and the latest anchor.
struct Progress {
    checkpoint: Option<(StoredCheckpoint, u64)>,
    anchor: Option<Anchor>,
}

impl Progress {
    async fn read(state: &AppState) -> Result<Self, PageError> {
        Ok(Self {
            checkpoint: state.store().latest_checkpoint().await?,
            anchor: state.store().latest_anchor().await?,
        })
    }

    /// Where a record at `index` stands.
    fn status(&self, index: u64) -> Markup {
        match (&self.anchor, &self.checkpoint) {
            (Some(anchor), _) if index < anchor.size => {
                let tx = anchor.tx_hash.to_string();
                html! {
                    span.status.anchored {
                        "anchored in block " (anchor.block_number) ", tx "
                        code title=(tx) { (tx[..10]) "…" }
                    }
                }
            }
            (_, Some((checkpoint, _))) if index < checkpoint.size => {
                html! { span.status.checkpointed { "checkpointed" } }
            }
            _ => html! { span.status.received { "received" } },
        }
    }

    fn summary(&self) -> Markup {
        html! {
            dl.progress {
                dt { "Latest checkpoint" }
                dd {
                    @match &self.checkpoint {
                        Some((checkpoint, at)) => { "size " (checkpoint.size) ", root " code { (checkpoint.root) } ", signed " (when(*at)) }
                        None => { "none yet" }
                    }
                }
                dt { "Latest anchor" }
                dd {
                    @match &self.anchor {
                        Some(anchor) => { "size " (anchor.size) " in block " (anchor.block_number) ", transaction " code { (anchor.tx_hash) } }
                        None => { "none yet" }
                    }
                }
            }
        }
    }
}

async fn overview(State(state): State<AppState>, session: Session) -> Result<Response, PageError> {
    session.require(ROLES)?;
    let progress = Progress::read(&state).await?;
    let agents = state.store().agents(None, 1000).await?;
    let checkpoints = state.store().recent_checkpoints(10).await?;
    Ok(page(
        "Audit log",
        &session,
        html! {
            (progress.summary())
            (evidence_buttons(state.now()))
            p { a href="/audit/verify" { "Verify a disclosure bundle" } " · Export agents: "
                a href="/v1/agents?format=csv" { "CSV" } " · " a href="/v1/agents?format=jsonl" { "JSON Lines" } }
            h2 { "Latest checkpoints" }
            @if checkpoints.is_empty() { p.empty { "No checkpoint signed yet." } }
            table.checkpoints {
                thead { tr { th { "Size" } th { "Root" } th { "Signed" } th { "Anchored" } } }
                tbody {
                    @for c in &checkpoints {
                        tr {
                            td { (c.size) }
                            td { code { (c.root) } }
                            td { (when(c.signed_at)) }
                            td {
                                @match c.anchor {
                                    Some((tx, block)) => { "block " (block) ", tx " code { (tx) } }
                                    None => { span.status.checkpointed { "not yet" } }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Agents" }
            @if agents.is_empty() { p.empty { "No agent has logged a record yet." } }
            table.agents {
                thead { tr { th { "Agent" } th { "Records" } th { "First seen" } th { "Last seen" } } }
                tbody {
                    @for agent in &agents {
                        tr {
                            td { a href=(format!("/audit/agents/{}", agent.address)) { (short(&agent.address)) } }
                            td { (agent.record_count) }
                            td { (when(agent.first_seen_ms / 1000)) }
                            td { (when(agent.last_seen_ms / 1000)) }
                        }
                    }
                }
            }
        },
    ))
}

/// The auditor's evidence pack for the last week or month: the printable report and the
/// bundle `chaperone verify --bundle` checks (`GET /v1/evidence/…`, which takes the session).
fn evidence_buttons(now: u64) -> Markup {
    let periods = [("last 7 days", 7 * 86_400), ("last 30 days", 30 * 86_400)];
    html! {
        p.evidence {
            "Evidence pack: "
            @for (i, (name, span)) in periods.iter().enumerate() {
                @if i > 0 { " · " }
                @let query = format!("from={}&to={}", now.saturating_sub(*span), now + 1);
                a.button href=(format!("/v1/evidence/report?{query}")) { "Report, " (name) }
                " ("
                a href=(format!("/v1/evidence/bundle?{query}")) download="evidence-bundle.json" { "bundle" }
                ")"
            }
        }
    }
}

fn commitments(record: &LoggedRecord) -> Markup {
    let short_hash = |h: &B256| {
        let text = h.to_string();
        html! { code title=(text) { (text[..10]) "…" } }
    };
    html! {
        "in " (short_hash(&record.record.input.0)) " out " (short_hash(&record.record.output.0))
        @if let Some(metadata) = &record.record.metadata { " meta " (short_hash(&metadata.0)) }
    }
}

/// Records per page of an agent's list.
const RECORDS_PER_PAGE: u32 = 200;

#[derive(serde::Deserialize)]
struct After {
    after: Option<u64>,
}

async fn agent(
    State(state): State<AppState>,
    session: Session,
    Path(address): Path<String>,
    axum::extract::Query(after): axum::extract::Query<After>,
) -> Result<Response, PageError> {
    session.require(ROLES)?;
    let agent: Address = address.parse().map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("`{address}` is not an address"),
        )
    })?;
    let progress = Progress::read(&state).await?;
    let (count, _) = state.store().agent_head(agent).await?;
    let records = state
        .store()
        .records(&RecordFilter {
            agent: Some(agent),
            model: None,
            from_ms: None,
            to_ms: None,
            after_index: after.after,
            limit: RECORDS_PER_PAGE,
        })
        .await?;
    let next = (records.len() == RECORDS_PER_PAGE as usize)
        .then(|| records.last().map(|r| r.index))
        .flatten();
    Ok(page(
        "Agent records",
        &session,
        html! {
            p { "Agent " code { (agent) } ": " (count) " records. "
                "Export: " a href=(format!("/v1/agents/{agent}/records?format=csv")) { "CSV" }
                " · " a href=(format!("/v1/agents/{agent}/records?format=jsonl")) { "JSON Lines" } }
            (progress.summary())
            table.records {
                thead { tr { th { "Index" } th { "Seq" } th { "Time" } th { "Model" } th { "Commitments" } th { "Status" } } }
                tbody {
                    @for r in &records {
                        tr {
                            td { a href=(format!("/audit/records/{}", r.leaf_hash)) { (r.index) } }
                            td { (r.record.sequence) }
                            td { (when(r.record.timestamp_ms / 1000)) }
                            td { (r.record.model) }
                            td { (commitments(r)) }
                            td { (progress.status(r.index)) }
                        }
                    }
                }
            }
            @if let Some(last) = next {
                p { a href=(format!("/audit/agents/{agent}?after={last}")) { "Next " (RECORDS_PER_PAGE) " →" } }
            }
        },
    ))
}

async fn record(
    State(state): State<AppState>,
    session: Session,
    Path(leaf_hash): Path<String>,
) -> Result<Response, PageError> {
    session.require(ROLES)?;
    let leaf: B256 = leaf_hash.parse().map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("`{leaf_hash}` is not a leaf hash"),
        )
    })?;
    let record = state
        .store()
        .record(leaf)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no record {leaf}")))?;
    let progress = Progress::read(&state).await?;
    Ok(page(
        "Record",
        &session,
        html! {
            dl {
                dt { "Leaf hash" } dd { code { (record.leaf_hash) } }
                dt { "Index" } dd { (record.index) }
                dt { "Agent" } dd { a href=(format!("/audit/agents/{}", record.record.agent)) { code { (record.record.agent) } } }
                dt { "Sequence" } dd { (record.record.sequence) }
                dt { "Time" } dd { (when(record.record.timestamp_ms / 1000)) }
                dt { "Model" } dd { (record.record.model) }
                dt { "Input commitment" } dd { code { (record.record.input.0) } }
                dt { "Output commitment" } dd { code { (record.record.output.0) } }
                @if let Some(metadata) = &record.record.metadata { dt { "Metadata commitment" } dd { code { (metadata.0) } } }
                dt { "Status" } dd { (progress.status(record.index)) }
            }
            p { a href=(format!("/v1/records/{leaf}/proof")) { "Inclusion proof (JSON)" } }
        },
    ))
}

fn verify_upload(session: &Session) -> Markup {
    html! {
        form.verify method="post" action="/audit/verify" enctype="multipart/form-data" {
            (session.csrf_field())
            label { "Disclosure file (" code { "disclosure.json" } ") " input type="file" name="disclosure" accept="application/json,.json" required; }
            button type="submit" { "Verify" }
        }
    }
}

async fn verify_form(session: Session) -> Result<Response, PageError> {
    session.require(ROLES)?;
    Ok(page(
        "Verify a disclosure",
        &session,
        html! {
            p { "Checks the bundle end to end: the content opens the commitments, the agent signed the record, the log includes it, the operator signed the checkpoint, and the chain's AuditLog holds that checkpoint." }
            (verify_upload(&session))
        },
    ))
}

async fn verify(
    State(state): State<AppState>,
    session: Session,
    mut form: Multipart,
) -> Result<Response, PageError> {
    session.require(ROLES)?;
    let malformed = |e: String| ApiError::new(ErrorCode::InvalidRequest, e);
    let (mut csrf, mut file) = (String::new(), None);
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| malformed(e.body_text()))?
    {
        match field.name() {
            Some("csrf") => csrf = field.text().await.map_err(|e| malformed(e.body_text()))?,
            Some("disclosure") => {
                file = Some(field.bytes().await.map_err(|e| malformed(e.body_text()))?)
            }
            _ => {}
        }
    }
    session.check_csrf(&csrf)?;
    let file = file.ok_or_else(|| malformed("choose a disclosure file".into()))?;
    let result = match serde_json::from_slice::<DisclosureBundle>(&file) {
        Err(e) => Err(format!("not a disclosure bundle: {e}")),
        Ok(bundle) => verify_bundle(&state, &bundle)
            .await
            .map(|verified| (verified, bundle.disclosed))
            .map_err(|e| e.message().to_owned()),
    };
    Ok(page(
        "Verify a disclosure",
        &session,
        html! {
            @match &result {
                Ok((v, disclosed)) => {
                    p.valid { strong { "VALID" } ": record " code { (v.leaf_hash) } " (index " (v.index) ") by agent " code { (v.agent) } " is in the log at anchored size " (v.checkpoint_size) "." }
                    dl {
                        dt { "Checkpoint root" } dd { code { (v.checkpoint_root) } }
                        dt { "AuditLog" } dd { code { (v.audit_log) } }
                        dt { "Log id" } dd { code { (v.log_id) } }
                        @if let Some(tx) = v.anchor_tx { dt { "Anchor transaction" } dd { code { (tx) } } }
                    }
                    (super::disclosed::disclosed(disclosed))
                }
                Err(message) => { p.invalid { strong { "INVALID" } ": " (message) } }
            }
            h2 { "Verify another" }
            (verify_upload(&session))
        },
    ))
}

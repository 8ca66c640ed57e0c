//! `GET /metrics`: what an operator graphs and alerts on, in the Prometheus text format.
//!
//! Counters and the latency histogram are this replica's (Prometheus sums replicas); the
//! queue depths and anchoring figures are read from the database at scrape time, so every
//! replica reports the same, current values.

use std::time::Duration;

use axum::{
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use chaperone_core::policy::{Outcome, Reason};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

use crate::{AppState, http::ApiError};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    outcome: &'static str,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerLabels {
    worker: &'static str,
}

/// The service's metrics.
pub struct Metrics {
    registry: Registry,
    decisions: Family<DecisionLabels, Counter>,
    cosign_answers: Family<StatusLabels, Counter>,
    cosign_seconds: Histogram,
    records_ingested: Counter,
    worker_errors: Family<WorkerLabels, Counter>,
    unlogged_decisions: Gauge,
    pending_approvals: Gauge,
    log_size: Gauge,
    checkpointed_size: Gauge,
    anchored_size: Gauge,
    anchoring_lag: Gauge,
    unauthorized_spends: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("chaperone");
        let m = Self {
            decisions: Family::default(),
            cosign_answers: Family::default(),
            // 0.5 ms to ~4 s.
            cosign_seconds: Histogram::new(
                prometheus_client::metrics::histogram::exponential_buckets(0.0005, 2.0, 14),
            ),
            records_ingested: Counter::default(),
            worker_errors: Family::default(),
            unlogged_decisions: Gauge::default(),
            pending_approvals: Gauge::default(),
            log_size: Gauge::default(),
            checkpointed_size: Gauge::default(),
            anchored_size: Gauge::default(),
            anchoring_lag: Gauge::default(),
            unauthorized_spends: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "decisions",
            "Co-sign decisions by outcome and reason code (one per reason; `none` when approved without one)",
            m.decisions.clone(),
        );
        registry.register(
            "cosign_answers",
            "Answers of /v1/cosign by HTTP status (429: refused before the database)",
            m.cosign_answers.clone(),
        );
        registry.register(
            "cosign_duration_seconds",
            "Time to answer /v1/cosign",
            m.cosign_seconds.clone(),
        );
        registry.register(
            "records_ingested",
            "Audit records accepted by /v1/records",
            m.records_ingested.clone(),
        );
        registry.register(
            "worker_errors",
            "Failed passes of the background workers (RPC or database errors; retried)",
            m.worker_errors.clone(),
        );
        let gauges = [
            (
                "unlogged_decisions",
                "Decisions waiting to be written to the audit log",
                &m.unlogged_decisions,
            ),
            (
                "pending_approvals",
                "Requests waiting for a human approver",
                &m.pending_approvals,
            ),
            ("log_size", "Leaves in the audit log", &m.log_size),
            (
                "checkpointed_size",
                "Size of the latest signed checkpoint",
                &m.checkpointed_size,
            ),
            (
                "anchored_size",
                "Size of the latest checkpoint anchored on chain",
                &m.anchored_size,
            ),
            (
                "anchoring_lag_leaves",
                "Leaves in the log not yet covered by an anchored checkpoint",
                &m.anchoring_lag,
            ),
            (
                "unauthorized_spends",
                "On-chain outflows no approved co-sign decision accounts for, not yet acknowledged \
                 (alert on > 0: the co-signer key signed without the service)",
                &m.unauthorized_spends,
            ),
        ];
        for (name, help, gauge) in gauges {
            registry.register(name, help, gauge.clone());
        }
        Self { registry, ..m }
    }
}

impl Metrics {
    /// Counts an answer of `/v1/cosign` and, for a decision, its outcome and reasons.
    pub(crate) fn cosign_answered(
        &self,
        status: u16,
        decision: Option<(Outcome, &[Reason])>,
        took: Duration,
    ) {
        self.cosign_seconds.observe(took.as_secs_f64());
        self.cosign_answers
            .get_or_create(&StatusLabels { status })
            .inc();
        let Some((outcome, reasons)) = decision else {
            return;
        };
        let outcome = outcome_label(outcome);
        let codes: Vec<String> = reasons.iter().map(reason_code).collect();
        let codes = if codes.is_empty() {
            vec!["none".to_owned()]
        } else {
            codes
        };
        for reason in codes {
            self.decisions
                .get_or_create(&DecisionLabels { outcome, reason })
                .inc();
        }
    }

    /// Counts accepted audit records.
    pub(crate) fn records_ingested(&self, records: u64) {
        self.records_ingested.inc_by(records);
    }

    /// Counts a failed pass of a background worker.
    pub fn worker_failed(&self, worker: &'static str) {
        self.worker_errors
            .get_or_create(&WorkerLabels { worker })
            .inc();
    }
}

/// An outcome as the API spells it (`pending_approval`).
pub(crate) fn outcome_label(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Approved => "approved",
        Outcome::PendingApproval => "pending_approval",
        Outcome::Denied => "denied",
    }
}

/// A reason's stable code, as the API spells it (`{"code": "window_cap", ...}`).
pub(crate) fn reason_code(reason: &Reason) -> String {
    serde_json::to_value(reason)
        .ok()
        .and_then(|v| v.get("code")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Prometheus metrics (OpenMetrics text): decisions by outcome and reason, co-sign latency,
/// answers by status, records ingested, queue depths, anchoring lag, worker errors, and
/// unacknowledged unauthorized spends (reconciliation).
#[utoipa::path(
    get,
    path = "/metrics",
    responses((status = 200, description = "the metrics"))
)]
pub(crate) async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let store = state.store();
    let m = state.metrics();
    let depths = store.queue_depths(state.now()).await?;
    let (log_size, _) = store.log_head().await?;
    let checkpointed = store.latest_checkpoint().await?.map_or(0, |(c, _)| c.size);
    let anchored = store.latest_anchor().await?.map_or(0, |a| a.size);
    let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    m.unlogged_decisions.set(gauge(depths.unlogged_decisions));
    m.pending_approvals.set(gauge(depths.pending_approvals));
    m.log_size.set(gauge(log_size));
    m.checkpointed_size.set(gauge(checkpointed));
    m.anchored_size.set(gauge(anchored));
    m.anchoring_lag
        .set(gauge(log_size.saturating_sub(anchored)));
    m.unauthorized_spends
        .set(gauge(store.open_unauthorized_spends().await?));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &m.registry)
        .map_err(|_| ApiError::internal("encoding metrics failed"))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

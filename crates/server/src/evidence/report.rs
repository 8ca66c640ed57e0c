//! The human-readable report: one HTML page that carries its own style and no script, font or
//! image from anywhere (a browser prints it to PDF as it is). Every value from outside — token
//! symbols, approvers' names and comments, agents' addresses, reasons — goes through maud, which
//! escapes it for HTML and SVG alike.

use std::collections::{BTreeMap, HashMap};

use chaperone_core::{
    Address, U256,
    policy::{Outcome, Token},
    readable::{TokenUnits, duration, iso8601},
};
use chaperone_store::LoggedRecord;
use maud::{DOCTYPE, Markup, html};

use super::{
    Scope,
    bundle::{decisions_in, visit_received, wallets_in},
    charts::{Bar, BarChart, Guide},
};
use crate::{AppState, http::ApiError, words::units_of};

const DAY: u64 = 86_400;
/// Records counted per agent and day at most (the count says when it stopped).
const MAX_COUNTED_RECORDS: u64 = 1_000_000;
/// Agents drawn one chart each, the busiest first.
const MAX_AGENT_CHARTS: usize = 8;
/// Checkpoints drawn in the anchoring-lag chart.
const MAX_LAG_BARS: u32 = 400;

const STYLE: &str = "
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #111; }
h1 { font-size: 1.6em; margin-bottom: 0; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0; } th, td { border: 1px solid #ccc; padding: .2em .5em; text-align: left; vertical-align: top; }
code, .hex { font-family: ui-monospace, monospace; font-size: .9em; word-break: break-all; }
figure.chart { margin: 1em 0; break-inside: avoid; } figure.chart svg { width: 100%; height: auto; }
figcaption { font-size: .85em; color: #555; }
svg text { font: 11px system-ui, sans-serif; fill: #222; } svg .axis-name { font-weight: 600; }
svg .bar { fill: #3a6ea5; } svg .axis { stroke: #222; } svg .grid { stroke: #e4e4e4; }
svg .guide { stroke: #c0392b; stroke-width: 2; stroke-dasharray: 6 3; }
.note { color: #555; } .muted { color: #777; }
@media print { body { margin: 0; max-width: none; } a { color: inherit; } }
";

fn day_label(day_start: u64) -> String {
    iso8601(day_start).chars().take(10).collect()
}

fn short(value: &impl std::fmt::Display) -> String {
    let text = value.to_string();
    if text.len() > 14 {
        format!("{}…{}", &text[..8], &text[text.len() - 4..])
    } else {
        text
    }
}

/// An amount in token units as a number (for the chart's scale only; labels use exact text).
fn in_units(amount: U256, units: &TokenUnits) -> f64 {
    let exact: f64 = amount.to_string().parse().unwrap_or(f64::MAX);
    exact / 10f64.powi(i32::from(units.decimals))
}

fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Approved => "approved",
        Outcome::PendingApproval => "pending approval",
        Outcome::Denied => "denied",
    }
}

pub(super) async fn render(state: &AppState, scope: &Scope) -> Result<String, ApiError> {
    let now = state.now();
    let wallets = if scope.everything() {
        state.store().wallet_addresses().await?
    } else {
        wallets_in(state, scope).await?
    };
    let spend = spend_section(state, scope, &wallets).await?;
    let decisions = decisions_in(state, scope).await?;
    let decision_section = decision_section(state, &decisions).await?;
    let records = records_section(state, scope, &decisions).await?;
    let lag = lag_section(state, scope).await?;
    let chain = state.log().chain.as_ref();
    let latest = state.store().latest_checkpoint().await?;
    let period = format!("{} to {}", iso8601(scope.from), iso8601(scope.to));
    let scope_text = |list: &[Address]| {
        if list.is_empty() {
            "all".to_owned()
        } else {
            list.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "Chaperone evidence report, " (period) }
                style { (STYLE) }
            }
            body {
                h1 { "Chaperone evidence report" }
                p.note { "Generated " (iso8601(now)) " by the Chaperone policy service. Figures are what this service recorded; the machine-checkable bundle for the same period proves the records against the chain." }
                table.scope {
                    tr { th { "Period" } td { (period) } }
                    tr { th { "Agents" } td.hex { (scope_text(&scope.agents)) } }
                    tr { th { "Wallets" } td.hex { (scope_text(&scope.wallets)) } }
                    tr { th { "Audit log" } td.hex {
                        @match chain {
                            Some(c) => { "log " (c.log_id) " in AuditLog " (c.audit_log) }
                            None => { "not anchored on a chain (no chain configured)" }
                        }
                    } }
                    tr { th { "Latest checkpoint" } td {
                        @match &latest {
                            Some((c, at)) => { "size " (c.size) ", signed " (iso8601(*at)) " — root " code { (c.root) } }
                            None => { "none yet" }
                        }
                    } }
                }
                h2 { "Spend per day against the caps" }
                (spend)
                h2 { "Decisions" }
                (decision_section)
                h2 { "Records per agent per day" }
                (records)
                h2 { "Anchoring" }
                (lag)
                h2 { "Record-keeping (EU AI Act Article 12): what the log does, and what remains the operator's" }
                (article_12())
                h2 { "Checking this period yourself" }
                p {
                    "Fetch the bundle and verify it offline against the chain and the log you trust:"
                }
                pre { code {
                    "chaperone report --from " (scope.from) " --to " (scope.to) " --bundle bundle.json\n"
                    "chaperone verify --bundle bundle.json --rpc-url RPC --audit-log ADDRESS --log-id LOG_ID"
                } }
                p.note { "Every record's inclusion proof is checked against its checkpoint, every consistency proof between consecutive checkpoints, each checkpoint's operator signature, and its anchor on chain." }
            }
        }
    };
    Ok(page.into_string())
}

async fn spend_section(
    state: &AppState,
    scope: &Scope,
    wallets: &[Address],
) -> Result<Markup, ApiError> {
    let mut charts = Vec::new();
    for &wallet in wallets {
        let Some(policy) = state.store().policy(wallet).await? else {
            continue;
        };
        let units = units_of(state, policy.limits.iter().map(|l| l.token).collect()).await;
        for limit in &policy.limits {
            let token_units = units
                .get(&limit.token)
                .cloned()
                .unwrap_or_else(TokenUnits::native);
            let series = state
                .store()
                .spend_series(wallet, limit.token, scope.from, scope.to, DAY)
                .await?;
            let total = series
                .iter()
                .fold(U256::ZERO, |t, (_, a)| t.saturating_add(*a));
            let day_cap = limit.windows.iter().find(|w| w.window.0 == DAY);
            let guide = day_cap.map(|w| Guide {
                value: in_units(w.max.0, &token_units),
                legend: format!("24 h cap: {}", token_units.format(w.max.0)),
            });
            let caps: Vec<String> = limit
                .per_transaction
                .iter()
                .map(|a| format!("per payment {}", token_units.format(a.0)))
                .chain(limit.windows.iter().map(|w| {
                    format!(
                        "{} per {}",
                        token_units.format(w.max.0),
                        duration(w.window.0)
                    )
                }))
                .collect();
            let token = match limit.token {
                Token::Native => "native".to_owned(),
                Token::Erc20(address) => address.to_string(),
            };
            let chart = BarChart {
                title: "Committed per day (reserved and settled; released reservations excluded)",
                x_axis: "day (UTC)",
                y_axis: &token_units.symbol,
                legend: "committed that day",
                bars: series
                    .iter()
                    .map(|(day, amount)| Bar {
                        label: day_label(*day),
                        value: in_units(*amount, &token_units),
                        tip: format!("{}: {}", day_label(*day), token_units.format(*amount)),
                    })
                    .collect(),
                guide,
            }
            .render();
            charts.push(html! {
                section.spend {
                    h3 { "Wallet " span.hex { (wallet) } ", " (token_units.symbol) " " small.hex { "(" (token) ")" } }
                    p { "Policy v" (policy.version) " caps: " (if caps.is_empty() { "none".to_owned() } else { caps.join("; ") }) ". Committed in the period: " (token_units.format(total)) "." }
                    (chart)
                }
            });
        }
    }
    Ok(html! {
        @if charts.is_empty() { p.muted { "No wallet in scope has a policy with token limits." } }
        @for chart in &charts { (chart) }
    })
}

async fn decision_section(
    state: &AppState,
    decisions: &[chaperone_store::DecisionRow],
) -> Result<Markup, ApiError> {
    let mut by_outcome: BTreeMap<&str, u64> = BTreeMap::new();
    let mut by_reason: BTreeMap<String, u64> = BTreeMap::new();
    for d in decisions {
        *by_outcome.entry(outcome_name(d.outcome)).or_default() += 1;
        for reason in &d.reasons {
            let code = serde_json::to_value(reason)
                .ok()
                .and_then(|v| v["code"].as_str().map(str::to_owned))
                .unwrap_or_else(|| "unknown".into());
            *by_reason.entry(code).or_default() += 1;
        }
    }
    let bars = |map: &BTreeMap<String, u64>| {
        map.iter()
            .map(|(k, v)| Bar {
                label: k.clone(),
                value: *v as f64,
                tip: format!("{k}: {v}"),
            })
            .collect()
    };
    let outcomes: BTreeMap<String, u64> = by_outcome
        .iter()
        .map(|(k, v)| ((*k).to_owned(), *v))
        .collect();
    // Every request that waited for a human has an approval, whatever its final outcome: an
    // approval or a denial re-decides it, and an expiry ends it denied.
    let ids: Vec<_> = decisions.iter().map(|d| d.request_id).collect();
    let verdicts = state.store().verdicts(&ids).await?;
    let asked: Vec<_> = decisions
        .iter()
        .filter(|d| verdicts.contains_key(&d.request_id))
        .collect();
    let mut latencies: Vec<u64> = Vec::new();
    let rows: Vec<_> = asked
        .iter()
        .map(|d| {
            let verdict = verdicts.get(&d.request_id);
            let latency = verdict
                .and_then(|v| v.decided_at)
                .map(|at| at.saturating_sub(d.created_at));
            if let Some(l) = latency {
                latencies.push(l);
            }
            (d, verdict, latency)
        })
        .collect();
    let mut sorted = latencies.clone();
    sorted.sort_unstable();
    let median = sorted.get(sorted.len() / 2).copied();
    let latency_chart = BarChart {
        title: "Time from request to a human's verdict, per approval",
        x_axis: "approval (in order of request)",
        y_axis: "minutes",
        legend: "minutes to verdict",
        bars: latencies
            .iter()
            .enumerate()
            .map(|(i, s)| Bar {
                label: (i + 1).to_string(),
                value: *s as f64 / 60.0,
                tip: format!("approval {}: {}", i + 1, duration(*s)),
            })
            .collect(),
        guide: None,
    };
    Ok(html! {
        p { (decisions.len()) " co-sign decisions in the period." }
        @if !decisions.is_empty() {
            (BarChart { title: "Decisions by outcome", x_axis: "outcome", y_axis: "decisions", legend: "decisions", bars: bars(&outcomes), guide: None }.render())
            @if by_reason.is_empty() { p.muted { "No decision gave a reason." } } @else {
                (BarChart { title: "Reasons given, by code", x_axis: "reason code", y_axis: "times given", legend: "times given", bars: bars(&by_reason), guide: None }.render())
            }
        }
        h3 { "Approvals" }
        @if rows.is_empty() { p.muted { "No request needed a human's approval in the period." } } @else {
            p {
                (rows.len()) " requests needed a human; " (latencies.len()) " got a verdict"
                @if let (Some(m), Some(max)) = (median, sorted.last()) { " (median " (duration(m)) ", longest " (duration(*max)) ")" }
                "."
            }
            @if !latencies.is_empty() { (latency_chart.render()) }
            table.approvals {
                thead { tr { th { "Request" } th { "Wallet" } th { "Asked" } th { "Verdict" } th { "By" } th { "After" } th { "Comment" } } }
                tbody {
                    @for (d, verdict, latency) in &rows {
                        tr {
                            td.hex { (short(&d.request_id)) }
                            td.hex { (short(&d.wallet)) }
                            td { (iso8601(d.created_at)) }
                            td { (verdict.map_or("none", |v| v.status.as_str())) }
                            td { (verdict.and_then(|v| v.decided_by.as_deref()).unwrap_or("")) }
                            td { (latency.map(duration).unwrap_or_default()) }
                            td { (verdict.and_then(|v| v.comment.as_deref()).unwrap_or("")) }
                        }
                    }
                }
            }
        }
    })
}

/// Records per agent and day, counted once each.
#[derive(Default)]
struct RecordCounts {
    per_agent: HashMap<Address, BTreeMap<u64, u64>>,
    /// Agents that logged decision records: the policy service's own key.
    service: std::collections::HashSet<Address>,
    seen: std::collections::HashSet<chaperone_core::B256>,
    counted: u64,
}

impl RecordCounts {
    fn add(&mut self, r: LoggedRecord) {
        if !self.seen.insert(r.leaf_hash) {
            return;
        }
        if r.record.model == crate::anchor::DECISION_MODEL {
            self.service.insert(r.record.agent);
        }
        // By when the server received it: the agent writes its own timestamps.
        let day = r.received_ms / 1000 / DAY * DAY;
        *self
            .per_agent
            .entry(r.record.agent)
            .or_default()
            .entry(day)
            .or_default() += 1;
        self.counted += 1;
    }
}

async fn records_section(
    state: &AppState,
    scope: &Scope,
    decisions: &[chaperone_store::DecisionRow],
) -> Result<Markup, ApiError> {
    let mut counts = RecordCounts::default();
    let mut capped = false;
    visit_received(state, scope, |records| {
        records.into_iter().for_each(|r| counts.add(r));
        capped = counts.counted >= MAX_COUNTED_RECORDS;
        Ok(!capped)
    })
    .await?;
    if !capped && !scope.everything() {
        // The decisions' own records, found by leaf hash (at most MAX_EVIDENCE_DECISIONS).
        let leaves: Vec<_> = decisions.iter().filter_map(|d| d.logged_leaf).collect();
        for r in state.store().records_by_leaf(&leaves).await? {
            counts.add(r);
        }
    }
    let RecordCounts {
        per_agent,
        service,
        counted,
        ..
    } = counts;
    let mut agents: Vec<(Address, u64)> = per_agent
        .iter()
        .map(|(a, days)| (*a, days.values().sum()))
        .collect();
    agents.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let days: Vec<u64> = (scope.from / DAY..=scope.to.saturating_sub(1) / DAY)
        .map(|d| d * DAY)
        .collect();
    Ok(html! {
        p { (counted) " records in the period" @if capped { " (counting stopped at " (MAX_COUNTED_RECORDS) ")" } "." }
        @if !agents.is_empty() {
            table.agents {
                thead { tr { th { "Agent" } th { "Records" } th { "Days active" } } }
                tbody { @for (agent, count) in &agents {
                    tr {
                        td.hex { (agent) @if service.contains(agent) { " (the policy service: decision records)" } }
                        td { (count) }
                        td { (per_agent.get(agent).map_or(0, BTreeMap::len)) }
                    }
                } }
            }
        }
        @for (agent, _) in agents.iter().take(MAX_AGENT_CHARTS) {
            @let series = per_agent.get(agent);
            (BarChart {
                title: &format!("Records per day of {agent}"),
                x_axis: "day (UTC)",
                y_axis: "records",
                legend: "records that day",
                bars: days.iter().map(|d| {
                    let n = series.and_then(|s| s.get(d)).copied().unwrap_or(0);
                    Bar { label: day_label(*d), value: n as f64, tip: format!("{}: {n}", day_label(*d)) }
                }).collect(),
                guide: None,
            }.render())
        }
    })
}

async fn lag_section(state: &AppState, scope: &Scope) -> Result<Markup, ApiError> {
    let lags = state
        .store()
        .anchor_lags(scope.from, scope.to, MAX_LAG_BARS)
        .await?;
    let mut seconds: Vec<u64> = lags
        .iter()
        .map(|l| l.anchored_at.saturating_sub(l.signed_at))
        .collect();
    let chart = BarChart {
        title: "Seconds from signing a checkpoint to recording its anchoring transaction",
        x_axis: "checkpoint (tree size)",
        y_axis: "seconds",
        legend: "anchoring lag",
        bars: lags
            .iter()
            .zip(&seconds)
            .map(|(l, s)| Bar {
                label: l.size.to_string(),
                value: *s as f64,
                tip: format!("size {}: {s} s", l.size),
            })
            .collect(),
        guide: None,
    }
    .render();
    seconds.sort_unstable();
    Ok(html! {
        @if lags.is_empty() { p.muted { "No checkpoint signed in the period was anchored." } } @else {
            p {
                (lags.len()) " checkpoints signed in the period were anchored"
                @if lags.len() as u32 == MAX_LAG_BARS { " (the first " (MAX_LAG_BARS) " shown)" }
                "; median lag " (seconds[seconds.len() / 2]) " s, longest " (seconds[seconds.len() - 1]) " s."
            }
            (chart)
        }
    })
}

/// What record-keeping rules ask, and how this deployment answers: the EU AI Act's Article 12
/// (record-keeping for high-risk AI systems) point by point.
fn article_12() -> Markup {
    let rows: [(&str, &str, &str); 5] = [
        (
            "Automatic recording of events over the system's lifetime (Art. 12(1))",
            "Every model call the SDK records and every co-sign decision the policy service makes is appended to one append-only RFC 9162 Merkle log, automatically: decisions are logged by the service itself, signed with the co-signer key, without the agent's cooperation. Records carry salted SHA-256 commitments of input, output and metadata, the model id, the agent's signature and timestamp, and the hash of the agent's previous record.",
            "Integrate the SDK (or the MCP gateway) on every path the AI system acts through; keep the server running for the system's whole lifetime; keep agents from acting outside it (the wallet's co-signature enforces this for payments only).",
        ),
        (
            "Events relevant to identifying risks and substantial modifications (Art. 12(2)(a))",
            "Denied and pending decisions are logged with every reason; policy versions and their hashes are named in each decision; per-agent hash chains make a missing or reordered record of an agent detectable.",
            "Decide which further events count as risks for the system (e.g. model or prompt changes) and record them through the SDK's metadata.",
        ),
        (
            "Facilitating post-market monitoring (Art. 12(2)(b)) and monitoring of operation (Art. 12(2)(c))",
            "This report and the compliance API (agents, records, decisions, spend, exports) give the figures; the bundle lets a third party check them against the chain without trusting this service.",
            "Review the reports on a schedule and act on what they show; assign the people who do (approver and auditor tokens).",
        ),
        (
            "Traceability of the system's functioning",
            "Each record is provably in the log at its index (inclusion proofs), the log only ever grew (consistency proofs; the AuditLog contract refuses any checkpoint that does not extend the last), and checkpoints are anchored on chain with the block time bounding when a record existed. Selective disclosure opens a record's content to an auditor without revealing others.",
            "Keep the agents' disclosure stores (salts and content) as long as you may need to show what a record contained: without them a record proves that something was logged, not what.",
        ),
        (
            "Retention for an appropriate period (Art. 19 and Art. 26(6): at least six months)",
            "The log and its proofs stay in the service's database (SQLite or PostgreSQL) with nothing deleted; anchors stay on chain. Deleting a record's salt (`forget`) erases its content while the log stays intact.",
            "Set and enforce the retention period; back up the database and the disclosure stores; keep the chain's data (or an archive node's access) for as long as evidence must be checked.",
        ),
    ];
    html! {
        table.article-12 {
            thead { tr { th { "The rule asks" } th { "Chaperone does" } th { "The operator must still" } } }
            tbody { @for (rule, does, must) in rows { tr { td { (rule) } td { (does) } td { (must) } } } }
        }
        p.note { "This maps the log's properties to the rule; it is not legal advice. Whether a system is high-risk, and what its provider and deployer owe, is for them to establish." }
    }
}

//! A bundle's period and scope are its author's word: the auditor may pin them
//! ([`ExpectedScope`], `--from/--to/--agent/--wallet`), and they are always reported. Within
//! them, a bundle holds nothing from outside its period but the records of the decisions it
//! shows (fourth red-team review of issue 29, F): a decision dated outside the period, a record
//! received before it, or one received after it that is no record of a decision shown, is an
//! edited bundle. A record's `received_ms` (the server's word) cannot be after the first
//! anchoring on chain of a checkpoint that holds it. A view's `logged_leaf` makes a record "of
//! a decision" only when it is a decision record, and a scoped bundle never proves its
//! decisions complete (fifth red-team review).

use std::collections::{BTreeSet, HashMap, HashSet};

use chaperone_api::evidence::{DECISION_RECORD_MODEL, EvidenceBundle};
use chaperone_core::{Address, B256, RECEIVE_TIME_TOLERANCE_MS, Record};

use super::invalid;
use crate::Result;

/// The period and scope the auditor asked for: each one given must be the bundle's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpectedScope {
    /// The period's start (unix seconds, inclusive).
    pub from: Option<u64>,
    /// The period's end (unix seconds, exclusive).
    pub to: Option<u64>,
    /// The agents the bundle must be scoped to (empty list: none, i.e. everyone's).
    pub agents: Option<Vec<Address>>,
    /// The wallets the bundle must be scoped to (empty list: none).
    pub wallets: Option<Vec<Address>>,
}

/// Fails unless `bundle`'s period and scope are what the auditor `expected`.
pub(crate) fn check_expected(bundle: &EvidenceBundle, expected: &ExpectedScope) -> Result<()> {
    if bundle.from >= bundle.to {
        return Err(invalid(format!(
            "the bundle's period is empty (from {} to {})",
            bundle.from, bundle.to
        )));
    }
    let set = |list: &[Address]| list.iter().copied().collect::<BTreeSet<_>>();
    let mismatch = |what: &str, asked: String, found: String| {
        invalid(format!(
            "you asked for {what} {asked}; the bundle's {what} is {found}"
        ))
    };
    if let Some(from) = expected.from
        && from != bundle.from
    {
        return Err(mismatch("from", from.to_string(), bundle.from.to_string()));
    }
    if let Some(to) = expected.to
        && to != bundle.to
    {
        return Err(mismatch("to", to.to_string(), bundle.to.to_string()));
    }
    if let Some(agents) = &expected.agents
        && set(agents) != set(&bundle.agents)
    {
        return Err(mismatch(
            "agents",
            format!("{agents:?}"),
            format!("{:?}", bundle.agents),
        ));
    }
    if let Some(wallets) = &expected.wallets
        && set(wallets) != set(&bundle.wallets)
    {
        return Err(mismatch(
            "wallets",
            format!("{wallets:?}"),
            format!("{:?}", bundle.wallets),
        ));
    }
    Ok(())
}

/// Fails when the bundle holds a decision dated outside its period, a record received before
/// it, or a record received after it that is no record of a decision it shows.
pub(crate) fn check_period(bundle: &EvidenceBundle) -> Result<()> {
    let (from, to) = (bundle.from, bundle.to);
    if let Some(d) = bundle
        .decisions
        .iter()
        .find(|d| !(from..to).contains(&d.created_at))
    {
        return Err(invalid(format!(
            "decision {} is dated {}, outside the bundle's period ({from} to {to})",
            d.request_id, d.created_at
        )));
    }
    // A view's `logged_leaf` names its record: it counts as a decision's only when that record
    // is a decision record, and naming another kind of record is an edited bundle (fifth
    // red-team review: it pulled an agent's model call from outside the period).
    let models: HashMap<B256, String> = bundle
        .records
        .iter()
        .filter_map(|r| Some((r.leaf_hash, Record::decode(&r.leaf_data).ok()?.model)))
        .collect();
    for d in &bundle.decisions {
        if let Some(leaf) = d.logged_leaf
            && let Some(model) = models.get(&leaf)
            && model != DECISION_RECORD_MODEL
        {
            return Err(invalid(format!(
                "decision {} names record {leaf} as its record, which is not a decision record \
                 (its model is {model:?}, not {DECISION_RECORD_MODEL:?})",
                d.request_id
            )));
        }
    }
    let shown: HashSet<B256> = bundle.decisions.iter().map(|d| d.request_id).collect();
    let of_a_decision: HashSet<B256> = bundle
        .decision_openings
        .iter()
        .filter(|o| shown.contains(&o.request_id))
        .map(|o| o.leaf_hash)
        .chain(bundle.decisions.iter().filter_map(|d| d.logged_leaf))
        .filter(|leaf| models.get(leaf).is_some_and(|m| m == DECISION_RECORD_MODEL))
        .collect();
    let period = from.saturating_mul(1000)..to.saturating_mul(1000);
    // Before the period nothing belongs: a decision of the period is logged after it is made
    // (the store dates the service's batches no earlier than their records), so a record of a
    // decision shown dated before `from` was backdated out of the chain check (fifth red-team
    // review of issue 29, High).
    if let Some(r) = bundle.records.iter().find(|r| r.received_ms < period.start) {
        return Err(invalid(format!(
            "record {} was received at {} ms, before the bundle's period (from {from}): a \
             bundle holds no record received before it, not even one of a decision it shows \
             (those are logged after the decision)",
            r.index, r.received_ms
        )));
    }
    if let Some(r) = bundle
        .records
        .iter()
        .find(|r| !period.contains(&r.received_ms) && !of_a_decision.contains(&r.leaf_hash))
    {
        return Err(invalid(format!(
            "record {} was received at {} ms, outside the bundle's period, and is no record \
             of a decision it shows",
            r.index, r.received_ms
        )));
    }
    Ok(())
}

/// Fails when a record's `received_ms` is after the first anchoring on chain of a checkpoint
/// holding it, by more than the tolerance between the server's clock and the chain's
/// ([`RECEIVE_TIME_TOLERANCE_MS`]). `anchored_at`: (checkpoint size, block time in unix
/// seconds) by increasing size, read from the chain (the `Anchored` logs of the trusted log),
/// not the checkpoints the bundle chose: its author could prove every record against a later
/// checkpoint (fifth red-team review of issue 29, Medium).
pub(crate) fn check_received_before_anchoring(
    bundle: &EvidenceBundle,
    anchored_at: &[(u64, u64)],
) -> Result<()> {
    for r in &bundle.records {
        let Some((size, at)) = anchored_at.iter().find(|(size, _)| *size > r.index) else {
            continue;
        };
        if r.received_ms
            > at.saturating_mul(1000)
                .saturating_add(RECEIVE_TIME_TOLERANCE_MS)
        {
            return Err(invalid(format!(
                "record {} says it was received at {} ms, more than {} s after the log was \
                 first anchored on chain holding it (size {size}, block time {at})",
                r.index,
                r.received_ms,
                RECEIVE_TIME_TOLERANCE_MS / 1000
            )));
        }
    }
    Ok(())
}

/// What a bundle proves about the completeness of its decisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecisionsCompleteness {
    /// Whether a decision left out with its record would be detected: only in a bundle of
    /// everything, whose service chain is checked. A scoped bundle says so whatever it holds
    /// (fifth red-team review: one scoped to agents could leave out every decision, and with
    /// them every decision record that would have named the unchecked service chain).
    pub(crate) checked: bool,
    /// Signers of the bundle's decision records whose chain was not checked.
    pub(crate) service_chains_unchecked: Vec<Address>,
}

/// Whether the bundle's decisions are proved complete, given the agents whose chains were
/// checked.
pub(crate) fn decisions_completeness(
    bundle: &EvidenceBundle,
    chains_checked: &[Address],
) -> DecisionsCompleteness {
    let mut service_chains_unchecked: Vec<Address> = Vec::new();
    for r in &bundle.records {
        if r.model == DECISION_RECORD_MODEL
            && !chains_checked.contains(&r.agent)
            && !service_chains_unchecked.contains(&r.agent)
        {
            service_chains_unchecked.push(r.agent);
        }
    }
    DecisionsCompleteness {
        checked: bundle.agents.is_empty() && bundle.wallets.is_empty(),
        service_chains_unchecked,
    }
}

//! Completeness of a bundle's records: each agent signs its records as a chain (sequence + 1,
//! `previous` = the leaf hash of the one before), so a record left out between two that a
//! bundle holds leaves a gap no one can hide. The records the server received in the bundle's
//! period are all in it, for every agent the bundle covers (all of them when it names no agent
//! and no wallet, else the agents it names); those must chain without a gap. Records received
//! outside the period (the records of the period's decisions logged after it) may be sparse
//! (third red-team review of issue 29: a decision left out with its record).
//!
//! `received_ms` is the server's word, unsigned, so what decides which records are "in the
//! period" is bounded by what the log guarantees ([`check_receive_times`], fifth red-team
//! review of issue 29): the store receives batches in index order, so receive times never go
//! back in log order; the policy service logs a decision or an administrative action after it
//! happens, so its record is not received before the time signed into it (beyond
//! [`RECEIVE_TIME_TOLERANCE_MS`]); and a bundle of everything holds every record between two
//! it holds from the period. A record cannot be backdated out of the period past a later one,
//! nor before the period at all (`scope.rs`), nor after the first anchoring that holds it.
//!
//! What the chain cannot show: a record left out at either edge of an agent's run in the period
//! (before its first or after its last; in a bundle of everything, before the period's first
//! record or after its last), and the service's records in a bundle scoped to wallets (its
//! chain interleaves every wallet's decisions).

use std::collections::BTreeMap;

use chaperone_api::evidence::{EvidenceBundle, SERVICE_MODEL_PREFIX};
use chaperone_core::{Address, B256, RECEIVE_TIME_TOLERANCE_MS, Record};

use super::invalid;
use crate::Result;

/// Fails when the bundle's receive times contradict what the log guarantees: a record received
/// before one earlier in the log, a record of the policy service received more than the
/// tolerance before the time it was signed with, or (in a bundle of every agent and wallet) a
/// record missing between two received in the period. The records are in log order (checked
/// before).
pub(crate) fn check_receive_times(bundle: &EvidenceBundle) -> Result<()> {
    for pair in bundle.records.windows(2) {
        let (earlier, later) = (&pair[0], &pair[1]);
        if later.received_ms < earlier.received_ms {
            return Err(invalid(format!(
                "record {} says it was received at {} ms, before record {} (received at {} ms): \
                 the log receives records in index order, so a receive time was changed",
                later.index, later.received_ms, earlier.index, earlier.received_ms
            )));
        }
    }
    // The service signs its records with the time of what they record (a decision's, an
    // action's) and logs them afterwards; the store dates its batches no earlier.
    if let Some(r) = bundle.records.iter().find(|r| {
        r.model.starts_with(SERVICE_MODEL_PREFIX)
            && r.received_ms.saturating_add(RECEIVE_TIME_TOLERANCE_MS) < r.timestamp_ms
    }) {
        return Err(invalid(format!(
            "record {} of the policy service says it was received at {} ms, more than {} s \
             before the time it was signed with ({} ms): it is logged after what it records",
            r.index,
            r.received_ms,
            RECEIVE_TIME_TOLERANCE_MS / 1000,
            r.timestamp_ms
        )));
    }
    let everyone = bundle.agents.is_empty() && bundle.wallets.is_empty();
    if everyone {
        let period = bundle.from.saturating_mul(1000)..bundle.to.saturating_mul(1000);
        let in_period: Vec<u64> = bundle
            .records
            .iter()
            .filter(|r| period.contains(&r.received_ms))
            .map(|r| r.index)
            .collect();
        for pair in in_period.windows(2) {
            if pair[1] != pair[0] + 1 {
                return Err(invalid(format!(
                    "record {} is missing: the bundle covers every agent, and records {} and {} \
                     were both received in the period, so every record between them was too \
                     (the log receives records in index order)",
                    pair[0] + 1,
                    pair[0],
                    pair[1]
                )));
            }
        }
    }
    Ok(())
}

/// Fails when an agent's records received in the bundle's period do not chain; returns the
/// agents whose records were checked.
pub(crate) fn check_chains(bundle: &EvidenceBundle) -> Result<Vec<Address>> {
    let everyone = bundle.agents.is_empty() && bundle.wallets.is_empty();
    let period = bundle.from.saturating_mul(1000)..bundle.to.saturating_mul(1000);
    // By agent, the period's records in log order: (index, sequence, previous, leaf).
    let mut runs: BTreeMap<Address, Vec<(u64, u64, B256, B256)>> = BTreeMap::new();
    for r in &bundle.records {
        if !period.contains(&r.received_ms) {
            continue;
        }
        let record = Record::decode(&r.leaf_data)
            .map_err(|e| invalid(format!("record {}: {e}", r.index)))?;
        if !everyone && !bundle.agents.contains(&record.agent) {
            continue;
        }
        runs.entry(record.agent).or_default().push((
            r.index,
            record.sequence,
            record.previous,
            r.leaf_hash,
        ));
    }
    for (agent, run) in &runs {
        for pair in run.windows(2) {
            let ((index, sequence, _, leaf), (next_index, next_sequence, previous, _)) =
                (pair[0], pair[1]);
            if next_sequence != sequence.saturating_add(1) || previous != leaf {
                return Err(invalid(format!(
                    "agent {agent}'s records {index} (sequence {sequence}) and {next_index} \
                     (sequence {next_sequence}), both received in the period, do not chain: \
                     the records between them were left out of the bundle"
                )));
            }
        }
    }
    Ok(runs.into_keys().collect())
}

#[cfg(test)]
mod tests;

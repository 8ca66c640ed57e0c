//! Completeness of a bundle's records: each agent signs its records as a chain (sequence + 1,
//! `previous` = the leaf hash of the one before), so a record left out between two that a
//! bundle holds leaves a gap no one can hide. The records the server received in the bundle's
//! period are all in it, for every agent the bundle covers (all of them when it names no agent
//! and no wallet, else the agents it names); those must chain without a gap. Records received
//! outside the period (the records of the period's decisions logged after it) may be sparse
//! (third red-team review of issue 29: a decision left out with its record).
//!
//! What the chain cannot show: a record left out at either edge of an agent's run in the period
//! (before its first or after its last), and the service's records in a bundle scoped to
//! wallets (its chain interleaves every wallet's decisions). `received_ms` is the server's
//! word.

use std::collections::BTreeMap;

use chaperone_api::evidence::EvidenceBundle;
use chaperone_core::{Address, B256, Record};

use super::invalid;
use crate::Result;

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

//! The machine-checkable bundle: the period's records in log order, each with its inclusion
//! proof against the first anchored checkpoint that covers it; those checkpoints (signed notes
//! and anchoring transactions) by increasing size; a consistency proof between each two
//! consecutive ones; and the period's decisions with the openings of their records.
//!
//! A period selects records by when the server received their batch (an agent writes its
//! own timestamps), and a scope's agents are conditions of the store's query: a pack for one
//! agent reads only that agent's batches, and the scope's decision records by their leaf
//! hashes.

use std::collections::BTreeMap;

use chaperone_api::{
    ErrorCode,
    audit::AnchorView,
    compliance::DecisionView,
    evidence::{
        DecisionOpening, EVIDENCE_VERSION, EvidenceBundle, EvidenceCheckpoint, EvidenceConsistency,
        EvidenceRecord, MAX_EVIDENCE_DECISIONS, MAX_EVIDENCE_RECORDS,
    },
};
use chaperone_core::{Address, B256};
use chaperone_store::{DecisionFilter, DecisionRow, LoggedRecord, ReceivedFilter};

use super::Scope;
use crate::{AppState, http::ApiError};

/// Rows read per query while collecting a period.
const PAGE: u32 = 1000;
/// Batches read per query while collecting a period's records.
const BATCHES: u32 = 64;

/// The wallets a scope covers: those it names and those whose agent it names (none: all).
pub(super) async fn wallets_in(state: &AppState, scope: &Scope) -> Result<Vec<Address>, ApiError> {
    let mut wallets = scope.wallets.clone();
    if !scope.agents.is_empty() {
        for wallet in state.store().wallet_addresses().await? {
            let agent = state.store().wallet(wallet).await?.map(|w| w.agent);
            if agent.is_some_and(|a| scope.agents.contains(&a)) && !wallets.contains(&wallet) {
                wallets.push(wallet);
            }
        }
    }
    Ok(wallets)
}

/// The scope's decisions in the period, by (time, request id); more than
/// [`MAX_EVIDENCE_DECISIONS`] is a precise 400 (the pack would not be readable, and its
/// queries not bounded).
pub(super) async fn decisions_in(
    state: &AppState,
    scope: &Scope,
) -> Result<Vec<DecisionRow>, ApiError> {
    let wallets: Vec<Option<Address>> = if scope.everything() {
        vec![None]
    } else {
        wallets_in(state, scope)
            .await?
            .into_iter()
            .map(Some)
            .collect()
    };
    let mut all = Vec::new();
    for wallet in wallets {
        let mut after = None;
        loop {
            let page = state
                .store()
                .decisions(&DecisionFilter {
                    wallet,
                    outcome: None,
                    reason: None,
                    from: Some(scope.from),
                    to: Some(scope.to),
                    after,
                    limit: PAGE,
                })
                .await?;
            after = page.last().map(|d| (d.created_at, d.request_id));
            let full = page.len() == PAGE as usize;
            all.extend(page);
            if all.len() > MAX_EVIDENCE_DECISIONS {
                return Err(ApiError::new(
                    ErrorCode::OutOfRange,
                    format!(
                        "the period holds more than {MAX_EVIDENCE_DECISIONS} decisions for this \
                         selection: ask for a shorter period or fewer wallets"
                    ),
                ));
            }
            if !full {
                break;
            }
        }
    }
    all.sort_by_key(|d| (d.created_at, d.request_id));
    Ok(all)
}

/// Calls `visit` with the records of each batch the server received in the period: every
/// agent's when the scope names nobody, else only the named agents' (none when it names only
/// wallets: their decision records are found by leaf, [`records_in`]). Stops when `visit`
/// says so (false).
pub(super) async fn visit_received(
    state: &AppState,
    scope: &Scope,
    mut visit: impl FnMut(Vec<LoggedRecord>) -> Result<bool, ApiError>,
) -> Result<(), ApiError> {
    let agents: Vec<Option<Address>> = if scope.everything() {
        vec![None]
    } else {
        scope.agents.iter().copied().map(Some).collect()
    };
    for agent in agents {
        let mut after = None;
        loop {
            let (records, next) = state
                .store()
                .records_received(&ReceivedFilter {
                    agent,
                    from_ms: scope.from.saturating_mul(1000),
                    to_ms: scope.to.saturating_mul(1000),
                    after,
                    batches: BATCHES,
                })
                .await?;
            if !visit(records)? {
                return Ok(());
            }
            match next {
                Some(cursor) => after = Some(cursor),
                None => break,
            }
        }
    }
    Ok(())
}

/// The scope's records, in log order: those [`visit_received`] reads, and the records of the
/// scope's decisions (whenever they were logged). More than `at_most` is a precise 400.
pub(super) async fn records_in(
    state: &AppState,
    scope: &Scope,
    decision_leaves: &[B256],
    at_most: usize,
) -> Result<Vec<LoggedRecord>, ApiError> {
    let too_many = || {
        ApiError::new(
            ErrorCode::OutOfRange,
            format!(
                "the period holds more than {at_most} records for this selection: ask for a \
                 shorter period or fewer agents"
            ),
        )
    };
    let mut found: BTreeMap<u64, LoggedRecord> = BTreeMap::new();
    visit_received(state, scope, |records| {
        found.extend(records.into_iter().map(|r| (r.index, r)));
        if found.len() > at_most {
            return Err(too_many());
        }
        Ok(true)
    })
    .await?;
    let known: std::collections::HashSet<B256> = found.values().map(|r| r.leaf_hash).collect();
    let missing: Vec<B256> = decision_leaves
        .iter()
        .copied()
        .filter(|leaf| !known.contains(leaf))
        .collect();
    for r in state.store().records_by_leaf(&missing).await? {
        found.insert(r.index, r);
    }
    if found.len() > at_most {
        return Err(too_many());
    }
    Ok(found.into_values().collect())
}

/// A decision as the compliance API shows it.
pub(super) async fn decision_views(state: &AppState, rows: Vec<DecisionRow>) -> Vec<DecisionView> {
    let tokens = rows
        .iter()
        .flat_map(|d| crate::words::reason_tokens(&d.reasons))
        .collect();
    let units = crate::words::units_of(state, tokens).await;
    rows.into_iter()
        .map(|d| DecisionView {
            request_id: d.request_id,
            wallet: d.wallet,
            created_at: d.created_at,
            created_at_iso: chaperone_core::readable::iso8601(d.created_at),
            outcome: d.outcome,
            reasons_text: d
                .reasons
                .iter()
                .map(|r| crate::words::reason_words(r, &units))
                .collect(),
            reasons: d.reasons,
            policy_version: d.policy_version,
            policy_hash: d.policy_hash,
            signed: d.signed,
            logged_leaf: d.logged_leaf,
            call_leaf_hash: d.call_leaf_hash,
            // The bundle proves what was decided and logged; what each payment moved and who
            // approved it is the ledger's (`/v1/payments` for the same period).
            agent: None,
            method: None,
            payments: Vec::new(),
            payments_text: Vec::new(),
            approvers: Vec::new(),
            approval_comment: None,
        })
        .collect()
}

pub(super) async fn build(state: &AppState, scope: &Scope) -> Result<EvidenceBundle, ApiError> {
    let decisions = decisions_in(state, scope).await?;
    // Every record of each decision (a request re-decided after a human approval has its
    // earlier "pending" record too): a verifier opens each one and reads the last.
    let ids: Vec<B256> = decisions.iter().map(|d| d.request_id).collect();
    let openings = state.store().decision_openings(&ids).await?;
    let mut decision_leaves: Vec<B256> = openings.iter().map(|o| o.leaf_hash).collect();
    decision_leaves.extend(decisions.iter().filter_map(|d| d.logged_leaf));
    decision_leaves.sort();
    decision_leaves.dedup();
    let logged = records_in(state, scope, &decision_leaves, MAX_EVIDENCE_RECORDS).await?;
    let chain = state.log().chain.as_ref();
    let anchor_view = |anchor: chaperone_store::Anchor| AnchorView {
        audit_log: chain.map(|c| c.audit_log),
        log_id: chain.map(|c| c.log_id),
        size: anchor.size,
        tx_hash: anchor.tx_hash,
        block_number: anchor.block_number,
    };
    let mut checkpoints: Vec<EvidenceCheckpoint> = Vec::new();
    let mut records = Vec::with_capacity(logged.len());
    let mut unanchored = 0;
    for r in logged {
        // The smallest anchored checkpoint covering this record: the one already chosen, else
        // the next one the store has.
        let covering = match checkpoints.last() {
            Some(c) if c.size > r.index => Some(c.size),
            _ => match state.store().anchored_checkpoints(r.index, 1).await?.pop() {
                Some((checkpoint, anchor)) => {
                    if anchor.root != checkpoint.root {
                        return Err(ApiError::internal(&format!(
                            "checkpoint {} was anchored with another root",
                            checkpoint.size
                        )));
                    }
                    let size = checkpoint.size;
                    checkpoints.push(EvidenceCheckpoint {
                        size,
                        root: checkpoint.root,
                        note: checkpoint.note,
                        anchor: anchor_view(anchor),
                    });
                    Some(size)
                }
                None => None,
            },
        };
        let Some(size) = covering else {
            unanchored += 1;
            continue;
        };
        let leaf_data = r
            .record
            .encode()
            .map_err(|e| ApiError::internal(&format!("re-encoding a logged record: {e}")))?;
        records.push(EvidenceRecord {
            index: r.index,
            leaf_hash: r.leaf_hash,
            leaf_data: leaf_data.into(),
            agent: r.record.agent,
            model: r.record.model,
            timestamp_ms: r.record.timestamp_ms,
            received_ms: r.received_ms,
            inclusion: state.store().inclusion_proof(r.index, size).await?,
        });
    }
    let mut consistency = Vec::with_capacity(checkpoints.len().saturating_sub(1));
    for pair in checkpoints.windows(2) {
        let proof = state
            .store()
            .consistency_proof(pair[0].size, pair[1].size)
            .await?;
        consistency.push(EvidenceConsistency {
            first: proof.first,
            second: proof.second,
            path: proof.path,
        });
    }
    // An opening for each decision record the bundle carries (one not yet anchored is left
    // out with its record), in log order.
    let index_of: std::collections::HashMap<B256, u64> =
        records.iter().map(|r| (r.leaf_hash, r.index)).collect();
    let mut decision_openings: Vec<(u64, DecisionOpening)> = openings
        .into_iter()
        .filter_map(|o| {
            let index = *index_of.get(&o.leaf_hash)?;
            Some((
                index,
                DecisionOpening {
                    request_id: o.request_id,
                    leaf_hash: o.leaf_hash,
                    request: o.request,
                    input_salt: o.input_salt,
                    decision: o.decision,
                    output_salt: o.output_salt,
                },
            ))
        })
        .collect();
    decision_openings.sort_by_key(|(index, _)| *index);
    let decision_openings = decision_openings.into_iter().map(|(_, o)| o).collect();
    Ok(EvidenceBundle {
        version: EVIDENCE_VERSION,
        from: scope.from,
        to: scope.to,
        agents: scope.agents.clone(),
        wallets: scope.wallets.clone(),
        records,
        unanchored_records: unanchored,
        checkpoints,
        consistency,
        decisions: decision_views(state, decisions).await,
        decision_openings,
    })
}

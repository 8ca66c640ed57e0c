//! The machine-checkable bundle: the period's records in log order, each with its inclusion
//! proof against the first anchored checkpoint that covers it; those checkpoints (signed notes
//! and anchoring transactions) by increasing size; a consistency proof between each two
//! consecutive ones; and the period's decisions.

use std::collections::HashSet;

use chaperone_api::{
    ErrorCode,
    audit::AnchorView,
    compliance::DecisionView,
    evidence::{
        EVIDENCE_VERSION, EvidenceBundle, EvidenceCheckpoint, EvidenceConsistency, EvidenceRecord,
        MAX_EVIDENCE_RECORDS,
    },
};
use chaperone_core::{Address, B256};
use chaperone_store::{DecisionFilter, DecisionRow, LoggedRecord, RecordFilter};

use super::Scope;
use crate::{AppState, http::ApiError};

/// Rows read per query while collecting a period.
const PAGE: u32 = 1000;

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

/// The scope's decisions in the period, by (time, request id).
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
            if !full {
                break;
            }
        }
    }
    all.sort_by_key(|d| (d.created_at, d.request_id));
    Ok(all)
}

/// The scope's records in the period, in log order: the named agents' and the decision
/// records of its decisions (everything when it names nobody).
pub(super) async fn records_in(
    state: &AppState,
    scope: &Scope,
    decision_leaves: &HashSet<B256>,
    at_most: usize,
) -> Result<Vec<LoggedRecord>, ApiError> {
    let wanted = |r: &LoggedRecord| {
        scope.everything()
            || scope.agents.contains(&r.record.agent)
            || decision_leaves.contains(&r.leaf_hash)
    };
    let mut found = Vec::new();
    let mut after_index = None;
    loop {
        let page = state
            .store()
            .records(&RecordFilter {
                agent: None,
                model: None,
                from_ms: Some(scope.from.saturating_mul(1000)),
                to_ms: Some(scope.to.saturating_mul(1000)),
                after_index,
                limit: PAGE,
            })
            .await?;
        after_index = page.last().map(|r| r.index);
        let full = page.len() == PAGE as usize;
        found.extend(page.into_iter().filter(wanted));
        if found.len() > at_most {
            return Err(ApiError::new(
                ErrorCode::OutOfRange,
                format!(
                    "the period holds more than {at_most} records for this selection: ask for \
                     a shorter period or fewer agents"
                ),
            ));
        }
        if !full {
            return Ok(found);
        }
    }
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
    let decision_leaves: HashSet<B256> = decisions.iter().filter_map(|d| d.logged_leaf).collect();
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
    })
}

//! An auditor's evidence bundle ([`EvidenceBundle`], from `GET /v1/evidence/bundle`) checked
//! offline against the chain and the log the auditor trusts: each checkpoint names that log
//! and carries its operator's signature (the operator read from `AuditLog`), the chain holds
//! its root and its anchoring transaction emitted `Anchored` for it; consecutive checkpoints
//! are joined by RFC 9162 consistency proofs; every record's leaf hash is recomputed from its
//! leaf data and its inclusion proof checked against the checkpoint of its size.
//!
//! An empty bundle proves nothing, so it is refused. Each agent's records received in the
//! period must chain without a gap (`chains.rs`): none was left out between two the bundle
//! holds. Which records are "in the period" is the server's unsigned `received_ms`, so it is
//! held to what the log guarantees: never back in log order, a service record not before the
//! time it was signed with, nothing before the period (`scope.rs`), nothing after the first
//! anchoring on chain that holds it (found from the chain's `Anchored` events, `anchoring.rs`),
//! and in a bundle of everything no index missing between two records of the period. A decision's fields are the server's word until checked against the decision's own
//! records (`decisions.rs`): every decision record opened, signed by the wallet's co-signer on
//! chain when it was first anchored (or a key the auditor names), each decision showing what
//! its last record says. A contradiction makes the bundle invalid; a decision that cannot be
//! checked fails it too, unless the auditor accepts unverified decisions ([`EvidencePolicy`]).

mod anchoring;
mod chains;
mod decisions;
mod scope;

use std::collections::HashMap;

use alloy::providers::Provider;
use chaperone_api::evidence::{EVIDENCE_VERSION, EvidenceBundle};
use chaperone_chain::AuditLog;
use chaperone_core::{
    Address, B256, CheckpointVerifier, ConsistencyProof, Record, SignedCheckpoint, leaf_hash,
};
use serde::Serialize;

use crate::{Error, Result, TrustedLog, disclosure::parse_origin};
use anchoring::{anchored_in, block_time, cosigners_at_anchoring, first_anchorings};
use chains::{check_chains, check_receive_times};
use decisions::{DecisionSigners, check_decisions};
pub use scope::ExpectedScope;
use scope::{
    check_expected, check_period, check_received_before_anchoring, decisions_completeness,
};

/// What the auditor accepts beyond what the chain shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvidencePolicy {
    /// Keys the auditor names as the policy service's (`--decision-signer`): a decision
    /// record they signed is accepted besides those of the wallet's on-chain `cosigner()` at
    /// the record's anchoring block (a co-signer rotated since, a wallet not deployed yet).
    pub decision_signers: Vec<Address>,
    /// Accept decisions that cannot be checked against their records (`--allow-unverified`):
    /// they are listed as the server's word instead of failing the bundle.
    pub allow_unverified: bool,
    /// The period and scope the auditor asked for (`--from/--to/--agent/--wallet`): the
    /// bundle's must be these.
    pub expected: ExpectedScope,
}

/// The bundle versions this verifier reads: 1 has no decision openings (its decisions are all
/// unverified).
const READABLE_VERSIONS: [u32; 2] = [1, EVIDENCE_VERSION];

/// A decision whose fields could not be checked against its record, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnverifiedDecision {
    /// The decision.
    pub request_id: B256,
    /// Why it could not be checked.
    pub reason: String,
}

/// A verified decision's fields that no record commits to: the server's word only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerWord {
    /// The decision.
    pub request_id: B256,
    /// What it shows on the server's word (approvers, reasons in words, ERC-20 token symbols and
    /// decimals, payment status and settlement, the model call it was paid within).
    pub fields: Vec<String>,
}

/// What a bundle proved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifiedEvidence {
    /// The bundle's period: from (inclusive) to (exclusive), unix seconds. Its author's word
    /// unless the auditor pinned it ([`ExpectedScope`]).
    pub period: (u64, u64),
    /// The agents the bundle is scoped to (none: every agent's records).
    pub agents: Vec<Address>,
    /// The wallets the bundle is scoped to (none with no agent either: everything).
    pub wallets: Vec<Address>,
    /// Whether a decision left out of the bundle with its record would be detected: true only
    /// for a bundle of everything (the service's chain is checked). A bundle scoped to agents
    /// or wallets does not prove its decisions complete, whatever it holds.
    pub decisions_completeness_checked: bool,
    /// Signers of the bundle's decision records (the policy service) whose records the
    /// chain check did not cover (a bundle scoped to agents or wallets): decisions left out
    /// with their records are not detected for them.
    pub service_chains_unchecked: Vec<Address>,
    /// Records proved included.
    pub records: usize,
    /// Checkpoints whose signature and anchor were checked.
    pub checkpoints: usize,
    /// Consistency proofs checked.
    pub consistency_proofs: usize,
    /// Decisions in the bundle.
    pub decisions: usize,
    /// Of those, decisions whose fields were checked against their own proved record (request
    /// id, wallet, time, outcome, reasons, policy version and hash, whether co-signed).
    pub decisions_verified: usize,
    /// The others but the pending ones: their fields are the server's word only.
    pub unverified_decisions: Vec<UnverifiedDecision>,
    /// Decisions pending at the end of the period: their last record in the bundle is
    /// pending, and no final record (approved, denied or expired) of them is in it. Unverified
    /// too (a final record may exist beyond the bundle), listed apart.
    pub pending_decisions: Vec<UnverifiedDecision>,
    /// The keys that signed the verified decisions' records (the policy service's co-signer).
    pub decision_signers: Vec<Address>,
    /// Verified decisions that name approvers or a comment: no decision record commits to
    /// them, so they remain the server's word.
    pub approvers_unchecked: Vec<B256>,
    /// Verified decisions' fields that no record commits to (the server's word).
    pub server_word: Vec<ServerWord>,
    /// Decision records opened: every record of every decision shown (a request re-decided
    /// after a human approval has several; the decision shown is its last).
    pub decision_records_opened: usize,
    /// The agents whose records received in the period were proved to chain without a gap
    /// (every agent of a bundle naming no agent and no wallet, else the agents it names).
    pub chains_checked: Vec<Address>,
    /// The smallest and largest checkpoint sizes.
    pub sizes: Option<(u64, u64)>,
    /// The log's operator (from the contract), who signed every checkpoint.
    pub operator: Address,
    /// Each checkpoint's anchoring block, by size.
    pub anchors: Vec<(u64, u64)>,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::Invalid(message.into())
}

/// Checks `bundle` against the chain `provider` serves and the log the auditor `trusts`,
/// accepting what `policy` says besides.
pub async fn verify_evidence<P: Provider>(
    bundle: &EvidenceBundle,
    provider: &P,
    trusted: &TrustedLog,
    policy: &EvidencePolicy,
) -> Result<VerifiedEvidence> {
    let chain_error = |e: alloy::contract::Error| Error::Chain(e.to_string());
    if !READABLE_VERSIONS.contains(&bundle.version) {
        return Err(invalid(format!(
            "bundle version {} is not one this verifier reads ({READABLE_VERSIONS:?})",
            bundle.version
        )));
    }
    check_expected(bundle, &policy.expected)?;
    check_period(bundle)?;
    // An empty bundle would verify trivially: say so rather than print VALID.
    if bundle.checkpoints.is_empty() {
        return Err(invalid(
            "the bundle has no checkpoint: it proves nothing (ask for a period whose records \
             are anchored, or wait for the next anchoring)",
        ));
    }
    if bundle.records.is_empty() {
        return Err(invalid(
            "the bundle has no record: it proves nothing (check the period and the agents \
             asked for)",
        ));
    }
    for pair in bundle.checkpoints.windows(2) {
        if pair[0].size >= pair[1].size {
            return Err(invalid(format!(
                "checkpoints out of order: size {} before size {}",
                pair[0].size, pair[1].size
            )));
        }
    }
    let served = provider
        .get_chain_id()
        .await
        .map_err(|e| Error::Chain(e.to_string()))?;
    let contract = AuditLog::new(trusted.audit_log, provider);
    let info = contract
        .logInfo(trusted.log_id)
        .call()
        .await
        .map_err(chain_error)?;
    if info.operator.is_zero() {
        return Err(invalid(format!(
            "log {} does not exist in AuditLog {}",
            trusted.log_id, trusted.audit_log
        )));
    }
    // Checkpoints: the trusted log's, signed by its operator, rooted and anchored on chain.
    let mut anchors = Vec::with_capacity(bundle.checkpoints.len());
    for c in &bundle.checkpoints {
        let origin = c.note.lines().next().unwrap_or_default();
        let (chain_id, audit_log, log_id) = parse_origin(origin)?;
        if chain_id != served {
            return Err(invalid(format!(
                "checkpoint {} is of chain {chain_id}; the RPC serves chain {served}",
                c.size
            )));
        }
        if (audit_log, log_id) != (trusted.audit_log, trusted.log_id) {
            return Err(invalid(format!(
                "checkpoint {} is of log {log_id} in AuditLog {audit_log}, not of the log you \
                 trust ({} in AuditLog {})",
                c.size, trusted.log_id, trusted.audit_log
            )));
        }
        let verifier = CheckpointVerifier {
            name: origin.to_owned(),
            address: info.operator,
        };
        let signed = SignedCheckpoint::verify(&c.note, &verifier)
            .map_err(|e| invalid(format!("checkpoint {}: {e}", c.size)))?;
        if (signed.checkpoint.size, signed.checkpoint.root) != (c.size, c.root) {
            return Err(invalid(format!(
                "checkpoint {}: the signed note says size {} root {}, the bundle size {} root {}",
                c.size, signed.checkpoint.size, signed.checkpoint.root, c.size, c.root
            )));
        }
        let on_chain = contract
            .rootAt(log_id, c.size)
            .call()
            .await
            .map_err(chain_error)?;
        if on_chain != c.root {
            return Err(invalid(format!(
                "the chain holds root {on_chain} at size {}; the checkpoint says {}",
                c.size, c.root
            )));
        }
        anchors.push((
            c.size,
            anchored_in(provider, trusted, c.anchor.tx_hash, c.size, c.root).await?,
        ));
    }
    // Consistency: each checkpoint extends the one before it.
    if bundle.consistency.len() != bundle.checkpoints.len().saturating_sub(1) {
        return Err(invalid(format!(
            "{} checkpoints need {} consistency proofs; the bundle has {}",
            bundle.checkpoints.len(),
            bundle.checkpoints.len().saturating_sub(1),
            bundle.consistency.len()
        )));
    }
    for (pair, proof) in bundle.checkpoints.windows(2).zip(&bundle.consistency) {
        if (proof.first, proof.second) != (pair[0].size, pair[1].size) {
            return Err(invalid(format!(
                "the consistency proof {} → {} does not join checkpoints {} and {}",
                proof.first, proof.second, pair[0].size, pair[1].size
            )));
        }
        ConsistencyProof {
            first: proof.first,
            second: proof.second,
            path: proof.path.clone(),
        }
        .verify(&pair[0].root, &pair[1].root)
        .map_err(|e| {
            invalid(format!(
                "consistency {} → {}: {e}",
                proof.first, proof.second
            ))
        })?;
    }
    // Records: each leaf hash from its data, each proof against its checkpoint.
    let mut last_index = None;
    for r in &bundle.records {
        if last_index.is_some_and(|last| r.index <= last) {
            return Err(invalid(format!("record {} is out of log order", r.index)));
        }
        last_index = Some(r.index);
        let computed = leaf_hash(&r.leaf_data);
        if computed != r.leaf_hash {
            return Err(invalid(format!(
                "record {}: its leaf data hashes to {computed}, not {}",
                r.index, r.leaf_hash
            )));
        }
        let record = Record::decode(&r.leaf_data)
            .map_err(|e| invalid(format!("record {}: {e}", r.index)))?;
        if (record.agent, &record.model, record.timestamp_ms) != (r.agent, &r.model, r.timestamp_ms)
        {
            return Err(invalid(format!(
                "record {}: its agent, model or time differ from its leaf data",
                r.index
            )));
        }
        if r.inclusion.index != r.index {
            return Err(invalid(format!(
                "record {}: its proof is for index {}",
                r.index, r.inclusion.index
            )));
        }
        let checkpoint = bundle
            .checkpoints
            .iter()
            .find(|c| c.size == r.inclusion.size)
            .ok_or_else(|| {
                invalid(format!(
                    "record {}: no checkpoint of size {} in the bundle",
                    r.index, r.inclusion.size
                ))
            })?;
        r.inclusion
            .verify(&r.leaf_hash, &checkpoint.root)
            .map_err(|e| invalid(format!("record {}: {e}", r.index)))?;
    }
    check_receive_times(bundle)?;
    // Each record's first anchoring, found on chain: not the checkpoint the bundle proves it
    // against, which its author chooses (fifth red-team review of issue 29, Medium).
    let first_holding = first_anchorings(bundle, provider, trusted, &anchors).await?;
    let mut anchored_at = Vec::with_capacity(first_holding.len());
    for (size, block) in &first_holding {
        anchored_at.push((*size, block_time(provider, *block).await?));
    }
    check_received_before_anchoring(bundle, &anchored_at)?;
    let chains_checked = check_chains(bundle)?;
    let completeness = decisions_completeness(bundle, &chains_checked);
    let signers = DecisionSigners {
        named: policy.decision_signers.clone(),
        on_chain: cosigners_at_anchoring(bundle, provider, &first_holding).await?,
        chain_id: served,
    };
    let decisions = check_decisions(bundle, &signers, policy.allow_unverified)?;
    check_erc20_decimals(bundle, provider).await?;
    Ok(VerifiedEvidence {
        period: (bundle.from, bundle.to),
        agents: bundle.agents.clone(),
        wallets: bundle.wallets.clone(),
        decisions_completeness_checked: completeness.checked,
        service_chains_unchecked: completeness.service_chains_unchecked,
        records: bundle.records.len(),
        checkpoints: bundle.checkpoints.len(),
        consistency_proofs: bundle.consistency.len(),
        decisions: bundle.decisions.len(),
        decisions_verified: decisions.verified,
        unverified_decisions: decisions.unverified,
        pending_decisions: decisions.pending,
        decision_signers: decisions.signers,
        approvers_unchecked: decisions.approvers_unchecked,
        decision_records_opened: decisions.records_opened,
        server_word: decisions.server_word,
        chains_checked,
        sizes: bundle
            .checkpoints
            .first()
            .zip(bundle.checkpoints.last())
            .map(|(a, b)| (a.size, b.size)),
        operator: info.operator,
        anchors,
    })
}

/// Fails when a payment shows an ERC-20 token with other decimals than the token's
/// `decimals()` at the RPC (fourth red-team review of issue 29, D): an amount in token units
/// would say another amount than its base units. A token that does not answer is left as the
/// server's word.
async fn check_erc20_decimals<P: Provider>(bundle: &EvidenceBundle, provider: &P) -> Result<()> {
    let mut read: HashMap<Address, Option<u8>> = HashMap::new();
    for d in &bundle.decisions {
        for p in &d.payments {
            let chaperone_core::policy::Token::Erc20(token) = p.token else {
                continue;
            };
            let decimals = match read.get(&token) {
                Some(decimals) => *decimals,
                None => {
                    let decimals = chaperone_chain::TestToken::new(token, provider)
                        .decimals()
                        .call()
                        .await
                        .ok();
                    read.insert(token, decimals);
                    decimals
                }
            };
            if decimals.is_some_and(|decimals| decimals != p.token_decimals) {
                return Err(invalid(format!(
                    "decision {}: token {token} has {} decimals on chain; the bundle shows {}",
                    d.request_id,
                    decimals.unwrap_or_default(),
                    p.token_decimals
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use alloy::sol_types::SolEvent;

    use super::*;

    #[test]
    fn anchored_event_signature_is_the_contracts() {
        // The verifier decodes by this signature: a changed event must fail here first.
        assert_eq!(
            AuditLog::Anchored::SIGNATURE,
            "Anchored(bytes32,uint64,bytes32)"
        );
    }
}

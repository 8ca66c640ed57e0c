//! What a bundle's checks read from the chain: the block of each checkpoint's anchoring
//! transaction, the trusted log's anchorings (its `Anchored` events: the first that holds each
//! record, whatever checkpoints the bundle chose), block times, and the co-signer of a
//! decision's wallet when its record was first anchored.

use std::collections::HashMap;

use alloy::providers::Provider;
use chaperone_api::evidence::EvidenceBundle;
use chaperone_chain::{AgentWallet, AuditLog};
use chaperone_core::{Address, B256};

use super::{decisions::opening_wallet, invalid};
use crate::{Error, Result, TrustedLog};

/// Blocks asked for per `eth_getLogs` request while reading the log's anchorings: the widest
/// range common RPC providers serve in one request.
const ANCHORED_LOGS_RANGE: u64 = 10_000;

/// For the bundle's records (in log order), the first anchoring on chain of a checkpoint that
/// holds each one: (size, block) by increasing size, one entry per distinct anchoring. Read
/// from the trusted log's `Anchored` events up to the last block that anchored a checkpoint of
/// the bundle (a record's first anchoring is no later than the bundle's checkpoint holding it).
pub(super) async fn first_anchorings<P: Provider>(
    bundle: &EvidenceBundle,
    provider: &P,
    trusted: &TrustedLog,
    anchors: &[(u64, u64)],
) -> Result<Vec<(u64, u64)>> {
    let (Some(lowest), Some(upto)) = (
        bundle.records.first().map(|r| r.index),
        anchors.iter().map(|(_, block)| *block).max(),
    ) else {
        return Ok(Vec::new());
    };
    let on_chain = anchorings_on_chain(provider, trusted, lowest, upto).await?;
    let mut first = Vec::new();
    for r in &bundle.records {
        let Some(&anchoring) = on_chain.iter().find(|(size, _)| *size > r.index) else {
            return Err(invalid(format!(
                "record {}: the chain shows no anchoring of the log holding it up to block \
                 {upto}, where the bundle's checkpoints were anchored",
                r.index
            )));
        };
        if first.last() != Some(&anchoring) {
            first.push(anchoring);
        }
    }
    Ok(first)
}

/// The trusted log's anchorings on chain up to block `upto`, (size, block) by increasing size,
/// from the `Anchored` events `AuditLog` emitted for it: read backwards from `upto`, a range
/// of blocks at a time, down to an anchoring no larger than `lowest` (the contract never lets a
/// log shrink, so every earlier anchoring is smaller and holds no record from `lowest` on), the
/// log's `LogCreated`, or block 0.
async fn anchorings_on_chain<P: Provider>(
    provider: &P,
    trusted: &TrustedLog,
    lowest: u64,
    upto: u64,
) -> Result<Vec<(u64, u64)>> {
    use alloy::{rpc::types::Filter, sol_types::SolEvent};
    let mut found = Vec::new();
    let mut high = upto;
    loop {
        let low = high.saturating_sub(ANCHORED_LOGS_RANGE - 1);
        let filter = Filter::new()
            .address(trusted.audit_log)
            .event_signature(vec![
                AuditLog::Anchored::SIGNATURE_HASH,
                AuditLog::LogCreated::SIGNATURE_HASH,
            ])
            .topic1(trusted.log_id)
            .from_block(low)
            .to_block(high);
        let logs = provider.get_logs(&filter).await.map_err(|e| {
            Error::Chain(format!(
                "reading the log's anchorings (blocks {low} to {high}): {e}"
            ))
        })?;
        let mut done = low == 0;
        for log in logs.iter().filter(|log| !log.removed) {
            if log.topic0() == Some(&AuditLog::LogCreated::SIGNATURE_HASH) {
                done = true;
                continue;
            }
            let event = log.log_decode::<AuditLog::Anchored>().map_err(|e| {
                Error::Chain(format!("an Anchored event of the log does not decode: {e}"))
            })?;
            let block = log.block_number.ok_or_else(|| {
                Error::Chain("the RPC gave an Anchored event without its block".into())
            })?;
            let size = event.inner.data.size;
            done |= size <= lowest;
            found.push((size, block));
        }
        if done {
            break;
        }
        high = low - 1;
    }
    found.sort_unstable();
    Ok(found)
}

/// For each decision record the bundle opens, its wallet's `cosigner()` at the block of the
/// first anchoring on chain that holds the record (`anchors`: (size, block) by increasing
/// size; not the checkpoint its proof chose: a co-signer rotated in between must not be
/// credited), by (wallet, record leaf): who may have signed it. A wallet with no code there
/// (not deployed yet) has none; an RPC failure fails the check.
pub(super) async fn cosigners_at_anchoring<P: Provider>(
    bundle: &EvidenceBundle,
    provider: &P,
    anchors: &[(u64, u64)],
) -> Result<HashMap<(Address, B256), Address>> {
    let index_of: HashMap<B256, u64> = bundle
        .records
        .iter()
        .map(|r| (r.leaf_hash, r.index))
        .collect();
    // Anchorings by increasing size: the first holding a record is the first larger than its index.
    let first_holding = |index: u64| {
        anchors
            .iter()
            .find(|(size, _)| *size > index)
            .map(|(_, block)| *block)
    };
    let mut read: HashMap<(Address, u64), Option<Address>> = HashMap::new();
    let mut out = HashMap::new();
    for o in &bundle.decision_openings {
        let Some(wallet) = opening_wallet(o) else {
            continue;
        };
        let Some(block) = index_of.get(&o.leaf_hash).and_then(|i| first_holding(*i)) else {
            continue;
        };
        let key = (wallet, block);
        let cosigner = match read.get(&key) {
            Some(cosigner) => *cosigner,
            None => {
                let cosigner = cosigner_at(provider, wallet, block).await?;
                read.insert(key, cosigner);
                cosigner
            }
        };
        if let Some(cosigner) = cosigner {
            out.insert((wallet, o.leaf_hash), cosigner);
        }
    }
    Ok(out)
}

/// `wallet`'s `cosigner()` at `block`; none when it has no code there (not deployed yet).
async fn cosigner_at<P: Provider>(
    provider: &P,
    wallet: Address,
    block: u64,
) -> Result<Option<Address>> {
    let chain_error = |e: String| Error::Chain(e);
    let code = provider
        .get_code_at(wallet)
        .block_id(block.into())
        .await
        .map_err(|e| chain_error(e.to_string()))?;
    if code.is_empty() {
        return Ok(None);
    }
    AgentWallet::new(wallet, provider)
        .cosigner()
        .block(block.into())
        .call()
        .await
        .map(Some)
        .map_err(|e| chain_error(e.to_string()))
}

/// The time (unix seconds) of block `number`.
pub(super) async fn block_time<P: Provider>(provider: &P, number: u64) -> Result<u64> {
    provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Number(number))
        .await
        .map_err(|e| Error::Chain(e.to_string()))?
        .map(|b| b.header.timestamp)
        .ok_or_else(|| Error::Chain(format!("the RPC has no block {number}")))
}

/// The block of `transaction`, which must have succeeded and emitted the trusted
/// `AuditLog`'s `Anchored(log_id, size, root)`.
pub(super) async fn anchored_in<P: Provider>(
    provider: &P,
    trusted: &TrustedLog,
    transaction: B256,
    size: u64,
    root: B256,
) -> Result<u64> {
    let receipt = provider
        .get_transaction_receipt(transaction)
        .await
        .map_err(|e| Error::Chain(e.to_string()))?
        .filter(|r| r.status())
        .ok_or_else(|| {
            invalid(format!(
                "checkpoint {size}: no successful anchoring transaction {transaction} on chain"
            ))
        })?;
    let anchored = receipt.inner.logs().iter().any(|log| {
        log.address() == trusted.audit_log
            && log.log_decode::<AuditLog::Anchored>().is_ok_and(|event| {
                let data = &event.inner.data;
                data.logId == trusted.log_id && data.size == size && data.root == root
            })
    });
    if !anchored {
        return Err(invalid(format!(
            "checkpoint {size}: transaction {transaction} did not anchor it in the trusted log"
        )));
    }
    receipt
        .block_number
        .ok_or_else(|| invalid(format!("transaction {transaction} is not mined")))
}

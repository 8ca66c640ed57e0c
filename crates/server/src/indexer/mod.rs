//! Follows `AuditLog` events (of this log), the registered wallets' events, EIP-3009
//! `AuthorizationUsed` events of any token for those wallets and the `Transfer`s from those
//! wallets of every token they gave an authorization budget into the database,
//! `confirmations` blocks behind the head, in ranges of at most [`MAX_LOG_RANGE`] blocks (real RPC
//! providers refuse wider `eth_getLogs`) from `start_block` (the block the first wallet was
//! created in; 0 on a devnet).
//!
//! It also settles and releases spend reservations, in the transaction that stores the events
//! ([`Store::index_blocks`]): an `Executed` settles the decision its digest names, an
//! `AuthorizationUsed` the one whose transfer it made (even a reservation already released), an
//! x402 Permit2 payment settles when Permit2's nonce bitmap shows its nonce used (Permit2 emits
//! no event; the ledger then names the transfer the x402 proxy made that paired with it, and
//! shows it `misused` while none did), and a reservation is released only once a confirmed
//! block mined after its `validUntil` has been indexed. Releasing by wall-clock time could uncount a real
//! spend: the execution may sit in a block the RPC has not returned yet.
//!
//! In the same transaction it reconciles (the store's `reconcile.rs`): an outflow of a
//! registered wallet that no approved co-sign decision of exactly what moved accounts for — an
//! `Executed` whose digest no approved request has, an `AuthorizationUsed` whose transfer is not
//! the approved one, a Permit2 nonce used for another transfer than the approved one — is stored
//! as an unauthorized spend (the co-signer key signed without the service), logged, and
//! notified (`unauthorized_spend`). Nothing is matched by a nonce alone: a nonce carries no
//! amount or recipient.
//!
//! It resumes from the last block it recorded, so a restart loses nothing. It notices a
//! reorganisation when the chain's hash of the last indexed block differs from the recorded
//! one; it then walks back through the recorded block hashes to the newest block both agree on,
//! forgets everything above it (events, and anchors mined there, which the anchoring worker
//! sends again) and indexes the new branch.

use alloy::{
    eips::BlockNumberOrTag,
    primitives::{Address, B256},
    providers::{DynProvider, Provider},
    rpc::types::{Filter, Log},
    sol_types::{SolEvent, SolEventInterface},
};
use chaperone_chain::{AgentWallet, AuditLog, TestToken, X402ExactPermit2Proxy};
use chaperone_store::{ChainEvent, Store};

use crate::Notifier;
use serde_json::json;
use std::sync::Arc;

/// The wallet events of the implementation before `Executed` named its digest.
mod permit2;

mod legacy {
    alloy::sol! {
        /// An execution, by nonce only: what ran cannot be matched with a decision.
        event Executed(uint256 nonce);
    }
}

/// A wallet of the earlier implementation's `Executed(uint256)`, as an execution without a
/// digest: reconciliation cannot tell what it ran, so it is never settled and always raises an
/// unauthorized spend (loud, not silent: dropping it would hide the wallet's executes from the
/// alerts and free their reservations at expiry, below the caps).
fn decode_legacy_executed(log: &Log) -> Option<(String, serde_json::Value)> {
    if log.topic0() != Some(&legacy::Executed::SIGNATURE_HASH) {
        return None;
    }
    let e = legacy::Executed::decode_log(&log.inner).ok()?.data;
    tracing::warn!(
        wallet = %log.address(),
        nonce = %e.nonce,
        "a wallet of the earlier implementation executed: its executes cannot be matched with \
         decisions and each raises an unauthorized spend; move its funds to a new wallet"
    );
    Some(("Executed".into(), json!({ "nonce": e.nonce.to_string() })))
}

/// The widest block range read per `eth_getLogs`.
pub const MAX_LOG_RANGE: u64 = 2_000;

/// Ranges read per tick at most, so one tick of a far-behind indexer stays short.
const RANGES_PER_TICK: usize = 16;

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IndexReport {
    /// The highest block indexed after the pass.
    pub indexed_to: Option<u64>,
    /// Events stored in this pass.
    pub events: usize,
    /// Blocks forgotten because a reorganisation replaced them.
    pub rewound: u64,
    /// Unauthorized spends found in this pass.
    pub unauthorized: usize,
}

/// The chain indexer.
pub struct Indexer {
    provider: DynProvider,
    store: Store,
    audit_log: Option<(Address, B256)>,
    confirmations: u64,
    start_block: u64,
    notifier: Option<Arc<Notifier>>,
}

impl Indexer {
    /// An indexer of the registered wallets (and of log `log_id` in `AuditLog` when given),
    /// from `start_block` on, `confirmations` blocks behind the head.
    pub fn new(
        provider: DynProvider,
        store: Store,
        audit_log: Option<(Address, B256)>,
        confirmations: u64,
        start_block: u64,
    ) -> Self {
        Self {
            provider,
            store,
            audit_log,
            confirmations,
            start_block,
            notifier: None,
        }
    }

    /// The same indexer, notifying the unauthorized spends it finds through `notifier`.
    pub fn with_notifier(mut self, notifier: Arc<Notifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    async fn block_hash(&self, number: u64) -> anyhow::Result<Option<B256>> {
        Ok(self.block(number).await?.map(|(hash, _)| hash))
    }

    /// A block's hash and timestamp.
    async fn block(&self, number: u64) -> anyhow::Result<Option<(B256, u64)>> {
        Ok(self
            .provider
            .get_block_by_number(BlockNumberOrTag::Number(number))
            .await?
            .map(|b| (b.header.hash, b.header.timestamp)))
    }

    /// One pass: handle a reorganisation, then index up to `head - confirmations`, one range
    /// after another until caught up (at most a few ranges per pass).
    pub async fn tick(&mut self) -> anyhow::Result<IndexReport> {
        let mut report = self.tick_range().await?;
        for _ in 1..RANGES_PER_TICK {
            let before = report.indexed_to;
            let next = self.tick_range().await?;
            report.events += next.events;
            report.rewound += next.rewound;
            report.unauthorized += next.unauthorized;
            report.indexed_to = next.indexed_to;
            if next.indexed_to == before {
                break;
            }
        }
        Ok(report)
    }

    /// Handles a reorganisation, then indexes one range of at most [`MAX_LOG_RANGE`] blocks.
    async fn tick_range(&mut self) -> anyhow::Result<IndexReport> {
        let mut report = IndexReport::default();
        if let Some((number, hash)) = self.store.indexed_head().await?
            && self.block_hash(number).await? != Some(hash)
        {
            let mut keep = self.start_block.saturating_sub(1);
            for (n, h) in self.store.indexed_blocks().await? {
                if self.block_hash(n).await? == Some(h) {
                    keep = n;
                    break;
                }
            }
            self.store.rewind_index(keep).await?;
            report.rewound = number - keep;
            tracing::warn!(from = number, to = keep, "chain reorganised; re-indexing");
        }
        let head = self.provider.get_block_number().await?;
        let indexed = self.store.indexed_head().await?;
        report.indexed_to = indexed.map(|(n, _)| n);
        let from = indexed.map_or(self.start_block, |(n, _)| n + 1);
        let Some(confirmed) = head.checked_sub(self.confirmations) else {
            return Ok(report);
        };
        let to = confirmed.min(from + MAX_LOG_RANGE - 1);
        if from > to {
            return Ok(report);
        }
        let Some((to_hash, to_time)) = self.block(to).await? else {
            return Ok(report);
        };
        let wallets = self.store.wallet_addresses().await?;
        let mut contracts = wallets.clone();
        contracts.extend(self.audit_log.map(|(address, _)| address));
        let mut logs = Vec::new();
        if !contracts.is_empty() {
            let filter = Filter::new()
                .address(contracts)
                .from_block(from)
                .to_block(to);
            logs = self.provider.get_logs(&filter).await?;
        }
        if !wallets.is_empty() {
            // Any token's EIP-3009 nonce use by a wallet: the token is whoever emits it, and
            // the decision it settles must name that token.
            let authorizers: Vec<B256> = wallets.iter().map(|w| w.into_word()).collect();
            let filter = Filter::new()
                .event_signature(TestToken::AuthorizationUsed::SIGNATURE_HASH)
                .topic1(authorizers)
                .from_block(from)
                .to_block(to);
            logs.extend(self.provider.get_logs(&filter).await?);
            // The wallets' transfers of the tokens they budgeted (so far, or in this range):
            // reconciliation compares them with what each authorization was approved to pay.
            let mut tokens = self.store.budgeted_tokens().await?;
            tokens.extend(logs.iter().filter_map(|log| {
                let e = AgentWallet::AuthorizationBudgetSet::decode_log(&log.inner).ok()?;
                wallets.contains(&log.address()).then_some(e.data.token)
            }));
            tokens.sort_unstable();
            tokens.dedup();
            if !tokens.is_empty() {
                let senders: Vec<B256> = wallets.iter().map(|w| w.into_word()).collect();
                let filter = Filter::new()
                    .address(tokens)
                    .event_signature(TestToken::Transfer::SIGNATURE_HASH)
                    .topic1(senders)
                    .from_block(from)
                    .to_block(to);
                let transfers = self.provider.get_logs(&filter).await?;
                let proxy = self.x402_proxy_settlements(&transfers).await?;
                logs.extend(transfers);
                logs.extend(proxy);
            }
        }
        // A reorganisation between the reads would mix branches: try again next pass.
        if self.block_hash(to).await? != Some(to_hash) {
            return Ok(report);
        }
        let mut blocks = vec![(to, to_hash)];
        let mut events = Vec::new();
        let mut times = std::collections::HashMap::new();
        for log in &logs {
            let (Some(block_number), Some(block_hash)) = (log.block_number, log.block_hash) else {
                continue;
            };
            let Some((event, mut fields)) = self.decode(log) else {
                continue;
            };
            if log.address() == chaperone_core::X402_PERMIT2_PROXY
                && let Some(tx) = log.transaction_hash
                && let Some(nonce) = self.proxy_call_nonce(tx).await?
            {
                fields["nonce"] = json!(nonce);
            }
            if block_number != to {
                blocks.push((block_number, block_hash));
            }
            // The ledger shows when a payment settled: the block's time (from the log when
            // the RPC gives it, else read once per block).
            let block_time = match log.block_timestamp {
                Some(time) => Some(time),
                None if block_number == to => Some(to_time),
                None => match times.get(&block_number) {
                    Some(time) => Some(*time),
                    None => {
                        let time = self.block(block_number).await?.map(|(_, t)| t);
                        if let Some(t) = time {
                            times.insert(block_number, t);
                        }
                        time
                    }
                },
            };
            events.push(ChainEvent {
                block_number,
                log_index: log.log_index.unwrap_or_default(),
                block_hash,
                tx_hash: log.transaction_hash.unwrap_or_default(),
                contract: log.address(),
                event,
                fields,
                block_time,
            });
        }
        blocks.sort_unstable();
        blocks.dedup();
        // Chain order (the token events were read after the wallets'): outflows are
        // reconciled, and their alerts raised, in the order they happened.
        events.sort_unstable_by_key(|e| (e.block_number, e.log_index));
        events.dedup_by_key(|e| (e.block_number, e.log_index));
        self.settle_used_permit2(to, to_time).await?;
        let mut unauthorized = self
            .store
            .index_blocks(&blocks, &events, Some(to_time))
            .await?;
        unauthorized.extend(self.reconcile_permit2(to, to_time).await?);
        for spend in &unauthorized {
            tracing::error!(
                wallet = %spend.wallet,
                kind = %spend.kind,
                reason = %spend.reason,
                tx = ?spend.tx_hash,
                nonce = %spend.nonce,
                "unauthorized spend: an outflow no approved decision accounts for; freeze the wallet"
            );
            if let Some(notifier) = &self.notifier {
                notifier.unauthorized_spend(spend, to_time).await;
            }
        }
        report.unauthorized = unauthorized.len();
        report.events = events.len();
        report.indexed_to = Some(to);
        Ok(report)
    }

    /// The event's name and fields, for this log's `AuditLog` events, any wallet event,
    /// EIP-3009 `AuthorizationUsed` and ERC-20 `Transfer`.
    fn decode(&self, log: &Log) -> Option<(String, serde_json::Value)> {
        if log.address() == chaperone_core::X402_PERMIT2_PROXY
            && log.topic0() == Some(&X402ExactPermit2Proxy::Settled::SIGNATURE_HASH)
        {
            return Some(("Settled".into(), json!({})));
        }
        if log.topic0() == Some(&TestToken::Transfer::SIGNATURE_HASH) {
            let e = TestToken::Transfer::decode_log(&log.inner).ok()?.data;
            return Some((
                "Transfer".into(),
                json!({ "from": e.from, "to": e.to, "value": e.value.to_string() }),
            ));
        }
        if log.topic0() == Some(&TestToken::AuthorizationUsed::SIGNATURE_HASH) {
            let e = TestToken::AuthorizationUsed::decode_log(&log.inner)
                .ok()?
                .data;
            return Some((
                "AuthorizationUsed".into(),
                json!({ "authorizer": e.authorizer, "nonce": e.nonce }),
            ));
        }
        if let Some((audit_log, own_log_id)) = self.audit_log
            && log.address() == audit_log
        {
            use AuditLog::AuditLogEvents as E;
            let (name, log_id, fields) =
                match AuditLog::AuditLogEvents::decode_log(&log.inner).ok()?.data {
                    E::Anchored(e) => (
                        "Anchored",
                        e.logId,
                        json!({ "size": e.size, "root": e.root }),
                    ),
                    E::LogCreated(e) => (
                        "LogCreated",
                        e.logId,
                        json!({ "owner": e.owner, "operator": e.operator }),
                    ),
                    E::OperatorChanged(e) => (
                        "OperatorChanged",
                        e.logId,
                        json!({ "operator": e.operator }),
                    ),
                    E::OwnerChanged(e) => ("OwnerChanged", e.logId, json!({ "owner": e.owner })),
                };
            return (log_id == own_log_id).then(|| (name.to_owned(), fields));
        }
        if let Some(executed) = decode_legacy_executed(log) {
            return Some(executed);
        }
        use AgentWallet::AgentWalletEvents as E;
        let (name, fields) = match AgentWallet::AgentWalletEvents::decode_log(&log.inner)
            .ok()?
            .data
        {
            E::Executed(e) => (
                "Executed",
                json!({ "nonce": e.nonce.to_string(), "digest": e.digest }),
            ),
            E::Initialized(e) => (
                "Initialized",
                json!({ "owner": e.owner, "agent": e.agent, "cosigner": e.cosigner }),
            ),
            E::AgentChanged(e) => ("AgentChanged", json!({ "agent": e.agent })),
            E::CosignerChanged(e) => ("CosignerChanged", json!({ "cosigner": e.cosigner })),
            E::BackstopSet(e) => (
                "BackstopSet",
                json!({ "token": e.token, "limit": e.limit.to_string(), "period": e.period }),
            ),
            E::FrozenSet(e) => ("FrozenSet", json!({ "frozen": e.frozen })),
            E::AuthorizationBudgetSet(e) => (
                "AuthorizationBudgetSet",
                json!({
                    "token": e.token,
                    "max_value": e.maxValue.to_string(),
                    "slots": e.slots,
                    "permit2_slots": e.permit2Slots,
                }),
            ),
            E::CallAllowedSet(e) => (
                "CallAllowedSet",
                json!({ "target": e.target, "selector": e.selector, "allowed": e.allowed }),
            ),
            E::NoncesInvalidated(e) => (
                "NoncesInvalidated",
                json!({ "key": e.key.to_string(), "next_sequence": e.nextSequence }),
            ),
            E::AuthorizationsInvalidated(e) => (
                "AuthorizationsInvalidated",
                json!({ "valid_from": e.validFrom }),
            ),
            E::Withdrawn(e) => (
                "Withdrawn",
                json!({ "token": e.token, "to": e.to, "amount": e.amount.to_string() }),
            ),
            E::Received(e) => (
                "Received",
                json!({ "from": e.from, "amount": e.amount.to_string() }),
            ),
            #[allow(unreachable_patterns)]
            _ => return None,
        };
        Some((name.to_owned(), fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{LogData, U256};

    #[test]
    fn an_earlier_wallets_execute_is_decoded_without_a_digest() {
        let wallet = Address::repeat_byte(0x11);
        let data = legacy::Executed {
            nonce: U256::from(7),
        }
        .encode_log_data();
        let log = Log {
            inner: alloy::primitives::Log {
                address: wallet,
                data: LogData::new_unchecked(data.topics().to_vec(), data.data.clone()),
            },
            ..Default::default()
        };
        let (name, fields) = decode_legacy_executed(&log).expect("decoded");
        assert_eq!(name, "Executed");
        assert_eq!(
            fields,
            json!({ "nonce": "7" }),
            "no digest: never settled, always alerted"
        );
        // The current event is not taken for the old one.
        let current = AgentWallet::Executed {
            nonce: U256::from(7),
            digest: B256::repeat_byte(1),
        }
        .encode_log_data();
        let log = Log {
            inner: alloy::primitives::Log {
                address: wallet,
                data: current,
            },
            ..Default::default()
        };
        assert!(decode_legacy_executed(&log).is_none());
    }
}

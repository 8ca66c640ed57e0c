//! Follows `AuditLog` events (of this log) and the registered wallets' events into the database,
//! `confirmations` blocks behind the head.
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
    sol_types::SolEventInterface,
};
use chaperone_chain::{AgentWallet, AuditLog};
use chaperone_store::{ChainEvent, Store};
use serde_json::json;

/// The widest block range read per tick.
const MAX_RANGE: u64 = 2_000;

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IndexReport {
    /// The highest block indexed after the pass.
    pub indexed_to: Option<u64>,
    /// Events stored in this pass.
    pub events: usize,
    /// Blocks forgotten because a reorganisation replaced them.
    pub rewound: u64,
}

/// The chain indexer.
pub struct Indexer {
    provider: DynProvider,
    store: Store,
    audit_log: Address,
    log_id: B256,
    confirmations: u64,
    start_block: u64,
}

impl Indexer {
    /// An indexer of log `log_id` in `audit_log` and the registered wallets, from
    /// `start_block` on, `confirmations` blocks behind the head.
    pub fn new(
        provider: DynProvider,
        store: Store,
        audit_log: Address,
        log_id: B256,
        confirmations: u64,
        start_block: u64,
    ) -> Self {
        Self {
            provider,
            store,
            audit_log,
            log_id,
            confirmations,
            start_block,
        }
    }

    async fn block_hash(&self, number: u64) -> anyhow::Result<Option<B256>> {
        Ok(self
            .provider
            .get_block_by_number(BlockNumberOrTag::Number(number))
            .await?
            .map(|b| b.header.hash))
    }

    /// One pass: handle a reorganisation, then index up to `head - confirmations`.
    pub async fn tick(&mut self) -> anyhow::Result<IndexReport> {
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
        let to = confirmed.min(from + MAX_RANGE - 1);
        if from > to {
            return Ok(report);
        }
        let Some(to_hash) = self.block_hash(to).await? else {
            return Ok(report);
        };
        let mut contracts = self.store.wallet_addresses().await?;
        contracts.push(self.audit_log);
        let filter = Filter::new()
            .address(contracts)
            .from_block(from)
            .to_block(to);
        let logs = self.provider.get_logs(&filter).await?;
        // A reorganisation between the two reads would mix branches: try again next pass.
        if self.block_hash(to).await? != Some(to_hash) {
            return Ok(report);
        }
        let mut blocks = vec![(to, to_hash)];
        let mut events = Vec::new();
        for log in &logs {
            let (Some(block_number), Some(block_hash)) = (log.block_number, log.block_hash) else {
                continue;
            };
            let Some((event, fields)) = self.decode(log) else {
                continue;
            };
            if block_number != to {
                blocks.push((block_number, block_hash));
            }
            events.push(ChainEvent {
                block_number,
                log_index: log.log_index.unwrap_or_default(),
                block_hash,
                tx_hash: log.transaction_hash.unwrap_or_default(),
                contract: log.address(),
                event,
                fields,
            });
        }
        blocks.sort_unstable();
        blocks.dedup();
        self.store.index_blocks(&blocks, &events).await?;
        report.events = events.len();
        report.indexed_to = Some(to);
        Ok(report)
    }

    /// The event's name and fields, for this log's `AuditLog` events and any wallet event.
    fn decode(&self, log: &Log) -> Option<(String, serde_json::Value)> {
        if log.address() == self.audit_log {
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
            return (log_id == self.log_id).then(|| (name.to_owned(), fields));
        }
        use AgentWallet::AgentWalletEvents as E;
        let (name, fields) = match AgentWallet::AgentWalletEvents::decode_log(&log.inner)
            .ok()?
            .data
        {
            E::Executed(e) => ("Executed", json!({ "nonce": e.nonce.to_string() })),
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

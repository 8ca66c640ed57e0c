//! The anchoring worker. Each tick it
//!
//! 0. ends the requests whose human approval expired (`Store::expire_approvals`: a final,
//!    denied decision, so a request that waited is never left pending in the log);
//! 1. logs co-sign decisions and administrative actions (who approved, who changed a policy or
//!    a token) that are not yet in the log, as records of the policy service (signed by the
//!    co-signer key), so spending history and who steered it are as tamper-evident as model
//!    calls;
//! 2. signs a checkpoint when `interval` seconds or `max_records` records have passed since the
//!    last one;
//! 3. anchors the latest checkpoint in `AuditLog` with a consistency proof from what the chain
//!    last anchored.
//!
//! The chain is the source of truth for step 3: every tick starts from `AuditLog.latest`, so a
//! crash or a dropped transaction is retried by the next tick, and the worker refuses to go on
//! if the chain's anchored root differs from this log's root at that size (a forked history is
//! never anchored; the contract would also reject it). With several replicas on PostgreSQL
//! only the holder of an advisory lock anchors.

use alloy::{
    primitives::{Address, B256},
    providers::{DynProvider, Provider},
    rpc::types::Filter,
    sol_types::SolEvent,
};
use anyhow::{Context, bail};
use chaperone_chain::AuditLog;
use chaperone_core::{Commitment, CommitmentKind, Record, Salt, Secp256k1Signer, SignedBatch};
use chaperone_store::{Anchor, AnchoringLock, ServiceRecord, Store, StoredCheckpoint};

use crate::LogConfig;

/// The model id of the policy service's decision records.
pub const DECISION_MODEL: &str = chaperone_api::evidence::DECISION_RECORD_MODEL;
/// The model id of the policy service's administrative-action records (verdicts, policy, token
/// and agent changes): the input commits to the action's JSON (who, when, what), the output to
/// nothing (an empty string).
pub const ADMIN_ACTION_MODEL: &str = "chaperone-policy/admin-action/v1";
/// Decisions logged per batch (one co-signer signature each).
const DECISIONS_PER_BATCH: u32 = 1000;

/// When to sign a checkpoint.
#[derive(Debug, Clone, Copy)]
pub struct AnchorPolicy {
    /// At most this many seconds between checkpoints while records arrive.
    pub interval_secs: u64,
    /// A checkpoint as soon as this many records arrived since the last one.
    pub max_records: u64,
}

/// What one tick did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AnchorReport {
    /// False when another replica holds the anchoring lock (nothing was done).
    pub leader: bool,
    /// Requests whose approval expired, ended with a final decision.
    pub approvals_expired: usize,
    /// Decisions written to the log.
    pub decisions_logged: usize,
    /// Administrative actions written to the log.
    pub actions_logged: usize,
    /// The size of a checkpoint signed in this tick.
    pub checkpoint: Option<u64>,
    /// The size anchored and the transaction, if one was sent.
    pub anchored: Option<(u64, B256)>,
}

/// Logs decisions, signs checkpoints, anchors them.
pub struct Anchorer {
    store: Store,
    log: LogConfig,
    cosigner: Secp256k1Signer,
    sender: Option<DynProvider>,
    policy: AnchorPolicy,
    lock: Option<AnchoringLock>,
    /// When this worker first ran: the interval of a log's first checkpoint counts from here.
    started_at: Option<u64>,
}

impl Anchorer {
    /// A worker for `log`. `sender` sends the anchoring transactions from the operator's
    /// account (the log's operator in `AuditLog`); without it checkpoints are signed only.
    pub fn new(
        store: Store,
        log: LogConfig,
        cosigner: Secp256k1Signer,
        sender: Option<DynProvider>,
        policy: AnchorPolicy,
    ) -> Self {
        Self {
            store,
            log,
            cosigner,
            sender,
            policy,
            lock: None,
            started_at: None,
        }
    }

    /// One pass at `now` (Unix seconds).
    pub async fn tick(&mut self, now: u64) -> anyhow::Result<AnchorReport> {
        let mut report = AnchorReport::default();
        let held = match &mut self.lock {
            Some(lock) => lock.still_held().await,
            None => false,
        };
        if !held {
            self.lock = self.store.try_lock_anchoring().await?;
            if self.lock.is_none() {
                return Ok(report);
            }
        }
        report.leader = true;
        self.started_at.get_or_insert(now);
        report.approvals_expired = self.store.expire_approvals(now).await?;
        report.decisions_logged = self.log_decisions(now).await?;
        report.actions_logged = self.log_admin_actions(now).await?;
        report.checkpoint = self.checkpoint(now, false).await?;
        report.anchored = self.anchor(now).await?;
        Ok(report)
    }

    /// Signs a checkpoint of the whole log now, whatever the policy says (e.g. at shutdown or in
    /// tests), and anchors it when a chain is configured.
    pub async fn flush(&mut self, now: u64) -> anyhow::Result<AnchorReport> {
        let mut report = AnchorReport {
            leader: true,
            ..AnchorReport::default()
        };
        report.approvals_expired = self.store.expire_approvals(now).await?;
        report.decisions_logged = self.log_decisions(now).await?;
        report.actions_logged = self.log_admin_actions(now).await?;
        report.checkpoint = self.checkpoint(now, true).await?;
        report.anchored = self.anchor(now).await?;
        Ok(report)
    }

    /// Logs decisions not yet in the log, as received at `now`: the time the server's own
    /// batch reaches the log, so the period an evidence pack selects by holds each agent's
    /// records in log order (a re-decided request's new record is not dated back to its
    /// first decision, before records logged since).
    async fn log_decisions(&self, now: u64) -> anyhow::Result<usize> {
        let mut logged = 0;
        loop {
            let pending = self.store.unlogged_decisions(DECISIONS_PER_BATCH).await?;
            if pending.is_empty() {
                return Ok(logged);
            }
            let (mut sequence, mut previous) =
                self.store.agent_head(self.cosigner.address()).await?;
            let mut records = Vec::with_capacity(pending.len());
            let mut salts = Vec::with_capacity(pending.len());
            for decision in &pending {
                let (input_salt, output_salt) = (Salt::random()?, Salt::random()?);
                let record = Record {
                    agent: self.cosigner.address(),
                    sequence,
                    timestamp_ms: decision.created_at.saturating_mul(1000),
                    model: DECISION_MODEL.to_owned(),
                    input: Commitment::compute(
                        CommitmentKind::Input,
                        &input_salt,
                        decision.request.as_bytes(),
                    ),
                    output: Commitment::compute(
                        CommitmentKind::Output,
                        &output_salt,
                        decision.decision.as_bytes(),
                    ),
                    metadata: None,
                    previous,
                };
                previous = record.leaf_hash()?;
                sequence += 1;
                records.push(record);
                let salts_json =
                    serde_json::json!({ "input": input_salt, "output": output_salt }).to_string();
                salts.push((decision.clone(), salts_json));
            }
            let batch = SignedBatch::sign(records, &self.cosigner)?;
            let leaves = batch.leaf_hashes()?;
            self.store
                .append_batch(&batch, &leaves, now.saturating_mul(1000), &salts)
                .await
                .context("logging co-sign decisions")?;
            logged += pending.len();
        }
    }

    /// Logs administrative actions not yet in the log, as records of the policy service after
    /// its decisions: the same agent (the co-signer key), so one chain orders them all.
    async fn log_admin_actions(&self, now: u64) -> anyhow::Result<usize> {
        let mut logged = 0;
        loop {
            let pending = self
                .store
                .unlogged_admin_actions(DECISIONS_PER_BATCH)
                .await?;
            if pending.is_empty() {
                return Ok(logged);
            }
            let (mut sequence, mut previous) =
                self.store.agent_head(self.cosigner.address()).await?;
            let mut records = Vec::with_capacity(pending.len());
            let mut salts = Vec::with_capacity(pending.len());
            for action in &pending {
                let (input_salt, output_salt) = (Salt::random()?, Salt::random()?);
                let record = Record {
                    agent: self.cosigner.address(),
                    sequence,
                    timestamp_ms: action.at.saturating_mul(1000),
                    model: ADMIN_ACTION_MODEL.to_owned(),
                    input: Commitment::compute(
                        CommitmentKind::Input,
                        &input_salt,
                        action.content().as_bytes(),
                    ),
                    output: Commitment::compute(CommitmentKind::Output, &output_salt, b""),
                    metadata: None,
                    previous,
                };
                previous = record.leaf_hash()?;
                sequence += 1;
                records.push(record);
                let salts_json =
                    serde_json::json!({ "input": input_salt, "output": output_salt }).to_string();
                salts.push((ServiceRecord::AdminAction(action.id), salts_json));
            }
            let batch = SignedBatch::sign(records, &self.cosigner)?;
            let leaves = batch.leaf_hashes()?;
            self.store
                .append_service_batch(&batch, &leaves, now.saturating_mul(1000), &salts)
                .await
                .context("logging administrative actions")?;
            logged += pending.len();
        }
    }

    async fn checkpoint(&self, now: u64, force: bool) -> anyhow::Result<Option<u64>> {
        let (size, root) = self.store.log_head().await?;
        let last = self.store.latest_checkpoint().await?;
        let (last_size, last_at) = match &last {
            Some((c, at)) => (c.size, *at),
            None => (0, self.started_at.unwrap_or(now)),
        };
        let due = size > last_size
            && (force
                || size - last_size >= self.policy.max_records
                || now.saturating_sub(last_at) >= self.policy.interval_secs);
        if !due {
            return Ok(None);
        }
        let signed = chaperone_core::Checkpoint {
            origin: self.log.origin.clone(),
            size,
            root,
        }
        .sign(&self.log.origin, &self.log.operator)?;
        self.store
            .save_checkpoint(
                &StoredCheckpoint {
                    size,
                    root,
                    note: signed.note,
                },
                now,
            )
            .await?;
        tracing::info!(size, %root, "checkpoint signed");
        Ok(Some(size))
    }

    async fn anchor(&self, now: u64) -> anyhow::Result<Option<(u64, B256)>> {
        let (Some(sender), Some(chain)) = (&self.sender, &self.log.chain) else {
            return Ok(None);
        };
        let contract = AuditLog::new(chain.audit_log, sender);
        let latest = contract.latest(chain.log_id).call().await?;
        let (chain_size, chain_root) = (latest.size, latest.root);
        let (log_size, _) = self.store.log_head().await?;
        if chain_size > log_size {
            bail!(
                "AuditLog has size {chain_size} anchored, beyond this log's {log_size}: \
                 is the database an old backup? Refusing to anchor."
            );
        }
        if chain_size > 0 {
            let local = self.store.root_at(chain_size).await?;
            if local != chain_root {
                bail!(
                    "AuditLog anchored root {chain_root} at size {chain_size}, this log has \
                     {local}: the histories forked. Refusing to anchor."
                );
            }
            if self.store.anchor_at(chain_size).await?.is_none() {
                // Anchored before a crash let us record it: find the transaction.
                self.recover_anchor(sender, chain.audit_log, chain.log_id, chain_size, now)
                    .await?;
            }
        }
        let Some((target, _)) = self.store.latest_checkpoint().await? else {
            return Ok(None);
        };
        if target.size <= chain_size {
            return Ok(None);
        }
        let proof = if chain_size == 0 {
            Vec::new()
        } else {
            self.store
                .consistency_proof(chain_size, target.size)
                .await?
                .path
        };
        // The nonce comes from the chain on every anchor, never from the provider's cache:
        // another replica may have led (and sent from the operator account) since this one
        // last did, and a cached nonce would fail every pass with "nonce too low". One RPC per
        // anchor, which is seconds apart.
        let nonce = sender
            .get_transaction_count(self.log.operator.address())
            .pending()
            .await
            .context("reading the operator's nonce")?;
        let call = contract
            .anchor(chain.log_id, target.size, target.root, proof)
            .nonce(nonce);
        // Simulate first: a send that fails at gas estimation would burn a provider nonce.
        call.call().await.context("simulating AuditLog.anchor")?;
        let receipt = call
            .send()
            .await?
            .with_timeout(Some(std::time::Duration::from_secs(60)))
            .get_receipt()
            .await?;
        if !receipt.status() {
            bail!(
                "anchoring transaction {} reverted",
                receipt.transaction_hash
            );
        }
        let anchor = Anchor {
            size: target.size,
            root: target.root,
            tx_hash: receipt.transaction_hash,
            block_number: receipt.block_number.unwrap_or_default(),
        };
        self.store.save_anchor(&anchor, now).await?;
        tracing::info!(size = target.size, tx = %receipt.transaction_hash, gas = receipt.gas_used, "checkpoint anchored");
        Ok(Some((target.size, receipt.transaction_hash)))
    }

    async fn recover_anchor(
        &self,
        provider: &DynProvider,
        audit_log: Address,
        log_id: B256,
        size: u64,
        now: u64,
    ) -> anyhow::Result<()> {
        let filter = Filter::new()
            .address(audit_log)
            .event_signature(AuditLog::Anchored::SIGNATURE_HASH)
            .topic1(log_id)
            .from_block(0);
        for log in provider.get_logs(&filter).await? {
            let event = AuditLog::Anchored::decode_log(&log.inner)?;
            if event.size == size {
                let anchor = Anchor {
                    size,
                    root: event.root,
                    tx_hash: log.transaction_hash.unwrap_or_default(),
                    block_number: log.block_number.unwrap_or_default(),
                };
                self.store.save_anchor(&anchor, now).await?;
            }
        }
        Ok(())
    }
}

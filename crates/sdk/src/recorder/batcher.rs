//! The batcher: takes staged records off the caller's hot path, signs each batch once and
//! persists it to the outbox, then wakes the deliverer.

use std::sync::{Arc, Mutex, PoisonError, atomic::Ordering};

use chaperone_core::{B256, Record, Secp256k1Signer, SignedBatch};
use tokio::sync::{Notify, watch};
use zeroize::Zeroizing;

use super::{Backlog, Head, Progress, RecorderConfig, Staging, now_ms};
use crate::{
    Error,
    local::{LocalStore, Stage, StagedRecord},
};

pub(super) struct Batcher {
    pub(super) head: Arc<Mutex<Head>>,
    pub(super) staging: Arc<Staging>,
    pub(super) key: Secp256k1Signer,
    pub(super) local: LocalStore,
    pub(super) config: RecorderConfig,
    pub(super) progress: Arc<watch::Sender<Progress>>,
    pub(super) backlog: Arc<Backlog>,
    pub(super) wake: Arc<Notify>,
}

/// Closes the stage when the batcher stops (returns, panics or is aborted): `record` then
/// fails with `Closed` instead of waiting for space that never comes.
pub(super) struct CloseOnDrop(Arc<Staging>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.space.close();
    }
}

impl Batcher {
    fn staged(&self) -> usize {
        self.head
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stage
            .records
            .len()
    }

    pub(super) async fn run(self) {
        let _close = CloseOnDrop(self.staging.clone());
        let mut taken = Stage::default();
        loop {
            // Backpressure: while the outbox is full, leave records staged; the stage fills
            // and makes `record` wait.
            while self.backlog.records.load(Ordering::Acquire) >= self.config.max_undelivered {
                self.backlog.drained.notified().await;
            }
            while self.staged() == 0 {
                self.staging.arrived.notified().await;
            }
            // Sleep through the linger instead of waking per record: records arriving now
            // are staged without waking anyone, so the hot path never pays for a wake-up.
            if self.staged() < self.config.max_batch && !self.config.linger.is_zero() {
                tokio::time::sleep(self.config.linger).await;
            }
            std::mem::swap(
                &mut self
                    .head
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .stage,
                &mut taken,
            );
            self.staging.space.add_permits(taken.records.len());
            // Shared with the blocking threads that write it to the content file; back to
            // one owner once every batch is persisted, and kept for the next swap.
            let content = Arc::new(std::mem::take(&mut taken.content));
            for batch in taken.records.chunks(self.config.max_batch.max(1)) {
                self.persist(batch, &content).await;
            }
            taken.content = Arc::try_unwrap(content).unwrap_or_default();
            taken.clear();
        }
    }

    /// Signs and persists one batch, retrying the local write until it succeeds (the records
    /// exist nowhere else).
    async fn persist(&self, batch: &[StagedRecord], content: &Arc<Zeroizing<Vec<u8>>>) {
        let records: Vec<Record> = batch.iter().map(|p| p.record.clone()).collect();
        let leaves: Vec<B256> = batch.iter().map(|p| p.leaf_hash).collect();
        let body = match SignedBatch::sign_hashed(records, &leaves, &self.key)
            .map_err(Error::from)
            .and_then(|signed| {
                serde_json::to_vec(&signed)
                    .map_err(|e| Error::Invalid(format!("serialising a batch: {e}")))
            }) {
            // Shared with the blocking thread that writes it, attempt after attempt.
            Ok(body) => Arc::<[u8]>::from(body),
            Err(e) => {
                // Unreachable for records built by `record`; logged rather than panicking.
                tracing::error!(error = %e, "could not sign a batch; its records are dropped");
                return;
            }
        };
        let mut wait = self.config.retry.0;
        while let Err(e) = self
            .local
            .persist_batch(self.key.address(), batch, content, &body, now_ms())
            .await
        {
            tracing::warn!(error = %e, "writing the outbox failed; retrying");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(self.config.retry.1);
        }
        let last = batch.last().map_or(0, |p| p.record.sequence);
        self.backlog
            .records
            .fetch_add(batch.len() as u64, Ordering::AcqRel);
        self.progress.send_modify(|p| p.persisted = last + 1);
        self.wake.notify_one();
    }
}

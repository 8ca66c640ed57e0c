//! The deliverer: sends the outbox's batches in order and retries until the server answers
//! with a receipt; a batch the server refuses is marked rejected, never resent forever.

use std::sync::{Arc, atomic::Ordering};

use chaperone_api::Client;
use chaperone_core::{Address, BatchReceipt};
use tokio::sync::{Notify, watch};

use super::{Backlog, Progress, RecorderConfig, now_ms};
use crate::{
    Error, Result,
    local::{LocalStore, OutboxBatch},
};

pub(super) struct Deliverer {
    pub(super) agent: Address,
    pub(super) local: LocalStore,
    pub(super) api: Client,
    pub(super) config: RecorderConfig,
    pub(super) progress: Arc<watch::Sender<Progress>>,
    pub(super) backlog: Arc<Backlog>,
    pub(super) wake: Arc<Notify>,
}

impl Deliverer {
    pub(super) async fn run(self) {
        let mut wait = self.config.retry.0;
        loop {
            let batches = match self.local.undelivered(self.agent, 16).await {
                Ok(batches) => batches,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the outbox failed; retrying");
                    tokio::time::sleep(wait).await;
                    continue;
                }
            };
            if batches.is_empty() {
                self.wake.notified().await;
                continue;
            }
            // Each receipt is stored while the next batch is on its way: the server's work
            // and the local write overlap. A batch whose receipt is not stored stays
            // undelivered in the outbox and is resent; the server answers it as a replay.
            let mut unstored: Option<(OutboxBatch, BatchReceipt)> = None;
            for mut batch in batches {
                let previous = unstored.take();
                // Sent once per read of the outbox: the body moves into the request.
                let body = std::mem::take(&mut batch.body);
                let (posted, stored) = tokio::join!(self.post(&batch, body), async {
                    match &previous {
                        Some((sent, receipt)) => self.store_receipt(sent, receipt).await,
                        None => Ok(()),
                    }
                });
                if let Err(e) = stored {
                    tracing::warn!(error = %e, retry_in = ?wait, "storing a receipt failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(self.config.retry.1);
                    break;
                }
                match posted {
                    Ok(receipt) => {
                        wait = self.config.retry.0;
                        unstored = Some((batch, receipt));
                    }
                    Err(Error::Refused {
                        status,
                        code,
                        message,
                    }) => {
                        let message = format!("{status} {code}: {message}");
                        tracing::error!(batch = batch.batch_id, %message, "server rejected a batch");
                        if self
                            .local
                            .mark_rejected(batch.batch_id, &message)
                            .await
                            .is_ok()
                        {
                            self.progress.send_modify(|p| {
                                p.rejected.get_or_insert((batch.batch_id, message));
                            });
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in = ?wait, "delivery failed; retrying");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(self.config.retry.1);
                        break;
                    }
                }
            }
            if let Some((sent, receipt)) = unstored
                && let Err(e) = self.store_receipt(&sent, &receipt).await
            {
                tracing::warn!(error = %e, retry_in = ?wait, "storing a receipt failed; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(self.config.retry.1);
            }
        }
    }

    /// Sends a batch (`body`, its stored body) and returns the server's receipt for it.
    async fn post(&self, batch: &OutboxBatch, body: Vec<u8>) -> Result<BatchReceipt> {
        // The stored body, byte for byte: a resend of a batch the server already logged is
        // answered as a replay with the same positions, so nothing is logged twice.
        let response = self.api.ingest(body).await?;
        if response.receipt.size != batch.size {
            return Err(Error::Unreachable {
                url: self.api.base().to_owned(),
                detail: "the receipt covers another number of records".into(),
            });
        }
        Ok(response.receipt)
    }

    /// Stores a batch's receipt: from then on its records count as delivered.
    async fn store_receipt(&self, batch: &OutboxBatch, receipt: &BatchReceipt) -> Result<()> {
        self.local
            .mark_delivered(batch.batch_id, receipt, now_ms())
            .await?;
        self.backlog.records.fetch_sub(batch.size, Ordering::AcqRel);
        self.backlog.drained.notify_one();
        self.progress
            .send_modify(|p| p.delivered = batch.first_sequence + batch.size);
        Ok(())
    }
}

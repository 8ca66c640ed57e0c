//! Settles and releases spend reservations from what the chain says: `Executed(nonce)` of a
//! registered wallet settles the co-signed requests with that nonce; a reservation whose
//! `validUntil` passed without execution is released (a reverted execution never emits
//! `Executed`, so it is released the same way once it can no longer be retried).

use alloy::{providers::Provider, rpc::types::Filter, sol_types::SolEvent};
use chaperone_chain::AgentWallet;
use chaperone_store::Store;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WatchReport {
    /// Executions seen.
    pub executions: usize,
    /// Reservations settled.
    pub settled: u64,
    /// Reservations released because their `validUntil` passed.
    pub released: u64,
}

/// Follows `AgentWallet.Executed` logs from a block cursor.
#[derive(Debug)]
pub struct Watcher<P> {
    provider: P,
    store: Store,
    next_block: u64,
}

impl<P: Provider> Watcher<P> {
    /// A watcher reading logs from `from_block` on. Settling is idempotent, so starting early
    /// (e.g. at 0 after a restart) only costs time.
    pub fn new(provider: P, store: Store, from_block: u64) -> Self {
        Self {
            provider,
            store,
            next_block: from_block,
        }
    }

    /// One pass: new `Executed` logs up to the latest block, then expiry at `now`.
    pub async fn tick(&mut self, now: u64) -> anyhow::Result<WatchReport> {
        let mut report = WatchReport::default();
        let latest = self.provider.get_block_number().await?;
        let wallets = self.store.wallet_addresses().await?;
        if latest >= self.next_block && !wallets.is_empty() {
            let filter = Filter::new()
                .address(wallets)
                .event_signature(AgentWallet::Executed::SIGNATURE_HASH)
                .from_block(self.next_block)
                .to_block(latest);
            for log in self.provider.get_logs(&filter).await? {
                let executed = AgentWallet::Executed::decode_log(&log.inner)?;
                report.executions += 1;
                report.settled += self
                    .store
                    .settle_execution(log.address(), executed.nonce)
                    .await?;
            }
            self.next_block = latest + 1;
        }
        report.released = self.store.release_expired(now).await?;
        Ok(report)
    }
}

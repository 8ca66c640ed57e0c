//! The indexer's Permit2 work: Permit2 emits no event, so a payment's use is read from its
//! nonce bitmap, and the transfer that paid it is the one the x402 Permit2 proxy made (its
//! `Settled()`, read from the receipts of the transactions that moved a wallet's tokens, with
//! the Permit2 nonce of a direct `settle` call's calldata).

use alloy::{primitives::B256, providers::Provider, rpc::types::Log, sol_types::SolEvent};
use chaperone_chain::{AgentWallet, X402ExactPermit2Proxy};
use chaperone_store::Settlement;

use super::Indexer;

impl Indexer {
    /// The x402 Permit2 proxy's `Settled` logs in the transactions of `transfers` (the wallets'
    /// transfers), from their receipts: reconciliation pairs a Permit2 payment only with a
    /// transfer the proxy made, its `Settled` the very next log (red team rt29 F5). `Settled`
    /// names nothing, so reading it by address chain-wide would read every x402 payment's; a
    /// receipt per transaction that moved a wallet's tokens reads only ours.
    pub(super) async fn x402_proxy_settlements(
        &self,
        transfers: &[Log],
    ) -> anyhow::Result<Vec<Log>> {
        let mut transactions: Vec<B256> = transfers
            .iter()
            .filter_map(|l| l.transaction_hash)
            .collect();
        transactions.sort_unstable();
        transactions.dedup();
        let mut found = Vec::new();
        for hash in transactions {
            let Some(receipt) = self.provider.get_transaction_receipt(hash).await? else {
                continue;
            };
            found.extend(
                receipt
                    .inner
                    .logs()
                    .iter()
                    .filter(|log| {
                        log.address() == chaperone_core::X402_PERMIT2_PROXY
                            && log.topic0() == Some(&X402ExactPermit2Proxy::Settled::SIGNATURE_HASH)
                    })
                    .cloned(),
            );
        }
        Ok(found)
    }

    /// The Permit2 nonce a transaction that calls the x402 proxy's `settle` directly (as x402
    /// facilitators do) spent: reconciliation then pairs its transfer only with the decision of
    /// that nonce. Through a relay or a batch the calldata is another contract's: unknown.
    pub(super) async fn proxy_call_nonce(&self, transaction: B256) -> anyhow::Result<Option<B256>> {
        use alloy::{consensus::Transaction as _, sol_types::SolCall};
        let Some(tx) = self.provider.get_transaction_by_hash(transaction).await? else {
            return Ok(None);
        };
        if tx.inner.to() != Some(chaperone_core::X402_PERMIT2_PROXY) {
            return Ok(None);
        }
        Ok(
            X402ExactPermit2Proxy::settleCall::abi_decode(tx.inner.input())
                .ok()
                .map(|call| B256::from(call.permit.nonce)),
        )
    }

    /// Reconciles the wallets' Permit2 payments, which emit no event: every Permit2 nonce a
    /// wallet's EIP-1271 can honour (its Permit2 slots, in the current and the previous
    /// backstop period of each token with a Permit2 budget, as the wallet computes them at
    /// block `to`) that Permit2's bitmap shows used is matched with an approved decision whose
    /// transfer was paired (in `index_blocks`, which ran up to `to` first) with a token
    /// `Transfer` from the wallet. Nonces outside those slots cannot pay (the wallet refuses to
    /// sign them).
    pub(super) async fn reconcile_permit2(
        &self,
        to: u64,
        to_time: u64,
    ) -> anyhow::Result<Vec<chaperone_store::UnauthorizedSpend>> {
        use alloy::primitives::U256;
        let permit2 = chaperone_chain::Permit2::new(chaperone_core::PERMIT2, &self.provider);
        let mut found = Vec::new();
        for (wallet, token, slots) in self.store.permit2_budgets().await? {
            let first = match AgentWallet::new(wallet, &self.provider)
                .authorizationNonce(token, 0)
                .block(to.into())
                .call()
                .await
            {
                Ok(nonce) => nonce,
                // The token has no backstop period now: the wallet honours no authorization
                // of it, so none can pay. (An RPC failure fails the pass, retried.)
                Err(e) if e.as_revert_data().is_some() => continue,
                Err(e) => return Err(e.into()),
            };
            let first = U256::from_be_bytes(first.0) | U256::from(chaperone_core::PERMIT2_SLOTS);
            let mut used = Vec::new();
            let previous = first.checked_sub(U256::from(1) << 192usize);
            for base in std::iter::once(first).chain(previous) {
                let mut word = None;
                for slot in 0..u64::from(slots) {
                    let nonce = base + U256::from(slot);
                    if word.as_ref().is_none_or(|(w, _)| *w != nonce >> 8usize) {
                        let bits = permit2
                            .nonceBitmap(wallet, nonce >> 8usize)
                            .block(to.into())
                            .call()
                            .await?;
                        word = Some((nonce >> 8usize, bits));
                    }
                    let bits = word.as_ref().map_or(U256::ZERO, |(_, b)| *b);
                    if bits.bit((nonce & U256::from(0xff)).to::<usize>()) {
                        used.push(B256::from(nonce));
                    }
                }
            }
            if !used.is_empty() {
                found.extend(
                    self.store
                        .reconcile_permit2(wallet, &used, to, to_time)
                        .await?,
                );
            }
        }
        Ok(found)
    }

    /// Settles the reserved x402 Permit2 payments whose nonce Permit2's bitmap shows used at
    /// block `to`. Permit2 emits no event for it, and the release that follows (in
    /// `index_blocks`) must never uncount a payment that was made: what is still unused at a
    /// confirmed block past its deadline never will be. Settling is idempotent, so a crash
    /// between this and `index_blocks` loses nothing.
    /// The ledger records block `to` (and its time) as where it was first seen used: Permit2
    /// names no transaction.
    pub(super) async fn settle_used_permit2(&self, to: u64, to_time: u64) -> anyhow::Result<()> {
        let reserved = self.store.reserved_permit2().await?;
        if reserved.is_empty() {
            return Ok(());
        }
        let permit2 = chaperone_chain::Permit2::new(chaperone_core::PERMIT2, &self.provider);
        for (wallet, nonce) in reserved {
            let n = alloy::primitives::U256::from_be_bytes(nonce.0);
            let bits = permit2
                .nonceBitmap(wallet, n >> 8usize)
                .block(to.into())
                .call()
                .await?;
            if bits.bit((n & alloy::primitives::U256::from(0xff)).to::<usize>()) {
                let seen = Settlement {
                    tx: None,
                    block: to,
                    time: Some(to_time),
                };
                self.store
                    .settle_authorization_seen(wallet, chaperone_core::PERMIT2, nonce, Some(seen))
                    .await?;
            }
        }
        Ok(())
    }
}

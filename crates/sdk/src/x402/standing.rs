//! Where a payment stands on the chain: still usable, used (settled), or expired unused. An
//! x402 client of another library that keeps its own book of payments sent
//! (`ChaperoneExactEvmScheme` in the Node package) asks before it forgets one: a payment the
//! merchant may still settle must not be replaced by a second authorization, which would take
//! another of the wallet's slots for the period.

use super::{SettledPayment, X402Client, X402Payment};
use crate::Result;

/// Where a payment stands on the chain ([`X402Client::standing`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentStanding {
    /// Not used, and within its validity in chain time: the merchant may still settle it.
    Usable,
    /// Used: the transaction that settled it.
    Settled(SettledPayment),
    /// Not used, and past its validity in chain time: it can never move funds.
    Expired,
}

impl X402Client {
    /// Where `payment` stands on the chain: measured against the latest block's time (never
    /// the local clock, which may run ahead of the chain's and forget a payment the merchant
    /// can still settle), and the chain's record of its authorization used.
    pub async fn standing(&self, payment: &X402Payment) -> Result<PaymentStanding> {
        let usable_until = payment.authorization()?.usable_until();
        // Read before searching, as `watch` does: once chain time is past, no later block can
        // use it, so a search that finds nothing after this is final.
        let over = self.chain_time().await? > usable_until;
        let agent = self.wallet.key.address();
        if let Some(settled) = payment
            .find_settlement(&self.wallet.provider, agent)
            .await?
        {
            return Ok(PaymentStanding::Settled(settled));
        }
        Ok(if over {
            PaymentStanding::Expired
        } else {
            PaymentStanding::Usable
        })
    }
}

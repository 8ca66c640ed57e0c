//! What an x402 payment was, as a model call's record commits to it: the requirement, the
//! signed authorization, the merchant's settlement report, and the check of that report
//! against the chain.

use alloy::{
    primitives::{Address, B256, U256},
    providers::Provider,
    sol_types::SolEvent,
};
use chaperone_chain::TestToken;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How a payment moves the token: EIP-3009 (the token verifies the wallet's signature) or
/// Permit2 through the x402 exact proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    /// EIP-3009 `transferWithAuthorization`.
    Eip3009,
    /// Permit2 `permitWitnessTransferFrom` through the x402 exact proxy.
    Permit2,
}

/// A payment the agent made for a resource: what the merchant asked, what the wallet signed,
/// and what the merchant reported. It is also what a model call's audit record commits to (see
/// [`X402Payment::record_metadata`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct X402Payment {
    /// The URL paid for.
    pub resource: String,
    /// The x402 protocol version the merchant spoke (1 or 2).
    pub x402_version: u8,
    /// The requirement accepted, exactly as the merchant offered it.
    pub requirement: serde_json::Value,
    /// The CAIP-2 network (`eip155:<chain id>`).
    pub network: String,
    /// EIP-3009 or Permit2.
    pub method: PaymentMethod,
    /// The token.
    pub asset: Address,
    /// The merchant.
    pub pay_to: Address,
    /// The amount in base units.
    pub amount: U256,
    /// The co-sign decision's id (the digest both keys signed).
    pub request_id: B256,
    /// The EIP-712 hash the token (or Permit2) verified through the wallet's EIP-1271.
    pub authorization_hash: B256,
    /// The authorization's nonce (the wallet's slot for this period).
    pub nonce: B256,
    /// The payment header's value as sent (base64 JSON: the signed authorization), so a
    /// disclosure carries exactly what the merchant received.
    pub payload: String,
    /// What the merchant reported in its `Payment-Response` header, if anything.
    pub settlement: Option<Settlement>,
}

/// The settlement a merchant reports for a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlement {
    /// Whether the payment settled.
    pub success: bool,
    /// The settling transaction.
    pub transaction: Option<B256>,
    /// Who paid (the wallet).
    pub payer: Option<Address>,
    /// The CAIP-2 network.
    pub network: String,
    /// Why it failed, when it did.
    pub error_reason: Option<String>,
}

impl X402Payment {
    /// The payment as the metadata of the model call it was made in (`{"x402": …}`), for
    /// [`crate::Recorder::record`]: the call's audit record then commits to the requirement,
    /// the authorization hash and the settlement transaction.
    pub fn record_metadata(payments: &[X402Payment]) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({ "x402": payments })).unwrap_or_default()
    }

    /// The payments a model call's metadata (as [`Self::record_metadata`] wrote it) names.
    pub fn from_metadata(metadata: &[u8]) -> Vec<X402Payment> {
        serde_json::from_slice::<serde_json::Value>(metadata)
            .ok()
            .and_then(|m| serde_json::from_value(m.get("x402")?.clone()).ok())
            .unwrap_or_default()
    }

    /// Checks the settlement against the chain: the reported transaction succeeded and moved
    /// exactly `amount` of `asset` from the payer to `pay_to`. Returns its block.
    pub async fn verify_settlement<P: Provider>(&self, provider: &P) -> Result<u64> {
        let settlement = self
            .settlement
            .as_ref()
            .filter(|s| s.success)
            .ok_or_else(|| Error::Invalid("the payment reports no settlement".into()))?;
        let (tx, payer) = settlement
            .transaction
            .zip(settlement.payer)
            .ok_or_else(|| Error::Invalid("the settlement names no transaction or payer".into()))?;
        let receipt = provider
            .get_transaction_receipt(tx)
            .await
            .map_err(|e| Error::Chain(e.to_string()))?
            .ok_or_else(|| Error::Invalid(format!("transaction {tx} is not on this chain")))?;
        let paid = receipt.status()
            && receipt.inner.logs().iter().any(|log| {
                log.address() == self.asset
                    && TestToken::Transfer::decode_log(&log.inner).is_ok_and(|t| {
                        t.from == payer && t.to == self.pay_to && t.value == self.amount
                    })
            });
        if !paid {
            return Err(Error::Invalid(format!(
                "transaction {tx} did not move {} of {} from {payer} to {}",
                self.amount, self.asset, self.pay_to
            )));
        }
        Ok(receipt.block_number.unwrap_or_default())
    }
}

/// The `Payment-Response` header's JSON (x402 v1 and v2 share it).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SettlementWire {
    success: bool,
    #[serde(default)]
    error_reason: Option<String>,
    #[serde(default)]
    payer: Option<String>,
    #[serde(default)]
    transaction: Option<String>,
    network: String,
}

impl From<SettlementWire> for Settlement {
    fn from(w: SettlementWire) -> Self {
        Self {
            success: w.success,
            transaction: w.transaction.and_then(|t| t.parse().ok()),
            payer: w.payer.and_then(|p| p.parse().ok()),
            network: w.network,
            error_reason: w.error_reason,
        }
    }
}

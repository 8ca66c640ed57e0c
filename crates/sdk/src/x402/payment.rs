//! What an x402 payment was, as a model call's record commits to it: the requirement, the
//! signed authorization (the payment header as sent), and the merchant's settlement report.
//! Whether the chain shows that authorization used is `settlement.rs`.

use alloy::primitives::{Address, B256, Bytes, U256};
use chaperone_core::{
    PermitWitnessTransferFrom, TokenPermissions, TransferWithAuthorization, Witness,
};
use serde::{Deserialize, Serialize};
use x402_chain_eip155::v2_eip155_exact::types::ExactEvmPayload;
use x402_types::util::Base64Bytes;

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
    /// The chain's latest block when the payment was sent: it cannot have settled earlier, so
    /// a search for its settlement starts there (absent in records of older SDKs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_sent: Option<u64>,
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

impl Settlement {
    /// The settlement a merchant reported as JSON (the `Payment-Response` header decoded, or
    /// x402 over MCP's `_meta["x402/payment-response"]`); `None` if it is not one.
    pub fn from_response(value: &serde_json::Value) -> Option<Self> {
        serde_json::from_value::<SettlementWire>(value.clone())
            .ok()
            .map(Self::from)
    }
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

    /// The signed authorization the payment header carried.
    pub fn authorization(&self) -> Result<PaidAuthorization> {
        PaidAuthorization::from_header(&self.payload)
    }

    /// The header (`Payment-Signature` in x402 v2, `X-Payment` in v1) that carries the payment.
    pub(super) fn header_name(&self) -> &'static str {
        header_name(self.x402_version)
    }
}

/// The header that carries a payment in x402 `version`.
pub(super) fn header_name(version: u8) -> &'static str {
    if version == 2 {
        "Payment-Signature"
    } else {
        "X-Payment"
    }
}

/// The authorization a payment header carried, with the wallet's signature of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaidAuthorization {
    /// EIP-3009 `TransferWithAuthorization`; `message.from` is the paying wallet.
    Eip3009 {
        /// The authorization.
        message: TransferWithAuthorization,
        /// The wallet's EIP-1271 signature (ERC-6492-wrapped for a wallet not deployed yet).
        signature: Bytes,
    },
    /// Permit2 `PermitWitnessTransferFrom` through the x402 exact proxy.
    Permit2 {
        /// The paying wallet.
        payer: Address,
        /// The Permit2 message.
        message: PermitWitnessTransferFrom,
        /// The wallet's EIP-1271 signature (ERC-6492-wrapped for a wallet not deployed yet).
        signature: Bytes,
    },
}

impl PaidAuthorization {
    /// Decodes a payment header's value (base64 JSON, x402 v1 or v2, the "exact" EVM scheme).
    pub fn from_header(header: &str) -> Result<Self> {
        let invalid = |why: String| Error::Invalid(format!("the payment header: {why}"));
        let json = Base64Bytes::from(header.as_bytes())
            .decode()
            .map_err(|e| invalid(e.to_string()))?;
        let mut message: serde_json::Value =
            serde_json::from_slice(&json).map_err(|e| invalid(e.to_string()))?;
        // v1 and v2 both put the scheme's payload under `payload`; v1 pays by EIP-3009 only,
        // which is one of v2's two shapes.
        let payload = serde_json::from_value(message["payload"].take())
            .map_err(|e| invalid(e.to_string()))?;
        Ok(match payload {
            ExactEvmPayload::Eip3009(p) => Self::Eip3009 {
                message: TransferWithAuthorization {
                    from: p.authorization.from,
                    to: p.authorization.to,
                    value: p.authorization.value,
                    validAfter: U256::from(p.authorization.valid_after.as_secs()),
                    validBefore: U256::from(p.authorization.valid_before.as_secs()),
                    nonce: p.authorization.nonce,
                },
                signature: p.signature,
            },
            ExactEvmPayload::Permit2(p) => {
                let a = p.permit_2_authorization;
                Self::Permit2 {
                    payer: a.from.0,
                    message: PermitWitnessTransferFrom {
                        permitted: TokenPermissions {
                            token: a.permitted.token.0,
                            amount: a.permitted.amount,
                        },
                        spender: a.spender.0,
                        nonce: a.nonce,
                        deadline: U256::from(a.deadline.as_secs()),
                        witness: Witness {
                            to: a.witness.to.0,
                            validAfter: U256::from(a.witness.valid_after.as_secs()),
                        },
                    },
                    signature: p.signature,
                }
            }
        })
    }

    /// The wallet that pays.
    pub fn payer(&self) -> Address {
        match self {
            Self::Eip3009 { message, .. } => message.from,
            Self::Permit2 { payer, .. } => *payer,
        }
    }

    /// The token, the payee and the amount, as signed (for EIP-3009 the token is the
    /// signature's verifying contract, so `None`: the record names it).
    pub fn transfer(&self) -> (Option<Address>, Address, U256) {
        match self {
            Self::Eip3009 { message, .. } => (None, message.to, message.value),
            Self::Permit2 { message, .. } => (
                Some(message.permitted.token),
                message.witness.to,
                message.permitted.amount,
            ),
        }
    }

    /// The nonce the token (EIP-3009) or Permit2 marks used when it pays.
    pub fn nonce(&self) -> B256 {
        match self {
            Self::Eip3009 { message, .. } => message.nonce,
            Self::Permit2 { message, .. } => B256::from(message.nonce),
        }
    }

    /// The last chain time (Unix seconds) at which it can still be used: EIP-3009 needs
    /// `block.timestamp < validBefore`, Permit2 `block.timestamp <= deadline`.
    pub fn usable_until(&self) -> u64 {
        let seconds = match self {
            Self::Eip3009 { message, .. } => message.validBefore.saturating_sub(U256::from(1)),
            Self::Permit2 { message, .. } => message.deadline,
        };
        u64::try_from(seconds).unwrap_or(u64::MAX)
    }

    /// The wallet's signature, as sent.
    pub fn signature(&self) -> &Bytes {
        match self {
            Self::Eip3009 { signature, .. } | Self::Permit2 { signature, .. } => signature,
        }
    }

    /// EIP-3009 or Permit2.
    pub fn method(&self) -> PaymentMethod {
        match self {
            Self::Eip3009 { .. } => PaymentMethod::Eip3009,
            Self::Permit2 { .. } => PaymentMethod::Permit2,
        }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_the_payments() {
        let payment = X402Payment {
            resource: "https://api.example/forecast".into(),
            x402_version: 2,
            requirement: serde_json::json!({ "scheme": "exact" }),
            network: "eip155:84532".into(),
            method: PaymentMethod::Permit2,
            asset: Address::repeat_byte(1),
            pay_to: Address::repeat_byte(2),
            amount: U256::from(10_000),
            request_id: B256::repeat_byte(3),
            authorization_hash: B256::repeat_byte(4),
            nonce: B256::repeat_byte(5),
            payload: "eyJ9".into(),
            settlement: None,
            block_sent: Some(7),
        };
        let metadata = X402Payment::record_metadata(std::slice::from_ref(&payment));
        assert_eq!(X402Payment::from_metadata(&metadata), vec![payment]);
        assert!(X402Payment::from_metadata(b"{\"gen_ai.usage.input_tokens\": 3}").is_empty());
    }

    #[test]
    fn records_of_older_sdks_still_read() {
        let old = serde_json::json!({ "x402": [{
            "resource": "https://api.example/forecast", "x402_version": 2,
            "requirement": {}, "network": "eip155:84532", "method": "eip3009",
            "asset": Address::repeat_byte(1), "pay_to": Address::repeat_byte(2), "amount": "0x1",
            "request_id": B256::repeat_byte(3), "authorization_hash": B256::repeat_byte(4),
            "nonce": B256::repeat_byte(5), "payload": "", "settlement": null,
        }]});
        let read = X402Payment::from_metadata(&serde_json::to_vec(&old).unwrap());
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].block_sent, None);
    }
}

//! Reconciliation's alerts (`GET /v1/unauthorized-spends`, `POST
//! /v1/unauthorized-spends/{id}/acknowledge`): on-chain outflows of a registered wallet that
//! no approved co-sign decision accounts for, the sign that the co-signer key is out.

use chaperone_core::{Address, B256};
use serde::{Deserialize, Serialize};

/// How an unauthorized spend left the wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OutflowKind {
    /// The wallet emitted `Executed(nonce, digest)`: an `execute` of calls nobody here
    /// co-signed.
    Execute,
    /// A token emitted `AuthorizationUsed(wallet, nonce)`: an EIP-3009 authorization the
    /// wallet signed through EIP-1271 without a co-sign decision.
    Eip3009,
    /// Permit2 shows one of the wallet's Permit2 nonces used (an x402 Permit2 payment the
    /// wallet signed through EIP-1271) without a co-sign decision.
    Permit2,
}

/// Why an outflow is unauthorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SpendReason {
    /// No approved decision names this nonce (or these calls).
    NoDecision,
    /// An approved nonce paid something else than what was approved: other calls under an
    /// approved `execute` nonce, or an authorization's transfer to another recipient or of
    /// another amount (attacker B reusing an approved nonce).
    OtherPayment,
    /// The approved payment was made when its approval was not valid (before it or after it
    /// expired).
    OutsideValidity,
}

impl SpendReason {
    /// The reason in words, for the console, webhooks and logs.
    pub fn text(self) -> &'static str {
        match self {
            Self::NoDecision => "no approved co-sign decision",
            Self::OtherPayment => "an approved nonce paid something else than what was approved",
            Self::OutsideValidity => "used when its approval was not valid",
        }
    }
}

/// An outflow no approved decision accounts for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnauthorizedSpendRow {
    /// Its id (to acknowledge it).
    pub id: i64,
    /// The wallet it left.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::HexAddress))]
    pub wallet: Address,
    /// How it left.
    pub kind: OutflowKind,
    /// Why no approved decision accounts for it.
    pub reason: SpendReason,
    /// The reason in words.
    pub reason_text: String,
    /// The block it was mined in.
    pub block_number: u64,
    /// The transaction; absent for `permit2` (Permit2 emits no event: `block_number` is the
    /// block the indexer first saw the nonce used at).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chaperone_core::openapi::Hex32>))]
    pub tx_hash: Option<B256>,
    /// The wallet (`execute`), the token whose authorization was used (`eip3009`) or Permit2
    /// (`permit2`).
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::HexAddress))]
    pub contract: Address,
    /// The wallet nonce (decimal) or the authorization or Permit2 nonce (hex) that was used.
    pub nonce: String,
    /// When the indexer found it: the timestamp of the newest block it had indexed (Unix
    /// seconds).
    pub detected_at: u64,
    /// The same time in ISO 8601 UTC.
    pub detected_at_iso: String,
    /// The name of the token that acknowledged it, if one did.
    pub acknowledged_by: Option<String>,
    /// When (Unix seconds).
    pub acknowledged_at: Option<u64>,
}

/// The unauthorized spends, newest first (at most 1,000).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnauthorizedSpends {
    /// How many nobody has acknowledged yet.
    pub open: u64,
    /// The spends.
    pub items: Vec<UnauthorizedSpendRow>,
}

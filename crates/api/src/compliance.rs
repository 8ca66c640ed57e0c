//! The auditor's lists (`GET /v1/agents`, `/v1/agents/{address}/records`, `/v1/decisions`,
//! `/v1/spend`): pages of rows, in JSON ([`Page`]) or exported one row per line
//! ([`Format`]), the next page's cursor then in `X-Next-Cursor`.

use chaperone_core::{
    Address, B256,
    policy::{Amount, Outcome, Reason, Token},
};
use serde::{Deserialize, Serialize};

use crate::ledger::{DecisionPayment, PaymentKind};

/// The default page size of a list.
pub const DEFAULT_LIMIT: u32 = 100;
/// The largest page size of a list.
pub const MAX_LIMIT: u32 = 1000;
/// The response header that carries the next page's cursor in the export formats.
pub const NEXT_CURSOR_HEADER: &str = "x-next-cursor";

/// How a list is written (`format=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// A [`Page`] (the default).
    #[default]
    Json,
    /// One JSON row per line (`application/x-ndjson`).
    #[serde(rename = "jsonl")]
    JsonLines,
    /// RFC 4180 CSV with a header line (`text/csv`).
    Csv,
}

impl Format {
    /// Its name in `format=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::JsonLines => "jsonl",
            Self::Csv => "csv",
        }
    }

    /// The response's content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::JsonLines => "application/x-ndjson",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "json" => Ok(Self::Json),
            "jsonl" => Ok(Self::JsonLines),
            "csv" => Ok(Self::Csv),
            other => Err(format!("`format={other}`: use json, jsonl or csv")),
        }
    }
}

/// A page of a list (`format=json`); the export formats carry the same rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    /// The rows.
    pub items: Vec<T>,
    /// The `cursor` of the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

/// An agent with records in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentRow {
    /// The agent's key.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::HexAddress))]
    pub address: Address,
    /// How many records it logged.
    pub record_count: u64,
    /// The sequence its next record must have.
    pub next_sequence: u64,
    /// Its latest record.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub last_leaf_hash: B256,
    /// When its first record arrived (ms since the Unix epoch).
    pub first_seen_ms: u64,
    /// When its latest record arrived.
    pub last_seen_ms: u64,
}

/// A record of the log, its commitments only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordRow {
    /// Its index in the log.
    pub index: u64,
    /// Its leaf hash.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub leaf_hash: B256,
    /// The agent that signed it.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::HexAddress))]
    pub agent: Address,
    /// Its place in the agent's chain.
    pub sequence: u64,
    /// When the agent made the call (ms since the Unix epoch).
    pub timestamp_ms: u64,
    /// The model's id, as the agent named it.
    pub model: String,
    /// The commitment to the input.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub input_commitment: B256,
    /// The commitment to the output.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub output_commitment: B256,
    /// The commitment to the metadata, if any.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chaperone_core::openapi::Hex32>))]
    pub metadata_commitment: Option<B256>,
    /// The agent's previous record.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub previous: B256,
}

/// A co-sign decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DecisionView {
    /// The request's id.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub request_id: B256,
    /// The wallet.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::HexAddress))]
    pub wallet: Address,
    /// Unix seconds.
    pub created_at: u64,
    /// The same time in ISO 8601 UTC.
    pub created_at_iso: String,
    /// Approved, pending approval or denied.
    pub outcome: Outcome,
    /// Why, with the exact values.
    pub reasons: Vec<Reason>,
    /// Each reason in words, amounts in token units ("0.5 ETH is over the per-payment cap of
    /// 0.1 ETH"); `reasons` keeps the exact base-unit values.
    pub reasons_text: Vec<String>,
    /// The policy version that decided.
    pub policy_version: u32,
    /// Its hash.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub policy_hash: B256,
    /// Whether the co-signer signed.
    pub signed: bool,
    /// The decision's own record in the audit log, once logged.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chaperone_core::openapi::Hex32>))]
    pub logged_leaf: Option<B256>,
    /// The agent's audit record of the model call this payment was made within (x402), once
    /// the agent bound it: its disclosure shows what the agent read, answered and paid.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chaperone_core::openapi::Hex32>))]
    pub call_leaf_hash: Option<B256>,
    /// The wallet's agent, who asked.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chaperone_core::openapi::HexAddress>))]
    #[serde(default)]
    pub agent: Option<Address>,
    /// How the payment asked for is made (absent if the request could not be read back).
    #[serde(default)]
    pub method: Option<PaymentKind>,
    /// What it moves, one entry per token, with its ledger status once co-signed.
    #[serde(default)]
    pub payments: Vec<DecisionPayment>,
    /// The same in words ("1.5 USDC (0x…) to 0x…, settled in 0x…").
    #[serde(default)]
    pub payments_text: Vec<String>,
    /// Who gave the human verdict, when one was asked.
    #[serde(default)]
    pub approvers: Vec<String>,
    /// Their comment.
    #[serde(default)]
    pub approval_comment: Option<String>,
}

/// Spend of one token by one wallet within the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SpendRow {
    /// The wallet.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::HexAddress))]
    pub wallet: Address,
    /// The token.
    pub token: Token,
    /// The window, in seconds back from now.
    pub window_seconds: u64,
    /// Approved and not yet settled or released.
    pub reserved: Amount,
    /// Seen paid on chain.
    pub settled: Amount,
    /// Approved, then expired unpaid.
    pub released: Amount,
    /// Reserved plus settled: what counts against the limits.
    pub committed: Amount,
    /// How many approvals.
    pub approvals: u64,
}

//! The payment ledger (`GET /v1/payments`) and the payment columns `/v1/decisions` shares with
//! it: what left (or may leave) which wallet, to whom, decided by whom, and how it ended on
//! chain. Amounts come twice: in token units for people and in base units, exact.

use chaperone_core::{
    Address, B256,
    policy::{Amount, Reason, Token},
};
use serde::{Deserialize, Serialize};

/// How a payment is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PaymentKind {
    /// The wallet's own `execute` of a batch of calls.
    Execute,
    /// An EIP-3009 authorization (x402 "exact").
    Eip3009,
    /// A Permit2 witness transfer through the x402 proxy.
    Permit2,
}

impl PaymentKind {
    /// Its name on the wire and in `method=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Execute => "execute",
            Self::Eip3009 => "eip3009",
            Self::Permit2 => "permit2",
        }
    }
}

/// Where a payment stands: `reserved` when co-signed, then `settled`, `released`, `expired`
/// or `misused`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Co-signed, not yet seen on chain; it still counts against the limits.
    Reserved,
    /// Seen used on chain (a permit, which no event reports, once past its validity).
    Settled,
    /// Released unused for another cause than expiry (its execution reverted).
    Released,
    /// Its co-signature expired unused.
    Expired,
    /// An x402 Permit2 payment whose nonce the chain shows used by another payment (no
    /// transfer of what was approved pairs with it): it never happened, an unauthorized spend
    /// is raised, and it still counts against the limits (the nonce is gone).
    Misused,
}

impl PaymentStatus {
    /// Every status, in the order a payment goes through them.
    pub const ALL: [Self; 5] = [
        Self::Reserved,
        Self::Settled,
        Self::Released,
        Self::Expired,
        Self::Misused,
    ];

    /// Its name on the wire and in `status=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reserved => "reserved",
            Self::Settled => "settled",
            Self::Released => "released",
            Self::Expired => "expired",
            Self::Misused => "misused",
        }
    }
}

impl std::str::FromStr for PaymentStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                format!("`status={s}`: use reserved, settled, released, expired or misused")
            })
    }
}

/// One payment: one token leaving one wallet under one decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PaymentRow {
    /// The decision that co-signed it (its request id).
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub request_id: B256,
    /// When it was co-signed, Unix seconds.
    pub created_at: u64,
    /// The same time in ISO 8601 UTC.
    pub created_at_iso: String,
    /// The wallet that pays.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::HexAddress))]
    pub wallet: Address,
    /// The wallet's agent, who asked for it.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::HexAddress))]
    pub agent: Address,
    /// How it pays.
    pub method: PaymentKind,
    /// The token (`native` or its address).
    pub token: Token,
    /// Its symbol as the token's contract reports it (untrusted: shown beside the address).
    pub token_symbol: String,
    /// Its decimals.
    pub token_decimals: u8,
    /// The amount in token units ("1.5"), for people.
    pub amount: String,
    /// The amount in base units, exact.
    pub amount_base_units: Amount,
    /// Who receives it (for an approval or a permit: the spender).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<chaperone_core::openapi::HexAddress>))]
    pub recipients: Vec<Address>,
    /// The policy version that decided.
    pub policy_version: u32,
    /// The people (token names) who approved it, when a human was asked.
    pub approvers: Vec<String>,
    /// Their comment.
    pub approval_comment: Option<String>,
    /// The agent's record of the model call it was made in, once bound.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chaperone_core::openapi::Hex32>))]
    pub call_leaf_hash: Option<B256>,
    /// Where it stands.
    pub status: PaymentStatus,
    /// The last second its co-signature can be used, Unix seconds.
    pub valid_until: u64,
    /// The transaction that settled it (none for Permit2, which emits no event of its own).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chaperone_core::openapi::Hex32>))]
    pub settlement_tx: Option<B256>,
    /// The block that settled it (for Permit2: the block whose nonce bitmap first showed it
    /// used).
    pub settlement_block: Option<u64>,
    /// That block's time, Unix seconds.
    pub settled_at: Option<u64>,
    /// The same time in ISO 8601 UTC.
    pub settled_at_iso: Option<String>,
}

/// What one token of a decision moves, with the ledger's view of it once co-signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DecisionPayment {
    /// The token.
    pub token: Token,
    /// Its symbol (untrusted).
    pub token_symbol: String,
    /// Its decimals.
    pub token_decimals: u8,
    /// The amount in token units.
    pub amount: String,
    /// The amount in base units, exact.
    pub amount_base_units: Amount,
    /// Who receives it.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<chaperone_core::openapi::HexAddress>))]
    pub recipients: Vec<Address>,
    /// Where it stands, once co-signed (absent for a denied or pending request).
    pub status: Option<PaymentStatus>,
    /// The transaction that settled it.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chaperone_core::openapi::Hex32>))]
    pub settlement_tx: Option<B256>,
    /// That block's time, Unix seconds.
    pub settled_at: Option<u64>,
}

impl DecisionPayment {
    /// The payment in words: "1.5 USDC (0x…) to 0x…; settled in 0x… at …" (what
    /// `payments_text` says; a verifier recomputes it).
    pub fn words(&self) -> String {
        let token = match self.token {
            Token::Native => self.token_symbol.clone(),
            Token::Erc20(address) => format!("{} ({address})", self.token_symbol),
        };
        let to: Vec<String> = self.recipients.iter().map(ToString::to_string).collect();
        let mut text = format!("{} {token} to {}", self.amount, to.join(", "));
        if let Some(status) = self.status {
            text += &format!("; {}", status.as_str());
            if let Some(tx) = self.settlement_tx {
                text += &format!(" in {tx}");
            }
            if let Some(at) = self.settled_at {
                text += &format!(" at {}", chaperone_core::readable::iso8601(at));
            }
        }
        text
    }
}

/// A policy reason's code: what `reason=` of `/v1/decisions` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)] // each is the `code` of the `Reason` of the same name
pub enum ReasonCode {
    ChainNotAllowed,
    RateLimited,
    UndecodableCall,
    ArgumentRule,
    RecipientDenied,
    RecipientNotAllowed,
    TokenNotAllowed,
    PerTransactionCap,
    WindowCap,
    Expired,
    ValidTooLong,
    NotYetValid,
    TypedDataNotAllowed,
    MalformedTypedData,
    NeedsHumanApproval,
    ShadowMode,
    ApprovalDenied,
    ApprovalExpired,
}

impl ReasonCode {
    /// Every code, in the engine's order.
    pub const ALL: [Self; 18] = [
        Self::ChainNotAllowed,
        Self::RateLimited,
        Self::UndecodableCall,
        Self::ArgumentRule,
        Self::RecipientDenied,
        Self::RecipientNotAllowed,
        Self::TokenNotAllowed,
        Self::PerTransactionCap,
        Self::WindowCap,
        Self::Expired,
        Self::ValidTooLong,
        Self::NotYetValid,
        Self::TypedDataNotAllowed,
        Self::MalformedTypedData,
        Self::NeedsHumanApproval,
        Self::ShadowMode,
        Self::ApprovalDenied,
        Self::ApprovalExpired,
    ];

    /// A reason's code (exhaustive: a new reason does not compile until it has one).
    pub fn of(reason: &Reason) -> Self {
        match reason {
            Reason::ChainNotAllowed { .. } => Self::ChainNotAllowed,
            Reason::RateLimited { .. } => Self::RateLimited,
            Reason::UndecodableCall { .. } => Self::UndecodableCall,
            Reason::ArgumentRule { .. } => Self::ArgumentRule,
            Reason::RecipientDenied { .. } => Self::RecipientDenied,
            Reason::RecipientNotAllowed { .. } => Self::RecipientNotAllowed,
            Reason::TokenNotAllowed { .. } => Self::TokenNotAllowed,
            Reason::PerTransactionCap { .. } => Self::PerTransactionCap,
            Reason::WindowCap { .. } => Self::WindowCap,
            Reason::Expired { .. } => Self::Expired,
            Reason::ValidTooLong { .. } => Self::ValidTooLong,
            Reason::NotYetValid { .. } => Self::NotYetValid,
            Reason::TypedDataNotAllowed { .. } => Self::TypedDataNotAllowed,
            Reason::MalformedTypedData { .. } => Self::MalformedTypedData,
            Reason::NeedsHumanApproval { .. } => Self::NeedsHumanApproval,
            Reason::ShadowMode => Self::ShadowMode,
            Reason::ApprovalDenied => Self::ApprovalDenied,
            Reason::ApprovalExpired { .. } => Self::ApprovalExpired,
        }
    }

    /// Its name, as `code` in a reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ChainNotAllowed => "chain_not_allowed",
            Self::RateLimited => "rate_limited",
            Self::UndecodableCall => "undecodable_call",
            Self::ArgumentRule => "argument_rule",
            Self::RecipientDenied => "recipient_denied",
            Self::RecipientNotAllowed => "recipient_not_allowed",
            Self::TokenNotAllowed => "token_not_allowed",
            Self::PerTransactionCap => "per_transaction_cap",
            Self::WindowCap => "window_cap",
            Self::Expired => "expired",
            Self::ValidTooLong => "valid_too_long",
            Self::NotYetValid => "not_yet_valid",
            Self::TypedDataNotAllowed => "typed_data_not_allowed",
            Self::MalformedTypedData => "malformed_typed_data",
            Self::NeedsHumanApproval => "needs_human_approval",
            Self::ShadowMode => "shadow_mode",
            Self::ApprovalDenied => "approval_denied",
            Self::ApprovalExpired => "approval_expired",
        }
    }
}

impl std::str::FromStr for ReasonCode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                let all: Vec<&str> = Self::ALL.iter().map(|c| c.as_str()).collect();
                format!(
                    "`reason={s}` is not a reason code (use one of {})",
                    all.join(", ")
                )
            })
    }
}

//! The error body every endpoint answers with when it refuses: `{"error": {"code", "message"}}`.
//! Each [`ErrorCode`] has exactly one HTTP status ([`ErrorCode::status`]); the server answers
//! with it and its OpenAPI document lists it.

use serde::{Deserialize, Serialize};

/// A stable, machine-readable reason for a refusal. Clients match on it; the message is for
/// people and may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    // 400: the request is malformed; sending it again changes nothing.
    /// A field is missing, unknown, of the wrong type or out of its range.
    InvalidRequest,
    /// The body is not JSON.
    InvalidJson,
    /// The body could not be read.
    InvalidBody,
    /// A query parameter is unknown, repeated or does not parse.
    InvalidQuery,
    /// A batch of records is malformed.
    InvalidBatch,
    /// A record is malformed.
    InvalidRecord,
    /// A token's name is empty, too long or not printable.
    InvalidName,
    /// A token's role is not admin, approver or auditor.
    InvalidRole,
    /// A size or index is outside the log.
    OutOfRange,
    /// The request's validity has passed.
    Expired,
    /// The request is for another chain than the service's or the wallet's.
    WrongChainId,
    /// A signature is not 65 bytes r ‖ s ‖ v with a low s.
    MalformedSignature,
    // 401
    /// No bearer token, or one the service does not know.
    Unauthorized,
    /// A signature is not by the key it must be by, or not over this request.
    BadSignature,
    // 403
    /// The token's role may not do this.
    Forbidden,
    /// A console form without its session's CSRF token.
    Csrf,
    /// The agent is not registered to append to the log.
    AgentNotRegistered,
    /// The record named is another agent's.
    NotYourCall,
    // 404
    /// No such endpoint or object.
    NotFound,
    /// The wallet is not registered.
    UnknownWallet,
    /// No approved decision has this id.
    UnknownDecision,
    /// No record has this leaf hash.
    UnknownRecord,
    /// No pending, unexpired approval has this id.
    NoPendingApproval,
    // 409: the request conflicts with what is stored.
    /// The decision is already bound to another call.
    AlreadyBound,
    /// A record does not follow the agent's previous one.
    BrokenChain,
    /// A live token already has this name.
    NameTaken,
    /// The approval names other arguments than the held call was held with.
    ArgumentsMismatch,
    /// The wallet has no policy.
    NoPolicy,
    /// The record is logged but no checkpoint covers it yet.
    NotCheckpointed,
    /// A record's sequence skips ahead of the agent's next one.
    SequenceGap,
    /// The policy's version is not above the stored one.
    StalePolicyVersion,
    /// The wallet is registered already.
    WalletExists,
    /// The wallet has no unused authorization slot this period (reported by the SDK, which
    /// picks the slot before it asks the service).
    NoAuthorizationSlot,
    // 413
    /// The body is larger than the endpoint takes.
    BodyTooLarge,
    // 415
    /// The body is not `Content-Type: application/json`.
    UnsupportedMediaType,
    // 422: well-formed, but not something the service can act on.
    /// A disclosed checkpoint is not the one anchored.
    AnchorMismatch,
    /// The record was received outside the decision's validity.
    CallOutsideValidity,
    /// A disclosure does not verify.
    InvalidDisclosure,
    /// The policy document is not a valid policy.
    InvalidPolicy,
    /// A proof does not verify.
    InvalidProof,
    /// The checkpoint is not anchored yet.
    NotAnchored,
    /// No record of the call is in the log yet.
    UnknownCall,
    /// The wallet is frozen: it honours no authorization.
    WalletFrozen,
    /// The wallet has no EIP-1271 budget for the token or method.
    NoAuthorizationBudget,
    /// The authorization moves more than the wallet's `maxValue`.
    OverMaxValue,
    /// The authorization's nonce names another backstop period.
    NonceOfAnotherPeriod,
    /// The authorization's nonce is outside its method's slots.
    NonceOutsideSlots,
    // 429
    /// The service is saturated; send the same request again after `Retry-After`.
    Busy,
    /// The agent has as many tool calls waiting for a human as it may.
    TooManyPendingApprovals,
    // 500
    /// An internal error (logged by the service, not described).
    Internal,
    // 502
    /// The chain did not answer.
    ChainUnreachable,
    // 503
    /// The request took too long and was abandoned; send it again.
    Timeout,
    /// The replica's clock is out of step with the database.
    ClockSkew,
    /// The service has no chain to check against.
    NoChain,
    /// The chain could not be read just now.
    ChainUnavailable,
    /// A code this client does not know (a newer service); the status says what kind.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The HTTP status the service answers this code with. This match is the only place
    /// codes meet statuses.
    pub const fn status(self) -> u16 {
        use ErrorCode as C;
        match self {
            C::InvalidRequest
            | C::InvalidJson
            | C::InvalidBody
            | C::InvalidQuery
            | C::InvalidBatch
            | C::InvalidRecord
            | C::InvalidName
            | C::InvalidRole
            | C::OutOfRange
            | C::Expired
            | C::WrongChainId
            | C::MalformedSignature => 400,
            C::Unauthorized | C::BadSignature => 401,
            C::Forbidden | C::Csrf | C::AgentNotRegistered | C::NotYourCall => 403,
            C::NotFound
            | C::UnknownWallet
            | C::UnknownDecision
            | C::UnknownRecord
            | C::NoPendingApproval => 404,
            C::AlreadyBound
            | C::BrokenChain
            | C::NameTaken
            | C::ArgumentsMismatch
            | C::NoPolicy
            | C::NotCheckpointed
            | C::SequenceGap
            | C::StalePolicyVersion
            | C::WalletExists
            | C::NoAuthorizationSlot => 409,
            C::BodyTooLarge => 413,
            C::UnsupportedMediaType => 415,
            C::AnchorMismatch
            | C::CallOutsideValidity
            | C::InvalidDisclosure
            | C::InvalidPolicy
            | C::InvalidProof
            | C::NotAnchored
            | C::UnknownCall
            | C::WalletFrozen
            | C::NoAuthorizationBudget
            | C::OverMaxValue
            | C::NonceOfAnotherPeriod
            | C::NonceOutsideSlots => 422,
            C::Busy | C::TooManyPendingApprovals => 429,
            C::Internal | C::Unknown => 500,
            C::ChainUnreachable => 502,
            C::Timeout | C::ClockSkew | C::NoChain | C::ChainUnavailable => 503,
        }
    }
}

macro_rules! all_codes {
    ($($code:ident => $name:literal),* $(,)?) => {
        impl ErrorCode {
            /// Every code, in the order they are declared.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$code),*];

            /// The code as it is written on the wire (`"unknown_wallet"`); a test checks it
            /// is serde's name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$code => $name,)*
                }
            }
        }
    };
}

all_codes! {
    InvalidRequest => "invalid_request", InvalidJson => "invalid_json",
    InvalidBody => "invalid_body", InvalidQuery => "invalid_query",
    InvalidBatch => "invalid_batch", InvalidRecord => "invalid_record",
    InvalidName => "invalid_name", InvalidRole => "invalid_role", OutOfRange => "out_of_range",
    Expired => "expired", WrongChainId => "wrong_chain_id",
    MalformedSignature => "malformed_signature", Unauthorized => "unauthorized",
    BadSignature => "bad_signature", Forbidden => "forbidden", Csrf => "csrf",
    AgentNotRegistered => "agent_not_registered", NotYourCall => "not_your_call",
    NotFound => "not_found", UnknownWallet => "unknown_wallet",
    UnknownDecision => "unknown_decision", UnknownRecord => "unknown_record",
    NoPendingApproval => "no_pending_approval", AlreadyBound => "already_bound",
    BrokenChain => "broken_chain", NameTaken => "name_taken",
    ArgumentsMismatch => "arguments_mismatch", NoPolicy => "no_policy",
    NotCheckpointed => "not_checkpointed", SequenceGap => "sequence_gap",
    StalePolicyVersion => "stale_policy_version", WalletExists => "wallet_exists",
    NoAuthorizationSlot => "no_authorization_slot", BodyTooLarge => "body_too_large",
    UnsupportedMediaType => "unsupported_media_type", AnchorMismatch => "anchor_mismatch",
    CallOutsideValidity => "call_outside_validity", InvalidDisclosure => "invalid_disclosure",
    InvalidPolicy => "invalid_policy", InvalidProof => "invalid_proof",
    NotAnchored => "not_anchored", UnknownCall => "unknown_call",
    WalletFrozen => "wallet_frozen", NoAuthorizationBudget => "no_authorization_budget",
    OverMaxValue => "over_max_value", NonceOfAnotherPeriod => "nonce_of_another_period",
    NonceOutsideSlots => "nonce_outside_slots", Busy => "busy",
    TooManyPendingApprovals => "too_many_pending_approvals", Internal => "internal",
    ChainUnreachable => "chain_unreachable", Timeout => "timeout", ClockSkew => "clock_skew",
    NoChain => "no_chain", ChainUnavailable => "chain_unavailable", Unknown => "unknown",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every error's body: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// A stable code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[error("{code}: {message}")]
pub struct ErrorDetail {
    /// The stable code (its status is [`ErrorCode::status`]).
    pub code: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
}

impl ErrorDetail {
    /// A refusal with `code`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_under_its_name() {
        for code in ErrorCode::ALL {
            let name = code.as_str();
            assert_eq!(serde_json::to_value(code).ok(), Some(name.into()));
            let back: ErrorCode = serde_json::from_value(name.into()).expect("parses");
            assert_eq!(back, *code);
        }
    }

    #[test]
    fn a_code_this_client_does_not_know_is_unknown() {
        let code: ErrorCode = serde_json::from_value("from_the_future".into()).expect("parses");
        assert_eq!(code, ErrorCode::Unknown);
    }
}

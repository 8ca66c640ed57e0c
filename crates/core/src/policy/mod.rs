//! The co-signing policy: a declarative, versioned document (TOML or JSON) and the pure engine
//! that decides a co-sign request against it.
//!
//! The engine counts effects, not calls: native value, ERC-20 `transfer`, `transferFrom`,
//! `approve` and `increaseAllowance` (an approval is spend), EIP-2612 `permit` and EIP-3009
//! authorizations. A call it cannot decode, to a contract the policy does not allow, is denied.

mod effects;
mod engine;
mod model;
mod quorum;

pub use effects::{
    Effect, call_effects, is_spend_selector, typed_data_effects, typed_data_validity,
};
pub use engine::{
    Decision, Outcome, PastSpend, PolicyRequest, Reason, RequestKind, SpendHistory, WindowTotal,
    evaluate,
};
pub use model::{
    Amount, ApprovalRule, ArgRule, ContractRule, DEFAULT_MAX_VALID_FOR, FunctionRule,
    MAX_APPROVERS, Mode, Policy, PolicyError, Quorum, RateLimit, RecipientRules, Seconds,
    Threshold, Token, TokenLimit, TypedDataRule, WindowLimit,
};
pub use quorum::{Tally, Vote, tally};

//! The pure decision: (policy, request, spend history) → decision with every reason.
//!
//! The engine never looks at a clock or a database: the caller passes `now` and the history of
//! reserved and settled spends. The store reserves an approved request's spends in the same
//! transaction that read the history, which is what keeps concurrent requests under the caps.

use alloy_primitives::U256;
use serde::{Deserialize, Serialize};

use super::{
    effects::{Effect, call_effects, is_spend_selector, typed_data_effects, typed_data_validity},
    model::{FunctionRule, Mode, Policy, Token},
};
use crate::{Address, B256, Execute};

/// What the agent asks the policy service to co-sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RequestKind {
    /// An `AgentWallet.execute` of these calls.
    Execute(Execute),
    /// An EIP-712 message to approve through EIP-1271.
    TypedData {
        /// Domain name, if the domain has one.
        domain_name: Option<String>,
        /// Domain version, if the domain has one.
        domain_version: Option<String>,
        /// The domain's verifying contract (for EIP-3009 and permits: the token).
        verifying_contract: Address,
        /// The primary type.
        primary_type: String,
        /// The message fields.
        message: serde_json::Value,
    },
}

/// What the policy engine decides: a request (an `Execute` or typed data) with the context the
/// engine needs. (The HTTP body the agent sends is `chaperone_api::CosignRequest`.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRequest {
    /// The chain the request targets.
    pub chain_id: u64,
    /// The wallet.
    pub wallet: Address,
    /// Current Unix time, in seconds, read while the wallet's lock is held (a time read before
    /// the lock could miss a reservation made in between).
    pub now: u64,
    /// What is to be co-signed.
    pub kind: RequestKind,
    /// Whether a human approver already approved this request.
    pub human_approved: bool,
}

/// One past spend (reserved or settled) of the wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PastSpend {
    /// The token.
    pub token: Token,
    /// Amount in base units.
    pub amount: U256,
    /// When it was reserved (Unix seconds).
    pub at: u64,
    /// The last second its co-signature could be used (`validUntil`): the spend may land on
    /// chain at any time in `[at, until]`, so it counts in every window that overlaps that span.
    pub until: u64,
}

/// Spend of one token within one sliding window ending now, as the store keeps it: a running
/// total updated as reservations are made, released and age out, so that a decision costs the
/// same with a million past spends as with none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowTotal {
    /// The token.
    pub token: Token,
    /// The window, in seconds.
    pub window: u64,
    /// What counts within it: the same as [`SpendHistory::spent_within`] over the spends.
    pub spent: U256,
}

/// The wallet's recent activity: spends that count against windows and request times that count
/// against the rate limit. Released reservations are not in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpendHistory {
    /// Reserved and settled spends, one by one.
    pub spends: Vec<PastSpend>,
    /// Running totals of spends not listed in `spends` (the store passes these instead).
    pub totals: Vec<WindowTotal>,
    /// Times of earlier requests (Unix seconds).
    pub requests: Vec<u64>,
}

impl PastSpend {
    /// Whether this spend counts within the sliding window `(now - window, now]`: its usable
    /// span `[at, until]` overlaps it. Counting by the reservation time alone let an agent
    /// collect one full-cap co-signature per window, keep them, and spend them all at once. A
    /// spend reserved "after" `now` still counts: another replica's clock may run slightly
    /// ahead (the store bounds that skew).
    pub fn counts_within(&self, now: u64, window: u64) -> bool {
        self.until.max(self.at) > now.saturating_sub(window)
    }
}

impl SpendHistory {
    /// Total of `token` that may have left within the sliding window `(now - window, now]`:
    /// the running total for that window, plus every listed spend that counts within it.
    pub fn spent_within(&self, token: Token, now: u64, window: u64) -> U256 {
        let total = self
            .totals
            .iter()
            .find(|t| t.token == token && t.window == window)
            .map_or(U256::ZERO, |t| t.spent);
        self.spends
            .iter()
            .filter(|s| s.token == token && s.counts_within(now, window))
            .fold(total, |acc, s| acc.saturating_add(s.amount))
    }

    /// Requests within `(now - window, now]`.
    pub fn requests_within(&self, now: u64, window: u64) -> usize {
        let since = now.saturating_sub(window);
        self.requests
            .iter()
            .filter(|&&t| t > since && t <= now)
            .count()
    }
}

/// The verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Outcome {
    /// Within policy: co-sign (unless in shadow mode).
    Approved,
    /// Within caps but above an approval threshold: wait for a human.
    PendingApproval,
    /// Outside policy.
    Denied,
}

/// Why the engine decided as it did. Denials list every violated rule, not just the first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Reason {
    /// The chain is not in the policy's `chains`.
    ChainNotAllowed {
        /// The requested chain.
        chain_id: u64,
    },
    /// Too many requests in the rate-limit window.
    RateLimited {
        /// Allowed requests per window.
        max_requests: u32,
        /// The window, in seconds.
        window: u64,
    },
    /// A call the engine cannot decode, to a contract or function the policy does not allow.
    UndecodableCall {
        /// The contract.
        #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexAddress))]
        to: Address,
        /// The selector, hex.
        selector: String,
    },
    /// An allowed function's argument breaks its rule.
    ArgumentRule {
        /// The contract.
        #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexAddress))]
        to: Address,
        /// The argument position.
        index: usize,
    },
    /// The recipient is on the deny list.
    RecipientDenied {
        /// The recipient.
        #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexAddress))]
        recipient: Address,
    },
    /// There is an allow list and the recipient is not on it.
    RecipientNotAllowed {
        /// The recipient.
        #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexAddress))]
        recipient: Address,
    },
    /// The policy has no limits for this token, so it cannot be spent.
    TokenNotAllowed {
        /// The token.
        token: Token,
    },
    /// The request moves more than one request may.
    PerTransactionCap {
        /// The token.
        token: Token,
        /// What the request moves.
        #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexU256))]
        amount: U256,
        /// The cap.
        #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexU256))]
        cap: U256,
    },
    /// The request would take a sliding window over its cap.
    WindowCap {
        /// The token.
        token: Token,
        /// The window, in seconds.
        window: u64,
        /// Already spent within the window.
        #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexU256))]
        spent: U256,
        /// What the request moves.
        #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexU256))]
        amount: U256,
        /// The cap.
        #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexU256))]
        max: U256,
    },
    /// The co-signature would already be void.
    Expired {
        /// Its last usable second.
        valid_until: u64,
        /// The decision's time.
        now: u64,
    },
    /// The co-signature would stay usable longer than the policy's `max_valid_for`.
    ValidTooLong {
        /// Its last usable second.
        valid_until: u64,
        /// The latest the policy allows.
        max_valid_until: u64,
    },
    /// The authorization becomes usable only later (it could be kept for a later window).
    NotYetValid {
        /// When it becomes usable.
        valid_after: u64,
        /// The decision's time.
        now: u64,
    },
    /// No typed-data rule allows this message.
    TypedDataNotAllowed {
        /// The primary type.
        primary_type: String,
    },
    /// The typed-data message lacks or garbles a field the engine needs.
    MalformedTypedData {
        /// What is wrong.
        detail: String,
    },
    /// Above an approval threshold: a human must approve.
    NeedsHumanApproval {
        /// The token.
        token: Token,
        /// What the request moves.
        #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexU256))]
        amount: U256,
        /// The threshold.
        #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexU256))]
        threshold: U256,
    },
    /// Shadow mode: decided and recorded, never co-signed.
    ShadowMode,
    /// A human denied the request while it waited for approval (the reasons before this one
    /// say why a human was asked). Not the engine's: the policy service's final decision.
    ApprovalDenied,
    /// No approval was used in time: the approval expired, or the request's `validUntil`
    /// passed, while it waited (or after humans approved it, before its agent asked again).
    /// Not the engine's: the policy service's final decision.
    ApprovalExpired {
        /// When it could last have been co-signed: the earlier of the approval's expiry and
        /// the request's `validUntil` (Unix seconds).
        expired_at: u64,
    },
}

/// The engine's decision, recorded with the policy's hash whatever the outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The verdict.
    pub outcome: Outcome,
    /// Every reason behind it (empty for a plain approval).
    pub reasons: Vec<Reason>,
    /// What the request does.
    pub effects: Vec<Effect>,
    /// Total spend per token: what an approval reserves.
    pub spends: Vec<(Token, U256)>,
    /// Hash of the policy that decided.
    pub policy_hash: B256,
    /// Version of the policy that decided.
    pub policy_version: u32,
    /// Whether the service should co-sign: approved and not in shadow mode.
    pub sign: bool,
}

/// Decides `request` under `policy`, given the wallet's `history`.
pub fn evaluate(policy: &Policy, request: &PolicyRequest, history: &SpendHistory) -> Decision {
    let mut reasons = Vec::new();
    let now = request.now;

    if !policy.chains.contains(&request.chain_id) {
        reasons.push(Reason::ChainNotAllowed {
            chain_id: request.chain_id,
        });
    }
    if let Some(rate) = &policy.rate_limit
        && history.requests_within(now, rate.window.0) >= rate.max_requests as usize
    {
        reasons.push(Reason::RateLimited {
            max_requests: rate.max_requests,
            window: rate.window.0,
        });
    }

    let validity = match &request.kind {
        RequestKind::Execute(execute) => Some((0, execute.validUntil)),
        RequestKind::TypedData {
            primary_type,
            message,
            ..
        } => typed_data_validity(primary_type, message).unwrap_or_else(|detail| {
            reasons.push(Reason::MalformedTypedData { detail });
            None
        }),
    };

    let effects = match &request.kind {
        RequestKind::Execute(execute) => execute.calls.iter().flat_map(call_effects).collect(),
        RequestKind::TypedData {
            domain_name,
            domain_version,
            verifying_contract,
            primary_type,
            message,
        } => {
            let allowed = policy.typed_data.iter().any(|rule| {
                rule.primary_type == *primary_type
                    && rule
                        .name
                        .as_ref()
                        .is_none_or(|n| Some(n) == domain_name.as_ref())
                    && rule
                        .version
                        .as_ref()
                        .is_none_or(|v| Some(v) == domain_version.as_ref())
                    && rule
                        .verifying_contract
                        .is_none_or(|c| c == *verifying_contract)
            });
            if !allowed {
                reasons.push(Reason::TypedDataNotAllowed {
                    primary_type: primary_type.clone(),
                });
            }
            typed_data_effects(*verifying_contract, primary_type, message).unwrap_or_else(
                |detail| {
                    reasons.push(Reason::MalformedTypedData { detail });
                    Vec::new()
                },
            )
        }
    };

    let mut spends: Vec<(Token, U256)> = Vec::new();
    for effect in &effects {
        match effect {
            Effect::Spend {
                token,
                amount,
                recipient,
            } => {
                check_recipient(policy, *recipient, &mut reasons);
                match spends.iter_mut().find(|(t, _)| t == token) {
                    Some((_, total)) => *total = total.saturating_add(*amount),
                    None => spends.push((*token, *amount)),
                }
            }
            Effect::OpaqueCall { to, selector, data } => {
                check_opaque_call(policy, *to, *selector, data, &mut reasons)
            }
        }
    }
    // A contract rule never overrides a spend: spend calls were counted above whatever the
    // rules say, and a rule naming their selector only adds its argument checks.
    if let RequestKind::Execute(execute) = &request.kind {
        for call in &execute.calls {
            if let Some(rule) = call_rule(policy, call.to, &call.data)
                && is_spend_selector(rule.selector().unwrap_or_default())
            {
                check_args(rule, call.to, &call.data, &mut reasons);
            }
        }
    }

    let mut needs_approval = Vec::new();
    for &(token, amount) in &spends {
        let Some(limit) = policy.limit(token) else {
            reasons.push(Reason::TokenNotAllowed { token });
            continue;
        };
        if let Some(cap) = limit.per_transaction
            && amount > cap.0
        {
            reasons.push(Reason::PerTransactionCap {
                token,
                amount,
                cap: cap.0,
            });
        }
        for w in &limit.windows {
            let spent = history.spent_within(token, now, w.window.0);
            // Saturating: an overflowing total is over any cap.
            if spent.saturating_add(amount) > w.max.0 {
                reasons.push(Reason::WindowCap {
                    token,
                    window: w.window.0,
                    spent,
                    amount,
                    max: w.max.0,
                });
            }
        }
        let threshold = policy
            .approval
            .iter()
            .flat_map(|a| &a.above)
            .find(|t| t.token == token);
        if let Some(t) = threshold
            && amount > t.amount.0
            && !request.human_approved
        {
            needs_approval.push(Reason::NeedsHumanApproval {
                token,
                amount,
                threshold: t.amount.0,
            });
        }
    }

    // A payment a human must approve may stay usable as long as the approval may take: it is
    // signed only once approved, and its reservation counts for its whole span regardless.
    let max_valid_for = match &policy.approval {
        Some(a) if !needs_approval.is_empty() || request.human_approved => {
            policy.max_valid_for().max(a.expires_after.0)
        }
        _ => policy.max_valid_for(),
    };
    if let Some((valid_after, valid_until)) = validity {
        check_validity(max_valid_for, now, valid_after, valid_until, &mut reasons);
    }

    let outcome = if !reasons.is_empty() {
        Outcome::Denied
    } else if !needs_approval.is_empty() {
        reasons = needs_approval;
        Outcome::PendingApproval
    } else {
        Outcome::Approved
    };
    let shadow = policy.mode == Mode::Shadow;
    if shadow {
        reasons.push(Reason::ShadowMode);
    }
    Decision {
        outcome,
        reasons,
        effects,
        spends,
        policy_hash: policy.hash(),
        policy_version: policy.version,
        sign: outcome == Outcome::Approved && !shadow,
    }
}

fn check_recipient(policy: &Policy, recipient: Address, reasons: &mut Vec<Reason>) {
    if policy.recipients.deny.contains(&recipient) {
        reasons.push(Reason::RecipientDenied { recipient });
    } else if policy
        .recipients
        .allow
        .as_ref()
        .is_some_and(|allow| !allow.contains(&recipient))
    {
        reasons.push(Reason::RecipientNotAllowed { recipient });
    }
}

/// A co-signature must be usable now, not later, and not for longer than `max_valid_for`.
fn check_validity(
    max_valid_for: u64,
    now: u64,
    valid_after: u64,
    valid_until: u64,
    reasons: &mut Vec<Reason>,
) {
    if valid_until < now {
        reasons.push(Reason::Expired { valid_until, now });
    }
    let max_valid_until = now.saturating_add(max_valid_for);
    if valid_until > max_valid_until {
        reasons.push(Reason::ValidTooLong {
            valid_until,
            max_valid_until,
        });
    }
    if valid_after > now {
        reasons.push(Reason::NotYetValid { valid_after, now });
    }
}

/// The contract rule's function entry for this call, if any.
fn call_rule<'p>(policy: &'p Policy, to: Address, data: &[u8]) -> Option<&'p FunctionRule> {
    let selector: [u8; 4] = data.get(..4)?.try_into().ok()?;
    policy
        .contracts
        .iter()
        .filter(|c| c.address == to)
        .flat_map(|c| &c.functions)
        .find(|f| f.selector() == Some(selector))
}

fn check_opaque_call(
    policy: &Policy,
    to: Address,
    selector: [u8; 4],
    data: &[u8],
    reasons: &mut Vec<Reason>,
) {
    let Some(rule) = call_rule(policy, to, data) else {
        let selector = alloy_primitives::hex::encode_prefixed(selector);
        reasons.push(Reason::UndecodableCall { to, selector });
        return;
    };
    check_args(rule, to, data, reasons);
}

/// Argument rules, on calldata of any length: a missing word breaks its rule.
fn check_args(rule: &FunctionRule, to: Address, data: &[u8], reasons: &mut Vec<Reason>) {
    for arg in &rule.args {
        let word = data.get(4 + 32 * arg.index..4 + 32 * (arg.index + 1));
        let ok = word.is_some_and(|w| {
            let value = U256::from_be_slice(w);
            let under_max = arg.max.is_none_or(|m| value <= m.0);
            let listed = arg.one_of.as_ref().is_none_or(|list| {
                w[..12].iter().all(|&b| b == 0) && list.contains(&Address::from_slice(&w[12..]))
            });
            under_max && listed
        });
        if !ok {
            reasons.push(Reason::ArgumentRule {
                to,
                index: arg.index,
            });
        }
    }
}

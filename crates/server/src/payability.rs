//! Whether the wallet could ever honour an x402 authorization, checked before it is co-signed:
//! a co-signature the wallet's EIP-1271 will refuse (a nonce outside this period's slots of
//! its method, a past period, a value above `maxValue`, no budget, a frozen wallet) would hold
//! a reservation of window spend until it expires, for nothing. Such a request is refused with
//! a precise 422 and nothing is reserved.
//!
//! The wallet's budget is read from the chain and cached per replica for ten seconds, so an
//! owner's `setAuthorizationBudget`, `setBackstop` or `freeze` is seen within that. A stale
//! entry can only cost a co-signature the wallet refuses on chain (the wallet enforces every
//! rule itself); it can never make a payment possible.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use alloy::providers::Provider;
use chaperone_api::{Authorization, ErrorCode, Method};
use chaperone_core::{Address, PERMIT2_SLOTS, U256};

use crate::{AppState, http::ApiError};

/// How long a wallet's budget is trusted before it is read again.
const FRESH_FOR: Duration = Duration::from_secs(10);
/// The most (wallet, token) budgets one replica keeps.
const MAX_ENTRIES: usize = 10_000;

/// What the wallet's EIP-1271 reads for one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OnChainBudget {
    frozen: bool,
    max_value: U256,
    slots: u16,
    permit2_slots: u16,
    period: u32,
}

/// The per-replica cache of on-chain budgets, by (wallet, token).
#[derive(Default)]
pub(crate) struct BudgetCache {
    entries: Mutex<HashMap<(Address, Address), (OnChainBudget, Instant)>>,
}

impl BudgetCache {
    fn get(&self, key: (Address, Address)) -> Option<OnChainBudget> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries
            .get(&key)
            .filter(|(_, at)| at.elapsed() < FRESH_FOR)
            .map(|(budget, _)| *budget)
    }

    fn put(&self, key: (Address, Address), budget: OnChainBudget) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Bounded: an agent naming fresh token addresses must not grow it without end.
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (_, at)| at.elapsed() < FRESH_FOR);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (budget, Instant::now()));
    }
}

fn unpayable(code: ErrorCode, message: String) -> ApiError {
    ApiError::new(code, message)
}

/// Refuses `authorization` from `wallet` if the wallet could never honour it at `now`.
/// A server without a chain, or a wallet not deployed yet (an ERC-6492 counterfactual wallet:
/// its settings are bound into its address, not readable), is not checked here.
pub(crate) async fn check(
    state: &AppState,
    wallet: Address,
    authorization: &Authorization,
    now: u64,
) -> Result<(), ApiError> {
    let Some(budget) = on_chain_budget(state, wallet, authorization.token).await? else {
        return Ok(());
    };
    rules(&budget, authorization, now)
}

/// The wallet's rules of `isValidSignature` that do not depend on signatures or hashes.
fn rules(budget: &OnChainBudget, a: &Authorization, now: u64) -> Result<(), ApiError> {
    if budget.frozen {
        return Err(unpayable(
            ErrorCode::WalletFrozen,
            "the wallet is frozen".into(),
        ));
    }
    let (first, end) = match a.method {
        Method::Eip3009 => (0, u32::from(budget.slots)),
        Method::Permit2 => (
            PERMIT2_SLOTS,
            PERMIT2_SLOTS + u32::from(budget.permit2_slots),
        ),
    };
    if budget.period == 0 || first == end {
        return Err(unpayable(
            ErrorCode::NoAuthorizationBudget,
            format!(
                "the wallet has no {:?} authorization budget for {} (the owner sets one with \
                 setAuthorizationBudget)",
                a.method, a.token
            ),
        ));
    }
    if a.value > budget.max_value {
        return Err(unpayable(
            ErrorCode::OverMaxValue,
            format!(
                "{} is above the wallet's {} per authorization of {}",
                a.value, budget.max_value, a.token
            ),
        ));
    }
    let nonce = U256::from_be_bytes(a.nonce.0);
    let period_index = nonce >> 192usize;
    let slot = nonce & (U256::MAX >> 64usize);
    let current = U256::from(now / u64::from(budget.period));
    if period_index != current {
        return Err(unpayable(
            ErrorCode::NonceOfAnotherPeriod,
            format!(
                "the nonce is of period {period_index}; the wallet honours only the current one \
                 ({current}, {} s long)",
                budget.period
            ),
        ));
    }
    if slot < U256::from(first) || slot >= U256::from(end) {
        return Err(unpayable(
            ErrorCode::NonceOutsideSlots,
            format!(
                "slot {slot} is not one of the wallet's {:?} slots {first}..{end}",
                a.method
            ),
        ));
    }
    Ok(())
}

/// The wallet's budget for `token` (cached), or `None` when it cannot be read here.
async fn on_chain_budget(
    state: &AppState,
    wallet: Address,
    token: Address,
) -> Result<Option<OnChainBudget>, ApiError> {
    let Some(provider) = state.chain() else {
        return Ok(None);
    };
    let cache = state.budgets();
    if let Some(budget) = cache.get((wallet, token)) {
        return Ok(Some(budget));
    }
    let unreadable = || {
        ApiError::new(
            ErrorCode::ChainUnavailable,
            "the chain does not answer: the wallet's authorization budget cannot be checked",
        )
        .retry_after(1)
    };
    let code = provider
        .get_code_at(wallet)
        .await
        .map_err(|_| unreadable())?;
    if code.is_empty() {
        return Ok(None);
    }
    let contract = chaperone_chain::AgentWallet::new(wallet, provider);
    let frozen = contract.frozen().call().await.map_err(|_| unreadable())?;
    let read = contract
        .authorizationBudget(token)
        .call()
        .await
        .map_err(|_| unreadable())?;
    let budget = OnChainBudget {
        frozen,
        max_value: U256::from(read.maxValue),
        slots: read.slots,
        permit2_slots: read.permit2Slots,
        period: read.period,
    };
    cache.put((wallet, token), budget);
    Ok(Some(budget))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;

    fn budget() -> OnChainBudget {
        OnChainBudget {
            frozen: false,
            max_value: U256::from(100),
            slots: 3,
            permit2_slots: 2,
            period: DAY as u32,
        }
    }

    fn authorization(method: Method, value: u64, period: u64, slot: u32) -> Authorization {
        Authorization {
            method,
            token: Address::repeat_byte(1),
            value: U256::from(value),
            to: Address::repeat_byte(2),
            nonce: chaperone_core::authorization_nonce(period, slot),
            valid_from: 0,
        }
    }

    fn code(result: Result<(), ApiError>) -> Option<String> {
        result.err().map(|e| e.code().as_str().to_owned())
    }

    #[test]
    fn only_what_the_wallet_would_honour_passes() {
        let now = 20_000 * DAY + 5;
        let b = budget();
        for slot in 0..3 {
            assert_eq!(
                code(rules(
                    &b,
                    &authorization(Method::Eip3009, 100, 20_000, slot),
                    now
                )),
                None
            );
        }
        for slot in PERMIT2_SLOTS..PERMIT2_SLOTS + 2 {
            assert_eq!(
                code(rules(
                    &b,
                    &authorization(Method::Permit2, 1, 20_000, slot),
                    now
                )),
                None
            );
        }
        let refused = [
            (
                authorization(Method::Eip3009, 100, 20_000, 3),
                "nonce_outside_slots",
            ),
            (
                authorization(Method::Eip3009, 100, 20_000, PERMIT2_SLOTS),
                "nonce_outside_slots",
            ),
            (
                authorization(Method::Permit2, 100, 20_000, 0),
                "nonce_outside_slots",
            ),
            (
                authorization(Method::Permit2, 100, 20_000, PERMIT2_SLOTS + 2),
                "nonce_outside_slots",
            ),
            (
                authorization(Method::Eip3009, 101, 20_000, 0),
                "over_max_value",
            ),
            (
                authorization(Method::Eip3009, 1, 19_999, 0),
                "nonce_of_another_period",
            ),
            (
                authorization(Method::Eip3009, 1, 20_001, 0),
                "nonce_of_another_period",
            ),
        ];
        for (a, expected) in refused {
            assert_eq!(code(rules(&b, &a, now)).as_deref(), Some(expected), "{a:?}");
        }
        let frozen = OnChainBudget { frozen: true, ..b };
        let ok = authorization(Method::Eip3009, 1, 20_000, 0);
        assert_eq!(
            code(rules(&frozen, &ok, now)).as_deref(),
            Some("wallet_frozen")
        );
        let no_permit2 = OnChainBudget {
            permit2_slots: 0,
            ..b
        };
        let permit2 = authorization(Method::Permit2, 1, 20_000, PERMIT2_SLOTS);
        assert_eq!(
            code(rules(&no_permit2, &permit2, now)).as_deref(),
            Some("no_authorization_budget")
        );
        let none = OnChainBudget { period: 0, ..b };
        assert_eq!(
            code(rules(&none, &ok, now)).as_deref(),
            Some("no_authorization_budget")
        );
    }
}

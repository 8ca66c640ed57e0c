//! Admission control for `POST /v1/cosign`. First, before any database work, at most
//! [`MAX_INFLIGHT_PER_WALLET`] requests of one wallet in flight. Then, once the agent's
//! signature is verified and before the wallet's lock is taken, the wallet policy's
//! `rate_limit`, counted in this replica's memory: counting before the signature would let
//! anyone exhaust a wallet's rate with junk naming it. A request refused here gets 429 with
//! `Retry-After` and writes nothing (before, a rate-limited request took the wallet's lock and
//! was written as a denial). The engine still checks the rate limit inside the decision, across
//! replicas; this is what keeps one wallet's flood from costing the others anything.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use chaperone_core::{Address, policy::RateLimit};

use crate::{AppState, http::ApiError};

/// The most co-sign requests of one wallet served at once by one replica. Decisions of one
/// wallet run one at a time under its lock anyway; more waiting would only hold database
/// connections other wallets need.
pub const MAX_INFLIGHT_PER_WALLET: usize = 16;

/// How long a wallet's rate limit is taken from the cache before the policy is read again (a
/// policy set through another replica takes effect here within this time).
const POLICY_CACHE: Duration = Duration::from_secs(5);

/// Per-wallet admission state of this replica.
#[derive(Default)]
pub(crate) struct Admission {
    /// Requests in flight per wallet; an entry goes when its count returns to zero.
    inflight: Mutex<HashMap<Address, usize>>,
    /// Rate-limit state of wallets that have a policy (bounded by the registered wallets).
    rates: Mutex<HashMap<Address, RateState>>,
}

struct RateState {
    limit: Option<RateLimit>,
    read_at: Instant,
    /// When admitted requests arrived (Unix seconds), oldest first.
    admitted: VecDeque<u64>,
}

/// A place among a wallet's in-flight co-sign requests, given back when dropped.
pub(crate) struct InflightSlot {
    state: AppState,
    wallet: Address,
}

impl Drop for InflightSlot {
    fn drop(&mut self) {
        let mut inflight = self
            .state
            .admission()
            .inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = inflight.get_mut(&self.wallet) {
            *n -= 1;
            if *n == 0 {
                inflight.remove(&self.wallet);
            }
        }
    }
}

impl AppState {
    /// Takes a place among `wallet`'s in-flight requests, or refuses with 429: the returned
    /// slot must be held while the request is served.
    pub(crate) fn admit_inflight(&self, wallet: Address) -> Result<InflightSlot, ApiError> {
        let mut inflight = self
            .admission()
            .inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let n = inflight.entry(wallet).or_insert(0);
        if *n >= MAX_INFLIGHT_PER_WALLET {
            return Err(ApiError::busy(format!(
                "wallet {wallet} has {MAX_INFLIGHT_PER_WALLET} co-sign requests in progress; try again shortly"
            )));
        }
        *n += 1;
        Ok(InflightSlot {
            state: self.clone(),
            wallet,
        })
    }

    /// Counts a request of `wallet` (whose agent signed it) at `now` against its policy's rate
    /// limit, or refuses it with 429 and the seconds until a place frees up.
    pub(crate) async fn admit_rate(&self, wallet: Address, now: u64) -> Result<(), ApiError> {
        let fresh = self
            .admission()
            .rates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&wallet)
            .is_some_and(|r| r.read_at.elapsed() < POLICY_CACHE);
        if !fresh {
            // One read of the policy per wallet per POLICY_CACHE, not per request. An unknown
            // wallet or one without a policy keeps no state: the handler refuses it anyway.
            let Some(policy) = self.store().policy(wallet).await? else {
                return Ok(());
            };
            let mut rates = self
                .admission()
                .rates
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let state = rates.entry(wallet).or_insert_with(|| RateState {
                limit: None,
                read_at: Instant::now(),
                admitted: VecDeque::new(),
            });
            state.limit = policy.rate_limit;
            state.read_at = Instant::now();
        }
        let mut rates = self
            .admission()
            .rates
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(state) = rates.get_mut(&wallet) else {
            return Ok(());
        };
        let Some(limit) = state.limit.clone() else {
            state.admitted.clear();
            return Ok(());
        };
        let window = limit.window.0;
        while state
            .admitted
            .front()
            .is_some_and(|&t| t.saturating_add(window) <= now)
        {
            state.admitted.pop_front();
        }
        if state.admitted.len() >= limit.max_requests as usize {
            let oldest = state.admitted.front().copied().unwrap_or(now);
            let retry_after = oldest.saturating_add(window).saturating_sub(now).max(1);
            return Err(ApiError::busy(format!(
                "wallet {wallet} is over its policy's rate limit of {} requests per {window} s",
                limit.max_requests
            ))
            .retry_after(retry_after));
        }
        state.admitted.push_back(now);
        Ok(())
    }
}

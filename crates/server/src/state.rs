//! What every handler shares: the store, the co-signer, the log this server runs, the
//! admission and decision machinery, the caches of chain reads, and the clock.

use std::{sync::Arc, time::Duration};

use alloy::providers::DynProvider;
use chaperone_core::{Address, B256, Secp256k1Signer, policy::Token, readable::TokenUnits};
use chaperone_store::Store;

use crate::{Metrics, Notifier, admission, decider, payability};

/// The longest a request may take by default; a slower one is answered 503 and its work
/// abandoned (a decision's transaction rolls back unless it committed).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    cosigner: Secp256k1Signer,
    chain_id: u64,
    clock: fn() -> u64,
    log: LogConfig,
    /// Per-wallet admission control of `/v1/cosign` (admission.rs).
    admission: admission::Admission,
    /// Decides `/v1/cosign` requests in batches (decider.rs).
    decider: decider::Decider,
    /// What `/metrics` reports (shared with the background workers).
    metrics: Arc<Metrics>,
    /// How long a request may take before it is answered 503.
    request_timeout: Duration,
    /// Webhook notifications of pending approvals and denials, when configured.
    notifier: Option<Arc<Notifier>>,
    /// Token symbols and decimals, read from the chain once each (the console's amounts),
    /// with when the read failed if it did.
    token_units: std::sync::Mutex<
        std::collections::HashMap<Address, (TokenUnits, Option<std::time::Instant>)>,
    >,
    /// Wallets' EIP-1271 budgets read from the chain (payability.rs).
    budgets: payability::BudgetCache,
    /// A provider for reads of the wallets' chain, when the service has one.
    chain: Option<DynProvider>,
}

/// The audit log this server runs: its origin (the name in its checkpoints), the operator key
/// that signs checkpoints and receipts, and where it is anchored.
#[derive(Clone)]
pub struct LogConfig {
    /// The origin line of checkpoints; also the operator's key name.
    pub origin: String,
    /// Signs checkpoints and receipts (and, in the [`Anchorer`], anchoring transactions).
    pub operator: Secp256k1Signer,
    /// The `AuditLog` contract and log id, when the server has a chain.
    pub chain: Option<ChainLog>,
}

/// Where the log is anchored.
#[derive(Clone)]
pub struct ChainLog {
    /// A provider for reads (verification).
    pub provider: DynProvider,
    /// The `AuditLog` contract.
    pub audit_log: Address,
    /// The log's id in it.
    pub log_id: B256,
}

impl LogConfig {
    /// A log anchored at `audit_log`/`log_id` on `chain_id`.
    pub fn anchored(
        chain_id: u64,
        operator: Secp256k1Signer,
        provider: DynProvider,
        audit_log: Address,
        log_id: B256,
    ) -> Self {
        Self {
            origin: log_origin(chain_id, Some((audit_log, log_id))),
            operator,
            chain: Some(ChainLog {
                provider,
                audit_log,
                log_id,
            }),
        }
    }

    /// A log with no chain (development without Anvil): checkpoints are signed, not anchored.
    pub fn unanchored(chain_id: u64, operator: Secp256k1Signer) -> Self {
        Self {
            origin: log_origin(chain_id, None),
            operator,
            chain: None,
        }
    }
}

/// The origin of a log: `chaperone.dev/<chain id>/<AuditLog address>/<log id>` (lowercase hex),
/// or `chaperone.dev/<chain id>/unanchored`.
pub fn log_origin(chain_id: u64, anchor: Option<(Address, B256)>) -> String {
    match anchor {
        Some((audit_log, log_id)) => format!(
            "chaperone.dev/{chain_id}/{}/{log_id}",
            audit_log.to_string().to_lowercase()
        ),
        None => format!("chaperone.dev/{chain_id}/unanchored"),
    }
}

impl AppState {
    /// State for a service on `chain_id` that co-signs with `cosigner`.
    pub fn new(store: Store, cosigner: Secp256k1Signer, chain_id: u64) -> Self {
        Self::with_clock(store, cosigner, chain_id, unix_now)
    }

    /// The same with a custom clock (Unix seconds), for tests of expiry.
    pub fn with_clock(
        store: Store,
        cosigner: Secp256k1Signer,
        chain_id: u64,
        clock: fn() -> u64,
    ) -> Self {
        // Until told otherwise, the co-signer also operates an unanchored log.
        let log = LogConfig::unanchored(chain_id, cosigner.clone());
        let decider = decider::Decider::new(store.clone(), cosigner.clone(), chain_id, clock);
        Self {
            inner: Arc::new(Inner {
                decider,
                store,
                cosigner,
                chain_id,
                clock,
                log,
                admission: Default::default(),
                metrics: Default::default(),
                request_timeout: REQUEST_TIMEOUT,
                notifier: None,
                token_units: Default::default(),
                budgets: Default::default(),
                chain: None,
            }),
        }
    }

    /// The same state running `log`, reporting to `metrics`.
    pub fn with_log(self, log: LogConfig, metrics: Arc<Metrics>) -> Self {
        self.rebuilt(|inner| {
            inner.log = log;
            inner.metrics = metrics;
        })
    }

    /// The same state reading the wallets' chain through `provider` (token symbols, the
    /// wallets' EIP-1271 budgets).
    pub fn with_chain(self, provider: DynProvider) -> Self {
        self.rebuilt(|inner| inner.chain = Some(provider))
    }

    /// The same state answering 503 to requests that take longer than `timeout`.
    pub fn with_request_timeout(self, timeout: Duration) -> Self {
        self.rebuilt(|inner| inner.request_timeout = timeout)
    }

    /// The same state notifying pending approvals and denials through `notifier`.
    pub fn with_notifier(self, notifier: Arc<Notifier>) -> Self {
        self.rebuilt(|inner| inner.notifier = Some(notifier))
    }

    /// A new state from this one's parts (with fresh admission counters), changed by `change`.
    fn rebuilt(self, change: impl FnOnce(&mut Inner)) -> Self {
        let i = &self.inner;
        let mut inner = Inner {
            decider: decider::Decider::new(
                i.store.clone(),
                i.cosigner.clone(),
                i.chain_id,
                i.clock,
            ),
            store: i.store.clone(),
            cosigner: i.cosigner.clone(),
            chain_id: i.chain_id,
            clock: i.clock,
            log: i.log.clone(),
            admission: Default::default(),
            metrics: i.metrics.clone(),
            request_timeout: i.request_timeout,
            notifier: i.notifier.clone(),
            token_units: Default::default(),
            budgets: Default::default(),
            chain: i.chain.clone(),
        };
        change(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    pub(crate) fn chain_id(&self) -> u64 {
        self.inner.chain_id
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        self.inner.request_timeout
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub(crate) fn admission(&self) -> &admission::Admission {
        &self.inner.admission
    }

    pub(crate) fn log(&self) -> &LogConfig {
        &self.inner.log
    }

    pub(crate) fn notifier(&self) -> Option<&Notifier> {
        self.inner.notifier.as_deref()
    }

    /// The wallets' chain, for reads: the configured one, else the log's.
    pub(crate) fn chain(&self) -> Option<&DynProvider> {
        self.inner
            .chain
            .as_ref()
            .or(self.inner.log.chain.as_ref().map(|c| &c.provider))
    }

    pub(crate) fn budgets(&self) -> &payability::BudgetCache {
        &self.inner.budgets
    }

    pub(crate) fn decider(&self) -> &decider::Decider {
        &self.inner.decider
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    pub(crate) fn now(&self) -> u64 {
        (self.inner.clock)()
    }

    /// How `token`'s amounts are written: native is ETH; an ERC-20's symbol and decimals are
    /// read from the chain once. Without a chain, or while it does not answer, the amount
    /// stays in base units under the token's short address (and the chain is asked again a
    /// minute later, not on every call: this runs on the co-sign path of denials).
    pub(crate) async fn token_units(&self, token: Token) -> TokenUnits {
        const RETRY_AFTER: Duration = Duration::from_secs(60);
        let Token::Erc20(address) = token else {
            return TokenUnits::native();
        };
        let cached = self
            .inner
            .token_units
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&address)
            .cloned();
        match cached {
            Some((units, None)) => return units,
            Some((units, Some(failed_at))) if failed_at.elapsed() < RETRY_AFTER => return units,
            _ => {}
        }
        let read = async {
            let erc20 = chaperone_chain::TestToken::new(address, self.chain()?);
            let symbol = erc20.symbol().call().await.ok()?;
            let decimals = erc20.decimals().call().await.ok()?;
            Some(TokenUnits { symbol, decimals })
        };
        let (units, failed_at) = match read.await {
            Some(units) => (units, None),
            None => {
                let text = address.to_string();
                let units = TokenUnits {
                    symbol: format!("units of {}…{}", &text[..6], &text[text.len() - 4..]),
                    decimals: 0,
                };
                (units, Some(std::time::Instant::now()))
            }
        };
        self.inner
            .token_units
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(address, (units.clone(), failed_at));
        units
    }
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

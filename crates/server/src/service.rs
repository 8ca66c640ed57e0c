//! The whole service from one configuration: database, keys, workers and the HTTP listener.
//! `chaperone serve --config FILE` (and `chaperone-server --config FILE`) read a
//! [`ServiceConfig`] from TOML; `chaperone up` builds one for the devnet.

use std::{
    future::Future,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use alloy::{
    network::EthereumWallet,
    providers::{Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use anyhow::{Context, bail};
use chaperone_core::{Address, B256, Secp256k1Signer, policy::Policy};
use chaperone_store::{Store, WalletRecord};
use serde::Deserialize;

use crate::{
    AnchorPolicy, Anchorer, AppState, Indexer, LogConfig, Metrics, Notifier, Webhook,
    WebhookConfig, WebhookSender, app, state::unix_now, token_hash,
};

/// Everything `chaperone serve` needs. Paths are relative to the configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// `sqlite:FILE` (embedded) or `postgres://…` (production, several replicas).
    pub database: String,
    /// The chain the wallets live on; co-sign requests for any other chain are refused.
    pub chain_id: u64,
    /// Where to listen, e.g. `127.0.0.1:8080`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The chain's JSON-RPC URL. Without it nothing settles and nothing is anchored.
    pub rpc_url: Option<String>,
    /// Blocks the indexer stays behind the head (reorg safety). Reservations settle and are
    /// released only from blocks this deep.
    #[serde(default = "default_confirmations")]
    pub confirmations: u64,
    /// The block the indexer starts from: the block the first wallet (or the `AuditLog`) was
    /// created in. It reads logs in ranges of 2,000 blocks from there.
    #[serde(default)]
    pub start_block: u64,
    /// The `AuditLog` contract and log id to anchor to (needs `rpc_url`).
    pub audit_log: Option<AuditLogConfig>,
    /// When to sign (and anchor) checkpoints.
    #[serde(default)]
    pub checkpoints: CheckpointConfig,
    /// The co-signer key (required by [`ServiceConfig::load_keys`]; `chaperone up` and tests
    /// that hand [`ServiceKeys`] to [`start`] directly leave it out).
    pub cosigner: Option<KeySource>,
    /// The log operator key (signs checkpoints and receipts, pays for anchoring); defaults to
    /// the co-signer key.
    pub operator: Option<KeySource>,
    /// An environment variable holding an admin bearer token to register at start-up.
    pub admin_token_env: Option<String>,
    /// Wallets to register (if new) with their policies (if newer than the stored one).
    #[serde(default)]
    pub wallets: Vec<WalletConfig>,
    /// Agents to register (if new) that may append to the log besides the wallets' agents
    /// (which their wallets register): agents that only log, no wallet.
    #[serde(default)]
    pub agents: Vec<Address>,
    /// Notifications of pending approvals, denials and anchoring failures.
    pub webhook: Option<WebhookConfig>,
}

/// Where the log is anchored and how often.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditLogConfig {
    /// The `AuditLog` contract.
    pub address: Address,
    /// The log's id (from `createLog`).
    pub log_id: B256,
}

/// How often checkpoints are signed and, with an `AuditLog`, anchored.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointConfig {
    /// Seconds between checkpoints while records arrive.
    pub interval_secs: u64,
    /// A checkpoint as soon as this many records arrived.
    pub max_records: u64,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self {
            interval_secs: 10,
            max_records: 100_000,
        }
    }
}

/// A wallet to register at start-up.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalletConfig {
    /// The wallet's address.
    pub address: Address,
    /// Its agent key's address.
    pub agent: Address,
    /// Its policy file (TOML, or JSON when it ends in `.json`).
    pub policy: PathBuf,
    /// When the file's policy is installed at start-up (not read from configuration files:
    /// `serve` installs a newer version; `chaperone up` only a first one).
    #[serde(skip)]
    pub install: PolicyInstall,
}

/// When a configured wallet's policy file is installed at start-up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PolicyInstall {
    /// When its version is above the wallet's current one (configuration as code: raise the
    /// version in the file and restart).
    #[default]
    WhenNewer,
    /// Only when the wallet has no policy yet: the file is a starting point, and a policy set
    /// since (through the API, the console or `policy set`) is kept across restarts.
    WhenAbsent,
}

/// Where a private key comes from. Keys never appear in configuration files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, untagged)]
pub enum KeySource {
    /// An encrypted JSON keystore (Web3 Secret Storage) and the variable holding its password.
    Keystore {
        /// The keystore file.
        keystore: PathBuf,
        /// The environment variable holding the password.
        password_env: String,
    },
    /// An environment variable holding the key as hex (development).
    Env {
        /// The variable's name.
        env: String,
    },
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_confirmations() -> u64 {
    2
}

impl KeySource {
    /// Loads the key.
    pub fn load(&self) -> anyhow::Result<Secp256k1Signer> {
        match self {
            Self::Keystore {
                keystore,
                password_env,
            } => {
                let password = std::env::var(password_env).with_context(|| {
                    format!("the keystore password variable {password_env} is not set")
                })?;
                let signer = PrivateKeySigner::decrypt_keystore(keystore, password)
                    .with_context(|| format!("decrypting the keystore {}", keystore.display()))?;
                Ok(Secp256k1Signer::from_bytes(&signer.to_bytes())?)
            }
            Self::Env { env } => {
                let hex = std::env::var(env)
                    .with_context(|| format!("the key variable {env} is not set"))?;
                let bytes: B256 = hex
                    .trim()
                    .parse()
                    .with_context(|| format!("{env} is not 32 bytes of hex"))?;
                Ok(Secp256k1Signer::from_bytes(&bytes)?)
            }
        }
    }
}

impl ServiceConfig {
    /// Reads a TOML configuration; relative paths in it become relative to its folder.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut config: Self =
            toml::from_str(&text).with_context(|| format!("in {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let rebase = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        for wallet in &mut config.wallets {
            rebase(&mut wallet.policy);
        }
        for key in [config.cosigner.as_mut(), config.operator.as_mut()]
            .into_iter()
            .flatten()
        {
            if let KeySource::Keystore { keystore, .. } = key {
                rebase(keystore);
            }
        }
        if config.audit_log.is_some() && config.rpc_url.is_none() {
            bail!("[audit_log] needs rpc_url");
        }
        Ok(config)
    }
}

/// Reads a policy file: TOML, or JSON when the name ends in `.json`.
pub fn read_policy(path: &Path) -> anyhow::Result<Policy> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let policy = if path.extension().is_some_and(|e| e == "json") {
        Policy::from_json(&text)
    } else {
        Policy::from_toml(&text)
    };
    policy.with_context(|| format!("in {}", path.display()))
}

/// The service's secrets, loaded from their [`KeySource`]s (or made up by `chaperone up`).
#[derive(Debug, Clone)]
pub struct ServiceKeys {
    /// The co-signer key.
    pub cosigner: Secp256k1Signer,
    /// The log operator key.
    pub operator: Secp256k1Signer,
    /// An admin bearer token to register (stored only as its hash).
    pub admin_token: Option<String>,
}

impl ServiceConfig {
    /// Loads the keys and the admin token the configuration points to.
    pub fn load_keys(&self) -> anyhow::Result<ServiceKeys> {
        let cosigner = self
            .cosigner
            .as_ref()
            .context("the configuration has no [cosigner] key source")?
            .load()
            .context("loading the co-signer key")?;
        let operator = match &self.operator {
            Some(source) => source.load().context("loading the operator key")?,
            None => cosigner.clone(),
        };
        let admin_token = self
            .admin_token_env
            .as_ref()
            .map(|var| std::env::var(var).with_context(|| format!("{var} is not set")))
            .transpose()?;
        Ok(ServiceKeys {
            cosigner,
            operator,
            admin_token,
        })
    }
}

/// A started service: where it listens, and the task serving it.
#[derive(Debug)]
pub struct RunningService {
    /// The bound address.
    pub local_addr: SocketAddr,
    /// The co-signer's address.
    pub cosigner: Address,
    /// The log operator's address.
    pub operator: Address,
    /// The log's origin.
    pub origin: String,
    /// Resolves when the server stopped (after `shutdown` fired).
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Opens the database, registers the configured wallets, starts the workers and serves HTTP
/// until `shutdown` resolves. The workers stop with the runtime.
pub async fn start(
    config: &ServiceConfig,
    keys: ServiceKeys,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<RunningService> {
    let ServiceKeys {
        cosigner,
        operator,
        admin_token,
    } = keys;
    let store = Store::connect(&config.database)
        .await
        .context("opening the database")?;
    let now = unix_now();
    if let Some(token) = admin_token {
        store
            .add_api_token(token_hash(&token), "bootstrap", "admin", now)
            .await?;
    }
    for wallet in &config.wallets {
        let policy = read_policy(&wallet.policy)?;
        if store.wallet(wallet.address).await?.is_none() {
            let record = WalletRecord {
                address: wallet.address,
                chain_id: config.chain_id,
                agent: wallet.agent,
            };
            store.register_wallet(&record, now).await?;
        }
        let install = match (store.policy(wallet.address).await?, wallet.install) {
            (None, _) => true,
            (Some(current), PolicyInstall::WhenNewer) => current.version < policy.version,
            (Some(_), PolicyInstall::WhenAbsent) => false,
        };
        if install {
            store.set_policy(wallet.address, &policy, now).await?;
        }
    }
    for agent in &config.agents {
        store.register_agent(*agent, "configuration", now).await?;
    }
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("binding {} (is the port free?)", config.listen))?;

    let metrics = Arc::new(Metrics::default());
    let notifier = match &config.webhook {
        Some(webhook) => {
            let secret = std::env::var(&webhook.secret_env).with_context(|| {
                format!("[webhook] secret_env {} is not set", webhook.secret_env)
            })?;
            let local = listener.local_addr()?;
            let webhook = Webhook {
                url: webhook.url.clone(),
                secret: secret.into_bytes(),
                format: webhook.format,
                console_url: webhook
                    .console_url
                    .clone()
                    .unwrap_or_else(|| format!("http://{local}"))
                    .trim_end_matches('/')
                    .to_owned(),
            };
            let sender = WebhookSender::new(store.clone(), webhook.clone());
            every(&metrics, Duration::from_secs(1), "webhooks", sender, |s| {
                Box::pin(async move { s.tick(unix_now()).await.map(|n| format!("{n} delivered")) })
            });
            Some(Arc::new(Notifier::new(store.clone(), webhook)))
        }
        None => None,
    };
    // A held tool call's arguments are raw content, kept for the approver only while the
    // approval is pending: once it expires they are cleared, even when nothing else happens.
    every(
        &metrics,
        Duration::from_secs(30),
        "held tool arguments",
        store.clone(),
        |s| {
            Box::pin(async move {
                let cleared = s.clear_expired_tool_arguments(unix_now()).await?;
                Ok(format!("{cleared} cleared"))
            })
        },
    );
    let anchor = AnchorPolicy {
        interval_secs: config.checkpoints.interval_secs,
        max_records: config.checkpoints.max_records,
    };
    let mut log = LogConfig::unanchored(config.chain_id, operator.clone());
    let mut sender = None;
    let mut chain_reader = None;
    if let Some(url) = &config.rpc_url {
        let url: alloy::transports::http::reqwest::Url =
            url.parse().with_context(|| format!("rpc_url {url}"))?;
        let reader = ProviderBuilder::new().connect_http(url.clone()).erased();
        chain_reader = Some(reader.clone());
        let chain_id = reader
            .get_chain_id()
            .await
            .with_context(|| format!("asking {url} for its chain id"))?;
        if chain_id != config.chain_id {
            bail!(
                "{url} serves chain {chain_id}, the configuration says {}",
                config.chain_id
            );
        }
        // The indexer also settles and releases reservations, from confirmed blocks only.
        let indexer = Indexer::new(
            reader.clone(),
            store.clone(),
            config.audit_log.as_ref().map(|a| (a.address, a.log_id)),
            config.confirmations,
            config.start_block,
        );
        let indexer = match &notifier {
            Some(notifier) => indexer.with_notifier(notifier.clone()),
            None => indexer,
        };
        every(&metrics, Duration::from_secs(2), "indexer", indexer, |i| {
            Box::pin(async move { i.tick().await.map(|r| format!("{r:?}")) })
        });
        if let Some(audit) = &config.audit_log {
            log = LogConfig::anchored(
                config.chain_id,
                operator.clone(),
                reader.clone(),
                audit.address,
                audit.log_id,
            );
            let signer = PrivateKeySigner::from_bytes(&operator.to_bytes())?;
            sender = Some(
                ProviderBuilder::new()
                    .wallet(EthereumWallet::from(signer))
                    .connect_http(url)
                    .erased(),
            );
        }
    }

    // Without a chain, decisions are still logged and checkpoints still signed.
    let anchorer = Anchorer::new(store.clone(), log.clone(), cosigner.clone(), sender, anchor);
    let anchoring_alerts = notifier.clone();
    every(
        &metrics,
        Duration::from_secs(1),
        "anchorer",
        anchorer,
        move |a| {
            let alerts = anchoring_alerts.clone();
            Box::pin(async move {
                let pass = a.tick(unix_now()).await;
                if let (Err(e), Some(alerts)) = (&pass, alerts) {
                    alerts.anchoring_failed(&format!("{e:#}"), unix_now()).await;
                }
                pass.map(|r| format!("{r:?}"))
            })
        },
    );

    let chain_id = config.chain_id;
    let running = RunningService {
        local_addr: listener.local_addr()?,
        cosigner: cosigner.address(),
        operator: operator.address(),
        origin: log.origin.clone(),
        task: tokio::spawn(async move {
            let mut state = AppState::new(store, cosigner, chain_id).with_log(log, metrics);
            if let Some(reader) = chain_reader {
                state = state.with_chain(reader);
            }
            if let Some(notifier) = notifier {
                state = state.with_notifier(notifier);
            }
            let router = app(state);
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
                .context("serving HTTP")
        }),
    };
    tracing::info!(
        listen = %running.local_addr,
        cosigner = %running.cosigner,
        origin = %running.origin,
        "chaperone service started"
    );
    Ok(running)
}

type Pass<'a> = std::pin::Pin<Box<dyn Future<Output = anyhow::Result<String>> + Send + 'a>>;

/// Runs a worker's passes forever, `period` apart; a failed pass is logged, counted and retried.
fn every<W: Send + 'static>(
    metrics: &Arc<Metrics>,
    period: Duration,
    what: &'static str,
    mut worker: W,
    pass: impl for<'a> Fn(&'a mut W) -> Pass<'a> + Send + 'static,
) {
    let metrics = metrics.clone();
    tokio::spawn(async move {
        loop {
            match pass(&mut worker).await {
                Ok(report) => tracing::debug!(worker = what, report, "pass"),
                Err(e) => {
                    metrics.worker_failed(what);
                    tracing::warn!(worker = what, error = %e, "pass failed; retrying");
                }
            }
            tokio::time::sleep(period).await;
        }
    });
}

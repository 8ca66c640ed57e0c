//! `chaperone-server`: the policy service over HTTP.
//!
//! ```text
//! CHAPERONE_COSIGNER_KEY=0x…  CHAPERONE_ADMIN_TOKEN=…  chaperone-server \
//!     --database sqlite:chaperone.db --chain-id 31337 [--listen 127.0.0.1:8080] \
//!     [--rpc-url http://127.0.0.1:8545] \
//!     [--wallet 0xWALLET --agent 0xAGENT --policy deploy/policy.example.toml]
//! ```
//!
//! With `--rpc-url`, a watcher settles reservations when wallets execute and releases those whose
//! `validUntil` passed, every two seconds.
//!
//! The audit log: checkpoints and receipts are signed by the operator key
//! (`CHAPERONE_OPERATOR_KEY`, hex; the co-signer key when unset). With `--rpc-url`,
//! `--audit-log ADDRESS` and `--log-id HEX` (the operator key must be the log's operator in
//! `AuditLog`, with gas money), the anchoring worker anchors a checkpoint every
//! `--anchor-interval` seconds (default 10) or `--anchor-records` records (default 100000), and
//! the indexer follows the contracts `--confirmations` blocks (default 2) behind the head.
//!
//! The co-signer key comes from an encrypted keystore (`CHAPERONE_COSIGNER_KEYSTORE` = file,
//! `CHAPERONE_COSIGNER_KEYSTORE_PASSWORD` = its password) or, for development, from
//! `CHAPERONE_COSIGNER_KEY` (hex). Neither the key nor the admin token is ever logged; the admin
//! token is stored only as its SHA-256 hash.

use std::time::Duration;

use alloy::{
    network::EthereumWallet,
    providers::{Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use anyhow::{Context, bail};
use chaperone_core::{Address, B256, Secp256k1Signer, policy::Policy};
use chaperone_server::{
    AnchorPolicy, Anchorer, AppState, Indexer, LogConfig, Watcher, app, token_hash,
};
use chaperone_store::{Store, WalletRecord};

struct Args {
    database: String,
    chain_id: u64,
    listen: String,
    rpc_url: Option<String>,
    wallet: Option<(Address, Address, String)>,
    audit_log: Option<(Address, B256)>,
    anchor: AnchorPolicy,
    confirmations: u64,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = std::env::args().skip(1);
    let (mut database, mut chain_id, mut listen) = (None, None, "127.0.0.1:8080".to_owned());
    let mut rpc_url = None;
    let (mut wallet, mut agent, mut policy) = (None, None, None);
    let (mut audit_log, mut log_id, mut confirmations) = (None, None, 2);
    let mut anchor = AnchorPolicy {
        interval_secs: 10,
        max_records: 100_000,
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--audit-log" => {
                audit_log = Some(
                    value()?
                        .parse::<Address>()
                        .context("--audit-log takes an address")?,
                )
            }
            "--log-id" => {
                log_id = Some(
                    value()?
                        .parse::<B256>()
                        .context("--log-id takes 32 bytes of hex")?,
                )
            }
            "--anchor-interval" => {
                anchor.interval_secs = value()?
                    .parse()
                    .context("--anchor-interval takes seconds")?
            }
            "--anchor-records" => {
                anchor.max_records = value()?
                    .parse()
                    .context("--anchor-records takes a number")?
            }
            "--confirmations" => {
                confirmations = value()?.parse().context("--confirmations takes a number")?
            }
            "--database" => database = Some(value()?),
            "--chain-id" => chain_id = Some(value()?.parse().context("--chain-id takes a number")?),
            "--listen" => listen = value()?,
            "--rpc-url" => rpc_url = Some(value()?),
            "--wallet" => {
                wallet = Some(
                    value()?
                        .parse::<Address>()
                        .context("--wallet takes an address")?,
                )
            }
            "--agent" => {
                agent = Some(
                    value()?
                        .parse::<Address>()
                        .context("--agent takes an address")?,
                )
            }
            "--policy" => policy = Some(value()?),
            other => bail!("unknown flag {other}; see the crate docs for usage"),
        }
    }
    let wallet = match (wallet, agent, policy) {
        (Some(w), Some(a), Some(p)) => Some((w, a, p)),
        (None, None, None) => None,
        _ => bail!("--wallet, --agent and --policy go together"),
    };
    let audit_log = match (audit_log, log_id) {
        (Some(a), Some(l)) => Some((a, l)),
        (None, None) => None,
        _ => bail!("--audit-log and --log-id go together"),
    };
    if audit_log.is_some() && rpc_url.is_none() {
        bail!("--audit-log needs --rpc-url");
    }
    Ok(Args {
        database: database.context("--database is required (sqlite:FILE or postgres://…)")?,
        chain_id: chain_id.context("--chain-id is required")?,
        listen,
        rpc_url,
        wallet,
        audit_log,
        anchor,
        confirmations,
    })
}

fn operator_key(cosigner: &Secp256k1Signer) -> anyhow::Result<Secp256k1Signer> {
    match std::env::var("CHAPERONE_OPERATOR_KEY") {
        Ok(hex) => {
            let bytes: B256 = hex
                .trim()
                .parse()
                .context("CHAPERONE_OPERATOR_KEY is not 32 bytes of hex")?;
            Ok(Secp256k1Signer::from_bytes(&bytes)?)
        }
        Err(_) => Ok(cosigner.clone()),
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Runs a worker's passes forever, `period` apart; a failed pass is logged and retried.
macro_rules! every {
    ($period:expr, $what:literal, $worker:ident => $pass:expr) => {{
        let mut $worker = $worker;
        tokio::spawn(async move {
            loop {
                match $pass.await {
                    Ok(report) => tracing::debug!(?report, concat!($what, " pass")),
                    Err(e) => tracing::warn!(error = %e, concat!($what, " pass failed; retrying")),
                }
                tokio::time::sleep($period).await;
            }
        });
    }};
}

fn cosigner_key() -> anyhow::Result<Secp256k1Signer> {
    if let Ok(path) = std::env::var("CHAPERONE_COSIGNER_KEYSTORE") {
        let password = std::env::var("CHAPERONE_COSIGNER_KEYSTORE_PASSWORD")
            .context("CHAPERONE_COSIGNER_KEYSTORE needs CHAPERONE_COSIGNER_KEYSTORE_PASSWORD")?;
        let signer = alloy::signers::local::PrivateKeySigner::decrypt_keystore(&path, password)
            .with_context(|| format!("decrypting the keystore {path}"))?;
        return Ok(Secp256k1Signer::from_bytes(&signer.to_bytes())?);
    }
    let hex = std::env::var("CHAPERONE_COSIGNER_KEY").context(
        "set CHAPERONE_COSIGNER_KEYSTORE (+ _PASSWORD), or CHAPERONE_COSIGNER_KEY for development",
    )?;
    let bytes: B256 = hex
        .trim()
        .parse()
        .context("CHAPERONE_COSIGNER_KEY is not 32 bytes of hex")?;
    Ok(Secp256k1Signer::from_bytes(&bytes)?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_target(false)
        .init();
    let args = parse_args()?;
    let cosigner = cosigner_key()?;
    let operator = operator_key(&cosigner)?;
    let store = Store::connect(&args.database)
        .await
        .context("opening the database")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    if let Ok(token) = std::env::var("CHAPERONE_ADMIN_TOKEN") {
        store
            .add_api_token(token_hash(&token), "bootstrap", "admin", now)
            .await?;
    }
    if let Some((wallet, agent, policy_path)) = &args.wallet {
        let text = std::fs::read_to_string(policy_path)
            .with_context(|| format!("reading {policy_path}"))?;
        let policy = if policy_path.ends_with(".json") {
            Policy::from_json(&text)
        } else {
            Policy::from_toml(&text)
        }
        .with_context(|| format!("in {policy_path}"))?;
        if store.wallet(*wallet).await?.is_none() {
            let record = WalletRecord {
                address: *wallet,
                chain_id: args.chain_id,
                agent: *agent,
            };
            store.register_wallet(&record, now).await?;
        }
        if store
            .policy(*wallet)
            .await?
            .is_none_or(|p| p.version < policy.version)
        {
            store.set_policy(*wallet, &policy, now).await?;
        }
    }
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    println!(
        "chaperone-server: co-signer {} on chain {}, listening on http://{}",
        cosigner.address(),
        args.chain_id,
        listener.local_addr()?
    );
    let mut log = LogConfig::unanchored(args.chain_id, operator.clone());
    if let Some(url) = &args.rpc_url {
        let url: alloy::transports::http::reqwest::Url =
            url.parse().with_context(|| format!("--rpc-url {url}"))?;
        let reader = ProviderBuilder::new().connect_http(url.clone()).erased();
        let watcher = Watcher::new(reader.clone(), store.clone(), 0);
        every!(Duration::from_secs(2), "watcher", watcher => watcher.tick(unix_now()));
        if let Some((audit_log, log_id)) = args.audit_log {
            log = LogConfig::anchored(
                args.chain_id,
                operator.clone(),
                reader.clone(),
                audit_log,
                log_id,
            );
            let indexer = Indexer::new(
                reader.clone(),
                store.clone(),
                audit_log,
                log_id,
                args.confirmations,
                0,
            );
            every!(Duration::from_secs(2), "indexer", indexer => indexer.tick());
            let signer = PrivateKeySigner::from_bytes(&operator.to_bytes())?;
            let sender = ProviderBuilder::new()
                .wallet(EthereumWallet::from(signer))
                .connect_http(url)
                .erased();
            let anchorer = Anchorer::new(
                store.clone(),
                log.clone(),
                cosigner.clone(),
                Some(sender),
                args.anchor,
            );
            every!(Duration::from_secs(1), "anchorer", anchorer => anchorer.tick(unix_now()));
        }
    }
    if log.chain.is_none() {
        // Without a chain, decisions are still logged and checkpoints still signed.
        let anchorer = Anchorer::new(
            store.clone(),
            log.clone(),
            cosigner.clone(),
            None,
            args.anchor,
        );
        every!(Duration::from_secs(1), "anchorer", anchorer => anchorer.tick(unix_now()));
    }
    println!(
        "chaperone-server: log {} operated by {}",
        log.origin,
        operator.address()
    );
    let router = app(AppState::new(store, cosigner, args.chain_id).with_log(log));
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            tokio::signal::ctrl_c().await.ok();
        })
        .await?;
    Ok(())
}

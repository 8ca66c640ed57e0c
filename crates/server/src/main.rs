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
//! The co-signer key comes from an encrypted keystore (`CHAPERONE_COSIGNER_KEYSTORE` = file,
//! `CHAPERONE_COSIGNER_KEYSTORE_PASSWORD` = its password) or, for development, from
//! `CHAPERONE_COSIGNER_KEY` (hex). Neither the key nor the admin token is ever logged; the admin
//! token is stored only as its SHA-256 hash.

use anyhow::{Context, bail};
use chaperone_core::{Address, B256, Secp256k1Signer, policy::Policy};
use chaperone_server::{AppState, app, token_hash};
use chaperone_store::{Store, WalletRecord};

struct Args {
    database: String,
    chain_id: u64,
    listen: String,
    rpc_url: Option<String>,
    wallet: Option<(Address, Address, String)>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = std::env::args().skip(1);
    let (mut database, mut chain_id, mut listen) = (None, None, "127.0.0.1:8080".to_owned());
    let mut rpc_url = None;
    let (mut wallet, mut agent, mut policy) = (None, None, None);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
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
    Ok(Args {
        database: database.context("--database is required (sqlite:FILE or postgres://…)")?,
        chain_id: chain_id.context("--chain-id is required")?,
        listen,
        rpc_url,
        wallet,
    })
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
    let args = parse_args()?;
    let cosigner = cosigner_key()?;
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
    if let Some(url) = &args.rpc_url {
        let provider = alloy::providers::ProviderBuilder::new()
            .connect_http(url.parse().with_context(|| format!("--rpc-url {url}"))?);
        let mut watcher = chaperone_server::Watcher::new(provider, store.clone(), 0);
        tokio::spawn(async move {
            loop {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                match watcher.tick(now).await {
                    Ok(report) if report.settled + report.released > 0 => {
                        tracing::info!(?report, "reservations updated")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "watcher pass failed; retrying"),
                }
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
        });
    }
    let router = app(AppState::new(store, cosigner, args.chain_id));
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            tokio::signal::ctrl_c().await.ok();
        })
        .await?;
    Ok(())
}

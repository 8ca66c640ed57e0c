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

use anyhow::{Context, bail};
use chaperone_core::{Address, B256};
use chaperone_server::{
    AuditLogConfig, CheckpointConfig, KeySource, ServiceConfig, WalletConfig, start,
};

fn parse_args() -> anyhow::Result<ServiceConfig> {
    let mut args = std::env::args().skip(1);
    let (mut database, mut chain_id, mut listen) = (None, None, "127.0.0.1:8080".to_owned());
    let mut rpc_url = None;
    let (mut wallet, mut agent, mut policy) = (None, None, None);
    let (mut audit_log, mut log_id, mut confirmations) = (None, None, 2);
    let (mut interval, mut max_records) = (10, 100_000);
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
                interval = value()?
                    .parse()
                    .context("--anchor-interval takes seconds")?
            }
            "--anchor-records" => {
                max_records = value()?
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
    let wallets = match (wallet, agent, policy) {
        (Some(address), Some(agent), Some(policy)) => vec![WalletConfig {
            address,
            agent,
            policy: policy.into(),
        }],
        (None, None, None) => vec![],
        _ => bail!("--wallet, --agent and --policy go together"),
    };
    let audit_log = match (audit_log, log_id) {
        (Some(address), Some(log_id)) => Some(AuditLogConfig { address, log_id }),
        (None, None) => None,
        _ => bail!("--audit-log and --log-id go together"),
    };
    if audit_log.is_some() && rpc_url.is_none() {
        bail!("--audit-log needs --rpc-url");
    }
    let cosigner = match std::env::var("CHAPERONE_COSIGNER_KEYSTORE") {
        Ok(path) => KeySource::Keystore {
            keystore: path.into(),
            password_env: "CHAPERONE_COSIGNER_KEYSTORE_PASSWORD".into(),
        },
        Err(_) if std::env::var_os("CHAPERONE_COSIGNER_KEY").is_some() => KeySource::Env {
            env: "CHAPERONE_COSIGNER_KEY".into(),
        },
        Err(_) => bail!(
            "set CHAPERONE_COSIGNER_KEYSTORE (+ _PASSWORD), or CHAPERONE_COSIGNER_KEY for development"
        ),
    };
    let env_if_set = |name: &str| std::env::var_os(name).map(|_| name.to_owned());
    Ok(ServiceConfig {
        database: database.context("--database is required (sqlite:FILE or postgres://…)")?,
        chain_id: chain_id.context("--chain-id is required")?,
        listen,
        rpc_url,
        confirmations,
        audit_log,
        checkpoints: CheckpointConfig {
            interval_secs: interval,
            max_records,
        },
        cosigner,
        operator: env_if_set("CHAPERONE_OPERATOR_KEY").map(|env| KeySource::Env { env }),
        admin_token_env: env_if_set("CHAPERONE_ADMIN_TOKEN"),
        wallets,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_target(false)
        .init();
    let config = parse_args()?;
    let keys = config.load_keys()?;
    let service = start(&config, keys, async {
        tokio::signal::ctrl_c().await.ok();
    })
    .await?;
    println!(
        "chaperone-server: co-signer {} on chain {}, listening on http://{}",
        service.cosigner, config.chain_id, service.local_addr
    );
    println!(
        "chaperone-server: log {} operated by {}",
        service.origin, service.operator
    );
    service.task.await?
}

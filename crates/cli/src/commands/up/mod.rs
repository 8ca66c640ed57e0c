//! `chaperone up`: a complete local devnet from nothing, or from the data directory a previous
//! `up` left (Anvil's state is saved there, so the contracts, wallet and log survive).
//!
//! [`devnet`] creates a fresh one, [`files`] keeps its directory private, [`facilitator`] is
//! the x402 facilitator that runs beside it.

mod devnet;
mod facilitator;
mod files;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use alloy::{providers::Provider, signers::local::PrivateKeySigner};
use anyhow::{Context, bail};
use chaperone_chain::Devnet;
use chaperone_core::{B256, Secp256k1Signer};
use chaperone_sdk::DevnetInfo;
use chaperone_server::{
    AuditLogConfig, CheckpointConfig, PolicyInstall, ServiceConfig, ServiceKeys, WalletConfig,
    start,
};
use clap::Args;
use devnet::{UpState, create};
use files::{private_data_dir, stop_leftover_anvil, write_private};

use crate::{
    Output,
    opts::Sender,
    shared::{shutdown_signal, signing_provider},
};

/// Anvil's first dev account: public knowledge, funded only on devnets.
const ANVIL_KEY_0: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    /// Where the devnet keeps its state.
    #[arg(long, default_value = ".chaperone")]
    pub(crate) data_dir: PathBuf,
    /// The server's port.
    #[arg(long, default_value_t = 8080)]
    pub(crate) port: u16,
    /// Anvil's port.
    #[arg(long, default_value_t = 8545)]
    pub(crate) anvil_port: u16,
    /// Use this chain instead of starting Anvil.
    // No `env =` (unlike the other commands' --rpc-url): a variable left in the environment
    // would silently put the devnet on another chain instead of a fresh Anvil.
    #[arg(long)]
    pub(crate) rpc_url: Option<String>,
    /// The x402 facilitator's port (x402-rs's facilitator, for merchants on the devnet).
    #[arg(long, default_value_t = 8402)]
    pub(crate) facilitator_port: u16,
    // The deployer: Anvil's first dev account unless set (with --rpc-url, a key with gas money
    // on that chain).
    #[command(flatten)]
    pub(crate) sender: Sender,
}

/// Runs the devnet until Ctrl-C or SIGTERM.
pub(crate) async fn run(args: UpArgs, out: Output) -> anyhow::Result<ExitCode> {
    let UpArgs {
        data_dir,
        port,
        anvil_port,
        rpc_url,
        facilitator_port,
        sender,
    } = args;
    private_data_dir(&data_dir)?;
    let data_dir = data_dir.canonicalize()?;
    let state_file = data_dir.join("state.json");
    let previous: Option<UpState> = match std::fs::read_to_string(&state_file) {
        Ok(text) => Some(serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is damaged; remove {} to start over",
                state_file.display(),
                data_dir.display()
            )
        })?),
        Err(_) => None,
    };

    let devnet = match &rpc_url {
        Some(_) => None,
        None => {
            // A `chaperone up` killed without its Ctrl-C handling (SIGKILL, a crash) leaves its
            // Anvil running on the port: stop that one first (SIGTERM, so it writes its state).
            let pid_file = data_dir.join("anvil.pid");
            stop_leftover_anvil(&pid_file, &out);
            out.step(&format!("starting Anvil on port {anvil_port}"));
            let anvil_state = data_dir.join("anvil-state.json");
            let devnet = Devnet::start_with(|anvil| {
                anvil
                    .port(anvil_port)
                    .arg("--state")
                    .arg(&anvil_state)
                    .arg("--state-interval")
                    .arg("5")
            })
            .with_context(|| {
                format!(
                    "starting Anvil on port {anvil_port} (if the port is taken, pass --anvil-port)"
                )
            })?;
            std::fs::write(&pid_file, devnet.anvil().child().id().to_string())
                .with_context(|| format!("writing {}", pid_file.display()))?;
            Some(devnet)
        }
    };
    let rpc_url =
        rpc_url.unwrap_or_else(|| devnet.as_ref().map(Devnet::rpc_url).unwrap_or_default());
    let deployer = if sender.is_set() {
        sender.signer()?
    } else {
        ANVIL_KEY_0.parse::<PrivateKeySigner>()?
    };
    let (provider, chain_id) = signing_provider(&rpc_url, &deployer).await?;

    let state = match previous {
        Some(state) => {
            if state.info.chain_id != chain_id
                || provider.get_code_at(state.info.wallet).await?.is_empty()
            {
                bail!(
                    "the chain at {rpc_url} does not hold the devnet in {} (its state was lost); \
                     remove {} to start over",
                    data_dir.display(),
                    data_dir.display()
                );
            }
            out.step(&format!("reusing the devnet in {}", data_dir.display()));
            state
        }
        None => {
            let state = create(
                &provider, &deployer, &data_dir, &rpc_url, port, chain_id, out,
            )
            .await
            .with_context(|| {
                format!(
                    "setting up the devnet as {} (with --rpc-url, set CHAPERONE_DEPLOYER_KEY \
                     to a key with gas money)",
                    deployer.address()
                )
            })?;
            write_private(&state_file, &serde_json::to_string_pretty(&state)?)?;
            state
        }
    };
    // x402: Permit2, its x402 proxy, ERC-6492's validator and Multicall3 at their canonical
    // addresses (Anvil has none), then x402-rs's facilitator, settling from the deployer.
    let mut state = state;
    state.info.facilitator_url = None;
    if chaperone_chain::install_x402_contracts(&provider)
        .await
        .is_ok()
    {
        let listen = format!("127.0.0.1:{facilitator_port}");
        let listener = tokio::net::TcpListener::bind(&listen).await.with_context(|| {
            format!("the x402 facilitator's port {facilitator_port} is taken (use --facilitator-port)")
        })?;
        let key = format!("{:#x}", B256::from_slice(&deployer.to_bytes()[..]));
        let (rpc, facilitator_out) = (rpc_url.clone(), out);
        tokio::spawn(async move {
            if let Err(e) = facilitator::serve(listener, &rpc, chain_id, &key).await {
                facilitator_out.step(&format!("the x402 facilitator stopped: {e:#}"));
            }
        });
        state.info.facilitator_url = Some(format!("http://{listen}"));
    } else {
        out.step("no x402 facilitator: this chain has no Permit2 and `anvil_setCode` failed");
    }
    let info = &state.info;
    write_private(
        &data_dir.join("devnet.json"),
        &serde_json::to_string_pretty(info)?,
    )?;

    out.step("starting the server");
    let cosigner = Secp256k1Signer::from_bytes(&state.cosigner_key)?;
    let config = service_config(info, &data_dir, &rpc_url, chain_id, port);
    let keys = ServiceKeys {
        cosigner: cosigner.clone(),
        operator: cosigner,
        admin_token: Some(info.admin_token.clone()),
    };
    let service = start(&config, keys, shutdown_signal())
        .await
        .with_context(|| format!("starting the server (is port {port} free? use --port)"))?;

    out.result(info, &banner(info, &data_dir, chain_id))?;
    let served = service.task.await;
    out.step("stopping");
    if let Some(devnet) = devnet {
        devnet.stop();
        let _ = std::fs::remove_file(data_dir.join("anvil.pid"));
    }
    served.context("the server task failed")??;
    Ok(ExitCode::SUCCESS)
}

/// The devnet's server: SQLite in the data directory, a checkpoint every 2 s, the demo
/// wallets with the demo policy.
fn service_config(
    info: &DevnetInfo,
    data_dir: &Path,
    rpc_url: &str,
    chain_id: u64,
    port: u16,
) -> ServiceConfig {
    ServiceConfig {
        database: format!(
            "sqlite:{}?mode=rwc",
            data_dir.join("chaperone.db").display()
        ),
        chain_id,
        listen: format!("127.0.0.1:{port}"),
        rpc_url: Some(rpc_url.to_owned()),
        // Anvil mines a block per transaction and none otherwise: follow the head.
        confirmations: 0,
        start_block: 0,
        audit_log: Some(AuditLogConfig {
            address: info.audit_log,
            log_id: info.log_id,
        }),
        checkpoints: CheckpointConfig {
            interval_secs: 2,
            max_records: 10_000,
        },
        // `up` hands the keys over directly.
        cosigner: None,
        operator: None,
        admin_token_env: None,
        wallets: std::iter::once(info.wallet)
            .chain(info.counterfactual_wallet.as_ref().map(|c| c.address))
            .map(|address| WalletConfig {
                address,
                agent: info.agent,
                policy: PathBuf::from(&info.policy_file),
                // policy.toml is where the demo starts: a restart keeps whatever policy each
                // wallet has been given since (one `policy set` must not reach both wallets).
                install: PolicyInstall::WhenAbsent,
            })
            .collect(),
        // The demo agent is registered with its wallets.
        agents: vec![],
        webhook: None,
    }
}

/// What `up` prints for people once the devnet runs.
fn banner(info: &DevnetInfo, data_dir: &Path, chain_id: u64) -> String {
    format!(
        "\nChaperone devnet is up (Ctrl-C to stop; everything is in {dir})\n\
         \n  console       {server}/   (log in with the admin token below)\
         \n  server        {server}   (API: {server}/openapi.json, metrics: {server}/metrics)\
         \n  RPC           {rpc}   (chain {chain_id})\
         \n  AuditLog      {audit_log}   log {log_id}\
         \n  factory       {factory}\
         \n  demo wallet   {wallet}   (owner {owner})\
         \n  demo token    {token}   (6 decimals)\
         \n  x402 wallet   {counterfactual}   (not deployed: its first x402 payment deploys it)\
         \n  agent         {agent}\
         \n  agent key     {agent_key}   (devnet only)\
         \n  co-signer     {cosigner}\
         \n  admin token   {admin}\
         \n  policy        {policy}\
         \n  x402          facilitator {facilitator}   (x402-rs)\
         \n\nThe paid API the agent buys from (x402):  make paid-api\
         \nThen the example agent against it:       make agent\n",
        dir = data_dir.display(),
        server = info.server_url,
        rpc = info.rpc_url,
        audit_log = info.audit_log,
        log_id = info.log_id,
        factory = info.wallet_factory,
        wallet = info.wallet,
        owner = info.owner,
        token = info.token,
        counterfactual = info
            .counterfactual_wallet
            .as_ref()
            .map_or("none".to_owned(), |c| c.address.to_string()),
        agent = info.agent,
        agent_key = info.agent_key,
        cosigner = info.cosigner,
        admin = info.admin_token,
        policy = info.policy_file,
        facilitator = info.facilitator_url.as_deref().unwrap_or("none"),
    )
}

//! `chaperone mcp [--config mcp.toml] [--http ADDR] [-- COMMAND ARGS…]`: the MCP gateway
//! (crates/mcp) between an agent and its tool servers, over stdio (the agent starts this
//! command as its MCP server) or Streamable HTTP (`--http`). `chaperone mcp disclose LEAF`
//! writes the disclosure of one recorded tool call for `chaperone verify`.
//!
//! The agent key comes from the file's `agent_key` (`{ env = "VAR" }` or `{ keystore =
//! "FILE", password_env = "VAR" }`, as in `chaperone serve`'s configuration), else from the
//! devnet's `devnet.json`; so does the server URL. Stdout is the MCP stream: everything this
//! command says goes to stderr.

use std::{path::PathBuf, process::ExitCode, sync::Arc, time::Duration};

use anyhow::{Context, bail};
use chaperone_core::{B256, CommitmentKind, Secp256k1Signer};
use chaperone_mcp::{CallRecorder, DecisionReporter, GatewayConfig, GatewayState, ToolPayer};
use chaperone_sdk::{
    DevnetInfo, Error as SdkError, Recorder, RecorderConfig, Wallet, WalletConfig,
};
use chaperone_server::KeySource;
use clap::{Args, Subcommand};
use serde::Deserialize;

use crate::{Output, shared::shutdown_signal};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct McpArgs {
    #[command(subcommand)]
    pub(crate) command: Option<McpCommand>,
    #[command(flatten)]
    pub(crate) run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum McpCommand {
    /// Write the disclosure of one recorded tool call (its arguments, result and metadata)
    /// once its checkpoint is anchored, for `chaperone verify`.
    Disclose(DiscloseArgs),
}

/// Where the gateway's configuration comes from.
#[derive(Debug, Args)]
pub(crate) struct Source {
    /// The gateway's TOML configuration: upstreams, tool policy, server, agent key.
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// The devnet file giving the server URL and agent key the configuration leaves out.
    #[arg(long, default_value = ".chaperone/devnet.json")]
    pub(crate) devnet: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) source: Source,
    /// Serve Streamable HTTP at http://ADDR/mcp instead of stdio (e.g. 127.0.0.1:8931). With
    /// CHAPERONE_MCP_TOKEN set, every request needs it as a bearer token; beyond loopback it is
    /// required.
    #[arg(long, value_name = "ADDR")]
    pub(crate) http: Option<String>,
    /// The name of the upstream given after `--` (default: the program's file name).
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// An upstream MCP server to start, after `--`: `chaperone mcp -- npx server-everything`.
    #[arg(last = true, value_name = "COMMAND")]
    pub(crate) command: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct DiscloseArgs {
    #[command(flatten)]
    pub(crate) source: Source,
    /// The record's leaf hash (`_meta["chaperone.dev/record"].leaf_hash` of the tool result).
    pub(crate) leaf_hash: B256,
    /// Where to write the disclosure (JSON).
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// How long to wait for the record's checkpoint to be anchored, in seconds.
    #[arg(long, default_value_t = 60)]
    pub(crate) wait: u64,
}

pub(crate) async fn run(args: McpArgs, out: Output) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(McpCommand::Disclose(args)) => disclose(args, out).await,
        None => serve(args.run).await,
    }
}

/// The configuration, the agent key and the recorder's settings, resolved.
struct Resolved {
    config: GatewayConfig,
    key: Secp256k1Signer,
    recorder: RecorderConfig,
    /// With `[wallet]`: the wallet's settings.
    wallet: Option<WalletConfig>,
}

fn resolve(source: &Source) -> anyhow::Result<Resolved> {
    let (mut config, key_source) = match &source.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let mut table: toml::Table =
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
            let key_source = match table.remove("agent_key") {
                Some(value) => Some(
                    KeySource::deserialize(value)
                        .context("agent_key: { env = \"VAR\" } or { keystore, password_env }")?,
                ),
                None => None,
            };
            let config = GatewayConfig::from_table(table)
                .with_context(|| format!("in {}", path.display()))?;
            (config, key_source)
        }
        None => (GatewayConfig::empty(), None),
    };
    let devnet = || {
        DevnetInfo::read(&source.devnet).context(
            "the configuration names no server_url or agent_key, and there is no devnet to take them from",
        )
    };
    // Without a key of its own the gateway records as the devnet's demo agent, in the demo
    // agent's one outbox (`make agent`'s): one agent's records form one chain, which two
    // outboxes would fork. A gateway with its own key gets its own outbox.
    let (key, default_data_file) = match key_source {
        Some(key_source) => (key_source.load()?, ".chaperone/mcp.db"),
        None => (
            Secp256k1Signer::from_bytes(&devnet()?.agent_key)?,
            ".chaperone/agent.db",
        ),
    };
    let server_url = match config.server_url.clone() {
        Some(url) => url,
        None => devnet()?.server_url,
    };
    let data_file = config
        .data_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(default_data_file));
    config.data_file = Some(data_file.clone());
    let wallet = match &config.wallet {
        None => None,
        Some(section) => {
            let address = match &section.address {
                Some(address) => address
                    .parse()
                    .with_context(|| format!("wallet.address {address} is not an address"))?,
                None => devnet()?.wallet,
            };
            let rpc_url = match &section.rpc_url {
                Some(url) => url.clone(),
                None => devnet()?.rpc_url,
            };
            Some(WalletConfig::new(server_url.clone(), rpc_url, address))
        }
    };
    let mut recorder = RecorderConfig::new(server_url, data_file);
    recorder.linger = chaperone_mcp::RECORD_LINGER;
    Ok(Resolved {
        config,
        key,
        recorder,
        wallet,
    })
}

async fn serve(args: RunArgs) -> anyhow::Result<ExitCode> {
    let Resolved {
        mut config,
        key,
        recorder,
        wallet,
    } = resolve(&args.source)?;
    let payer = match wallet {
        Some(wallet) => Some(ToolPayer::new(
            Wallet::connect(wallet, key.clone())
                .await
                .context("connecting the wallet that pays x402 tools")?,
        )),
        None => None,
    };
    if !args.command.is_empty() {
        config.add_command(args.name, args.command)?;
    }
    config.check()?;
    let reporter = DecisionReporter::new(&recorder.server_url, key.clone());
    let recorder = Arc::new(
        Recorder::open(recorder, key)
            .await
            .context("opening the gateway's recorder")?,
    );
    let receipt_timeout = config.receipt_timeout();
    let state = GatewayState::reporting(
        config,
        CallRecorder::new(recorder.clone(), receipt_timeout),
        payer,
        Some(reporter),
    )?;
    eprintln!(
        "chaperone mcp: agent {} records every tool call (tool policy {})",
        recorder.agent(),
        state.policy_hash()
    );
    let access = state.http_access();
    match args.http {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(&addr)
                .await
                .with_context(|| format!("binding {addr}"))?;
            // Whoever reaches the endpoint calls tools and pays: beyond loopback, only with a
            // token.
            if access.token.is_none() {
                if !listener.local_addr()?.ip().is_loopback() {
                    anyhow::bail!(
                        "--http {addr} is reachable beyond this machine: set a bearer token in \
                         CHAPERONE_MCP_TOKEN (or the variable [http] token_env names)"
                    );
                }
                eprintln!(
                    "chaperone mcp: no bearer token (CHAPERONE_MCP_TOKEN): any local process \
                     can call tools through this endpoint"
                );
            }
            eprintln!(
                "chaperone mcp: serving http://{}/mcp",
                listener.local_addr()?
            );
            chaperone_mcp::serve_http(state, access, listener, shutdown_signal()).await?;
        }
        None => {
            tokio::select! {
                served = chaperone_mcp::serve_stdio(state) => served?,
                () = shutdown_signal() => {}
            }
        }
    }
    // What was recorded survives in the outbox; give delivery a moment, then stop.
    let _ = tokio::time::timeout(Duration::from_secs(5), recorder.sync()).await;
    recorder.flush().await?;
    Ok(ExitCode::SUCCESS)
}

async fn disclose(args: DiscloseArgs, out: Output) -> anyhow::Result<ExitCode> {
    let Resolved { key, recorder, .. } = resolve(&args.source)?;
    let recorder = Recorder::open(recorder, key)
        .await
        .context("opening the gateway's recorder")?;
    recorder.sync().await.context("delivering the outbox")?;
    let kinds = [
        CommitmentKind::Input,
        CommitmentKind::Output,
        CommitmentKind::Metadata,
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.wait);
    let disclosure = loop {
        match recorder.disclose(args.leaf_hash, &kinds).await {
            Ok(d) if d.anchor.is_some() => break d,
            Ok(_) | Err(SdkError::Refused { .. }) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await
            }
            Ok(_) => bail!(
                "the record's checkpoint was not anchored within {} s",
                args.wait
            ),
            Err(e) => return Err(e.into()),
        }
    };
    disclosure.write(&args.out)?;
    out.result(
        &serde_json::json!({ "leaf_hash": args.leaf_hash, "disclosure": args.out }),
        &format!("disclosed {} to {}", args.leaf_hash, args.out.display()),
    )?;
    recorder.shutdown().await?;
    Ok(ExitCode::SUCCESS)
}

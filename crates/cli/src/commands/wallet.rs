//! `chaperone wallet create …`: an AgentWallet from the factory, or only its address.

use std::process::ExitCode;

use alloy::providers::ProviderBuilder;
use anyhow::Context;
use chaperone_chain::{NewWallet, WalletStart};
use chaperone_core::{Address, B256, U256};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::{
    Output,
    opts::{Rpc, Sender},
    shared::signing_provider,
};

#[derive(Debug, Subcommand)]
pub(crate) enum WalletCommand {
    /// Create an AgentWallet (sender key: $CHAPERONE_DEPLOYER_KEY).
    Create(WalletCreateArgs),
}

#[derive(Debug, Args)]
pub(crate) struct WalletCreateArgs {
    #[command(flatten)]
    pub(crate) rpc: Rpc,
    /// The AgentWalletFactory.
    #[arg(long)]
    pub(crate) factory: Address,
    /// The wallet's owner.
    #[arg(long)]
    pub(crate) owner: Address,
    /// The agent key's address.
    #[arg(long)]
    pub(crate) agent: Address,
    /// The co-signer's address.
    #[arg(long)]
    pub(crate) cosigner: Address,
    /// CREATE2 salt (32 bytes of hex).
    #[arg(long, default_value_t = B256::ZERO)]
    pub(crate) salt: B256,
    /// Create it with its first backstop of this token (0x000…0 for native currency), in the
    /// same transaction; needs --backstop-limit and --backstop-period.
    #[arg(long, requires_all = ["backstop_limit", "backstop_period"])]
    pub(crate) backstop_token: Option<Address>,
    /// The backstop's limit per period, in the token's smallest unit.
    #[arg(long, requires = "backstop_token")]
    pub(crate) backstop_limit: Option<U256>,
    /// The backstop's period in seconds (non-zero).
    #[arg(long, requires = "backstop_token", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) backstop_period: Option<u32>,
    /// Only print the address these arguments deploy to (it binds every one of them), without
    /// deploying: fund it first if you like, nobody can deploy another wallet there.
    #[arg(long)]
    pub(crate) predict: bool,
    #[command(flatten)]
    pub(crate) sender: Sender,
}

/// Runs one `wallet` subcommand.
pub(crate) async fn run(command: WalletCommand, out: Output) -> anyhow::Result<ExitCode> {
    match command {
        WalletCommand::Create(args) => create(args, out).await,
    }
}

/// `chaperone wallet create …`
async fn create(args: WalletCreateArgs, out: Output) -> anyhow::Result<ExitCode> {
    let WalletCreateArgs {
        rpc: Rpc { rpc_url },
        factory,
        owner,
        agent,
        cosigner,
        salt,
        backstop_token,
        backstop_limit,
        backstop_period,
        predict,
        sender,
    } = args;
    let start = match (backstop_token, backstop_limit, backstop_period) {
        (Some(token), Some(limit), Some(period)) => WalletStart::Backstop {
            token,
            limit,
            period,
        },
        // clap requires all three together.
        _ => WalletStart::Bare,
    };
    let new_wallet = NewWallet {
        factory,
        owner,
        agent,
        cosigner,
        salt,
        start,
    };
    let backstop = match start {
        WalletStart::Bare => "no backstop".to_owned(),
        WalletStart::Backstop {
            token,
            limit,
            period,
        } => format!("backstop {limit} of {token} per {period} s"),
    };
    let wallet = if predict {
        let provider = ProviderBuilder::new()
            .connect(&rpc_url)
            .await
            .with_context(|| format!("connecting to {rpc_url}"))?;
        new_wallet
            .predict(&provider)
            .await
            .context("asking the factory (is the factory address right?)")?
    } else {
        let key = sender.signer()?;
        let (provider, _) = signing_provider(&rpc_url, &key).await?;
        new_wallet
            .create(&provider)
            .await
            .context("creating the wallet (is the factory address right?)")?
    };
    let verb = if predict { "would be" } else { "is" };
    out.result(
        &json!({ "wallet": wallet, "deployed": !predict, "owner": owner, "agent": agent,
                 "cosigner": cosigner, "salt": salt, "backstop": backstop }),
        &format!(
            "AgentWallet {wallet} {verb} (owner {owner}, agent {agent}, co-signer {cosigner}, {backstop})"
        ),
    )?;
    Ok(ExitCode::SUCCESS)
}

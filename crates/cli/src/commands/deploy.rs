//! `chaperone deploy --rpc-url URL [--salt HEX] [--operator ADDRESS]`: the contracts at their
//! deterministic (CREATE2) addresses, and optionally a log.

use std::process::ExitCode;

use anyhow::Context;
use chaperone_core::{Address, B256};
use clap::Args;
use serde_json::json;

use crate::{
    Output,
    opts::{Rpc, Sender},
    shared::signing_provider,
};

#[derive(Debug, Args)]
pub(crate) struct DeployArgs {
    #[command(flatten)]
    pub(crate) rpc: Rpc,
    /// CREATE2 salt (32 bytes of hex).
    #[arg(long, default_value_t = B256::ZERO)]
    pub(crate) salt: B256,
    /// Also create a log operated by this address.
    #[arg(long)]
    pub(crate) operator: Option<Address>,
    #[command(flatten)]
    pub(crate) sender: Sender,
}

/// Deploys (nothing new when the same salt was deployed before) and prints the addresses.
pub(crate) async fn run(args: DeployArgs, out: Output) -> anyhow::Result<ExitCode> {
    let DeployArgs {
        rpc: Rpc { rpc_url },
        salt,
        operator,
        sender,
    } = args;
    let key = sender.signer()?;
    let (provider, chain_id) = signing_provider(&rpc_url, &key).await?;
    out.step(&format!(
        "deploying from {} on chain {chain_id}",
        key.address()
    ));
    let deployment = chaperone_chain::deploy_deterministic(&provider, salt)
        .await
        .context("deploying the contracts")?;
    let log_id = match operator {
        Some(operator) => {
            out.step(&format!("creating a log operated by {operator}"));
            Some(chaperone_chain::create_log(&provider, deployment.audit_log, operator).await?)
        }
        None => None,
    };
    let value = json!({
        "chain_id": chain_id,
        "audit_log": deployment.audit_log,
        "wallet_factory": deployment.wallet_factory,
        "wallet_implementation": deployment.wallet_implementation,
        "log_id": log_id,
    });
    let mut text = format!(
        "AuditLog            {}\nAgentWalletFactory  {}\nAgentWallet (impl.) {}",
        deployment.audit_log, deployment.wallet_factory, deployment.wallet_implementation
    );
    if let Some(id) = log_id {
        text.push_str(&format!("\nlog id              {id}"));
    }
    out.result(&value, &text)?;
    Ok(ExitCode::SUCCESS)
}

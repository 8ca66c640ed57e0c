//! `chaperone policy set|show|test`: a wallet's policy on a server, or a dry run of one.

use std::{path::PathBuf, process::ExitCode};

use chaperone_core::{
    Address, Call, Execute, U256,
    policy::{Outcome, PolicyRequest, RequestKind, SpendHistory, Token, evaluate},
    readable::{TokenUnits, reason_text},
};
use chaperone_sdk::Payment;
use chaperone_server::read_policy;
use clap::{Args, Subcommand};
use serde_json::json;

use crate::{Output, opts::AdminServer};

#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Replace a wallet's policy with FILE (TOML, or JSON when it ends in .json).
    Set(PolicySetArgs),
    /// Show a wallet's current policy.
    Show(ServerWallet),
    /// Dry-run one payment against a policy file (no server, no history).
    ///
    /// Exits 0 when approved, 1 when pending a human, 2 when denied.
    Test(PolicyTestArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ServerWallet {
    #[command(flatten)]
    pub(crate) server: AdminServer,
    /// The wallet.
    #[arg(long)]
    pub(crate) wallet: Address,
}

#[derive(Debug, Args)]
pub(crate) struct PolicySetArgs {
    #[command(flatten)]
    pub(crate) target: ServerWallet,
    /// The policy file.
    pub(crate) file: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct PolicyTestArgs {
    /// The policy file.
    pub(crate) file: PathBuf,
    /// The recipient.
    #[arg(long)]
    pub(crate) to: Address,
    /// The amount, in base units.
    #[arg(long)]
    pub(crate) amount: U256,
    /// An ERC-20 instead of the chain's coin.
    #[arg(long)]
    pub(crate) token: Option<Address>,
    /// The chain (default: the policy's first).
    #[arg(long)]
    pub(crate) chain_id: Option<u64>,
}

/// Runs one `policy` subcommand.
pub(crate) async fn run(command: PolicyCommand, out: Output) -> anyhow::Result<ExitCode> {
    match command {
        PolicyCommand::Set(args) => set(args, out).await,
        PolicyCommand::Show(args) => show(args, out).await,
        PolicyCommand::Test(args) => test(args, out),
    }
}

/// `chaperone policy set --server URL --wallet ADDRESS FILE`
async fn set(args: PolicySetArgs, out: Output) -> anyhow::Result<ExitCode> {
    let PolicySetArgs {
        target: ServerWallet { server, wallet },
        file,
    } = args;
    // Checked here first (a precise error names the file), then sent as written: the server
    // keeps the text as submitted, comments and all.
    let policy = read_policy(&file)?;
    let text = std::fs::read_to_string(&file)?;
    let toml = file.extension().is_none_or(|e| e != "json");
    let answer = server.client()?.set_policy_text(wallet, text, toml).await?;
    out.result(
        &answer,
        &format!("wallet {wallet} now has policy version {}", policy.version),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `chaperone policy show --server URL --wallet ADDRESS`
async fn show(args: ServerWallet, out: Output) -> anyhow::Result<ExitCode> {
    let ServerWallet { server, wallet } = args;
    let policy = server.client()?.policy(wallet).await?;
    // Through a `Value` for both outputs, so the text's keys are sorted like the JSON's.
    let answer = serde_json::to_value(&policy)?;
    out.result(&answer, &serde_json::to_string_pretty(&answer)?)?;
    Ok(ExitCode::SUCCESS)
}

/// `chaperone policy test FILE --to ADDRESS --amount WEI [--token ADDRESS] [--chain-id N]`:
/// exit 0 when approved, 1 when pending a human, 2 when denied.
fn test(args: PolicyTestArgs, out: Output) -> anyhow::Result<ExitCode> {
    let PolicyTestArgs {
        file,
        to,
        amount,
        token,
        chain_id,
    } = args;
    let policy = read_policy(&file)?;
    let chain_id = chain_id
        .or_else(|| policy.chains.first().copied())
        .unwrap_or(31337);
    let call: Call = Payment { token, to, amount }.call();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let request = PolicyRequest {
        chain_id,
        wallet: Address::ZERO,
        now,
        kind: RequestKind::Execute(Execute {
            calls: vec![call],
            nonce: U256::ZERO,
            // As long as the policy lets a co-signature live (a longer validity is itself a
            // reason to deny, `valid_too_long`), so the dry run judges only the payment.
            validUntil: now + policy.max_valid_for(),
        }),
        human_approved: false,
    };
    let decision = evaluate(&policy, &request, &SpendHistory::default());
    let mut text = format!(
        "{:?} by policy version {}",
        decision.outcome, decision.policy_version
    );
    // Offline there is no chain to read a token's decimals from: ERC-20 amounts stay in
    // base units (native ones are ETH).
    let units = |token: &Token| match token {
        Token::Native => TokenUnits::native(),
        Token::Erc20(address) => TokenUnits {
            symbol: format!("base units of {address}"),
            decimals: 0,
        },
    };
    let words: Vec<String> = decision
        .reasons
        .iter()
        .map(|reason| reason_text(reason, units))
        .collect();
    for (reason, words) in decision.reasons.iter().zip(&words) {
        text.push_str(&format!(
            "\n  - {words}  {}",
            serde_json::to_string(reason)?
        ));
    }
    out.result(
        &json!({
            "outcome": decision.outcome,
            "reasons": decision.reasons,
            "reasons_text": words,
            "policy_version": decision.policy_version,
            "policy_hash": decision.policy_hash,
        }),
        &text,
    )?;
    Ok(ExitCode::from(match decision.outcome {
        Outcome::Approved => 0,
        Outcome::PendingApproval => 1,
        Outcome::Denied => 2,
    }))
}

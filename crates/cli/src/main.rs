//! `chaperone`: the devnet, the service, and the operator's and auditor's tools.
//!
//! Each command lives in its own module of [`commands`], with its arguments. The flag groups
//! several commands share (a server and its bearer token, a chain's RPC URL, the sending key)
//! are in [`opts`]: clap reads them from the command line or the environment (`env =`), so
//! `--help` documents every variable and no command reads one by hand. Talking to a Chaperone
//! server goes through `chaperone-api`'s typed client.

mod commands;
mod opts;
mod shared;

use std::process::ExitCode;

use chaperone_server::LogFormat;
use clap::{Parser, Subcommand};
use commands::{
    agent, completions, deploy, export, mcp, policy, report, serve, token, up, verify, wallet,
};
pub(crate) use shared::Output;

/// chaperone — an audit trail nobody can rewrite and a wallet an agent cannot drain.
#[derive(Debug, Parser)]
#[command(name = "chaperone", version)]
pub(crate) struct Cli {
    /// Print one JSON document a script can read instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Debug logs: every HTTP request of `up` and `serve` with its x-request-id and latency.
    #[arg(long, global = true)]
    pub(crate) verbose: bool,
    /// How log lines are written.
    #[arg(long, global = true, default_value = "text", value_parser = parse_log_format)]
    pub(crate) log_format: LogFormat,
    #[command(subcommand)]
    pub(crate) command: Command,
}

fn parse_log_format(text: &str) -> Result<LogFormat, String> {
    text.parse()
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Start a local devnet: Anvil, the contracts, the server and a demo agent wallet.
    ///
    /// Anvil (or the chain at --rpc-url), AuditLog and AgentWalletFactory, the server on SQLite,
    /// and a funded demo agent wallet with a demo policy. Ctrl-C stops it; the data directory
    /// is reused by the next `up`.
    Up(up::UpArgs),
    /// Run the service from a configuration file (see deploy/chaperone.example.toml).
    Serve(serve::ServeArgs),
    /// Deploy AuditLog and AgentWalletFactory at deterministic (CREATE2) addresses.
    ///
    /// With --operator, also create a log it operates. The sender's key comes from
    /// $CHAPERONE_DEPLOYER_KEY.
    Deploy(deploy::DeployArgs),
    /// AgentWallets.
    #[command(subcommand)]
    Wallet(wallet::WalletCommand),
    /// The agents that may append to a server's log (only registered ones may).
    ///
    /// The bearer token comes from $CHAPERONE_ADMIN_TOKEN.
    #[command(subcommand)]
    Agent(agent::AgentCommand),
    /// Named bearer tokens of a server: create (shown once), revoke, list.
    ///
    /// The admin's own token comes from $CHAPERONE_ADMIN_TOKEN.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// A wallet's policy on a server, or a dry run of one.
    ///
    /// `set` and `show` take the bearer token from $CHAPERONE_ADMIN_TOKEN.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// The MCP gateway: every tool call an agent makes is recorded and held to a policy.
    ///
    /// Over stdio (`chaperone mcp --config mcp.toml -- npx @modelcontextprotocol/server-everything`)
    /// or Streamable HTTP (`--http 127.0.0.1:8931`); `disclose` writes one call's disclosure.
    Mcp(mcp::McpArgs),
    /// Verify a disclosure, or an evidence bundle (--bundle), end to end against the chain.
    Verify(verify::VerifyArgs),
    /// The evidence pack of a period for an auditor: an HTML report and a checkable bundle.
    ///
    /// The bearer token comes from $CHAPERONE_ADMIN_TOKEN or $CHAPERONE_AUDITOR_TOKEN.
    Report(report::ReportArgs),
    /// Export from the compliance API, all pages.
    ///
    /// The bearer token comes from $CHAPERONE_ADMIN_TOKEN or $CHAPERONE_AUDITOR_TOKEN.
    Export(export::ExportArgs),
    /// Print a shell completion script.
    ///
    /// For example: `chaperone completions bash > ~/.local/share/bash-completion/completions/chaperone`.
    Completions(completions::CompletionsArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        // Exit 1, as every other failure: 2 is `policy test`'s "denied".
        Err(e) => {
            let _ = e.print();
            return ExitCode::FAILURE;
        }
    };
    let out = Output { json: cli.json };
    let level = if cli.verbose {
        tracing::Level::DEBUG
    } else {
        tracing::Level::WARN
    };
    // rmcp logs every MCP message it handles (tool arguments and results) at debug and info
    // level: the gateway's log keeps only its errors, so raw content never reaches it.
    let caps: &[(&str, tracing::Level)] = match cli.command {
        Command::Mcp(_) => &[("rmcp", tracing::Level::ERROR)],
        _ => &[],
    };
    chaperone_server::init_logging_capped(cli.log_format, level, caps);
    let rpc_url = cli.command.rpc_url().map(str::to_owned);
    match run(cli.command, out).await {
        Ok(code) => code,
        Err(e) => {
            out.error(&e, rpc_url.as_deref());
            ExitCode::FAILURE
        }
    }
}

impl Command {
    /// The chain's RPC URL the command was given, to keep out of its messages.
    fn rpc_url(&self) -> Option<&str> {
        match self {
            Self::Deploy(args) => Some(&args.rpc.rpc_url),
            Self::Wallet(wallet::WalletCommand::Create(args)) => Some(&args.rpc.rpc_url),
            Self::Verify(args) => Some(&args.rpc_url),
            Self::Up(args) => args.rpc_url.as_deref(),
            _ => None,
        }
    }
}

async fn run(command: Command, out: Output) -> anyhow::Result<ExitCode> {
    match command {
        Command::Up(args) => up::run(args, out).await,
        Command::Serve(args) => serve::run(args).await,
        Command::Deploy(args) => deploy::run(args, out).await,
        Command::Wallet(command) => wallet::run(command, out).await,
        Command::Agent(command) => agent::run(command, out).await,
        Command::Token(command) => token::run(command, out).await,
        Command::Policy(command) => policy::run(command, out).await,
        Command::Mcp(args) => mcp::run(args, out).await,
        Command::Verify(args) => verify::run(args, out).await,
        Command::Export(args) => export::run(args, out).await,
        Command::Report(args) => report::run(args, out).await,
        Command::Completions(args) => completions::run(args),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every flag a secret can come from (a token, a key, an RPC URL that may carry a
    /// provider's API key) keeps its variable's value out of `--help`.
    #[test]
    fn no_help_prints_a_secret() {
        fn check(command: &clap::Command, path: &str) {
            for arg in command.get_arguments() {
                if let Some(env) = arg.get_env() {
                    let env = env.to_string_lossy();
                    if env.ends_with("_TOKEN") || env.ends_with("_KEY") || env.ends_with("RPC_URL")
                    {
                        assert!(
                            arg.is_hide_env_values_set(),
                            "{path} --{}: ${env} would show in --help",
                            arg.get_long().unwrap_or_default()
                        );
                    }
                }
            }
            for sub in command.get_subcommands() {
                check(sub, &format!("{path} {}", sub.get_name()));
            }
        }
        check(&Cli::command(), "chaperone");
    }
}

//! The command line, derived with clap: every command and subcommand has `--help`, and an error
//! names the flag it is about.

use std::path::PathBuf;

use chaperone_core::{Address, B256, U256};
use chaperone_server::LogFormat;
use clap::{Args, Parser, Subcommand};

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
    Up(UpArgs),
    /// Run the service from a configuration file (see deploy/chaperone.example.toml).
    Serve(ServeArgs),
    /// Deploy AuditLog and AgentWalletFactory at deterministic (CREATE2) addresses.
    ///
    /// With --operator, also create a log it operates. The sender's key comes from
    /// $CHAPERONE_DEPLOYER_KEY.
    Deploy(DeployArgs),
    /// AgentWallets.
    #[command(subcommand)]
    Wallet(WalletCommand),
    /// The agents that may append to a server's log (only registered ones may).
    ///
    /// The bearer token comes from $CHAPERONE_ADMIN_TOKEN.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Bearer tokens of a server: issue (shown once), revoke, list.
    ///
    /// The admin's own token comes from $CHAPERONE_ADMIN_TOKEN.
    #[command(subcommand)]
    Token(TokenCommand),
    /// A wallet's policy on a server, or a dry run of one.
    ///
    /// `set` and `show` take the bearer token from $CHAPERONE_ADMIN_TOKEN.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Verify a disclosure bundle end to end against the chain.
    Verify(VerifyArgs),
    /// Export from the compliance API, all pages.
    ///
    /// The bearer token comes from $CHAPERONE_ADMIN_TOKEN or $CHAPERONE_AUDITOR_TOKEN.
    Export(ExportArgs),
    /// Print a shell completion script.
    ///
    /// For example: `chaperone completions bash > ~/.local/share/bash-completion/completions/chaperone`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

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
    #[arg(long)]
    pub(crate) rpc_url: Option<String>,
    /// The x402 facilitator's port (x402-rs's facilitator, for merchants on the devnet).
    #[arg(long, default_value_t = 8402)]
    pub(crate) facilitator_port: u16,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The configuration file.
    #[arg(long)]
    pub(crate) config: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct DeployArgs {
    /// The chain's JSON-RPC URL.
    #[arg(long)]
    pub(crate) rpc_url: String,
    /// CREATE2 salt (32 bytes of hex).
    #[arg(long, default_value_t = B256::ZERO)]
    pub(crate) salt: B256,
    /// Also create a log operated by this address.
    #[arg(long)]
    pub(crate) operator: Option<Address>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum WalletCommand {
    /// Create an AgentWallet (sender key: $CHAPERONE_DEPLOYER_KEY).
    Create(WalletCreateArgs),
}

#[derive(Debug, Args)]
pub(crate) struct WalletCreateArgs {
    /// The chain's JSON-RPC URL.
    #[arg(long)]
    pub(crate) rpc_url: String,
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
}

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

#[derive(Debug, Subcommand)]
pub(crate) enum AgentCommand {
    /// Allow an agent to append to the log (a wallet's agent is registered with its wallet).
    Register(ServerAgent),
    /// Stop an agent appending to the log (its records stay).
    Unregister(ServerAgent),
    /// List the registered agents.
    List(ServerOnly),
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Issue a token; it is printed once (only its hash is stored).
    Issue(TokenIssueArgs),
    /// Revoke the live token of a name: the API and its console sessions refuse it at once.
    Revoke(TokenNameArgs),
    /// List every token's name, role and dates (never the tokens).
    List(ServerOnly),
}

#[derive(Debug, Args)]
pub(crate) struct TokenIssueArgs {
    /// The server's URL.
    #[arg(long)]
    pub(crate) server: String,
    /// Who will hold it (recorded with what they do).
    pub(crate) name: String,
    /// What it may do.
    #[arg(long, value_parser = ["admin", "approver", "auditor"])]
    pub(crate) role: String,
}

#[derive(Debug, Args)]
pub(crate) struct TokenNameArgs {
    /// The server's URL.
    #[arg(long)]
    pub(crate) server: String,
    /// The token's name.
    pub(crate) name: String,
}

#[derive(Debug, Args)]
pub(crate) struct ServerAgent {
    /// The server's URL.
    #[arg(long)]
    pub(crate) server: String,
    /// The agent's address (its record-signing key's).
    pub(crate) agent: Address,
}

#[derive(Debug, Args)]
pub(crate) struct ServerOnly {
    /// The server's URL.
    #[arg(long)]
    pub(crate) server: String,
}

#[derive(Debug, Args)]
pub(crate) struct ServerWallet {
    /// The server's URL.
    #[arg(long)]
    pub(crate) server: String,
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

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("trusted_log").required(true).args(["log_id", "server"])))]
pub(crate) struct VerifyArgs {
    /// The disclosure bundle (JSON).
    pub(crate) bundle: PathBuf,
    /// The chain's JSON-RPC URL.
    #[arg(long)]
    pub(crate) rpc_url: String,
    /// The AuditLog contract of the log you trust (with --log-id). A bundle of any other log
    /// is refused: anyone can create a log, so the bundle may not name its own.
    #[arg(long, requires = "log_id")]
    pub(crate) audit_log: Option<Address>,
    /// The id of the log you trust in that contract (with --audit-log).
    #[arg(long, requires = "audit_log")]
    pub(crate) log_id: Option<B256>,
    /// Or: trust the log this deployment's server anchors to (its GET /v1/checkpoints/latest).
    #[arg(long, conflicts_with_all = ["audit_log", "log_id"])]
    pub(crate) server: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The server's URL.
    #[arg(long)]
    pub(crate) server: String,
    /// What to export.
    #[arg(long, default_value = "decisions", value_parser = ["records", "decisions", "spend", "agents"])]
    pub(crate) what: String,
    /// The agent whose records to export (with --what records).
    #[arg(long, required_if_eq("what", "records"))]
    pub(crate) agent: Option<Address>,
    /// The output format.
    #[arg(long, default_value = "jsonl", value_parser = ["jsonl", "csv", "json"])]
    pub(crate) format: String,
    /// Write to this file instead of standard output.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
}

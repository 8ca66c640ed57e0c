//! `chaperone`: the devnet, the service, and the operator's and auditor's tools.

mod args;
mod commands;
mod up;

use std::process::ExitCode;

use args::Args;

const USAGE: &str = "\
chaperone — an audit trail nobody can rewrite and a wallet an agent cannot drain

USAGE
  chaperone up [--data-dir DIR] [--port 8080] [--anvil-port 8545] [--rpc-url URL]
      Start a local devnet: Anvil (or --rpc-url), the contracts, the server on SQLite, and a
      funded demo agent wallet with a demo policy. Ctrl-C stops it; DIR (.chaperone) is reused.
  chaperone serve --config FILE
      Run the service from a configuration file (see deploy/chaperone.example.toml).
  chaperone deploy --rpc-url URL [--salt HEX] [--operator ADDRESS]
      Deploy AuditLog and AgentWalletFactory at deterministic (CREATE2) addresses; with
      --operator, also create a log it operates. The key comes from $CHAPERONE_DEPLOYER_KEY.
  chaperone wallet create --rpc-url URL --factory ADDRESS --owner ADDRESS --agent ADDRESS
                          --cosigner ADDRESS [--salt HEX]
      Create an AgentWallet (sender key: $CHAPERONE_DEPLOYER_KEY).
  chaperone policy set --server URL --wallet ADDRESS FILE
  chaperone policy show --server URL --wallet ADDRESS
      Replace or show a wallet's policy (bearer token: $CHAPERONE_ADMIN_TOKEN).
  chaperone policy test FILE --to ADDRESS --amount WEI [--token ADDRESS] [--chain-id N]
      Dry-run one payment against a policy file (no server, no history).
  chaperone verify BUNDLE --rpc-url URL
      Verify a disclosure bundle end to end against the chain.
  chaperone export --server URL [--what records|decisions|spend] [--agent ADDRESS]
                   [--format jsonl|csv|json] [--out FILE]
      Export from the compliance API, all pages (bearer token: $CHAPERONE_ADMIN_TOKEN or
      $CHAPERONE_AUDITOR_TOKEN).

Every command takes --json for output a script can read, --verbose for debug logs (each HTTP
request of `up` and `serve` with its x-request-id and latency) and --log-format text|json.
";

/// How results are shown: text for people, one JSON document for scripts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    pub(crate) json: bool,
}

impl Output {
    /// Prints `value` as JSON, or `text` for people.
    pub(crate) fn result(&self, value: &serde_json::Value, text: &str) {
        if self.json {
            println!("{value}");
        } else {
            println!("{text}");
        }
    }

    /// A progress line for long work (stderr, so `--json` output stays clean).
    pub(crate) fn step(&self, text: &str) {
        if !self.json {
            eprintln!("  → {text}");
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = Args::new(std::env::args().skip(1).collect());
    let out = Output {
        json: args.switch("--json"),
    };
    let level = if args.switch("--verbose") {
        tracing::Level::DEBUG
    } else {
        tracing::Level::WARN
    };
    let format = match args.parsed::<chaperone_server::LogFormat>("--log-format", "text or json") {
        Ok(format) => format.unwrap_or_default(),
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    chaperone_server::init_logging(format, level);
    match run(args, out).await {
        Ok(code) => code,
        Err(e) => {
            if out.json {
                println!("{}", serde_json::json!({ "error": format!("{e:#}") }));
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(mut args: Args, out: Output) -> anyhow::Result<ExitCode> {
    let command = args.positional().unwrap_or_else(|| "help".into());
    match command.as_str() {
        "up" => up::up(args, out).await,
        "serve" => commands::serve(args).await,
        "deploy" => commands::deploy(args, out).await,
        "wallet" => match args.positional().as_deref() {
            Some("create") => commands::wallet_create(args, out).await,
            _ => anyhow::bail!("usage: chaperone wallet create … (see `chaperone help`)"),
        },
        "policy" => match args.positional().as_deref() {
            Some("set") => commands::policy_set(args, out).await,
            Some("show") => commands::policy_show(args, out).await,
            Some("test") => commands::policy_test(args, out),
            _ => anyhow::bail!("usage: chaperone policy set|show|test … (see `chaperone help`)"),
        },
        "verify" => commands::verify(args, out).await,
        "export" => commands::export(args, out).await,
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => anyhow::bail!("unknown command `{other}` (see `chaperone help`)"),
    }
}

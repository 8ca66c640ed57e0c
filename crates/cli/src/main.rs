//! `chaperone`: the devnet, the service, and the operator's and auditor's tools.

mod agent;
mod args;
mod commands;
mod facilitator;
mod token;
mod up;

use std::process::ExitCode;

use args::{Cli, Command, PolicyCommand, WalletCommand};
use clap::{CommandFactory, Parser};

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
    chaperone_server::init_logging(cli.log_format, level);
    match run(cli.command, out).await {
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

async fn run(command: Command, out: Output) -> anyhow::Result<ExitCode> {
    match command {
        Command::Up(args) => up::up(args, out).await,
        Command::Serve(args) => commands::serve(args).await,
        Command::Deploy(args) => commands::deploy(args, out).await,
        Command::Agent(command) => agent::agent(command, out).await,
        Command::Token(command) => token::token(command, out).await,
        Command::Wallet(WalletCommand::Create(args)) => commands::wallet_create(args, out).await,
        Command::Policy(PolicyCommand::Set(args)) => commands::policy_set(args, out).await,
        Command::Policy(PolicyCommand::Show(args)) => commands::policy_show(args, out).await,
        Command::Policy(PolicyCommand::Test(args)) => commands::policy_test(args, out),
        Command::Verify(args) => commands::verify(args, out).await,
        Command::Export(args) => commands::export(args, out).await,
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "chaperone",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

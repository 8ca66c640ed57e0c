//! `chaperone completions SHELL`: a shell completion script.

use std::process::ExitCode;

use clap::{Args, CommandFactory};

use crate::Cli;

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell.
    pub(crate) shell: clap_complete::Shell,
}

/// Prints the script for `args.shell` to standard output.
pub(crate) fn run(args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    clap_complete::generate(
        args.shell,
        &mut Cli::command(),
        "chaperone",
        &mut std::io::stdout(),
    );
    Ok(ExitCode::SUCCESS)
}

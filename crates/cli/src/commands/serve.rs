//! `chaperone serve --config FILE`: the service from a configuration file. Its keys and admin
//! token come from the variables the file names (`admin_token_env`, a key's `env`), which the
//! server crate reads: the file decides which variables, not this command line.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context;
use chaperone_server::{ServiceConfig, start};
use clap::Args;

use crate::shared::shutdown_signal;

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The configuration file.
    #[arg(long)]
    pub(crate) config: PathBuf,
}

/// Serves until Ctrl-C or SIGTERM.
pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let path = args.config;
    let config = ServiceConfig::from_file(&path)?;
    let keys = config.load_keys()?;
    let service = start(&config, keys, shutdown_signal()).await?;
    eprintln!(
        "chaperone: serving http://{} (co-signer {}, log {})",
        service.local_addr, service.cosigner, service.origin
    );
    service.task.await.context("the server task failed")??;
    Ok(ExitCode::SUCCESS)
}

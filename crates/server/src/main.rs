//! `chaperone-server --config FILE [--log-format text|json]`: the service alone, from the configuration file that
//! `chaperone serve` reads (see deploy/chaperone.example.toml). The `chaperone` CLI is the
//! usual way to run it; this binary keeps the server crate's process tests (kill, restart)
//! free of the CLI.

use anyhow::{Context, bail};
use chaperone_server::{LogFormat, ServiceConfig, init_logging, start};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (path, format) = match args.as_slice() {
        [flag, path] if flag == "--config" => (path, LogFormat::Text),
        [flag, path, log, format] if flag == "--config" && log == "--log-format" => {
            (path, format.parse().map_err(anyhow::Error::msg)?)
        }
        _ => bail!("usage: chaperone-server --config FILE [--log-format text|json]"),
    };
    init_logging(format, tracing::Level::INFO);
    let config = ServiceConfig::from_file(path.as_ref())?;
    let keys = config.load_keys()?;
    let service = start(&config, keys, async {
        tokio::signal::ctrl_c().await.ok();
    })
    .await?;
    println!(
        "chaperone-server: co-signer {} on chain {}, listening on http://{}; log {} operated by {}",
        service.cosigner, config.chain_id, service.local_addr, service.origin, service.operator
    );
    service.task.await.context("the server task failed")?
}

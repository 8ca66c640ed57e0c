//! What every command uses: how results are shown, a provider that signs, the shutdown signal.

use alloy::{
    network::EthereumWallet,
    providers::{DynProvider, Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use anyhow::Context;
use serde::Serialize;

use crate::opts::redact_url;

/// How results are shown: text for people, one JSON document for scripts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    pub(crate) json: bool,
}

impl Output {
    /// Prints `value` as JSON, or `text` for people. The JSON goes through
    /// `serde_json::Value`, so its keys are sorted whatever type the value has (as every
    /// command has always printed them).
    pub(crate) fn result(&self, value: &impl Serialize, text: &str) -> anyhow::Result<()> {
        if self.json {
            println!("{}", serde_json::to_value(value)?);
        } else {
            println!("{text}");
        }
        Ok(())
    }

    /// A progress line for long work (stderr, so `--json` output stays clean).
    pub(crate) fn step(&self, text: &str) {
        if !self.json {
            eprintln!("  → {text}");
        }
    }

    /// A command's failure: `{"error": …}` on stdout for scripts, `error: …` on stderr. The
    /// RPC URL is shown without its path and query wherever the error quotes it (a provider's
    /// API key lives there, and transport errors repeat the URL).
    pub(crate) fn error(&self, e: &anyhow::Error, rpc_url: Option<&str>) {
        let mut text = format!("{e:#}");
        if let Some(url) = rpc_url.filter(|u| !u.is_empty()) {
            text = text.replace(url, &redact_url(url));
        }
        if self.json {
            println!("{}", serde_json::json!({ "error": text }));
        } else {
            eprintln!("error: {text}");
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM (what systemd sends to stop a unit). The handlers are
/// installed when this is called, not when the future is first polled: a Ctrl-C that arrives
/// right after the banner (before the server polls it) must still stop cleanly, so Anvil can
/// write its state, instead of killing the process.
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let handlers = signal(SignalKind::interrupt())
            .and_then(|int| Ok((int, signal(SignalKind::terminate())?)));
        async move {
            match handlers {
                Ok((mut int, mut term)) => {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    tokio::signal::ctrl_c().await.ok();
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        tokio::signal::ctrl_c().await.ok();
    }
}

/// A provider that signs with `key`, and the chain id it serves (asking proves it answers).
pub(crate) async fn signing_provider(
    rpc_url: &str,
    key: &PrivateKeySigner,
) -> anyhow::Result<(DynProvider, u64)> {
    let url = rpc_url
        .parse()
        .with_context(|| format!("--rpc-url {} is not a URL", redact_url(rpc_url)))?;
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(key.clone()))
        .connect_http(url)
        .erased();
    let chain_id = provider.get_chain_id().await.with_context(|| {
        format!(
            "{} does not answer (is the node running?)",
            redact_url(rpc_url)
        )
    })?;
    Ok((provider, chain_id))
}

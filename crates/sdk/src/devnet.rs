//! What `chaperone up` writes to `<data dir>/devnet.json`: everything an agent needs to run
//! against the local devnet. Development only: it holds private keys in the clear.

use std::path::Path;

use chaperone_core::{Address, B256};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A local devnet's URLs, contracts and demo keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevnetInfo {
    /// The Chaperone server.
    pub server_url: String,
    /// The chain's JSON-RPC URL.
    pub rpc_url: String,
    /// The chain id.
    pub chain_id: u64,
    /// The `AuditLog` contract.
    pub audit_log: Address,
    /// The log the server anchors to.
    pub log_id: B256,
    /// The `AgentWalletFactory`.
    pub wallet_factory: Address,
    /// The demo agent's wallet.
    pub wallet: Address,
    /// The wallet's owner (a human or a Safe in production).
    pub owner: Address,
    /// A demo ERC-20 the wallet holds (6 decimals).
    pub token: Address,
    /// The demo agent's address.
    pub agent: Address,
    /// The demo agent's private key (devnet only).
    pub agent_key: B256,
    /// The co-signer's (and log operator's) address.
    pub cosigner: Address,
    /// An admin bearer token for the server (devnet only).
    pub admin_token: String,
    /// The demo wallet's policy file.
    pub policy_file: String,
    /// The x402 facilitator `up` runs (x402-rs's), for merchants on the devnet; absent when
    /// the chain lacks what it needs (Permit2, ERC-6492's validator) or from an older `up`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facilitator_url: Option<String>,
    /// A second demo wallet that `up` funds but does not deploy: its first x402 payment
    /// deploys it (ERC-6492).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterfactual_wallet: Option<CounterfactualWallet>,
}

/// A payment wallet known by its predicted address before it exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterfactualWallet {
    /// Where it will be.
    pub address: Address,
    /// How it is deployed there.
    pub deployment: crate::Counterfactual,
}

impl DevnetInfo {
    /// Reads `devnet.json`.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Invalid(format!(
                "reading {}: {e} (start the devnet with `make up` first)",
                path.display()
            ))
        })?;
        serde_json::from_str(&text)
            .map_err(|e| Error::Invalid(format!("{} is not a devnet file: {e}", path.display())))
    }
}

/// How to run the `chaperone` CLI in a hint printed for people: `chaperone` when it is on the
/// `PATH` (after `cargo install --path crates/cli`), else the `cargo run` that works from a
/// clone of the repository.
pub fn chaperone_command() -> &'static str {
    let on_path = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| dir.join("chaperone").is_file())
    });
    if on_path {
        "chaperone"
    } else {
        "cargo run -p chaperone-cli --"
    }
}

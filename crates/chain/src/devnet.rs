use std::path::{Path, PathBuf};

use alloy::node_bindings::{Anvil, AnvilInstance};

use crate::{Error, Result};

/// The repository root (where `package.json` pins the toolchain).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")))
}

/// The pinned Anvil binary: `$CHAPERONE_ANVIL` if set, else the platform binary that npm
/// installed from `@foundry-rs/anvil`. (Not `node_modules/.bin/anvil`: that is a Node wrapper,
/// and stopping it would leave the real Anvil running.)
pub fn anvil_path() -> PathBuf {
    if let Some(path) = std::env::var_os("CHAPERONE_ANVIL") {
        return PathBuf::from(path);
    }
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        "windows" => "win32",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    workspace_root().join(format!(
        "node_modules/@foundry-rs/anvil-{os}-{arch}/bin/anvil"
    ))
}

/// A running local Anvil devnet; stopped when dropped.
#[derive(Debug)]
pub struct Devnet {
    anvil: AnvilInstance,
}

impl Devnet {
    /// Starts Anvil from the pinned toolchain on a free port, with its default funded accounts.
    pub fn start() -> Result<Self> {
        Self::start_with(|anvil| anvil)
    }

    /// Starts Anvil with extra configuration (e.g. a fixed port or block time).
    pub fn start_with(configure: impl FnOnce(Anvil) -> Anvil) -> Result<Self> {
        let path = anvil_path();
        if !path.exists() {
            return Err(Error::AnvilMissing(path.display().to_string()));
        }
        let anvil = configure(Anvil::at(path))
            .try_spawn()
            .map_err(|e| Error::AnvilStart(e.to_string()))?;
        Ok(Self { anvil })
    }

    /// The HTTP RPC URL.
    pub fn rpc_url(&self) -> String {
        self.anvil.endpoint()
    }

    /// The chain id.
    pub fn chain_id(&self) -> u64 {
        self.anvil.chain_id()
    }

    /// A signer for Anvil's funded dev account `index` (0 to 9).
    pub fn signer(&self, index: usize) -> alloy::signers::local::PrivateKeySigner {
        alloy::signers::local::PrivateKeySigner::from_signing_key(
            self.anvil.keys()[index].clone().into(),
        )
    }

    /// The Anvil instance.
    pub fn anvil(&self) -> &AnvilInstance {
        &self.anvil
    }

    /// Stops Anvil gracefully: SIGTERM lets it write its `--state` file before it exits.
    /// (Dropping a `Devnet` kills it at once.) Waits up to ten seconds.
    pub fn stop(mut self) {
        let child = self.anvil.child_mut();
        #[cfg(unix)]
        {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
        }
        for _ in 0..100 {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

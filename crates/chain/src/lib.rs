//! Chaperone's chain layer: contract bindings generated from the committed Foundry artifacts
//! in `contracts/out/`, deployment of the contracts, and a local Anvil devnet from the pinned
//! toolchain.

mod bindings;
mod deploy;
mod devnet;
mod error;

pub use bindings::{AgentWallet, AgentWalletFactory, AuditLog, TestToken};
pub use deploy::{
    CREATE2_DEPLOYER, Deployment, create_log, create_wallet, deploy, deploy_deterministic,
    deterministic_addresses,
};
pub use devnet::{Devnet, anvil_path, workspace_root};
pub use error::{Error, Result};

//! Chaperone's chain layer: contract bindings generated from the committed Foundry artifacts
//! in `contracts/out/`, deployment of the contracts, and a local Anvil devnet from the pinned
//! toolchain.

mod bindings;
mod deploy;
mod devnet;
mod error;

pub use bindings::{
    AgentWallet, AgentWalletFactory, AuditLog, Multicall3, Permit2, TestToken,
    UniversalSigValidator, X402ExactPermit2Proxy, x402_proxy,
};
pub use deploy::{
    CREATE2_DEPLOYER, Deployment, MULTICALL3, NewWallet, UNIVERSAL_SIG_VALIDATOR, WalletStart,
    create_log, deploy, deploy_deterministic, deterministic_addresses, install_x402_contracts,
};
pub use devnet::{Devnet, anvil_path, workspace_root};
pub use error::{Error, Result};

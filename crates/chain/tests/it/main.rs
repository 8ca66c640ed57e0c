//! End-to-end tests of the contracts on a real Anvil (from the pinned toolchain).
#![allow(missing_docs, unreachable_pub, clippy::unwrap_used)]

mod audit_log;
mod wallet;

use alloy::{
    network::EthereumWallet,
    providers::{DynProvider, Provider, ProviderBuilder},
};
use chaperone_chain::{Deployment, Devnet, deploy};

/// A devnet with both contracts deployed, and a provider sending from dev account 0.
pub struct Fixture {
    pub devnet: Devnet,
    pub provider: DynProvider,
    pub deployment: Deployment,
}

impl Fixture {
    pub async fn new() -> Self {
        // Fails with the install command if the pinned Anvil is missing; never skips.
        let devnet = Devnet::start().unwrap_or_else(|e| panic!("{e}"));
        let provider = Self::provider_for(&devnet, 0);
        let deployment = deploy(&provider).await.unwrap();
        Self {
            devnet,
            provider,
            deployment,
        }
    }

    pub fn provider_for(devnet: &Devnet, account: usize) -> DynProvider {
        ProviderBuilder::new()
            .wallet(EthereumWallet::from(devnet.signer(account)))
            .connect_http(devnet.rpc_url().parse().unwrap())
            .erased()
    }
}

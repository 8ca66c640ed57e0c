//! A local Anvil devnet and providers sending from its funded accounts.

use alloy::{
    network::EthereumWallet,
    providers::{DynProvider, Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use chaperone_chain::Devnet;

/// Starts Anvil from the pinned toolchain. When it is missing the test fails with the
/// install command (`make toolchain`); it never skips.
#[track_caller]
pub fn devnet() -> Devnet {
    match Devnet::start() {
        Ok(devnet) => devnet,
        Err(e) => panic!("{e}"),
    }
}

/// A provider on `devnet` sending from its funded dev account `account` (0 to 9).
pub fn provider(devnet: &Devnet, account: usize) -> DynProvider {
    provider_with(devnet, devnet.signer(account))
}

/// A provider on `devnet` sending from `signer`.
pub fn provider_with(devnet: &Devnet, signer: PrivateKeySigner) -> DynProvider {
    ProviderBuilder::new()
        .wallet(EthereumWallet::from(signer))
        .connect_http(devnet.rpc_url().parse().expect("Anvil's RPC URL parses"))
        .erased()
}

//! End-to-end tests of the contracts on a real Anvil (from the pinned toolchain).
#![allow(missing_docs, unreachable_pub, clippy::unwrap_used)]

mod audit_log;
mod wallet;

use alloy::providers::DynProvider;
use chaperone_chain::{Deployment, Devnet, deploy};
use chaperone_testkit::{devnet, provider};

/// A devnet with both contracts deployed, and a provider sending from dev account 0.
pub struct Fixture {
    pub devnet: Devnet,
    pub provider: DynProvider,
    pub deployment: Deployment,
}

impl Fixture {
    pub async fn new() -> Self {
        // Fails with the install command if the pinned Anvil is missing; never skips.
        let devnet = devnet();
        let provider = provider(&devnet, 0);
        let deployment = deploy(&provider).await.unwrap();
        Self {
            devnet,
            provider,
            deployment,
        }
    }
}

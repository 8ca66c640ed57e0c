//! The x402 facilitator `chaperone up` runs beside the devnet: x402-rs's own
//! (`x402-facilitator-local` with `x402-chain-eip155`'s "exact" scheme, x402 v1 and v2), so
//! merchants on the devnet verify and settle payments with a facilitator that is not
//! Chaperone's. It checks a payment (EIP-3009 or Permit2, EOA, EIP-1271 or ERC-6492
//! signatures) by simulating it, and settles it from its own account, an Anvil dev account
//! that pays the gas.

use std::{collections::HashMap, sync::Arc};

use anyhow::Context;
use x402_chain_eip155::{
    V1Eip155Exact, V2Eip155Exact,
    chain::{
        Eip155ChainProvider, Eip155ChainReference,
        config::{Eip155ChainConfig, Eip155ChainConfigInner},
    },
};
use x402_facilitator_local::{FacilitatorLocal, handlers};
use x402_types::{
    chain::{ChainId, ChainProviderOps, ChainRegistry, FromConfig},
    scheme::{
        SchemeBlueprints, SchemeConfig, SchemeRegistry, X402SchemeFacilitator,
        X402SchemeFacilitatorBuilder,
    },
};

/// The one chain the facilitator serves (a newtype so x402-rs's schemes can be built from a
/// reference to it, as its own facilitator binary does with its chain enum).
struct DevnetChain(Arc<Eip155ChainProvider>);

impl ChainProviderOps for DevnetChain {
    fn signer_addresses(&self) -> Vec<String> {
        self.0.signer_addresses()
    }

    fn chain_id(&self) -> ChainId {
        self.0.chain_id()
    }
}

type Built = Result<Box<dyn X402SchemeFacilitator>, Box<dyn std::error::Error>>;

impl X402SchemeFacilitatorBuilder<&DevnetChain> for V2Eip155Exact {
    fn build(&self, chain: &DevnetChain, config: Option<serde_json::Value>) -> Built {
        self.build(Arc::clone(&chain.0), config)
    }
}

impl X402SchemeFacilitatorBuilder<&DevnetChain> for V1Eip155Exact {
    fn build(&self, chain: &DevnetChain, config: Option<serde_json::Value>) -> Built {
        self.build(Arc::clone(&chain.0), config)
    }
}

/// Serves the facilitator on `listener` for chain `chain_id` at `rpc_url`, settling from the
/// account of `key` (hex). The chain must have x402-rs's required contracts (ERC-6492's
/// validator, Permit2 and the x402 Permit2 proxy at their canonical addresses).
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    rpc_url: &str,
    chain_id: u64,
    key: &str,
) -> anyhow::Result<()> {
    let inner: Eip155ChainConfigInner = serde_json::from_value(serde_json::json!({
        "signers": [key],
        "rpc": [{ "http": rpc_url }],
    }))
    .context("the facilitator's chain configuration")?;
    let config = Eip155ChainConfig {
        chain_reference: Eip155ChainReference::new(chain_id),
        inner,
    };
    let provider = Eip155ChainProvider::from_config(&config)
        .await
        .map_err(|e| anyhow::anyhow!("the x402 facilitator cannot use {rpc_url}: {e}"))?;
    let chain = DevnetChain(Arc::new(provider));
    let caip2 = chain.chain_id();
    let chains = ChainRegistry::new(HashMap::from([(caip2.clone(), chain)]));
    let blueprints = SchemeBlueprints::new()
        .and_register(V1Eip155Exact)
        .and_register(V2Eip155Exact);
    let schemes: Vec<SchemeConfig> = ["v1-eip155-exact", "v2-eip155-exact"]
        .iter()
        .map(|id| {
            serde_json::from_value(serde_json::json!({ "id": id, "chains": caip2.to_string() }))
        })
        .collect::<Result<_, _>>()
        .context("the facilitator's schemes")?;
    let registry = SchemeRegistry::build(chains, blueprints, &schemes);
    let app = handlers::routes().with_state(Arc::new(FacilitatorLocal::new(registry)));
    axum::serve(listener, app)
        .await
        .context("the x402 facilitator stopped")
}

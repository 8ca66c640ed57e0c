//! Starts a local Anvil devnet from the pinned toolchain, deploys Chaperone's contracts and
//! prints where they are. Runs until Ctrl-C. (`chaperone up` will grow from this.)

use alloy::{
    network::EthereumWallet,
    providers::{Provider, ProviderBuilder},
};
use anyhow::Context;
use chaperone_chain::{Devnet, deploy};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let port: u16 = match std::env::args().skip_while(|a| a != "--port").nth(1) {
        Some(p) => p.parse().context("--port takes a port number")?,
        None => 8545,
    };
    let devnet = Devnet::start_with(|anvil| anvil.port(port))
        .with_context(|| format!("starting Anvil on port {port} (is the port free?)"))?;
    let deployer = devnet.signer(0);
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(deployer.clone()))
        .connect_http(devnet.rpc_url().parse()?);
    let deployment = deploy(&provider).await.context("deploying the contracts")?;
    let chain_id = provider.get_chain_id().await?;

    println!("Chaperone devnet is running (Ctrl-C to stop)");
    println!("  RPC URL               {}", devnet.rpc_url());
    println!("  chain id              {chain_id}");
    println!("  AuditLog              {}", deployment.audit_log);
    println!("  AgentWalletFactory    {}", deployment.wallet_factory);
    println!(
        "  AgentWallet (impl.)   {}",
        deployment.wallet_implementation
    );
    println!("  deployer (Anvil #0)   {}", deployer.address());
    println!(
        "  deployer key          {} (Anvil's public dev key)",
        deployer.to_bytes()
    );

    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    println!("stopping Anvil");
    Ok(())
}

use alloy::{primitives::Address, providers::Provider};

use crate::{AgentWalletFactory, AuditLog, Result};

/// Addresses of a Chaperone deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deployment {
    /// The `AuditLog` contract.
    pub audit_log: Address,
    /// The `AgentWalletFactory` contract.
    pub wallet_factory: Address,
    /// The `AgentWallet` implementation the factory clones.
    pub wallet_implementation: Address,
}

/// Deploys `AuditLog` and `AgentWalletFactory` (which deploys the wallet implementation) from
/// the provider's default sender.
pub async fn deploy<P: Provider>(provider: &P) -> Result<Deployment> {
    let audit_log = AuditLog::deploy(provider).await?;
    let factory = AgentWalletFactory::deploy(provider).await?;
    let wallet_implementation = factory.implementation().call().await?;
    Ok(Deployment {
        audit_log: *audit_log.address(),
        wallet_factory: *factory.address(),
        wallet_implementation,
    })
}

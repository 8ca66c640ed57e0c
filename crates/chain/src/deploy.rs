use alloy::{
    primitives::{Address, B256, Bytes, U256, address, keccak256},
    providers::Provider,
    rpc::types::TransactionRequest,
    sol_types::SolCall,
};

use crate::{
    AgentWalletFactory, AuditLog, Error, Multicall3, Permit2, Result, UniversalSigValidator,
    X402ExactPermit2Proxy,
};

/// The deterministic-deployment proxy (Arachnid's CREATE2 factory): the same address on
/// Anvil and on nearly every EVM chain, so a salt gives the same contract addresses everywhere.
pub const CREATE2_DEPLOYER: Address = address!("0x4e59b44847b379578588920ca78fbf26c0b4956c");

/// ERC-6492's universal signature validator, where x402 facilitators call it.
pub const UNIVERSAL_SIG_VALIDATOR: Address = address!("0xdAcD51A54883eb67D95FAEb2BBfdC4a9a6BD2a3B");
/// Multicall3's canonical address.
pub const MULTICALL3: Address = address!("0xcA11bde05977b3631167028862bE2a173976CA11");

/// Installs what x402 needs beside a token at the canonical addresses the x402 facilitators
/// use: Permit2, the x402 exact Permit2 proxy, ERC-6492's validator and Multicall3 (the
/// devnet versions of contracts/src/devnet/). Anvil only (`anvil_setCode`: Anvil has none of
/// them, and they are stateless or compute their domain per call, so no constructor is
/// needed). Idempotent: an address that has code is left alone.
pub async fn install_x402_contracts<P: Provider>(provider: &P) -> Result<()> {
    for (address, code) in [
        (chaperone_core::PERMIT2, &Permit2::DEPLOYED_BYTECODE),
        (
            chaperone_core::X402_PERMIT2_PROXY,
            &X402ExactPermit2Proxy::DEPLOYED_BYTECODE,
        ),
        (
            UNIVERSAL_SIG_VALIDATOR,
            &UniversalSigValidator::DEPLOYED_BYTECODE,
        ),
        (MULTICALL3, &Multicall3::DEPLOYED_BYTECODE),
    ] {
        if provider.get_code_at(address).await?.is_empty() {
            provider
                .raw_request::<_, ()>("anvil_setCode".into(), (address, code))
                .await?;
        }
    }
    Ok(())
}

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
/// the provider's default sender, at addresses that depend on the sender's nonce.
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

/// The addresses [`deploy_deterministic`] deploys to with `salt` (on any chain).
pub fn deterministic_addresses(salt: B256) -> (Address, Address) {
    (
        CREATE2_DEPLOYER.create2(salt, keccak256(&AuditLog::BYTECODE)),
        CREATE2_DEPLOYER.create2(salt, keccak256(&AgentWalletFactory::BYTECODE)),
    )
}

/// Deploys both contracts through [`CREATE2_DEPLOYER`], so their addresses depend only on the
/// artifacts and `salt`. Idempotent: a contract already at its address is left as it is.
pub async fn deploy_deterministic<P: Provider>(provider: &P, salt: B256) -> Result<Deployment> {
    if provider.get_code_at(CREATE2_DEPLOYER).await?.is_empty() {
        return Err(Error::NoCreate2Deployer(CREATE2_DEPLOYER));
    }
    let (audit_log, wallet_factory) = deterministic_addresses(salt);
    for (address, init_code) in [
        (audit_log, &AuditLog::BYTECODE),
        (wallet_factory, &AgentWalletFactory::BYTECODE),
    ] {
        if !provider.get_code_at(address).await?.is_empty() {
            continue;
        }
        let mut data = salt.to_vec();
        data.extend_from_slice(init_code);
        let tx = TransactionRequest::default()
            .to(CREATE2_DEPLOYER)
            .input(Bytes::from(data).into());
        let receipt = provider.send_transaction(tx).await?.get_receipt().await?;
        if !receipt.status() || provider.get_code_at(address).await?.is_empty() {
            return Err(Error::Reverted(receipt.transaction_hash));
        }
    }
    let wallet_implementation = AgentWalletFactory::new(wallet_factory, provider)
        .implementation()
        .call()
        .await?;
    Ok(Deployment {
        audit_log,
        wallet_factory,
        wallet_implementation,
    })
}

/// Creates a log operated by `operator` (owned by the sender); returns its id.
pub async fn create_log<P: Provider>(
    provider: &P,
    audit_log: Address,
    operator: Address,
) -> Result<B256> {
    let receipt = AuditLog::new(audit_log, provider)
        .createLog(operator)
        .send()
        .await?
        .get_receipt()
        .await?;
    receipt
        .decoded_log::<AuditLog::LogCreated>()
        .map(|log| log.logId)
        .ok_or(Error::MissingEvent(receipt.transaction_hash))
}

/// A wallet to deploy through `AgentWalletFactory`: its keys and what it starts with.
///
/// Each [`WalletStart`] is a factory entry point with an address domain of its own, and the
/// address binds every field: the address [`NewWallet::predict`] gives (which an owner may fund
/// before deployment) can only ever hold this very wallet. Payment wallets, deployed by their
/// first x402 payment, are the SDK's `Counterfactual`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewWallet {
    /// The factory.
    pub factory: Address,
    /// The wallet's owner (an EOA or a Safe).
    pub owner: Address,
    /// The agent's signing address.
    pub agent: Address,
    /// The policy service's signing address.
    pub cosigner: Address,
    /// Any value: distinct salts give distinct wallets for the same keys.
    pub salt: B256,
    /// What it starts with.
    pub start: WalletStart,
}

/// What a new wallet starts with, which picks the factory entry point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalletStart {
    /// No backstop (`createWallet`): it spends nothing until the owner sets one.
    Bare,
    /// Its first backstop (`createWalletWithBackstop`), ready to spend in one transaction.
    Backstop {
        /// The backstop's token, or `Address::ZERO` for native currency.
        token: Address,
        /// The limit per period.
        limit: U256,
        /// The period in seconds (non-zero).
        period: u32,
    },
}

impl NewWallet {
    /// The address the factory deploys this wallet to (its own `predict…` view).
    pub async fn predict<P: Provider>(&self, provider: &P) -> Result<Address> {
        let factory = AgentWalletFactory::new(self.factory, provider);
        let (owner, agent, cosigner, salt) = (self.owner, self.agent, self.cosigner, self.salt);
        Ok(match self.start {
            WalletStart::Bare => factory.predict(owner, agent, cosigner, salt).call().await?,
            WalletStart::Backstop {
                token,
                limit,
                period,
            } => {
                factory
                    .predictWalletWithBackstop(owner, agent, cosigner, salt, token, limit, period)
                    .call()
                    .await?
            }
        })
    }

    /// Deploys the wallet; returns its address, checked against the prediction.
    pub async fn create<P: Provider>(&self, provider: &P) -> Result<Address> {
        let predicted = self.predict(provider).await?;
        let (owner, agent, cosigner, salt) = (self.owner, self.agent, self.cosigner, self.salt);
        let calldata = match self.start {
            WalletStart::Bare => AgentWalletFactory::createWalletCall {
                owner,
                agent,
                cosigner,
                salt,
            }
            .abi_encode(),
            WalletStart::Backstop {
                token,
                limit,
                period,
            } => AgentWalletFactory::createWalletWithBackstopCall {
                owner,
                agent,
                cosigner,
                salt,
                token,
                limit,
                period,
            }
            .abi_encode(),
        };
        let tx = TransactionRequest::default()
            .to(self.factory)
            .input(Bytes::from(calldata).into());
        let receipt = provider.send_transaction(tx).await?.get_receipt().await?;
        if !receipt.status() {
            return Err(Error::Reverted(receipt.transaction_hash));
        }
        let created = receipt
            .decoded_log::<AgentWalletFactory::WalletCreated>()
            .map(|log| log.wallet)
            .ok_or(Error::MissingEvent(receipt.transaction_hash))?;
        if created != predicted {
            return Err(Error::UnexpectedAddress { predicted, created });
        }
        Ok(created)
    }
}

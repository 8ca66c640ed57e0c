/// Errors of the chain layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pinned Anvil binary is not installed.
    #[error("anvil not found at {0}: run `make toolchain` in the repository root")]
    AnvilMissing(String),
    /// Anvil failed to start.
    #[error("could not start anvil: {0}")]
    AnvilStart(String),
    /// A contract call or deployment failed (including reverts, decoded where possible).
    #[error("contract call failed: {0}")]
    Contract(#[from] alloy::contract::Error),
    /// A transaction was sent but its receipt could not be obtained.
    #[error("transaction failed: {0}")]
    Transaction(#[from] alloy::providers::PendingTransactionError),
    /// An RPC request failed.
    #[error("rpc error: {0}")]
    Rpc(#[from] alloy::transports::TransportError),
    /// A transaction was mined but reverted.
    #[error("transaction {0} reverted")]
    Reverted(alloy::primitives::TxHash),
    /// The chain has no CREATE2 deployment proxy for deterministic addresses.
    #[error("no CREATE2 deployer at {0} on this chain: deploy it first (see deploy/README.md)")]
    NoCreate2Deployer(alloy::primitives::Address),
    /// An expected event was missing from a receipt.
    #[error("receipt of {0} lacks the expected event")]
    MissingEvent(alloy::primitives::TxHash),
    /// The factory deployed a wallet somewhere other than where it predicted.
    #[error("the factory deployed the wallet at {created}, not at its predicted {predicted}")]
    UnexpectedAddress {
        /// Where the factory's view said it would be.
        predicted: alloy::primitives::Address,
        /// Where it is.
        created: alloy::primitives::Address,
    },
}

/// Result with the chain [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

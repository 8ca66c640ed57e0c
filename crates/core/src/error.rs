use crate::{Address, B256};

/// Everything that can go wrong in the core crate. Each variant names the exact check that
/// failed, so callers (the server's 4xx responses, the CLI) can show it as is.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// A record's binary encoding is malformed or not canonical.
    #[error("non-canonical record encoding: {0}")]
    RecordEncoding(&'static str),
    /// A record field is out of range (e.g. an empty or oversized model id).
    #[error("invalid record: {0}")]
    InvalidRecord(&'static str),
    /// A leaf index is not below the tree size.
    #[error("leaf index {index} is out of range for tree size {size}")]
    IndexOutOfRange {
        /// The requested index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// A tree size is larger than the log, or sizes are in the wrong order.
    #[error("tree size {requested} is not available (log size {available})")]
    SizeOutOfRange {
        /// The requested size.
        requested: u64,
        /// The log's current size, or the upper size of a consistency pair.
        available: u64,
    },
    /// The node store does not hold a node that a proof needs.
    #[error("node store is missing node (level {level}, index {index})")]
    MissingNode {
        /// The node's level (0 = leaves).
        level: u8,
        /// The node's index within its level.
        index: u64,
    },
    /// An inclusion proof does not lead to the expected root.
    #[error("inclusion proof does not verify")]
    InclusionProofInvalid,
    /// A consistency proof does not connect the two roots.
    #[error("consistency proof does not verify")]
    ConsistencyProofInvalid,
    /// A signature is malformed, high-s, or does not recover to a key.
    #[error("invalid signature: {0}")]
    InvalidSignature(&'static str),
    /// A signature recovered to another address than expected.
    #[error("signature is by {recovered}, expected {expected}")]
    WrongSigner {
        /// The address the signature must come from.
        expected: Address,
        /// The address it came from.
        recovered: Address,
    },
    /// A batch breaks an agent's chain: wrong agent, sequence gap, or wrong previous hash.
    #[error("invalid batch: {0}")]
    InvalidBatch(String),
    /// A signed note or checkpoint is malformed.
    #[error("malformed checkpoint note: {0}")]
    CheckpointFormat(&'static str),
    /// A signed note carries no signature from the expected key.
    #[error("checkpoint carries no valid signature from {0}")]
    CheckpointUnsigned(String),
    /// Disclosed content does not open its commitment.
    #[error("disclosed {0} does not match its commitment")]
    CommitmentMismatch(&'static str),
    /// A disclosure bundle is inconsistent with itself.
    #[error("inconsistent disclosure bundle: {0}")]
    Disclosure(&'static str),
    /// A bundle's checkpoint root does not match the root it was proven against.
    #[error("checkpoint root {checkpoint} differs from proof root {proof}")]
    RootMismatch {
        /// The checkpoint's root.
        checkpoint: B256,
        /// The root the proof computed.
        proof: B256,
    },
    /// The operating system's random number generator failed.
    #[error("random number generator failed")]
    Random,
}

/// Result with the core [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

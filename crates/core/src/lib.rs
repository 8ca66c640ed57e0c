//! Chaperone's pure core: the audit record format, salted commitments, the RFC 9162 Merkle log
//! with inclusion and consistency proofs, signed checkpoints and disclosure bundles.
//!
//! Nothing here does I/O. Storage of tree nodes is behind [`NodeStore`]; proofs are planned as
//! lists of [`NodeId`]s so that a database-backed store can fetch them in one query.

mod batch;
mod checkpoint;
mod commitment;
mod disclosure;
mod eip712;
mod error;
mod hash;
mod keys;
mod log;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod policy;
mod proof;
pub mod readable;
mod receipt;
mod record;

pub use alloy_primitives::{Address, B256, Bytes, Signature, U256, keccak256};
pub use batch::{BatchMembership, SignedBatch, batch_message};
pub use checkpoint::{Checkpoint, CheckpointVerifier, SignedCheckpoint, checkpoint_key_id};
pub use commitment::{Commitment, CommitmentKind, Opening, Salt};
pub use disclosure::{DisclosedContent, DisclosureBundle, VerifiedDisclosure};
pub use eip712::{
    AgentMessage, Call, Eip3009Kind, Execute, PERMIT2, PERMIT2_SLOTS, PaymentCall,
    PermitWitnessTransferFrom, TokenDomain, TokenPermissions, TransferWithAuthorization, Witness,
    X402_PERMIT2_PROXY, authorization_nonce, wallet_domain,
};
pub use error::{Error, Result};
pub use hash::{EMPTY_ROOT, leaf_hash, node_hash};
pub use keys::{Secp256k1Signer, recover_low_s, recover_low_s_k256};
pub use log::{Frontier, MemoryNodeStore, MerkleLog, NodeId, NodeStore};
pub use proof::{ConsistencyProof, InclusionProof, ProofPlan, SubtreeRange};
pub use receipt::{BatchReceipt, RECEIVE_TIME_TOLERANCE_MS, receipt_message};
pub use record::{MAX_MODEL_ID_LEN, RECORD_VERSION, Record};

//! The audit log: `POST /v1/records`, `GET /v1/records/{leaf_hash}/proof`,
//! `GET /v1/checkpoints/latest`, `POST /v1/verify` (which takes a
//! [`chaperone_core::DisclosureBundle`]).

use chaperone_core::{
    Address, B256, BatchMembership, BatchReceipt, InclusionProof, Record, Signature,
};
use serde::{Deserialize, Serialize};

/// A signed batch as the agent sends it (the fields of `SignedBatch`, nothing else).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IngestBody {
    /// The records, in the agent's sequence.
    pub records: Vec<Record>,
    /// The agent's signature over the batch.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::SignatureJson))]
    pub signature: Signature,
}

/// Where a record landed in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordPosition {
    /// The record's leaf hash.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub leaf_hash: B256,
    /// Its index in the log.
    pub index: u64,
}

/// The answer to `POST /v1/records`: the operator's signed receipt and each record's place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IngestResponse {
    /// The operator's promise to include the batch.
    pub receipt: BatchReceipt,
    /// Each record's place.
    pub records: Vec<RecordPosition>,
    /// Whether the batch had been received before.
    pub replayed: bool,
}

/// Where a checkpoint was anchored, as the server reports it (a verifier trusts only the
/// chain).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AnchorView {
    /// The `AuditLog` contract.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chaperone_core::openapi::HexAddress>))]
    pub audit_log: Option<Address>,
    /// The log's id in it.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chaperone_core::openapi::Hex32>))]
    pub log_id: Option<B256>,
    /// The anchored tree size.
    pub size: u64,
    /// The anchoring transaction.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub tx_hash: B256,
    /// Its block.
    pub block_number: u64,
}

/// A record with everything needed to check it is in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProofResponse {
    /// The record's leaf hash.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub leaf_hash: B256,
    /// Its index in the log.
    pub index: u64,
    /// The record (commitments only).
    pub record: Record,
    /// Its place in the agent's signed batch.
    pub batch: BatchMembership,
    /// Its inclusion in the checkpointed tree.
    pub inclusion: InclusionProof,
    /// The signed checkpoint note.
    pub checkpoint: String,
    /// Where that checkpoint was anchored, if it was.
    pub anchor: Option<AnchorView>,
}

/// The latest signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckpointResponse {
    /// The tree size.
    pub size: u64,
    /// The tree's root.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub root: B256,
    /// The signed note.
    pub note: String,
    /// Where it was anchored, if it was.
    pub anchor: Option<AnchorView>,
}

/// A disclosure verified against the log and the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyResponse {
    /// Always true: a disclosure that does not verify is refused with its reason.
    pub valid: bool,
    /// The record's leaf hash.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub leaf_hash: B256,
    /// Its index in the log.
    pub index: u64,
    /// The agent that signed it.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::HexAddress))]
    pub agent: Address,
    /// The checkpoint it was proved against.
    pub checkpoint_size: u64,
    /// That checkpoint's root.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub checkpoint_root: B256,
    /// The `AuditLog` contract the root is anchored in.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::HexAddress))]
    pub audit_log: Address,
    /// The log's id in it.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub log_id: B256,
    /// The anchoring transaction, when the server knows it.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chaperone_core::openapi::Hex32>))]
    pub anchor_tx: Option<B256>,
}

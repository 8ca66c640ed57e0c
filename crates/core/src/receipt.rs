//! The operator's promise to include a batch of records, returned at ingestion before anchoring
//! (like a Certificate Transparency SCT).
//!
//! The operator signs once per batch, for the same reason agents do: per-record ECDSA would cap
//! ingestion. The receipt names the batch's root (the RFC 9162 root of its records' leaf hashes,
//! the same root the agent signed) and the log index of its first record, so one record's
//! receipt is checked with the [`BatchMembership`] that places it in the batch.

use serde::{Deserialize, Serialize};

use crate::{
    Address, B256, BatchMembership, Error, InclusionProof, Result, Secp256k1Signer, Signature,
    keys::recover_low_s,
};

/// How far a record's receive time (the log operator's clock, [`BatchReceipt::timestamp_ms`])
/// may stray from the clocks an auditor compares it with, in ms: the chain's block time of the
/// first anchoring that holds the record (it cannot have been received after), and the time
/// the policy service signed into its own records (they are logged after what they record).
///
/// Why 30 s: a batch is dated by the clock of the replica that appends it, and replicas decide
/// only within `MAX_CLOCK_SKEW_SECS` (5 s) of the database's clock, so two of them may be 10 s
/// apart; a block's time is its sequencer's clock or its slot's start (12 s slots on Ethereum,
/// before the block is seen). 30 s covers both with room to spare, and it is all that a bundle
/// editor gains: a receive time moved at most 30 s past an anchoring or before a signed time.
/// The store warns when its receive times run further ahead of its clock than this.
pub const RECEIVE_TIME_TOLERANCE_MS: u64 = 30_000;

/// The message an operator signs for a receipt (EIP-191 over these bytes).
pub fn receipt_message(
    origin: &str,
    first_index: u64,
    size: u64,
    batch_root: &B256,
    timestamp_ms: u64,
) -> Vec<u8> {
    let mut message = Vec::with_capacity(21 + origin.len() + 1 + 8 + 8 + 32 + 8);
    message.extend_from_slice(b"chaperone/receipt/v1\0");
    message.extend_from_slice(origin.as_bytes());
    message.push(b'\n');
    message.extend_from_slice(&first_index.to_be_bytes());
    message.extend_from_slice(&size.to_be_bytes());
    message.extend_from_slice(batch_root.as_slice());
    message.extend_from_slice(&timestamp_ms.to_be_bytes());
    message
}

/// A signed promise that the records of one batch sit at `[first_index, first_index + size)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchReceipt {
    /// The log's origin (as in its checkpoints).
    pub origin: String,
    /// Log index of the batch's first record.
    pub first_index: u64,
    /// Number of records in the batch.
    pub size: u64,
    /// RFC 9162 root of the batch's leaf hashes.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Hex32))]
    pub batch_root: B256,
    /// When the log accepted the batch (ms since the Unix epoch).
    pub timestamp_ms: u64,
    /// The operator's signature over [`receipt_message`].
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::SignatureJson))]
    pub signature: Signature,
}

impl BatchReceipt {
    /// Signs a receipt as the log operator.
    pub fn sign(
        origin: &str,
        first_index: u64,
        size: u64,
        batch_root: B256,
        timestamp_ms: u64,
        operator: &Secp256k1Signer,
    ) -> Result<Self> {
        let message = receipt_message(origin, first_index, size, &batch_root, timestamp_ms);
        Ok(Self {
            origin: origin.to_owned(),
            first_index,
            size,
            batch_root,
            timestamp_ms,
            signature: operator.sign_message(&message)?,
        })
    }

    /// Checks the operator's signature.
    pub fn verify(&self, operator: Address) -> Result<()> {
        let message = receipt_message(
            &self.origin,
            self.first_index,
            self.size,
            &self.batch_root,
            self.timestamp_ms,
        );
        let recovered = recover_low_s(
            &self.signature,
            &alloy_primitives::eip191_hash_message(message),
        )?;
        if recovered != operator {
            return Err(Error::WrongSigner {
                expected: operator,
                recovered,
            });
        }
        Ok(())
    }

    /// Checks that the operator promised `leaf` at log index `first_index + membership.index`:
    /// the signature, and the membership path from `leaf` to the receipt's batch root.
    pub fn verify_record(
        &self,
        operator: Address,
        leaf: &B256,
        membership: &BatchMembership,
    ) -> Result<u64> {
        self.verify(operator)?;
        if membership.size != self.size {
            return Err(Error::InvalidBatch(
                "the membership proof is for a batch of another size".into(),
            ));
        }
        let proof = InclusionProof {
            index: membership.index,
            size: membership.size,
            path: membership.path.clone(),
        };
        let root = proof.root_from(leaf)?;
        if root != self.batch_root {
            return Err(Error::InvalidBatch(
                "the record is not in the batch this receipt covers".into(),
            ));
        }
        Ok(self.first_index + membership.index)
    }
}

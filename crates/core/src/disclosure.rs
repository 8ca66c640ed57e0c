//! What an agent hands an auditor to prove one model call: the content and salts it chooses to
//! reveal, the record, proof that the agent signed it, and proof that it is in a signed
//! checkpoint of the log.

use serde::{Deserialize, Serialize};

use crate::{
    B256, BatchMembership, Bytes, Checkpoint, CheckpointVerifier, CommitmentKind, Error,
    InclusionProof, Record, Result, Salt, SignedCheckpoint,
};

/// One revealed commitment opening.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DisclosedContent {
    /// Which of the record's commitments this opens.
    pub kind: CommitmentKind,
    /// The salt.
    pub salt: Salt,
    /// The content.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexBytes))]
    pub content: Bytes,
}

/// A self-contained disclosure of one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DisclosureBundle {
    /// The record.
    pub record: Record,
    /// Openings the agent chose to reveal (any of input, output, metadata).
    pub disclosed: Vec<DisclosedContent>,
    /// Proof the agent signed the record (as part of a batch).
    pub batch: BatchMembership,
    /// Proof the record is in the log at the checkpoint's size.
    pub inclusion: InclusionProof,
    /// The operator's signed checkpoint note.
    pub checkpoint: String,
}

/// What a successful [`DisclosureBundle::verify`] establishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedDisclosure {
    /// The record's leaf hash.
    pub leaf_hash: B256,
    /// The record's index in the log.
    pub index: u64,
    /// The verified checkpoint; the caller checks it against the chain anchor.
    pub checkpoint: Checkpoint,
}

impl DisclosureBundle {
    /// Checks everything but the on-chain anchor: each opening against its commitment, the
    /// agent's batch signature, the checkpoint's signature, and the record's inclusion in it.
    pub fn verify(&self, operator: &CheckpointVerifier) -> Result<VerifiedDisclosure> {
        let mut seen = Vec::with_capacity(self.disclosed.len());
        for d in &self.disclosed {
            if seen.contains(&d.kind) {
                return Err(Error::Disclosure("the same commitment is disclosed twice"));
            }
            seen.push(d.kind);
            let commitment = match d.kind {
                CommitmentKind::Input => self.record.input,
                CommitmentKind::Output => self.record.output,
                CommitmentKind::Metadata => self.record.metadata.ok_or(Error::Disclosure(
                    "metadata disclosed but the record has none",
                ))?,
            };
            commitment.verify(d.kind, &d.salt, &d.content)?;
        }
        self.batch.verify(&self.record)?;
        let checkpoint = SignedCheckpoint::verify(&self.checkpoint, operator)?.checkpoint;
        if self.inclusion.size != checkpoint.size {
            return Err(Error::Disclosure(
                "inclusion proof is for another tree size",
            ));
        }
        let leaf_hash = self.record.leaf_hash()?;
        let root = self.inclusion.root_from(&leaf_hash)?;
        if root != checkpoint.root {
            return Err(Error::RootMismatch {
                checkpoint: checkpoint.root,
                proof: root,
            });
        }
        Ok(VerifiedDisclosure {
            leaf_hash,
            index: self.inclusion.index,
            checkpoint,
        })
    }
}

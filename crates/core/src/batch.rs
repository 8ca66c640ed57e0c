//! Batches of records under one agent signature.
//!
//! Per-record ECDSA would cap ingestion at the signer's rate, so an agent signs the RFC 9162
//! Merkle root of a batch's leaf hashes once. A single record is later proven to be in a signed
//! batch by a [`BatchMembership`]: its index, the batch size, the audit path and the signature.

use serde::{Deserialize, Serialize};

use crate::{
    Address, B256, Error, InclusionProof, MerkleLog, Record, Result, Secp256k1Signer, Signature,
    keys::recover_low_s,
};

/// The message an agent signs for a batch: EIP-191 over this tag, the batch size and its root.
pub fn batch_message(size: u64, root: &B256) -> Vec<u8> {
    let mut message = Vec::with_capacity(19 + 8 + 32);
    message.extend_from_slice(b"chaperone/batch/v1\0");
    message.extend_from_slice(&size.to_be_bytes());
    message.extend_from_slice(root.as_slice());
    message
}

/// Records from one agent, consecutive in sequence, signed once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedBatch {
    /// The records, in sequence order.
    pub records: Vec<Record>,
    /// The agent's signature over [`batch_message`].
    pub signature: Signature,
}

impl SignedBatch {
    /// Signs `records` with the agent's key after checking they form a chain.
    pub fn sign(records: Vec<Record>, agent: &Secp256k1Signer) -> Result<Self> {
        let (_, root) = Self::check_chain(&records, agent.address())?;
        let signature = agent.sign_message(&batch_message(records.len() as u64, &root))?;
        Ok(Self { records, signature })
    }

    /// Signs `records` whose leaf hashes the caller computed when it created them (`leaves`, in
    /// the same order), without hashing them again: the SDK hashed each record as it was
    /// recorded. Only the counts are checked here; a wrong hash yields a signature the log
    /// refuses, never one over records it did not mean.
    pub fn sign_hashed(
        records: Vec<Record>,
        leaves: &[B256],
        agent: &Secp256k1Signer,
    ) -> Result<Self> {
        if records.is_empty() || records.len() != leaves.len() {
            return Err(Error::InvalidBatch(format!(
                "{} records and {} leaf hashes",
                records.len(),
                leaves.len()
            )));
        }
        let root = Self::tree(leaves).root();
        let signature = agent.sign_message(&batch_message(records.len() as u64, &root))?;
        Ok(Self { records, signature })
    }

    /// Verifies the signature and the chain inside the batch; returns the records' leaf hashes.
    /// Continuity with records before the batch is the log's check, not the batch's.
    pub fn verify(&self) -> Result<Vec<B256>> {
        let agent = self
            .records
            .first()
            .ok_or_else(|| Error::InvalidBatch("a batch needs at least one record".into()))?
            .agent;
        let (leaves, root) = Self::check_chain(&self.records, agent)?;
        let digest =
            alloy_primitives::eip191_hash_message(batch_message(leaves.len() as u64, &root));
        let recovered = recover_low_s(&self.signature, &digest)?;
        if recovered != agent {
            return Err(Error::WrongSigner {
                expected: agent,
                recovered,
            });
        }
        Ok(leaves)
    }

    /// The batch's Merkle root over its records' leaf hashes.
    pub fn root(&self) -> Result<B256> {
        Ok(Self::tree(&self.leaf_hashes()?).root())
    }

    /// The records' leaf hashes.
    pub fn leaf_hashes(&self) -> Result<Vec<B256>> {
        self.records.iter().map(Record::leaf_hash).collect()
    }

    /// The proof that record `index` is in this signed batch.
    pub fn membership(&self, index: usize) -> Result<BatchMembership> {
        let leaves = self.leaf_hashes()?;
        let proof = Self::tree(&leaves).inclusion_proof(index as u64, leaves.len() as u64)?;
        Ok(BatchMembership {
            index: proof.index,
            size: proof.size,
            path: proof.path,
            signature: self.signature,
        })
    }

    fn tree(leaves: &[B256]) -> MerkleLog {
        let mut tree = MerkleLog::new();
        for leaf in leaves {
            tree.append_leaf_hash(*leaf);
        }
        tree
    }

    fn check_chain(records: &[Record], agent: Address) -> Result<(Vec<B256>, B256)> {
        let mut leaves = Vec::with_capacity(records.len());
        for (i, record) in records.iter().enumerate() {
            if record.agent != agent {
                return Err(Error::InvalidBatch(format!(
                    "record {i} is from another agent"
                )));
            }
            let leaf = record.leaf_hash()?;
            if let Some(previous) = leaves.last() {
                // Checked: a client may send u64::MAX (a panic in debug, a wrap in release).
                let expected_sequence =
                    records[i - 1].sequence.checked_add(1).ok_or_else(|| {
                        Error::InvalidBatch(format!(
                            "record {} has the last possible sequence",
                            i - 1
                        ))
                    })?;
                if record.sequence != expected_sequence {
                    return Err(Error::InvalidBatch(format!(
                        "record {i} has sequence {}, expected {expected_sequence}",
                        record.sequence
                    )));
                }
                if record.previous != *previous {
                    return Err(Error::InvalidBatch(format!(
                        "record {i} does not point to the previous record's hash"
                    )));
                }
            }
            leaves.push(leaf);
        }
        if leaves.is_empty() {
            return Err(Error::InvalidBatch(
                "a batch needs at least one record".into(),
            ));
        }
        let root = Self::tree(&leaves).root();
        Ok((leaves, root))
    }
}

/// Proof that one record was in a batch its agent signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchMembership {
    /// The record's index in the batch.
    pub index: u64,
    /// The number of records in the batch.
    pub size: u64,
    /// The audit path to the batch root.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<crate::openapi::Hex32>))]
    pub path: Vec<B256>,
    /// The agent's batch signature.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::SignatureJson))]
    pub signature: Signature,
}

impl BatchMembership {
    /// Checks that `record` was signed by its agent as part of the batch.
    pub fn verify(&self, record: &Record) -> Result<()> {
        let proof = InclusionProof {
            index: self.index,
            size: self.size,
            path: self.path.clone(),
        };
        let root = proof.root_from(&record.leaf_hash()?)?;
        let digest = alloy_primitives::eip191_hash_message(batch_message(self.size, &root));
        let recovered = recover_low_s(&self.signature, &digest)?;
        if recovered != record.agent {
            return Err(Error::WrongSigner {
                expected: record.agent,
                recovered,
            });
        }
        Ok(())
    }
}

//! What the outbox keeps of each record: its salts and where its content lies (the
//! disclosure store's half in SQLite), packed one fixed-size row per record.

use super::*;

/// A committed record waiting to be persisted: the record, its salts, and where its content
/// lies in its stage's buffer (input, output and metadata, one after the other).
#[derive(Debug)]
pub(crate) struct StagedRecord {
    pub(crate) record: Record,
    pub(crate) leaf_hash: B256,
    /// Input, output and metadata salts (the last unused without metadata).
    pub(crate) salts: [Salt; 3],
    pub(crate) offset: usize,
    pub(crate) input_len: usize,
    pub(crate) output_len: usize,
    pub(crate) metadata_len: Option<usize>,
}

impl StagedRecord {
    pub(super) fn content_len(&self) -> usize {
        self.input_len + self.output_len + self.metadata_len.unwrap_or(0)
    }
}

/// Records committed and not yet persisted, with all their content in one buffer. `record`
/// appends to it; the batcher swaps the whole stage for an empty one and, once it is
/// persisted, zeroes it and keeps it for the next swap. Content gets no allocation of its own
/// per record: with glibc's allocator, the batcher freeing what the caller's thread had
/// allocated made the caller's next allocations wait for the arena lock, and tripled the p99
/// of `record`.
#[derive(Default)]
pub(crate) struct Stage {
    pub(crate) records: Vec<StagedRecord>,
    pub(crate) content: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Stage {
    // Sizes only: the content is raw model input and output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stage")
            .field("records", &self.records.len())
            .field("content_bytes", &self.content.len())
            .finish()
    }
}

impl Stage {
    pub(crate) fn push(
        &mut self,
        record: Record,
        leaf_hash: B256,
        salts: [Salt; 3],
        input: &[u8],
        output: &[u8],
        metadata: Option<&[u8]>,
    ) {
        let offset = self.content.len();
        self.content.extend_from_slice(input);
        self.content.extend_from_slice(output);
        if let Some(m) = metadata {
            self.content.extend_from_slice(m);
        }
        self.records.push(StagedRecord {
            record,
            leaf_hash,
            salts,
            offset,
            input_len: input.len(),
            output_len: output.len(),
            metadata_len: metadata.map(<[u8]>::len),
        });
    }

    /// Empties the stage, zeroing its content, and keeps the buffers' capacity.
    pub(crate) fn clear(&mut self) {
        self.records.clear();
        self.content.as_mut_slice().zeroize();
        self.content.clear();
    }
}

/// A signed batch not yet delivered.
#[derive(Debug, Clone)]
pub(crate) struct OutboxBatch {
    pub(crate) batch_id: i64,
    pub(crate) first_sequence: u64,
    pub(crate) size: u64,
    pub(crate) body: Vec<u8>,
}

/// The openings of one record, as far as they were not forgotten.
#[derive(Debug)]
pub(crate) struct StoredOpenings {
    pub(crate) openings: Vec<Opening>,
    pub(crate) forgotten: bool,
}

/// Bytes per record in a batch's packed openings: three salts, then three content lengths.
pub(super) const OPENING_LEN: usize = 3 * 32 + 3 * 4;
/// The metadata length of a record without metadata.
pub(super) const NO_METADATA: u32 = u32::MAX;
pub(super) const KINDS: [CommitmentKind; 3] = [
    CommitmentKind::Input,
    CommitmentKind::Output,
    CommitmentKind::Metadata,
];

/// Where a record lies: its batch and place in it, its agent and sequence.
#[derive(Debug)]
pub(super) struct Located {
    pub(super) batch_id: i64,
    pub(super) position: usize,
    pub(super) agent: String,
    pub(super) sequence: i64,
}

/// One record's part of a batch's packed openings.
pub(super) struct PackedOpening {
    pub(super) salts: [[u8; 32]; 3],
    /// Input, output and metadata lengths (`None`: no metadata).
    pub(super) lens: [Option<usize>; 3],
}

impl PackedOpening {
    /// Record `position`'s opening in `packed`, and where its content lies in the content
    /// file (after the content of the batch's records before it, from `batch_offset`).
    pub(super) fn find(packed: &[u8], position: usize, batch_offset: u64) -> Result<(Self, u64)> {
        let corrupt = || Error::Local(sqlx::Error::Decode("packed openings are truncated".into()));
        let mut offset = batch_offset;
        for (i, bytes) in packed.chunks(OPENING_LEN).enumerate() {
            let bytes: &[u8; OPENING_LEN] = bytes.try_into().map_err(|_| corrupt())?;
            let mut salts = [[0u8; 32]; 3];
            for (k, salt) in salts.iter_mut().enumerate() {
                salt.copy_from_slice(&bytes[32 * k..32 * (k + 1)]);
            }
            let mut lens = [None; 3];
            for (k, len) in lens.iter_mut().enumerate() {
                let at = 96 + 4 * k;
                let value =
                    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
                *len = (value != NO_METADATA).then_some(value as usize);
            }
            let opening = Self { salts, lens };
            if i == position {
                return Ok((opening, offset));
            }
            offset += opening.content_len() as u64;
        }
        Err(corrupt())
    }

    pub(super) fn content_len(&self) -> usize {
        self.lens.iter().flatten().sum()
    }

    /// `forget` zeroes the salts; a random salt is never all zeros.
    pub(super) fn forgotten(&self) -> bool {
        self.salts[0] == [0u8; 32]
    }
}

//! The audit record and its canonical binary encoding (documented in docs/record-format.md).
//!
//! A record never contains model content, only commitments to it. The encoding has exactly one
//! byte string per record, so the leaf hash (what the log and signatures cover) is unambiguous.

use serde::{Deserialize, Serialize};

use crate::{Address, B256, Commitment, Error, Result, hash::leaf_hash};

/// The record format version this crate writes and reads.
pub const RECORD_VERSION: u8 = 1;

/// The longest model id, in bytes of UTF-8.
pub const MAX_MODEL_ID_LEN: usize = 255;

/// One model call, as the agent commits to it. Unknown fields are refused: a field the
/// encoding does not carry would be accepted, stored nowhere, and signed by nobody.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Record {
    /// The agent's address (its record-signing key).
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexAddress))]
    pub agent: Address,
    /// The agent's record counter: 0, 1, 2, … without gaps.
    pub sequence: u64,
    /// When the call happened, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The model id, e.g. `gpt-4o-2024-08-06` (1 to 255 bytes of UTF-8).
    pub model: String,
    /// Commitment to the input.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Hex32))]
    pub input: Commitment,
    /// Commitment to the output.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Hex32))]
    pub output: Commitment,
    /// Commitment to metadata (tool calls, token counts, `gen_ai.*` attributes), if any.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::openapi::Hex32>))]
    pub metadata: Option<Commitment>,
    /// Leaf hash of the agent's previous record; zero for sequence 0.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Hex32))]
    pub previous: B256,
}

impl Record {
    /// Checks the field ranges that the encoding relies on.
    pub fn validate(&self) -> Result<()> {
        if self.model.is_empty() || self.model.len() > MAX_MODEL_ID_LEN {
            return Err(Error::InvalidRecord("model id must be 1 to 255 bytes"));
        }
        if self.sequence == 0 && !self.previous.is_zero() {
            return Err(Error::InvalidRecord(
                "the first record (sequence 0) has no previous hash",
            ));
        }
        if self.sequence != 0 && self.previous.is_zero() {
            return Err(Error::InvalidRecord(
                "a record after the first needs a previous hash",
            ));
        }
        Ok(())
    }

    /// The canonical encoding. Fails only for records that [`Record::validate`] rejects.
    pub fn encode(&self) -> Result<Vec<u8>> {
        self.validate()?;
        let mut out = Vec::with_capacity(self.encoded_len());
        out.push(RECORD_VERSION);
        out.extend_from_slice(self.agent.as_slice());
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        out.push(self.model.len() as u8);
        out.extend_from_slice(self.model.as_bytes());
        out.extend_from_slice(self.input.0.as_slice());
        out.extend_from_slice(self.output.0.as_slice());
        match &self.metadata {
            None => out.push(0),
            Some(m) => {
                out.push(1);
                out.extend_from_slice(m.0.as_slice());
            }
        }
        out.extend_from_slice(self.previous.as_slice());
        Ok(out)
    }

    /// Length of the canonical encoding.
    pub fn encoded_len(&self) -> usize {
        1 + 20
            + 8
            + 8
            + 1
            + self.model.len()
            + 32
            + 32
            + 1
            + 32 * usize::from(self.metadata.is_some())
            + 32
    }

    /// Decodes a canonical encoding; anything else (trailing bytes, unknown version, a flag
    /// other than 0 or 1, invalid UTF-8, out-of-range fields) is rejected.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader(bytes);
        if r.u8()? != RECORD_VERSION {
            return Err(Error::RecordEncoding("unknown record version"));
        }
        let agent = Address::from_slice(r.take(20)?);
        let sequence = r.u64()?;
        let timestamp_ms = r.u64()?;
        let model_len = usize::from(r.u8()?);
        let model = std::str::from_utf8(r.take(model_len)?)
            .map_err(|_| Error::RecordEncoding("model id is not UTF-8"))?
            .to_owned();
        let input = Commitment(r.b256()?);
        let output = Commitment(r.b256()?);
        let metadata = match r.u8()? {
            0 => None,
            1 => Some(Commitment(r.b256()?)),
            _ => return Err(Error::RecordEncoding("metadata flag must be 0 or 1")),
        };
        let previous = r.b256()?;
        if !r.0.is_empty() {
            return Err(Error::RecordEncoding("trailing bytes after the record"));
        }
        let record = Self {
            agent,
            sequence,
            timestamp_ms,
            model,
            input,
            output,
            metadata,
            previous,
        };
        record.validate().map_err(|e| match e {
            Error::InvalidRecord(why) => Error::RecordEncoding(why),
            other => other,
        })?;
        Ok(record)
    }

    /// The record's leaf hash, SHA-256(0x00 ‖ encoding): its identity in the log and the
    /// `previous` of the agent's next record.
    pub fn leaf_hash(&self) -> Result<B256> {
        Ok(leaf_hash(&self.encode()?))
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(Error::RecordEncoding("record is truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn b256(&mut self) -> Result<B256> {
        Ok(B256::from_slice(self.take(32)?))
    }
}

//! Salted commitments to model inputs, outputs and metadata:
//! `SHA-256(domain tag ‖ 32-byte salt ‖ content)`.
//!
//! The salt makes low-entropy content (a yes/no answer, a short prompt) impossible to guess from
//! its commitment; deleting the salt crypto-shreds the content while the log stays intact.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{B256, Error, Result};

/// What a commitment commits to; each kind has its own domain tag, so a commitment to an input
/// can never be presented as one to an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CommitmentKind {
    /// The model's input (prompt, messages, tool results).
    Input,
    /// The model's output.
    Output,
    /// Metadata: tool calls, token counts, OpenTelemetry `gen_ai.*` attributes.
    Metadata,
}

impl CommitmentKind {
    /// The domain tag. Tags are NUL-terminated, so none is a prefix of another.
    pub const fn domain_tag(self) -> &'static [u8] {
        match self {
            Self::Input => b"chaperone/commitment/v1/input\0",
            Self::Output => b"chaperone/commitment/v1/output\0",
            Self::Metadata => b"chaperone/commitment/v1/metadata\0",
        }
    }

    /// A human name for errors.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Input => "input",
            Self::Output => "output",
            Self::Metadata => "metadata",
        }
    }
}

/// A 32-byte commitment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Commitment(pub B256);

impl Commitment {
    /// Computes the commitment to `content` with `salt`.
    pub fn compute(kind: CommitmentKind, salt: &Salt, content: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(kind.domain_tag());
        h.update(salt.0);
        h.update(content);
        Self(B256::new(h.finalize().into()))
    }

    /// Checks that `content` with `salt` opens this commitment.
    pub fn verify(&self, kind: CommitmentKind, salt: &Salt, content: &[u8]) -> Result<()> {
        if Self::compute(kind, salt, content) != *self {
            return Err(Error::CommitmentMismatch(kind.name()));
        }
        Ok(())
    }
}

/// A 32-byte random salt, wiped from memory on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Salt(#[serde(with = "hex_32")] pub [u8; 32]);

impl Salt {
    /// A fresh salt from the operating system's CSPRNG.
    pub fn random() -> Result<Self> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|_| Error::Random)?;
        Ok(Self(bytes))
    }
}

impl std::fmt::Debug for Salt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Salt(<redacted>)")
    }
}

/// Content and its salt: what an agent keeps to disclose a commitment later. Dropping it
/// wipes both from memory; deleting its stored copy crypto-shreds the content.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Opening {
    #[zeroize(skip)]
    kind: CommitmentKind,
    salt: Salt,
    content: Vec<u8>,
}

impl Opening {
    /// Commits to `content` with a fresh random salt.
    pub fn new(kind: CommitmentKind, content: Vec<u8>) -> Result<Self> {
        Ok(Self {
            kind,
            salt: Salt::random()?,
            content,
        })
    }

    /// Rebuilds an opening from stored parts.
    pub fn from_parts(kind: CommitmentKind, salt: Salt, content: Vec<u8>) -> Self {
        Self {
            kind,
            salt,
            content,
        }
    }

    /// The commitment this opening opens.
    pub fn commitment(&self) -> Commitment {
        Commitment::compute(self.kind, &self.salt, &self.content)
    }

    /// What was committed to.
    pub fn kind(&self) -> CommitmentKind {
        self.kind
    }

    /// The salt.
    pub fn salt(&self) -> &Salt {
        &self.salt
    }

    /// The content.
    pub fn content(&self) -> &[u8] {
        &self.content
    }
}

impl std::fmt::Debug for Opening {
    // Raw model content must never reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opening")
            .field("kind", &self.kind)
            .field("content_len", &self.content.len())
            .finish_non_exhaustive()
    }
}

/// Serde for a 32-byte array as 0x-prefixed hex.
mod hex_32 {
    use alloy_primitives::hex;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode_prefixed(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let bytes = hex::decode(text).map_err(D::Error::custom)?;
        bytes
            .try_into()
            .map_err(|_| D::Error::custom("expected 32 bytes"))
    }
}

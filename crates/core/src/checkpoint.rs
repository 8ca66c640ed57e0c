//! Checkpoints in the C2SP `tlog-checkpoint` format, signed as C2SP `signed-note`s.
//!
//! ```text
//! <origin>\n<tree size, decimal>\n<root hash, base64>\n
//! \n
//! — <key name> <base64(key id ‖ signature)>\n
//! ```
//!
//! The operator signs with secp256k1 (the same key that anchors on chain), which signed-note has
//! no registered type for. We use signature type 0xff followed by the identifier
//! `chaperone-secp256k1-eip191`: key id = SHA-256(name ‖ 0x0A ‖ 0xff ‖ identifier ‖ address)[:4],
//! signature = 65-byte r ‖ s ‖ v over the EIP-191 hash of the note text.

use base64::{Engine, engine::general_purpose::STANDARD};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Address, B256, Error, Result, Secp256k1Signer, Signature, keys::recover_low_s};

const SIGNATURE_TYPE: u8 = 0xff;
const SIGNATURE_ALGORITHM: &[u8] = b"chaperone-secp256k1-eip191";
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// A log's state: its origin (which names the log), size and root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The log's origin line, e.g. `chaperone.dev/31337/0x…/0x…` (chain, contract, log id).
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// Root hash at `size`.
    pub root: B256,
}

impl Checkpoint {
    /// The note text the signatures cover.
    pub fn body(&self) -> Result<String> {
        if self.origin.is_empty() || self.origin.contains('\n') {
            return Err(Error::CheckpointFormat("origin must be one non-empty line"));
        }
        Ok(format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        ))
    }

    /// Signs this checkpoint as key `name`.
    pub fn sign(&self, name: &str, operator: &Secp256k1Signer) -> Result<SignedCheckpoint> {
        check_key_name(name)?;
        let body = self.body()?;
        let signature = operator.sign_message(body.as_bytes())?;
        let mut blob = checkpoint_key_id(name, operator.address()).to_vec();
        blob.extend_from_slice(&signature.as_bytes());
        let note = format!(
            "{body}\n{SIGNATURE_PREFIX}{name} {}\n",
            STANDARD.encode(blob)
        );
        Ok(SignedCheckpoint {
            checkpoint: self.clone(),
            note,
        })
    }

    fn parse_body(body: &str) -> Result<Self> {
        let mut lines = body
            .strip_suffix('\n')
            .ok_or(Error::CheckpointFormat("no final newline"))?
            .split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or(Error::CheckpointFormat("empty origin"))?;
        let size_text = lines
            .next()
            .ok_or(Error::CheckpointFormat("missing tree size"))?;
        let canonical = !size_text.is_empty()
            && size_text.bytes().all(|b| b.is_ascii_digit())
            && (size_text == "0" || !size_text.starts_with('0'));
        let size =
            size_text
                .parse::<u64>()
                .ok()
                .filter(|_| canonical)
                .ok_or(Error::CheckpointFormat(
                    "tree size is not a canonical decimal",
                ))?;
        let root_text = lines
            .next()
            .ok_or(Error::CheckpointFormat("missing root hash"))?;
        let root = STANDARD
            .decode(root_text)
            .ok()
            .filter(|r| r.len() == 32 && STANDARD.encode(r) == root_text)
            .ok_or(Error::CheckpointFormat(
                "root hash is not canonical base64 of 32 bytes",
            ))?;
        if lines.next().is_some() {
            return Err(Error::CheckpointFormat("extension lines are not supported"));
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root: B256::from_slice(&root),
        })
    }
}

/// The 4-byte key id of an operator key named `name` with address `address`.
pub fn checkpoint_key_id(name: &str, address: Address) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', SIGNATURE_TYPE]);
    h.update(SIGNATURE_ALGORITHM);
    h.update(address.as_slice());
    let digest = h.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

fn check_key_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '+') {
        return Err(Error::CheckpointFormat(
            "key name must be non-empty, without spaces or '+'",
        ));
    }
    Ok(())
}

/// The operator key a verifier trusts: its name and address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointVerifier {
    /// The key name in signature lines.
    pub name: String,
    /// The operator's address.
    pub address: Address,
}

/// A checkpoint with its signed note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCheckpoint {
    /// The parsed checkpoint.
    pub checkpoint: Checkpoint,
    /// The signed note text.
    pub note: String,
}

impl SignedCheckpoint {
    /// Parses `note` and verifies it carries a valid signature from `verifier`. Signature lines
    /// from other keys are ignored, as signed-note requires; a note with none from `verifier`
    /// is rejected, and so is one whose `verifier` line does not verify.
    pub fn verify(note: &str, verifier: &CheckpointVerifier) -> Result<Self> {
        let (body, signatures) = note
            .split_once("\n\n")
            .map(|(text, sigs)| (format!("{text}\n"), sigs))
            .ok_or(Error::CheckpointFormat(
                "no blank line before the signatures",
            ))?;
        let checkpoint = Checkpoint::parse_body(&body)?;
        let signatures = signatures
            .strip_suffix('\n')
            .ok_or(Error::CheckpointFormat("no final newline"))?;
        let key_id = checkpoint_key_id(&verifier.name, verifier.address);
        let mut verified = false;
        for line in signatures.split('\n') {
            let (name, blob) = line
                .strip_prefix(SIGNATURE_PREFIX)
                .and_then(|rest| rest.split_once(' '))
                .ok_or(Error::CheckpointFormat("malformed signature line"))?;
            let blob = STANDARD
                .decode(blob)
                .map_err(|_| Error::CheckpointFormat("signature is not base64"))?;
            if blob.len() < 4 {
                return Err(Error::CheckpointFormat("signature shorter than its key id"));
            }
            if name != verifier.name || blob[..4] != key_id {
                continue;
            }
            let signature = Signature::from_raw(&blob[4..])
                .map_err(|_| Error::InvalidSignature("checkpoint signature is not 65 bytes"))?;
            let digest = alloy_primitives::eip191_hash_message(body.as_bytes());
            let recovered = recover_low_s(&signature, &digest)?;
            if recovered != verifier.address {
                return Err(Error::WrongSigner {
                    expected: verifier.address,
                    recovered,
                });
            }
            verified = true;
        }
        if !verified {
            return Err(Error::CheckpointUnsigned(verifier.name.clone()));
        }
        Ok(Self {
            checkpoint,
            note: note.to_owned(),
        })
    }
}

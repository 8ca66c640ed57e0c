//! secp256k1 signing as Ethereum does it: 65-byte r ‖ s ‖ v signatures, low-s only, signers
//! identified by their address.

use alloy_primitives::eip191_hash_message;
use k256::ecdsa::SigningKey;

use crate::{Address, B256, Error, Result, Signature};

/// A secp256k1 private key that signs Chaperone messages. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct Secp256k1Signer {
    key: SigningKey,
    /// The same key for libsecp256k1, which signs about four times faster than k256: the
    /// co-signer signs every approval (docs/benchmarks.md). Erased when dropped, as k256's is.
    fast: FastKey,
    address: Address,
}

/// A libsecp256k1 secret key that is overwritten when dropped (libsecp256k1's own erase;
/// its keys, unlike k256's, do not erase themselves).
#[derive(Clone)]
struct FastKey(secp256k1::SecretKey);

impl Drop for FastKey {
    fn drop(&mut self) {
        self.0.non_secure_erase();
    }
}

impl Secp256k1Signer {
    /// A signer from a 32-byte private key.
    pub fn from_bytes(bytes: &B256) -> Result<Self> {
        let key = SigningKey::from_bytes(bytes.as_slice().into())
            .map_err(|_| Error::InvalidSignature("private key is not a valid secp256k1 scalar"))?;
        let address = Address::from_private_key(&key);
        let fast = secp256k1::SecretKey::from_byte_array(bytes.0)
            .map_err(|_| Error::InvalidSignature("private key is not a valid secp256k1 scalar"))?;
        Ok(Self {
            key,
            fast: FastKey(fast),
            address,
        })
    }

    /// A fresh random key from the operating system's CSPRNG.
    pub fn random() -> Result<Self> {
        loop {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|_| Error::Random)?;
            if let Ok(signer) = Self::from_bytes(&B256::new(bytes)) {
                return Ok(signer);
            }
        }
    }

    /// The signer's Ethereum address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// The 32-byte private key (for keystores; never log it).
    pub fn to_bytes(&self) -> B256 {
        B256::from_slice(&self.key.to_bytes())
    }

    /// Signs a 32-byte digest, on libsecp256k1: RFC 6979 nonces and the low-s form, so the
    /// signature is the one [`Self::sign_digest_k256`] makes (a differential test checks it).
    pub fn sign_digest(&self, digest: &B256) -> Result<Signature> {
        let signature = secp256k1::SECP256K1
            .sign_ecdsa_recoverable(secp256k1::Message::from_digest(digest.0), &self.fast.0);
        let (parity, compact) = signature.serialize_compact();
        Ok(Signature::new(
            crate::U256::from_be_slice(&compact[..32]),
            crate::U256::from_be_slice(&compact[32..]),
            i32::from(parity) == 1,
        ))
    }

    /// [`Self::sign_digest`] on k256 (pure Rust): the reference it is tested against. k256
    /// always produces the low-s form.
    pub fn sign_digest_k256(&self, digest: &B256) -> Result<Signature> {
        let (sig, recid) = self
            .key
            .sign_prehash_recoverable(digest.as_slice())
            .map_err(|_| Error::InvalidSignature("signing failed"))?;
        Ok(Signature::from((sig, recid)))
    }

    /// Signs `message` as an EIP-191 personal message (what `eth_sign`/wallets sign).
    pub fn sign_message(&self, message: &[u8]) -> Result<Signature> {
        self.sign_digest(&eip191_hash_message(message))
    }
}

impl std::fmt::Debug for Secp256k1Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secp256k1Signer")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// Recovers the signer of `digest`, refusing high-s signatures (as the contracts do), so every
/// signed message has exactly one valid signature encoding.
///
/// Recovery runs on libsecp256k1 (the `secp256k1` crate), about four times faster than k256,
/// because the co-signer and the log recover a signature for every request.
/// `recover_low_s_k256` is the pure-Rust reference it is tested against.
pub fn recover_low_s(signature: &Signature, digest: &B256) -> Result<Address> {
    if signature.normalize_s().is_some() {
        return Err(Error::InvalidSignature("high-s signature"));
    }
    let unrecoverable = |_| Error::InvalidSignature("signature does not recover to a key");
    let parity =
        secp256k1::ecdsa::RecoveryId::try_from(i32::from(signature.v())).map_err(unrecoverable)?;
    let mut compact = [0u8; 64];
    compact[..32].copy_from_slice(&signature.r().to_be_bytes::<32>());
    compact[32..].copy_from_slice(&signature.s().to_be_bytes::<32>());
    let key = secp256k1::ecdsa::RecoverableSignature::from_compact(&compact, parity)
        .and_then(|sig| sig.recover(secp256k1::Message::from_digest(digest.0)))
        .map_err(unrecoverable)?;
    let uncompressed = key.serialize_uncompressed();
    Ok(Address::from_raw_public_key(&uncompressed[1..]))
}

/// [`recover_low_s`] on k256 (pure Rust): the reference the libsecp256k1 path is tested against.
pub fn recover_low_s_k256(signature: &Signature, digest: &B256) -> Result<Address> {
    if signature.normalize_s().is_some() {
        return Err(Error::InvalidSignature("high-s signature"));
    }
    signature
        .recover_address_from_prehash(digest)
        .map_err(|_| Error::InvalidSignature("signature does not recover to a key"))
}

//! secp256k1 signing as Ethereum does it: 65-byte r ‖ s ‖ v signatures, low-s only, signers
//! identified by their address.

use alloy_primitives::eip191_hash_message;
use k256::ecdsa::SigningKey;

use crate::{Address, B256, Error, Result, Signature};

/// A secp256k1 private key that signs Chaperone messages. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct Secp256k1Signer {
    key: SigningKey,
    address: Address,
}

impl Secp256k1Signer {
    /// A signer from a 32-byte private key.
    pub fn from_bytes(bytes: &B256) -> Result<Self> {
        let key = SigningKey::from_bytes(bytes.as_slice().into())
            .map_err(|_| Error::InvalidSignature("private key is not a valid secp256k1 scalar"))?;
        let address = Address::from_private_key(&key);
        Ok(Self { key, address })
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

    /// Signs a 32-byte digest. k256 always produces the low-s form.
    pub fn sign_digest(&self, digest: &B256) -> Result<Signature> {
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
pub fn recover_low_s(signature: &Signature, digest: &B256) -> Result<Address> {
    if signature.normalize_s().is_some() {
        return Err(Error::InvalidSignature("high-s signature"));
    }
    signature
        .recover_address_from_prehash(digest)
        .map_err(|_| Error::InvalidSignature("signature does not recover to a key"))
}

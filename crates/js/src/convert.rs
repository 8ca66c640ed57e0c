//! Values across the boundary: addresses as checksummed strings, hashes as `0x` strings,
//! amounts as `bigint`, content as `string` (UTF-8) or `Uint8Array`/`Buffer`.

use std::str::FromStr;

use chaperone_core::{Address, B256, U256};
use napi::bindgen_prelude::{BigInt, Uint8Array};

/// An argument the caller got wrong: a `TypeError`-like `InvalidArg` rejection.
pub(crate) fn invalid(message: impl Into<String>) -> napi::Error {
    napi::Error::new(napi::Status::InvalidArg, message.into())
}

/// An address from a `0x` string (any case; a mixed-case one must carry a valid checksum).
pub(crate) fn address(text: &str) -> napi::Result<Address> {
    let parsed =
        Address::from_str(text).map_err(|e| invalid(format!("{text:?} is not an address: {e}")))?;
    let digits = text.get(2..).unwrap_or_default();
    let mixed_case = digits.chars().any(|c| c.is_ascii_uppercase())
        && digits.chars().any(|c| c.is_ascii_lowercase());
    if mixed_case && parsed.to_checksum(None) != text {
        return Err(invalid(format!(
            "{text:?} has a wrong EIP-55 checksum (a typo?)"
        )));
    }
    Ok(parsed)
}

/// The EIP-55 form every address leaves as.
pub(crate) fn checksummed(address: Address) -> String {
    address.to_checksum(None)
}

/// A 32-byte hash or key from a `0x` string.
pub(crate) fn b256(text: &str, what: &str) -> napi::Result<B256> {
    B256::from_str(text).map_err(|e| invalid(format!("{what} must be 32 bytes of 0x hex: {e}")))
}

/// A non-negative `bigint` below 2**256.
pub(crate) fn u256(value: &BigInt, what: &str) -> napi::Result<U256> {
    if value.sign_bit && value.words.iter().any(|w| *w != 0) {
        return Err(invalid(format!("{what} must not be negative")));
    }
    if value.words.len() > 4 && value.words[4..].iter().any(|w| *w != 0) {
        return Err(invalid(format!("{what} must be below 2n ** 256n")));
    }
    let mut limbs = [0u64; 4];
    for (limb, word) in limbs.iter_mut().zip(&value.words) {
        *limb = *word;
    }
    Ok(U256::from_limbs(limbs))
}

/// A `bigint` for a `U256` (amounts leave as bigints, never as lossy numbers).
pub(crate) fn bigint(value: U256) -> BigInt {
    BigInt {
        sign_bit: false,
        words: value.as_limbs().to_vec(),
    }
}

/// Content to commit to: a `string` (UTF-8) or bytes.
pub(crate) type Content = napi::Either<String, Uint8Array>;

/// The bytes of [`Content`], without copying them.
pub(crate) fn content(value: &Content) -> &[u8] {
    match value {
        napi::Either::A(text) => text.as_bytes(),
        napi::Either::B(bytes) => bytes,
    }
}

/// Metadata to commit to: a `string` or bytes (`index.js` JSON-encodes an object first, with
/// sorted keys, so the same object always commits to the same bytes).
pub(crate) type Metadata = Content;

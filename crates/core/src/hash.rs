//! RFC 9162 §2.1.1 hashing: SHA-256 with one-byte domain separation of leaves and nodes.

use sha2::{Digest, Sha256};

use crate::B256;

/// MTH({}) = SHA-256 of the empty string: the root of the empty tree.
pub const EMPTY_ROOT: B256 = B256::new([
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
]);

/// The leaf hash SHA-256(0x00 ‖ data).
pub fn leaf_hash(data: &[u8]) -> B256 {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    B256::new(h.finalize().into())
}

/// The interior node hash SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &B256, right: &B256) -> B256 {
    let mut buf = [0u8; 65];
    buf[0] = 0x01;
    buf[1..33].copy_from_slice(left.as_slice());
    buf[33..].copy_from_slice(right.as_slice());
    B256::new(Sha256::digest(buf).into())
}

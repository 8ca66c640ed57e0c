//! Integration tests for chaperone-core (one binary, a module per area).
#![allow(missing_docs, unreachable_pub, clippy::unwrap_used)]

mod attacks;
mod checkpoints;
mod commitments;
mod differential;
mod disclosure;
mod policy;
mod properties;
mod records;
mod recovery;
mod rfc_vectors;
mod vectors;

use chaperone_core::{B256, MerkleLog};

/// A log over `n` distinct leaves; the leaf data is the big-endian index.
pub fn log_of(n: u64) -> MerkleLog {
    let mut log = MerkleLog::new();
    for i in 0..n {
        log.append(&i.to_be_bytes());
    }
    log
}

pub fn b256(hex: &str) -> B256 {
    hex.parse().unwrap()
}

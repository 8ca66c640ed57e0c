//! Property tests: for random sizes and indices, generated proofs verify, and a flipped bit in
//! a proof, leaf, index or size makes verification fail.

use chaperone_core::{ConsistencyProof, InclusionProof, MerkleLog, leaf_hash};
use proptest::prelude::*;

use crate::log_of;

const MAX: u64 = 300;

fn flip(h: &mut chaperone_core::B256, bit: usize) {
    h.0[bit / 8 % 32] ^= 1 << (bit % 8);
}

/// A shared log: proptest cases only read it.
fn shared_log() -> &'static MerkleLog {
    static LOG: std::sync::OnceLock<MerkleLog> = std::sync::OnceLock::new();
    LOG.get_or_init(|| log_of(MAX))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn inclusion_verifies_and_tampering_fails(
        size in 1..=MAX, index_seed in any::<u64>(), bit in 0usize..256, which in any::<u64>(),
        index_bit in 0u32..9, size_bit in 0u32..9,
    ) {
        let log = shared_log();
        let index = index_seed % size;
        let root = log.root_at(size).unwrap();
        let leaf = leaf_hash(&index.to_be_bytes());
        let proof = log.inclusion_proof(index, size).unwrap();
        prop_assert!(proof.verify(&leaf, &root).is_ok());

        let mut bad_leaf = leaf;
        flip(&mut bad_leaf, bit);
        prop_assert!(proof.verify(&bad_leaf, &root).is_err(), "flipped leaf bit verified");

        if !proof.path.is_empty() {
            let mut bad = proof.clone();
            let at = (which % bad.path.len() as u64) as usize;
            flip(&mut bad.path[at], bit);
            prop_assert!(bad.verify(&leaf, &root).is_err(), "flipped proof bit verified");
        }

        let other_index = index ^ (1 << index_bit);
        let bad = InclusionProof { index: other_index, ..proof.clone() };
        prop_assert!(bad.verify(&leaf, &root).is_err(), "flipped index bit verified");

        // A flipped size is checked against the root a verifier holds for that size (the
        // checkpoint's), as a proof is only ever checked against a (size, root) pair.
        let other_size = size ^ (1 << size_bit);
        if other_size != 0 && other_size <= MAX {
            let bad = InclusionProof { size: other_size, ..proof.clone() };
            let other_root = log.root_at(other_size).unwrap();
            prop_assert!(bad.verify(&leaf, &other_root).is_err(), "flipped size bit verified");
        }
    }

    #[test]
    fn consistency_verifies_and_tampering_fails(
        second in 1..=MAX, first_seed in any::<u64>(), bit in 0usize..256, which in any::<u64>(),
        size_bit in 0u32..9,
    ) {
        let log = shared_log();
        let first = 1 + first_seed % second;
        let (old, new) = (log.root_at(first).unwrap(), log.root_at(second).unwrap());
        let proof = log.consistency_proof(first, second).unwrap();
        prop_assert!(proof.verify(&old, &new).is_ok());
        if first == second {
            return Ok(());
        }

        let mut bad = proof.clone();
        let at = (which % bad.path.len() as u64) as usize;
        flip(&mut bad.path[at], bit);
        prop_assert!(bad.verify(&old, &new).is_err(), "flipped proof bit verified");

        let (mut bad_old, mut bad_new) = (old, new);
        flip(&mut bad_old, bit);
        flip(&mut bad_new, bit);
        prop_assert!(proof.verify(&bad_old, &new).is_err(), "flipped old root verified");
        prop_assert!(proof.verify(&old, &bad_new).is_err(), "flipped new root verified");

        // Other sizes, checked against their real roots, fail; so does the reversed pair.
        for (f, s) in [(first ^ (1 << size_bit), second), (first, second ^ (1 << size_bit))] {
            if f == 0 || s > MAX || f > s || (f, s) == (first, second) {
                continue;
            }
            let bad = ConsistencyProof { first: f, second: s, path: proof.path.clone() };
            let roots = (log.root_at(f).unwrap(), log.root_at(s).unwrap());
            prop_assert!(bad.verify(&roots.0, &roots.1).is_err(), "sizes {f}->{s} verified");
        }
        let reversed = ConsistencyProof { first: second, second: first, path: proof.path.clone() };
        prop_assert!(reversed.verify(&new, &old).is_err());
    }
}

#[test]
fn proofs_beyond_the_log_are_refused() {
    let log = log_of(10);
    assert!(log.inclusion_proof(10, 10).is_err());
    assert!(log.inclusion_proof(0, 11).is_err());
    assert!(log.consistency_proof(0, 5).is_err());
    assert!(log.consistency_proof(6, 5).is_err());
    assert!(log.consistency_proof(5, 11).is_err());
    assert!(log.root_at(11).is_err());
}

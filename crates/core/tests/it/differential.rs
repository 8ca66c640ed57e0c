//! Differential test against `ct-merkle`, an independent, maintained RFC 6962 implementation:
//! same roots and proofs, and each side's proofs verify on the other.

use chaperone_core::{B256, ConsistencyProof, InclusionProof, leaf_hash};
use ct_merkle::{RootHash, mem_backed_tree::MemoryBackedTree};
use sha2_ct::Sha256;

use crate::log_of;

const MAX: u64 = 70;

fn ct_tree(n: u64) -> MemoryBackedTree<Sha256, Vec<u8>> {
    let mut tree = MemoryBackedTree::new();
    for i in 0..n {
        tree.push(i.to_be_bytes().to_vec());
    }
    tree
}

fn to_b256(bytes: &[u8]) -> B256 {
    B256::from_slice(bytes)
}

fn digests(bytes: &[u8]) -> Vec<B256> {
    bytes.chunks(32).map(to_b256).collect()
}

fn flatten(path: &[B256]) -> Vec<u8> {
    path.iter().flat_map(|h| h.0).collect()
}

#[test]
fn same_roots_at_every_size() {
    let log = log_of(MAX);
    for n in 1..=MAX {
        let theirs = ct_tree(n).root();
        assert_eq!(
            log.root_at(n).unwrap(),
            to_b256(theirs.as_bytes()),
            "root at {n}"
        );
    }
}

#[test]
fn inclusion_proofs_agree_and_cross_verify() {
    let log = log_of(MAX);
    for n in 1..=MAX {
        let tree = ct_tree(n);
        let their_root = tree.root();
        let our_root = log.root_at(n).unwrap();
        for i in 0..n {
            let ours = log.inclusion_proof(i, n).unwrap();
            let theirs = tree.prove_inclusion(i as usize);
            assert_eq!(flatten(&ours.path), theirs.as_bytes(), "proof {i}/{n}");

            // Their proof verifies with our verifier, ours with theirs.
            let leaf = leaf_hash(&i.to_be_bytes());
            InclusionProof {
                index: i,
                size: n,
                path: digests(theirs.as_bytes()),
            }
            .verify(&leaf, &our_root)
            .unwrap();
            let ours_for_them =
                ct_merkle::InclusionProof::<Sha256>::from_bytes(flatten(&ours.path));
            their_root
                .verify_inclusion(&i.to_be_bytes().to_vec(), i, &ours_for_them)
                .unwrap();
        }
    }
}

#[test]
fn consistency_proofs_agree_and_cross_verify() {
    let log = log_of(MAX);
    for n in 1..=MAX {
        let tree = ct_tree(n);
        for m in 1..n {
            let ours = log.consistency_proof(m, n).unwrap();
            let theirs = tree.prove_consistency((n - m) as usize);
            assert_eq!(
                flatten(&ours.path),
                theirs.as_bytes(),
                "consistency {m}->{n}"
            );

            let (old, new) = (log.root_at(m).unwrap(), log.root_at(n).unwrap());
            ConsistencyProof {
                first: m,
                second: n,
                path: digests(theirs.as_bytes()),
            }
            .verify(&old, &new)
            .unwrap();
            let old_root = RootHash::<Sha256>::new(old.0.into(), m);
            let new_root = RootHash::<Sha256>::new(new.0.into(), n);
            let ours_for_them =
                ct_merkle::ConsistencyProof::<Sha256>::try_from_bytes(flatten(&ours.path)).unwrap();
            new_root
                .verify_consistency(&old_root, &ours_for_them)
                .unwrap();
        }
    }
}

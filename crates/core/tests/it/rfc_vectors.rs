//! The published RFC 6962/9162 reference tree (transparency-dev/merkle testonly/reference_test.go,
//! also used by certificate-transparency-go): roots, inclusion and consistency proofs.

use chaperone_core::{EMPTY_ROOT, MerkleLog, ProofPlan};

use crate::b256;

const LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

const INCLUSION: [(u64, u64, &[&str]); 7] = [
    (0, 1, &[]),
    (
        0,
        2,
        &["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"],
    ),
    (
        1,
        2,
        &["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"],
    ),
    (
        2,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

const CONSISTENCY: [(u64, u64, &[&str]); 4] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

fn reference_log() -> MerkleLog {
    let mut log = MerkleLog::new();
    for leaf in LEAVES {
        log.append(&alloy_primitives::hex::decode(leaf).unwrap());
    }
    log
}

#[test]
fn empty_tree_root_is_sha256_of_nothing() {
    assert_eq!(
        EMPTY_ROOT,
        b256("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    assert_eq!(MerkleLog::new().root(), EMPTY_ROOT);
    assert_eq!(reference_log().root_at(0).unwrap(), EMPTY_ROOT);
}

#[test]
fn reference_roots_at_every_size() {
    let log = reference_log();
    for (i, root) in ROOTS.iter().enumerate() {
        assert_eq!(
            log.root_at(i as u64 + 1).unwrap(),
            b256(root),
            "root at size {}",
            i + 1
        );
    }
    assert_eq!(log.root(), b256(ROOTS[7]));
}

#[test]
fn reference_inclusion_proofs() {
    let log = reference_log();
    for (index, size, expected) in INCLUSION {
        let proof = log.inclusion_proof(index, size).unwrap();
        let expected: Vec<_> = expected.iter().map(|h| b256(h)).collect();
        assert_eq!(proof.path, expected, "inclusion of {index} in {size}");
        let leaf = chaperone_core::leaf_hash(
            &alloy_primitives::hex::decode(LEAVES[index as usize]).unwrap(),
        );
        proof.verify(&leaf, &log.root_at(size).unwrap()).unwrap();
    }
}

#[test]
fn reference_consistency_proofs() {
    let log = reference_log();
    for (first, second, expected) in CONSISTENCY {
        let proof = log.consistency_proof(first, second).unwrap();
        let expected: Vec<_> = expected.iter().map(|h| b256(h)).collect();
        assert_eq!(proof.path, expected, "consistency {first} -> {second}");
        proof
            .verify(&log.root_at(first).unwrap(), &log.root_at(second).unwrap())
            .unwrap();
    }
}

#[test]
fn proofs_touch_logarithmically_many_nodes() {
    // The plan for any proof in a tree of n leaves needs at most 2·log2(n) stored nodes.
    for size in [1u64, 2, 3, 1000, 1 << 20, (1 << 20) + 12345, u64::MAX / 2] {
        let bound = 2 * (64 - size.leading_zeros()) as usize;
        for index in [0, size / 3, size - 1] {
            let nodes = ProofPlan::inclusion(index, size)
                .unwrap()
                .node_ids()
                .count();
            assert!(
                nodes <= bound,
                "inclusion {index}/{size}: {nodes} nodes > {bound}"
            );
        }
        for first in [1, size / 2 + 1, size] {
            let nodes = ProofPlan::consistency(first, size)
                .unwrap()
                .node_ids()
                .count();
            assert!(
                nodes <= bound,
                "consistency {first}/{size}: {nodes} nodes > {bound}"
            );
        }
    }
}

//! Criterion benchmarks of the hot paths: `cargo bench -p chaperone-core --bench core`.
//! Figures and targets are in docs/benchmarks.md.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use chaperone_core::{
    Address, B256, CommitmentKind, MerkleLog, Opening, Record, Secp256k1Signer, leaf_hash,
    recover_low_s, recover_low_s_k256,
};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sha2::{Digest, Sha256};

const N: u64 = 1 << 20;

fn log_of(n: u64) -> MerkleLog {
    let mut log = MerkleLog::new();
    for i in 0..n {
        log.append(&i.to_be_bytes());
    }
    log
}

fn sha256(c: &mut Criterion) {
    let data = vec![0xa5u8; 1 << 20];
    let mut g = c.benchmark_group("sha256");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("1 MiB", |b| b.iter(|| Sha256::digest(black_box(&data))));
    g.finish();
}

fn append(c: &mut Criterion) {
    const BATCH: u64 = 1 << 16;
    let leaves: Vec<B256> = (0..BATCH).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let mut g = c.benchmark_group("log append");
    g.throughput(Throughput::Elements(BATCH));
    g.bench_function("leaf hash (65,536 per iteration)", |b| {
        b.iter_batched(
            MerkleLog::new,
            |mut log| {
                for leaf in &leaves {
                    log.append_leaf_hash(*leaf);
                }
                log
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("leaf data, 32 bytes (65,536 per iteration)", |b| {
        b.iter_batched(
            MerkleLog::new,
            |mut log| {
                for leaf in &leaves {
                    log.append(leaf.as_slice());
                }
                log
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn proofs(c: &mut Criterion) {
    let log = log_of(N);
    let root = log.root();
    let index: u64 = 777_777;
    let leaf = leaf_hash(&index.to_be_bytes());
    let proof = log.inclusion_proof(index, N).unwrap();
    let old = N - 30_000;
    let consistency = log.consistency_proof(old, N).unwrap();
    let old_root = log.root_at(old).unwrap();

    let mut g = c.benchmark_group("proofs at n = 2^20 (in-memory store)");
    let mut i = 0u64;
    g.bench_function("inclusion: generate", |b| {
        b.iter(|| {
            i = (i + 7919) % N;
            log.inclusion_proof(black_box(i), N).unwrap()
        })
    });
    g.bench_function("inclusion: verify", |b| {
        b.iter(|| proof.verify(black_box(&leaf), &root).unwrap())
    });
    g.bench_function("consistency: generate", |b| {
        b.iter(|| log.consistency_proof(black_box(old), N).unwrap())
    });
    g.bench_function("consistency: verify", |b| {
        b.iter(|| consistency.verify(black_box(&old_root), &root).unwrap())
    });
    g.finish();
}

fn records(c: &mut Criterion) {
    let input = vec![b'i'; 1024];
    let output = vec![b'o'; 1024];
    let agent = Address::repeat_byte(0xaa);
    let mut g = c.benchmark_group("record");
    g.throughput(Throughput::Elements(1));
    g.bench_function(
        "commit 1 KiB input + 1 KiB output, encode, leaf hash",
        |b| {
            b.iter(|| {
                let input = Opening::new(CommitmentKind::Input, black_box(&input).clone()).unwrap();
                let output =
                    Opening::new(CommitmentKind::Output, black_box(&output).clone()).unwrap();
                let record = Record {
                    agent,
                    sequence: 1,
                    timestamp_ms: 1_750_000_000_000,
                    model: "gpt-4o-2024-08-06".into(),
                    input: input.commitment(),
                    output: output.commitment(),
                    metadata: None,
                    previous: B256::repeat_byte(1),
                };
                record.leaf_hash().unwrap()
            })
        },
    );
    g.finish();
}

/// The physical reference for the co-sign service: it recovers the agent's signature and signs
/// once per approval.
fn secp256k1(c: &mut Criterion) {
    let signer = Secp256k1Signer::random().unwrap();
    let digest = leaf_hash(b"digest");
    let signature = signer.sign_digest(&digest).unwrap();
    let mut g = c.benchmark_group("secp256k1");
    g.bench_function("sign (k256)", |b| {
        b.iter(|| signer.sign_digest_k256(black_box(&digest)).unwrap())
    });
    g.bench_function("sign (libsecp256k1, the service's)", |b| {
        b.iter(|| signer.sign_digest(black_box(&digest)).unwrap())
    });
    g.bench_function("recover (k256)", |b| {
        b.iter(|| recover_low_s_k256(black_box(&signature), &digest).unwrap())
    });
    g.bench_function("recover (libsecp256k1, the service's)", |b| {
        b.iter(|| recover_low_s(black_box(&signature), &digest).unwrap())
    });
    g.finish();
}

criterion_group!(benches, sha256, append, proofs, records, secp256k1);
criterion_main!(benches);

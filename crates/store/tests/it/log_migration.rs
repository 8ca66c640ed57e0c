//! Server migration 0004 turns a log stored one row per record (migrations 0001–0003) into one
//! row per batch. A log written in the old shape must read the same afterwards, and grow.

use chaperone_core::{
    B256, Bytes, Commitment, CommitmentKind, Frontier, MerkleLog, Record, Salt, Secp256k1Signer,
    SignedBatch,
};
use chaperone_store::{RecordFilter, Store};
use sqlx::{AnyPool, Executor};

use crate::{postgres_url, sqlite_url};

fn hex(bytes: impl AsRef<[u8]>) -> String {
    Bytes::copy_from_slice(bytes.as_ref()).to_string()
}

/// `count` records continuing `previous` (sequence, leaf hash), signed as one batch.
pub(crate) fn batch(key: &Secp256k1Signer, first: u64, previous: B256, count: u64) -> SignedBatch {
    let mut records = Vec::new();
    let mut previous = previous;
    for sequence in first..first + count {
        let salt = Salt::random().unwrap();
        let record = Record {
            agent: key.address(),
            sequence,
            timestamp_ms: 1_700_000_000_000 + sequence,
            model: format!("model-{}", sequence % 2),
            input: Commitment::compute(CommitmentKind::Input, &salt, b"in"),
            output: Commitment::compute(CommitmentKind::Output, &salt, b"out"),
            metadata: None,
            previous,
        };
        previous = record.leaf_hash().unwrap();
        records.push(record);
    }
    SignedBatch::sign(records, key).unwrap()
}

/// Migrates `url` to 0003 and writes `batches` as that schema stored them.
async fn write_old_shape(url: &str, batches: &[SignedBatch]) {
    sqlx::any::install_default_drivers();
    let pool = AnyPool::connect(url).await.unwrap();
    let mut migrator = if url.starts_with("sqlite:") {
        sqlx::migrate!("../../migrations/sqlite")
    } else {
        sqlx::migrate!("../../migrations/postgres")
    };
    migrator.migrations = migrator
        .migrations
        .iter()
        .filter(|m| m.version <= 3)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    migrator.run(&pool).await.unwrap();

    let mut frontier = Frontier::from_parts(0, vec![]).unwrap();
    let mut last = (0, B256::ZERO);
    for batch in batches {
        let leaves = batch.verify().unwrap();
        let root = batch.root().unwrap();
        let first_index = frontier.size();
        let agent = hex(batch.records[0].agent);
        let insert = format!(
            "INSERT INTO record_batches (batch_root, agent, first_index, size, signature, \
             received_at) VALUES ('{root}', '{agent}', {first_index}, {}, '{}', 1)",
            leaves.len(),
            hex(batch.signature.as_bytes()),
        );
        pool.execute(sqlx::AssertSqlSafe(insert)).await.unwrap();
        for (i, (record, leaf)) in batch.records.iter().zip(&leaves).enumerate() {
            let insert = format!(
                "INSERT INTO records (leaf_index, leaf_hash, agent, sequence, timestamp_ms, \
                 model, encoded, batch_root, batch_index) VALUES ({}, '{leaf}', '{agent}', {}, \
                 {}, '{}', '{}', '{root}', {i})",
                frontier.size(),
                record.sequence,
                record.timestamp_ms,
                record.model,
                hex(record.encode().unwrap()),
            );
            pool.execute(sqlx::AssertSqlSafe(insert)).await.unwrap();
            frontier.push(*leaf, |_, _| {});
            last = (record.sequence + 1, *leaf);
        }
    }
    let peaks = serde_json::to_string(frontier.peaks()).unwrap();
    let state = format!(
        "UPDATE log_state SET size = {}, peaks = '{peaks}' WHERE id = 1",
        frontier.size()
    );
    pool.execute(sqlx::AssertSqlSafe(state)).await.unwrap();
    let agent = format!(
        "INSERT INTO agents (address, next_sequence, last_leaf_hash, record_count, \
         first_seen_ms, last_seen_ms) VALUES ('{}', {}, '{}', {}, 0, 0)",
        hex(batches[0].records[0].agent),
        last.0,
        last.1,
        last.0
    );
    pool.execute(sqlx::AssertSqlSafe(agent)).await.unwrap();
    pool.close().await;
}

async fn reads_the_same_after_migrating(url: &str) {
    let key = Secp256k1Signer::random().unwrap();
    let first = batch(&key, 0, B256::ZERO, 3);
    let second = batch(&key, 3, first.verify().unwrap()[2], 2);
    write_old_shape(url, &[first.clone(), second.clone()]).await;

    let store = Store::connect(url).await.unwrap();
    let leaves: Vec<B256> = [&first, &second]
        .iter()
        .flat_map(|b| b.verify().unwrap())
        .collect();
    let records: Vec<&Record> = first.records.iter().chain(&second.records).collect();

    let logged = store.record(leaves[3]).await.unwrap().unwrap();
    assert_eq!(
        (logged.index, &logged.record, logged.batch_root),
        (3, records[3], second.root().unwrap())
    );
    assert_eq!(
        store.batch_membership(leaves[1]).await.unwrap().unwrap(),
        first.membership(1).unwrap()
    );
    assert_eq!(store.record(B256::repeat_byte(1)).await.unwrap(), None);

    let mut tree = MerkleLog::new();
    for leaf in &leaves {
        tree.append_leaf_hash(*leaf);
    }
    assert_eq!(store.log_head().await.unwrap(), (5, tree.root()));
    assert_eq!(
        store.inclusion_proof(4, 5).await.unwrap(),
        tree.inclusion_proof(4, 5).unwrap()
    );

    let all = RecordFilter {
        agent: Some(key.address()),
        limit: 10,
        ..RecordFilter::default()
    };
    let listed = store.records(&all).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|r| (r.index, r.leaf_hash))
            .collect::<Vec<_>>(),
        leaves
            .iter()
            .copied()
            .enumerate()
            .map(|(i, l)| (i as u64, l))
            .collect::<Vec<_>>()
    );
    let page = RecordFilter {
        model: Some("model-1".into()),
        after_index: Some(1),
        limit: 1,
        ..all.clone()
    };
    let listed = store.records(&page).await.unwrap();
    assert_eq!(listed.iter().map(|r| r.index).collect::<Vec<_>>(), vec![3]);

    // The migrated log grows, and a batch written before the migration is still a replay.
    let third = batch(&key, 5, leaves[4], 2);
    let third_leaves = third.verify().unwrap();
    let appended = store
        .append_batch(&third, &third_leaves, 2, &[])
        .await
        .unwrap();
    assert_eq!((appended.first_index, appended.log_size), (5, 7));
    assert_eq!(
        store.record(third_leaves[1]).await.unwrap().unwrap().index,
        6
    );
    let replay = store
        .append_batch(&first, &leaves[..3], 3, &[])
        .await
        .unwrap();
    assert!(replay.replayed);
    assert_eq!((replay.first_index, replay.log_size), (0, 7));
}

#[tokio::test]
async fn a_log_stored_per_record_reads_the_same_after_migration_0004() {
    reads_the_same_after_migrating(&sqlite_url()).await;
    if let Some(url) = postgres_url().await {
        reads_the_same_after_migrating(&url).await;
    }
}

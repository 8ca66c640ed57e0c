//! What the evidence pack reads: anchored checkpoints in size order after a size (signed but
//! unanchored ones are skipped), each checkpoint's anchoring lag within a period, and records by
//! when the server received them or by leaf hash.

use chaperone_core::B256;
use chaperone_store::{Anchor, AnchorLag, StoredCheckpoint};

use crate::stores;

#[tokio::test]
async fn anchored_checkpoints_come_in_size_order_and_skip_unanchored_ones() {
    for store in stores().await {
        for (size, signed_at, anchored_at) in
            [(4, 100, Some(130)), (9, 200, None), (15, 300, Some(302))]
        {
            let root = B256::repeat_byte(size as u8);
            let checkpoint = StoredCheckpoint {
                size,
                root,
                note: format!("note {size}"),
            };
            store.save_checkpoint(&checkpoint, signed_at).await.unwrap();
            if let Some(at) = anchored_at {
                let anchor = Anchor {
                    size,
                    root,
                    tx_hash: B256::repeat_byte(0xa0 + size as u8),
                    block_number: size,
                };
                store.save_anchor(&anchor, at).await.unwrap();
            }
        }
        let sizes = |found: Vec<(StoredCheckpoint, Anchor)>| -> Vec<u64> {
            found
                .iter()
                .map(|(c, a)| {
                    assert_eq!((c.size, c.root), (a.size, a.root));
                    c.size
                })
                .collect()
        };
        assert_eq!(
            sizes(store.anchored_checkpoints(0, 10).await.unwrap()),
            [4, 15]
        );
        // A record at index 4 is covered by the next anchored checkpoint, not the signed 9.
        assert_eq!(sizes(store.anchored_checkpoints(4, 1).await.unwrap()), [15]);
        assert_eq!(
            sizes(store.anchored_checkpoints(15, 10).await.unwrap()),
            Vec::<u64>::new()
        );
        let (note, tx) = {
            let found = store.anchored_checkpoints(3, 1).await.unwrap();
            (found[0].0.note.clone(), found[0].1.tx_hash)
        };
        assert_eq!((note.as_str(), tx), ("note 4", B256::repeat_byte(0xa4)));

        assert_eq!(
            store.anchor_lags(0, 1000, 10).await.unwrap(),
            [
                AnchorLag {
                    size: 4,
                    signed_at: 100,
                    anchored_at: 130
                },
                AnchorLag {
                    size: 15,
                    signed_at: 300,
                    anchored_at: 302
                },
            ]
        );
        assert_eq!(
            store.anchor_lags(150, 1000, 10).await.unwrap().len(),
            1,
            "signed in the period"
        );
        assert_eq!(
            store.anchor_lags(0, 1000, 1).await.unwrap().len(),
            1,
            "the limit"
        );
    }
}

/// Red team M4 and L1: the pack reads records by when the server received their batch (the
/// agent's own timestamps do not matter), one agent's only when it names one, a few batches
/// at a time by (receive time, log index); and decision records by leaf hash.
#[tokio::test]
async fn records_are_read_by_receive_time_and_agent_and_by_leaf() {
    use chaperone_core::Secp256k1Signer;
    use chaperone_store::ReceivedFilter;

    use crate::log_migration::batch;

    for store in stores().await {
        let (alice, bob) = (
            Secp256k1Signer::random().unwrap(),
            Secp256k1Signer::random().unwrap(),
        );
        let mut heads = [(0u64, B256::ZERO); 2];
        let mut leaves = Vec::new();
        // (agent, records, received at ms): the records all claim 2023 (log_migration's batch).
        for (who, count, received) in [(0, 2, 1_000), (1, 3, 2_000), (0, 1, 3_000), (1, 1, 9_000)] {
            let key = [&alice, &bob][who];
            let (next, previous) = heads[who];
            let signed = batch(key, next, previous, count);
            let batch_leaves = signed.leaf_hashes().unwrap();
            store
                .append_batch(&signed, &batch_leaves, received, &[])
                .await
                .unwrap();
            heads[who] = (next + count, *batch_leaves.last().unwrap());
            leaves.extend(batch_leaves);
        }
        let read = |agent, batches| {
            let store = store.clone();
            async move {
                let mut all = Vec::new();
                let mut after = None;
                loop {
                    let (records, next) = store
                        .records_received(&ReceivedFilter {
                            agent,
                            from_ms: 1_000,
                            to_ms: 9_000,
                            after,
                            batches,
                        })
                        .await
                        .unwrap();
                    all.extend(records.into_iter().map(|r| (r.index, r.received_ms)));
                    match next {
                        Some(cursor) => after = Some(cursor),
                        None => return all,
                    }
                }
            }
        };
        // Everyone's in [1000, 9000): not the batch received at 9000.
        for batches in [1, 2, 10] {
            assert_eq!(
                read(None, batches).await,
                [
                    (0, 1_000),
                    (1, 1_000),
                    (2, 2_000),
                    (3, 2_000),
                    (4, 2_000),
                    (5, 3_000)
                ]
            );
        }
        // Alice's only.
        assert_eq!(
            read(Some(alice.address()), 1).await,
            [(0, 1_000), (1, 1_000), (5, 3_000)]
        );
        // By leaf: those the log holds, in log order, whatever order they are asked in.
        let mut asked = vec![leaves[6], leaves[1], B256::repeat_byte(7), leaves[3]];
        asked.reverse();
        let found = store.records_by_leaf(&asked).await.unwrap();
        let indexes: Vec<u64> = found.iter().map(|r| r.index).collect();
        assert_eq!(indexes, [1, 3, 6]);
        assert_eq!(found[2].received_ms, 9_000);
        assert_eq!(found[0].record.agent, alice.address());
    }
}

/// Fourth red-team review (G, Low): a batch was dated with the clock of whoever appended it
/// (the anchorer's tick start, another replica's clock): after a skew or a failover a later
/// batch could be received "before" an earlier one, and an honest evidence pack failed its
/// chain check. A batch is received no earlier than the log's last batch.
#[tokio::test]
async fn receive_times_never_go_backwards_in_log_order() {
    use chaperone_core::Secp256k1Signer;

    use crate::log_migration::batch;

    for store in stores().await {
        let agent = Secp256k1Signer::random().unwrap();
        let first = batch(&agent, 0, B256::ZERO, 1);
        let first_leaves = first.leaf_hashes().unwrap();
        let appended = store
            .append_batch(&first, &first_leaves, 5_000, &[])
            .await
            .unwrap();
        assert_eq!(appended.received_ms, 5_000);
        let second = batch(&agent, 1, *first_leaves.last().unwrap(), 1);
        let second_leaves = second.leaf_hashes().unwrap();
        let appended = store
            .append_batch(&second, &second_leaves, 4_000, &[])
            .await
            .unwrap();
        assert_eq!(
            appended.received_ms, 5_000,
            "a batch appended with a clock behind the log's was dated before the last batch"
        );
        let found = store.records_by_leaf(&second_leaves).await.unwrap();
        assert_eq!(found[0].received_ms, 5_000);
    }
}

/// Fifth red-team review of issue 29 (Low-medium): the receive-time clamp (a batch is received
/// no earlier than the log's last) silently kept a clock that ran ahead: one batch dated an
/// hour ahead dated every later batch the same until real time caught up, and each bundle of
/// those batches failed the verifier's anchoring bound. Held further ahead of the clock than
/// the tolerance, the store warns, once until the clock catches up.
#[tokio::test]
async fn a_clock_that_ran_ahead_is_warned_about_once() {
    use std::sync::{Arc, Mutex};

    use chaperone_core::{RECEIVE_TIME_TOLERANCE_MS, Secp256k1Signer};

    use crate::log_migration::batch;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    const WARNING: &str = "ahead of this server's clock";
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    let warnings = || {
        String::from_utf8_lossy(&captured.0.lock().unwrap())
            .matches(WARNING)
            .count()
    };
    for store in stores().await {
        let before = warnings();
        let agent = Secp256k1Signer::random().unwrap();
        let (mut sequence, mut previous) = (0, B256::ZERO);
        let mut append = async |received_ms: u64| {
            let next = batch(&agent, sequence, previous, 1);
            let leaves = next.leaf_hashes().unwrap();
            let appended = store
                .append_batch(&next, &leaves, received_ms, &[])
                .await
                .unwrap();
            (sequence, previous) = (sequence + 1, *leaves.last().unwrap());
            appended.received_ms
        };
        let now = 10_000_000;
        // A batch dated an hour ahead, then the clock back to real time: held, warned once.
        assert_eq!(append(now + 3_600_000).await, now + 3_600_000);
        assert_eq!(append(now).await, now + 3_600_000);
        assert_eq!(append(now + 1_000).await, now + 3_600_000);
        assert_eq!(
            warnings() - before,
            1,
            "a clock held ahead is warned about once"
        );
        // Held within the tolerance: no warning. Caught up, then ahead again: warned again.
        append(now + 3_600_000 - RECEIVE_TIME_TOLERANCE_MS).await;
        append(now + 3_600_000 + 1).await;
        assert_eq!(warnings() - before, 1);
        append(now + 7_200_000).await;
        append(now + 3_700_000).await;
        assert_eq!(
            warnings() - before,
            2,
            "a second episode is warned about again"
        );
    }
}

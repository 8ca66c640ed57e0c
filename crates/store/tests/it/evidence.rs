//! What the evidence pack reads: anchored checkpoints in size order after a size (signed but
//! unanchored ones are skipped), and each checkpoint's anchoring lag within a period.

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

//! SQLite's write-ahead log under a writer that never pauses: the checkpointer
//! (crates/store/src/checkpoint.rs) must still get the log started over, or it grows to the
//! writer's backstop and the writer's own checkpoints (10 ms and more each) come back.

use chaperone_core::Address;
use chaperone_store::{Store, WalletRecord};

use crate::sqlite_url;

/// SQLite's page size here, and a frame's size in the log (page plus header).
const FRAME_BYTES: u64 = 4096 + 24;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_starts_over_while_the_writer_keeps_committing() {
    let url = sqlite_url();
    let store = Store::connect(&url).await.unwrap();
    let log = format!(
        "{}-wal",
        url.trim_start_matches("sqlite:")
            .trim_end_matches("?mode=rwc")
    );
    // One commit after another, each a few frames, with hardly a moment where every frame is
    // copied (without the checkpointer's last step on the writer, the log reached 5,646).
    for i in 0..10_000u64 {
        let wallet = WalletRecord {
            address: Address::left_padding_from(&(0x20_0000 + i).to_be_bytes()),
            chain_id: 31337,
            agent: Address::repeat_byte(0xa9),
        };
        store.register_wallet(&wallet, 1).await.unwrap();
    }
    let frames = std::fs::metadata(&log).unwrap().len() / FRAME_BYTES;
    // The checkpointer starts it over at 2,000 frames (2,057-2,071 seen); what the writer
    // commits during the last pass comes on top.
    assert!(
        frames < 3_000,
        "the write-ahead log grew to {frames} frames: it was not started over"
    );
    assert_eq!(store.wallet_addresses().await.unwrap().len(), 10_000);
}

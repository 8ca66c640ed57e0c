//! Criterion benchmark of the SDK's hot path: `cargo bench -p chaperone-sdk --bench sdk`.
//! `Recorder::record` with 1 KiB of input and 1 KiB of output: two salted commitments, the
//! record's leaf hash and staging. Batching, signing, the outbox and delivery run in the
//! background and are not timed (the load generator `examples/throughput.rs` measures them).
#![allow(missing_docs, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use chaperone_sdk::{Recorder, RecorderConfig, Secp256k1Signer};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Records per timed burst; the queue holds a whole burst, so `record` never waits on the
/// background tasks while it is timed, and the outbox is flushed between bursts.
const BURST: u64 = 5_000;

fn record(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // A folder of its own, which the SDK creates private: it refuses the shared temporary
    // folder, where other users could read the salts.
    let folder = std::env::temp_dir().join(format!("chaperone_bench_{}", std::process::id()));
    let data = folder.join("agent.db");
    // No server: delivery is retried in the background, off the hot path.
    let mut config = RecorderConfig::new("http://127.0.0.1:9", &data);
    config.queue = BURST as usize;
    config.max_undelivered = u64::MAX;
    config.retry = (Duration::from_secs(60), Duration::from_secs(60));
    let recorder = runtime.block_on(async {
        Recorder::open(config, Secp256k1Signer::random().unwrap())
            .await
            .unwrap()
    });
    let (input, output) = (vec![0x61u8; 1024], vec![0x62u8; 1024]);
    let mut g = c.benchmark_group("record");
    g.throughput(Throughput::Elements(1));
    g.bench_function("1 KiB in + 1 KiB out", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let (recorder, input, output) = (&recorder, &input, &output);
            async move {
                let mut timed = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let burst = left.min(BURST);
                    let start = Instant::now();
                    for _ in 0..burst {
                        recorder
                            .record("bench-model", input, output, None)
                            .await
                            .unwrap();
                    }
                    timed += start.elapsed();
                    recorder.flush().await.unwrap();
                    left -= burst;
                }
                timed
            }
        })
    });
    g.finish();
    drop(recorder);
    std::fs::remove_dir_all(&folder).ok();
}

criterion_group!(benches, record);
criterion_main!(benches);

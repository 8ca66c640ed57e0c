//! Load generator for the SDK: `cargo run --release -p chaperone-sdk --example throughput`.
//!
//! Starts a Chaperone server in this process on loopback (SQLite, or PostgreSQL with
//! `--database postgres://…`, in a fresh database `chaperone_throughput_PID` dropped at the end),
//! then, as an agent, records `--records N` model calls (default
//! 200,000) with 1 KiB of input and output each, and reports:
//! - the hot-path latency of `record` (p50/p99/p99.9), timed one call at a time in bursts the
//!   queue holds (the outbox is flushed between bursts, untimed): for the SDK alone (its
//!   server unreachable), and with the server working in the same process;
//! - the same latency recording flat out, where `record` also waits on backpressure;
//! - the end-to-end rate: records delivered (with receipts) per second, from the first
//!   `record` to the last receipt, with batching.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use chaperone_core::Secp256k1Signer;
use chaperone_sdk::{Recorder, RecorderConfig};
use chaperone_server::{CheckpointConfig, ServiceConfig, ServiceKeys, start};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize]
}

/// Ten bursts of 10,000 `record` calls (each fits the queue), each call timed, after two
/// untimed warm-up bursts (the local file grows, the allocator settles); the outbox is flushed
/// between bursts, untimed.
async fn time_bursts(recorder: &Recorder, input: &[u8], output: &[u8]) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(120_000);
    for _ in 0..12 {
        for _ in 0..10_000 {
            let start = Instant::now();
            recorder
                .record("bench-model", input, output, None)
                .await
                .unwrap();
            latencies.push(start.elapsed());
        }
        recorder.flush().await.unwrap();
    }
    latencies.split_off(20_000)
}

/// Prints the percentiles of `latencies` (and empties it).
fn report(what: &str, latencies: &mut Vec<Duration>) {
    latencies.sort();
    let us = |p| percentile(latencies, p).as_secs_f64() * 1e6;
    println!(
        "{what} (1 KiB + 1 KiB), {} calls: p50 {:.2} µs, p99 {:.2} µs, p99.9 {:.2} µs",
        latencies.len(),
        us(0.50),
        us(0.99),
        us(0.999),
    );
    latencies.clear();
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (mut records, mut server, mut batch) = (200_000u64, None, 5_000usize);
    while let Some(flag) = args.next() {
        let value = args.next().expect("every flag takes a value");
        match flag.as_str() {
            "--records" => records = value.parse().unwrap(),
            "--database" => server = Some(value),
            "--batch" => batch = value.parse().unwrap(),
            other => panic!("unknown flag {other}"),
        }
    }
    let dir = std::env::temp_dir().join(format!("chaperone_throughput_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A fresh database every run: a log that grew over earlier runs would skew the figures.
    let database = match &server {
        Some(server) => {
            let name = format!("chaperone_throughput_{}", std::process::id());
            chaperone_store::Store::create_database(server, &name)
                .await
                .unwrap()
        }
        None => format!("sqlite:{}?mode=rwc", dir.join("server.db").display()),
    };
    let agent = Secp256k1Signer::random().unwrap();
    let config = ServiceConfig {
        database: database.clone(),
        chain_id: 31337,
        listen: "127.0.0.1:0".into(),
        rpc_url: None,
        confirmations: 0,
        start_block: 0,
        audit_log: None,
        checkpoints: CheckpointConfig::default(),
        cosigner: None,
        operator: None,
        admin_token_env: None,
        wallets: vec![],
        agents: vec![agent.address()],
        webhook: None,
    };
    let operator = Secp256k1Signer::random().unwrap();
    let keys = ServiceKeys {
        cosigner: operator.clone(),
        operator,
        admin_token: None,
    };
    let service = start(&config, keys, std::future::pending()).await.unwrap();
    let url = format!("http://{}", service.local_addr);

    let mut recorder_config = RecorderConfig::new(&url, dir.join("agent.db"));
    recorder_config.max_batch = batch;
    let recorder = Recorder::open(recorder_config, agent).await.unwrap();
    let (input, output) = (vec![0x61u8; 1024], vec![0x62u8; 1024]);

    // The SDK alone: a second agent whose server is not there, so its deliverer only retries
    // (every 10 s) while its batcher signs and persists; no server work shares the cores.
    let mut alone = RecorderConfig::new("http://127.0.0.1:9", dir.join("alone.db"));
    alone.max_batch = batch;
    alone.retry = (Duration::from_secs(10), Duration::from_secs(10));
    let lone = Recorder::open(alone, Secp256k1Signer::random().unwrap())
        .await
        .unwrap();
    let start = Instant::now();
    report(
        "record, SDK alone (no server)",
        &mut time_bursts(&lone, &input, &output).await,
    );
    println!(
        "SDK alone: 120,000 records committed and persisted to the outbox at {:.0} records/s",
        120_000.0 / start.elapsed().as_secs_f64()
    );
    drop(lone);

    // With the server: the same bursts while delivery and the server work in the background.
    report(
        "record, bursts within the queue",
        &mut time_bursts(&recorder, &input, &output).await,
    );
    recorder.sync().await.unwrap();
    let mut latencies = Vec::with_capacity(records as usize);

    // End to end: as fast as the agent can record, until every record has a receipt. Each
    // call is timed too: here `record` also waits whenever the queue is full (backpressure).
    let delivered_before = recorder.progress().delivered;
    let start = Instant::now();
    for _ in 0..records {
        let call = Instant::now();
        recorder
            .record("bench-model", &input, &output, None)
            .await
            .unwrap();
        latencies.push(call.elapsed());
    }
    let recorded = start.elapsed();
    let delivered_while_recording = recorder.progress().delivered - delivered_before;
    report("record, flat out (with backpressure)", &mut latencies);
    recorder.sync().await.unwrap();
    let delivered = start.elapsed();
    println!(
        "end to end ({}, batches of ≤ {batch}): {records} records recorded in {:.2} s, all \
         delivered in {:.2} s: {:.0} records/s",
        if database.starts_with("postgres") {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        recorded.as_secs_f64(),
        delivered.as_secs_f64(),
        records as f64 / delivered.as_secs_f64()
    );
    // After the last `record`, delivery has the cores to itself.
    let rest = records - delivered_while_recording;
    println!(
        "  {delivered_while_recording} delivered while recording ({:.0}/s), the other {rest} \
         after it ({:.0}/s)",
        delivered_while_recording as f64 / recorded.as_secs_f64(),
        rest as f64 / (delivered - recorded).as_secs_f64()
    );
    std::fs::remove_dir_all(&dir).ok();
    if let Some(server) = server {
        let name = format!("chaperone_throughput_{}", std::process::id());
        chaperone_store::Store::drop_database(&server, &name)
            .await
            .unwrap();
    }
}

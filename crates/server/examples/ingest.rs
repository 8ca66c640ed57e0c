//! Load generator for `POST /v1/records` with anchoring running, on SQLite or PostgreSQL:
//!
//! ```text
//! cargo run --release -p chaperone-server --example ingest                      # SQLite (temp file)
//! cargo run --release -p chaperone-server --example ingest -- postgres://postgres@127.0.0.1:5432/test
//! ```
//!
//! Starts Anvil (the pinned one), deploys `AuditLog`, creates a log, and runs the server in this
//! process on a loopback socket with the anchoring worker checkpointing and anchoring every
//! second (client, server, database and Anvil share the machine's two cores). 16 agents each
//! send their pre-signed batches of 500 records in order, concurrently. Reported: sustained
//! records/s, p50/p99 time from a batch's receipt to the first anchored checkpoint that covers
//! it, and the anchoring gas per record. On PostgreSQL it runs in a fresh database
//! `chaperone_ingest_PID`, dropped at the end.
#![allow(clippy::unwrap_used, missing_docs)]

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use alloy::{
    network::EthereumWallet,
    providers::{Provider, ProviderBuilder},
    transports::http::reqwest::Client,
};
use chaperone_chain::{AuditLog, Devnet, create_log, deploy};
use chaperone_core::{
    B256, Commitment, CommitmentKind, Record, Salt, Secp256k1Signer, SignedBatch,
};
use chaperone_server::{AnchorPolicy, Anchorer, AppState, LogConfig, app};
use chaperone_store::Store;

const AGENTS: usize = 16;
const BATCHES_PER_AGENT: usize = 25;
const BATCH: usize = 500;

async fn fresh_store(url: Option<String>) -> Store {
    match url {
        Some(url) => {
            let name = format!("chaperone_ingest_{}", std::process::id());
            let url = Store::create_database(&url, &name).await.unwrap();
            Store::connect(&url).await.unwrap()
        }
        None => {
            let path =
                std::env::temp_dir().join(format!("chaperone_ingest_{}.db", std::process::id()));
            Store::connect(&format!("sqlite:{}?mode=rwc", path.display()))
                .await
                .unwrap()
        }
    }
}

/// An agent's batches, committed and signed before timing starts.
fn agent_batches(agent: &Secp256k1Signer) -> Vec<String> {
    let mut previous = B256::ZERO;
    let mut sequence = 0;
    let content = vec![b'x'; 1024];
    (0..BATCHES_PER_AGENT)
        .map(|_| {
            let records = (0..BATCH)
                .map(|_| {
                    let record = Record {
                        agent: agent.address(),
                        sequence,
                        timestamp_ms: 1_750_000_000_000 + sequence,
                        model: "gpt-4o-2024-08-06".into(),
                        input: Commitment::compute(
                            CommitmentKind::Input,
                            &Salt::random().unwrap(),
                            &content,
                        ),
                        output: Commitment::compute(
                            CommitmentKind::Output,
                            &Salt::random().unwrap(),
                            &content,
                        ),
                        metadata: None,
                        previous,
                    };
                    previous = record.leaf_hash().unwrap();
                    sequence += 1;
                    record
                })
                .collect();
            serde_json::to_string(&SignedBatch::sign(records, agent).unwrap()).unwrap()
        })
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let devnet = Devnet::start().unwrap();
    let key = devnet.signer(0);
    let operator = Secp256k1Signer::from_bytes(&key.to_bytes()).unwrap();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(key))
        .connect_http(devnet.rpc_url().parse().unwrap())
        .erased();
    let deployment = deploy(&provider).await.unwrap();
    let log_id = create_log(&provider, deployment.audit_log, operator.address())
        .await
        .unwrap();

    let server = std::env::args().nth(1);
    let store = fresh_store(server.clone()).await;
    let cosigner = Secp256k1Signer::random().unwrap();
    let log = LogConfig::anchored(
        devnet.chain_id(),
        operator,
        provider.clone(),
        deployment.audit_log,
        log_id,
    );
    let state = AppState::new(store.clone(), cosigner.clone(), devnet.chain_id())
        .with_log(log.clone(), Default::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/records", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app(state)).await.unwrap() });

    // The anchoring worker, as the server binary runs it: a tick every second.
    let started = Instant::now();
    let anchored_at: Arc<Mutex<Vec<(f64, u64)>>> = Arc::default();
    let mut anchorer = Anchorer::new(
        store.clone(),
        log,
        cosigner,
        Some(provider.clone()),
        AnchorPolicy {
            interval_secs: 1,
            max_records: u64::MAX,
        },
    );
    let seen = anchored_at.clone();
    tokio::spawn(async move {
        loop {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            if let Ok(report) = anchorer.tick(now).await
                && let Some((size, _)) = report.anchored
            {
                seen.lock()
                    .unwrap()
                    .push((started.elapsed().as_secs_f64(), size));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });

    eprintln!("signing {} records…", AGENTS * BATCHES_PER_AGENT * BATCH);
    let mut agents: Vec<Vec<String>> = Vec::new();
    for _ in 0..AGENTS {
        // Only registered agents may append.
        let agent = Secp256k1Signer::random().unwrap();
        store
            .register_agent(agent.address(), "load", 0)
            .await
            .unwrap();
        agents.push(agent_batches(&agent));
    }

    let client = Client::new();
    let receipts: Arc<Mutex<Vec<(f64, u64)>>> = Arc::default();
    let begin = Instant::now();
    let mut tasks = Vec::new();
    for batches in agents {
        let (client, url, receipts) = (client.clone(), url.clone(), receipts.clone());
        tasks.push(tokio::spawn(async move {
            for body in batches {
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status().as_u16(), 201);
                let answer: serde_json::Value = response.json().await.unwrap();
                let last = answer["records"][BATCH - 1]["index"].as_u64().unwrap();
                receipts
                    .lock()
                    .unwrap()
                    .push((started.elapsed().as_secs_f64(), last));
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = begin.elapsed().as_secs_f64();
    let total = (AGENTS * BATCHES_PER_AGENT * BATCH) as u64;
    println!(
        "ingested {total} records in {elapsed:.2} s: {:.0} records/s",
        total as f64 / elapsed
    );

    // Wait until everything is anchored, then match receipts to anchors.
    while anchored_at
        .lock()
        .unwrap()
        .last()
        .is_none_or(|(_, size)| *size < total)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let anchors = anchored_at.lock().unwrap().clone();
    let mut latencies: Vec<f64> = receipts
        .lock()
        .unwrap()
        .iter()
        .map(|(at, last)| {
            let (anchored, _) = anchors.iter().find(|(_, size)| size > last).unwrap();
            anchored - at
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    println!(
        "receipt → anchored checkpoint: p50 {:.2} s, p99 {:.2} s over {} batches",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.len()
    );

    let filter = alloy::rpc::types::Filter::new()
        .address(deployment.audit_log)
        .event_signature(<AuditLog::Anchored as alloy::sol_types::SolEvent>::SIGNATURE_HASH)
        .from_block(0);
    let mut gas = 0u64;
    let logs = provider.get_logs(&filter).await.unwrap();
    for entry in &logs {
        let receipt = provider
            .get_transaction_receipt(entry.transaction_hash.unwrap())
            .await
            .unwrap()
            .unwrap();
        gas += receipt.gas_used;
    }
    println!(
        "anchoring: {} transactions, {gas} gas in all, {:.2} gas per record",
        logs.len(),
        gas as f64 / total as f64
    );
    if let Some(server) = server {
        // The fresh database served its run.
        let name = format!("chaperone_ingest_{}", std::process::id());
        chaperone_store::Store::drop_database(&server, &name)
            .await
            .unwrap();
    }
}

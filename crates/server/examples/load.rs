//! Load generator for `POST /v1/cosign` over real HTTP (loopback), on SQLite or PostgreSQL:
//!
//! ```text
//! cargo run --release -p chaperone-server --example load                      # SQLite (temp file)
//! cargo run --release -p chaperone-server --example load -- postgres://postgres@127.0.0.1:5432/test
//! cargo run --release -p chaperone-server --example load -- --wallets 1        # one hot wallet
//! cargo run --release -p chaperone-server --example load -- --replicas 2 postgres://…  # two servers
//! ```
//!
//! The server runs in this process on a loopback socket, on a runtime and threads of its own (as
//! a separate process would), so client and server share the machine's two cores, as they
//! would on one small host. Requests are distinct, signed by the
//! agents before timing starts, spread over 100 wallets, and all within policy (every one is an
//! approval that reserves).
//! Phase 1 measures the saturated approval rate; phase 2 sends at half that rate, open loop, and
//! measures latency; phase 3 floods one wallet (a window of 100 units) with 5,000 concurrent
//! requests while an unrelated wallet sends 100 requests/s, and reports the flood's answers by
//! status and the unrelated wallet's latency.
#![allow(clippy::unwrap_used, missing_docs)]

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use alloy::transports::http::reqwest::Client;
use chaperone_core::{Address, Bytes, Call, Execute, Secp256k1Signer, U256, policy::Policy};
use chaperone_server::{AppState, MAX_INFLIGHT_PER_WALLET, app};
use chaperone_store::{Store, WalletRecord};
use serde_json::json;

const CONCURRENCY: usize = 64;
const SATURATED_REQUESTS: u64 = 20_000;
const PACED_SECONDS: f64 = 5.0;
const WALLETS: u64 = 100;
const FLOOD: u64 = 5_000;

fn wallet(i: u64) -> Address {
    Address::left_padding_from(&(0x10_0000 + i).to_be_bytes())
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A fresh database per run (so earlier runs' history does not count): its URL.
async fn fresh_database(url: Option<String>) -> String {
    match url {
        Some(url) => {
            let name = format!("chaperone_load_{}", std::process::id());
            let _ = Store::drop_database(&url, &name).await;
            Store::create_database(&url, &name).await.unwrap()
        }
        None => {
            let path =
                std::env::temp_dir().join(format!("chaperone_load_{}.db", std::process::id()));
            let _ = std::fs::remove_file(&path);
            format!("sqlite:{}?mode=rwc", path.display())
        }
    }
}

fn bodies(agent: &Secp256k1Signer, wallets: u64, from: u64, count: u64) -> Vec<String> {
    bodies_for(agent, from, count, |nonce| wallet(nonce % wallets))
}

fn bodies_for(
    agent: &Secp256k1Signer,
    from: u64,
    count: u64,
    wallet: impl Fn(u64) -> Address,
) -> Vec<String> {
    (from..from + count)
        .map(|nonce| {
            let wallet = wallet(nonce);
            let execute = Execute {
                calls: vec![Call {
                    to: Address::repeat_byte(0xb0),
                    value: U256::from(1),
                    data: Bytes::new(),
                }],
                nonce: U256::from(nonce),
                // Within the policy's default max_valid_for (5 minutes).
                validUntil: now() + 240,
            };
            let sig = agent.sign_digest(&execute.digest(31337, wallet)).unwrap();
            json!({ "chain_id": 31337, "wallet": wallet, "execute": execute,
                    "agent_signature": Bytes::from(sig.as_bytes().to_vec()) })
            .to_string()
        })
        .collect()
}

async fn send(client: &Client, url: &str, body: String) -> Duration {
    let (status, took) = send_any(client, url, body).await;
    assert_eq!(status, 200);
    took
}

/// Sends one request; its status and latency.
async fn send_any(client: &Client, url: &str, body: String) -> (u16, Duration) {
    let start = Instant::now();
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    response.bytes().await.unwrap();
    (status, start.elapsed())
}

/// The nearest-rank percentile `p` of `sorted`, in milliseconds: the smallest value at least
/// `p` of the samples do not exceed (of 100 samples, p99 is the 99th, not the largest).
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let rank = (sorted.len() as f64 * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

/// Sets up the wallets and serves on a runtime of its own, in its own threads, as a separate
/// server process would (the clients' tasks never queue in front of the server's); returns the
/// co-sign URL.
fn start_server(database: String, setup: bool, agent: Address, flooded: Address) -> String {
    let (url_tx, url_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let store = Store::connect(&database).await.unwrap();
            let policy = Policy::from_json(&json!({
                "version": 1, "chains": [31337],
                "limits": [{ "token": "native", "per_transaction": "1000", "windows": [{ "window": "24h", "max": "1000000000" }] }],
            }).to_string()).unwrap();
            // The flooded wallet of phase 3: 100 units per window, as in the report that found
            // the flood took the service down.
            let mut small = policy.clone();
            small.limits[0].windows[0].max = chaperone_core::policy::Amount(U256::from(100));
            let wallets = (0..WALLETS).map(|i| (wallet(i), &policy));
            let wallets = wallets.chain([(flooded, &small)]).filter(|_| setup);
            for (address, policy) in wallets {
                let record = WalletRecord {
                    address,
                    chain_id: 31337,
                    agent,
                };
                store.register_wallet(&record, now()).await.unwrap();
                store.set_policy(address, policy, now()).await.unwrap();
            }
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/v1/cosign", listener.local_addr().unwrap());
            let router = app(AppState::new(
                store,
                Secp256k1Signer::random().unwrap(),
                31337,
            ));
            url_tx.send(url).unwrap();
            axum::serve(listener, router).await.unwrap()
        })
    });
    url_rx.recv().unwrap()
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (mut db_url, mut wallets, mut replicas) = (None, WALLETS, 1);
    while let Some(arg) = args.next() {
        let mut number = || -> u64 { args.next().and_then(|n| n.parse().ok()).expect("a number") };
        match arg.as_str() {
            "--wallets" => wallets = number().clamp(1, WALLETS),
            "--replicas" => replicas = number().max(1),
            url => db_url = Some(url.to_owned()),
        }
    }
    let backend = match (&db_url, replicas) {
        (None, 1) => "SQLite".to_owned(),
        (None, _) => panic!("replicas share a PostgreSQL database: give its URL"),
        (Some(_), 1) => "PostgreSQL".to_owned(),
        (Some(_), n) => format!("PostgreSQL, {n} replicas,"),
    };
    let agent = Secp256k1Signer::random().unwrap();
    let flooded = Address::repeat_byte(0xf1);
    let database = fresh_database(db_url).await;
    let urls: Vec<String> = (0..replicas)
        .map(|i| start_server(database.clone(), i == 0, agent.address(), flooded))
        .collect();
    let url = urls[0].clone();
    let client = Client::new();
    // Each replica admits MAX_INFLIGHT_PER_WALLET requests per wallet: more connections than
    // that would be refused (429), not measured.
    let concurrency =
        CONCURRENCY.min(wallets as usize * replicas as usize * MAX_INFLIGHT_PER_WALLET);
    let backend = format!("{backend} {wallets} wallet(s):");

    // Phase 1: saturated.
    let queue = Arc::new(Mutex::new(bodies(&agent, wallets, 0, SATURATED_REQUESTS)));
    let start = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|i| {
            let (queue, client, url) =
                (queue.clone(), client.clone(), urls[i % urls.len()].clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let Some(body) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    latencies.push(send(&client, &url, body).await);
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.await.unwrap());
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort();
    let rate = latencies.len() as f64 / elapsed;
    println!(
        "{backend} saturated ({concurrency} connections): {} approvals in {elapsed:.2} s = {rate:.0} approvals/s; p50 {:.2} ms, p99 {:.2} ms",
        latencies.len(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99)
    );

    // Phase 2: open loop at half the saturated rate.
    let paced_rate = rate / 2.0;
    let count = (paced_rate * PACED_SECONDS) as u64;
    let paced = bodies(&agent, wallets, SATURATED_REQUESTS, count);
    let interval = Duration::from_secs_f64(1.0 / paced_rate);
    let start = Instant::now();
    let mut handles = Vec::with_capacity(paced.len());
    for (i, body) in paced.into_iter().enumerate() {
        tokio::time::sleep_until((start + interval * i as u32).into()).await;
        let (client, url) = (client.clone(), urls[i % urls.len()].clone());
        handles.push(tokio::spawn(
            async move { send_any(&client, &url, body).await },
        ));
    }
    // Open loop: a wallet that finds MAX_INFLIGHT_PER_WALLET of its own requests still in
    // flight is told 429 (admission), which is counted, not a failure of the run.
    let (mut latencies, mut busy) = (Vec::new(), 0);
    for h in handles {
        let (status, took) = h.await.unwrap();
        match status {
            200 => latencies.push(took),
            429 => busy += 1,
            other => panic!("paced request answered {other}"),
        }
    }
    latencies.sort();
    println!(
        "{backend} paced at {paced_rate:.0}/s for {PACED_SECONDS} s: p50 {:.2} ms, p99 {:.2} ms ({busy} × 429)",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99)
    );

    if wallets < 2 || replicas > 1 {
        return;
    }
    // Phase 3: one wallet flooded, another served beside it by a client of its own (its own
    // thread and runtime, as another agent's process would be).
    let flood = bodies_for(&agent, 0, FLOOD, |_| flooded);
    let beside = bodies_for(&agent, 1_000_000, 100, |_| wallet(1));
    let beside_url = url.clone();
    let unrelated = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let client = Client::new();
            let start = Instant::now();
            let sends: Vec<_> = beside
                .into_iter()
                .enumerate()
                .map(|(i, body)| {
                    let (client, url) = (client.clone(), beside_url.clone());
                    let at = start + Duration::from_millis(10) * i as u32;
                    tokio::spawn(async move {
                        tokio::time::sleep_until(at.into()).await;
                        send_any(&client, &url, body).await
                    })
                })
                .collect();
            let mut out = Vec::new();
            for s in sends {
                out.push(s.await.unwrap());
            }
            out
        })
    });
    let start = Instant::now();
    let flooding: Vec<_> = flood
        .into_iter()
        .map(|body| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move { send_any(&client, &url, body).await.0 })
        })
        .collect();
    let mut answered = Vec::new();
    for h in flooding {
        answered.push(h.await.unwrap());
    }
    let flood_time = start.elapsed().as_secs_f64();
    let (mut latencies, mut refused) = (Vec::new(), 0);
    for (status, took) in unrelated.join().unwrap() {
        refused += usize::from(status != 200);
        latencies.push(took);
    }
    latencies.sort();
    let count = |f: &dyn Fn(u16) -> bool| answered.iter().filter(|&&s| f(s)).count();
    println!(
        "{backend} flood of {FLOOD} concurrent requests on one wallet ({flood_time:.2} s): {} approved, {} denied, {} 429, {} 5xx; unrelated wallet at 100/s: {} requests ({refused} not approved), p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        count(&|s| s == 200),
        count(&|s| s == 403),
        count(&|s| s == 429),
        count(&|s| s >= 500),
        latencies.len(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.last().unwrap().as_secs_f64() * 1000.0,
    );
}

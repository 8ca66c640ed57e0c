//! Criterion benchmark of one co-sign decision in the store (lock, history, engine, write):
//! `cargo bench -p chaperone-store --bench decide`, on SQLite and, when `CHAPERONE_TEST_PG_URL`
//! is set, on PostgreSQL. Each backend has an empty wallet and one with
//! `CHAPERONE_BENCH_RESERVATIONS` (default 1,000,000) reservations inside its one-day window: a
//! decision must cost the same on both (running totals, not a read of the history).
//! Under `cargo test` (no `--bench`) it runs once with 1,000, to keep the code path tested.
#![allow(missing_docs, clippy::unwrap_used)]

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use chaperone_core::{
    Address, Bytes, Call, Execute, U256,
    policy::{Policy, PolicyRequest, RequestKind, evaluate},
};
use chaperone_store::{Backend, Decided, RequestRecord, Store, WalletRecord};
use criterion::{Criterion, criterion_group, criterion_main};

const NOW: u64 = 1_750_000_000;
const DAY: u64 = 86_400;

fn policy() -> Policy {
    Policy::from_toml(
        r#"
        version = 1
        chains = [31337]
        [[limits]]
        token = "native"
        per_transaction = "1000"
        windows = [{ window = "1d", max = "1000000000000000000000000000" }]
        "#,
    )
    .unwrap()
}

/// Registers `wallet` with the policy and, for `history` > 0, that many approved decisions and
/// their reservations, spread over the day before `NOW` (one bulk statement per table).
async fn wallet_with_history(store: &Store, url: &str, wallet: Address, history: u64) {
    let record = WalletRecord {
        address: wallet,
        chain_id: 31337,
        agent: Address::repeat_byte(0xa9),
    };
    store.register_wallet(&record, NOW).await.unwrap();
    store.set_policy(wallet, &policy(), NOW).await.unwrap();
    if history == 0 {
        return;
    }
    let (series, id) = match store.backend() {
        Backend::Sqlite => (
            "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $3) \
             SELECT i FROM n)",
            "printf('0x%s%056x', substr($1, 3, 8), i)",
        ),
        Backend::Postgres => (
            "(SELECT generate_series(1, $3) AS i)",
            "'0x' || substr($1, 3, 8) || lpad(to_hex(i), 56, '0')",
        ),
    };
    let decisions = format!(
        "INSERT INTO decisions (request_id, wallet, created_at, valid_until, request, outcome, \
         reasons, policy_version, policy_hash, nonce) \
         SELECT {id}, $1, $2 - {DAY} + i % {DAY}, $2 - {DAY} + i % {DAY} + 300, '{{}}', \
         'approved', '[]', 1, '0x00', CAST(i AS TEXT) FROM {series} AS s"
    );
    let reservations = "INSERT INTO spend_reservations (request_id, wallet, token, amount, \
        created_at, expires_at, status) SELECT request_id, wallet, 'native', '1', created_at, \
        valid_until, 'settled' FROM decisions WHERE wallet = $1"
        .to_owned();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    for sql in [decisions, reservations] {
        let query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(format!("{wallet:#x}"))
            .bind(NOW as i64)
            .bind(history as i64);
        query.execute(&pool).await.unwrap();
    }
    // As autovacuum would after a bulk load: the planner needs the tables' new sizes.
    if store.backend() == Backend::Postgres {
        sqlx::query("ANALYZE").execute(&pool).await.unwrap();
    }
}

/// One decision for `wallet`: a fresh request (its own nonce), approved, reserved.
async fn decide(store: &Store, wallet: Address, nonce: u64) {
    let execute = Execute {
        calls: vec![Call {
            to: Address::repeat_byte(0xb0),
            value: U256::from(1),
            data: Bytes::new(),
        }],
        nonce: U256::from(nonce),
        validUntil: NOW + 60,
    };
    let request = PolicyRequest {
        chain_id: 31337,
        wallet,
        now: NOW,
        kind: RequestKind::Execute(execute.clone()),
        human_approved: false,
    };
    let record = RequestRecord {
        wallet,
        request_id: execute.digest(31337, wallet),
        nonce: Some(execute.nonce),
        authorization: None,
        pays: None,
        json: "{}",
        valid_until: NOW + 60,
    };
    let decided = store
        .decide(
            &record,
            || NOW,
            |policy, history, _, _| Decided {
                decision: evaluate(policy, &request, history),
                signature: None,
            },
        )
        .await
        .unwrap();
    assert!(decided.signature.is_none() && decided.reasons.is_empty());
}

fn decisions(c: &mut Criterion) {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let history: u64 = match std::env::var("CHAPERONE_BENCH_RESERVATIONS") {
        Ok(n) => n.parse().expect("CHAPERONE_BENCH_RESERVATIONS is a count"),
        Err(_) if benchmarking => 1_000_000,
        Err(_) => 1_000,
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut urls = vec![(
        "sqlite",
        format!(
            "sqlite:{}?mode=rwc",
            std::env::temp_dir()
                .join(format!("chaperone_bench_decide_{}.db", std::process::id()))
                .display()
        ),
    )];
    if let Ok(server) = std::env::var("CHAPERONE_TEST_PG_URL") {
        let name = format!("chaperone_bench_decide_{}", std::process::id());
        let url = runtime
            .block_on(Store::create_database(&server, &name))
            .unwrap();
        urls.push(("postgres", url));
    } else {
        eprintln!("PostgreSQL skipped: set CHAPERONE_TEST_PG_URL to measure it too");
    }
    let nonce = AtomicU64::new(0);
    for (backend, url) in urls {
        let (empty, full) = (Address::repeat_byte(0x01), Address::repeat_byte(0x02));
        let store = runtime.block_on(async {
            let store = Store::connect(&url)
                .await
                .unwrap()
                .with_max_clock_skew(None);
            let start = Instant::now();
            wallet_with_history(&store, &url, empty, 0).await;
            wallet_with_history(&store, &url, full, history).await;
            eprintln!(
                "{backend}: {history} reservations written in {:?}",
                start.elapsed()
            );
            // The first decision of a window reads its history once.
            let start = Instant::now();
            decide(&store, full, u64::MAX).await;
            eprintln!(
                "{backend}: first decision (reads the window once) {:?}",
                start.elapsed()
            );
            store
        });
        let mut g = c.benchmark_group(format!("decide/{backend}"));
        for (name, wallet) in [("empty wallet", empty), ("1M reservations", full)] {
            let name = if wallet == full && history != 1_000_000 {
                format!("{history} reservations")
            } else {
                name.to_owned()
            };
            g.bench_function(name, |b| {
                b.to_async(&runtime).iter_custom(|iters| {
                    let (store, nonce) = (&store, &nonce);
                    async move {
                        let start = Instant::now();
                        for _ in 0..iters {
                            decide(store, wallet, nonce.fetch_add(1, Ordering::Relaxed)).await;
                        }
                        start.elapsed()
                    }
                })
            });
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(10));
    targets = decisions
}
criterion_main!(benches);

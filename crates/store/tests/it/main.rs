//! chaperone-store against real SQLite (a temp file) and, when `CHAPERONE_TEST_PG_URL` is set,
//! real PostgreSQL (a fresh database per test). `make test` says when PostgreSQL was skipped.
#![allow(missing_docs, unreachable_pub, clippy::unwrap_used)]

mod attacks;
mod batches;
mod concurrency;
mod decisions;
mod log_migration;
mod sessions;
mod totals;
mod wal;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use chaperone_store::Store;
use sqlx::Connection;

static COUNTER: AtomicU32 = AtomicU32::new(0);
static CLEANED: AtomicBool = AtomicBool::new(false);

fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The URL of a fresh SQLite file.
pub fn sqlite_url() -> String {
    let path = std::env::temp_dir().join(format!("{}.db", unique_name("chaperone_test")));
    format!("sqlite:{}?mode=rwc", path.display())
}

/// A fresh SQLite store in a temporary file.
pub async fn sqlite() -> Store {
    fake_clock(Store::connect(&sqlite_url()).await.unwrap())
}

/// The tests decide at a fixed time (`decisions::NOW`, in 2025), far from the database's clock:
/// the skew check is tested on its own (`decisions::clock_skew_is_refused`).
fn fake_clock(store: Store) -> Store {
    store.with_max_clock_skew(None)
}

/// A fresh PostgreSQL store in its own database, or `None` when no URL is configured.
pub async fn postgres() -> Option<Store> {
    Some(fake_clock(
        Store::connect(&postgres_url().await?).await.unwrap(),
    ))
}

/// The URL of a fresh, empty PostgreSQL database, or `None` when no URL is configured.
pub async fn postgres_url() -> Option<String> {
    let url = std::env::var("CHAPERONE_TEST_PG_URL").ok()?;
    let name = unique_name("chaperone_test");
    sqlx::any::install_default_drivers();
    let mut admin = sqlx::AnyConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("CHAPERONE_TEST_PG_URL={url} is set but unreachable: {e}"));
    // Databases of earlier runs (other process ids) are dropped here, so CI's server does not
    // fill up with them.
    if !CLEANED.swap(true, Ordering::SeqCst) {
        let mine = format!("chaperone_test_{}_%", std::process::id());
        let stale: Vec<String> = sqlx::query_scalar(
            "SELECT datname::text FROM pg_database \
             WHERE datname LIKE 'chaperone_test_%' AND datname NOT LIKE $1",
        )
        .bind(mine)
        .fetch_all(&mut admin)
        .await
        .unwrap();
        for db in stale {
            let _ = Store::drop_database(&url, &db).await;
        }
    }
    Some(Store::create_database(&url, &name).await.unwrap())
}

/// Every backend this run can reach.
pub async fn stores() -> Vec<Store> {
    let mut out = vec![sqlite().await];
    out.extend(postgres().await);
    out
}

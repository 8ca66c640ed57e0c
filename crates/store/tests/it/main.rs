//! chaperone-store against real SQLite (a temp file) and, when `CHAPERONE_TEST_PG_URL` is set,
//! real PostgreSQL (a fresh database per test). `make test` says when PostgreSQL was skipped.
#![allow(missing_docs, unreachable_pub, clippy::unwrap_used)]

mod approval_endings;
mod attacks;
mod batches;
mod concurrency;
mod decision_records;
mod decisions;
mod evidence;
mod legacy_openings;
mod log_migration;
mod people;
mod reconcile;
mod reconcile_permit2;
mod reconcile_reorg;
mod sessions;
mod token_migration;
mod tool_approvals;
mod totals;
mod wal;

use chaperone_store::Store;

/// The URL of a fresh SQLite file.
pub fn sqlite_url() -> String {
    chaperone_testkit::sqlite_file("store").url
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
/// Databases of earlier runs (other process ids) are dropped first, so CI's server does not
/// fill up with them.
pub async fn postgres_url() -> Option<String> {
    chaperone_testkit::drop_stale_postgres_databases("chaperone_test").await;
    chaperone_testkit::postgres_database("chaperone_test").await
}

/// Every backend this run can reach.
pub async fn stores() -> Vec<Store> {
    let mut out = vec![sqlite().await];
    out.extend(postgres().await);
    out
}

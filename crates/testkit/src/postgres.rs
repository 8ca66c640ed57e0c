//! A PostgreSQL database of one's own, when the run names a server.

use std::{collections::HashSet, sync::Mutex};

use chaperone_store::Store;
use sqlx::Connection;

use crate::unique_name;

/// The variable naming the PostgreSQL server the tests may use (a `postgres://…` URL); without
/// it the PostgreSQL half of a test is not run.
pub const PG_URL_VAR: &str = "CHAPERONE_TEST_PG_URL";

/// A fresh, empty database on the server [`PG_URL_VAR`] names (`{prefix}_{pid}_…`), its URL;
/// `None` when the variable is not set. Panics when it is set but the server cannot be used.
pub async fn postgres_database(prefix: &str) -> Option<String> {
    let url = std::env::var(PG_URL_VAR).ok()?;
    Some(
        Store::create_database(&url, &unique_name(prefix))
            .await
            .unwrap_or_else(|e| panic!("{PG_URL_VAR}={url} is set but unusable: {e}")),
    )
}

/// Drops the databases `{prefix}_…` that earlier runs (other processes) left on the server
/// [`PG_URL_VAR`] names, so a CI server does not fill up with them; once per process and
/// prefix, and nothing when the variable is not set. Only for a prefix no concurrent run of
/// another process uses: their databases would go too.
pub async fn drop_stale_postgres_databases(prefix: &str) {
    static SWEPT: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let Ok(url) = std::env::var(PG_URL_VAR) else {
        return;
    };
    let first = SWEPT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .get_or_insert_with(HashSet::new)
        .insert(prefix.to_owned());
    if !first {
        return;
    }
    sqlx::any::install_default_drivers();
    let mut admin = sqlx::AnyConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("{PG_URL_VAR}={url} is set but unreachable: {e}"));
    let stale: Vec<String> = sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE datname LIKE $1 AND datname NOT LIKE $2",
    )
    .bind(format!("{prefix}_%"))
    .bind(format!("{prefix}_{}_%", std::process::id()))
    .fetch_all(&mut admin)
    .await
    .unwrap_or_else(|e| panic!("{PG_URL_VAR}={url}: cannot list its databases: {e}"));
    for name in stale {
        // Another run's sweep may have dropped it first.
        let _ = Store::drop_database(&url, &name).await;
    }
}

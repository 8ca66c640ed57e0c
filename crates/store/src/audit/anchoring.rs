//! What the operator signs and sends about the log: checkpoints, their anchoring transactions,
//! and the lock that lets one replica anchor.

use sqlx::Row;

use super::{Anchor, StoredCheckpoint, to_i64, to_u64};
use crate::{
    Backend, Result, Store,
    store::{db_time, parse},
};

impl Store {
    /// Stores a signed checkpoint (idempotent per size).
    pub async fn save_checkpoint(&self, checkpoint: &StoredCheckpoint, now: u64) -> Result<()> {
        sqlx::query(
            "INSERT INTO checkpoints (size, root, note, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (size) DO NOTHING",
        )
        .bind(to_i64(checkpoint.size, "size")?)
        .bind(checkpoint.root.to_string())
        .bind(checkpoint.note.clone())
        .bind(db_time(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The checkpoint at `size`, if one was signed.
    pub async fn checkpoint(&self, size: u64) -> Result<Option<StoredCheckpoint>> {
        let row = sqlx::query("SELECT size, root, note FROM checkpoints WHERE size = $1")
            .bind(to_i64(size, "size")?)
            .fetch_optional(&self.reader)
            .await?;
        row.map(checkpoint_from).transpose()
    }

    /// The largest signed checkpoint, with the time it was signed.
    pub async fn latest_checkpoint(&self) -> Result<Option<(StoredCheckpoint, u64)>> {
        let row = sqlx::query(
            "SELECT size, root, note, created_at FROM checkpoints ORDER BY size DESC LIMIT 1",
        )
        .fetch_optional(&self.reader)
        .await?;
        row.map(|row| {
            let at = to_u64(row.try_get(3)?, "created at")?;
            Ok((checkpoint_from(row)?, at))
        })
        .transpose()
    }

    /// Records an anchoring transaction (idempotent per size).
    pub async fn save_anchor(&self, anchor: &Anchor, now: u64) -> Result<()> {
        sqlx::query(
            "INSERT INTO anchors (size, root, tx_hash, block_number, anchored_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (size) DO NOTHING",
        )
        .bind(to_i64(anchor.size, "size")?)
        .bind(anchor.root.to_string())
        .bind(anchor.tx_hash.to_string())
        .bind(to_i64(anchor.block_number, "block")?)
        .bind(db_time(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The largest anchored checkpoint.
    pub async fn latest_anchor(&self) -> Result<Option<Anchor>> {
        let row = sqlx::query(
            "SELECT size, root, tx_hash, block_number FROM anchors ORDER BY size DESC LIMIT 1",
        )
        .fetch_optional(&self.reader)
        .await?;
        row.map(anchor_from).transpose()
    }

    /// The anchor of exactly `size`, if that size was anchored.
    pub async fn anchor_at(&self, size: u64) -> Result<Option<Anchor>> {
        let row =
            sqlx::query("SELECT size, root, tx_hash, block_number FROM anchors WHERE size = $1")
                .bind(to_i64(size, "size")?)
                .fetch_optional(&self.reader)
                .await?;
        row.map(anchor_from).transpose()
    }
}

fn checkpoint_from(row: sqlx::any::AnyRow) -> Result<StoredCheckpoint> {
    Ok(StoredCheckpoint {
        size: to_u64(row.try_get(0)?, "size")?,
        root: parse(&row.try_get::<String, _>(1)?, "root")?,
        note: row.try_get(2)?,
    })
}

fn anchor_from(row: sqlx::any::AnyRow) -> Result<Anchor> {
    Ok(Anchor {
        size: to_u64(row.try_get(0)?, "size")?,
        root: parse(&row.try_get::<String, _>(1)?, "root")?,
        tx_hash: parse(&row.try_get::<String, _>(2)?, "tx hash")?,
        block_number: to_u64(row.try_get(3)?, "block")?,
    })
}

/// The right to anchor, held by one server replica. On PostgreSQL a session advisory lock on a
/// connection kept for as long as the lock is held; on SQLite (one process) always granted.
#[derive(Debug)]
pub struct AnchoringLock {
    // In a Mutex only to make the lock `Sync` (workers are shared across await points); it is
    // only ever reached through `&mut self`, so it never blocks.
    connection: Option<std::sync::Mutex<sqlx::pool::PoolConnection<sqlx::Any>>>,
}

/// The advisory lock key: "chaperon" in ASCII.
const ANCHORING_LOCK_KEY: i64 = 0x6368_6170_6572_6f6e;

impl AnchoringLock {
    /// True while the lock's connection is alive (a dropped connection releases the lock).
    pub async fn still_held(&mut self) -> bool {
        match &mut self.connection {
            None => true,
            Some(conn) => match conn.get_mut() {
                Ok(conn) => sqlx::query("SELECT 1").execute(&mut **conn).await.is_ok(),
                Err(_) => false,
            },
        }
    }
}

impl Store {
    /// Takes the anchoring lock if no other replica holds it.
    pub async fn try_lock_anchoring(&self) -> Result<Option<AnchoringLock>> {
        match self.backend {
            Backend::Sqlite => Ok(Some(AnchoringLock { connection: None })),
            Backend::Postgres => {
                let mut conn = self.pool.acquire().await?;
                let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                    .bind(ANCHORING_LOCK_KEY)
                    .fetch_one(&mut *conn)
                    .await?;
                if taken {
                    // Back in the pool the connection would keep the session lock with nobody
                    // using it: closing it on drop releases the lock with the worker.
                    conn.close_on_drop();
                }
                Ok(taken.then(|| AnchoringLock {
                    connection: Some(std::sync::Mutex::new(conn)),
                }))
            }
        }
    }
}

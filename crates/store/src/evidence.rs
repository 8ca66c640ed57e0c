//! What the auditor's evidence pack reads beyond the compliance queries: the anchored
//! checkpoints in size order (the bundle proves records against them and chains them by
//! consistency proofs) and how long each checkpoint waited for its anchor (the report's
//! anchoring lag).

use chaperone_core::B256;
use sqlx::Row;

use crate::{
    Anchor, Result, Store, StoredCheckpoint,
    audit::to_u64,
    store::{db_time, parse},
};

/// A signed checkpoint and when it was signed and anchored (Unix seconds, as this service
/// recorded them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorLag {
    /// The tree size.
    pub size: u64,
    /// When the checkpoint was signed.
    pub signed_at: u64,
    /// When its anchoring transaction was recorded.
    pub anchored_at: u64,
}

impl Store {
    /// Anchored checkpoints larger than `after_size`, by increasing size, at most `limit`.
    pub async fn anchored_checkpoints(
        &self,
        after_size: u64,
        limit: u32,
    ) -> Result<Vec<(StoredCheckpoint, Anchor)>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT c.size, c.root, c.note, a.tx_hash, a.block_number, a.root \
             FROM checkpoints c JOIN anchors a ON a.size = c.size \
             WHERE c.size > $1 ORDER BY c.size LIMIT {limit}"
        )))
        .bind(db_time(after_size))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let size = to_u64(row.try_get(0)?, "size")?;
                let root: B256 = parse(&row.try_get::<String, _>(1)?, "root")?;
                Ok((
                    StoredCheckpoint {
                        size,
                        root,
                        note: row.try_get(2)?,
                    },
                    Anchor {
                        size,
                        root: parse(&row.try_get::<String, _>(5)?, "anchored root")?,
                        tx_hash: parse(&row.try_get::<String, _>(3)?, "anchor transaction")?,
                        block_number: to_u64(row.try_get(4)?, "anchor block")?,
                    },
                ))
            })
            .collect()
    }

    /// The anchored checkpoints signed in `[from, to)` (Unix seconds), oldest first, with
    /// when each was signed and anchored; at most `limit`.
    pub async fn anchor_lags(&self, from: u64, to: u64, limit: u32) -> Result<Vec<AnchorLag>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT c.size, c.created_at, a.anchored_at FROM checkpoints c \
             JOIN anchors a ON a.size = c.size \
             WHERE c.created_at >= $1 AND c.created_at < $2 ORDER BY c.size LIMIT {limit}"
        )))
        .bind(db_time(from))
        .bind(db_time(to))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AnchorLag {
                    size: to_u64(row.try_get(0)?, "size")?,
                    signed_at: to_u64(row.try_get(1)?, "signed at")?,
                    anchored_at: to_u64(row.try_get(2)?, "anchored at")?,
                })
            })
            .collect()
    }
}

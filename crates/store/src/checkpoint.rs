//! SQLite's write-ahead log, checkpointed off the writer's path.
//!
//! In WAL mode every commit appends the pages it changed to the log, and a checkpoint copies
//! them back into the database file and syncs it. SQLite's own checkpoint runs inside the
//! COMMIT that brings the log to 1,000 pages: that commit, and every request queued behind the
//! single writer, waited 10–12 ms for it (some 27 times a second under load; the copy is
//! cheap, the sync of a thousand scattered pages is not). That was SQLite's p99.
//!
//! Here a task with a connection of its own copies what the writer commits a few milliseconds
//! after it commits, while the writer goes on. Copying alone never lets the log start over: a
//! log is restarted only by a writer that finds every frame copied, and a writer that keeps
//! committing always leaves a few frames behind (a measured dead end: the log outgrew the
//! copies). So once the log is long, the task copies the last few frames on the writer's own
//! connection, between two transactions, where nothing can be committed during the copy: the
//! writer waits for those few pages only (docs/benchmarks.md), and its next transaction
//! starts the log over.

use std::{sync::Weak, time::Duration};

use sqlx::{AnyConnection, AnyPool, Connection, Row};

/// The log is started over once it holds this many frames (pages; 8 MiB at 4 KiB).
const RESTART_FRAMES: i64 = 2_000;
/// The writer's own checkpoint, should this task fall behind or stop: the log stays bounded.
pub(crate) const WRITER_AUTOCHECKPOINT_FRAMES: i64 = 10_000;
/// Pause after a pass that found frames to copy, and after one that found none.
const BUSY_PAUSE: Duration = Duration::from_millis(5);
const IDLE_PAUSE: Duration = Duration::from_millis(50);

/// Checkpoints the SQLite database at `url` whose single writer is `writer`, until `alive`
/// can no longer be upgraded (the store was dropped) or the runtime ends.
pub(crate) fn spawn(url: String, writer: AnyPool, alive: Weak<()>) {
    tokio::spawn(async move {
        if let Err(e) = run(&url, &writer, &alive).await {
            // The writer's own checkpoint (WRITER_AUTOCHECKPOINT_FRAMES) keeps the log bounded.
            tracing::warn!(error = %e, "the write-ahead log checkpointer stopped");
        }
    });
}

async fn run(url: &str, writer: &AnyPool, alive: &Weak<()>) -> sqlx::Result<()> {
    let mut own = AnyConnection::connect(url).await?;
    sqlx::raw_sql("PRAGMA busy_timeout = 60000")
        .execute(&mut own)
        .await?;
    // The log's length when it was last finished on the writer: until the writer commits
    // again, the log stays as it is (fully copied), and is not finished twice.
    let mut finished_at = None;
    let mut previous = 0;
    while alive.strong_count() > 0 {
        let (log, copied) = passive_checkpoint(&mut own).await?;
        if log >= RESTART_FRAMES && copied == log && finished_at != Some(log) {
            // One more pass, at once, so that only what was committed during it is left.
            passive_checkpoint(&mut own).await?;
            let mut conn = writer.acquire().await?;
            let (log, _) = passive_checkpoint(&mut conn).await?;
            finished_at = Some(log);
            continue;
        }
        let pause = if log == previous {
            IDLE_PAUSE
        } else {
            BUSY_PAUSE
        };
        previous = log;
        tokio::time::sleep(pause).await;
    }
    Ok(())
}

/// Copies every frame no reader still needs; returns the log's length and how many of its
/// frames are now copied.
async fn passive_checkpoint(conn: &mut AnyConnection) -> sqlx::Result<(i64, i64)> {
    let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(conn)
        .await?;
    Ok((row.try_get(1)?, row.try_get(2)?))
}

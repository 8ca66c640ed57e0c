//! The webhook outbox: events to notify, each retried with backoff until delivered or given
//! up, and the delivery log the console shows.

use sqlx::Row;

use crate::{Error, Result, Store, store::db_time};

/// One notification and how its delivery went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    /// Its id (also sent as `X-Chaperone-Delivery`).
    pub id: i64,
    /// The event, e.g. `approval.pending`.
    pub event: String,
    /// The JSON body.
    pub payload: String,
    /// When the event happened (Unix seconds).
    pub created_at: u64,
    /// Attempts so far.
    pub attempts: u32,
    /// When the next attempt is due.
    pub next_attempt_at: u64,
    /// `pending`, `delivered` or `failed` (given up).
    pub status: String,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was delivered.
    pub delivered_at: Option<u64>,
}

fn delivery(row: &sqlx::any::AnyRow) -> Result<WebhookDelivery> {
    let time = |i: usize| -> Result<u64> {
        let t: i64 = row.try_get(i)?;
        u64::try_from(t).map_err(|_| Error::Corrupt(format!("negative time {t}")))
    };
    Ok(WebhookDelivery {
        id: row.try_get(0)?,
        event: row.try_get(1)?,
        payload: row.try_get(2)?,
        created_at: time(3)?,
        attempts: u32::try_from(row.try_get::<i64, _>(4)?).unwrap_or(u32::MAX),
        next_attempt_at: time(5)?,
        status: row.try_get(6)?,
        last_error: row.try_get(7)?,
        delivered_at: row
            .try_get::<Option<i64>, _>(8)?
            .map(|t| u64::try_from(t).unwrap_or_default()),
    })
}

const COLUMNS: &str = "id, event, payload, created_at, attempts, next_attempt_at, status, \
                       last_error, delivered_at";

impl Store {
    /// Queues a notification, due now.
    pub async fn enqueue_webhook(&self, event: &str, payload: &str, now: u64) -> Result<()> {
        sqlx::query(
            "INSERT INTO webhook_deliveries (event, payload, created_at, next_attempt_at, status) \
             VALUES ($1, $2, $3, $3, 'pending')",
        )
        .bind(event)
        .bind(payload)
        .bind(db_time(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Pending notifications due by `now`, oldest first.
    pub async fn due_webhooks(&self, now: u64, limit: u32) -> Result<Vec<WebhookDelivery>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM webhook_deliveries \
             WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY id LIMIT {limit}"
        )))
        .bind(db_time(now))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery).collect()
    }

    /// Records an attempt: delivered, or failed with `error` and retried at `retry_at`
    /// (`None`: given up).
    pub async fn record_webhook_attempt(
        &self,
        id: i64,
        outcome: std::result::Result<(), (&str, Option<u64>)>,
        now: u64,
    ) -> Result<()> {
        let query = match outcome {
            Ok(()) => sqlx::query(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, status = 'delivered', \
                 delivered_at = $2, last_error = NULL WHERE id = $1",
            )
            .bind(id)
            .bind(db_time(now)),
            Err((error, retry_at)) => sqlx::query(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = $2, \
                 status = $3, next_attempt_at = $4 WHERE id = $1",
            )
            .bind(id)
            .bind(error.to_owned())
            .bind(if retry_at.is_some() {
                "pending"
            } else {
                "failed"
            })
            .bind(db_time(retry_at.unwrap_or(now))),
        };
        query.execute(&self.pool).await?;
        Ok(())
    }

    /// The newest notifications, for the delivery log.
    pub async fn webhook_log(&self, limit: u32) -> Result<Vec<WebhookDelivery>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM webhook_deliveries ORDER BY id DESC LIMIT {limit}"
        )))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(delivery).collect()
    }
}

//! The model call an x402 payment was made in: the agent binds an approved decision to the
//! leaf hash of its audit record of the call, once.

use chaperone_core::{Address, B256};
use sqlx::Row;

use crate::{Result, Store, audit::to_u64, store::parse};

/// Binding a decision to the model call it paid within (see [`Store::bind_call`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallBinding {
    /// Bound now, or already bound to the same call.
    Bound,
    /// Already bound to another call (a binding is set once).
    BoundElsewhere(B256),
    /// No approved decision has this id.
    NotApproved,
}

/// An approved decision, as far as binding it to a call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApprovedDecision {
    /// The wallet it was for (its agent may bind it).
    pub wallet: Address,
    /// When it was made (Unix seconds).
    pub created_at: u64,
    /// When its co-signature expires (Unix seconds).
    pub valid_until: u64,
}

/// A record in the log, as far as binding a decision to it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivedRecord {
    /// The agent that signed it.
    pub agent: Address,
    /// When the log received its batch (ms since the Unix epoch, the service's clock).
    pub received_ms: u64,
}

impl Store {
    /// An approved decision, for checking who may bind it to which call.
    pub async fn approved_decision(&self, request_id: B256) -> Result<Option<ApprovedDecision>> {
        let row = sqlx::query(
            "SELECT wallet, created_at, valid_until FROM decisions \
             WHERE request_id = $1 AND outcome = 'approved'",
        )
        .bind(request_id.to_string())
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| {
            Ok(ApprovedDecision {
                wallet: parse(&r.try_get::<String, _>(0)?, "wallet")?,
                created_at: to_u64(r.try_get(1)?, "created at")?,
                valid_until: to_u64(r.try_get(2)?, "valid until")?,
            })
        })
        .transpose()
    }

    /// Who signed the logged record `leaf_hash`, and when the log received it.
    pub async fn received_record(&self, leaf_hash: B256) -> Result<Option<ReceivedRecord>> {
        let Some(logged) = self.record(leaf_hash).await? else {
            return Ok(None);
        };
        let received: i64 =
            sqlx::query_scalar("SELECT received_at FROM record_batches WHERE batch_root = $1")
                .bind(logged.batch_root.to_string())
                .fetch_one(&self.reader)
                .await?;
        Ok(Some(ReceivedRecord {
            agent: logged.record.agent,
            received_ms: to_u64(received, "received at")?,
        }))
    }

    /// Records that the approved decision `request_id` paid within the model call whose audit
    /// record has `leaf_hash`. Set once: a second binding to the same call is a no-op, to
    /// another call is refused.
    pub async fn bind_call(&self, request_id: B256, leaf_hash: B256) -> Result<CallBinding> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "SELECT call_leaf_hash FROM decisions WHERE request_id = $1 AND outcome = 'approved'",
        )
        .bind(request_id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(CallBinding::NotApproved);
        };
        let existing: Option<String> = row.try_get(0)?;
        let outcome = match existing {
            Some(existing) => {
                let existing: B256 = parse(&existing, "call leaf hash")?;
                if existing == leaf_hash {
                    CallBinding::Bound
                } else {
                    CallBinding::BoundElsewhere(existing)
                }
            }
            None => {
                sqlx::query("UPDATE decisions SET call_leaf_hash = $1 WHERE request_id = $2")
                    .bind(leaf_hash.to_string())
                    .bind(request_id.to_string())
                    .execute(&mut *tx)
                    .await?;
                CallBinding::Bound
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }
}

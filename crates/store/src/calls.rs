//! The model call an x402 payment was made in: the agent binds an approved decision to the
//! leaf hash of its audit record of the call, once.

use chaperone_core::{Address, B256};
use sqlx::Row;

use crate::{Result, Store, store::parse};

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

impl Store {
    /// The wallet of an approved decision, for checking who may bind it to a call.
    pub async fn approved_decision_wallet(&self, request_id: B256) -> Result<Option<Address>> {
        let row = sqlx::query(
            "SELECT wallet FROM decisions WHERE request_id = $1 AND outcome = 'approved'",
        )
        .bind(request_id.to_string())
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| parse(&r.try_get::<String, _>(0)?, "wallet"))
            .transpose()
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

//! How a request that waited for a human ends without a co-signature: a human denies it, or no
//! approval is used in time (the approval's expiry or the request's `validUntil`, whichever
//! comes first). Its decision then becomes final, denied, with a reason that says which
//! ([`Reason::ApprovalDenied`], [`Reason::ApprovalExpired`]) after the reasons it waited for,
//! and its row is re-decided (`logged_leaf` cleared, `revision` raised) so the anchorer logs a
//! final record after the pending one (fifth red-team review of issue 29, Medium): without it,
//! a bundle could never show such a request as anything but pending.
//!
//! Every path that ends a request (a denial in `cast_vote`, the agent asking again in
//! `decide_batch`, [`Store::expire_approvals`], an approval re-decided) changes the row only
//! while it is still `pending_approval`, under the row's lock on PostgreSQL (SQLite's
//! `BEGIN IMMEDIATE` serialises writers): whichever comes first ends it, the others find it
//! ended, so a request has exactly one final decision. Neither ends nor re-decides a request
//! whose logged records already include a final one (its row, unsigned, was edited back to
//! waiting), and both first keep the opening of a record logged before migration 0020, which
//! was read from the row they overwrite (sixth red-team review of issue 29).

use chaperone_core::{
    B256,
    policy::{Outcome, Reason},
};
use sqlx::Row;

use crate::{
    Error, Result, Store,
    cosign::{ApprovalState, StoredDecision},
    store::{Backend, db_time, outcome_text, parse},
};

/// Requests ended per transaction by [`Store::expire_approvals`].
const ENDED_PER_TRANSACTION: i64 = 500;

impl Store {
    /// Ends, as of `now`, every request still waiting for a human whose approval can no longer
    /// be used (expired, or its `validUntil` passed, even if humans approved it and its agent
    /// never asked again), and any a human denied whose decision was left pending (decided
    /// before denials ended requests). Returns how many it ended.
    pub async fn expire_approvals(&self, now: u64) -> Result<usize> {
        let mut ended = 0;
        // A cursor, not "until none is left": a row this cannot end (its final record is logged
        // already) stays waiting, and would be found again on every pass.
        let mut after = String::new();
        loop {
            let mut tx = self.begin_write().await?;
            // The partial index of migration 0022 holds only the waiting decisions.
            let rows = sqlx::query(
                "SELECT d.request_id, a.status, a.expires_at, d.valid_until \
                 FROM decisions d JOIN approvals a ON a.request_id = d.request_id \
                 WHERE d.outcome = 'pending_approval' \
                 AND (a.status = 'denied' OR a.expires_at < $1 OR d.valid_until < $1) \
                 AND d.request_id > $2 ORDER BY d.request_id LIMIT $3",
            )
            .bind(db_time(now))
            .bind(&after)
            .bind(ENDED_PER_TRANSACTION)
            .fetch_all(&mut *tx)
            .await?;
            let found = rows.len();
            for row in rows {
                after = row.try_get::<String, _>(0)?;
                let id: B256 = parse(&after, "request id")?;
                let status: String = row.try_get(1)?;
                let expired_at = row.try_get::<i64, _>(2)?.min(row.try_get::<i64, _>(3)?);
                let reason = if status == "denied" {
                    Reason::ApprovalDenied
                } else {
                    Reason::ApprovalExpired {
                        expired_at: u64::try_from(expired_at).unwrap_or_default(),
                    }
                };
                if Self::end_waiting(&mut tx, self.backend(), id, reason)
                    .await?
                    .is_some()
                {
                    ended += 1;
                }
            }
            tx.commit().await?;
            if found < ENDED_PER_TRANSACTION as usize {
                return Ok(ended);
            }
        }
    }

    /// Makes the decision of request `id` final if it is still waiting for a human: denied,
    /// `reason` after the reasons it waited for, never co-signed, to be logged again. `None`
    /// when it is not waiting (another path ended it first, or a final record of it is logged
    /// already: its row was edited). Locks the row on PostgreSQL, so
    /// a concurrent ending waits and then finds it ended.
    pub(crate) async fn end_waiting(
        conn: &mut sqlx::AnyConnection,
        backend: Backend,
        id: B256,
        reason: Reason,
    ) -> Result<Option<StoredDecision>> {
        let lock = match backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT reasons, policy_version, policy_hash FROM decisions \
             WHERE request_id = $1 AND outcome = 'pending_approval'{lock}"
        )))
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        if Self::has_final_record(conn, id).await? {
            return Ok(None);
        }
        Self::keep_legacy_opening(conn, id).await?;
        let mut reasons: Vec<Reason> = serde_json::from_str(&row.try_get::<String, _>(0)?)
            .map_err(|e| Error::Corrupt(e.to_string()))?;
        reasons.push(reason);
        let text = serde_json::to_string(&reasons).map_err(|e| Error::Corrupt(e.to_string()))?;
        let updated = sqlx::query(
            "UPDATE decisions SET outcome = 'denied', reasons = $1, signature = NULL, \
             logged_leaf = NULL, revision = revision + 1 \
             WHERE request_id = $2 AND outcome = 'pending_approval'",
        )
        .bind(&text)
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if updated != 1 {
            return Ok(None);
        }
        Ok(Some(StoredDecision {
            request_id: id,
            outcome: Outcome::Denied,
            reasons,
            policy_version: u32::try_from(row.try_get::<i64, _>(1)?)
                .map_err(|_| Error::Corrupt("policy version".into()))?,
            policy_hash: parse(&row.try_get::<String, _>(2)?, "policy hash")?,
            signature: None,
            replayed: true,
        }))
    }

    /// Where the approval of a waiting request stands at `now`. It has expired once the
    /// approval's expiry or the request's `validUntil` passed (no vote counts then, and no
    /// co-signature could be used), whatever humans said before, unless they denied it.
    pub(crate) async fn approval_status(
        conn: &mut sqlx::AnyConnection,
        request_id: B256,
        now: u64,
    ) -> Result<Option<ApprovalState>> {
        let row = sqlx::query(
            "SELECT a.status, a.expires_at, d.valid_until FROM approvals a \
             JOIN decisions d ON d.request_id = a.request_id WHERE a.request_id = $1",
        )
        .bind(request_id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
        row.map(|row| {
            let status: String = row.try_get(0)?;
            let ends: i64 = row.try_get::<i64, _>(1)?.min(row.try_get(2)?);
            Ok(match status.as_str() {
                "denied" => ApprovalState::Denied,
                _ if ends < db_time(now) => ApprovalState::Expired {
                    at: u64::try_from(ends).unwrap_or_default(),
                },
                "pending" => ApprovalState::Pending,
                "approved" => ApprovalState::Approved,
                other => return Err(Error::Corrupt(format!("approval status: {other}"))),
            })
        })
        .transpose()
    }

    /// Replaces a pending verdict with the decision made after a human approved it; false
    /// when the request no longer waits (another path ended it since it was read, or a final
    /// record of it is logged already).
    pub(crate) async fn redecide(
        conn: &mut sqlx::AnyConnection,
        decision: &StoredDecision,
        reasons: &str,
    ) -> Result<bool> {
        let id = decision.request_id;
        if Self::has_final_record(conn, id).await? {
            return Ok(false);
        }
        // Only a row still waiting is re-decided; its legacy opening is kept first (the
        // update below clears `logged_leaf`). A row that is not waiting changes nothing.
        let waiting = sqlx::query(
            "SELECT 1 FROM decisions WHERE request_id = $1 AND outcome = 'pending_approval'",
        )
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
        if waiting.is_none() {
            return Ok(false);
        }
        Self::keep_legacy_opening(conn, id).await?;
        let updated = sqlx::query(
            "UPDATE decisions SET outcome = $1, reasons = $2, policy_version = $3, \
             policy_hash = $4, signature = $5, logged_leaf = NULL, revision = revision + 1 \
             WHERE request_id = $6 AND outcome = 'pending_approval'",
        )
        .bind(outcome_text(decision.outcome))
        .bind(reasons)
        .bind(i64::from(decision.policy_version))
        .bind(decision.policy_hash.to_string())
        .bind(decision.signature.clone())
        .bind(decision.request_id.to_string())
        .execute(&mut *conn)
        .await?
        .rows_affected();
        Ok(updated == 1)
    }
}

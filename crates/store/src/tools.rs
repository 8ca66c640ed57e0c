//! Tool-policy decisions reported by the MCP gateway (`POST /v1/tool-decisions`). The server
//! checks the agent's signature before it stores one; the signed body is kept whole so the row
//! can be shown to an auditor exactly as the agent signed it.

use chaperone_core::{Address, B256};
use sqlx::Row;

use crate::{
    Backend, Error, Result, Store,
    audit::Value,
    sql_filter::SqlFilter,
    store::{db_time, hex},
};

/// A tool decision to store (fields the listing filters on, and the signed body).
#[derive(Debug, Clone)]
pub struct NewToolDecision<'a> {
    /// The decision's id.
    pub id: B256,
    /// The agent that signed it.
    pub agent: Address,
    /// The upstream's name.
    pub upstream: &'a str,
    /// The tool's name.
    pub tool: &'a str,
    /// `allowed`, `denied` or `approval_required`.
    pub outcome: &'a str,
    /// The reasons, as JSON.
    pub reasons: String,
    /// The tool policy's version.
    pub policy_version: u64,
    /// The tool policy's hash.
    pub policy_hash: &'a str,
    /// The call's record, if recorded.
    pub leaf_hash: Option<B256>,
    /// When the gateway decided (Unix ms, its clock).
    pub decided_at_ms: u64,
    /// The decision and its signature as JSON, as received.
    pub body: String,
    /// For `approval_required`: the hash of the arguments the call is held with.
    pub arguments_hash: Option<B256>,
    /// For `approval_required`: when the approval expires (Unix seconds).
    pub approval_expires_at: Option<u64>,
    /// For `approval_required`: the arguments the approver is shown (JSON, checked against
    /// `arguments_hash` by the caller). Kept only while the approval is pending.
    pub arguments: Option<String>,
}

/// Which tool decisions to list.
#[derive(Debug, Clone, Default)]
pub struct ToolDecisionFilter {
    /// One tool's (its name in the upstream).
    pub tool: Option<String>,
    /// One upstream's.
    pub upstream: Option<String>,
    /// One agent's.
    pub agent: Option<Address>,
    /// One outcome.
    pub outcome: Option<String>,
    /// Received at or after / before (Unix seconds).
    pub from: Option<u64>,
    /// Received before (Unix seconds).
    pub to: Option<u64>,
    /// The (received time, id) of the last row already returned.
    pub after: Option<(u64, B256)>,
    /// At most this many.
    pub limit: u32,
    /// Newest first (the console), rather than oldest first (the API's pages).
    pub newest_first: bool,
}

/// What storing a tool decision did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolDecisionStore {
    /// A new row.
    Inserted,
    /// The same id and body were stored before.
    Replayed,
    /// The id was stored before with another body.
    Conflict,
    /// A held call, and its agent already has `max_pending` calls waiting for a human.
    TooManyPending,
}

/// The human verdict on a held tool call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolApprovalState {
    /// pending, approved, denied, withdrawn (by its agent) or expired (pending past its
    /// expiry).
    pub status: String,
    /// Who gave the verdict.
    pub by: Option<String>,
    /// When the verdict was given.
    pub at: Option<u64>,
    /// The hash of the arguments the call was held with.
    pub arguments_hash: Option<B256>,
    /// When the approval expires (or expired) if nobody decides.
    pub expires_at: Option<u64>,
}

/// What a verdict on a held tool call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolVerdict {
    /// Given.
    Given,
    /// No call with this id is waiting (none asked, decided already, or expired).
    NotPending,
    /// An approval naming other arguments than the call was held with.
    ArgumentsMismatch,
}

/// A stored tool decision: the signed body as received and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToolDecision {
    /// The decision's id.
    pub id: B256,
    /// The body as received (JSON).
    pub body: String,
    /// When the server received it (Unix seconds).
    pub received_at: u64,
    /// Its approval, for a held call.
    pub approval: Option<ToolApprovalState>,
    /// A pending held call's arguments, as the gateway sent them for the approver (JSON); read
    /// only by [`Store::pending_tool_approvals`], `None` in listings.
    pub arguments: Option<String>,
}

/// The columns a [`StoredToolDecision`] is read from.
const STORED_COLUMNS: &str = "id, body, received_at, approval_status, approval_by, approval_at, \
                              arguments_hash, approval_expires_at";

/// The state of an approval as of `now`: a pending one past its expiry reads `expired`.
fn approval_state(
    now: u64,
    status: Option<String>,
    by: Option<String>,
    at: Option<i64>,
    arguments_hash: Option<String>,
    expires_at: Option<i64>,
) -> Result<Option<ToolApprovalState>> {
    let Some(mut status) = status else {
        return Ok(None);
    };
    let expires_at = expires_at.map(|t| t as u64);
    if status == "pending" && expires_at.is_some_and(|e| now >= e) {
        status = "expired".into();
    }
    let arguments_hash = arguments_hash
        .map(|h| {
            h.parse()
                .map_err(|_| Error::Corrupt(format!("tool arguments hash: {h}")))
        })
        .transpose()?;
    Ok(Some(ToolApprovalState {
        status,
        by,
        at: at.map(|t| t as u64),
        arguments_hash,
        expires_at,
    }))
}

fn stored(row: &sqlx::any::AnyRow, now: u64) -> Result<StoredToolDecision> {
    let id: String = row.try_get(0)?;
    Ok(StoredToolDecision {
        id: id
            .parse()
            .map_err(|_| Error::Corrupt(format!("tool decision id: {id}")))?,
        body: row.try_get(1)?,
        received_at: row.try_get::<i64, _>(2)? as u64,
        approval: approval_state(
            now,
            row.try_get(3)?,
            row.try_get(4)?,
            row.try_get(5)?,
            row.try_get(6)?,
            row.try_get(7)?,
        )?,
        arguments: None,
    })
}

impl Store {
    /// Stores a decision: [`ToolDecisionStore::Inserted`], or, for an id stored before,
    /// `Replayed` (the same body: nothing changes) or `Conflict` (another body: nothing
    /// changes either). A held call (`approval_required`) whose agent already has
    /// `max_pending` unexpired approvals pending is `TooManyPending` (nothing stored): the
    /// count and the insert are one step per agent (SQLite's write transaction, PostgreSQL's
    /// lock on the agent), so reports arriving together cannot pass the cap.
    pub async fn insert_tool_decision(
        &self,
        d: &NewToolDecision<'_>,
        now: u64,
        max_pending: u64,
    ) -> Result<ToolDecisionStore> {
        if d.outcome != "approval_required" {
            let inserted = insert_query(d, now, false).execute(&self.pool).await?;
            return self.inserted_or_kept(d, inserted.rows_affected()).await;
        }
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            // One agent's held reports queue here until the transaction ends; other agents'
            // do not wait.
            sqlx::query_scalar::<_, i32>(
                "SELECT 1 FROM (SELECT pg_advisory_xact_lock(hashtextextended($1, 30))) AS locked",
            )
            .bind(format!("tool approvals {}", hex(d.agent)))
            .fetch_one(&mut *tx)
            .await?;
        }
        clear_expired(&mut tx, now).await?;
        let kept: Option<String> =
            sqlx::query_scalar("SELECT body FROM tool_decisions WHERE id = $1")
                .bind(d.id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(kept) = kept {
            tx.commit().await?;
            return Ok(replay_or_conflict(&kept, &d.body));
        }
        let pending: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM tool_decisions WHERE agent = $1 \
             AND approval_status = 'pending' AND approval_expires_at > $2",
        )
        .bind(hex(d.agent))
        .bind(db_time(now))
        .fetch_one(&mut *tx)
        .await?;
        if pending as u64 >= max_pending {
            tx.commit().await?;
            return Ok(ToolDecisionStore::TooManyPending);
        }
        let inserted = insert_query(d, now, true).execute(&mut *tx).await?;
        tx.commit().await?;
        self.inserted_or_kept(d, inserted.rows_affected()).await
    }

    async fn inserted_or_kept(
        &self,
        d: &NewToolDecision<'_>,
        inserted: u64,
    ) -> Result<ToolDecisionStore> {
        if inserted == 1 {
            return Ok(ToolDecisionStore::Inserted);
        }
        let kept = self
            .stored_body(d.id)
            .await?
            .ok_or_else(|| Error::Corrupt(format!("tool decision {} vanished", d.id)))?;
        Ok(replay_or_conflict(&kept, &d.body))
    }

    /// Clears the arguments of held calls whose approval expired by `now` (the hash stays):
    /// how many. The server sweeps periodically; a held call's report and a verdict sweep too.
    pub async fn clear_expired_tool_arguments(&self, now: u64) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let cleared = clear_expired(&mut tx, now).await?;
        tx.commit().await?;
        Ok(cleared)
    }

    /// The arguments a held call still keeps (JSON): `None` once its approval was decided or
    /// has expired (and been swept), or for a call never held.
    pub async fn held_arguments(&self, id: B256) -> Result<Option<String>> {
        Ok(sqlx::query_scalar::<_, Option<String>>(
            "SELECT held_arguments FROM tool_decisions WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .flatten())
    }

    async fn stored_body(&self, id: B256) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT body FROM tool_decisions WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Tool decisions, oldest first (or newest first), with their approvals as of `now`.
    pub async fn tool_decisions(
        &self,
        filter: &ToolDecisionFilter,
        now: u64,
    ) -> Result<Vec<StoredToolDecision>> {
        let mut query = SqlFilter::new(&format!("SELECT {STORED_COLUMNS} FROM tool_decisions"));
        query.equals("tool", filter.tool.clone().map(Value::Text));
        query.equals("upstream", filter.upstream.clone().map(Value::Text));
        query.equals("agent", filter.agent.map(|a| Value::Text(hex(a))));
        query.equals("outcome", filter.outcome.clone().map(Value::Text));
        query.within("received_at", filter.from, filter.to);
        let after = filter
            .after
            .map(|(at, id)| (at, Value::Text(id.to_string())));
        let (op, order) = if filter.newest_first {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        query.past("received_at", "id", op, after);
        query
            .fetch_all(
                &self.reader,
                &format!(
                    " ORDER BY received_at {order}, id {order} LIMIT {}",
                    filter.limit
                ),
            )
            .await?
            .iter()
            .map(|row| stored(row, now))
            .collect()
    }

    /// The approval of an `approval_required` decision as of `now`: `None` if no such
    /// decision asks for one.
    pub async fn tool_approval(&self, id: B256, now: u64) -> Result<Option<ToolApprovalState>> {
        type Row = (
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<String>,
            Option<i64>,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT approval_status, approval_by, approval_at, arguments_hash, \
             approval_expires_at FROM tool_decisions WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Ok(None),
            Some((status, by, at, hash, expires)) => {
                approval_state(now, status, by, at, hash, expires)
            }
        }
    }

    /// Gives the verdict on a pending, unexpired tool approval, as `by`. An approval names
    /// the arguments hash the approver was shown (`Some`), which must be the one the call was
    /// held with; a denial needs none. Nothing changes unless [`ToolVerdict::Given`].
    pub async fn resolve_tool_approval(
        &self,
        id: B256,
        approval_of: Option<B256>,
        by: &str,
        now: u64,
    ) -> Result<ToolVerdict> {
        let Some(state) = self.tool_approval(id, now).await? else {
            return Ok(ToolVerdict::NotPending);
        };
        if state.status != "pending" {
            return Ok(ToolVerdict::NotPending);
        }
        if let Some(shown) = approval_of
            && state.arguments_hash != Some(shown)
        {
            return Ok(ToolVerdict::ArgumentsMismatch);
        }
        // Re-checked in the update: another verdict, or the expiry, may have come between.
        // The arguments were for the approver: decided, they are cleared (the hash stays).
        let updated = sqlx::query(
            "UPDATE tool_decisions SET approval_status = $1, approval_by = $2, approval_at = $3, \
             held_arguments = NULL \
             WHERE id = $4 AND approval_status = 'pending' AND approval_expires_at > $3",
        )
        .bind(if approval_of.is_some() {
            "approved"
        } else {
            "denied"
        })
        .bind(by)
        .bind(db_time(now))
        .bind(id.to_string())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(if updated == 1 {
            ToolVerdict::Given
        } else {
            ToolVerdict::NotPending
        })
    }

    /// The agent that reported held call `id` (`None`: no decision with this id asks for an
    /// approval).
    pub async fn tool_approval_agent(&self, id: B256) -> Result<Option<Address>> {
        let agent: Option<String> = sqlx::query_scalar(
            "SELECT agent FROM tool_decisions WHERE id = $1 AND approval_status IS NOT NULL",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        agent
            .map(|a| {
                a.parse()
                    .map_err(|_| Error::Corrupt(format!("tool decision agent: {a}")))
            })
            .transpose()
    }

    /// The agent withdraws its pending, unexpired held call `id` (it cancelled the call): no
    /// verdict can be given after, and the arguments are cleared. `true` if withdrawn now.
    pub async fn withdraw_tool_approval(&self, id: B256, now: u64) -> Result<bool> {
        let updated = sqlx::query(
            "UPDATE tool_decisions SET approval_status = 'withdrawn', approval_at = $1, \
             held_arguments = NULL \
             WHERE id = $2 AND approval_status = 'pending' AND approval_expires_at > $1",
        )
        .bind(db_time(now))
        .bind(id.to_string())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(updated == 1)
    }

    /// Pending, unexpired tool approvals as of `now`, oldest first (at most `limit`), and
    /// how many are pending in all.
    pub async fn pending_tool_approvals(
        &self,
        now: u64,
        limit: u32,
    ) -> Result<(Vec<StoredToolDecision>, u64)> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {STORED_COLUMNS}, held_arguments FROM tool_decisions \
             WHERE approval_status = 'pending' \
             AND approval_expires_at > $1 ORDER BY received_at, id LIMIT $2"
        )))
        .bind(db_time(now))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|row| {
            let mut held = stored(row, now)?;
            held.arguments = row.try_get(8)?;
            Ok(held)
        })
        .collect::<Result<Vec<_>>>()?;
        let total: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM tool_decisions WHERE approval_status = 'pending' \
             AND approval_expires_at > $1",
        )
        .bind(db_time(now))
        .fetch_one(&self.reader)
        .await?;
        Ok((rows, total as u64))
    }
}

/// The insert of `d` received at `now` (`held`: with a pending approval and its arguments).
fn insert_query<'q>(
    d: &'q NewToolDecision<'_>,
    now: u64,
    held: bool,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query(
        "INSERT INTO tool_decisions (id, agent, upstream, tool, outcome, reasons, \
         policy_version, policy_hash, leaf_hash, decided_at_ms, received_at, body, \
         approval_status, arguments_hash, approval_expires_at, held_arguments) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(d.id.to_string())
    .bind(hex(d.agent))
    .bind(d.upstream)
    .bind(d.tool)
    .bind(d.outcome)
    .bind(d.reasons.clone())
    .bind(db_time(d.policy_version))
    .bind(d.policy_hash)
    .bind(d.leaf_hash.map(|l| l.to_string()))
    .bind(db_time(d.decided_at_ms))
    .bind(db_time(now))
    .bind(d.body.clone())
    .bind(held.then_some("pending"))
    .bind(d.arguments_hash.map(|h| h.to_string()))
    .bind(d.approval_expires_at.map(db_time))
    .bind(if held { d.arguments.clone() } else { None })
}

/// Clears the arguments of approvals expired by `now`: how many.
async fn clear_expired(tx: &mut sqlx::Transaction<'static, sqlx::Any>, now: u64) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE tool_decisions SET held_arguments = NULL \
         WHERE held_arguments IS NOT NULL AND approval_expires_at <= $1",
    )
    .bind(db_time(now))
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

fn replay_or_conflict(kept: &str, body: &str) -> ToolDecisionStore {
    if kept == body {
        ToolDecisionStore::Replayed
    } else {
        ToolDecisionStore::Conflict
    }
}

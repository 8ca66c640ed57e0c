//! Tool-policy decisions reported by the MCP gateway (`POST /v1/tool-decisions`). The server
//! checks the agent's signature before it stores one; the signed body is kept whole so the row
//! can be shown to an auditor exactly as the agent signed it.

use chaperone_core::{Address, B256};
use sqlx::Row;

use crate::{
    Error, Result, Store,
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
}

impl Store {
    /// Stores a decision: [`ToolDecisionStore::Inserted`], or, for an id stored before,
    /// `Replayed` (the same body: nothing changes) or `Conflict` (another body: nothing
    /// changes either).
    pub async fn insert_tool_decision(
        &self,
        d: &NewToolDecision<'_>,
        now: u64,
    ) -> Result<ToolDecisionStore> {
        let inserted = sqlx::query(
            "INSERT INTO tool_decisions (id, agent, upstream, tool, outcome, reasons, \
             policy_version, policy_hash, leaf_hash, decided_at_ms, received_at, body, \
             approval_status) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(d.id.to_string())
        .bind(hex(d.agent))
        .bind(d.upstream)
        .bind(d.tool)
        .bind(d.outcome)
        .bind(&d.reasons)
        .bind(db_time(d.policy_version))
        .bind(d.policy_hash)
        .bind(d.leaf_hash.map(|l| l.to_string()))
        .bind(db_time(d.decided_at_ms))
        .bind(db_time(now))
        .bind(&d.body)
        .bind((d.outcome == "approval_required").then_some("pending"))
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(ToolDecisionStore::Inserted);
        }
        let body: String = sqlx::query_scalar("SELECT body FROM tool_decisions WHERE id = $1")
            .bind(d.id.to_string())
            .fetch_one(&self.pool)
            .await?;
        Ok(if body == d.body {
            ToolDecisionStore::Replayed
        } else {
            ToolDecisionStore::Conflict
        })
    }

    /// Tool decisions, oldest first (or newest first).
    pub async fn tool_decisions(
        &self,
        filter: &ToolDecisionFilter,
    ) -> Result<Vec<StoredToolDecision>> {
        let mut query = SqlFilter::new("SELECT id, body, received_at FROM tool_decisions");
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
            .into_iter()
            .map(|row| {
                let id: String = row.try_get(0)?;
                Ok(StoredToolDecision {
                    id: id
                        .parse()
                        .map_err(|_| Error::Corrupt(format!("tool decision id: {id}")))?,
                    body: row.try_get(1)?,
                    received_at: row.try_get::<i64, _>(2)? as u64,
                })
            })
            .collect()
    }

    /// The human verdict on an `approval_required` decision: `None` if no such decision asks
    /// for one, else (status, by whom, when).
    pub async fn tool_approval(
        &self,
        id: B256,
    ) -> Result<Option<(String, Option<String>, Option<u64>)>> {
        let row: Option<(Option<String>, Option<String>, Option<i64>)> = sqlx::query_as(
            "SELECT approval_status, approval_by, approval_at FROM tool_decisions WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.and_then(|(status, by, at)| Some((status?, by, at.map(|t| t as u64)))))
    }

    /// Gives the verdict on a pending tool approval, as `by`. Returns false if none is pending
    /// with this id (nothing changes).
    pub async fn resolve_tool_approval(
        &self,
        id: B256,
        approve: bool,
        by: &str,
        now: u64,
    ) -> Result<bool> {
        let updated = sqlx::query(
            "UPDATE tool_decisions SET approval_status = $1, approval_by = $2, approval_at = $3 \
             WHERE id = $4 AND approval_status = 'pending'",
        )
        .bind(if approve { "approved" } else { "denied" })
        .bind(by)
        .bind(db_time(now))
        .bind(id.to_string())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(updated == 1)
    }

    /// Pending tool approvals, oldest first (at most `limit`).
    pub async fn pending_tool_approvals(&self, limit: u32) -> Result<Vec<StoredToolDecision>> {
        sqlx::query(
            "SELECT id, body, received_at FROM tool_decisions WHERE approval_status = 'pending' \
             ORDER BY received_at, id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?
        .into_iter()
        .map(|row| {
            let id: String = row.try_get(0)?;
            Ok(StoredToolDecision {
                id: id
                    .parse()
                    .map_err(|_| Error::Corrupt(format!("tool decision id: {id}")))?,
                body: row.try_get(1)?,
                received_at: row.try_get::<i64, _>(2)? as u64,
            })
        })
        .collect()
    }
}

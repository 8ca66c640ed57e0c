//! The policy service's own records: co-sign decisions waiting to be logged (the JSON their
//! records commit to), where each was logged, and the openings of logged ones (content and
//! salts) that let an auditor check a decision against its record.

use chaperone_core::{B256, Salt};
use sqlx::Row;

use super::to_u64;
use crate::{
    Error, Result, Store,
    sql_filter::{IN_LIST_PART, placeholders},
    store::parse,
};

/// The columns [`decision_content`] reads, in its order.
const CONTENT_COLUMNS: &str =
    "request_id, created_at, request, outcome, reasons, policy_version, policy_hash, signature";

/// What a decision's record commits to, from a row of [`CONTENT_COLUMNS`]: its input, the
/// request as received, and its output, the decision as JSON. The one place that writes it,
/// for logging and for the openings alike: the bytes must be the same both times.
fn decision_content(row: &sqlx::any::AnyRow) -> Result<UnloggedDecision> {
    let reasons: String = row.try_get(4)?;
    let decision = serde_json::json!({
        "outcome": row.try_get::<String, _>(3)?,
        "reasons": serde_json::from_str::<serde_json::Value>(&reasons)
            .map_err(|e| Error::Corrupt(e.to_string()))?,
        "policy_version": row.try_get::<i64, _>(5)?,
        "policy_hash": row.try_get::<String, _>(6)?,
        "cosigner_signature": row.try_get::<Option<String>, _>(7)?,
    });
    Ok(UnloggedDecision {
        request_id: parse(&row.try_get::<String, _>(0)?, "request id")?,
        created_at: to_u64(row.try_get(1)?, "created at")?,
        request: row.try_get(2)?,
        decision: decision.to_string(),
        revision: 0,
    })
}

/// A record of a logged decision opened: what its input and output commit to, with the salts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionOpening {
    /// The decision's request id.
    pub request_id: B256,
    /// The leaf hash of its record.
    pub leaf_hash: B256,
    /// The request as received (the input's content).
    pub request: String,
    /// The input's salt.
    pub input_salt: Salt,
    /// The decision as JSON (the output's content).
    pub decision: String,
    /// The output's salt.
    pub output_salt: Salt,
}

/// An opening from its parts (`salts`: the JSON `{"input": …, "output": …}`).
fn opening(
    request_id: B256,
    leaf_hash: B256,
    request: String,
    decision: String,
    salts: &str,
) -> Result<DecisionOpening> {
    let salts: serde_json::Value =
        serde_json::from_str(salts).map_err(|e| Error::Corrupt(format!("record salts: {e}")))?;
    let salt = |which: &str| -> Result<Salt> {
        serde_json::from_value(salts[which].clone())
            .map_err(|e| Error::Corrupt(format!("record {which} salt: {e}")))
    };
    Ok(DecisionOpening {
        request_id,
        leaf_hash,
        request,
        input_salt: salt("input")?,
        decision,
        output_salt: salt("output")?,
    })
}

/// What a record of the policy service stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceRecord {
    /// A co-sign decision (its request id).
    Decision(B256),
    /// An administrative action (its id).
    AdminAction(u64),
}

/// A co-sign decision not yet in the log: its id and the JSON that the log record commits to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnloggedDecision {
    /// The request id.
    pub request_id: B256,
    /// When it was decided (Unix seconds).
    pub created_at: u64,
    /// The request as received.
    pub request: String,
    /// The decision (outcome, reasons, policy version and hash, signature) as JSON.
    pub decision: String,
    /// The row's revision when read (a re-decision raises it): the decision is marked logged
    /// only if it is unchanged.
    pub revision: i64,
}

impl Store {
    /// Co-sign decisions not yet in the log, oldest first.
    pub async fn unlogged_decisions(&self, limit: u32) -> Result<Vec<UnloggedDecision>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CONTENT_COLUMNS}, revision FROM decisions WHERE logged_leaf IS NULL \
             ORDER BY created_at, request_id LIMIT {limit}"
        )))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(UnloggedDecision {
                    revision: row.try_get(8)?,
                    ..decision_content(row)?
                })
            })
            .collect()
    }

    /// The openings of every logged record of the decisions among `ids` (a request re-decided
    /// after a human approval has several), in no particular order (one query per
    /// [`IN_LIST_PART`] each). A decision logged before its records were kept is opened from its
    /// row: its current record only.
    pub async fn decision_openings(&self, ids: &[B256]) -> Result<Vec<DecisionOpening>> {
        let mut out = Vec::new();
        for part in ids.chunks(IN_LIST_PART) {
            let bind = |sql: String| {
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for id in part {
                    query = query.bind(id.to_string());
                }
                query
            };
            let kept = bind(format!(
                "SELECT request_id, leaf_hash, request, decision, record_salts \
                 FROM decision_records WHERE request_id IN ({})",
                placeholders(part.len())
            ))
            .fetch_all(&self.reader)
            .await?;
            for row in kept {
                out.push(opening(
                    parse(&row.try_get::<String, _>(0)?, "request id")?,
                    parse(&row.try_get::<String, _>(1)?, "record leaf")?,
                    row.try_get(2)?,
                    row.try_get(3)?,
                    &row.try_get::<String, _>(4)?,
                )?);
            }
            let legacy = bind(format!(
                "SELECT {CONTENT_COLUMNS}, logged_leaf, record_salts FROM decisions d \
                 WHERE logged_leaf IS NOT NULL AND request_id IN ({}) AND NOT EXISTS \
                 (SELECT 1 FROM decision_records r WHERE r.leaf_hash = d.logged_leaf)",
                placeholders(part.len())
            ))
            .fetch_all(&self.reader)
            .await?;
            for row in legacy {
                let content = decision_content(&row)?;
                out.push(opening(
                    content.request_id,
                    parse(&row.try_get::<String, _>(8)?, "logged leaf")?,
                    content.request,
                    content.decision,
                    &row.try_get::<Option<String>, _>(9)?.unwrap_or_default(),
                )?);
            }
        }
        Ok(out)
    }

    /// The leaf hash under which a decision was logged.
    pub async fn decision_leaf(&self, request_id: B256) -> Result<Option<B256>> {
        let row = sqlx::query("SELECT logged_leaf FROM decisions WHERE request_id = $1")
            .bind(request_id.to_string())
            .fetch_optional(&self.reader)
            .await?;
        match row {
            Some(row) => row
                .try_get::<Option<String>, _>(0)?
                .map(|leaf| parse(&leaf, "logged leaf"))
                .transpose(),
            None => Ok(None),
        }
    }
}

impl Store {
    /// Whether request `id` already has a final record (approved or denied) among its logged
    /// records: then it is ended for good, whatever its row (an unsigned column an admin may
    /// edit) says, and the service must never sign a second final record of it (sixth red-team
    /// review of issue 29, Medium). Warns when it has one: its caller found the row waiting, so
    /// the row was edited.
    pub(crate) async fn has_final_record(conn: &mut sqlx::AnyConnection, id: B256) -> Result<bool> {
        let rows = sqlx::query("SELECT decision FROM decision_records WHERE request_id = $1")
            .bind(id.to_string())
            .fetch_all(&mut *conn)
            .await?;
        for row in rows {
            let decision: serde_json::Value =
                serde_json::from_str(&row.try_get::<String, _>(0)?)
                    .map_err(|e| Error::Corrupt(format!("decision record: {e}")))?;
            if decision["outcome"].as_str() != Some("pending_approval") {
                tracing::warn!(
                    request_id = %id,
                    "a request whose final record is logged reads as waiting (its row was \
                     edited): left as it is"
                );
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Keeps the opening of request `id`'s logged record in `decision_records` when it was
    /// logged before migration 0020 (opened from its row only): called before the row is
    /// re-decided, which would lose it while the record stays in the log (sixth red-team review
    /// of issue 29, Medium). The same bytes as [`Store::decision_openings`] reads from the row.
    pub(crate) async fn keep_legacy_opening(
        conn: &mut sqlx::AnyConnection,
        id: B256,
    ) -> Result<()> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CONTENT_COLUMNS}, logged_leaf, record_salts FROM decisions d \
             WHERE request_id = $1 AND logged_leaf IS NOT NULL AND NOT EXISTS \
             (SELECT 1 FROM decision_records r WHERE r.leaf_hash = d.logged_leaf)"
        )))
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else {
            return Ok(());
        };
        let content = decision_content(&row)?;
        sqlx::query(
            // A concurrent ending of the same row may have kept it first (its update then
            // finds the row ended): the same bytes, so nothing to do, and never an error.
            "INSERT INTO decision_records (leaf_hash, request_id, request, decision, record_salts) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (leaf_hash) DO NOTHING",
        )
        .bind(row.try_get::<String, _>(8)?)
        .bind(content.request_id.to_string())
        .bind(content.request)
        .bind(content.decision)
        .bind(row.try_get::<Option<String>, _>(9)?.unwrap_or_default())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

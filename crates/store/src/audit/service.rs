//! The policy service's own records: co-sign decisions waiting to be logged (the JSON their
//! records commit to), where each was logged, and the openings of logged ones (content and
//! salts) that let an auditor check a decision against its record.

use std::collections::HashMap;

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
    })
}

/// A logged decision's record opened: what its input and output commit to, with the salts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionOpening {
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
}

impl Store {
    /// Co-sign decisions not yet in the log, oldest first.
    pub async fn unlogged_decisions(&self, limit: u32) -> Result<Vec<UnloggedDecision>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CONTENT_COLUMNS} FROM decisions WHERE logged_leaf IS NULL \
             ORDER BY created_at, request_id LIMIT {limit}"
        )))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(decision_content).collect()
    }

    /// The openings of the logged decisions among `ids` (one query per [`IN_LIST_PART`]).
    pub async fn decision_openings(&self, ids: &[B256]) -> Result<HashMap<B256, DecisionOpening>> {
        let mut out = HashMap::new();
        for part in ids.chunks(IN_LIST_PART) {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {CONTENT_COLUMNS}, logged_leaf, record_salts FROM decisions \
                 WHERE logged_leaf IS NOT NULL AND request_id IN ({})",
                placeholders(part.len())
            )));
            for id in part {
                query = query.bind(id.to_string());
            }
            for row in query.fetch_all(&self.reader).await? {
                let content = decision_content(&row)?;
                let salts: serde_json::Value =
                    serde_json::from_str(&row.try_get::<Option<String>, _>(9)?.unwrap_or_default())
                        .map_err(|e| Error::Corrupt(format!("record salts: {e}")))?;
                let salt = |which: &str| -> Result<Salt> {
                    serde_json::from_value(salts[which].clone())
                        .map_err(|e| Error::Corrupt(format!("record {which} salt: {e}")))
                };
                out.insert(
                    content.request_id,
                    DecisionOpening {
                        leaf_hash: parse(&row.try_get::<String, _>(8)?, "logged leaf")?,
                        request: content.request,
                        input_salt: salt("input")?,
                        decision: content.decision,
                        output_salt: salt("output")?,
                    },
                );
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

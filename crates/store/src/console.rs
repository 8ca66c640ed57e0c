//! What the compliance console reads besides the compliance API's lists: pending approvals
//! with their requests, a verdict's approver and comment, a wallet's policy history, and spend
//! over time for its chart.

use std::collections::{BTreeMap, HashMap};

use chaperone_core::{
    Address, B256, U256,
    policy::{Policy, Reason, Token},
};
use sqlx::Row;

use crate::{
    Error, Result, Store,
    sql_filter::{IN_LIST_PART, placeholders},
    store::{db_time, hex, parse},
};

/// A request waiting for a human, with what it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDetail {
    /// The request id (EIP-712 digest).
    pub request_id: B256,
    /// The wallet.
    pub wallet: Address,
    /// When it was asked (Unix seconds).
    pub created_at: u64,
    /// When the approval expires (Unix seconds).
    pub expires_at: u64,
    /// The co-sign request as received (JSON).
    pub request: String,
    /// Why a human is asked (the policy's reasons).
    pub reasons: Vec<Reason>,
}

/// A human's verdict on a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// `pending`, `approved` or `denied`.
    pub status: String,
    /// Who decided, as one text: the approvers' names joined by `, ` (approved) or the name
    /// that denied. Lists read [`Verdict::approvers`].
    pub decided_by: Option<String>,
    /// Who gave the verdict, one name each: the approvers in voting order (approved), the
    /// name that denied (denied); none while pending.
    pub approvers: Vec<String>,
    /// When (Unix seconds).
    pub decided_at: Option<u64>,
    /// Their comment.
    pub comment: Option<String>,
}

/// One version of a wallet's policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersion {
    /// Its version.
    pub version: u32,
    /// Its hash.
    pub hash: B256,
    /// The policy.
    pub policy: Policy,
    /// When it was installed (Unix seconds).
    pub created_at: u64,
    /// Who installed it (none: the service's configuration).
    pub installed_by: Option<String>,
    /// The document as submitted (TOML keeps its comments), when it was recorded.
    pub source: Option<String>,
}

/// A signed checkpoint and, once mined, its anchoring transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointStatus {
    /// The tree size.
    pub size: u64,
    /// The root.
    pub root: B256,
    /// When it was signed (Unix seconds).
    pub signed_at: u64,
    /// The anchoring transaction and its block.
    pub anchor: Option<(B256, u64)>,
}

/// An approved request's approvers: its approving votes, or (an approval older than the
/// votes' table) the one name that decided it.
pub(crate) fn approvers_or(votes: Option<Vec<String>>, decided_by: &Option<String>) -> Vec<String> {
    match votes {
        Some(names) if !names.is_empty() => names,
        _ => decided_by.iter().cloned().collect(),
    }
}

fn time(row: &sqlx::any::AnyRow, index: usize) -> Result<u64> {
    let value: i64 = row.try_get(index)?;
    u64::try_from(value).map_err(|_| Error::Corrupt(format!("negative time {value}")))
}

impl Store {
    /// Pending, unexpired approvals with their requests, the oldest `limit`. A request whose
    /// `validUntil` has passed (its agent gave up waiting) is left out: approving it could no
    /// longer pay.
    pub async fn pending_approval_details(
        &self,
        now: u64,
        limit: u32,
    ) -> Result<Vec<PendingDetail>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT a.request_id, d.wallet, d.created_at, a.expires_at, d.request, d.reasons \
             FROM approvals a JOIN decisions d ON d.request_id = a.request_id \
             WHERE a.status = 'pending' AND a.expires_at >= $1 AND d.valid_until >= $1 \
             ORDER BY d.created_at, a.request_id LIMIT {limit}"
        )))
        .bind(db_time(now))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PendingDetail {
                    request_id: parse(&row.try_get::<String, _>(0)?, "request id")?,
                    wallet: parse(&row.try_get::<String, _>(1)?, "wallet")?,
                    created_at: time(row, 2)?,
                    expires_at: time(row, 3)?,
                    request: row.try_get(4)?,
                    reasons: serde_json::from_str(&row.try_get::<String, _>(5)?)
                        .map_err(|e| Error::Corrupt(e.to_string()))?,
                })
            })
            .collect()
    }

    /// How many requests [`Store::pending_approval_details`] would list without a limit.
    pub async fn pending_approval_count(&self, now: u64) -> Result<u64> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM approvals a JOIN decisions d ON d.request_id = a.request_id \
             WHERE a.status = 'pending' AND a.expires_at >= $1 AND d.valid_until >= $1",
        )
        .bind(db_time(now))
        .fetch_one(&self.reader)
        .await?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    /// The human verdicts on `requests` (those a human was asked about), one query per
    /// [`IN_LIST_PART`] requests; `approvers` from the approving votes, in voting order.
    pub async fn verdicts(&self, requests: &[B256]) -> Result<HashMap<B256, Verdict>> {
        let mut out = HashMap::new();
        for part in requests.chunks(IN_LIST_PART) {
            let sql = format!(
                "SELECT request_id, status, decided_by, decided_at, comment FROM approvals \
                 WHERE request_id IN ({})",
                placeholders(part.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for request in part {
                query = query.bind(request.to_string());
            }
            let mut approving = self.approving_votes(part).await?;
            for row in query.fetch_all(&self.reader).await? {
                let request: B256 = parse(&row.try_get::<String, _>(0)?, "request id")?;
                let status: String = row.try_get(1)?;
                let decided_by: Option<String> = row.try_get(2)?;
                let approvers = match status.as_str() {
                    "approved" => approvers_or(approving.remove(&request), &decided_by),
                    "denied" => decided_by.iter().cloned().collect(),
                    _ => Vec::new(),
                };
                let verdict = Verdict {
                    status,
                    decided_by,
                    approvers,
                    decided_at: row
                        .try_get::<Option<i64>, _>(3)?
                        .map(|t| u64::try_from(t).unwrap_or_default()),
                    comment: row.try_get(4)?,
                };
                out.insert(request, verdict);
            }
        }
        Ok(out)
    }

    /// The names that approved each of `requests` (at most [`IN_LIST_PART`]), in voting order.
    pub(crate) async fn approving_votes(
        &self,
        requests: &[B256],
    ) -> Result<HashMap<B256, Vec<String>>> {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT request_id, approver FROM approval_votes \
             WHERE approve = 1 AND request_id IN ({}) ORDER BY voted_at, approver",
            placeholders(requests.len())
        )));
        for request in requests {
            query = query.bind(request.to_string());
        }
        let mut out: HashMap<B256, Vec<String>> = HashMap::new();
        for row in query.fetch_all(&self.reader).await? {
            out.entry(parse(&row.try_get::<String, _>(0)?, "request id")?)
                .or_default()
                .push(row.try_get(1)?);
        }
        Ok(out)
    }

    /// The newest signed checkpoints with their anchors, newest first.
    pub async fn recent_checkpoints(&self, limit: u32) -> Result<Vec<CheckpointStatus>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT c.size, c.root, c.created_at, a.tx_hash, a.block_number \
             FROM checkpoints c LEFT JOIN anchors a ON a.size = c.size \
             ORDER BY c.size DESC LIMIT {limit}"
        )))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let tx: Option<String> = row.try_get(3)?;
                let block: Option<i64> = row.try_get(4)?;
                Ok(CheckpointStatus {
                    size: time(row, 0)?,
                    root: parse(&row.try_get::<String, _>(1)?, "root")?,
                    signed_at: time(row, 2)?,
                    anchor: match (tx, block) {
                        (Some(tx), Some(block)) => Some((
                            parse(&tx, "anchor transaction")?,
                            u64::try_from(block).unwrap_or_default(),
                        )),
                        _ => None,
                    },
                })
            })
            .collect()
    }

    /// Every version of a wallet's policy, newest first.
    pub async fn policy_history(&self, wallet: Address) -> Result<Vec<PolicyVersion>> {
        let rows = sqlx::query(
            "SELECT version, hash, document, created_at, installed_by, source FROM policies \
             WHERE wallet = $1 \
             ORDER BY version DESC",
        )
        .bind(hex(wallet))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let version: i64 = row.try_get(0)?;
                Ok(PolicyVersion {
                    version: u32::try_from(version)
                        .map_err(|_| Error::Corrupt(format!("policy version {version}")))?,
                    hash: parse(&row.try_get::<String, _>(1)?, "policy hash")?,
                    policy: serde_json::from_str(&row.try_get::<String, _>(2)?)
                        .map_err(|e| Error::Corrupt(e.to_string()))?,
                    created_at: time(row, 3)?,
                    installed_by: row.try_get(4)?,
                    source: row.try_get(5)?,
                })
            })
            .collect()
    }

    /// What a wallet committed of `token` per `bucket` seconds since `since` (reserved and
    /// settled; released reservations spent nothing), as (bucket start, amount), oldest first,
    /// every bucket present.
    pub async fn spend_series(
        &self,
        wallet: Address,
        token: Token,
        since: u64,
        until: u64,
        bucket: u64,
    ) -> Result<Vec<(u64, U256)>> {
        let bucket = bucket.max(1);
        let rows = sqlx::query(
            "SELECT created_at, amount FROM spend_reservations \
             WHERE wallet = $1 AND token = $2 AND status <> 'released' \
             AND created_at >= $3 AND created_at < $4",
        )
        .bind(hex(wallet))
        .bind(token.to_string())
        .bind(db_time(since))
        .bind(db_time(until))
        .fetch_all(&self.reader)
        .await?;
        let mut series: BTreeMap<u64, U256> = (since / bucket..=until.saturating_sub(1) / bucket)
            .map(|b| (b * bucket, U256::ZERO))
            .collect();
        for row in rows {
            let at = time(&row, 0)?;
            let amount: U256 = parse(&row.try_get::<String, _>(1)?, "amount")?;
            let slot = series.entry(at / bucket * bucket).or_default();
            *slot = slot.saturating_add(amount);
        }
        Ok(series.into_iter().collect())
    }
}

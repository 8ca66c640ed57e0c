//! What compliance officers query besides records: decisions, spend, and the chain events the
//! indexer follows (with the block hashes that let it notice reorganisations).

use std::collections::BTreeMap;

use chaperone_core::{
    Address, B256,
    policy::{Amount, Outcome, Reason, Token},
};
use sqlx::Row;

use crate::{
    Error, Result, Store,
    audit::Value,
    sql_filter::SqlFilter,
    store::{db_time, hex, outcome_from, outcome_text, parse},
    totals::Ending,
};

/// Which decisions to list.
#[derive(Debug, Clone, Default)]
pub struct DecisionFilter {
    /// One wallet's.
    pub wallet: Option<Address>,
    /// One outcome.
    pub outcome: Option<Outcome>,
    /// With a reason of this code (e.g. `window_cap`).
    pub reason: Option<String>,
    /// Decided at or after (Unix seconds).
    pub from: Option<u64>,
    /// Decided before (Unix seconds).
    pub to: Option<u64>,
    /// The pagination cursor: the (time, request id) of the last decision already returned.
    pub after: Option<(u64, B256)>,
    /// At most this many.
    pub limit: u32,
}

/// A decision as the compliance API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionRow {
    /// The request id (EIP-712 digest).
    pub request_id: B256,
    /// The wallet.
    pub wallet: Address,
    /// When it was decided (Unix seconds).
    pub created_at: u64,
    /// The verdict.
    pub outcome: Outcome,
    /// Every reason.
    pub reasons: Vec<Reason>,
    /// Policy version.
    pub policy_version: u32,
    /// Policy hash.
    pub policy_hash: B256,
    /// Whether a co-signature was given.
    pub signed: bool,
    /// Leaf hash of the decision's record in the audit log, once logged.
    pub logged_leaf: Option<B256>,
    /// Leaf hash of the agent's record of the model call it paid within (x402), if bound.
    pub call_leaf_hash: Option<B256>,
}

/// Work waiting in the service's queues (for `/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueDepths {
    /// Decisions not yet written to the audit log.
    pub unlogged_decisions: u64,
    /// Pending approvals that have not expired.
    pub pending_approvals: u64,
}

/// Spend of one token by one wallet within a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendTotal {
    /// The wallet.
    pub wallet: Address,
    /// The token.
    pub token: Token,
    /// Reserved, not yet confirmed on chain.
    pub reserved: Amount,
    /// Confirmed on chain.
    pub settled: Amount,
    /// Released (reverted or expired).
    pub released: Amount,
    /// Number of approvals behind these figures.
    pub approvals: u64,
}

/// An event the indexer took from the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainEvent {
    /// Block number.
    pub block_number: u64,
    /// Position in the block.
    pub log_index: u64,
    /// Block hash.
    pub block_hash: B256,
    /// Transaction hash.
    pub tx_hash: B256,
    /// Emitting contract.
    pub contract: Address,
    /// Event name, e.g. `Anchored`.
    pub event: String,
    /// Decoded fields, as JSON.
    pub fields: serde_json::Value,
    /// When its block was mined (Unix seconds), if the indexer read it.
    pub block_time: Option<u64>,
}

/// How many block hashes the indexer keeps to find the fork point of a reorganisation.
const KEPT_BLOCK_HASHES: i64 = 1024;

fn i64_of(n: u64) -> Result<i64> {
    i64::try_from(n).map_err(|_| Error::OutOfRange(n.to_string()))
}

impl Store {
    /// How much work waits in the queues.
    pub async fn queue_depths(&self, now: u64) -> Result<QueueDepths> {
        let unlogged: i64 = sqlx::query("SELECT COUNT(*) FROM decisions WHERE logged_leaf IS NULL")
            .fetch_one(&self.reader)
            .await?
            .try_get(0)?;
        let pending: i64 = sqlx::query(
            "SELECT COUNT(*) FROM approvals WHERE status = 'pending' AND expires_at >= $1",
        )
        .bind(db_time(now))
        .fetch_one(&self.reader)
        .await?
        .try_get(0)?;
        Ok(QueueDepths {
            unlogged_decisions: unlogged.max(0) as u64,
            pending_approvals: pending.max(0) as u64,
        })
    }

    /// Decisions ordered by (time, request id), filtered.
    pub async fn decisions(&self, filter: &DecisionFilter) -> Result<Vec<DecisionRow>> {
        let mut query = SqlFilter::new(
            "SELECT request_id, wallet, created_at, outcome, reasons, policy_version, \
             policy_hash, signature, logged_leaf, call_leaf_hash FROM decisions",
        );
        query.equals("wallet", filter.wallet.map(|w| Value::Text(hex(w))));
        query.equals(
            "outcome",
            filter
                .outcome
                .map(|o| Value::Text(outcome_text(o).to_owned())),
        );
        if let Some(code) = &filter.reason {
            // The reasons are stored as compact JSON, each with its `code` first.
            let p = query.param(Value::Text(format!(
                "%\"code\":{}%",
                serde_json::json!(code)
            )));
            query.and(&format!("reasons LIKE {p}"));
        }
        query.within("created_at", filter.from, filter.to);
        let after = filter
            .after
            .map(|(at, id)| (at, Value::Text(id.to_string())));
        query.past("created_at", "request_id", ">", after);
        query
            .fetch_all(
                &self.reader,
                &format!(" ORDER BY created_at, request_id LIMIT {}", filter.limit),
            )
            .await?
            .into_iter()
            .map(|row| {
                let reasons: String = row.try_get(4)?;
                let version: i64 = row.try_get(5)?;
                Ok(DecisionRow {
                    request_id: parse(&row.try_get::<String, _>(0)?, "request id")?,
                    wallet: parse(&row.try_get::<String, _>(1)?, "wallet")?,
                    created_at: row.try_get::<i64, _>(2)? as u64,
                    outcome: outcome_from(&row.try_get::<String, _>(3)?)?,
                    reasons: serde_json::from_str(&reasons)
                        .map_err(|e| Error::Corrupt(e.to_string()))?,
                    policy_version: u32::try_from(version)
                        .map_err(|_| Error::Corrupt("policy version".into()))?,
                    policy_hash: parse(&row.try_get::<String, _>(6)?, "policy hash")?,
                    signed: row.try_get::<Option<String>, _>(7)?.is_some(),
                    logged_leaf: row
                        .try_get::<Option<String>, _>(8)?
                        .map(|l| parse(&l, "logged leaf"))
                        .transpose()?,
                    call_leaf_hash: row
                        .try_get::<Option<String>, _>(9)?
                        .map(|l| parse(&l, "call leaf hash"))
                        .transpose()?,
                })
            })
            .collect()
    }

    /// Spend per wallet and token since `since` (Unix seconds), in (wallet, token) order.
    /// Amounts exceed 64 bits, so they are summed here rather than in SQL.
    pub async fn spend(
        &self,
        wallet: Option<Address>,
        token: Option<Token>,
        since: u64,
    ) -> Result<Vec<SpendTotal>> {
        let rows = sqlx::query(
            "SELECT wallet, token, amount, status FROM spend_reservations \
             WHERE created_at > $1 AND ($2 = '' OR wallet = $2) AND ($3 = '' OR token = $3)",
        )
        .bind(db_time(since))
        .bind(wallet.map(hex).unwrap_or_default())
        .bind(token.map(|t| t.to_string()).unwrap_or_default())
        .fetch_all(&self.reader)
        .await?;
        let mut totals: BTreeMap<(String, String), SpendTotal> = BTreeMap::new();
        for row in rows {
            let wallet: String = row.try_get(0)?;
            let token: String = row.try_get(1)?;
            let amount = Amount(parse(&row.try_get::<String, _>(2)?, "amount")?);
            let status: String = row.try_get(3)?;
            let entry = totals
                .entry((wallet.clone(), token.clone()))
                .or_insert(SpendTotal {
                    wallet: parse(&wallet, "wallet")?,
                    token: parse(&token, "token")?,
                    reserved: Amount::default(),
                    settled: Amount::default(),
                    released: Amount::default(),
                    approvals: 0,
                });
            let bucket = match status.as_str() {
                "reserved" => &mut entry.reserved,
                "settled" => &mut entry.settled,
                "released" => &mut entry.released,
                other => return Err(Error::Corrupt(format!("reservation status {other}"))),
            };
            bucket.0 = bucket.0.saturating_add(amount.0);
            entry.approvals += 1;
        }
        Ok(totals.into_values().collect())
    }

    /// The highest block the indexer took, and its hash.
    pub async fn indexed_head(&self) -> Result<Option<(u64, B256)>> {
        let row = sqlx::query("SELECT number, hash FROM chain_blocks ORDER BY number DESC LIMIT 1")
            .fetch_optional(&self.reader)
            .await?;
        row.map(|row| {
            Ok((
                row.try_get::<i64, _>(0)? as u64,
                parse(&row.try_get::<String, _>(1)?, "block hash")?,
            ))
        })
        .transpose()
    }

    /// The blocks whose hashes the indexer recorded, newest first.
    pub async fn indexed_blocks(&self) -> Result<Vec<(u64, B256)>> {
        let rows = sqlx::query("SELECT number, hash FROM chain_blocks ORDER BY number DESC")
            .fetch_all(&self.reader)
            .await?;
        rows.into_iter()
            .map(|row| {
                Ok((
                    row.try_get::<i64, _>(0)? as u64,
                    parse(&row.try_get::<String, _>(1)?, "block hash")?,
                ))
            })
            .collect()
    }

    /// Forgets everything indexed above block `keep` (a reorganisation replaced those blocks),
    /// including anchors mined there: the anchoring worker anchors them again. The payments
    /// settled there are reserved again (red team rt29 F6): the ledger must not name a
    /// transaction that is no longer on chain, and the new branch settles them again if it
    /// mines them (or they are released once they expire unseen); either way their spend keeps
    /// counting meanwhile. Returns the number of events dropped.
    pub async fn rewind_index(&self, keep: u64) -> Result<u64> {
        let fork = keep;
        let keep = i64_of(keep)?;
        let mut tx = self.begin_write().await?;
        let settled_above = sqlx::query(
            "SELECT id, wallet, token, amount, expires_at, status FROM spend_reservations \
             WHERE status = 'settled' AND settled_block > $1",
        )
        .bind(i64_of(fork)?);
        self.move_reservations(&mut tx, settled_above, "reserved", Ending::default())
            .await?;
        let dropped = sqlx::query("DELETE FROM chain_events WHERE block_number > $1")
            .bind(keep)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM chain_blocks WHERE number > $1")
            .bind(keep)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM anchors WHERE block_number > $1")
            .bind(keep)
            .execute(&mut *tx)
            .await?;
        // An outflow in a dropped block is reconciled again if the new branch mines it (an
        // acknowledgement outlives this: `spend_acknowledgements`), and a Permit2 payment is
        // paired again with its transfer on the new branch.
        for table in ["unauthorized_spends", "permit2_transfers"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE block_number > $1"
            )))
            .bind(keep)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(dropped)
    }

    /// Records indexed blocks (number, hash) and their events in one transaction.
    ///
    /// In the same transaction, reconciliation (reconcile.rs): each outflow (`Executed`,
    /// `AuthorizationUsed`, a transfer an approved Permit2 payment made) is matched with the
    /// approved decision of exactly what moved, which it settles (even when already
    /// released); one no approved decision accounts for is stored as an unauthorized spend.
    /// Then, with `confirmed_time` (the timestamp of the newest block indexed), the
    /// reservations that can no longer be used move on ([`Store::release_expired`]). A crash
    /// can therefore never store an event without its settlement. Returns the unauthorized
    /// spends found now (a re-run of the same blocks finds none again).
    pub async fn index_blocks(
        &self,
        blocks: &[(u64, B256)],
        events: &[ChainEvent],
        confirmed_time: Option<u64>,
    ) -> Result<Vec<crate::UnauthorizedSpend>> {
        let mut tx = self.begin_write().await?;
        for (number, hash) in blocks {
            sqlx::query(
                "INSERT INTO chain_blocks (number, hash) VALUES ($1, $2) \
                 ON CONFLICT (number) DO UPDATE SET hash = excluded.hash",
            )
            .bind(i64_of(*number)?)
            .bind(hash.to_string())
            .execute(&mut *tx)
            .await?;
        }
        for e in events {
            sqlx::query(
                "INSERT INTO chain_events (block_number, log_index, block_hash, tx_hash, \
                 contract, event, fields, block_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (block_number, log_index) DO NOTHING",
            )
            .bind(i64_of(e.block_number)?)
            .bind(i64_of(e.log_index)?)
            .bind(e.block_hash.to_string())
            .bind(e.tx_hash.to_string())
            .bind(hex(e.contract))
            .bind(e.event.clone())
            .bind(e.fields.to_string())
            .bind(e.block_time.map(db_time))
            .execute(&mut *tx)
            .await?;
        }
        let found = self
            .reconcile_on(&mut tx, events, confirmed_time.unwrap_or_default())
            .await?;
        if let Some(time) = confirmed_time {
            self.release_expired_on(&mut tx, time).await?;
        }
        if let Some((top, _)) = blocks.last() {
            sqlx::query("DELETE FROM chain_blocks WHERE number < $1")
                .bind(i64_of(*top)? - KEPT_BLOCK_HASHES)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(found)
    }

    /// Indexed events in chain order, after the (block, log index) cursor.
    pub async fn chain_events(
        &self,
        after: Option<(u64, u64)>,
        limit: u32,
    ) -> Result<Vec<ChainEvent>> {
        let (block, index) = after.map_or((-1, -1), |(b, i)| (b as i64, i as i64));
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT block_number, log_index, block_hash, tx_hash, contract, event, fields, \
             block_time FROM chain_events WHERE block_number > $1 OR (block_number = $2 AND log_index > $3) \
             ORDER BY block_number, log_index LIMIT {limit}"
        )))
        .bind(block)
        .bind(block)
        .bind(index)
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|row| {
                let fields: String = row.try_get(6)?;
                Ok(ChainEvent {
                    block_number: row.try_get::<i64, _>(0)? as u64,
                    log_index: row.try_get::<i64, _>(1)? as u64,
                    block_hash: parse(&row.try_get::<String, _>(2)?, "block hash")?,
                    tx_hash: parse(&row.try_get::<String, _>(3)?, "tx hash")?,
                    contract: parse(&row.try_get::<String, _>(4)?, "contract")?,
                    event: row.try_get(5)?,
                    fields: serde_json::from_str(&fields)
                        .map_err(|e| Error::Corrupt(e.to_string()))?,
                    block_time: row.try_get::<Option<i64>, _>(7)?.map(|t| t as u64),
                })
            })
            .collect()
    }
}

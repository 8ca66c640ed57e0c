//! The payment ledger: every spend reservation (one per approved decision and token) with its
//! decision, wallet agent, human verdict and how it ended on chain, newest first.

use chaperone_core::{Address, B256, PERMIT2, U256, policy::Token};
use sqlx::Row;

use crate::{
    Error, Result, Settlement, Store,
    audit::Value,
    console::approvers_or,
    sql_filter::{IN_LIST_PART, SqlFilter, placeholders},
    store::{hex, parse},
};

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentState {
    /// Co-signed; not yet seen on chain, still usable.
    Reserved,
    /// Seen used on chain (or a permit past its validity, which no event reports).
    Settled,
    /// Released unused for another cause than expiry (the execution reverted).
    Released,
    /// Its co-signature expired unused (a confirmed block past `validUntil` was indexed).
    Expired,
    /// A Permit2 payment whose nonce the chain shows used, but no transfer of what was approved
    /// pairs with it: the nonce paid something else (attacker B; an unauthorized spend is
    /// raised). Its spend keeps counting against the limits: the nonce is gone.
    Misused,
}

/// SQL, over a reservation `r` and its decision `d`: the reservation is a Permit2 payment
/// the bitmap settled (its nonce is used) that no transfer paired with ([`PaymentState::Misused`]).
/// A decision made before migration 0016 records no transfer to pair, and is never misused.
fn misused_sql() -> String {
    format!(
        "(r.status = 'settled' AND d.pays_token IS NOT NULL AND d.authorization_key LIKE '{}:%' \
         AND NOT EXISTS (SELECT 1 FROM permit2_transfers p WHERE p.request_id = r.request_id))",
        hex(PERMIT2)
    )
}

/// Which payments to list. Recipients are read from the request (the server filters them).
#[derive(Debug, Clone, Default)]
pub struct PaymentFilter {
    /// One wallet's.
    pub wallet: Option<Address>,
    /// Those of wallets whose agent is this key.
    pub agent: Option<Address>,
    /// One token's.
    pub token: Option<Token>,
    /// Requests that mention this address (a prefilter: the server checks the recipients).
    pub mentions: Option<Address>,
    /// At least this many base units.
    pub min_amount: Option<U256>,
    /// At most this many base units.
    pub max_amount: Option<U256>,
    /// One state.
    pub state: Option<PaymentState>,
    /// Co-signed at or after (Unix seconds).
    pub from: Option<u64>,
    /// Co-signed before (Unix seconds).
    pub to: Option<u64>,
    /// The cursor: (time, reservation id) of the last payment already returned.
    pub before: Option<(u64, i64)>,
    /// At most this many.
    pub limit: u32,
}

/// One payment of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRow {
    /// The reservation's id (the cursor's tie-breaker).
    pub id: i64,
    /// The decision (request id).
    pub request_id: B256,
    /// The wallet.
    pub wallet: Address,
    /// The wallet's agent.
    pub agent: Address,
    /// The token.
    pub token: Token,
    /// How much, in base units.
    pub amount: U256,
    /// When it was co-signed (Unix seconds).
    pub created_at: u64,
    /// The last second its co-signature can be used.
    pub valid_until: u64,
    /// Where it stands.
    pub state: PaymentState,
    /// Where the chain showed it used, when it did.
    pub settlement: Option<Settlement>,
    /// The time of the block that showed it expired.
    pub expired_at: Option<u64>,
    /// The request as received (JSON `CosignBody`).
    pub request_json: String,
    /// The policy version that decided.
    pub policy_version: u32,
    /// The agent's record of the model call it was made in, once bound.
    pub call_leaf_hash: Option<B256>,
    /// Who approved it, one name each in voting order, when a human was asked.
    pub approvers: Vec<String>,
    /// Their comment.
    pub approval_comment: Option<String>,
}

/// `column >= amount` (or `<=`) for decimal text without leading zeros: a longer number is
/// larger, and numbers of one length compare as text.
fn amount_bound(column: &str, op: &str, len: &str, text: &str) -> String {
    let longer = if op == ">=" { ">" } else { "<" };
    format!(
        "(LENGTH({column}) {longer} {len} OR (LENGTH({column}) = {len} AND {column} {op} {text}))"
    )
}

impl Store {
    /// Payments, newest first, filtered.
    pub async fn payments(&self, filter: &PaymentFilter) -> Result<Vec<LedgerRow>> {
        let mut query = SqlFilter::new(&format!(
            "SELECT r.id, r.request_id, r.wallet, w.agent, r.token, r.amount, r.created_at, \
             r.expires_at, r.status, r.settled_tx, r.settled_block, r.settled_at, r.expired_at, \
             d.request, d.policy_version, d.call_leaf_hash, a.decided_by, a.comment, \
             CAST(CASE WHEN {} THEN 1 ELSE 0 END AS BIGINT) \
             FROM spend_reservations r JOIN decisions d ON d.request_id = r.request_id \
             JOIN wallets w ON w.address = r.wallet \
             LEFT JOIN approvals a ON a.request_id = r.request_id AND a.status = 'approved'",
            misused_sql()
        ));
        query.equals("r.wallet", filter.wallet.map(|w| Value::Text(hex(w))));
        query.equals("w.agent", filter.agent.map(|a| Value::Text(hex(a))));
        query.equals("r.token", filter.token.map(|t| Value::Text(t.to_string())));
        if let Some(address) = filter.mentions {
            // Addresses appear checksummed in fields and lower-case in calldata.
            let needle = format!("%{}%", hex(address).trim_start_matches("0x"));
            let p = query.param(Value::Text(needle));
            query.and(&format!("LOWER(d.request) LIKE {p}"));
        }
        for (bound, op) in [(filter.min_amount, ">="), (filter.max_amount, "<=")] {
            if let Some(amount) = bound {
                let text = amount.to_string();
                let len = query.param(Value::Int(text.len() as i64));
                let text = query.param(Value::Text(text));
                query.and(&amount_bound("r.amount", op, &len, &text));
            }
        }
        if let Some(state) = filter.state {
            query.and(&match state {
                PaymentState::Reserved => "r.status = 'reserved'".to_owned(),
                PaymentState::Settled => format!("r.status = 'settled' AND NOT {}", misused_sql()),
                PaymentState::Released => "r.status = 'released' AND r.expired_at IS NULL".into(),
                PaymentState::Expired => {
                    "r.status = 'released' AND r.expired_at IS NOT NULL".into()
                }
                PaymentState::Misused => misused_sql(),
            });
        }
        query.within("r.created_at", filter.from, filter.to);
        let before = filter.before.map(|(at, id)| (at, Value::Int(id)));
        query.past("r.created_at", "r.id", "<", before);
        let rows = query
            .fetch_all(
                &self.reader,
                &format!(
                    " ORDER BY r.created_at DESC, r.id DESC LIMIT {}",
                    filter.limit
                ),
            )
            .await?;
        let mut rows: Vec<LedgerRow> = rows.iter().map(ledger_row).collect::<Result<_>>()?;
        // A quorum's approvers, one name each, from their votes.
        let ids: Vec<B256> = rows
            .iter()
            .filter(|r| !r.approvers.is_empty())
            .map(|r| r.request_id)
            .collect();
        let mut votes = std::collections::HashMap::new();
        for part in ids.chunks(IN_LIST_PART) {
            votes.extend(self.approving_votes(part).await?);
        }
        for r in &mut rows {
            if let Some(names) = votes.get(&r.request_id).filter(|n| !n.is_empty()) {
                r.approvers = names.clone();
            }
        }
        Ok(rows)
    }
}

/// A row of the ledger's columns; `approvers` holds the approval's `decided_by` (the votes
/// replace it: [`Store::payments`]).
fn ledger_row(row: &sqlx::any::AnyRow) -> Result<LedgerRow> {
    let time = |i: usize| -> Result<Option<u64>> {
        Ok(row.try_get::<Option<i64>, _>(i)?.map(|t| t.max(0) as u64))
    };
    let status: String = row.try_get(8)?;
    let expired_at = time(12)?;
    let misused = row.try_get::<i64, _>(18)? == 1;
    let state = match (status.as_str(), expired_at) {
        ("reserved", _) => PaymentState::Reserved,
        ("settled", _) if misused => PaymentState::Misused,
        ("settled", _) => PaymentState::Settled,
        ("released", None) => PaymentState::Released,
        ("released", Some(_)) => PaymentState::Expired,
        (other, _) => return Err(Error::Corrupt(format!("reservation status {other}"))),
    };
    let settlement = match time(10)? {
        // A misused payment keeps where the chain showed its nonce used.
        Some(block) if matches!(state, PaymentState::Settled | PaymentState::Misused) => {
            Some(Settlement {
                tx: row
                    .try_get::<Option<String>, _>(9)?
                    .map(|t| parse(&t, "settlement tx"))
                    .transpose()?,
                block,
                time: time(11)?,
            })
        }
        _ => None,
    };
    let version: i64 = row.try_get(14)?;
    Ok(LedgerRow {
        id: row.try_get(0)?,
        request_id: parse(&row.try_get::<String, _>(1)?, "request id")?,
        wallet: parse(&row.try_get::<String, _>(2)?, "wallet")?,
        agent: parse(&row.try_get::<String, _>(3)?, "agent")?,
        token: parse(&row.try_get::<String, _>(4)?, "token")?,
        amount: parse(&row.try_get::<String, _>(5)?, "amount")?,
        created_at: time(6)?.unwrap_or_default(),
        valid_until: time(7)?.unwrap_or_default(),
        state,
        settlement,
        expired_at: expired_at.filter(|_| state == PaymentState::Expired),
        request_json: row.try_get(13)?,
        policy_version: u32::try_from(version)
            .map_err(|_| Error::Corrupt("policy version".into()))?,
        call_leaf_hash: row
            .try_get::<Option<String>, _>(15)?
            .map(|l| parse(&l, "call leaf hash"))
            .transpose()?,
        approvers: approvers_or(None, &row.try_get(16)?),
        approval_comment: row.try_get(17)?,
    })
}

/// What the decisions list shows of a decision's payment besides the decision itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentDetail {
    /// The request as received (JSON `CosignBody`).
    pub request_json: String,
    /// The wallet's agent.
    pub agent: Address,
    /// Its reservations (approved decisions only): token, state, settlement.
    pub reservations: Vec<(Token, PaymentState, Option<Settlement>)>,
}

impl Store {
    /// The requests, agents and reservations of the decisions `ids` (two queries per
    /// [`IN_LIST_PART`] decisions).
    pub async fn payment_details(
        &self,
        ids: &[B256],
    ) -> Result<std::collections::HashMap<B256, PaymentDetail>> {
        let mut out = std::collections::HashMap::new();
        for part in ids.chunks(IN_LIST_PART) {
            let list = placeholders(part.len());
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT d.request_id, d.request, w.agent FROM decisions d \
                 JOIN wallets w ON w.address = d.wallet WHERE d.request_id IN ({list})"
            )));
            for id in part {
                query = query.bind(id.to_string());
            }
            for row in query.fetch_all(&self.reader).await? {
                out.insert(
                    parse(&row.try_get::<String, _>(0)?, "request id")?,
                    PaymentDetail {
                        request_json: row.try_get(1)?,
                        agent: parse(&row.try_get::<String, _>(2)?, "agent")?,
                        reservations: Vec::new(),
                    },
                );
            }
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT r.id, r.request_id, r.wallet, w.agent, r.token, r.amount, r.created_at, \
                 r.expires_at, r.status, r.settled_tx, r.settled_block, r.settled_at, \
                 r.expired_at, d.request, d.policy_version, d.call_leaf_hash, NULL, NULL, \
                 CAST(CASE WHEN {misused} THEN 1 ELSE 0 END AS BIGINT) \
                 FROM spend_reservations r JOIN decisions d ON d.request_id = r.request_id \
                 JOIN wallets w ON w.address = r.wallet WHERE r.request_id IN ({list}) \
                 ORDER BY r.id",
                misused = misused_sql()
            )));
            for id in part {
                query = query.bind(id.to_string());
            }
            for row in query.fetch_all(&self.reader).await? {
                let r = ledger_row(&row)?;
                if let Some(detail) = out.get_mut(&r.request_id) {
                    detail.reservations.push((r.token, r.state, r.settlement));
                }
            }
        }
        Ok(out)
    }
}

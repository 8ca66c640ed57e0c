//! Reconciliation: every on-chain outflow of a registered wallet is matched with the co-sign
//! decisions. An `Executed(nonce)` needs an approved decision of that wallet with that nonce;
//! an EIP-3009 `AuthorizationUsed(wallet, nonce)` an approved decision naming that token and
//! nonce; a Permit2 nonce of the wallet's that Permit2 shows used (it emits no event) an
//! approved x402 Permit2 decision with that nonce. What has none was signed without the service: the co-signer key is out (attacker B),
//! and the owner must freeze the wallet.

use chaperone_core::{Address, B256};
use sqlx::Row;

use crate::{
    ChainEvent, Error, Result, Store,
    store::{db_time, hex, parse},
};

/// An outflow no approved decision accounts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnauthorizedSpend {
    /// Its id (to acknowledge it).
    pub id: i64,
    /// The wallet it left.
    pub wallet: Address,
    /// `execute` (an `Executed` call), `eip3009` or `permit2` (an authorization the wallet
    /// signed).
    pub kind: String,
    /// The block it was mined in.
    pub block_number: u64,
    /// The event's index in that block.
    pub log_index: u64,
    /// The transaction (none for Permit2, which emits no event: `block_number` is the block
    /// the indexer first saw the nonce used at).
    pub tx_hash: Option<B256>,
    /// The wallet (`execute`), the token whose authorization was used (`eip3009`) or Permit2.
    pub contract: Address,
    /// The wallet nonce (decimal) or the authorization nonce (hex).
    pub nonce: String,
    /// When the indexer found it (Unix seconds).
    pub detected_at: u64,
    /// Who acknowledged it, and when.
    pub acknowledged: Option<(String, u64)>,
}

const COLUMNS: &str = "id, wallet, kind, block_number, log_index, tx_hash, contract, nonce, \
                       detected_at, acknowledged_by, acknowledged_at";

fn spend(row: &sqlx::any::AnyRow) -> Result<UnauthorizedSpend> {
    let number = |i: usize| -> Result<u64> {
        let n: i64 = row.try_get(i)?;
        u64::try_from(n).map_err(|_| Error::Corrupt(format!("negative number {n}")))
    };
    let by: Option<String> = row.try_get(9)?;
    let at: Option<i64> = row.try_get(10)?;
    Ok(UnauthorizedSpend {
        id: row.try_get(0)?,
        wallet: parse(&row.try_get::<String, _>(1)?, "wallet")?,
        kind: row.try_get(2)?,
        block_number: number(3)?,
        log_index: number(4)?,
        tx_hash: row
            .try_get::<Option<String>, _>(5)?
            .map(|h| parse(&h, "tx hash"))
            .transpose()?,
        contract: parse(&row.try_get::<String, _>(6)?, "contract")?,
        nonce: row.try_get(7)?,
        detected_at: number(8)?,
        acknowledged: by.zip(at.map(|t| u64::try_from(t).unwrap_or_default())),
    })
}

/// What an event spends, if it is an outflow: (wallet, kind, condition, values), the decision
/// that would authorize it. An `Executed` whose calls the indexer decoded (`digest`, the
/// EIP-712 digest of what ran) needs the decision of exactly those calls: the same nonce with
/// other calls (attacker B spending an approved, unexecuted nonce) is not authorized.
fn outflow(e: &ChainEvent) -> Option<(Address, &'static str, &'static str, Vec<String>)> {
    let nonce = e.fields.get("nonce")?.as_str()?.to_owned();
    match e.event.as_str() {
        "Executed" => Some(match e.fields.get("digest").and_then(|d| d.as_str()) {
            Some(digest) => (
                e.contract,
                "execute",
                "nonce = $2 AND request_id = $3",
                vec![nonce, digest.to_owned()],
            ),
            None => (e.contract, "execute", "nonce = $2", vec![nonce]),
        }),
        "AuthorizationUsed" => {
            let wallet = e.fields.get("authorizer")?.as_str()?.parse().ok()?;
            let key = crate::cosign::authorization_key(e.contract, nonce.parse().ok()?);
            Some((wallet, "eip3009", "authorization_key = $2", vec![key]))
        }
        _ => None,
    }
}

impl Store {
    /// Stores the outflows among `events` that no approved decision accounts for, in the
    /// indexer's transaction; returns those stored now (not those a re-run finds again).
    pub(crate) async fn reconcile_on(
        conn: &mut sqlx::AnyConnection,
        events: &[ChainEvent],
        now: u64,
    ) -> Result<Vec<UnauthorizedSpend>> {
        let mut found = Vec::new();
        for e in events {
            let Some((wallet, kind, condition, values)) = outflow(e) else {
                continue;
            };
            // Anyone can deploy a contract that emits `AuthorizationUsed(wallet, n)`: only a
            // token the wallet's owner gave an authorization budget can move the wallet's funds
            // through EIP-1271 (the wallet refuses every other), so only its events are
            // outflows. Otherwise an outsider could flood the alerts and push owners to freeze.
            if kind == "eip3009" {
                let budgeted = sqlx::query(
                    "SELECT 1 FROM chain_events WHERE event = 'AuthorizationBudgetSet' \
                     AND contract = $1 AND LOWER(fields) LIKE $2 LIMIT 1",
                )
                .bind(hex(wallet))
                .bind(format!("%\"token\":\"{}\"%", hex(e.contract)))
                .fetch_optional(&mut *conn)
                .await?;
                if budgeted.is_none() {
                    continue;
                }
            }
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT 1 FROM decisions WHERE wallet = $1 AND {condition} \
                 AND outcome = 'approved' LIMIT 1"
            )))
            .bind(hex(wallet));
            for value in values {
                query = query.bind(value);
            }
            let approved = query.fetch_optional(&mut *conn).await?;
            if approved.is_some() {
                continue;
            }
            let nonce = e.fields["nonce"].as_str().unwrap_or_default().to_owned();
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO unauthorized_spends (wallet, kind, block_number, log_index, \
                 tx_hash, contract, nonce, detected_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (wallet, kind, contract, nonce) DO NOTHING RETURNING {COLUMNS}"
            )))
            .bind(hex(wallet))
            .bind(kind)
            .bind(db_time(e.block_number))
            .bind(db_time(e.log_index))
            .bind(Some(e.tx_hash.to_string()))
            .bind(hex(e.contract))
            .bind(nonce)
            .bind(db_time(now))
            .fetch_optional(&mut *conn)
            .await?;
            if let Some(row) = row {
                found.push(spend(&row)?);
            }
        }
        Ok(found)
    }

    /// Stores the Permit2 nonces of `wallet` that Permit2 showed used at block `block` and no
    /// approved decision accounts for; returns those stored now.
    pub async fn reconcile_permit2(
        &self,
        wallet: Address,
        used: &[B256],
        block: u64,
        now: u64,
    ) -> Result<Vec<UnauthorizedSpend>> {
        let permit2 = chaperone_core::PERMIT2;
        let mut tx = self.begin_write().await?;
        let mut found = Vec::new();
        for nonce in used {
            let approved = sqlx::query(
                "SELECT 1 FROM decisions WHERE wallet = $1 AND authorization_key = $2 \
                 AND outcome = 'approved' LIMIT 1",
            )
            .bind(hex(wallet))
            .bind(crate::cosign::authorization_key(permit2, *nonce))
            .fetch_optional(&mut *tx)
            .await?;
            if approved.is_some() {
                continue;
            }
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO unauthorized_spends (wallet, kind, block_number, log_index, \
                 tx_hash, contract, nonce, detected_at) \
                 VALUES ($1, 'permit2', $2, 0, NULL, $3, $4, $5) \
                 ON CONFLICT (wallet, kind, contract, nonce) DO NOTHING RETURNING {COLUMNS}"
            )))
            .bind(hex(wallet))
            .bind(db_time(block))
            .bind(hex(permit2))
            .bind(nonce.to_string())
            .bind(db_time(now))
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = row {
                found.push(spend(&row)?);
            }
        }
        tx.commit().await?;
        Ok(found)
    }

    /// The Permit2 budgets the indexed `AuthorizationBudgetSet` events left in force, as
    /// (wallet, token, Permit2 slots), those with slots only: where a Permit2 nonce can pay.
    pub async fn permit2_budgets(&self) -> Result<Vec<(Address, Address, u16)>> {
        let rows = sqlx::query(
            "SELECT contract, fields FROM chain_events WHERE event = 'AuthorizationBudgetSet' \
             ORDER BY block_number, log_index",
        )
        .fetch_all(&self.reader)
        .await?;
        let mut latest = std::collections::BTreeMap::new();
        for row in rows {
            let wallet: Address = parse(&row.try_get::<String, _>(0)?, "wallet")?;
            let fields: serde_json::Value = serde_json::from_str(&row.try_get::<String, _>(1)?)
                .map_err(|e| Error::Corrupt(e.to_string()))?;
            let token = fields["token"].as_str().and_then(|t| t.parse().ok());
            let slots = fields["permit2_slots"]
                .as_u64()
                .and_then(|n| u16::try_from(n).ok());
            if let (Some(token), Some(slots)) = (token, slots) {
                latest.insert((wallet, token), slots);
            }
        }
        Ok(latest
            .into_iter()
            .filter(|(_, slots)| *slots > 0)
            .map(|((wallet, token), slots)| (wallet, token, slots))
            .collect())
    }

    /// The unauthorized spends, newest on chain first; only the unacknowledged ones when `open`.
    pub async fn unauthorized_spends(
        &self,
        open: bool,
        limit: u32,
    ) -> Result<Vec<UnauthorizedSpend>> {
        let filter = if open {
            "WHERE acknowledged_at IS NULL"
        } else {
            ""
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM unauthorized_spends {filter} \
             ORDER BY block_number DESC, log_index DESC LIMIT {limit}"
        )))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(spend).collect()
    }

    /// How many unauthorized spends nobody has acknowledged yet.
    pub async fn open_unauthorized_spends(&self) -> Result<u64> {
        let n: i64 =
            sqlx::query("SELECT COUNT(*) FROM unauthorized_spends WHERE acknowledged_at IS NULL")
                .fetch_one(&self.reader)
                .await?
                .try_get(0)?;
        Ok(u64::try_from(n).unwrap_or_default())
    }

    /// Records that `by` has seen unauthorized spend `id` (the first acknowledgement stands).
    /// `None` when there is no such spend.
    pub async fn acknowledge_unauthorized_spend(
        &self,
        id: i64,
        by: &str,
        now: u64,
    ) -> Result<Option<UnauthorizedSpend>> {
        sqlx::query(
            "UPDATE unauthorized_spends SET acknowledged_by = $1, acknowledged_at = $2 \
             WHERE id = $3 AND acknowledged_at IS NULL",
        )
        .bind(by.to_owned())
        .bind(db_time(now))
        .bind(id)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM unauthorized_spends WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(spend).transpose()
    }
}

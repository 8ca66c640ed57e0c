//! The unauthorized spends reconciliation stores: each once, by what was spent, with why no
//! approved decision accounts for it; listed for the API, the console and the gauge; and
//! acknowledged by an admin, an acknowledgement that outlives a reorganisation dropping the
//! spend (`spend_acknowledgements`), so the new branch mining the same transaction raises
//! nothing again.

use chaperone_core::{Address, B256};
use sqlx::Row;

use crate::{
    Error, Result, Store,
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
    /// Why it is unauthorized: `no_decision` (nothing approved it), `other_payment` (an approved
    /// nonce moved something else than what was approved) or `outside_validity` (used when
    /// the approval was not valid).
    pub reason: String,
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
                       detected_at, acknowledged_by, acknowledged_at, reason";

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
        reason: row.try_get(11)?,
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

/// Why an outflow is unauthorized (the `reason` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unauthorized {
    NoDecision,
    OtherPayment,
    OutsideValidity,
}

impl Unauthorized {
    fn code(self) -> &'static str {
        match self {
            Self::NoDecision => "no_decision",
            Self::OtherPayment => "other_payment",
            Self::OutsideValidity => "outside_validity",
        }
    }
}

/// An outflow about to be stored as unauthorized.
pub(crate) struct NewSpend<'a> {
    pub(crate) wallet: Address,
    pub(crate) kind: &'static str,
    pub(crate) reason: Unauthorized,
    pub(crate) block_number: u64,
    pub(crate) log_index: u64,
    pub(crate) tx_hash: Option<B256>,
    pub(crate) contract: Address,
    pub(crate) nonce: &'a str,
}

impl Store {
    /// Stores an unauthorized spend once (by what was spent), with the acknowledgement it had
    /// before a reorganisation dropped it, if any; returns it when it is new and open.
    pub(crate) async fn store_spend(
        conn: &mut sqlx::AnyConnection,
        s: &NewSpend<'_>,
        now: u64,
    ) -> Result<Option<UnauthorizedSpend>> {
        let tx_key = s.tx_hash.map(|t| t.to_string()).unwrap_or_default();
        let acknowledged = sqlx::query(
            "SELECT acknowledged_by, acknowledged_at FROM spend_acknowledgements \
             WHERE wallet = $1 AND kind = $2 AND contract = $3 AND nonce = $4 AND tx_hash = $5",
        )
        .bind(hex(s.wallet))
        .bind(s.kind)
        .bind(hex(s.contract))
        .bind(s.nonce.to_owned())
        .bind(tx_key)
        .fetch_optional(&mut *conn)
        .await?;
        let (by, at) = match &acknowledged {
            Some(row) => (
                row.try_get::<Option<String>, _>(0)?,
                row.try_get::<Option<i64>, _>(1)?,
            ),
            None => (None, None),
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO unauthorized_spends (wallet, kind, block_number, log_index, tx_hash, \
             contract, nonce, detected_at, reason, acknowledged_by, acknowledged_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (wallet, kind, contract, nonce) DO NOTHING RETURNING {COLUMNS}"
        )))
        .bind(hex(s.wallet))
        .bind(s.kind)
        .bind(db_time(s.block_number))
        .bind(db_time(s.log_index))
        .bind(s.tx_hash.map(|t| t.to_string()))
        .bind(hex(s.contract))
        .bind(s.nonce.to_owned())
        .bind(db_time(now))
        .bind(s.reason.code())
        .bind(by)
        .bind(at)
        .fetch_optional(&mut *conn)
        .await?;
        match row {
            Some(row) => {
                let spend = spend(&row)?;
                Ok(spend.acknowledged.is_none().then_some(spend))
            }
            None => Ok(None),
        }
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

    /// Records that `by` has seen unauthorized spend `id` (the first acknowledgement stands,
    /// and outlives a reorganisation that drops the spend: see `spend_acknowledgements`).
    /// `None` when there is no such spend.
    pub async fn acknowledge_unauthorized_spend(
        &self,
        id: i64,
        by: &str,
        now: u64,
    ) -> Result<Option<UnauthorizedSpend>> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE unauthorized_spends SET acknowledged_by = $1, acknowledged_at = $2 \
             WHERE id = $3 AND acknowledged_at IS NULL",
        )
        .bind(by.to_owned())
        .bind(db_time(now))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO spend_acknowledgements (wallet, kind, contract, nonce, tx_hash, \
             acknowledged_by, acknowledged_at) \
             SELECT wallet, kind, contract, nonce, COALESCE(tx_hash, ''), acknowledged_by, \
             acknowledged_at FROM unauthorized_spends WHERE id = $1 \
             AND acknowledged_at IS NOT NULL \
             ON CONFLICT (wallet, kind, contract, nonce, tx_hash) DO NOTHING",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM unauthorized_spends WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.as_ref().map(spend).transpose()
    }
}

//! Running totals of each wallet's spend per policy window, so that a decision costs the same
//! with a million reservations in its windows as with none.
//!
//! A row of `spend_window_totals` holds, for (wallet, token, window), the sum of the amounts of
//! every reservation that is not released and expires after `since`: what
//! [`PastSpend::counts_within`](chaperone_core::policy::PastSpend::counts_within) counts in the
//! window `(since, since + window]`. A decision moves `since` to `now - window` by reading only
//! the reservations that expire in between (each leaves a window once, so the cost is what aged
//! out since the previous decision, not the history). Every change of a reservation's status
//! adjusts the totals in the same transaction, under the wallet's lock, so they stay exact
//! under concurrency.

use std::collections::HashMap;

use chaperone_core::{
    U256,
    policy::{Policy, Token, WindowTotal},
};
use sqlx::Row;

use crate::{
    Error, Result, Store,
    store::{Backend, db_time, parse},
};

/// One running total.
#[derive(Debug, Clone)]
pub(crate) struct TotalRow {
    token: String,
    window: i64,
    since: i64,
    total: U256,
    /// What the row holds in the database (`None`: not there yet).
    stored: Option<(i64, U256)>,
}

/// The running totals of one wallet, read and written under its lock.
#[derive(Debug)]
pub(crate) struct WalletTotals {
    wallet: String,
    rows: Vec<TotalRow>,
}

/// A reservation whose status is to change.
#[derive(Debug, Clone)]
struct Reservation {
    id: i64,
    wallet: String,
    token: String,
    amount: U256,
    expires_at: i64,
    status: String,
}

impl WalletTotals {
    /// Reads the totals of each wallet and brings those of its policy's windows to windows
    /// ending at `now`, in three statements whatever the number of wallets: the rows, the
    /// reservations that aged out of (or, with a clock behind, back into) each window since
    /// it was last brought forward, and nothing more. The caller holds the wallets' locks.
    pub(crate) async fn current_many(
        conn: &mut sqlx::AnyConnection,
        wallets: &[(&str, &Policy)],
        now: u64,
    ) -> Result<Vec<Self>> {
        let names: Vec<&str> = wallets.iter().map(|(w, _)| *w).collect();
        let mut stored = Self::read(conn, &names, None).await?;
        let mut all = Vec::with_capacity(wallets.len());
        // Per total whose window moved: the expiry range (after, up_to] to sum, and whether the
        // sum leaves the total (time moved forward) or comes back (a clock behind).
        let mut ranges: Vec<(usize, usize, i64, i64, bool)> = Vec::new();
        for (i, (wallet, policy)) in wallets.iter().enumerate() {
            let mut totals = Self {
                wallet: (*wallet).to_owned(),
                rows: stored.remove(*wallet).unwrap_or_default(),
            };
            for limit in &policy.limits {
                let token = limit.token.to_string();
                for w in &limit.windows {
                    let window = db_time(w.window.0);
                    let since = db_time(now.saturating_sub(w.window.0));
                    let at = totals
                        .rows
                        .iter()
                        .position(|r| r.token == token && r.window == window);
                    let Some(at) = at else {
                        // A window without a total yet is summed once, in full.
                        ranges.push((i, totals.rows.len(), since, i64::MAX, true));
                        totals.rows.push(TotalRow {
                            token: token.clone(),
                            window,
                            since,
                            total: U256::ZERO,
                            stored: None,
                        });
                        continue;
                    };
                    let row = &mut totals.rows[at];
                    // Time moves forward, but another replica's clock may be a little behind.
                    if since > row.since {
                        ranges.push((i, at, row.since, since, false));
                    } else if since < row.since {
                        ranges.push((i, at, since, row.since, true));
                    }
                    row.since = since;
                }
            }
            all.push(totals);
        }
        if ranges.is_empty() {
            return Ok(all);
        }
        let terms: Vec<(&str, &str, i64, i64)> = ranges
            .iter()
            .map(|&(i, at, after, up_to, _)| {
                (
                    all[i].wallet.as_str(),
                    all[i].rows[at].token.as_str(),
                    after,
                    up_to,
                )
            })
            .collect();
        let expiring = expiring_within(conn, &terms).await?;
        for &(i, at, after, up_to, add) in &ranges {
            let totals = &mut all[i];
            let token = totals.rows[at].token.clone();
            let sum = expiring
                .iter()
                .filter(|r| r.wallet == totals.wallet && r.token == token)
                .filter(|r| r.expires_at > after && r.expires_at <= up_to)
                .fold(U256::ZERO, |acc, r| acc.saturating_add(r.amount));
            let row = &mut totals.rows[at];
            row.total = counted(row.total, sum, add, &totals.wallet, &token)?;
        }
        Ok(all)
    }

    /// The stored totals of `wallets` (of one token, if given), by wallet.
    async fn read(
        conn: &mut sqlx::AnyConnection,
        wallets: &[&str],
        token: Option<&str>,
    ) -> Result<HashMap<String, Vec<TotalRow>>> {
        if wallets.is_empty() {
            return Ok(HashMap::new());
        }
        let mut sql = format!(
            "SELECT wallet, token, window_seconds, since, total FROM spend_window_totals \
             WHERE wallet IN ({})",
            placeholders(1, wallets.len())
        );
        if token.is_some() {
            sql.push_str(&format!(" AND token = ${}", wallets.len() + 1));
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for wallet in wallets {
            query = query.bind(*wallet);
        }
        if let Some(token) = token {
            query = query.bind(token);
        }
        let mut by_wallet: HashMap<String, Vec<TotalRow>> = HashMap::new();
        for row in query.fetch_all(&mut *conn).await? {
            let since: i64 = row.try_get(3)?;
            let total = parse(&row.try_get::<String, _>(4)?, "running total")?;
            by_wallet
                .entry(row.try_get(0)?)
                .or_default()
                .push(TotalRow {
                    token: row.try_get(1)?,
                    window: row.try_get(2)?,
                    since,
                    total,
                    stored: Some((since, total)),
                });
        }
        Ok(by_wallet)
    }

    /// The totals of one wallet (of one token, if given), as stored.
    async fn read_one(
        conn: &mut sqlx::AnyConnection,
        wallet: &str,
        token: Option<&str>,
    ) -> Result<Self> {
        let rows = Self::read(conn, &[wallet], token).await?.remove(wallet);
        Ok(Self {
            wallet: wallet.to_owned(),
            rows: rows.unwrap_or_default(),
        })
    }

    /// The totals as the engine reads them.
    pub(crate) fn for_engine(&self) -> Result<Vec<WindowTotal>> {
        self.rows
            .iter()
            .map(|r| {
                Ok(WindowTotal {
                    token: parse::<Token>(&r.token, "token")?,
                    window: r.window as u64,
                    spent: r.total,
                })
            })
            .collect()
    }

    /// Counts (`add`) or stops counting an amount of `token` that expires at `expires_at`, in
    /// every window that counts it.
    fn adjust(&mut self, token: &str, expires_at: i64, amount: U256, add: bool) -> Result<()> {
        for row in self.rows.iter_mut().filter(|r| r.token == token) {
            if expires_at <= row.since {
                continue;
            }
            row.total = counted(row.total, amount, add, &self.wallet, token)?;
        }
        Ok(())
    }

    /// Counts a new reservation.
    pub(crate) fn reserve(&mut self, token: Token, expires_at: u64, amount: U256) -> Result<()> {
        self.adjust(&token.to_string(), db_time(expires_at), amount, true)
    }

    /// Writes the rows that changed.
    pub(crate) async fn write(&self, conn: &mut sqlx::AnyConnection) -> Result<()> {
        write_all(conn, std::slice::from_ref(self)).await
    }
}

/// `total` with `amount` counted (`add`) or no longer counted; below zero is corruption.
fn counted(total: U256, amount: U256, add: bool, wallet: &str, token: &str) -> Result<U256> {
    if add {
        return Ok(total.saturating_add(amount));
    }
    total
        .checked_sub(amount)
        .ok_or_else(|| Error::Corrupt(format!("running total of {wallet} {token} below zero")))
}

/// Writes the changed rows of every wallet's totals in one statement.
pub(crate) async fn write_all(conn: &mut sqlx::AnyConnection, all: &[WalletTotals]) -> Result<()> {
    let changed: Vec<(&str, &TotalRow)> = all
        .iter()
        .flat_map(|t| t.rows.iter().map(|r| (t.wallet.as_str(), r)))
        .filter(|(_, r)| r.stored != Some((r.since, r.total)))
        .collect();
    for chunk in changed.chunks(ROWS_PER_STATEMENT) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| format!("({})", placeholders(i * 5 + 1, 5)))
            .collect();
        let sql = format!(
            "INSERT INTO spend_window_totals (wallet, token, window_seconds, since, total) \
             VALUES {} ON CONFLICT (wallet, token, window_seconds) \
             DO UPDATE SET since = excluded.since, total = excluded.total",
            values.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (wallet, row) in chunk {
            query = query
                .bind(*wallet)
                .bind(row.token.as_str())
                .bind(row.window)
                .bind(row.since)
                .bind(row.total.to_string());
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Rows per multi-row statement: far below SQLite's and PostgreSQL's bind-parameter limits.
pub(crate) const ROWS_PER_STATEMENT: usize = 64;

/// `$start, $start+1, …` for `count` bind parameters.
pub(crate) fn placeholders(start: usize, count: usize) -> String {
    (start..start + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the ledger records of a reservation's move: the settlement the chain showed, or the
/// time of the confirmed block that showed it expired unused (neither: a plain move, which
/// clears both).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Ending {
    pub(crate) settlement: Option<crate::Settlement>,
    pub(crate) expired_at: Option<u64>,
}

/// A reservation that counts (not released), as the totals sum it.
struct Expiring {
    wallet: String,
    token: String,
    expires_at: i64,
    amount: U256,
}

/// The reservations that are not released and, for some (wallet, token, after, up_to) of
/// `terms`, belong to that wallet and token and expire in `(after, up_to]`: one statement
/// (per [`ROWS_PER_STATEMENT`] terms).
async fn expiring_within(
    conn: &mut sqlx::AnyConnection,
    terms: &[(&str, &str, i64, i64)],
) -> Result<Vec<Expiring>> {
    let mut found = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for chunk in terms.chunks(ROWS_PER_STATEMENT) {
        // One index range scan per term: joined with OR, PostgreSQL factors out the wallet
        // and token and filters every reservation of the wallet by expiry.
        let sql = (0..chunk.len())
            .map(|i| {
                let p = i * 4 + 1;
                format!(
                    "SELECT id, wallet, token, expires_at, amount FROM spend_reservations \
                     WHERE wallet = ${p} AND token = ${} AND expires_at > ${} \
                     AND expires_at <= ${} AND status <> 'released'",
                    p + 1,
                    p + 2,
                    p + 3
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (wallet, token, after, up_to) in chunk {
            query = query.bind(*wallet).bind(*token).bind(*after).bind(*up_to);
        }
        for row in query.fetch_all(&mut *conn).await? {
            // The terms of two windows of one wallet can overlap: each row counts once.
            let id: i64 = row.try_get(0)?;
            if seen.insert(id) {
                found.push(Expiring {
                    wallet: row.try_get(1)?,
                    token: row.try_get(2)?,
                    expires_at: row.try_get(3)?,
                    amount: parse(&row.try_get::<String, _>(4)?, "amount")?,
                });
            }
        }
    }
    Ok(found)
}

impl Store {
    /// Moves the reservations that `select` finds to `status` ("settled", "released", or
    /// "reserved" for a settlement a reorganisation dropped) and keeps the running totals
    /// exact: a release stops counting the amount, a settlement of a released reservation
    /// counts it again (settled and reserved both count). `select` is a query returning
    /// `id, wallet, token, amount, expires_at, status` of the candidates; each moves only if
    /// its status is still the one read, once the wallets' locks are held (taken in address
    /// order, so two movers never deadlock).
    ///
    /// `ending` is what the ledger shows of the move (the settlement seen, or when an expiry
    /// was seen), written in the same statement, under the same locks.
    pub(crate) async fn move_reservations(
        &self,
        conn: &mut sqlx::AnyConnection,
        select: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
        status: &'static str,
        ending: Ending,
    ) -> Result<u64> {
        let mut candidates = select
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|row| {
                Ok(Reservation {
                    id: row.try_get(0)?,
                    wallet: row.try_get(1)?,
                    token: row.try_get(2)?,
                    amount: parse(&row.try_get::<String, _>(3)?, "amount")?,
                    expires_at: row.try_get(4)?,
                    status: row.try_get(5)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        candidates.retain(|r| r.status != status);
        candidates.sort_by(|a, b| (&a.wallet, &a.token).cmp(&(&b.wallet, &b.token)));
        let mut moved = 0;
        for group in candidates.chunk_by(|a, b| (&a.wallet, &a.token) == (&b.wallet, &b.token)) {
            let (wallet, token) = (&group[0].wallet, &group[0].token);
            if self.backend == Backend::Postgres {
                sqlx::query("SELECT address FROM wallets WHERE address = $1 FOR UPDATE")
                    .bind(wallet)
                    .execute(&mut *conn)
                    .await?;
            }
            let mut totals = WalletTotals::read_one(conn, wallet, Some(token)).await?;
            for r in group {
                let settled = ending.settlement;
                let done = sqlx::query(
                    "UPDATE spend_reservations SET status = $1, expired_at = $4, \
                     settled_tx = $5, settled_block = $6, settled_at = $7 \
                     WHERE id = $2 AND status = $3",
                )
                .bind(status)
                .bind(r.id)
                .bind(&r.status)
                .bind(ending.expired_at.map(db_time))
                .bind(settled.and_then(|s| s.tx).map(|t| t.to_string()))
                .bind(settled.map(|s| db_time(s.block)))
                .bind(settled.and_then(|s| s.time).map(db_time))
                .execute(&mut *conn)
                .await?;
                if done.rows_affected() == 0 {
                    continue;
                }
                moved += 1;
                match (r.status.as_str(), status) {
                    ("reserved", "released") => {
                        totals.adjust(token, r.expires_at, r.amount, false)?
                    }
                    ("released", _) => totals.adjust(token, r.expires_at, r.amount, true)?,
                    _ => {}
                }
            }
            totals.write(conn).await?;
        }
        Ok(moved)
    }
}

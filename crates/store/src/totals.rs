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
    /// Reads the wallet's totals and brings those of `policy`'s windows to windows ending at
    /// `now`. The caller holds the wallet's lock.
    pub(crate) async fn current(
        conn: &mut sqlx::AnyConnection,
        wallet: &str,
        policy: &Policy,
        now: u64,
    ) -> Result<Self> {
        let mut totals = Self::read(conn, wallet, None).await?;
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
                    let total = sum_expiring(conn, wallet, &token, since, None).await?;
                    totals.rows.push(TotalRow {
                        token: token.clone(),
                        window,
                        since,
                        total,
                        stored: None,
                    });
                    continue;
                };
                let row = &mut totals.rows[at];
                // Time moves forward, but another replica's clock may be a little behind.
                if since > row.since {
                    let aged_out =
                        sum_expiring(conn, wallet, &token, row.since, Some(since)).await?;
                    row.total = row.total.checked_sub(aged_out).ok_or_else(|| {
                        Error::Corrupt(format!("running total of {wallet} {token} below zero"))
                    })?;
                } else if since < row.since {
                    let back_in =
                        sum_expiring(conn, wallet, &token, since, Some(row.since)).await?;
                    row.total = row.total.saturating_add(back_in);
                }
                row.since = since;
            }
        }
        Ok(totals)
    }

    async fn read(
        conn: &mut sqlx::AnyConnection,
        wallet: &str,
        token: Option<&str>,
    ) -> Result<Self> {
        const COLUMNS: &str = "SELECT token, window_seconds, since, total FROM spend_window_totals";
        let rows = match token {
            None => sqlx::query(sqlx::AssertSqlSafe(format!("{COLUMNS} WHERE wallet = $1")))
                .bind(wallet),
            Some(token) => sqlx::query(sqlx::AssertSqlSafe(format!(
                "{COLUMNS} WHERE wallet = $1 AND token = $2"
            )))
            .bind(wallet)
            .bind(token),
        }
        .fetch_all(&mut *conn)
        .await?;
        let rows = rows
            .into_iter()
            .map(|row| {
                let since: i64 = row.try_get(2)?;
                let total = parse(&row.try_get::<String, _>(3)?, "running total")?;
                Ok(TotalRow {
                    token: row.try_get(0)?,
                    window: row.try_get(1)?,
                    since,
                    total,
                    stored: Some((since, total)),
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            wallet: wallet.to_owned(),
            rows,
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
            row.total = if add {
                row.total.saturating_add(amount)
            } else {
                row.total.checked_sub(amount).ok_or_else(|| {
                    Error::Corrupt(format!(
                        "running total of {} {token} below zero",
                        self.wallet
                    ))
                })?
            };
        }
        Ok(())
    }

    /// Counts a new reservation.
    pub(crate) fn reserve(&mut self, token: Token, expires_at: u64, amount: U256) -> Result<()> {
        self.adjust(&token.to_string(), db_time(expires_at), amount, true)
    }

    /// Writes the rows that changed.
    pub(crate) async fn write(&self, conn: &mut sqlx::AnyConnection) -> Result<()> {
        for row in &self.rows {
            let query = match row.stored {
                Some(stored) if stored == (row.since, row.total) => continue,
                Some(_) => {
                    "UPDATE spend_window_totals SET since = $4, total = $5 \
                     WHERE wallet = $1 AND token = $2 AND window_seconds = $3"
                }
                None => {
                    "INSERT INTO spend_window_totals (wallet, token, window_seconds, since, total) \
                     VALUES ($1, $2, $3, $4, $5)"
                }
            };
            sqlx::query(query)
                .bind(&self.wallet)
                .bind(&row.token)
                .bind(row.window)
                .bind(row.since)
                .bind(row.total.to_string())
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

/// Sum of the reservations of (wallet, token) that are not released and expire in
/// `(after, up_to]` (`up_to` `None`: any time after).
async fn sum_expiring(
    conn: &mut sqlx::AnyConnection,
    wallet: &str,
    token: &str,
    after: i64,
    up_to: Option<i64>,
) -> Result<U256> {
    let rows = sqlx::query(
        "SELECT amount FROM spend_reservations WHERE wallet = $1 AND token = $2 \
         AND expires_at > $3 AND expires_at <= $4 AND status <> 'released'",
    )
    .bind(wallet)
    .bind(token)
    .bind(after)
    .bind(up_to.unwrap_or(i64::MAX))
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter().try_fold(U256::ZERO, |acc, row| {
        let amount: U256 = parse(&row.try_get::<String, _>(0)?, "amount")?;
        Ok(acc.saturating_add(amount))
    })
}

impl Store {
    /// Moves the reservations that `select` finds to `status` ("settled" or "released") and
    /// keeps the running totals exact: a release stops counting the amount, a settlement of a
    /// released reservation counts it again. `select` is a query returning
    /// `id, wallet, token, amount, expires_at, status` of the candidates; each moves only if
    /// its status is still the one read, once the wallets' locks are held (taken in address
    /// order, so two movers never deadlock).
    pub(crate) async fn move_reservations(
        &self,
        conn: &mut sqlx::AnyConnection,
        select: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
        status: &'static str,
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
            let mut totals = WalletTotals::read(conn, wallet, Some(token)).await?;
            for r in group {
                let done = sqlx::query(
                    "UPDATE spend_reservations SET status = $1 WHERE id = $2 AND status = $3",
                )
                .bind(status)
                .bind(r.id)
                .bind(&r.status)
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

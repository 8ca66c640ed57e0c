//! Who may use the operator API and the console: bearer tokens (stored as SHA-256 hashes,
//! revocable) and the console's sessions (a random id per login, stored hashed, expiring).

use chaperone_core::B256;
use sqlx::Row;

use crate::{Actor, Error, NewAdminAction, Result, Store, audit::to_u64, store::db_time};

/// An API token as listed (never the token itself: only its hash is stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenInfo {
    /// Who holds it.
    pub name: String,
    /// `admin`, `approver` or `auditor`.
    pub role: String,
    /// When it was made (Unix seconds).
    pub created_at: u64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<u64>,
    /// The admin who issued it (none: the service's configuration).
    pub created_by: Option<String>,
}

impl Store {
    /// Stores a token the service's configuration names (the token itself is never stored):
    /// it replaces any other live token of that name, since one name has one live token. The
    /// same token again changes nothing (a restart), and a revoked one stays revoked.
    pub async fn add_api_token(
        &self,
        token_hash: B256,
        name: &str,
        role: &str,
        now: u64,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let known: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM api_tokens WHERE token_hash = $1")
                .bind(token_hash.to_string())
                .fetch_optional(&mut *tx)
                .await?;
        if known.is_none() {
            if let Some(previous) = Self::live_name(&mut tx, name).await? {
                Self::revoke_on(&mut tx, &previous, now).await?;
                let action = NewAdminAction {
                    action: "token.revoke",
                    subject: &previous,
                    detail: serde_json::json!({
                        "name": previous,
                        "reason": "the configuration names a new token of this name",
                    }),
                };
                let by = Actor::new("configuration", "configuration");
                Self::record_action_on(&mut tx, &by, &action, now).await?;
            }
            sqlx::query(
                "INSERT INTO api_tokens (token_hash, name, role, created_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(token_hash.to_string())
            .bind(name)
            .bind(role)
            .bind(db_time(now))
            .execute(&mut *tx)
            .await
            .map_err(|e| name_taken(e, name))?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The exact name of the live token whose name is `name` without regard to case.
    async fn live_name(conn: &mut sqlx::AnyConnection, name: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT name FROM api_tokens WHERE lower(name) = lower($1) AND revoked_at IS NULL",
        )
        .bind(name)
        .fetch_optional(conn)
        .await?)
    }

    /// The role and name of the unrevoked API token with this hash.
    pub async fn api_token(&self, token_hash: B256) -> Result<Option<(String, String)>> {
        let row = sqlx::query(
            "SELECT role, name FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(token_hash.to_string())
        .fetch_optional(&self.reader)
        .await?;
        row.map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .transpose()
    }

    /// Whether an unrevoked token has this name (without regard to case).
    pub async fn api_token_named(&self, name: &str) -> Result<bool> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM api_tokens WHERE lower(name) = lower($1) AND revoked_at IS NULL LIMIT 1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    /// Every API token, oldest first.
    pub async fn api_tokens(&self) -> Result<Vec<ApiTokenInfo>> {
        let rows = sqlx::query(
            "SELECT name, role, created_at, revoked_at, created_by FROM api_tokens \
             ORDER BY created_at, name",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ApiTokenInfo {
                    name: row.try_get(0)?,
                    role: row.try_get(1)?,
                    created_at: to_u64(row.try_get(2)?, "created at")?,
                    revoked_at: row
                        .try_get::<Option<i64>, _>(3)?
                        .map(|t| to_u64(t, "revoked at"))
                        .transpose()?,
                    created_by: row.try_get(4)?,
                })
            })
            .collect()
    }

    /// Stores a token issued by an admin (`by`), and records the issue as an administrative
    /// action, in one transaction. Fails with [`Error::RevokedToken`] if `by` is no longer live,
    /// with [`Error::NameTaken`] if a live token has this name in any case (the database's
    /// unique index settles a race between two issues), and with [`Error::NameConfigured`] if a
    /// token of the configuration has or had it (its votes would read as the configuration's).
    pub async fn issue_api_token(
        &self,
        token_hash: B256,
        name: &str,
        role: &str,
        by: &Actor,
        now: u64,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        Self::require_live(&mut tx, &by.name).await?;
        if Self::live_name(&mut tx, name).await?.is_some() {
            return Err(Error::NameTaken(name.to_owned()));
        }
        let configured: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM api_tokens WHERE lower(name) = lower($1) AND created_by IS NULL \
             LIMIT 1",
        )
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        if configured.is_some() {
            return Err(Error::NameConfigured(name.to_owned()));
        }
        sqlx::query(
            "INSERT INTO api_tokens (token_hash, name, role, created_at, created_by) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash.to_string())
        .bind(name)
        .bind(role)
        .bind(db_time(now))
        .bind(&by.name)
        .execute(&mut *tx)
        .await
        .map_err(|e| name_taken(e, name))?;
        let action = NewAdminAction {
            action: "token.create",
            subject: name,
            detail: serde_json::json!({ "name": name, "role": role }),
        };
        Self::record_action_on(&mut tx, by, &action, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Revokes the live token named `name` (without regard to case) as
    /// [`Store::revoke_api_tokens`] does, recording who did it as an administrative action in
    /// the same transaction (when it revoked any).
    pub async fn revoke_api_tokens_by(&self, name: &str, by: &Actor, now: u64) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        Self::require_live(&mut tx, &by.name).await?;
        let Some(name) = Self::live_name(&mut tx, name).await? else {
            return Ok(0);
        };
        let revoked = Self::revoke_on(&mut tx, &name, now).await?;
        if revoked > 0 {
            let action = NewAdminAction {
                action: "token.revoke",
                subject: &name,
                detail: serde_json::json!({ "name": name, "revoked": revoked }),
            };
            Self::record_action_on(&mut tx, by, &action, now).await?;
        }
        tx.commit().await?;
        Ok(revoked)
    }

    /// Fails unless a live token is named `name` (checked inside the caller's transaction, so a
    /// token revoked a moment ago acts no more); returns its serial, the order it was issued in.
    pub(crate) async fn require_live(conn: &mut sqlx::AnyConnection, name: &str) -> Result<i64> {
        Ok(Self::live_token(conn, name).await?.0)
    }

    /// As [`Store::require_live`], with the admin who issued the token (none: the
    /// configuration).
    pub(crate) async fn live_token(
        conn: &mut sqlx::AnyConnection,
        name: &str,
    ) -> Result<(i64, Option<String>)> {
        let live = sqlx::query(
            "SELECT serial, created_by FROM api_tokens WHERE name = $1 AND revoked_at IS NULL \
             LIMIT 1",
        )
        .bind(name)
        .fetch_optional(conn)
        .await?;
        match live {
            Some(row) => Ok((row.try_get(0)?, row.try_get(1)?)),
            None => Err(Error::RevokedToken(name.to_owned())),
        }
    }

    /// Revokes every unrevoked token named `name` and ends their console sessions, in one
    /// transaction. Returns how many tokens it revoked.
    pub async fn revoke_api_tokens(&self, name: &str, now: u64) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let revoked = Self::revoke_on(&mut tx, name, now).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    async fn revoke_on(conn: &mut sqlx::AnyConnection, name: &str, now: u64) -> Result<u64> {
        sqlx::query(
            "DELETE FROM console_sessions WHERE token_hash IN \
             (SELECT token_hash FROM api_tokens WHERE name = $1 AND revoked_at IS NULL)",
        )
        .bind(name)
        .execute(&mut *conn)
        .await?;
        // A revoked token's votes on approvals still pending stop counting: a stolen approver
        // token, once revoked, must not help a quorum (and the name's new holder may vote).
        sqlx::query(
            "DELETE FROM approval_votes WHERE approver = $1 AND request_id IN \
             (SELECT request_id FROM approvals WHERE status = 'pending')",
        )
        .bind(name)
        .execute(&mut *conn)
        .await?;
        Ok(sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL",
        )
        .bind(db_time(now))
        .bind(name)
        .execute(&mut *conn)
        .await?
        .rows_affected())
    }

    /// Opens a console session for the token with `token_hash` until `expires_at`; only the
    /// session id's hash is stored. Expired sessions are cleared on the way.
    pub async fn create_session(
        &self,
        id_hash: B256,
        token_hash: B256,
        now: u64,
        expires_at: u64,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1")
            .bind(db_time(now))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO console_sessions (id_hash, token_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(id_hash.to_string())
        .bind(token_hash.to_string())
        .bind(db_time(now))
        .bind(db_time(expires_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The role and name behind a live session: not expired, not logged out, its token not
    /// revoked.
    pub async fn session(&self, id_hash: B256, now: u64) -> Result<Option<(String, String)>> {
        let row = sqlx::query(
            "SELECT t.role, t.name FROM console_sessions s \
             JOIN api_tokens t ON t.token_hash = s.token_hash \
             WHERE s.id_hash = $1 AND s.expires_at > $2 AND t.revoked_at IS NULL",
        )
        .bind(id_hash.to_string())
        .bind(db_time(now))
        .fetch_optional(&self.reader)
        .await?;
        row.map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .transpose()
    }

    /// Ends a session (logout).
    pub async fn delete_session(&self, id_hash: B256) -> Result<()> {
        sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1")
            .bind(id_hash.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// A unique violation of `api_tokens_live_name` (another live token of this name was stored
/// meanwhile) as [`Error::NameTaken`]; any other error as it is.
fn name_taken(e: sqlx::Error, name: &str) -> Error {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => Error::NameTaken(name.to_owned()),
        _ => e.into(),
    }
}

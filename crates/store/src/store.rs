use std::str::FromStr;

use chaperone_core::{
    Address, B256, U256,
    policy::{Decision, Outcome, PastSpend, Policy, Reason, SpendHistory, Token},
};
use sqlx::{
    AnyPool, Executor, Row,
    any::{AnyPoolOptions, install_default_drivers},
};

use crate::{Error, Result};

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, a file (the embedded default).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A registered wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletRecord {
    /// The wallet's address.
    pub address: Address,
    /// The chain it lives on.
    pub chain_id: u64,
    /// Its agent key.
    pub agent: Address,
}

/// What the decide callback returns: the engine's decision and, if the service signs, the
/// co-signature (hex), so that the decision, reservation and signature commit together.
#[derive(Debug, Clone)]
pub struct Decided {
    /// The engine's decision.
    pub decision: Decision,
    /// The co-signature, when the decision is to sign.
    pub signature: Option<String>,
}

/// Where a human approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ApprovalState {
    Pending,
    Approved,
    Denied,
    Expired,
}

/// A request as the store records it, besides what the engine decides.
#[derive(Debug, Clone, Copy)]
pub struct RequestRecord<'a> {
    /// The wallet.
    pub wallet: Address,
    /// The request's id: its EIP-712 digest.
    pub request_id: B256,
    /// The `Execute` nonce, for matching on-chain executions (none for typed data).
    pub nonce: Option<U256>,
    /// The request as received (JSON), for the audit trail.
    pub json: &'a str,
    /// Current Unix time, in seconds.
    pub now: u64,
    /// When the co-signature stops being usable.
    pub valid_until: u64,
}

/// A decision as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDecision {
    /// The request's id (its EIP-712 digest).
    pub request_id: B256,
    /// The verdict.
    pub outcome: Outcome,
    /// Every reason.
    pub reasons: Vec<Reason>,
    /// The policy version that decided.
    pub policy_version: u32,
    /// The policy's hash.
    pub policy_hash: B256,
    /// The co-signature, if one was given.
    pub signature: Option<String>,
    /// True when this request had been decided before and this is the recorded answer.
    pub replayed: bool,
}

/// The policy service's database.
#[derive(Debug, Clone)]
pub struct Store {
    /// Writes (and, on PostgreSQL, everything).
    pub(crate) pool: AnyPool,
    /// Reads outside transactions. On SQLite a separate pool: in WAL mode readers do not wait
    /// for the single writer, so proofs, queries and the anchoring worker never queue behind
    /// ingestion. (An in-memory SQLite database would be two databases here: use a file.)
    pub(crate) reader: AnyPool,
    pub(crate) backend: Backend,
}

pub(crate) fn hex(b: impl AsRef<[u8]>) -> String {
    chaperone_core::Bytes::copy_from_slice(b.as_ref()).to_string()
}

pub(crate) fn parse<T: FromStr>(text: &str, what: &str) -> Result<T> {
    text.parse()
        .map_err(|_| Error::Corrupt(format!("{what}: {text}")))
}

pub(crate) fn outcome_text(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Approved => "approved",
        Outcome::PendingApproval => "pending_approval",
        Outcome::Denied => "denied",
    }
}

pub(crate) fn outcome_from(text: &str) -> Result<Outcome> {
    Ok(match text {
        "approved" => Outcome::Approved,
        "pending_approval" => Outcome::PendingApproval,
        "denied" => Outcome::Denied,
        other => return Err(Error::Corrupt(format!("outcome: {other}"))),
    })
}

/// Times are Unix seconds; they fit i64 until the year 292 billion.
pub(crate) fn db_time(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

impl Store {
    /// Creates the empty PostgreSQL database `name` on the server `server_url` points to and
    /// returns its URL (for tests and load generators that want a database of their own).
    pub async fn create_database(server_url: &str, name: &str) -> Result<String> {
        let (base, _) = server_url
            .rsplit_once('/')
            .ok_or_else(|| Error::UnsupportedUrl(server_url.to_owned()))?;
        Self::administer(server_url, &format!("CREATE DATABASE {name}"), name).await?;
        Ok(format!("{base}/{name}"))
    }

    /// Drops a database made by [`Store::create_database`], closing its connections.
    pub async fn drop_database(server_url: &str, name: &str) -> Result<()> {
        Self::administer(
            server_url,
            &format!("DROP DATABASE {name} WITH (FORCE)"),
            name,
        )
        .await
    }

    /// Runs one statement about the database `name` (a plain identifier, checked here, as it
    /// cannot be a bind parameter) on the server `server_url` points to.
    async fn administer(server_url: &str, statement: &str, name: &str) -> Result<()> {
        use sqlx::Connection;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(Error::UnsupportedUrl(format!("database name `{name}`")));
        }
        install_default_drivers();
        let mut admin = sqlx::AnyConnection::connect(server_url).await?;
        admin
            .execute(sqlx::AssertSqlSafe(statement.to_owned()))
            .await?;
        Ok(())
    }

    /// Connects to `sqlite:PATH` (created if missing) or `postgres://…`, and migrates.
    pub async fn connect(url: &str) -> Result<Self> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(Error::UnsupportedUrl(url.to_owned()));
        };
        let pool = match backend {
            // One writer at a time is SQLite's model, and every decision writes. With a single
            // connection, deciders queue in the pool (in order) instead of in SQLite's busy
            // handler, which sleeps in steps of up to 100 ms and made the p99 latency ~180 ms
            // under load. The busy timeout only matters for other processes on the same file.
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(1)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // A 64 MiB page cache: the default 2 MiB re-read the log's index
                            // pages from the file on every batch.
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 60000; \
                                 PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; \
                                 PRAGMA cache_size = -65536;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await?
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(16)
                    .connect(url)
                    .await?
            }
        };
        match backend {
            Backend::Sqlite => sqlx::migrate!("../../migrations/sqlite").run(&pool).await?,
            Backend::Postgres => {
                sqlx::migrate!("../../migrations/postgres")
                    .run(&pool)
                    .await?
            }
        }
        let reader = match backend {
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(4)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute("PRAGMA busy_timeout = 60000; PRAGMA query_only = ON;")
                                .await?;
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await?
            }
            Backend::Postgres => pool.clone(),
        };
        Ok(Self {
            pool,
            reader,
            backend,
        })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Registers a wallet and its agent key.
    pub async fn register_wallet(&self, wallet: &WalletRecord, now: u64) -> Result<()> {
        let result = sqlx::query(
            "INSERT INTO wallets (address, chain_id, agent, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(hex(wallet.address))
        .bind(i64::try_from(wallet.chain_id).map_err(|_| Error::Corrupt("chain id".into()))?)
        .bind(hex(wallet.agent))
        .bind(db_time(now))
        .execute(&self.pool)
        .await;
        match result {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(Error::WalletExists(hex(wallet.address)))
            }
            other => other.map(|_| ()).map_err(Into::into),
        }
    }

    /// A registered wallet.
    pub async fn wallet(&self, wallet: Address) -> Result<Option<WalletRecord>> {
        let row = sqlx::query("SELECT chain_id, agent FROM wallets WHERE address = $1")
            .bind(hex(wallet))
            .fetch_optional(&self.reader)
            .await?;
        row.map(|row| {
            let chain_id: i64 = row.try_get(0)?;
            let agent: String = row.try_get(1)?;
            Ok(WalletRecord {
                address: wallet,
                chain_id: u64::try_from(chain_id).map_err(|_| Error::Corrupt("chain id".into()))?,
                agent: parse(&agent, "agent")?,
            })
        })
        .transpose()
    }

    /// Stores a new policy version for a wallet; versions only go up, and all are kept.
    pub async fn set_policy(&self, wallet: Address, policy: &Policy, now: u64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let exists = sqlx::query("SELECT 1 FROM wallets WHERE address = $1")
            .bind(hex(wallet))
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(Error::UnknownWallet(hex(wallet)));
        }
        let current: Option<i64> =
            sqlx::query("SELECT MAX(version) FROM policies WHERE wallet = $1")
                .bind(hex(wallet))
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
        let current = current.unwrap_or(0) as u32;
        if policy.version <= current {
            return Err(Error::StalePolicyVersion {
                current,
                given: policy.version,
            });
        }
        let document = serde_json::to_string(policy).map_err(|e| Error::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO policies (wallet, version, hash, document, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(hex(wallet))
        .bind(i64::from(policy.version))
        .bind(policy.hash().to_string())
        .bind(document)
        .bind(db_time(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The wallet's current policy.
    pub async fn policy(&self, wallet: Address) -> Result<Option<Policy>> {
        let mut conn = self.reader.acquire().await?;
        Self::current_policy(&mut conn, wallet).await
    }

    async fn current_policy(
        conn: &mut sqlx::AnyConnection,
        wallet: Address,
    ) -> Result<Option<Policy>> {
        let row = sqlx::query(
            "SELECT document FROM policies WHERE wallet = $1 ORDER BY version DESC LIMIT 1",
        )
        .bind(hex(wallet))
        .fetch_optional(&mut *conn)
        .await?;
        row.map(|row| {
            let document: String = row.try_get(0)?;
            Policy::from_json(&document).map_err(|e| Error::Corrupt(e.to_string()))
        })
        .transpose()
    }

    /// Decides a request and records the decision, all in one transaction that holds the
    /// wallet's lock: read the history, call `evaluate` (the pure engine, plus signing), write
    /// the decision, reserve an approval's spend or open a pending approval. A request decided
    /// before (same `request_id`) returns the recorded decision and reserves nothing again.
    pub async fn decide(
        &self,
        request: &RequestRecord<'_>,
        evaluate: impl FnOnce(&Policy, &SpendHistory, bool) -> Decided,
    ) -> Result<StoredDecision> {
        let RequestRecord {
            wallet,
            request_id,
            nonce,
            json: request_json,
            now,
            valid_until,
        } = *request;
        let mut tx = match self.backend {
            // IMMEDIATE takes SQLite's write lock at once, so two deciders never read the same
            // history; PostgreSQL locks the wallet's row instead (other wallets proceed).
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        let lock = match self.backend {
            Backend::Sqlite => "SELECT address FROM wallets WHERE address = $1",
            Backend::Postgres => "SELECT address FROM wallets WHERE address = $1 FOR UPDATE",
        };
        if sqlx::query(lock)
            .bind(hex(wallet))
            .fetch_optional(&mut *tx)
            .await?
            .is_none()
        {
            return Err(Error::UnknownWallet(hex(wallet)));
        }
        let mut human_approved = false;
        if let Some(existing) = Self::recorded(&mut tx, request_id).await? {
            // A pending request that a human approved (and whose approval has not expired) is
            // decided again, now with the approval; anything else is answered as recorded.
            let approval = match existing.outcome {
                Outcome::PendingApproval => Self::approval_status(&mut tx, request_id, now).await?,
                _ => None,
            };
            if approval != Some(ApprovalState::Approved) {
                tx.commit().await?;
                return Ok(existing);
            }
            human_approved = true;
        }
        let policy = Self::current_policy(&mut tx, wallet)
            .await?
            .ok_or_else(|| Error::NoPolicy(hex(wallet)))?;
        let history = Self::history(&mut tx, wallet, now, policy.longest_window()).await?;
        let Decided {
            decision,
            signature,
        } = evaluate(&policy, &history, human_approved);

        let reasons =
            serde_json::to_string(&decision.reasons).map_err(|e| Error::Corrupt(e.to_string()))?;
        // A re-decision after a human approval replaces the pending verdict in place (the
        // approval row refers to it); a first decision is a new row.
        if human_approved {
            sqlx::query(
                "UPDATE decisions SET outcome = $1, reasons = $2, policy_version = $3, \
                 policy_hash = $4, signature = $5, logged_leaf = NULL WHERE request_id = $6",
            )
            .bind(outcome_text(decision.outcome))
            .bind(reasons)
            .bind(i64::from(decision.policy_version))
            .bind(decision.policy_hash.to_string())
            .bind(signature.clone())
            .bind(request_id.to_string())
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query(
                "INSERT INTO decisions (request_id, wallet, created_at, valid_until, request, \
                 outcome, reasons, policy_version, policy_hash, signature, nonce) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(request_id.to_string())
            .bind(hex(wallet))
            .bind(db_time(now))
            .bind(db_time(valid_until))
            .bind(request_json)
            .bind(outcome_text(decision.outcome))
            .bind(reasons)
            .bind(i64::from(decision.policy_version))
            .bind(decision.policy_hash.to_string())
            .bind(signature.clone())
            .bind(nonce.map(|n| n.to_string()))
            .execute(&mut *tx)
            .await?;
        }

        match decision.outcome {
            Outcome::Approved => {
                for (token, amount) in &decision.spends {
                    sqlx::query(
                        "INSERT INTO spend_reservations \
                         (request_id, wallet, token, amount, created_at, expires_at, status) \
                         VALUES ($1, $2, $3, $4, $5, $6, 'reserved')",
                    )
                    .bind(request_id.to_string())
                    .bind(hex(wallet))
                    .bind(token.to_string())
                    .bind(amount.to_string())
                    .bind(db_time(now))
                    .bind(db_time(valid_until))
                    .execute(&mut *tx)
                    .await?;
                }
            }
            Outcome::PendingApproval if !human_approved => {
                let ttl = policy.approval.as_ref().map_or(0, |a| a.expires_after.0);
                sqlx::query(
                    "INSERT INTO approvals (request_id, status, expires_at) VALUES ($1, 'pending', $2)",
                )
                .bind(request_id.to_string())
                .bind(db_time(now.saturating_add(ttl)))
                .execute(&mut *tx)
                .await?;
            }
            Outcome::PendingApproval | Outcome::Denied => {}
        }
        tx.commit().await?;
        Ok(StoredDecision {
            request_id,
            outcome: decision.outcome,
            reasons: decision.reasons,
            policy_version: decision.policy_version,
            policy_hash: decision.policy_hash,
            signature,
            replayed: false,
        })
    }

    async fn recorded(
        conn: &mut sqlx::AnyConnection,
        request_id: B256,
    ) -> Result<Option<StoredDecision>> {
        let row = sqlx::query(
            "SELECT outcome, reasons, policy_version, policy_hash, signature \
             FROM decisions WHERE request_id = $1",
        )
        .bind(request_id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
        row.map(|row| {
            let outcome: String = row.try_get(0)?;
            let reasons: String = row.try_get(1)?;
            let version: i64 = row.try_get(2)?;
            let hash: String = row.try_get(3)?;
            Ok(StoredDecision {
                request_id,
                outcome: outcome_from(&outcome)?,
                reasons: serde_json::from_str(&reasons)
                    .map_err(|e| Error::Corrupt(e.to_string()))?,
                policy_version: u32::try_from(version)
                    .map_err(|_| Error::Corrupt("version".into()))?,
                policy_hash: parse(&hash, "policy hash")?,
                signature: row.try_get(4)?,
                replayed: true,
            })
        })
        .transpose()
    }

    /// Reserved and settled spends, and request times, within the longest window.
    async fn history(
        conn: &mut sqlx::AnyConnection,
        wallet: Address,
        now: u64,
        window: u64,
    ) -> Result<SpendHistory> {
        let since = db_time(now.saturating_sub(window));
        let rows = sqlx::query(
            "SELECT token, amount, created_at FROM spend_reservations \
             WHERE wallet = $1 AND status <> 'released' AND created_at > $2",
        )
        .bind(hex(wallet))
        .bind(since)
        .fetch_all(&mut *conn)
        .await?;
        let mut spends = Vec::with_capacity(rows.len());
        for row in rows {
            let token: String = row.try_get(0)?;
            let amount: String = row.try_get(1)?;
            let at: i64 = row.try_get(2)?;
            spends.push(PastSpend {
                token: parse::<Token>(&token, "token")?,
                amount: parse(&amount, "amount")?,
                at: at as u64,
            });
        }
        let requests =
            sqlx::query("SELECT created_at FROM decisions WHERE wallet = $1 AND created_at > $2")
                .bind(hex(wallet))
                .bind(since)
                .fetch_all(&mut *conn)
                .await?
                .into_iter()
                .map(|row| row.try_get::<i64, _>(0).map(|t| t as u64))
                .collect::<Result<_, _>>()?;
        Ok(SpendHistory { spends, requests })
    }

    async fn approval_status(
        conn: &mut sqlx::AnyConnection,
        request_id: B256,
        now: u64,
    ) -> Result<Option<ApprovalState>> {
        let row = sqlx::query("SELECT status, expires_at FROM approvals WHERE request_id = $1")
            .bind(request_id.to_string())
            .fetch_optional(&mut *conn)
            .await?;
        row.map(|row| {
            let status: String = row.try_get(0)?;
            let expires_at: i64 = row.try_get(1)?;
            Ok(match status.as_str() {
                _ if expires_at < db_time(now) => ApprovalState::Expired,
                "pending" => ApprovalState::Pending,
                "approved" => ApprovalState::Approved,
                "denied" => ApprovalState::Denied,
                other => return Err(Error::Corrupt(format!("approval status: {other}"))),
            })
        })
        .transpose()
    }

    /// Records a human's verdict on a pending request. Fails when there is no pending approval
    /// for it or the approval expired.
    pub async fn resolve_approval(
        &self,
        request_id: B256,
        approve: bool,
        by: &str,
        now: u64,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE approvals SET status = $1, decided_by = $2, decided_at = $3 \
             WHERE request_id = $4 AND status = 'pending' AND expires_at >= $3",
        )
        .bind(if approve { "approved" } else { "denied" })
        .bind(by)
        .bind(db_time(now))
        .bind(request_id.to_string())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NoPendingApproval(request_id.to_string()));
        }
        Ok(())
    }

    /// Pending approvals that have not expired: (request id, wallet, expires at).
    pub async fn pending_approvals(&self, now: u64) -> Result<Vec<(B256, Address, u64)>> {
        let rows = sqlx::query(
            "SELECT a.request_id, d.wallet, a.expires_at FROM approvals a \
             JOIN decisions d ON d.request_id = a.request_id \
             WHERE a.status = 'pending' AND a.expires_at >= $1 ORDER BY a.expires_at",
        )
        .bind(db_time(now))
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|row| {
                let id: String = row.try_get(0)?;
                let wallet: String = row.try_get(1)?;
                let expires: i64 = row.try_get(2)?;
                Ok((
                    parse(&id, "request id")?,
                    parse(&wallet, "wallet")?,
                    expires as u64,
                ))
            })
            .collect()
    }

    /// Stores an API token's SHA-256 hash with its role (the token itself is never stored).
    pub async fn add_api_token(
        &self,
        token_hash: B256,
        name: &str,
        role: &str,
        now: u64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_tokens (token_hash, name, role, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (token_hash) DO NOTHING",
        )
        .bind(token_hash.to_string())
        .bind(name)
        .bind(role)
        .bind(db_time(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The role and name of the API token with this hash.
    pub async fn api_token(&self, token_hash: B256) -> Result<Option<(String, String)>> {
        let row = sqlx::query("SELECT role, name FROM api_tokens WHERE token_hash = $1")
            .bind(token_hash.to_string())
            .fetch_optional(&self.reader)
            .await?;
        row.map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .transpose()
    }

    /// Settles the reservations of the co-signed requests of `wallet` with `nonce`: the wallet
    /// emitted `Executed(nonce)`. If the agent obtained co-signatures for two requests with the
    /// same nonce, both stay counted (only one can ever execute): erring towards less budget.
    pub async fn settle_execution(&self, wallet: Address, nonce: U256) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE spend_reservations SET status = 'settled' \
             WHERE status = 'reserved' AND request_id IN \
             (SELECT request_id FROM decisions WHERE wallet = $1 AND nonce = $2)",
        )
        .bind(hex(wallet))
        .bind(nonce.to_string())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Every registered wallet's address.
    pub async fn wallet_addresses(&self) -> Result<Vec<Address>> {
        let rows = sqlx::query("SELECT address FROM wallets")
            .fetch_all(&self.reader)
            .await?;
        rows.into_iter()
            .map(|row| parse(&row.try_get::<String, _>(0)?, "wallet"))
            .collect()
    }

    /// Marks a request's reservations settled (its execution was confirmed on chain).
    pub async fn settle(&self, request_id: B256) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE spend_reservations SET status = 'settled' \
             WHERE request_id = $1 AND status = 'reserved'",
        )
        .bind(request_id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Releases a request's reservations (its execution reverted).
    pub async fn release(&self, request_id: B256) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE spend_reservations SET status = 'released' \
             WHERE request_id = $1 AND status = 'reserved'",
        )
        .bind(request_id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Releases the reservations of `Execute` requests whose `valid_until` passed without an
    /// execution; settles those of EIP-1271 approvals (they may have been used unseen).
    pub async fn release_expired(&self, now: u64) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        // An expired EIP-1271 approval (no `Execute` nonce: e.g. an EIP-3009 authorization)
        // may have been used by whoever held it, and nothing on chain tells this service: its
        // spend stays counted, or short-lived authorizations could outrun every window.
        sqlx::query(
            "UPDATE spend_reservations SET status = 'settled' \
             WHERE status = 'reserved' AND expires_at < $1 AND request_id IN \
             (SELECT request_id FROM decisions WHERE nonce IS NULL)",
        )
        .bind(db_time(now))
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query(
            "UPDATE spend_reservations SET status = 'released' \
             WHERE status = 'reserved' AND expires_at < $1",
        )
        .bind(db_time(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Total reserved or settled amount of `token` for `wallet` (what counts against limits).
    pub async fn committed_spend(
        &self,
        wallet: Address,
        token: Token,
    ) -> Result<chaperone_core::policy::Amount> {
        let rows = sqlx::query(
            "SELECT amount FROM spend_reservations WHERE wallet = $1 AND token = $2 AND status <> 'released'",
        )
        .bind(hex(wallet))
        .bind(token.to_string())
        .fetch_all(&self.reader)
        .await?;
        let mut total = chaperone_core::policy::Amount::default();
        for row in rows {
            let amount: String = row.try_get(0)?;
            total.0 = total.0.saturating_add(parse(&amount, "amount")?);
        }
        Ok(total)
    }
}

use std::str::FromStr;

use chaperone_core::{
    Address,
    policy::{Outcome, Policy},
};
use sqlx::{
    AnyPool, Executor, Row,
    any::{AnyPoolOptions, install_default_drivers},
};

use crate::{Error, Result, checkpoint};

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
    /// How far the deciding replica's clock may be from the database's (seconds); `None` turns
    /// the check off (tests with a fake clock).
    pub(crate) max_clock_skew: Option<u64>,
    /// The deciding clock's second at which the skew was last found within the bound: the
    /// database's clock is asked at most once a second, not inside every decision's lock.
    pub(crate) skew_checked_at: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Whether the log's receive times, held ahead of this server's clock beyond the tolerance,
    /// were warned about (once per episode: audit/ingestion.rs).
    pub(crate) clock_ahead_warned: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Parsed policies by wallet, with their version: a (wallet, version) never changes (a
    /// new policy is a new version), so a decision batch reads only the versions under the
    /// wallets' locks and parses a document once.
    pub(crate) policies: std::sync::Arc<std::sync::Mutex<PolicyCache>>,
    /// Registered wallets: a wallet's row is never changed or deleted once registered, so
    /// the co-signer looks each one up once, not once per request. Only registered wallets
    /// are kept (an unknown address is asked again), so junk addresses cannot grow it.
    pub(crate) wallets:
        std::sync::Arc<std::sync::Mutex<std::collections::HashMap<Address, WalletRecord>>>,
    /// While a clone of the store lives, SQLite's write-ahead log is checkpointed off the
    /// writer's path (checkpoint.rs).
    _checkpointer_alive: std::sync::Arc<()>,
}

/// The parsed current policy of each wallet decided, with its version.
pub(crate) type PolicyCache =
    std::collections::HashMap<String, (i64, std::sync::Arc<chaperone_core::policy::Policy>)>;

/// The default bound on clock skew between a replica and the database: windows are counted
/// from each replica's clock, so a fast one would shorten them by its skew.
pub const MAX_CLOCK_SKEW_SECS: u64 = 5;

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

/// Batched decisions (decide.rs) prepare one statement per batch size and per statement
/// (a few hundred): with sqlx's default cache of 100 per connection, PostgreSQL parsed and
/// planned most of them again on every batch. An operator's own setting in the URL wins.
fn with_statement_cache(url: &str) -> String {
    const CAPACITY: &str = "statement-cache-capacity";
    if url.contains(CAPACITY) {
        return url.to_owned();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{CAPACITY}=1024")
}

/// Pool options for every pool: a connection idle for under a second is handed out without
/// sqlx's default ping, which cost each decision transaction one round trip more (under load,
/// a round trip waits for the database process to be scheduled). One idle for longer is still
/// pinged, and dropped if the database hung up on it.
fn pool_options() -> AnyPoolOptions {
    const TRUSTED_IDLE: std::time::Duration = std::time::Duration::from_secs(1);
    AnyPoolOptions::new()
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= TRUSTED_IDLE {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
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
                pool_options()
                    .max_connections(1)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // A 64 MiB page cache: the default 2 MiB re-read the log's index
                            // pages from the file on every batch. `synchronous = FULL`: a
                            // commit is on disk before it returns, as on PostgreSQL. With
                            // NORMAL, a crash of the machine could roll back a reservation
                            // whose co-signature had already been sent, and that spend would
                            // count nowhere (it cost ~15 % of saturated SQLite, docs/benchmarks.md).
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 60000; \
                                 PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; \
                                 PRAGMA cache_size = -65536;",
                            )
                            .await?;
                            // The log is checkpointed by checkpoint.rs; this is the backstop.
                            conn.execute(sqlx::AssertSqlSafe(format!(
                                "PRAGMA wal_autocheckpoint = {}",
                                checkpoint::WRITER_AUTOCHECKPOINT_FRAMES
                            )))
                            .await?;
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await?
            }
            Backend::Postgres => {
                pool_options()
                    .max_connections(16)
                    .connect(&with_statement_cache(url))
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
                pool_options()
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
        let alive = std::sync::Arc::new(());
        if backend == Backend::Sqlite {
            checkpoint::spawn(
                url.to_owned(),
                pool.clone(),
                std::sync::Arc::downgrade(&alive),
            );
        }
        Ok(Self {
            _checkpointer_alive: alive,
            pool,
            reader,
            backend,
            max_clock_skew: Some(MAX_CLOCK_SKEW_SECS),
            skew_checked_at: Default::default(),
            clock_ahead_warned: Default::default(),
            policies: Default::default(),
            wallets: Default::default(),
        })
    }

    /// The same store with another bound on the deciding clock's skew from the database's
    /// (`None`: unchecked, for tests that decide at a fixed fake time).
    pub fn with_max_clock_skew(mut self, max: Option<u64>) -> Self {
        self.max_clock_skew = max;
        self
    }

    /// The same store (its caches shared) with a writing pool of its own of at most
    /// `connections` on PostgreSQL, whose connections are opened on first use: by the runtime
    /// that uses them, whose I/O driver then wakes it. SQLite keeps its single writer.
    pub fn with_own_pool(&self, connections: u32) -> Self {
        let mut store = self.clone();
        if self.backend == Backend::Postgres {
            store.pool = pool_options()
                .max_connections(connections)
                .connect_lazy_with((*self.pool.connect_options()).clone());
        }
        store
    }

    /// A transaction that will write. On SQLite it takes the write lock at once: a transaction
    /// that read first could not upgrade once another writer committed.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Registers a wallet and its agent key; the agent may then append to the log.
    pub async fn register_wallet(&self, wallet: &WalletRecord, now: u64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let result = sqlx::query(
            "INSERT INTO wallets (address, chain_id, agent, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(hex(wallet.address))
        .bind(
            i64::try_from(wallet.chain_id)
                .map_err(|_| Error::OutOfRange(format!("chain id {}", wallet.chain_id)))?,
        )
        .bind(hex(wallet.agent))
        .bind(db_time(now))
        .execute(&mut *tx)
        .await;
        match result {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(Error::WalletExists(hex(wallet.address)));
            }
            other => other?,
        };
        sqlx::query(
            "INSERT INTO registered_agents (address, registered_at, registered_by) \
             VALUES ($1, $2, 'with its wallet') ON CONFLICT (address) DO NOTHING",
        )
        .bind(hex(wallet.agent))
        .bind(db_time(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A registered wallet.
    pub async fn wallet(&self, wallet: Address) -> Result<Option<WalletRecord>> {
        let cached = self
            .wallets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&wallet)
            .cloned();
        if cached.is_some() {
            return Ok(cached);
        }
        let row = sqlx::query("SELECT chain_id, agent FROM wallets WHERE address = $1")
            .bind(hex(wallet))
            .fetch_optional(&self.reader)
            .await?;
        let record = row
            .map(|row| {
                let chain_id: i64 = row.try_get(0)?;
                let agent: String = row.try_get(1)?;
                Ok::<_, Error>(WalletRecord {
                    address: wallet,
                    chain_id: u64::try_from(chain_id)
                        .map_err(|_| Error::Corrupt("chain id".into()))?,
                    agent: parse(&agent, "agent")?,
                })
            })
            .transpose()?;
        if let Some(record) = &record {
            self.wallets
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(wallet, record.clone());
        }
        Ok(record)
    }

    /// Stores a new policy version for a wallet; versions only go up, and all are kept.
    pub async fn set_policy(&self, wallet: Address, policy: &Policy, now: u64) -> Result<()> {
        self.install_policy(wallet, policy, None, None, now).await
    }

    /// Stores a new policy version as [`Store::set_policy`] does, with the document as
    /// submitted (`source`: its text and format, `toml` or `json`, comments and all) and who
    /// installed it; `by` is recorded as an administrative action in the same transaction.
    pub async fn install_policy(
        &self,
        wallet: Address,
        policy: &Policy,
        source: Option<(&str, &str)>,
        by: Option<&crate::Actor>,
        now: u64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        if let Some(by) = by {
            Self::require_live(&mut tx, &by.name).await?;
        }
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
            "INSERT INTO policies (wallet, version, hash, document, created_at, installed_by, \
             source, source_format) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(hex(wallet))
        .bind(i64::from(policy.version))
        .bind(policy.hash().to_string())
        .bind(document)
        .bind(db_time(now))
        .bind(by.map(|b| b.name.clone()))
        .bind(source.map(|(text, _)| text.to_owned()))
        .bind(source.map(|(_, format)| format.to_owned()))
        .execute(&mut *tx)
        .await?;
        if let Some(by) = by {
            let action = crate::NewAdminAction {
                action: "policy.set",
                subject: &hex(wallet),
                detail: serde_json::json!({
                    "wallet": hex(wallet),
                    "version": policy.version,
                    "hash": policy.hash().to_string(),
                    "policy": policy,
                }),
            };
            Self::record_action_on(&mut tx, by, &action, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The wallet's current policy.
    pub async fn policy(&self, wallet: Address) -> Result<Option<Policy>> {
        let mut conn = self.reader.acquire().await?;
        Self::current_policy(&mut conn, wallet).await
    }

    pub(crate) async fn current_policy(
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

    /// Every registered wallet's address.
    pub async fn wallet_addresses(&self) -> Result<Vec<Address>> {
        let rows = sqlx::query("SELECT address FROM wallets")
            .fetch_all(&self.reader)
            .await?;
        rows.into_iter()
            .map(|row| parse(&row.try_get::<String, _>(0)?, "wallet"))
            .collect()
    }
}

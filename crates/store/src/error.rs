/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database URL names neither SQLite nor PostgreSQL.
    #[error("unsupported database URL (expected sqlite:… or postgres://…): {0}")]
    UnsupportedUrl(String),
    /// A query failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The wallet is not registered.
    #[error("wallet {0} is not registered")]
    UnknownWallet(String),
    /// The wallet is already registered.
    #[error("wallet {0} is already registered")]
    WalletExists(String),
    /// The wallet has no policy yet.
    #[error("wallet {0} has no policy")]
    NoPolicy(String),
    /// A policy must have a higher version than the wallet's current one.
    #[error("policy version {given} is not above the current version {current}")]
    StalePolicyVersion {
        /// The wallet's current version.
        current: u32,
        /// The version offered.
        given: u32,
    },
    /// There is no unexpired pending approval for this request.
    #[error("no pending, unexpired approval for request {0}")]
    NoPendingApproval(String),
    /// A batch does not start where its agent's chain ends.
    #[error("agent {agent}: batch starts at sequence {got}, expected {expected}")]
    SequenceGap {
        /// The agent.
        agent: String,
        /// The sequence its next record must carry.
        expected: u64,
        /// The sequence the batch starts at.
        got: u64,
    },
    /// A batch's first record does not point to the agent's last logged record.
    #[error("agent {agent}: record {sequence} does not point to the previous record's hash")]
    BrokenChain {
        /// The agent.
        agent: String,
        /// The record's sequence.
        sequence: u64,
    },
    /// A log computation failed (a size beyond the log, a missing node).
    #[error(transparent)]
    Log(#[from] chaperone_core::Error),
    /// The deciding replica's clock is too far from the database's: windows would shift.
    #[error("clock skew: this replica says {local}, the database {database} (Unix seconds)")]
    ClockSkew {
        /// This replica's time.
        local: u64,
        /// The database server's time.
        database: u64,
    },
    /// A number from a client does not fit the database's signed 64-bit integers (times,
    /// sequences, cursors, chain ids must be below 2^63).
    #[error("{0} is out of range: it must be below 2^63")]
    OutOfRange(String),
    /// The token acting is revoked (or never existed): what it does must not count.
    #[error("the token named `{0}` is not live")]
    RevokedToken(String),
    /// A live token already has this name (names compare without regard to case).
    #[error("a live token is named `{0}`: revoke it first, or choose another name")]
    NameTaken(String),
    /// A token of the service's configuration has (or had) this name: an admin's token of
    /// that name would pass for the configuration's in the votes it casts.
    #[error(
        "the service's configuration names a token `{0}`: an issued token cannot take that \
         name; choose another"
    )]
    NameConfigured(String),
    /// The voter's token was issued after the request started waiting: only approvers who
    /// held a token then may vote on it (an admin cannot mint the rest of a quorum).
    #[error(
        "the token named `{0}` was issued after this request started waiting: only approvers \
         who held a token then may vote on it"
    )]
    TokenNewerThanRequest(String),
    /// A stored value does not parse (the database was edited by hand or is corrupt).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl Error {
    /// Whether every database connection stayed busy for longer than the pool waits: the
    /// service is overloaded, the request itself may be fine.
    pub fn is_busy(&self) -> bool {
        matches!(self, Self::Database(sqlx::Error::PoolTimedOut))
    }
}

/// Result with the store [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

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
    /// A stored value does not parse (the database was edited by hand or is corrupt).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// Result with the store [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

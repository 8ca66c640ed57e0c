//! The gateway's one error type.

/// What can go wrong setting up or running the gateway.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration file or the policy in it is not valid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// An upstream MCP server could not be started or reached.
    #[error("upstream `{name}`: {message}")]
    Upstream {
        /// The upstream's name in the configuration.
        name: String,
        /// What failed.
        message: String,
    },
    /// The agent's MCP session failed to start (it sent no valid `initialize`).
    #[error("the agent's MCP session: {0}")]
    Session(String),
    /// The SDK's recorder failed (its outbox, or the server refused a batch).
    #[error(transparent)]
    Sdk(#[from] chaperone_sdk::Error),
    /// Reading a file or binding a socket failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The gateway's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

//! One module per command, each with its arguments: thin shells over the server, chain, SDK
//! and API crates.

pub(crate) mod agent;
pub(crate) mod completions;
pub(crate) mod deploy;
pub(crate) mod export;
pub(crate) mod mcp;
pub(crate) mod policy;
pub(crate) mod report;
pub(crate) mod serve;
pub(crate) mod token;
pub(crate) mod up;
pub(crate) mod verify;
pub(crate) mod wallet;

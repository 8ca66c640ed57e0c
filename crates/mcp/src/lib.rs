//! `chaperone mcp`: an MCP gateway between an agent and its tool servers. To the agent it is
//! an MCP server (stdio or Streamable HTTP), to each upstream an MCP client; both halves are
//! the official Rust MCP SDK's (`rmcp`). Every `tools/call` is decided by a declarative tool
//! policy ([`policy`]) and recorded in the agent's Chaperone log through the SDK's
//! `Recorder` ([`record`]); x402 tools are paid from the agent's wallet ([`payment`]);
//! everything else passes through unchanged.

mod call;
mod config;
pub mod decisions;
mod error;
mod gateway;
mod http;
mod http_access;
mod listing;
mod meta;
pub mod payment;
pub mod policy;
pub mod record;
mod serve;
mod tasks;
mod upstream;

pub use config::{
    GatewayConfig, HttpSection, NAMESPACE_SEPARATOR, UpstreamConfig, UpstreamTransport,
    WalletSection,
};
pub use decisions::DecisionReporter;
pub use error::{Error, Result};
pub use gateway::{Gateway, GatewayState};
pub use http::{HttpGateway, http_router, serve_http};
pub use http_access::{DEFAULT_MAX_SESSIONS, HttpAccess};
pub use payment::ToolPayer;
pub use record::{CallRecorder, RECORD_LINGER, RECORD_META_KEY};
pub use serve::{serve_lines, serve_stdio};

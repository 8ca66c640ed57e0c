//! Running the gateway: over stdio (the agent starts `chaperone mcp` as its MCP server) or
//! Streamable HTTP (the agent connects to `http://HOST:PORT/mcp`).

use std::sync::Arc;

use rmcp::ServiceExt;

use crate::{Error, Gateway, GatewayState, Result};

/// Serves one agent on this process's stdin and stdout until it closes them.
pub async fn serve_stdio(state: Arc<GatewayState>) -> Result<()> {
    let running = Gateway::new(state)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| Error::Session(e.to_string()))?;
    running
        .waiting()
        .await
        .map_err(|e| Error::Session(e.to_string()))?;
    Ok(())
}

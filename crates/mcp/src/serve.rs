//! Running the gateway over stdio: the agent starts `chaperone mcp` as its MCP server.
//!
//! rmcp's stdio transport skips a line it cannot parse without a word, and answers a message
//! of the wrong shape without its id, so an agent that sent either would wait forever. The
//! gateway reads the agent's lines itself first: one that is not JSON gets a JSON-RPC parse
//! error (-32700), one that is JSON but no MCP message an invalid-request error (-32600) with
//! its id, and both are dropped; the rest go to rmcp unchanged. The gateway keeps serving.

use std::sync::Arc;

use rmcp::{ServiceExt, model::ClientJsonRpcMessage};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use crate::{Error, Gateway, GatewayState, Result};

/// Serves one agent on this process's stdin and stdout until it closes them.
pub async fn serve_stdio(state: Arc<GatewayState>) -> Result<()> {
    serve_lines(state, tokio::io::stdin(), tokio::io::stdout()).await
}

/// Serves one agent that speaks newline-delimited JSON-RPC on `input` and `output`.
pub async fn serve_lines<R, W>(state: Arc<GatewayState>, input: R, output: W) -> Result<()>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    const PIPE: usize = 1 << 16;
    let (mut to_rmcp, rmcp_in) = tokio::io::duplex(PIPE);
    let (rmcp_out, from_rmcp) = tokio::io::duplex(PIPE);
    let (errors, mut refused) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    let reader = tokio::spawn(async move {
        let mut input = BufReader::new(input);
        let mut line = Vec::new();
        loop {
            line.clear();
            let too_long = match read_line_capped(&mut input, &mut line, MAX_MESSAGE).await {
                Ok(None) | Err(_) => break,
                Ok(Some(too_long)) => too_long,
            };
            if !too_long && line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let refused = if too_long {
                Some(error_line(
                    Value::Null,
                    -32600,
                    format!("Invalid request: a message is limited to {MAX_MESSAGE} bytes"),
                ))
            } else {
                refusal(&line)
            };
            match refused {
                None => {
                    if !line.ends_with(b"\n") {
                        line.push(b'\n');
                    }
                    if to_rmcp.write_all(&line).await.is_err() {
                        break;
                    }
                }
                Some(answer) => {
                    if errors.send(answer).await.is_err() {
                        break;
                    }
                }
            }
        }
        // Dropping `to_rmcp` tells rmcp the agent is gone.
    });
    let writer = tokio::spawn(async move {
        let mut output = output;
        let mut from_rmcp = BufReader::new(from_rmcp);
        let mut line = Vec::new();
        loop {
            line.clear();
            let message = tokio::select! {
                read = from_rmcp.read_until(b'\n', &mut line) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(_) => &line,
                },
                Some(answer) = refused.recv() => {
                    line.extend_from_slice(&answer);
                    &line
                }
            };
            if output.write_all(message).await.is_err() || output.flush().await.is_err() {
                break;
            }
        }
    });
    let running = Gateway::new(state)
        .serve((rmcp_in, rmcp_out))
        .await
        .map_err(|e| Error::Session(e.to_string()));
    let served = match running {
        Ok(running) => running
            .waiting()
            .await
            .map(|_| ())
            .map_err(|e| Error::Session(e.to_string())),
        Err(e) => Err(e),
    };
    reader.abort();
    // rmcp's half of the output pipe is dropped with the service: the writer drains and ends.
    let _ = writer.await;
    served
}

/// The longest message the gateway takes from the agent (a longer line is refused and skipped,
/// never held whole in memory).
const MAX_MESSAGE: usize = 16 << 20;

/// Reads one line into `line`, at most `max` bytes of it: `None` at the end of the input,
/// `Some(true)` when the line was longer (the rest of it is read and dropped).
async fn read_line_capped<R: AsyncRead + Unpin>(
    input: &mut BufReader<R>,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<bool>> {
    let mut too_long = false;
    let mut read_any = false;
    loop {
        let available = input.fill_buf().await?;
        if available.is_empty() {
            return Ok(read_any.then_some(too_long));
        }
        read_any = true;
        let (chunk, done) = match available.iter().position(|b| *b == b'\n') {
            Some(end) => (&available[..=end], true),
            None => (available, false),
        };
        if !too_long && line.len() + chunk.len() <= max {
            line.extend_from_slice(chunk);
        } else {
            too_long = true;
            line.clear();
        }
        let used = chunk.len();
        input.consume(used);
        if done {
            return Ok(Some(too_long));
        }
    }
}

fn error_line(id: Value, code: i64, message: String) -> Vec<u8> {
    let mut answer = serde_json::to_vec(&json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": { "code": code, "message": message },
    }))
    .unwrap_or_default();
    answer.push(b'\n');
    answer
}

/// The error answer to a line that is not an MCP message, or `None` for one that is.
fn refusal(line: &[u8]) -> Option<Vec<u8>> {
    let (id, code, message) = match serde_json::from_slice::<Value>(line) {
        Err(e) => (Value::Null, -32700, format!("Parse error: {e}")),
        Ok(value) => {
            let id = match value.get("id") {
                Some(id @ (Value::String(_) | Value::Number(_))) => id.clone(),
                _ => Value::Null,
            };
            match serde_json::from_value::<ClientJsonRpcMessage>(value) {
                Ok(_) => return None,
                Err(e) => (
                    id,
                    -32600,
                    format!("Invalid request: not an MCP message ({e})"),
                ),
            }
        }
    };
    Some(error_line(id, code, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_an_mcp_message() {
        let parse = refusal(b"{this is not json\n").expect("refused");
        let parse: Value = serde_json::from_slice(&parse).expect("json");
        assert_eq!(parse["error"]["code"], -32700);
        assert_eq!(parse["id"], Value::Null);
        let shape = refusal(br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":"oops"}"#)
            .expect("refused");
        let shape: Value = serde_json::from_slice(&shape).expect("json");
        assert_eq!(
            (shape["error"]["code"].clone(), shape["id"].clone()),
            (json!(-32600), json!(7))
        );
        let fine = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
        assert!(refusal(fine).is_none());
    }

    #[tokio::test]
    async fn a_line_past_the_limit_is_dropped_and_the_next_read() {
        let text = format!("{}\nnext\n", "x".repeat(100));
        let mut input = BufReader::with_capacity(16, text.as_bytes());
        let mut line = Vec::new();
        assert_eq!(
            read_line_capped(&mut input, &mut line, 50).await.ok(),
            Some(Some(true))
        );
        line.clear();
        assert_eq!(
            read_line_capped(&mut input, &mut line, 50).await.ok(),
            Some(Some(false))
        );
        assert_eq!(line, b"next\n");
        line.clear();
        assert_eq!(
            read_line_capped(&mut input, &mut line, 50).await.ok(),
            Some(None)
        );
    }
}

//! The bodies a merchant answers with: read whole up to a limit (a merchant controls them,
//! and one that streams without end must not exhaust the agent's memory), and a 402's payment
//! requirements read from its header or, for x402 v1, at most 64 KiB of its body.

use x402_types::{
    proto::{OriginalJson, PaymentRequired, v1, v2},
    util::Base64Bytes,
};

use super::http_detail;

/// The most bytes of an answer's body [`read_body`] reads by default (the language packages'
/// `maxBodyBytes` / `max_body_bytes`): a merchant controls the body, and one that streams
/// without end must not exhaust the agent's memory.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 10 * 1024 * 1024;

/// Reads the body of a merchant's answer whole, refusing one past `max_bytes` (its stated
/// length, or the bytes received so far): `Err` says why.
pub(super) async fn read_body(
    mut response: reqwest::Response,
    max_bytes: u64,
) -> std::result::Result<Vec<u8>, String> {
    let over = || format!("the body is larger than the limit of {max_bytes} bytes");
    if response.content_length().is_some_and(|n| n > max_bytes) {
        return Err(over());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| http_detail(&e))? {
        if (body.len() + chunk.len()) as u64 > max_bytes {
            return Err(over());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The most bytes of a 402's body read for x402 v1's requirements (a few kilobytes in
/// practice): x402-reqwest's own parser reads the whole body, and a merchant streaming one
/// without end would exhaust the agent's memory, after a payment too (a refusal's reason).
const MAX_402_BODY_BYTES: u64 = 64 * 1024;

/// A 402's requirements: x402 v2's `Payment-Required` header, else v1's JSON body (read at
/// most [`MAX_402_BODY_BYTES`]). `Err` says why there are none.
pub(super) async fn payment_required(
    response: reqwest::Response,
) -> std::result::Result<PaymentRequired, String> {
    let header = response
        .headers()
        .get("Payment-Required")
        .and_then(|h| Base64Bytes::from(h.as_bytes()).decode().ok())
        .and_then(|bytes| serde_json::from_slice::<v2::PaymentRequired<OriginalJson>>(&bytes).ok());
    if let Some(required) = header {
        return Ok(PaymentRequired::V2(required));
    }
    let body = read_body(response, MAX_402_BODY_BYTES).await?;
    serde_json::from_slice::<v1::PaymentRequired<OriginalJson>>(&body)
        .map(PaymentRequired::V1)
        .map_err(|_| "no Payment-Required header, and no x402 v1 requirements in the body".into())
}

//! Paid tools: x402 over MCP. An upstream asks for payment with a tool result whose
//! `structuredContent` is x402's `PaymentRequired` (`isError: true`), or with a JSON-RPC error
//! of code 402 carrying it as `data`. The gateway pays exactly as the SDK's `X402Client` does
//! for HTTP — the same selection of requirements and the same co-signing by the policy
//! service, within the wallet policy's caps and windows — then calls the tool again with the
//! signed payment in `_meta["x402/payment"]`; the upstream's settlement comes back in
//! `_meta["x402/payment-response"]`. A payment the policy denies is never sent: the upstream
//! sees no payment at all. The payment goes into the call's record (`{"x402": [payment]}`,
//! what `chaperone verify` checks against the chain) and the decision is bound to the record.

use base64::Engine;
use chaperone_sdk::{Error as SdkError, Settlement, U256, Wallet, X402Client, X402Payment};
use rmcp::{
    model::{CallToolResult, ServerResult},
    service::ServiceError,
};
use serde_json::Value;

/// `_meta` key of the payment the client sends.
pub const PAYMENT_META_KEY: &str = "x402/payment";
/// `_meta` key of the settlement the server returns.
pub const PAYMENT_RESPONSE_META_KEY: &str = "x402/payment-response";

/// Removes every `x402/…` key from the agent's `_meta`: a payment reaches a tool only as the
/// gateway made it (capped, recorded, bound). The agent key can have an authorization
/// co-signed on its own; slipped into `_meta`, it would pass the tool's `max_price`, the
/// call's record and its binding.
pub fn strip_payments(meta: &mut rmcp::model::MetaObject) {
    meta.0.retain(|key, _| !key.starts_with("x402/"));
}

/// Pays x402 tools from the agent's wallet.
#[derive(Debug, Clone)]
pub struct ToolPayer {
    x402: X402Client,
    wallet: Wallet,
}

/// Why a payment was not made.
#[derive(Debug)]
pub(crate) struct NotPaid(pub(crate) Vec<String>);

impl ToolPayer {
    /// Pays from `wallet`.
    pub fn new(wallet: Wallet) -> Self {
        Self {
            x402: X402Client::new(wallet.clone()),
            wallet,
        }
    }

    /// Co-signs a payment for `required` (x402's `PaymentRequired` JSON) named `resource`, and
    /// returns it with the `_meta["x402/payment"]` value to send. Nothing is sent here.
    pub(crate) async fn authorize(
        &self,
        resource: &str,
        required: &Value,
    ) -> Result<(X402Payment, Value), NotPaid> {
        let payment = self
            .x402
            .authorize(resource, &required.to_string())
            .await
            .map_err(|e| match e {
                SdkError::Denied {
                    reasons_text,
                    reasons,
                    ..
                } if reasons_text.is_empty() => {
                    NotPaid(reasons.iter().map(|r| format!("{r:?}")).collect())
                }
                SdkError::Denied { reasons_text, .. } => NotPaid(reasons_text),
                other => NotPaid(vec![other.to_string()]),
            })?;
        let payload = base64::engine::general_purpose::STANDARD
            .decode(&payment.payload)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .ok_or_else(|| NotPaid(vec!["the signed payment is not base64 JSON".into()]))?;
        Ok((payment, payload))
    }

    /// Binds the payment's co-sign decision to the call's record (the record must be in the
    /// log: the caller waited for its receipt).
    pub(crate) async fn bind(
        &self,
        payment: &X402Payment,
        leaf_hash: chaperone_sdk::B256,
    ) -> Result<(), String> {
        self.wallet
            .bind_to_call(payment.request_id, leaf_hash)
            .await
            .map_err(|e| e.to_string())
    }
}

/// x402's `PaymentRequired`, if `answer` asks for payment.
pub(crate) fn payment_required(answer: &Result<ServerResult, ServiceError>) -> Option<Value> {
    let candidate = match answer {
        Ok(ServerResult::CallToolResult(result)) if result.is_error == Some(true) => {
            result_requirements(result)?
        }
        Err(ServiceError::McpError(error)) if error.code.0 == 402 => error.data.clone()?,
        _ => return None,
    };
    let looks_right = candidate.get("x402Version").is_some_and(Value::is_number)
        && candidate.get("accepts").is_some_and(Value::is_array);
    looks_right.then_some(candidate)
}

fn result_requirements(result: &CallToolResult) -> Option<Value> {
    if let Some(structured) = &result.structured_content {
        return Some(structured.clone());
    }
    // Servers that only send content put the same JSON in the first text block.
    let text = result.content.first()?.as_text()?;
    serde_json::from_str(&text.text).ok()
}

/// `required` with only the requirements that cost at most `cap`, or `None` when none does.
/// Every amount a requirement states counts (x402 v2's `amount` and v1's `maxAmountRequired`):
/// the SDK signs v1's, so a v1 body with a small `amount` beside must not pass on it; and an
/// amount that is not plain decimal digits is never affordable (x402-rs reads `10_000`).
pub(crate) fn within_cap(required: &Value, cap: U256) -> Option<Value> {
    let affordable: Vec<Value> = required
        .get("accepts")?
        .as_array()?
        .iter()
        .filter(|r| {
            let amounts: Vec<Option<&Value>> = vec![r.get("amount"), r.get("maxAmountRequired")];
            let stated: Vec<&Value> = amounts.into_iter().flatten().collect();
            !stated.is_empty()
                && stated.iter().all(|a| {
                    a.as_str()
                        .filter(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()))
                        .and_then(|a| U256::from_str_radix(a, 10).ok())
                        .is_some_and(|amount| amount <= cap)
                })
        })
        .cloned()
        .collect();
    if affordable.is_empty() {
        return None;
    }
    let mut capped = required.clone();
    capped["accepts"] = Value::Array(affordable);
    Some(capped)
}

/// The settlement an upstream returned with a paid result.
pub(crate) fn settlement_of(result: &CallToolResult) -> Option<Settlement> {
    Settlement::from_response(result.meta.as_ref()?.0.get(PAYMENT_RESPONSE_META_KEY)?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_agents_own_payment_never_reaches_a_tool() {
        let mut meta = rmcp::model::MetaObject::default();
        meta.0
            .insert(super::PAYMENT_META_KEY.into(), "0xpaid".into());
        meta.0.insert("x402/anything".into(), 1.into());
        meta.0.insert("progressToken".into(), 7.into());
        super::strip_payments(&mut meta);
        assert_eq!(meta.0.keys().collect::<Vec<_>>(), ["progressToken"]);
    }

    use rmcp::model::{ContentBlock, ErrorData};
    use serde_json::json;

    use super::*;

    #[test]
    fn the_tools_cap_keeps_only_what_it_allows() {
        let required = json!({"x402Version": 2, "accepts": [
            {"amount": "20000", "scheme": "exact"},
            {"amount": "5000", "scheme": "exact"},
            {"maxAmountRequired": "4000", "scheme": "exact"},
            {"scheme": "exact"},
        ]});
        let capped = within_cap(&required, U256::from(5_000)).expect("two fit");
        assert_eq!(capped["accepts"].as_array().map(Vec::len), Some(2));
        assert!(within_cap(&required, U256::from(100)).is_none());
        // A v1 body states a small `amount` beside the `maxAmountRequired` the SDK signs.
        let smuggled = json!({"x402Version": 1, "accepts": [
            {"amount": "1", "maxAmountRequired": "5000000", "scheme": "exact"},
            {"maxAmountRequired": "10_0", "scheme": "exact"},
        ]});
        assert!(within_cap(&smuggled, U256::from(100)).is_none());
    }

    #[test]
    fn finds_requirements_in_a_result_or_a_402_error() {
        let required = json!({"x402Version": 2, "accepts": [], "resource": {"url": "mcp://x"}});
        let mut result = CallToolResult::error(vec![ContentBlock::text(required.to_string())]);
        assert_eq!(
            payment_required(&Ok(ServerResult::CallToolResult(result.clone()))),
            Some(required.clone())
        );
        result.structured_content = Some(required.clone());
        assert!(payment_required(&Ok(ServerResult::CallToolResult(result))).is_some());
        let error = ErrorData::new(rmcp::model::ErrorCode(402), "pay", Some(required.clone()));
        assert_eq!(
            payment_required(&Err(ServiceError::McpError(error))),
            Some(required)
        );
        // A tool's own error, or a success, is no request for payment.
        let plain = CallToolResult::error(vec![ContentBlock::text("no such city")]);
        assert!(payment_required(&Ok(ServerResult::CallToolResult(plain))).is_none());
        let fine = CallToolResult::success(vec![ContentBlock::text("{\"x402Version\":2}")]);
        assert!(payment_required(&Ok(ServerResult::CallToolResult(fine))).is_none());
    }
}

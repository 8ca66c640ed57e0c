//! Every `chaperone_sdk::Error` variant as a rejection `index.js` turns into its own class
//! under `ChaperoneError` (`Denied`, `Pending`, …). The native error's message is the SDK's;
//! its `cause.message` is a JSON object naming the class (`kind`) and its details. The match
//! in [`to_js`] is exhaustive, so a new SDK error cannot reach JavaScript unmapped.

use chaperone_core::{Address, policy::Reason};
use chaperone_sdk::Error;
use serde_json::{Value, json};

use crate::convert;

/// The fields of reasons that hold amounts (hex `U256` in the JSON, `bigint`s in JavaScript).
const AMOUNT_FIELDS: [&str; 5] = ["amount", "cap", "spent", "max", "threshold"];

/// One reason: `code`, `text` (in words), `json` (the API's exact values) and its fields,
/// addresses checksummed and amounts as hex strings (`index.js` makes them `bigint`s).
fn reason(reason: &Reason, text: Option<&String>) -> Value {
    let value = serde_json::to_value(reason).unwrap_or_default();
    let mut fields = serde_json::Map::new();
    if let Value::Object(map) = &value {
        for (key, field) in map {
            let shown = match field {
                Value::String(text)
                    if text.len() == 42 && !AMOUNT_FIELDS.contains(&key.as_str()) =>
                {
                    text.parse::<Address>().map_or_else(
                        |_| field.clone(),
                        |a| Value::String(convert::checksummed(a)),
                    )
                }
                other => other.clone(),
            };
            fields.insert(key.clone(), shown);
        }
    }
    let json = value.to_string();
    json!({
        "fields": fields,
        "text": text.cloned().unwrap_or_else(|| json.clone()),
        "json": json,
    })
}

/// The rejection for an SDK error.
pub(crate) fn to_js(error: Error) -> napi::Error {
    let message = error.to_string();
    let details = match error {
        Error::Local(_) | Error::NotPrivate { .. } => json!({"kind": "LocalStoreError"}),
        Error::ContentFile(_) => json!({"kind": "ContentFileError"}),
        Error::Migrate(_) => json!({"kind": "MigrationError"}),
        Error::Core(_) => json!({"kind": "CoreError"}),
        Error::Unreachable { url, detail } => {
            json!({"kind": "Unreachable", "url": url, "detail": detail})
        }
        Error::Refused {
            status,
            code,
            message,
        } => json!({
            "kind": "Refused", "status": status, "code": code.as_str(), "serverMessage": message,
        }),
        Error::Denied {
            request_id,
            reasons,
            reasons_text,
        } => json!({
            "kind": "Denied",
            "requestId": request_id.to_string(),
            "reasons": reasons
                .iter()
                .enumerate()
                .map(|(i, r)| reason(r, reasons_text.get(i)))
                .collect::<Vec<_>>(),
        }),
        Error::Pending(pending) => {
            json!({"kind": "Pending", "requestId": pending.request_id.to_string()})
        }
        Error::PendingAuthorization { request_id } => {
            json!({"kind": "PendingAuthorization", "requestId": request_id.to_string()})
        }
        // The payment goes along (its JSON: `index.js` makes it an `X402Payment`), so that
        // the application can watch it or present it again after a restart.
        Error::PaymentRefused {
            request_id,
            reason,
            payment,
        } => json!({
            "kind": "PaymentRefused", "requestId": request_id.to_string(), "reason": reason,
            "payment": serde_json::to_string(&payment).unwrap_or_default(),
        }),
        Error::PaymentUnanswered { detail, payment } => json!({
            "kind": "PaymentUnanswered",
            "requestId": payment.request_id.to_string(),
            "url": payment.resource,
            "detail": detail,
            "payment": serde_json::to_string(&payment).unwrap_or_default(),
        }),
        Error::Expired => json!({"kind": "Expired"}),
        Error::Chain(_) => json!({"kind": "ChainError"}),
        Error::Forgotten(leaf_hash) => {
            json!({"kind": "Forgotten", "leafHash": leaf_hash.to_string()})
        }
        Error::UnknownRecord(leaf_hash) => {
            json!({"kind": "UnknownRecord", "leafHash": leaf_hash.to_string()})
        }
        Error::Rejected { batch_id, message } => {
            json!({"kind": "Rejected", "batchId": batch_id, "serverMessage": message})
        }
        Error::Invalid(_) => json!({"kind": "Invalid"}),
        Error::Closed => json!({"kind": "Closed"}),
    };
    let mut error = napi::Error::from_reason(message);
    error.set_cause(napi::Error::from_reason(details.to_string()));
    error
}

/// `to_js` for a `Result`.
pub(crate) fn js<T>(result: chaperone_sdk::Result<T>) -> napi::Result<T> {
    result.map_err(to_js)
}

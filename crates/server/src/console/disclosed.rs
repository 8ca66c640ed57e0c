//! What a verified disclosure opened, shown to the auditor as the CLI prints it: the model
//! call's input, output and metadata, and the x402 payments its metadata names. All of it is
//! the agent's content, so maud escapes every byte, and a `pre` keeps it as it was written.

use chaperone_core::{CommitmentKind, DisclosedContent};
use maud::{Markup, html};
use serde_json::Value;

/// The most characters of one content shown (a model's output can be long).
const MAX_SHOWN_CHARS: usize = 20_000;

fn kind_name(kind: CommitmentKind) -> &'static str {
    match kind {
        CommitmentKind::Input => "Input",
        CommitmentKind::Output => "Output",
        CommitmentKind::Metadata => "Metadata",
    }
}

fn shown(content: &[u8]) -> (String, bool) {
    let text = String::from_utf8_lossy(content);
    let cut = text.chars().nth(MAX_SHOWN_CHARS).is_some();
    (text.chars().take(MAX_SHOWN_CHARS).collect(), cut)
}

/// A payment's field as text (numbers and strings alike).
fn field(payment: &Value, name: &str) -> String {
    match &payment[name] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The x402 payments a metadata content names (as the SDK's `record_metadata` writes them).
fn payments(metadata: &[u8]) -> Vec<Value> {
    serde_json::from_slice::<Value>(metadata)
        .ok()
        .and_then(|m| m.get("x402")?.as_array().cloned())
        .unwrap_or_default()
}

pub(super) fn disclosed(disclosed: &[DisclosedContent]) -> Markup {
    let paid: Vec<Value> = disclosed
        .iter()
        .filter(|d| d.kind == CommitmentKind::Metadata)
        .flat_map(|d| payments(&d.content))
        .collect();
    html! {
        h2 { "What was disclosed" }
        p.note { "Each content below opens its commitment in the verified record: it is exactly what the agent logged." }
        @if disclosed.is_empty() { p.empty { "The bundle opens no content: it proves only that the record is in the log." } }
        @for d in disclosed {
            @let (text, cut) = shown(&d.content);
            section.disclosed {
                h3 { (kind_name(d.kind)) small { " " (d.content.len()) " bytes" @if cut { ", the first " (MAX_SHOWN_CHARS) " characters shown" } } }
                pre.content { (text) }
            }
        }
        @if !paid.is_empty() {
            h2 { "Payments made within this call" }
            p.note { "As the agent's metadata records them; " code { "chaperone verify" } " also checks each settlement on chain." }
            table.payments {
                thead { tr { th { "Amount (base units)" } th { "Token" } th { "To" } th { "For" } th { "Decision" } th { "Settlement" } } }
                tbody {
                    @for p in &paid {
                        tr {
                            td { (field(p, "amount")) }
                            td { code { (field(p, "asset")) } }
                            td { code { (field(p, "pay_to")) } }
                            td { (field(p, "resource")) }
                            td { code { (field(p, "request_id")) } }
                            td { code { (field(&p["settlement"], "transaction")) } }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chaperone_core::Salt;

    use super::*;

    #[test]
    fn disclosed_content_and_payments_are_text() {
        let content = |kind, text: &str| DisclosedContent {
            kind,
            salt: Salt::random().expect("the OS gives randomness"),
            content: text.as_bytes().to_vec().into(),
        };
        let metadata = r#"{"x402":[{"amount":"1000","asset":"0x00000000000000000000000000000000000000aa","pay_to":"<b>x</b>","resource":"https://api/<script>","request_id":"0x01","settlement":{"transaction":"0x02"}}]}"#;
        let page = disclosed(&[
            content(CommitmentKind::Input, "<script>alert(1)</script>"),
            content(CommitmentKind::Output, "4"),
            content(CommitmentKind::Metadata, metadata),
        ])
        .into_string();
        assert!(
            !page.contains("<script>") && !page.contains("<b>"),
            "{page}"
        );
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{page}"
        );
        assert!(page.contains("Payments made within this call"), "{page}");
        assert!(page.contains("1000") && page.contains("0x02"), "{page}");
        assert!(page.contains("Input") && page.contains("Output"), "{page}");
    }
}

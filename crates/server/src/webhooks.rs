//! Webhook notifications: a pending approval, a denial, an anchoring failure, or an
//! unauthorized spend (reconciliation found an outflow nobody co-signed) is queued in
//! the store (`webhook_deliveries`) and POSTed to the deployment's webhook by a background
//! sender, retried with backoff, every attempt in the delivery log the console shows.
//!
//! Each POST carries `X-Chaperone-Event`, `X-Chaperone-Delivery` (the row id: receivers
//! deduplicate on it), `X-Chaperone-Timestamp` and `X-Chaperone-Signature:
//! sha256=HEX(HMAC-SHA256(secret, timestamp "." body))`. A receiver checks the signature and
//! refuses old timestamps, so a captured notification cannot be replayed later. With
//! `format = "slack"` the body is a Slack incoming-webhook message instead of the JSON event.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use chaperone_core::{
    Address, B256,
    policy::{Outcome, Reason},
    readable::iso8601,
};
use chaperone_store::{Store, UnauthorizedSpend, WebhookDelivery};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;

/// `[webhook]` in the service configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where notifications are POSTed.
    pub url: String,
    /// The environment variable holding the HMAC secret.
    pub secret_env: String,
    /// `json` (the event, signed) or `slack` (a Slack incoming-webhook message).
    #[serde(default)]
    pub format: WebhookFormat,
    /// The console's public base URL, for the links in notifications (default: the server's
    /// own address).
    pub console_url: Option<String>,
}

/// The body a webhook receives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// The event as JSON.
    #[default]
    Json,
    /// `{"text": …}` with a link to the console.
    Slack,
}

/// A configured webhook.
#[derive(Clone)]
pub struct Webhook {
    /// Where notifications go.
    pub url: String,
    /// The HMAC-SHA256 key.
    pub secret: Vec<u8>,
    /// The body format.
    pub format: WebhookFormat,
    /// The console's base URL, without a trailing slash.
    pub console_url: String,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("Webhook")
            .field("url", &self.url)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// `sha256=` and the hex HMAC-SHA256 of `timestamp.body` under `secret`.
pub fn signature(secret: &[u8], timestamp: u64, body: &str) -> String {
    // HMAC takes keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("sha256={}", alloy::hex::encode(mac.finalize().into_bytes()))
}

/// How long after a failed attempt the next one is made: 10 s, doubling, at most an hour.
fn backoff(attempts: u32) -> u64 {
    (10u64 << attempts.saturating_sub(1).min(9)).min(3_600)
}

/// Attempts before a notification is given up (and shown as failed).
pub const MAX_ATTEMPTS: u32 = 8;

/// A wallet's denials are notified at most once per this many seconds (an agent can be made
/// to ask for denied payments in a loop; the console lists every one).
const DENIAL_QUIET_SECS: u64 = 60;
/// Anchoring failures are notified at most once per this many seconds.
const ANCHORING_QUIET_SECS: u64 = 600;

/// Queues notifications (from the request path and the workers; never fails them).
pub struct Notifier {
    store: Store,
    webhook: Webhook,
    quiet_until: Mutex<HashMap<Option<Address>, u64>>,
}

impl Notifier {
    /// Notifications of `webhook`, queued in `store`.
    pub fn new(store: Store, webhook: Webhook) -> Self {
        Self {
            store,
            webhook,
            quiet_until: Mutex::default(),
        }
    }

    /// Whether `key` (a wallet's denials, or `None`: anchoring) may notify now; if so, quiet
    /// for `quiet` seconds.
    fn may_notify(&self, key: Option<Address>, now: u64, quiet: u64) -> bool {
        let mut until = self
            .quiet_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if until.get(&key).is_some_and(|t| *t > now) {
            return false;
        }
        until.insert(key, now + quiet);
        true
    }

    async fn enqueue(&self, event: &str, payload: Value, now: u64) {
        if let Err(e) = self
            .store
            .enqueue_webhook(event, &payload.to_string(), now)
            .await
        {
            tracing::error!(error = %e, event, "queueing a webhook notification failed");
        }
    }

    /// A new decision: pending approvals and (throttled per wallet) denials are notified.
    pub(crate) async fn decision(
        &self,
        wallet: Address,
        request_id: B256,
        outcome: Outcome,
        reasons: &[Reason],
        reasons_text: Vec<String>,
        now: u64,
    ) {
        let event = match outcome {
            Outcome::PendingApproval => "approval.pending",
            Outcome::Denied if self.may_notify(Some(wallet), now, DENIAL_QUIET_SECS) => {
                "decision.denied"
            }
            _ => return,
        };
        let link = console_link(
            &self.webhook.console_url,
            event,
            Some(wallet),
            Some(request_id),
        );
        let payload = json!({
            "event": event,
            "created_at": now,
            "created_at_iso": iso8601(now),
            "wallet": wallet,
            "request_id": request_id,
            "reasons": reasons,
            "reasons_text": reasons_text,
            "console_url": link,
        });
        self.enqueue(event, payload, now).await;
    }

    /// Reconciliation found an outflow no approved decision accounts for (never throttled:
    /// each one is the co-signer key signing without the service).
    pub(crate) async fn unauthorized_spend(&self, spend: &UnauthorizedSpend, now: u64) {
        let event = "unauthorized_spend";
        let payload = json!({
            "event": event,
            "created_at": now,
            "created_at_iso": iso8601(now),
            "id": spend.id,
            "wallet": spend.wallet,
            "kind": spend.kind,
            "reason": spend.reason,
            "reason_text": crate::alerts::reason(spend).text(),
            "block_number": spend.block_number,
            "tx_hash": spend.tx_hash,
            "found_at_block": spend.block_number,
            "contract": spend.contract,
            "nonce": spend.nonce,
            "console_url": console_link(&self.webhook.console_url, event, Some(spend.wallet), None),
        });
        self.enqueue(event, payload, now).await;
    }

    /// An anchoring pass failed (notified at most every ten minutes).
    pub(crate) async fn anchoring_failed(&self, error: &str, now: u64) {
        if !self.may_notify(None, now, ANCHORING_QUIET_SECS) {
            return;
        }
        let payload = json!({
            "event": "anchoring.failed",
            "created_at": now,
            "created_at_iso": iso8601(now),
            "error": error,
            "console_url": console_link(&self.webhook.console_url, "anchoring.failed", None, None),
        });
        self.enqueue("anchoring.failed", payload, now).await;
    }
}

/// Where in the console an event is dealt with. Only the configured `console` and typed
/// values go into it, so a link never leads anywhere else.
fn console_link(
    console: &str,
    event: &str,
    wallet: Option<Address>,
    request_id: Option<B256>,
) -> String {
    match (event, wallet, request_id) {
        ("approval.pending", _, Some(id)) => format!("{console}/approvals#request-{id}"),
        ("decision.denied", Some(wallet), _) => format!("{console}/decisions?wallet={wallet}"),
        ("anchoring.failed", ..) => format!("{console}/audit"),
        ("unauthorized_spend", Some(wallet), _) => {
            format!("{console}/alerts/freeze#wallet-{wallet}")
        }
        _ => console.to_owned(),
    }
}

/// `text` as literal text in a Slack message: Slack reads `<…>` as a link, a mention or
/// `<!channel>`, so `&`, `<` and `>` are escaped as its docs require; and a line break would
/// start a line of our own (a forged "Approval needed"), so control characters and line
/// separators become spaces. Every value a message quotes passes through here: reasons carry
/// a token's symbol (its deployer chose it) and errors carry what an RPC node answered.
fn slack_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The Slack message for an event: a headline, one line per reason, and a link to the
/// `console`, built here from its configuration rather than read from the payload.
fn slack(payload: &Value, console: &str) -> String {
    let text_of = |name: &str| payload[name].as_str().unwrap_or_default();
    let field = |name: &str| slack_escape(text_of(name));
    let event = payload["event"].as_str().unwrap_or_default();
    let headline = match event {
        "approval.pending" => format!(
            "Approval needed: wallet {} asks for a payment",
            field("wallet")
        ),
        "decision.denied" => format!("Denied: a payment of wallet {}", field("wallet")),
        "unauthorized_spend" => format!(
            "UNAUTHORIZED SPEND: wallet {} paid without a co-sign decision ({} in transaction {}: \
             {}). The co-signer key may be stolen: the owner must freeze the wallet now",
            field("wallet"),
            field("kind"),
            field("tx_hash"),
            field("reason_text")
        ),
        _ => format!("Anchoring failed: {}", field("error")),
    };
    let mut text = format!("*Chaperone* {headline}");
    for reason in payload["reasons_text"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        text.push_str(&format!("\n• {}", slack_escape(reason)));
    }
    let link = console_link(
        console,
        event,
        text_of("wallet").parse().ok(),
        text_of("request_id").parse().ok(),
    );
    text.push_str(&format!("\n<{}|Open in the console>", slack_escape(&link)));
    json!({ "text": text }).to_string()
}

/// Delivers queued notifications (one pass per tick).
pub struct WebhookSender {
    store: Store,
    webhook: Webhook,
    client: reqwest::Client,
}

impl WebhookSender {
    /// A sender of `store`'s queued notifications to `webhook`.
    pub fn new(store: Store, webhook: Webhook) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self {
            store,
            webhook,
            client,
        }
    }

    async fn post(&self, delivery: &WebhookDelivery, now: u64) -> Result<(), String> {
        let body = match self.webhook.format {
            WebhookFormat::Json => delivery.payload.clone(),
            WebhookFormat::Slack => {
                let payload: Value = serde_json::from_str(&delivery.payload).unwrap_or_default();
                slack(&payload, &self.webhook.console_url)
            }
        };
        let answer = self
            .client
            .post(&self.webhook.url)
            .header("content-type", "application/json")
            .header("x-chaperone-event", &delivery.event)
            .header("x-chaperone-delivery", delivery.id.to_string())
            .header("x-chaperone-timestamp", now.to_string())
            .header(
                "x-chaperone-signature",
                signature(&self.webhook.secret, now, &body),
            )
            .body(body)
            .send()
            .await
            .map_err(|e| format!("{}", e.without_url()))?;
        let status = answer.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the receiver answered HTTP {}", status.as_u16()))
        }
    }

    /// Sends what is due at `now`; returns how many were delivered.
    pub async fn tick(&self, now: u64) -> anyhow::Result<usize> {
        let mut delivered = 0;
        for delivery in self.store.due_webhooks(now, 50).await? {
            let outcome = self.post(&delivery, now).await;
            let attempts = delivery.attempts + 1;
            match &outcome {
                Ok(()) => delivered += 1,
                Err(error) => tracing::warn!(
                    delivery = delivery.id,
                    event = %delivery.event,
                    attempts,
                    error,
                    "webhook delivery failed"
                ),
            }
            let recorded = outcome.as_ref().map(|_| ()).map_err(|error| {
                let retry = (attempts < MAX_ATTEMPTS).then(|| now + backoff(attempts));
                (error.as_str(), retry)
            });
            self.store
                .record_webhook_attempt(delivery.id, recorded, now)
                .await?;
        }
        Ok(delivered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_ten_seconds_to_an_hour() {
        let waits: Vec<u64> = (1..=MAX_ATTEMPTS + 3).map(backoff).collect();
        assert_eq!(
            waits,
            [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]
        );
    }

    #[test]
    fn slack_messages_quote_every_value_and_link_only_to_the_console() {
        let forged = "x\r\n*Chaperone* Approval needed\u{2028}<!channel> <https://evil.example|Open in the console> & co";
        let payload = json!({
            "event": "anchoring.failed",
            "error": forged,
            "reasons_text": [forged],
            "console_url": "https://evil.example",
        });
        let quoted = "x  *Chaperone* Approval needed &lt;!channel&gt; &lt;https://evil.example|Open in the console&gt; &amp; co";
        let expected = format!(
            "*Chaperone* Anchoring failed: {quoted}\n• {quoted}\n<https://console.example/audit|Open in the console>"
        );
        assert_eq!(
            serde_json::from_str::<Value>(&slack(&payload, "https://console.example")).ok(),
            Some(json!({ "text": expected }))
        );
    }

    #[test]
    fn an_unauthorized_spend_quotes_its_values_and_links_to_the_freeze_page() {
        let wallet = "0x1111111111111111111111111111111111111111";
        let payload = json!({
            "event": "unauthorized_spend",
            "wallet": wallet,
            "kind": "eip3009\n<!channel>",
            "tx_hash": "<https://evil.example|tx>",
            "reason_text": "an approved nonce paid something else than what was approved",
            "console_url": "https://evil.example",
        });
        let expected = format!(
            "*Chaperone* UNAUTHORIZED SPEND: wallet {wallet} paid without a co-sign decision \
             (eip3009 &lt;!channel&gt; in transaction &lt;https://evil.example|tx&gt;: an \
             approved nonce paid something else than what was approved). The co-signer key may \
             be stolen: the owner must freeze the wallet now\n\
             <https://console.example/alerts/freeze#wallet-{wallet}|Open in the console>"
        );
        assert_eq!(
            serde_json::from_str::<Value>(&slack(&payload, "https://console.example")).ok(),
            Some(json!({ "text": expected }))
        );
    }

    #[test]
    fn the_signature_covers_timestamp_and_body() {
        let a = signature(b"secret", 1, "{}");
        assert!(a.starts_with("sha256=") && a.len() == 7 + 64);
        assert_ne!(a, signature(b"secret", 2, "{}"));
        assert_ne!(a, signature(b"secret", 1, "{ }"));
        assert_ne!(a, signature(b"other", 1, "{}"));
    }
}

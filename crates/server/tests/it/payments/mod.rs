//! The payment ledger (`GET /v1/payments`, the console's Payments page) and the payment
//! columns of `/v1/decisions`, on SQLite and PostgreSQL: one row per payment of every method,
//! each filter, cursor paging, the status a payment goes through as the indexer sees the chain
//! (with the settling transaction and block time), bad filters refused with a precise 400 and
//! nothing changed; in `pages`, the exports, the console and a hostile token symbol.

use alloy::sol_types::SolCall;
use axum::http::StatusCode;
use chaperone_api::{Payment, PaymentAuthorization, Permit2Payment};
use chaperone_core::{
    Address, B256, Call, Eip3009Kind, Execute, PERMIT2, PermitWitnessTransferFrom, TokenDomain,
    TokenPermissions, TransferWithAuthorization, U256, Witness, X402_PERMIT2_PROXY,
};
use chaperone_store::{ChainEvent, Settlement};
use chaperone_testkit::signed_cosign_json;
use serde_json::{Value, json};

mod pages;

use crate::{ADMIN, APPROVER, AUDITOR, NOW, Service, call, cosign::register_wallet, services};

pub(crate) const TOKEN: Address = Address::repeat_byte(0x70);
const MERCHANT: Address = Address::repeat_byte(0x77);
const SHOP: Address = Address::repeat_byte(0xb0);

pub(crate) async fn get(s: &Service, uri: &str) -> (StatusCode, Value) {
    call(&s.router, "GET", uri, Some(AUDITOR), None).await
}

async fn cosign(s: &Service, body: &Value) -> (StatusCode, Value) {
    call(
        &s.router,
        "POST",
        "/v1/cosign",
        None,
        Some(body.to_string()),
    )
    .await
}

/// Follows `next_cursor` to the end, collecting every item.
pub(crate) async fn all_pages(s: &Service, uri: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if uri.contains('?') { '&' } else { '?' };
        let page_uri = match &cursor {
            Some(c) => format!("{uri}{sep}cursor={c}"),
            None => uri.to_owned(),
        };
        let (status, page) = get(s, &page_uri).await;
        assert_eq!(status, StatusCode::OK, "{page_uri}: {page}");
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return items,
        }
    }
}

/// The request ids of the five payments [`paid`] makes, in the order made.
pub(crate) struct Paid {
    pub(crate) native: B256,
    pub(crate) erc20: B256,
    pub(crate) eip3009: B256,
    pub(crate) permit2: B256,
    pub(crate) approved: B256,
    /// Over the per-payment cap: a decision, not a payment.
    pub(crate) denied: B256,
}

fn execute(calls: Vec<Call>, nonce: u64) -> Payment {
    Payment::Execute(Execute {
        calls,
        nonce: U256::from(nonce),
        validUntil: NOW + 60,
    })
}

/// `s`'s wallet under a policy of native and `TOKEN` limits (a human above 500 native), and
/// one payment of each method: 100 native to SHOP (execute), 200 TOKEN to MERCHANT (execute
/// `transfer`), 300 TOKEN (EIP-3009), 400 TOKEN (Permit2), then 700 native that alice
/// approves with a comment; then 5000 native, denied.
pub(crate) async fn paid(s: &Service) -> Paid {
    register_wallet(s).await;
    let limits = |token: Value| json!({ "token": token, "per_transaction": "1000", "windows": [{ "window": "24h", "max": "100000" }] });
    let policy = json!({
        "version": 1,
        "chains": [31337],
        "limits": [limits(json!("native")), limits(json!(TOKEN))],
        "approval": { "expires_after": "10m", "above": [{ "token": "native", "amount": "500" }] },
        "typed_data": [
            { "primary_type": "TransferWithAuthorization", "verifying_contract": TOKEN },
            { "primary_type": "PermitWitnessTransferFrom", "verifying_contract": PERMIT2 },
        ],
    });
    let uri = format!("/v1/admin/wallets/{}/policy", s.wallet);
    let (status, answer) = call(
        &s.router,
        "PUT",
        &uri,
        Some(ADMIN),
        Some(policy.to_string()),
    )
    .await;
    assert!(status.is_success(), "{answer}");
    let sign = |payment: Payment| signed_cosign_json(&s.agent, 31337, s.wallet, payment);
    let pay = |to: Address, value: u64| Call {
        to,
        value: U256::from(value),
        data: Default::default(),
    };
    let transfer = Call {
        to: TOKEN,
        value: U256::ZERO,
        data: chaperone_chain::TestToken::transferCall {
            to: MERCHANT,
            value: U256::from(200),
        }
        .abi_encode()
        .into(),
    };
    let eip3009 = Payment::Eip3009(PaymentAuthorization {
        primary_type: Eip3009Kind::TransferWithAuthorization,
        domain: TokenDomain {
            name: "USD Coin".into(),
            version: "2".into(),
            chain_id: 31337,
            verifying_contract: TOKEN,
        },
        message: TransferWithAuthorization {
            from: s.wallet,
            to: MERCHANT,
            value: U256::from(300),
            validAfter: U256::ZERO,
            validBefore: U256::from(NOW + 60),
            nonce: B256::repeat_byte(3),
        },
    });
    let permit2 = Payment::Permit2(Permit2Payment {
        message: PermitWitnessTransferFrom {
            permitted: TokenPermissions {
                token: TOKEN,
                amount: U256::from(400),
            },
            spender: X402_PERMIT2_PROXY,
            nonce: U256::from(4),
            deadline: U256::from(NOW + 60),
            witness: Witness {
                to: MERCHANT,
                validAfter: U256::ZERO,
            },
        },
    });
    let mut ids = Vec::new();
    for payment in [
        execute(vec![pay(SHOP, 100)], 1),
        execute(vec![transfer], 2),
        eip3009,
        permit2,
    ] {
        let (status, answer) = cosign(s, &sign(payment)).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        ids.push(answer["request_id"].as_str().unwrap().parse().unwrap());
    }
    let big = sign(execute(vec![pay(SHOP, 700)], 5));
    let (status, answer) = cosign(s, &big).await;
    assert_eq!(status, StatusCode::ACCEPTED, "a human is asked: {answer}");
    let approved: B256 = answer["request_id"].as_str().unwrap().parse().unwrap();
    s.store
        .resolve_approval(approved, true, "alice", Some("invoice #7"), NOW)
        .await
        .unwrap();
    let (status, answer) = cosign(s, &big).await;
    assert_eq!(status, StatusCode::OK, "approved by alice: {answer}");
    let (status, answer) = cosign(s, &sign(execute(vec![pay(SHOP, 5000)], 6))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let denied = answer["request_id"].as_str().unwrap().parse().unwrap();
    Paid {
        native: ids[0],
        erc20: ids[1],
        eip3009: ids[2],
        permit2: ids[3],
        approved,
        denied,
    }
}

pub(crate) fn ids(rows: &[Value]) -> Vec<B256> {
    rows.iter()
        .map(|r| r["request_id"].as_str().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn every_payment_method_is_one_row_with_its_agent_token_recipients_and_approver() {
    for s in services().await {
        let p = paid(&s).await;
        let rows = all_pages(&s, "/v1/payments").await;
        assert_eq!(
            ids(&rows),
            vec![p.approved, p.permit2, p.eip3009, p.erc20, p.native],
            "newest first"
        );
        let row = |id: B256| {
            rows.iter()
                .find(|r| r["request_id"] == id.to_string())
                .unwrap()
        };
        let agent = s.agent.address().to_string();
        for (id, method, token, amount, to) in [
            (p.native, "execute", json!("native"), "100", SHOP),
            (p.erc20, "execute", json!(TOKEN), "200", MERCHANT),
            (p.eip3009, "eip3009", json!(TOKEN), "300", MERCHANT),
            (p.permit2, "permit2", json!(TOKEN), "400", MERCHANT),
            (p.approved, "execute", json!("native"), "700", SHOP),
        ] {
            let r = row(id);
            assert_eq!(r["method"], method, "{r}");
            assert_eq!(r["token"], token, "{r}");
            assert_eq!(r["amount_base_units"], amount, "{r}");
            assert_eq!(r["recipients"], json!([to]), "{r}");
            assert_eq!(r["wallet"], json!(s.wallet), "{r}");
            assert_eq!(
                r["agent"].as_str().unwrap().to_lowercase(),
                agent.to_lowercase()
            );
            assert_eq!(r["status"], "reserved", "{r}");
            assert_eq!(r["policy_version"], 1);
            assert_eq!(r["settlement_tx"], Value::Null);
        }
        // Native amounts in ETH beside the exact wei; an unreadable token stays in base units.
        assert_eq!(row(p.native)["amount"], "0.0000000000000001");
        assert_eq!(row(p.native)["token_symbol"], "ETH");
        assert_eq!(row(p.native)["token_decimals"], 18);
        assert_eq!(row(p.erc20)["amount"], "200");
        assert_eq!(row(p.approved)["approvers"], json!(["alice"]));
        assert_eq!(row(p.approved)["approval_comment"], "invoice #7");
        assert_eq!(
            row(p.native)["approvers"],
            json!([]),
            "within policy: no human"
        );
        assert!(!ids(&rows).contains(&p.denied), "a denial pays nothing");

        // The decisions carry the same payment columns.
        let decisions = all_pages(&s, "/v1/decisions").await;
        let decision = decisions
            .iter()
            .find(|d| d["request_id"] == p.approved.to_string())
            .unwrap();
        assert_eq!(decision["method"], "execute", "{decision}");
        assert_eq!(decision["payments"][0]["amount_base_units"], "700");
        assert_eq!(decision["payments"][0]["recipients"], json!([SHOP]));
        assert_eq!(decision["payments"][0]["status"], "reserved");
        assert_eq!(decision["approvers"], json!(["alice"]));
        assert_eq!(decision["approval_comment"], "invoice #7");
        assert!(
            decision["payments_text"][0]
                .as_str()
                .unwrap()
                .starts_with("0.0000000000000007 ETH to "),
            "{decision}"
        );
    }
}

#[tokio::test]
async fn each_filter_narrows_the_ledger_and_pages_follow_the_cursor() {
    for s in services().await {
        let p = paid(&s).await;
        let all = all_pages(&s, "/v1/payments").await;
        assert_eq!(all.len(), 5);
        let paged = all_pages(&s, "/v1/payments?limit=2").await;
        assert_eq!(
            paged, all,
            "pages of two give the same rows in the same order"
        );
        let (_, first) = get(&s, "/v1/payments?limit=2").await;
        assert_eq!(first["items"].as_array().unwrap().len(), 2);
        assert!(first["next_cursor"].is_string());

        let agent = s.agent.address();
        let other = Address::repeat_byte(0x01);
        for (query, expected) in [
            (format!("wallet={}", s.wallet), ids(&all)),
            (format!("wallet={other}"), vec![]),
            (format!("agent={agent}"), ids(&all)),
            (format!("agent={other}"), vec![]),
            ("token=native".into(), vec![p.approved, p.native]),
            (
                format!("token={TOKEN}"),
                vec![p.permit2, p.eip3009, p.erc20],
            ),
            (
                format!("recipient={MERCHANT}"),
                vec![p.permit2, p.eip3009, p.erc20],
            ),
            (format!("recipient={SHOP}"), vec![p.approved, p.native]),
            // The x402 proxy appears in the Permit2 request, but pays MERCHANT.
            (format!("recipient={X402_PERMIT2_PROXY}"), vec![]),
            (
                "min_amount=300".into(),
                vec![p.approved, p.permit2, p.eip3009],
            ),
            ("max_amount=300".into(), vec![p.eip3009, p.erc20, p.native]),
            (
                "min_amount=200&max_amount=400".into(),
                vec![p.permit2, p.eip3009, p.erc20],
            ),
            ("min_amount=1000".into(), vec![]),
            ("status=reserved".into(), ids(&all)),
            ("status=settled".into(), vec![]),
            (format!("from={NOW}"), ids(&all)),
            (format!("to={NOW}"), vec![]),
            (format!("to={}", NOW + 1), ids(&all)),
            // 2025-06-15T15:06:40Z is NOW.
            ("from=2025-06-15T15:06:40Z".into(), ids(&all)),
            ("from=2025-06-15T15:06:41Z".into(), vec![]),
            ("from=2025-06-15&to=2025-06-16".into(), ids(&all)),
        ] {
            let got = all_pages(&s, &format!("/v1/payments?{query}")).await;
            assert_eq!(ids(&got), expected, "{query}");
            let paged = all_pages(&s, &format!("/v1/payments?{query}&limit=1")).await;
            assert_eq!(ids(&paged), expected, "{query}, one per page");
        }
    }
}

#[tokio::test]
async fn status_follows_the_chain_with_the_settling_transaction_and_block_time() {
    for s in services().await {
        let p = paid(&s).await;
        let tx = |b: u8| B256::repeat_byte(b);
        let event = |log_index: u64, contract: Address, name: &str, fields: Value| ChainEvent {
            block_number: 7,
            log_index,
            block_hash: B256::repeat_byte(7),
            tx_hash: tx(0xe0 + log_index as u8),
            contract,
            event: name.into(),
            fields,
            block_time: Some(NOW + 20),
        };
        s.store
            .index_blocks(
                &[(7, B256::repeat_byte(7))],
                &[
                    event(
                        1,
                        s.wallet,
                        "Executed",
                        json!({ "nonce": "1", "digest": p.native }),
                    ),
                    event(
                        2,
                        TOKEN,
                        "AuthorizationUsed",
                        json!({ "authorizer": s.wallet, "nonce": B256::repeat_byte(3) }),
                    ),
                    // The authorization's transfer, beside it in the same transaction.
                    ChainEvent {
                        tx_hash: tx(0xe2),
                        ..event(
                            3,
                            TOKEN,
                            "Transfer",
                            json!({ "from": s.wallet, "to": MERCHANT, "value": "300" }),
                        )
                    },
                ],
                Some(NOW + 20),
            )
            .await
            .unwrap();
        let seen = Settlement {
            tx: None,
            block: 8,
            time: Some(NOW + 30),
        };
        let nonce = B256::from(U256::from(4));
        s.store
            .settle_authorization_seen(s.wallet, PERMIT2, nonce, Some(seen))
            .await
            .unwrap();
        s.store.release(p.erc20).await.unwrap();
        // A confirmed block past every validUntil: what is still reserved expired unused.
        s.store
            .index_blocks(&[(9, B256::repeat_byte(9))], &[], Some(NOW + 61))
            .await
            .unwrap();

        let all = all_pages(&s, "/v1/payments").await;
        let row = |id: B256| {
            all.iter()
                .find(|r| r["request_id"] == id.to_string())
                .unwrap()
                .clone()
        };
        let native = row(p.native);
        assert_eq!(native["status"], "settled");
        assert_eq!(native["settlement_tx"], json!(tx(0xe1)));
        assert_eq!(native["settlement_block"], 7);
        assert_eq!(native["settled_at"], NOW + 20);
        assert_eq!(native["settled_at_iso"], "2025-06-15T15:07:00Z");
        assert_eq!(row(p.eip3009)["settlement_tx"], json!(tx(0xe2)));
        // Permit2's bitmap shows its nonce used, but no transfer the x402 proxy made of the
        // approved 400 to MERCHANT pairs with it: the nonce paid something else (red team
        // rt29 F3). Not settled: misused, where the chain showed the nonce used.
        let permit2 = row(p.permit2);
        assert_eq!(permit2["status"], "misused");
        assert_eq!(
            permit2["settlement_tx"],
            Value::Null,
            "Permit2 names no transaction"
        );
        assert_eq!(permit2["settlement_block"], 8);
        assert_eq!(row(p.erc20)["status"], "released");
        assert_eq!(row(p.approved)["status"], "expired");
        assert_eq!(row(p.approved)["settlement_tx"], Value::Null);

        for (status, expected) in [
            ("settled", vec![p.eip3009, p.native]),
            ("misused", vec![p.permit2]),
            ("released", vec![p.erc20]),
            ("expired", vec![p.approved]),
            ("reserved", vec![]),
        ] {
            let got = all_pages(&s, &format!("/v1/payments?status={status}")).await;
            assert_eq!(ids(&got), expected, "{status}");
        }

        // An execution seen after its expiry settles it after all: the spend happened.
        s.store
            .index_blocks(
                &[(10, B256::repeat_byte(10))],
                &[ChainEvent {
                    block_number: 10,
                    ..event(
                        0,
                        s.wallet,
                        "Executed",
                        json!({ "nonce": "5", "digest": p.approved }),
                    )
                }],
                Some(NOW + 62),
            )
            .await
            .unwrap();
        let approved = all_pages(&s, "/v1/payments?status=settled").await;
        let approved = approved
            .iter()
            .find(|r| r["request_id"] == p.approved.to_string())
            .unwrap();
        assert_eq!(approved["settlement_block"], 10, "{approved}");
        assert_eq!(approved["settlement_tx"], json!(tx(0xe0)));

        // The decision shows its payment's settlement too.
        let decisions = all_pages(&s, "/v1/decisions").await;
        let native = decisions
            .iter()
            .find(|d| d["request_id"] == p.native.to_string())
            .unwrap();
        assert_eq!(native["payments"][0]["status"], "settled", "{native}");
        assert_eq!(native["payments"][0]["settlement_tx"], json!(tx(0xe1)));
    }
}

#[tokio::test]
async fn bad_filters_get_a_precise_400_and_change_nothing() {
    for s in services().await {
        let p = paid(&s).await;
        let before = all_pages(&s, "/v1/payments").await;
        let decisions_before = all_pages(&s, "/v1/decisions").await;
        for (uri, names) in [
            ("/v1/payments?wallet=0x12", "wallet"),
            ("/v1/payments?agent=bob", "agent"),
            ("/v1/payments?token=usdc", "token"),
            ("/v1/payments?recipient=0xZZ", "recipient"),
            ("/v1/payments?min_amount=-1", "min_amount"),
            ("/v1/payments?max_amount=1.5", "max_amount"),
            ("/v1/payments?min_amount=5&max_amount=4", "min_amount"),
            ("/v1/payments?status=paid", "status"),
            ("/v1/payments?from=yesterday", "from"),
            ("/v1/payments?to=2025-06-15T25:00", "to"),
            ("/v1/payments?cursor=garbage", "cursor"),
            ("/v1/payments?limit=0", "limit"),
            ("/v1/payments?format=xml", "format"),
            ("/v1/payments?outcome=approved", "outcome"),
            ("/v1/payments?wallet=0x12&wallet=0x13", "wallet"),
            ("/v1/decisions?reason=made_up", "reason"),
        ] {
            let (status, body) = get(&s, uri).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
            assert_eq!(body["error"]["code"], "invalid_query", "{uri}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains(names), "{uri}: {message}");
        }
        assert_eq!(all_pages(&s, "/v1/payments").await, before);
        assert_eq!(all_pages(&s, "/v1/decisions").await, decisions_before);
        // The reason filter takes the codes that exist.
        let capped = all_pages(&s, "/v1/decisions?reason=per_transaction_cap").await;
        assert_eq!(ids(&capped), vec![p.denied], "{capped:?}");
        assert!(
            all_pages(&s, "/v1/decisions?reason=window_cap")
                .await
                .is_empty()
        );
        // An approver does not read the ledger; nobody without a token does.
        let (status, _) = call(&s.router, "GET", "/v1/payments", Some(APPROVER), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = call(&s.router, "GET", "/v1/payments", None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}

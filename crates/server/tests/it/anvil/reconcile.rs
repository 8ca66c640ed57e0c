//! Reconciliation against attacker B, who holds the agent key and the co-signer key: spends
//! signed with both keys and sent straight to the chain (an `execute`, the same nonce as an
//! approved one with other calls, an EIP-3009 authorization and an x402 Permit2 payment through
//! EIP-1271), never asked of the service, are found in one indexer pass
//! and shown everywhere an operator looks (API, metric, webhook, console banner); the
//! payments the service approved raise nothing.

use alloy::{
    primitives::{Address, B256, Bytes, U256},
    providers::Provider,
};
use axum::http::StatusCode;
use chaperone_api::{Payment, PaymentAuthorization, Permit2Payment};
use chaperone_chain::{AgentWallet, TestToken, install_x402_contracts, x402_proxy};
use chaperone_core::{
    AgentMessage, Call, Eip3009Kind, PERMIT2_SLOTS, PermitWitnessTransferFrom, TokenDomain,
    TokenPermissions, TransferWithAuthorization, Witness, X402_PERMIT2_PROXY, authorization_nonce,
    policy::Policy,
};
use chaperone_server::{AppState, Indexer, Notifier, Webhook, WebhookFormat, app, token_hash};
use chaperone_testkit::{sign, signed_cosign};
use serde_json::json;

use super::{ETHER, to_contract, world};
use crate::{call, call_text, get_with_cookie, login};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacker_b_spending_without_the_service_is_alerted_within_one_indexer_pass() {
    let w = world().await;
    let chain_id = w.provider.get_chain_id().await.unwrap();
    install_x402_contracts(&w.provider).await.unwrap();
    let contract = AgentWallet::new(w.wallet, &w.provider);
    let token = TestToken::new(w.token, &w.provider);
    contract
        .setAuthorizationBudget(w.token, U256::from(100), 5, 5)
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    let policy = Policy::from_json(
        &json!({
            "version": 2,
            "chains": [chain_id],
            "limits": [
                { "token": "native", "per_transaction": ETHER.to_string() },
                { "token": w.token.to_string(), "per_transaction": "100" },
            ],
            "typed_data": [
                { "primary_type": "TransferWithAuthorization", "verifying_contract": w.token.to_string() },
                { "primary_type": "PermitWitnessTransferFrom",
                  "verifying_contract": chaperone_core::PERMIT2.to_string() },
            ],
        })
        .to_string(),
    )
    .unwrap();
    w.store.set_policy(w.wallet, &policy, 1).await.unwrap();
    let merchant = Address::repeat_byte(0x42);
    let thief = Address::repeat_byte(0x66);

    // 1. An approved execute: asked of the service, co-signed, executed.
    let approved = w.execute(
        vec![Call {
            to: merchant,
            value: U256::from(ETHER / 4),
            data: Bytes::new(),
        }],
        0,
    );
    let (status, body) = w.cosign(&approved).await;
    assert_eq!(status, 200, "{body}");
    let cosig: Bytes = body["cosigner_signature"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    contract
        .execute(
            to_contract(&approved.calls),
            approved.nonce,
            approved.validUntil,
            w.agent_signature(&approved).await,
            cosig,
        )
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();

    // 2. An approved EIP-3009 authorization: co-signed by the service, used by the merchant.
    let block = w
        .provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .unwrap()
        .unwrap();
    let (now, period) = (block.header.timestamp, block.header.timestamp / 86_400);
    let domain = TokenDomain {
        name: token.name().call().await.unwrap(),
        version: "1".into(),
        chain_id,
        verifying_contract: w.token,
    };
    let authorization = |to: Address, value: u64, slot: u32| TransferWithAuthorization {
        from: w.wallet,
        to,
        value: U256::from(value),
        validAfter: U256::ZERO,
        validBefore: U256::from(now + 120),
        nonce: authorization_nonce(period, slot),
    };
    let kind = Eip3009Kind::TransferWithAuthorization;
    let use_authorization = async |m: &TransferWithAuthorization, signature: Bytes| {
        token
            .transferWithAuthorization(
                m.from,
                m.to,
                m.value,
                m.validAfter,
                m.validBefore,
                m.nonce,
                signature,
            )
            .send()
            .await
            .unwrap()
            .watch()
            .await
            .unwrap();
    };
    let paid = authorization(merchant, 30, 0);
    let request = signed_cosign(
        &w.agent,
        chain_id,
        w.wallet,
        Payment::Eip3009(PaymentAuthorization {
            primary_type: kind,
            domain: domain.clone(),
            message: paid.clone(),
        }),
    );
    let response = alloy::transports::http::reqwest::Client::new()
        .post(format!("{}/v1/cosign", w.url))
        .header("content-type", "application/json")
        .body(serde_json::to_string(&request).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let answer: serde_json::Value = response.json().await.unwrap();
    let cosig: Bytes = answer["cosigner_signature"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    use_authorization(
        &paid,
        paid.wallet_signature(w.token, kind, &request.agent_signature, &cosig),
    )
    .await;

    // 3. Attacker B: an execute signed with both keys, sent without asking the service.
    let stolen = w.execute(
        vec![Call {
            to: thief,
            value: U256::from(ETHER / 2),
            data: Bytes::new(),
        }],
        1,
    );
    let digest = stolen.digest(chain_id, w.wallet);
    contract
        .execute(
            to_contract(&stolen.calls),
            stolen.nonce,
            stolen.validUntil,
            sign(&w.agent, &digest),
            sign(&w.cosigner, &digest),
        )
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    // 4. Attacker B: an EIP-3009 authorization the wallet signs through EIP-1271.
    let drained = authorization(thief, 90, 1);
    let message = AgentMessage {
        hash: drained.hash(&domain, kind),
    }
    .digest(chain_id, w.wallet);
    use_authorization(
        &drained,
        drained.wallet_signature(
            w.token,
            kind,
            &sign(&w.agent, &message),
            &sign(&w.cosigner, &message),
        ),
    )
    .await;
    assert_eq!(
        token.balanceOf(thief).call().await.unwrap(),
        U256::from(90),
        "the attack paid: only the backstop bounds attacker B"
    );
    // 5. Attacker B: the service approved nonce 2 for a small payment; before the agent uses
    // it, the attacker spends nonce 2 on other calls. The nonce matches an approved decision,
    // what moved does not.
    let small = w.execute(
        vec![Call {
            to: merchant,
            value: U256::from(ETHER / 10),
            data: Bytes::new(),
        }],
        2,
    );
    let (status, body) = w.cosign(&small).await;
    assert_eq!(status, 200, "{body}");
    let swapped = w.execute(
        vec![Call {
            to: thief,
            value: U256::from(ETHER / 2),
            data: Bytes::new(),
        }],
        2,
    );
    let digest = swapped.digest(chain_id, w.wallet);
    contract
        .execute(
            to_contract(&swapped.calls),
            swapped.nonce,
            swapped.validUntil,
            sign(&w.agent, &digest),
            sign(&w.cosigner, &digest),
        )
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();

    // 6. Attacker B, and an approved payment, through x402's Permit2 proxy (no event).
    let permit = |to: Address, amount: u64, slot: u32| PermitWitnessTransferFrom {
        permitted: TokenPermissions {
            token: w.token,
            amount: U256::from(amount),
        },
        spender: X402_PERMIT2_PROXY,
        nonce: authorization_nonce(period, PERMIT2_SLOTS + slot).into(),
        deadline: U256::from(now + 120),
        witness: Witness {
            to,
            validAfter: U256::ZERO,
        },
    };
    let settle = async |p: &PermitWitnessTransferFrom, signature: Bytes| {
        x402_proxy::X402ExactPermit2Proxy::new(X402_PERMIT2_PROXY, &w.provider)
            .settle(
                x402_proxy::Permit2::PermitTransferFrom {
                    permitted: x402_proxy::Permit2::TokenPermissions {
                        token: w.token,
                        amount: p.permitted.amount,
                    },
                    nonce: p.nonce,
                    deadline: p.deadline,
                },
                w.wallet,
                x402_proxy::X402ExactPermit2Proxy::Witness {
                    to: p.witness.to,
                    validAfter: U256::ZERO,
                },
                signature,
            )
            .send()
            .await
            .unwrap()
            .watch()
            .await
            .unwrap();
    };
    let approved_permit = permit(merchant, 20, 0);
    let request = signed_cosign(
        &w.agent,
        chain_id,
        w.wallet,
        Payment::Permit2(Permit2Payment {
            message: approved_permit.clone(),
        }),
    );
    let response = alloy::transports::http::reqwest::Client::new()
        .post(format!("{}/v1/cosign", w.url))
        .header("content-type", "application/json")
        .body(serde_json::to_string(&request).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let answer: serde_json::Value = response.json().await.unwrap();
    let cosig: Bytes = answer["cosigner_signature"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    settle(
        &approved_permit,
        approved_permit.wallet_signature(&request.agent_signature, &cosig),
    )
    .await;
    let stolen_permit = permit(thief, 80, 1);
    let message = AgentMessage {
        hash: stolen_permit.hash(chain_id),
    }
    .digest(chain_id, w.wallet);
    settle(
        &stolen_permit,
        stolen_permit.wallet_signature(&sign(&w.agent, &message), &sign(&w.cosigner, &message)),
    )
    .await;
    assert_eq!(
        token.balanceOf(thief).call().await.unwrap(),
        U256::from(90 + 80),
        "both token attacks paid"
    );

    // One indexer pass, notifying through a webhook (the delivery row is what is checked).
    let webhook = Webhook {
        url: "http://127.0.0.1:9/unused".into(),
        secret: b"secret".to_vec(),
        format: WebhookFormat::Json,
        console_url: "https://console.example".into(),
    };
    let notifier = std::sync::Arc::new(Notifier::new(w.store.clone(), webhook));
    let mut indexer =
        Indexer::new(w.provider.clone(), w.store.clone(), None, 0, 0).with_notifier(notifier);
    let report = indexer.tick().await.unwrap();
    assert_eq!(report.unauthorized, 4, "{report:?}");

    // The API: both attacks, and neither approved payment.
    let router = app(AppState::new(w.store.clone(), w.cosigner.clone(), chain_id));
    for (name, role, secret) in [
        ("ops", "admin", "admin-secret"),
        ("carol", "auditor", "auditor-secret"),
        ("alice", "approver", "approver-secret"),
    ] {
        w.store
            .add_api_token(token_hash(secret), name, role, now)
            .await
            .unwrap();
    }
    let (status, list) = call(
        &router,
        "GET",
        "/v1/unauthorized-spends",
        Some("auditor-secret"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["open"], 4, "{list}");
    let items = list["items"].as_array().unwrap();
    let seen: Vec<(&str, &str, &str)> = items
        .iter()
        .map(|i| {
            (
                i["kind"].as_str().unwrap(),
                i["nonce"].as_str().unwrap(),
                i["contract"].as_str().unwrap(),
            )
        })
        .collect();
    // JSON carries addresses in lower case; pages and links are checksummed.
    let (wallet, token_address) = (
        w.wallet.to_string().to_lowercase(),
        w.token.to_string().to_lowercase(),
    );
    let checksummed = w.wallet.to_string();
    let drained_nonce = drained.nonce.to_string();
    let permit2_nonce = B256::from(stolen_permit.nonce).to_string();
    let permit2_address = chaperone_core::PERMIT2.to_string().to_lowercase();
    assert_eq!(
        seen,
        [
            ("permit2", permit2_nonce.as_str(), permit2_address.as_str()),
            ("execute", "2", wallet.as_str()),
            ("eip3009", drained_nonce.as_str(), token_address.as_str()),
            ("execute", "1", wallet.as_str()),
        ],
        "newest first: the stolen Permit2 payment (found at the head), the swapped calls, the \
         stolen authorization, the stolen execute; no approved payment"
    );
    let (status, _) = call(
        &router,
        "GET",
        "/v1/unauthorized-spends",
        Some("approver-secret"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "approvers do not audit");

    // The metric.
    let (_, metrics, _, _) = call_text(&router, "/metrics", "admin-secret").await;
    assert!(
        metrics.contains("chaperone_unauthorized_spends 4"),
        "{metrics}"
    );

    // The webhook: one `unauthorized_spend` delivery per spend, linking to the freeze page.
    let deliveries = w.store.webhook_log(10).await.unwrap();
    let alerts: Vec<serde_json::Value> = deliveries
        .iter()
        .filter(|d| d.event == "unauthorized_spend")
        .map(|d| serde_json::from_str(&d.payload).unwrap())
        .collect();
    assert_eq!(alerts.len(), 4, "{deliveries:?}");
    assert!(alerts.iter().all(|a| a["wallet"] == wallet
        && a["console_url"]
            == format!("https://console.example/alerts/freeze#wallet-{checksummed}")));

    // The console: a banner on every page, one click from the freeze instructions.
    let cookie = login(&router, "approver-secret").await;
    for page in ["/approvals", "/policies"] {
        let (status, _, html) = get_with_cookie(&router, page, &cookie).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(
            html.contains("class=\"alert-banner\"") && html.contains("href=\"/alerts/freeze\""),
            "{page}: {html}"
        );
    }
    // The command as the page shows it (maud escapes its quotes as `&quot;`).
    let (status, _, freeze) = get_with_cookie(&router, "/alerts/freeze", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        freeze.contains(&format!(
            "cast send {checksummed} &quot;freeze()&quot; --rpc-url &quot;$RPC_URL&quot;"
        )) && freeze.contains("setCosigner(address)"),
        "{freeze}"
    );

    // Indexing the same blocks again finds nothing new: one alert per outflow.
    let events = w.store.chain_events(None, 1_000).await.unwrap();
    let head = w.store.indexed_head().await.unwrap().unwrap();
    let again = w
        .store
        .index_blocks(&[head], &events, Some(now))
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");

    // An admin acknowledges both; the banner and the gauge clear.
    for item in items {
        let uri = format!("/v1/unauthorized-spends/{}/acknowledge", item["id"]);
        let (status, body) = call(&router, "POST", &uri, Some("auditor-secret"), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let (status, body) = call(&router, "POST", &uri, Some("admin-secret"), None).await;
        assert_eq!(
            (status, body["acknowledged_by"].as_str()),
            (StatusCode::OK, Some("ops")),
            "{body}"
        );
    }
    let (status, body) = call(
        &router,
        "POST",
        "/v1/unauthorized-spends/999/acknowledge",
        Some("admin-secret"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (_, metrics, _, _) = call_text(&router, "/metrics", "admin-secret").await;
    assert!(
        metrics.contains("chaperone_unauthorized_spends 0"),
        "{metrics}"
    );
    let (_, _, html) = get_with_cookie(&router, "/approvals", &cookie).await;
    assert!(!html.contains("alert-banner"), "{html}");
}

//! Reconciliation against attacker B, who holds the agent key and the co-signer key: spends
//! signed with both keys and sent straight to the chain (an `execute`, the same nonce as an
//! approved one with other calls, directly or through a relay contract; an EIP-3009
//! authorization and an x402 Permit2 payment through EIP-1271, new or reusing an approved
//! nonce for another payment), never asked of the service, are found in one indexer pass and
//! shown everywhere an operator looks (API, metric, webhook, console banner); the payments the
//! service approved raise nothing.

use alloy::{
    primitives::{Address, B256, Bytes, U256},
    providers::Provider,
    sol_types::SolCall,
};
use axum::http::StatusCode;
use chaperone_chain::{AgentWallet, MULTICALL3, Multicall3, install_x402_contracts};
use chaperone_core::{PERMIT2, authorization_nonce};
use chaperone_server::{AppState, Notifier, Webhook, WebhookFormat, app, token_hash};
use chaperone_store::PaymentState;
use serde_json::json;

use super::{ETHER, World, native, to_contract, world};
use crate::{call, call_text, get_with_cookie, login};

const MERCHANT: Address = Address::repeat_byte(0x42);
const THIEF: Address = Address::repeat_byte(0x66);

/// A world whose wallet also pays x402 authorizations: the x402 contracts installed, a token
/// budget of 5 EIP-3009 and 5 Permit2 authorizations of at most 100, and a policy that lets
/// the service co-sign them.
async fn paying_world() -> World {
    let w = world().await;
    install_x402_contracts(&w.provider).await.unwrap();
    w.set_authorization_budget(100, 5, 5).await;
    w.set_policy(json!({
        "version": 2,
        "chains": [w.chain_id],
        "limits": [
            { "token": "native", "per_transaction": ETHER.to_string() },
            { "token": w.token.to_string(), "per_transaction": "100" },
        ],
        "typed_data": [
            { "primary_type": "TransferWithAuthorization", "verifying_contract": w.token.to_string() },
            { "primary_type": "PermitWitnessTransferFrom",
              "verifying_contract": PERMIT2.to_string() },
        ],
    }))
    .await;
    w
}

/// The stored unauthorized spends, oldest first, as (kind, nonce, reason).
async fn spends(w: &World) -> Vec<(String, String, String)> {
    let mut all = w.store.unauthorized_spends(false, 100).await.unwrap();
    all.reverse();
    all.into_iter()
        .map(|s| (s.kind, s.nonce, s.reason))
        .collect()
}

fn spend(kind: &str, nonce: impl ToString, reason: &str) -> (String, String, String) {
    (kind.into(), nonce.to_string(), reason.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacker_b_spending_without_the_service_is_alerted_within_one_indexer_pass() {
    let w = paying_world().await;
    let (now, period) = w.head_time().await;

    // 1. An approved execute: asked of the service, co-signed, executed.
    w.execute_approved(&w.execute(vec![native(MERCHANT, ETHER / 4)], 0))
        .await;
    // 2. An approved EIP-3009 authorization: co-signed by the service, used by the merchant.
    w.pay_eip3009_approved(&w.eip3009(MERCHANT, 30, now + 120, authorization_nonce(period, 0)))
        .await;
    // 3. Attacker B: an execute signed with both keys, sent without asking the service.
    let stolen = w.execute(vec![native(THIEF, ETHER / 2)], 1);
    let (agent, cosigner) = w.both_keys_sign(stolen.digest(w.chain_id, w.wallet));
    w.send_execute(&stolen, agent, cosigner).await;
    // 4. Attacker B: an EIP-3009 authorization the wallet signs through EIP-1271.
    let drained = w.eip3009(THIEF, 90, now + 120, authorization_nonce(period, 1));
    w.pay_eip3009_stolen(&drained).await;
    assert_eq!(
        w.token_balance(THIEF).await,
        U256::from(90),
        "the attack paid: only the backstop bounds attacker B"
    );
    // 5. Attacker B: the service approved nonce 2 for a small payment; before the agent uses
    // it, the attacker spends nonce 2 on other calls. The nonce matches an approved decision,
    // what moved does not.
    let (status, body) = w
        .cosign(&w.execute(vec![native(MERCHANT, ETHER / 10)], 2))
        .await;
    assert_eq!(status, 200, "{body}");
    let swapped = w.execute(vec![native(THIEF, ETHER / 2)], 2);
    let (agent, cosigner) = w.both_keys_sign(swapped.digest(w.chain_id, w.wallet));
    w.send_execute(&swapped, agent, cosigner).await;
    // 6. Attacker B, and an approved payment, through x402's Permit2 proxy (no event).
    let approved_permit = w.permit(MERCHANT, 20, period, 0, now + 120);
    let signature = w.permit2_approved(&approved_permit).await;
    w.settle_permit2(&approved_permit, signature).await;
    let stolen_permit = w.permit(THIEF, 80, period, 1, now + 120);
    w.settle_permit2(&stolen_permit, w.permit2_stolen(&stolen_permit))
        .await;
    assert_eq!(
        w.token_balance(THIEF).await,
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
    let mut indexer = w.indexer().with_notifier(notifier);
    let report = indexer.tick().await.unwrap();
    assert_eq!(report.unauthorized, 4, "{report:?}");

    // The API: both attacks, and neither approved payment.
    let router = app(AppState::new(
        w.store.clone(),
        w.cosigner.clone(),
        w.chain_id,
    ));
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
    let seen: Vec<(&str, &str, &str, &str)> = items
        .iter()
        .map(|i| {
            (
                i["kind"].as_str().unwrap(),
                i["nonce"].as_str().unwrap(),
                i["contract"].as_str().unwrap(),
                i["reason"].as_str().unwrap(),
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
    let permit2_address = PERMIT2.to_string().to_lowercase();
    assert_eq!(
        seen,
        [
            (
                "permit2",
                permit2_nonce.as_str(),
                permit2_address.as_str(),
                "no_decision"
            ),
            ("execute", "2", wallet.as_str(), "other_payment"),
            (
                "eip3009",
                drained_nonce.as_str(),
                token_address.as_str(),
                "no_decision"
            ),
            ("execute", "1", wallet.as_str(), "no_decision"),
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

    // The webhook: one `unauthorized_spend` delivery per spend, with its reason, linking to the
    // freeze page.
    let deliveries = w.store.webhook_log(10).await.unwrap();
    let alerts: Vec<serde_json::Value> = deliveries
        .iter()
        .filter(|d| d.event == "unauthorized_spend")
        .map(|d| serde_json::from_str(&d.payload).unwrap())
        .collect();
    assert_eq!(alerts.len(), 4, "{deliveries:?}");
    assert!(alerts.iter().all(|a| a["wallet"] == wallet
        && a["reason"].is_string()
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

/// H1 of the red-team review of issue 29: the service approved nonce 0 for a tiny payment;
/// attacker B spends nonce 0 on other calls through a relay contract (here Multicall3), so the
/// transaction's calldata is not the wallet's. `Executed` names the digest of what ran, which
/// no approved decision has: alerted, and the tiny payment is not shown as settled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacker_b_spending_an_approved_nonce_through_a_relay_is_alerted() {
    let w = paying_world().await;
    let tiny = w.execute(vec![native(MERCHANT, 1_000)], 0);
    let (_, tiny_cosignature) = w
        .cosigned(chaperone_api::Payment::Execute(tiny.clone()))
        .await;
    let tiny_id = tiny.digest(w.chain_id, w.wallet);

    let swapped = w.execute(vec![native(THIEF, ETHER / 2)], 0);
    let (agent, cosigner) = w.both_keys_sign(swapped.digest(w.chain_id, w.wallet));
    let execute = AgentWallet::executeCall {
        calls: to_contract(&swapped.calls),
        nonce: swapped.nonce,
        validUntil: swapped.validUntil,
        agentSignature: agent,
        cosignerSignature: cosigner,
    };
    Multicall3::new(MULTICALL3, &w.provider)
        .aggregate3(vec![Multicall3::Call3 {
            target: w.wallet,
            allowFailure: false,
            callData: Bytes::from(execute.abi_encode()),
        }])
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    assert_eq!(
        w.provider.get_balance(THIEF).await.unwrap(),
        U256::from(ETHER / 2),
        "the relayed execute paid the thief"
    );

    let report = w.indexer().tick().await.unwrap();
    assert_eq!(report.unauthorized, 1, "{report:?}");
    assert_eq!(spends(&w).await, [spend("execute", 0, "other_payment")]);
    let ledger = w.ledger().await;
    assert_eq!(
        ledger
            .iter()
            .find(|r| r.request_id == tiny_id)
            .unwrap()
            .state,
        PaymentState::Reserved,
        "the tiny payment never ran: not settled (released once it expires)"
    );
    // The tiny payment's co-signature can no longer be used: its nonce is spent.
    let err = AgentWallet::new(w.wallet, &w.provider)
        .execute(
            to_contract(&tiny.calls),
            tiny.nonce,
            tiny.validUntil,
            w.agent_signature(&tiny),
            tiny_cosignature,
        )
        .call()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.as_decoded_interface_error::<AgentWallet::AgentWalletErrors>(),
            Some(AgentWallet::AgentWalletErrors::InvalidNonce(_))
        ),
        "{err}"
    );
}

/// H2 of the red-team review of issue 29: `AuthorizationUsed` and Permit2's bitmap carry no
/// amount or recipient. Attacker B reuses the nonce of an approved authorization to pay itself
/// (EIP-3009 and Permit2), or pays an approved transfer once its approval has expired: the
/// token's `Transfer` from the wallet gives each away. Honest payments raise nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacker_b_reusing_an_approved_authorization_nonce_is_alerted() {
    let w = paying_world().await;
    let (now, period) = w.head_time().await;

    // EIP-3009: approved to pay the merchant 30 with slot 0; attacker B pays itself 90 with it.
    let approved = w.eip3009(MERCHANT, 30, now + 120, authorization_nonce(period, 0));
    w.cosigned(w.eip3009_payment(&approved).await).await;
    let reused = w.eip3009(THIEF, 90, now + 120, approved.nonce);
    w.pay_eip3009_stolen(&reused).await;
    // Permit2: approved to pay the merchant 20 with its slot 0; attacker B pays itself 80.
    let approved_permit = w.permit(MERCHANT, 20, period, 0, now + 120);
    w.permit2_approved(&approved_permit).await;
    let reused_permit = w.permit(THIEF, 80, period, 0, now + 120);
    w.settle_permit2(&reused_permit, w.permit2_stolen(&reused_permit))
        .await;
    assert_eq!(w.token_balance(THIEF).await, U256::from(90 + 80));
    // Honest payments of both methods.
    w.pay_eip3009_approved(&w.eip3009(MERCHANT, 5, now + 120, authorization_nonce(period, 1)))
        .await;
    let honest_permit = w.permit(MERCHANT, 7, period, 1, now + 120);
    let signature = w.permit2_approved(&honest_permit).await;
    w.settle_permit2(&honest_permit, signature).await;
    // EIP-3009: approved to pay the merchant 10 until now + 30 with slot 2; once that has
    // passed, attacker B makes the same payment with a later validBefore.
    let expiring = w.eip3009(MERCHANT, 10, now + 30, authorization_nonce(period, 2));
    w.cosigned(w.eip3009_payment(&expiring).await).await;
    w.mine_at(now + 40).await;
    w.pay_eip3009_stolen(&w.eip3009(MERCHANT, 10, now + 120, expiring.nonce))
        .await;
    w.mine_at(now + 60).await;

    let report = w.indexer().tick().await.unwrap();
    assert_eq!(report.unauthorized, 3, "{report:?}");
    assert_eq!(
        spends(&w).await,
        [
            spend("eip3009", approved.nonce, "other_payment"),
            spend("eip3009", expiring.nonce, "outside_validity"),
            // Permit2 is read at the newest block: found last.
            spend(
                "permit2",
                B256::from(approved_permit.nonce),
                "other_payment"
            ),
        ]
    );
    // The ledger: the honest payments settled, each with the transaction that paid it; the
    // EIP-3009 approvals whose nonce paid something else never happened. The reused Permit2
    // nonce keeps its approval's spend counted (settled from Permit2's bitmap, where no
    // transfer names it): an agent must not be able to free window budget by routing a
    // payment where its transfer cannot be paired. The ledger shows it misused, not settled
    // (red team rt29 F3); the honest Permit2 payment pairs with the transfer the x402 proxy
    // made (its `Settled` read from the transaction's receipt, F5).
    let rows = w.ledger().await;
    let ledger: Vec<(U256, PaymentState, bool)> = rows
        .iter()
        .map(|r| {
            let tx = r.settlement.is_some_and(|s| s.tx.is_some());
            (r.amount, r.state, tx)
        })
        .collect();
    use PaymentState::{Expired, Misused, Reserved, Settled};
    assert_eq!(
        ledger,
        [
            (U256::from(10), Expired, false),
            (U256::from(7), Settled, true),
            (U256::from(5), Settled, true),
            (U256::from(20), Misused, false),
            (U256::from(30), Reserved, false),
        ],
        "newest first: {rows:?}"
    );
}

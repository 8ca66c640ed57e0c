use axum::http::StatusCode;
use chaperone_api::{Payment, PaymentAuthorization, Permit2Payment};
use chaperone_core::{Address, B256, Bytes, Call, Execute, U256, policy::Token, recover_low_s};
use chaperone_testkit::{sign, signed_cosign_json};
use serde_json::json;

use crate::{
    ADMIN, APPROVER, NOW, Service, TestAgent, admin::policy_json, call, call_text, service,
};

async fn ready() -> Service {
    ready_on(service().await).await
}

/// `s` with its wallet registered under the test policy.
pub async fn ready_on(s: Service) -> Service {
    register_wallet(&s).await;
    let uri = format!("/v1/admin/wallets/{}/policy", s.wallet);
    call(&s.router, "PUT", &uri, Some(ADMIN), Some(policy_json(1))).await;
    s
}

/// Registers `s`'s wallet and agent, with no policy yet.
pub async fn register_wallet(s: &Service) {
    let wallet =
        json!({ "address": s.wallet, "chain_id": 31337, "agent": s.agent.address() }).to_string();
    let (status, body) = call(
        &s.router,
        "POST",
        "/v1/admin/wallets",
        Some(ADMIN),
        Some(wallet),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

fn execute(value: u64, nonce: u64) -> Execute {
    Execute {
        calls: vec![Call {
            to: Address::repeat_byte(0xb0),
            value: U256::from(value),
            data: Bytes::new(),
        }],
        nonce: U256::from(nonce),
        validUntil: NOW + 60,
    }
}

/// The co-sign body of `e`, signed by `s`'s agent.
fn body(s: &Service, e: &Execute) -> serde_json::Value {
    signed_cosign_json(&s.agent, 31337, s.wallet, Payment::Execute(e.clone()))
}

/// Asks for a co-signature of a `value` transfer with `nonce`.
pub async fn request(s: &Service, value: u64, nonce: u64) -> (StatusCode, serde_json::Value) {
    cosign(s, &body(s, &execute(value, nonce))).await
}

async fn cosign(s: &Service, body: &serde_json::Value) -> (StatusCode, serde_json::Value) {
    call(
        &s.router,
        "POST",
        "/v1/cosign",
        None,
        Some(body.to_string()),
    )
    .await
}

#[tokio::test]
async fn approved_request_gets_a_valid_cosignature_once() {
    let s = ready().await;
    let e = execute(400, 0);
    let (status, response) = cosign(&s, &body(&s, &e)).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    let sig: Bytes = response["cosigner_signature"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let sig = chaperone_core::Signature::from_raw(&sig).unwrap();
    assert_eq!(
        recover_low_s(&sig, &e.digest(31337, s.wallet)).unwrap(),
        s.cosigner.address()
    );

    // The same request again: same answer, reserved once.
    let (status, again) = cosign(&s, &body(&s, &e)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["replayed"], true);
    assert_eq!(again["cosigner_signature"], response["cosigner_signature"]);
    assert_eq!(
        s.store
            .committed_spend(s.wallet, Token::Native)
            .await
            .unwrap()
            .0,
        U256::from(400)
    );
}

#[tokio::test]
async fn denied_and_pending_requests_get_403_and_202_with_reasons() {
    let s = ready().await;
    let (status, response) = cosign(&s, &body(&s, &execute(1001, 0))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{response}");
    assert_eq!(response["outcome"], "denied");
    assert_eq!(response["reasons"][0]["code"], "per_transaction_cap");
    assert_eq!(
        response["reasons_text"][0],
        "0.000000000000001001 ETH is over the per-payment cap of 0.000000000000001 ETH"
    );
    assert!(response["cosigner_signature"].is_null());

    let pending = execute(600, 1);
    let (status, response) = cosign(&s, &body(&s, &pending)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{response}");
    assert_eq!(response["reasons"][0]["code"], "needs_human_approval");

    // An approver approves; the agent asks again and gets the co-signature.
    let id = response["request_id"].as_str().unwrap().to_owned();
    let (status, list) = call(
        &s.router,
        "GET",
        "/v1/admin/approvals",
        Some(APPROVER),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["pending"][0]["request_id"], id.as_str());
    let (status, csv, content_type, _) =
        call_text(&s.router, "/v1/admin/approvals?format=csv", APPROVER).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("text/csv; charset=utf-8"));
    assert_eq!(
        csv.lines().collect::<Vec<_>>(),
        [
            "request_id,wallet,expires_at,expires_at_iso".to_owned(),
            format!(
                "{id},{},{},{}",
                s.wallet.to_string().to_lowercase(),
                NOW + 600,
                chaperone_core::readable::iso8601(NOW + 600)
            )
        ]
    );
    let (status, _, _, _) = call_text(&s.router, "/v1/admin/approvals?limit=5", APPROVER).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the approvals are not paginated"
    );
    let (status, _) = call(
        &s.router,
        "POST",
        &format!("/v1/admin/approvals/{id}/approve"),
        Some(APPROVER),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, response) = cosign(&s, &body(&s, &pending)).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    assert!(response["cosigner_signature"].is_string());
}

#[tokio::test]
async fn bad_input_gets_a_precise_4xx_and_writes_nothing() {
    let s = ready().await;
    let good = body(&s, &execute(1, 0));
    let expect = |status: StatusCode, code: &str, got: (StatusCode, serde_json::Value)| {
        assert_eq!(
            (got.0, got.1["error"]["code"].as_str()),
            (status, Some(code)),
            "{}",
            got.1
        );
    };

    let mut wrong_chain = good.clone();
    wrong_chain["chain_id"] = json!(1);
    expect(
        StatusCode::BAD_REQUEST,
        "wrong_chain_id",
        cosign(&s, &wrong_chain).await,
    );

    let mut unknown_field = good.clone();
    unknown_field["extra"] = json!(true);
    expect(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        cosign(&s, &unknown_field).await,
    );
    // Unknown fields inside the request are refused as well: inside `execute`, inside a call,
    // inside an authorization's domain and message.
    let mut in_execute = good.clone();
    in_execute["execute"]["extra"] = json!(true);
    let mut in_call = good.clone();
    in_call["execute"]["calls"][0]["gas"] = json!(1);
    for nested in [in_execute, in_call] {
        expect(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            cosign(&s, &nested).await,
        );
    }
    for (part, field) in [("domain", "salt"), ("message", "memo")] {
        let mut authorization = json!({
            "chain_id": 31337,
            "wallet": good["wallet"],
            "authorization": {
                "domain": { "name": "USD Coin", "version": "2", "chain_id": 31337,
                            "verifying_contract": Address::repeat_byte(0x70) },
                "message": { "from": good["wallet"], "to": Address::repeat_byte(0xb0),
                             "value": "1", "validAfter": "0", "validBefore": "1",
                             "nonce": B256::ZERO },
            },
            "agent_signature": good["agent_signature"],
        });
        authorization["authorization"][part][field] = json!("x");
        expect(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            cosign(&s, &authorization).await,
        );
    }

    expect(
        StatusCode::BAD_REQUEST,
        "invalid_json",
        call(
            &s.router,
            "POST",
            "/v1/cosign",
            None,
            Some("{not json".into()),
        )
        .await,
    );

    let mut expired = execute(1, 0);
    expired.validUntil = NOW;
    expect(
        StatusCode::BAD_REQUEST,
        "expired",
        cosign(&s, &body(&s, &expired)).await,
    );

    let mut forged = good.clone();
    let mallory = chaperone_core::Secp256k1Signer::random().unwrap();
    forged["agent_signature"] = json!(sign(&mallory, &execute(1, 0).digest(31337, s.wallet)));
    expect(
        StatusCode::UNAUTHORIZED,
        "bad_signature",
        cosign(&s, &forged).await,
    );

    let mut short_sig = good.clone();
    short_sig["agent_signature"] = json!("0x1234");
    expect(
        StatusCode::BAD_REQUEST,
        "malformed_signature",
        cosign(&s, &short_sig).await,
    );

    let mut unknown_wallet = good.clone();
    unknown_wallet["wallet"] = json!(Address::repeat_byte(0x99));
    expect(
        StatusCode::NOT_FOUND,
        "unknown_wallet",
        cosign(&s, &unknown_wallet).await,
    );

    let huge = "x".repeat(chaperone_server::MAX_BODY_BYTES + 1);
    expect(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        call(
            &s.router,
            "POST",
            "/v1/cosign",
            None,
            Some(format!("{{\"pad\":\"{huge}\"}}")),
        )
        .await,
    );

    // None of it reserved or recorded anything.
    assert_eq!(
        s.store
            .committed_spend(s.wallet, Token::Native)
            .await
            .unwrap()
            .0,
        U256::ZERO
    );
    let (status, _) = cosign(&s, &good).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn shadow_mode_decides_and_records_but_never_signs() {
    let s = ready().await;
    let uri = format!("/v1/admin/wallets/{}/policy", s.wallet);
    let mut shadow: serde_json::Value = serde_json::from_str(&policy_json(2)).unwrap();
    shadow["mode"] = json!("shadow");
    let (status, _) = call(
        &s.router,
        "PUT",
        &uri,
        Some(ADMIN),
        Some(shadow.to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, response) = cosign(&s, &body(&s, &execute(10, 0))).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    assert_eq!(response["outcome"], "approved");
    assert!(response["cosigner_signature"].is_null());
    assert_eq!(response["reasons"][0]["code"], "shadow_mode");
    assert_eq!(response["policy_version"], 2);
}

/// One wallet flooded with far more concurrent requests than it may have in flight: the excess
/// gets 429 with `Retry-After` before touching the database, never a 500, and the requests that
/// were served decided exactly as the limits say.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flooded_wallet_gets_429_with_retry_after_never_a_500() {
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let s = ready().await;
    let bodies: Vec<String> = (0..300u64)
        .map(|nonce| body(&s, &execute(1, nonce)).to_string())
        .collect();
    let handles: Vec<_> = bodies
        .into_iter()
        .map(|b| {
            let router = s.router.clone();
            tokio::spawn(async move {
                let request = axum::http::Request::builder()
                    .method("POST")
                    .uri("/v1/cosign")
                    .header("content-type", "application/json")
                    .body(Body::from(b))
                    .unwrap();
                let response = router.oneshot(request).await.unwrap();
                let status = response.status();
                let retry_after = response.headers().get("retry-after").cloned();
                response.into_body().collect().await.unwrap();
                (status, retry_after)
            })
        })
        .collect();
    let (mut served, mut busy) = (0, 0);
    for h in handles {
        let (status, retry_after) = h.await.unwrap();
        match status {
            StatusCode::OK | StatusCode::FORBIDDEN => served += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                busy += 1;
                assert_eq!(retry_after.unwrap(), "1", "429 says when to come back");
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(served + busy, 300);
    assert!(
        served >= chaperone_server::MAX_INFLIGHT_PER_WALLET,
        "{served} served"
    );
    assert!(busy > 0, "the excess was refused, not queued");
    // The in-flight places were all given back: the wallet is served again.
    assert_eq!(request(&s, 1, 10_000).await.0, StatusCode::OK);
}

/// The policy's rate limit holds before the wallet's lock is taken: requests over it get 429
/// with `Retry-After` and are not written as decisions (before, each took the lock and was
/// written as a denial). Requests the agent did not sign never count against it.
#[tokio::test]
async fn the_rate_limit_refuses_before_the_database_and_writes_nothing() {
    for s in crate::services().await {
        register_wallet(&s).await;
        let policy = json!({
            "version": 1,
            "chains": [31337],
            "limits": [{ "token": "native", "per_transaction": "1000" }],
            "rate_limit": { "max_requests": 3, "window": "1m" },
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
        assert!(status.is_success(), "{body}");
        // Junk naming the wallet, not signed by its agent, uses none of its rate.
        let stranger = chaperone_core::Secp256k1Signer::random().unwrap();
        for nonce in 100..110 {
            let junk = signed_cosign_json(
                &stranger,
                31337,
                s.wallet,
                Payment::Execute(execute(1, nonce)),
            );
            assert_eq!(cosign(&s, &junk).await.0, StatusCode::UNAUTHORIZED);
        }
        for nonce in 0..3 {
            assert_eq!(request(&s, 1, nonce).await.0, StatusCode::OK);
        }
        for nonce in 3..6 {
            let (status, body) = request(&s, 1, nonce).await;
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
            assert_eq!(body["error"]["code"], "busy");
        }
        let (status, body) = call(
            &s.router,
            "GET",
            &format!("/v1/decisions?wallet={}", s.wallet),
            Some(ADMIN),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body["items"].as_array().unwrap().len(),
            3,
            "refused requests wrote no decision"
        );
    }
}

/// x402 pays three ways beside `execute`: EIP-3009 transfer and receive authorizations and
/// Permit2 witness transfers. Each is one more spend of the same token in the same window, so
/// splitting payments across methods buys nothing; a Permit2 message naming another spender
/// (which could send the tokens anywhere) is refused.
#[tokio::test]
async fn x402_payments_of_every_method_share_the_token_window_with_execute() {
    use alloy::sol_types::SolCall;
    use chaperone_core::{
        Eip3009Kind, PERMIT2, PermitWitnessTransferFrom, TokenDomain, TokenPermissions,
        TransferWithAuthorization, Witness, X402_PERMIT2_PROXY,
    };
    let s = service().await;
    register_wallet(&s).await;
    let token = Address::repeat_byte(0x70);
    let policy = json!({
        "version": 1,
        "chains": [31337],
        "limits": [{ "token": token, "per_transaction": "100", "windows": [{ "window": "24h", "max": "250" }] }],
        "typed_data": [
            { "primary_type": "TransferWithAuthorization", "verifying_contract": token },
            { "primary_type": "ReceiveWithAuthorization", "verifying_contract": token },
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
    let merchant = Address::repeat_byte(0x77);
    let domain = TokenDomain {
        name: "USD Coin".into(),
        version: "2".into(),
        chain_id: 31337,
        verifying_contract: token,
    };
    let eip3009 = |kind: Eip3009Kind, value: u64, nonce: u8| {
        let message = TransferWithAuthorization {
            from: s.wallet,
            to: merchant,
            value: U256::from(value),
            validAfter: U256::ZERO,
            validBefore: U256::from(NOW + 60),
            nonce: B256::repeat_byte(nonce),
        };
        let authorization = PaymentAuthorization {
            primary_type: kind,
            domain: domain.clone(),
            message,
        };
        signed_cosign_json(&s.agent, 31337, s.wallet, Payment::Eip3009(authorization))
    };
    let permit2 = |spender: Address, amount: u64, nonce: u64| {
        let message = PermitWitnessTransferFrom {
            permitted: TokenPermissions {
                token,
                amount: U256::from(amount),
            },
            spender,
            nonce: U256::from(nonce),
            deadline: U256::from(NOW + 60),
            witness: Witness {
                to: merchant,
                validAfter: U256::ZERO,
            },
        };
        signed_cosign_json(
            &s.agent,
            31337,
            s.wallet,
            Payment::Permit2(Permit2Payment { message }),
        )
    };
    let transfer = Execute {
        calls: vec![Call {
            to: token,
            value: U256::ZERO,
            data: chaperone_chain::TestToken::transferCall {
                to: merchant,
                value: U256::from(100),
            }
            .abi_encode()
            .into(),
        }],
        nonce: U256::ZERO,
        validUntil: NOW + 60,
    };

    let (status, answer) = cosign(&s, &permit2(Address::repeat_byte(0x66), 10, 1)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "another spender: {answer}");
    assert_eq!(
        answer["reasons"][0]["code"], "malformed_typed_data",
        "{answer}"
    );

    for (what, request) in [
        ("execute", body(&s, &transfer)),
        (
            "receive",
            eip3009(Eip3009Kind::ReceiveWithAuthorization, 100, 1),
        ),
        ("permit2", permit2(X402_PERMIT2_PROXY, 50, 2)),
    ] {
        let (status, answer) = cosign(&s, &request).await;
        assert_eq!(status, StatusCode::OK, "{what}: {answer}");
    }
    let (status, answer) = cosign(&s, &eip3009(Eip3009Kind::TransferWithAuthorization, 1, 3)).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the window is spent: {answer}"
    );
    assert_eq!(answer["reasons"][0]["code"], "window_cap", "{answer}");
    let committed = s
        .store
        .committed_spend(s.wallet, Token::Erc20(token))
        .await
        .unwrap();
    assert_eq!(committed.0, U256::from(250));
}

/// The agent binds an approved payment to the model call it was made in, once, and only to
/// its own call, logged while the co-signature was valid.
#[tokio::test]
async fn a_payment_is_bound_to_its_call_once_by_the_agent() {
    use chaperone_core::PaymentCall;
    let s = ready().await;
    let (status, body) = request(&s, 10, 0).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id: B256 = body["request_id"].as_str().unwrap().parse().unwrap();
    let valid_until = execute(10, 0).validUntil;
    let bind = |leaf: B256, signer: &chaperone_core::Secp256k1Signer| {
        let digest = PaymentCall {
            request: id,
            call: leaf,
        }
        .digest(31337, s.wallet);
        json!({ "leaf_hash": leaf, "agent_signature": sign(signer, &digest) }).to_string()
    };
    let uri = format!("/v1/decisions/{id}/call");
    let mut agent = TestAgent {
        key: s.agent.clone(),
        ..TestAgent::new()
    };
    let mut stranger = TestAgent::registered(&s.store).await;
    let late = agent.batch(1, "logged after the co-signature expired");
    let [late_leaf] = late.verify().unwrap()[..] else {
        panic!("one record")
    };
    s.store
        .append_batch(&late, &[late_leaf], (valid_until + 1) * 1000, &[])
        .await
        .unwrap();
    let mut logged = Vec::new();
    for batch in [
        agent.batch(1, "the call"),
        stranger.batch(1, "another agent's call"),
    ] {
        let (status, body) = call(
            &s.router,
            "POST",
            "/v1/records",
            None,
            Some(serde_json::to_string(&batch).unwrap()),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        logged.push(batch.verify().unwrap()[0]);
    }
    let (leaf, strangers_leaf) = (logged[0], logged[1]);

    let (status, _) = call(
        &s.router,
        "POST",
        &uri,
        None,
        Some(bind(leaf, &stranger.key)),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "not the agent");
    // The attacks: a leaf hash that is in no log, another agent's call, a call logged after the
    // co-signature expired. Each was bound before.
    for (what, target, status, code) in [
        (
            "a made-up leaf",
            B256::repeat_byte(0x1e),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_call",
        ),
        (
            "another agent's call",
            strangers_leaf,
            StatusCode::FORBIDDEN,
            "not_your_call",
        ),
        (
            "a call outside the validity",
            late_leaf,
            StatusCode::UNPROCESSABLE_ENTITY,
            "call_outside_validity",
        ),
    ] {
        let (got, body) = call(&s.router, "POST", &uri, None, Some(bind(target, &s.agent))).await;
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{what}: {body}"
        );
    }
    let (status, body) = call(&s.router, "POST", &uri, None, Some(bind(leaf, &s.agent))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["call_leaf_hash"], json!(leaf));
    let (status, _) = call(&s.router, "POST", &uri, None, Some(bind(leaf, &s.agent))).await;
    assert_eq!(status, StatusCode::OK, "the same binding again is a no-op");
    let other = agent.batch(1, "a second call");
    let (status, _) = call(
        &s.router,
        "POST",
        "/v1/records",
        None,
        Some(serde_json::to_string(&other).unwrap()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let other = other.verify().unwrap()[0];
    let (status, body) = call(&s.router, "POST", &uri, None, Some(bind(other, &s.agent))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let unknown = format!("/v1/decisions/{}/call", B256::repeat_byte(9));
    let (status, _) = call(
        &s.router,
        "POST",
        &unknown,
        None,
        Some(bind(leaf, &s.agent)),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(
        &s.router,
        "POST",
        "/v1/decisions/0x12/call",
        None,
        Some(bind(leaf, &s.agent)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, page) = call(&s.router, "GET", "/v1/decisions", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"][0]["call_leaf_hash"], json!(leaf));
}

//! The HTTP contract as the red team attacked it when it moved to `chaperone-api` (the wire
//! types, `CosignRequest` parsed by `TryFrom<CosignBody>` and stored re-serialised, routes
//! declared through utoipa-axum): each test states what an attacker would try, and that it
//! fails.

use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use chaperone_api::{CosignRequest, Payment, PaymentAuthorization, Permit2Payment};
use chaperone_core::{
    Address, B256, Call, Eip3009Kind, Execute, PERMIT2, PermitWitnessTransferFrom, TokenDomain,
    TokenPermissions, TransferWithAuthorization, U256, Witness, X402_PERMIT2_PROXY,
};
use chaperone_testkit::signed_cosign_json;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::{ADMIN, AUDITOR, NOW, Service, call, cosign::register_wallet, login, service};

const TOKEN: Address = Address::repeat_byte(0x70);

async fn ready() -> Service {
    let s = service().await;
    register_wallet(&s).await;
    let policy = json!({
        "version": 1,
        "chains": [31337],
        "limits": [
            { "token": "native", "per_transaction": "1000", "windows": [{ "window": "1h", "max": "100000" }] },
            { "token": TOKEN, "per_transaction": "1000", "windows": [{ "window": "24h", "max": "100000" }] },
        ],
        "typed_data": [
            { "primary_type": "TransferWithAuthorization", "verifying_contract": TOKEN },
            { "primary_type": "ReceiveWithAuthorization", "verifying_contract": TOKEN },
            { "primary_type": "PermitWitnessTransferFrom", "verifying_contract": PERMIT2 },
        ],
        "approval": { "expires_after": "10m", "above": [{ "token": "native", "amount": "500" }] }
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
    s
}

fn execute(value: u64, nonce: u64) -> Execute {
    Execute {
        calls: vec![Call {
            to: Address::repeat_byte(0xb0),
            value: U256::from(value),
            data: Default::default(),
        }],
        nonce: U256::from(nonce),
        validUntil: NOW + 60,
    }
}

fn eip3009(s: &Service, kind: Eip3009Kind, nonce: u8) -> Payment {
    Payment::Eip3009(PaymentAuthorization {
        primary_type: kind,
        domain: TokenDomain {
            // Names the agent chooses: unicode, quotes, a backslash.
            name: "USD \u{202e}Coin \"x\" \\".into(),
            version: "2".into(),
            chain_id: 31337,
            verifying_contract: TOKEN,
        },
        message: TransferWithAuthorization {
            from: s.wallet,
            to: Address::repeat_byte(0x77),
            value: U256::from(100),
            validAfter: U256::ZERO,
            validBefore: U256::from(NOW + 60),
            nonce: B256::repeat_byte(nonce),
        },
    })
}

fn permit2(nonce: u64) -> Payment {
    Payment::Permit2(Permit2Payment {
        message: PermitWitnessTransferFrom {
            permitted: TokenPermissions {
                token: TOKEN,
                amount: U256::from(50),
            },
            spender: X402_PERMIT2_PROXY,
            nonce: U256::from(nonce),
            deadline: U256::from(NOW + 60),
            witness: Witness {
                to: Address::repeat_byte(0x77),
                validAfter: U256::ZERO,
            },
        },
    })
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

async fn cosign_raw(s: &Service, body: String) -> (StatusCode, Value) {
    call(&s.router, "POST", "/v1/cosign", None, Some(body)).await
}

/// A (attacker A): bodies the old server refused — two payments in one, an unknown field at any
/// depth, a duplicate key, no payment, the Rust type's own field name `payment` — are refused
/// by the new `TryFrom<CosignBody>` too, with a 4xx and no decision recorded.
#[tokio::test]
async fn cosign_bodies_the_old_server_refused_are_still_refused() {
    let s = ready().await;
    let signed_execute =
        signed_cosign_json(&s.agent, 31337, s.wallet, Payment::Execute(execute(10, 1)));
    let signed_auth = signed_cosign_json(
        &s.agent,
        31337,
        s.wallet,
        eip3009(&s, Eip3009Kind::TransferWithAuthorization, 1),
    );
    let signed_permit2 = signed_cosign_json(&s.agent, 31337, s.wallet, permit2(7));

    let mut both = signed_execute.clone();
    both["authorization"] = signed_auth["authorization"].clone();
    let mut exec_and_permit2 = signed_execute.clone();
    exec_and_permit2["permit2"] = signed_permit2["permit2"].clone();
    let mut none = signed_execute.clone();
    none.as_object_mut().unwrap().remove("execute");
    let mut null_only = none.clone();
    null_only["execute"] = Value::Null;
    let mut unknown_top = signed_execute.clone();
    unknown_top["extra"] = json!(1);
    let mut unknown_inner = signed_execute.clone();
    unknown_inner["execute"]["extra"] = json!(1);
    let mut unknown_domain = signed_auth.clone();
    unknown_domain["authorization"]["domain"]["salt"] = json!("0x00");
    let mut rust_shape = none.clone();
    rust_shape["payment"] = json!({ "Execute": signed_execute["execute"] });
    let mut bad_primary = signed_auth.clone();
    bad_primary["authorization"]["primary_type"] = json!("Permit");

    for (what, body) in [
        ("execute + authorization", both),
        ("execute + permit2", exec_and_permit2),
        ("no payment", none),
        ("execute: null only", null_only),
        ("unknown top-level field", unknown_top),
        ("unknown field in execute", unknown_inner),
        ("unknown field in the token domain", unknown_domain),
        ("the Rust field name `payment`", rust_shape),
        ("an unknown primary_type", bad_primary),
    ] {
        let (status, answer) = cosign(&s, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {answer}");
        assert_eq!(
            answer["error"]["code"], "invalid_request",
            "{what}: {answer}"
        );
    }
    // A duplicate key (the second `execute` would be another payment than the signed one).
    let text = signed_execute.to_string();
    let dup = text.replacen(
        "\"execute\":",
        &format!("\"execute\":{},\"execute\":", json!(execute(999, 2))),
        1,
    );
    let (status, answer) = cosign_raw(&s, dup).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "duplicate key: {answer}");
    let unlogged = s.store.unlogged_decisions(100).await.unwrap();
    assert!(unlogged.is_empty(), "a refused body recorded a decision");

    // As before: an explicit `null` beside the one payment is no payment.
    let mut with_null = signed_execute.clone();
    with_null["authorization"] = Value::Null;
    with_null["permit2"] = Value::Null;
    let (status, answer) = cosign(&s, &with_null).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // And `primary_type` omitted is TransferWithAuthorization, as the agent signs it by default.
    let mut defaulted = signed_auth.clone();
    defaulted["authorization"]
        .as_object_mut()
        .unwrap()
        .remove("primary_type");
    let (status, answer) = cosign(&s, &defaulted).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // A Receive signature presented as a Transfer (primary_type dropped) does not verify.
    let signed_receive = signed_cosign_json(
        &s.agent,
        31337,
        s.wallet,
        eip3009(&s, Eip3009Kind::ReceiveWithAuthorization, 9),
    );
    let mut swapped = signed_receive.clone();
    swapped["authorization"]
        .as_object_mut()
        .unwrap()
        .remove("primary_type");
    let (status, answer) = cosign(&s, &swapped).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(answer["error"]["code"], "bad_signature");
    // A malformed signature is 400 `malformed_signature` (formerly 400 `bad_signature`).
    let mut short = signed_execute.clone();
    short["agent_signature"] = json!("0x1234");
    let (status, answer) = cosign(&s, &short).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"]["code"], "malformed_signature");
}

/// A: what is stored (and logged, and shown to the approver) is re-serialised from the typed
/// request. For every method, the stored JSON must parse back to exactly the payment that was
/// signed and decided: its digest is the request id, the co-signature's message.
#[tokio::test]
async fn the_stored_request_is_the_signed_and_decided_payment() {
    let s = ready().await;
    let payments = [
        Payment::Execute(execute(10, 100)),
        // Above the approval threshold: pending, shown in the approver's inbox.
        Payment::Execute(execute(600, 101)),
        eip3009(&s, Eip3009Kind::TransferWithAuthorization, 1),
        eip3009(&s, Eip3009Kind::ReceiveWithAuthorization, 2),
        permit2(3),
    ];
    let mut ids = Vec::new();
    for payment in &payments {
        let body = signed_cosign_json(&s.agent, 31337, s.wallet, payment.clone());
        let (status, answer) = cosign(&s, &body).await;
        assert!(
            status == StatusCode::OK || status == StatusCode::ACCEPTED,
            "{answer}"
        );
        let id: B256 = answer["request_id"].as_str().unwrap().parse().unwrap();
        assert_eq!(id, payment.digest(31337, s.wallet));
        ids.push(id);
    }
    let stored = s.store.unlogged_decisions(100).await.unwrap();
    assert_eq!(stored.len(), payments.len());
    for (payment, id) in payments.iter().zip(&ids) {
        let row = stored.iter().find(|d| d.request_id == *id).unwrap();
        let parsed: CosignRequest = serde_json::from_str(&row.request).unwrap_or_else(|e| {
            panic!("stored request does not parse back ({e}): {}", row.request)
        });
        assert_eq!(&parsed.payment, payment, "stored: {}", row.request);
        assert_eq!(parsed.payment.digest(parsed.chain_id, parsed.wallet), *id);
        assert_eq!((parsed.chain_id, parsed.wallet), (31337, s.wallet));
    }
    // The approver's inbox reads its effects from the stored request: the pending 600.
    let pending = s.store.pending_approval_details(NOW, 100).await.unwrap();
    assert_eq!(pending.len(), 1);
    let parsed: CosignRequest = serde_json::from_str(&pending[0].request).unwrap();
    assert_eq!(parsed.payment, payments[1]);
    assert!(!parsed.payment.effects().is_empty());
}

async fn status_of(
    s: &Service,
    method: &str,
    uri: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = s
        .router
        .clone()
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// C: the 8 MiB limit is `/v1/records`' alone; every other JSON body stops at 64 KiB.
#[tokio::test]
async fn only_the_record_batches_get_the_larger_body_limit() {
    let s = ready().await;
    let json_type = ("content-type", "application/json".to_owned());
    let bearer = ("authorization", format!("Bearer {ADMIN}"));
    // 1 MiB of JSON whitespace padding: over 64 KiB, under 8 MiB.
    let padded = |inner: &str| {
        let mut body = vec![b' '; 1024 * 1024];
        body.extend_from_slice(inner.as_bytes());
        body
    };
    let (status, answer) = status_of(
        &s,
        "POST",
        "/v1/records",
        std::slice::from_ref(&json_type),
        padded(r#"{"records":[],"signature":{"r":"0x0","s":"0x0","v":0}}"#),
    )
    .await;
    assert_ne!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    // 9 MiB is refused there too.
    let mut big = vec![b' '; 9 * 1024 * 1024];
    big.extend_from_slice(b"{}");
    let (status, _) = status_of(
        &s,
        "POST",
        "/v1/records",
        std::slice::from_ref(&json_type),
        big,
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let wallet = s.wallet;
    for (method, uri, auth) in [
        ("POST", "/v1/cosign".to_owned(), false),
        ("POST", "/v1/verify".to_owned(), false),
        ("POST", format!("/v1/decisions/{}/call", B256::ZERO), false),
        ("POST", "/v1/admin/wallets".to_owned(), true),
        ("POST", "/v1/admin/agents".to_owned(), true),
        ("POST", "/v1/admin/tokens".to_owned(), true),
        ("PUT", format!("/v1/admin/wallets/{wallet}/policy"), true),
        // Same path, other case or a trailing slash: no route borrows the records' limit.
        ("POST", "/v1/records/".to_owned(), false),
        ("POST", "/V1/records".to_owned(), false),
    ] {
        let mut headers = vec![json_type.clone()];
        if auth {
            headers.push(bearer.clone());
        }
        let (status, answer) = status_of(&s, method, &uri, &headers, padded("{}")).await;
        assert!(
            status == StatusCode::PAYLOAD_TOO_LARGE || status == StatusCode::NOT_FOUND,
            "{method} {uri}: {status} {answer}"
        );
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            assert_eq!(answer["error"]["code"], "body_too_large", "{uri}");
        }
    }
}

/// C: every operation the document marks as needing a token answers 401 without one, and a
/// console cookie opens its reads only, never a write; the operations open to anyone are
/// exactly the agent's and the public log's.
#[tokio::test]
async fn every_admin_and_compliance_route_still_needs_the_token() {
    let s = ready().await;
    let cookie = login(&s.router, AUDITOR).await;
    let document = chaperone_server::openapi();
    let mut open = Vec::new();
    let mut protected = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let uri = path
                .replace("{address}", &s.wallet.to_string())
                .replace("{request_id}", &B256::ZERO.to_string())
                .replace("{leaf_hash}", &B256::ZERO.to_string())
                .replace("{verdict}", "approve")
                .replace("{name}", "ops");
            let method = method.to_uppercase();
            let json_type = ("content-type", "application/json".to_owned());
            let (status, answer) = status_of(
                &s,
                &method,
                &uri,
                std::slice::from_ref(&json_type),
                b"{}".to_vec(),
            )
            .await;
            let secured = operation.get("security").is_some();
            if secured {
                protected += 1;
                assert_eq!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {uri} without a token: {answer}"
                );
                let (status, answer) = status_of(
                    &s,
                    &method,
                    &uri,
                    &[json_type, ("cookie", cookie.clone())],
                    b"{}".to_vec(),
                )
                .await;
                if method == "GET" {
                    assert_ne!(status, StatusCode::UNAUTHORIZED, "{method} {uri}: {answer}");
                } else {
                    assert_eq!(
                        status,
                        StatusCode::UNAUTHORIZED,
                        "{method} {uri} with only the console cookie: {answer}"
                    );
                }
            } else {
                open.push(format!("{method} {path}"));
                assert_ne!(status, StatusCode::UNAUTHORIZED, "{method} {uri}");
            }
        }
    }
    open.sort();
    assert_eq!(
        open,
        [
            "GET /healthz",
            "GET /metrics",
            "GET /openapi.json",
            "GET /v1/checkpoints/latest",
            "GET /v1/records/{leaf_hash}/proof",
            "GET /v1/tool-decisions/{id}/approval",
            "POST /v1/cosign",
            "POST /v1/decisions/{request_id}/call",
            "POST /v1/records",
            "POST /v1/tool-decisions",
            // Signed by the agent that reported the held call, as the report itself.
            "POST /v1/tool-decisions/{id}/withdraw",
            "POST /v1/verify",
        ]
    );
    assert_eq!(protected, 24);
    // Every admin or compliance path (also those the document might have missed).
    for (method, uri) in [
        ("GET", "/v1/agents".to_owned()),
        ("GET", format!("/v1/agents/{}/records", s.wallet)),
        ("GET", "/v1/decisions".to_owned()),
        ("GET", "/v1/tool-decisions?tool=x".to_owned()),
        ("GET", "/v1/spend".to_owned()),
        ("GET", "/v1/payments".to_owned()),
        ("HEAD", "/v1/payments".to_owned()),
        ("GET", "/v1/evidence/bundle?from=0&to=1".to_owned()),
        ("GET", "/v1/evidence/report?from=0&to=1".to_owned()),
        ("GET", "/v1/admin/approvals".to_owned()),
        ("GET", "/v1/admin/agents".to_owned()),
        ("GET", "/v1/admin/tokens".to_owned()),
        ("GET", "/v1/admin/actions".to_owned()),
        ("DELETE", "/v1/admin/tokens/ops".to_owned()),
        ("DELETE", format!("/v1/admin/agents/{}", s.wallet)),
        ("HEAD", "/v1/decisions".to_owned()),
        ("HEAD", "/v1/admin/tokens".to_owned()),
        ("GET", "/v1/unauthorized-spends".to_owned()),
        ("POST", "/v1/unauthorized-spends/1/acknowledge".to_owned()),
    ] {
        let (status, _) = status_of(&s, method, &uri, &[], vec![]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}");
    }
}

/// The layers of `app.rs` still wrap every route: the request id on API, console and fallback
/// answers. (The timeout layer: `observability::a_request_past_its_timeout_gets_503_and_decides_nothing`,
/// which holds the database so the request must wait; a zero timeout here was flaky, as a
/// request that never waits completes on its first poll.)
#[tokio::test]
async fn the_request_id_layer_wraps_every_route() {
    let s = ready().await;
    for uri in [
        "/v1/checkpoints/latest",
        "/login",
        "/no-such-thing",
        "/v1/records",
    ] {
        let response = s
            .router
            .clone()
            .oneshot(
                Request::builder()
                    .uri(uri)
                    .header("x-request-id", "rt-1")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(
            response
                .headers()
                .get("x-request-id")
                .map(|v| v.to_str().unwrap()),
            Some("rt-1"),
            "{uri}"
        );
    }
}

/// Methods not declared for a path are 405, never another handler (utoipa-axum's `routes!`
/// registers exactly the documented methods).
#[tokio::test]
async fn undeclared_methods_are_refused() {
    let s = ready().await;
    for (method, uri) in [
        ("GET", "/v1/cosign".to_owned()),
        ("GET", "/v1/records".to_owned()),
        ("PUT", "/v1/admin/tokens".to_owned()),
        ("GET", format!("/v1/admin/approvals/{}/approve", B256::ZERO)),
        ("POST", format!("/v1/admin/wallets/{}/policy", s.wallet)),
        ("DELETE", "/v1/admin/wallets".to_owned()),
    ] {
        let (status, answer) = status_of(
            &s,
            method,
            &uri,
            &[("authorization", format!("Bearer {ADMIN}"))],
            vec![],
        )
        .await;
        assert_eq!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {uri}: {answer}"
        );
    }
}

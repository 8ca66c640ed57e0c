//! Malformed, expired, forged or oversized co-sign requests: each gets a precise 4xx, and none
//! reserves or records anything.

use axum::http::StatusCode;
use chaperone_core::{Address, B256, U256, policy::Token};
use chaperone_testkit::sign;
use serde_json::json;

use super::{body, cosign, execute, ready};
use crate::{NOW, call};

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

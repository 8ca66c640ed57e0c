//! Load on one wallet: a flood beyond the in-flight limit gets 429 with `Retry-After`, and the
//! policy's rate limit refuses before the database and writes nothing.

use axum::http::StatusCode;
use chaperone_api::Payment;
use chaperone_testkit::signed_cosign_json;
use serde_json::json;

use super::{body, cosign, execute, ready, register_wallet, request};
use crate::{ADMIN, call};

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

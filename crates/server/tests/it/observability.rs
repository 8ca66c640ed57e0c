//! What operators rely on: `/metrics` in the Prometheus text format, a request id on every
//! response, and a request timeout that answers 503 instead of hanging.

use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use chaperone_testkit::sqlite_file;
use http_body_util::BodyExt;
use sqlx::Connection;
use tower::ServiceExt;

use crate::{
    NOW, Service, TestAgent, call, call_text,
    cosign::{ready_on, request},
    service, service_on,
};

async fn metrics(s: &Service) -> String {
    let (status, text, content_type, _) = call_text(&s.router, "/metrics", "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        content_type
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    text
}

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_count_decisions_answers_latency_records_and_queues() {
    let s = ready_on(service().await).await;
    assert_eq!(request(&s, 10, 0).await.0, StatusCode::OK);
    assert_eq!(request(&s, 20, 1).await.0, StatusCode::OK);
    assert_eq!(request(&s, 1001, 2).await.0, StatusCode::FORBIDDEN);
    // A payment above the approval threshold, asked for once and then polled twice, as the SDK
    // does while it waits: one decision, three answers.
    for _ in 0..3 {
        assert_eq!(request(&s, 600, 3).await.0, StatusCode::ACCEPTED);
    }
    let (status, _) = call(&s.router, "POST", "/v1/cosign", None, Some("{".into())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let mut agent = TestAgent::registered(&s.store).await;
    let batch = serde_json::to_string(&agent.batch(3, "metrics")).unwrap();
    let (status, _) = call(&s.router, "POST", "/v1/records", None, Some(batch)).await;
    assert!(status.is_success(), "{status}");

    let text = metrics(&s).await;
    let expect = [
        (
            r#"chaperone_decisions_total{outcome="approved",reason="none"}"#,
            2.0,
        ),
        (
            r#"chaperone_decisions_total{outcome="denied",reason="per_transaction_cap"}"#,
            1.0,
        ),
        (r#"chaperone_cosign_answers_total{status="200"}"#, 2.0),
        (r#"chaperone_cosign_answers_total{status="202"}"#, 3.0),
        (r#"chaperone_cosign_answers_total{status="403"}"#, 1.0),
        (r#"chaperone_cosign_answers_total{status="400"}"#, 1.0),
        ("chaperone_cosign_duration_seconds_count", 7.0),
        ("chaperone_records_ingested_total", 3.0),
        // Nothing has logged the four decisions yet (no anchorer runs here).
        ("chaperone_unlogged_decisions", 4.0),
        ("chaperone_pending_approvals", 1.0),
        ("chaperone_log_size", 3.0),
        ("chaperone_anchored_size", 0.0),
        ("chaperone_anchoring_lag_leaves", 3.0),
    ];
    for (series, expected) in expect {
        assert_eq!(value(&text, series), Some(expected), "{series} in\n{text}");
    }
    let pending: f64 = text
        .lines()
        .filter(|l| l.starts_with(r#"chaperone_decisions_total{outcome="pending_approval""#))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(pending, 1.0, "the polls are not new decisions:\n{text}");
    assert!(
        text.ends_with("# EOF\n"),
        "OpenMetrics text ends with # EOF"
    );
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_a_given_one_is_kept() {
    let s = service().await;
    let response = s
        .router
        .clone()
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");

    let response = s
        .router
        .clone()
        .oneshot(
            Request::get("/v1/nothing-here")
                .header("x-request-id", "trace-me-42")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("not_found"));
}

/// A decision that cannot get the database (another writer holds SQLite's lock) is answered
/// 503 when the request timeout passes, and decides nothing.
#[tokio::test]
async fn a_request_past_its_timeout_gets_503_and_decides_nothing() {
    let url = sqlite_file("server").url;
    let store = chaperone_store::Store::connect(&url).await.unwrap();
    let s = ready_on(service_on(store).await).await;
    let s = Service {
        router: chaperone_server::app(
            chaperone_server::AppState::with_clock(
                s.store.clone().with_max_clock_skew(None),
                s.cosigner.clone(),
                31337,
                || NOW,
            )
            .with_request_timeout(std::time::Duration::from_millis(300)),
        ),
        ..s
    };
    let mut holder = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .unwrap();

    let started = std::time::Instant::now();
    let (status, body) = request(&s, 10, 0).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "timeout");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));

    sqlx::raw_sql("ROLLBACK")
        .execute(&mut holder)
        .await
        .unwrap();
    let text = metrics(&s).await;
    assert_eq!(
        value(&text, "chaperone_unlogged_decisions"),
        Some(0.0),
        "{text}"
    );
}

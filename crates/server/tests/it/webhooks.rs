//! Webhook notifications to a real local receiver over HTTP: a pending approval arrives signed
//! (checked here with an independent HMAC), a failing receiver is retried with backoff until it
//! answers, an unreachable one is given up, and every attempt shows in the console's log.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::State,
    http::{HeaderMap, Request, StatusCode, header},
    routing::post,
};
use chaperone_server::{
    AppState, Notifier, WEBHOOK_MAX_ATTEMPTS, Webhook, WebhookFormat, WebhookSender, app,
};
use chaperone_testkit::{free_port, serve};
use hmac::{Hmac, Mac};
use http_body_util::BodyExt;
use sha2::Sha256;
use tower::ServiceExt;

use crate::{ADMIN, NOW, Service, cosign::ready_on, cosign::request, service};

const SECRET: &[u8] = b"webhook-secret";

/// A receiver that answers 500 to its first `failures` requests, then 200, keeping each one.
#[derive(Clone, Default)]
pub(crate) struct Receiver {
    pub(crate) got: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    failures: Arc<AtomicU32>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    r.got
        .lock()
        .unwrap()
        .push((headers, String::from_utf8(body.to_vec()).unwrap()));
    let failing = r
        .failures
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

pub(crate) async fn receiver(failures: u32) -> (Receiver, String) {
    let r = Receiver::default();
    r.failures.store(failures, Ordering::SeqCst);
    let router = Router::new()
        .route("/hook", post(receive))
        .with_state(r.clone());
    let url = format!("{}/hook", serve(router).await);
    (r, url)
}

pub(crate) fn webhook(url: &str, format: WebhookFormat) -> Webhook {
    Webhook {
        url: url.to_owned(),
        secret: SECRET.to_vec(),
        format,
        console_url: "https://console.example".into(),
    }
}

/// `s` notifying through `webhook`, with its wallet ready.
async fn notifying(s: Service, webhook: &Webhook) -> Service {
    let notifier = Arc::new(Notifier::new(s.store.clone(), webhook.clone()));
    let state = AppState::with_clock(s.store.clone(), s.cosigner.clone(), 31337, crate::clock)
        .with_notifier(notifier);
    ready_on(Service {
        router: app(state),
        ..s
    })
    .await
}

fn expected_signature(timestamp: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!("sha256={}", alloy::hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn a_pending_approval_reaches_the_receiver_signed() {
    let (receiver, url) = receiver(0).await;
    let hook = webhook(&url, WebhookFormat::Json);
    let s = notifying(service().await, &hook).await;
    let (status, answer) = request(&s, 600, 1).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    // Asking again (a replay) notifies nothing new.
    request(&s, 600, 1).await;

    let sender = WebhookSender::new(s.store.clone(), hook);
    assert_eq!(sender.tick(NOW).await.unwrap(), 1);
    assert_eq!(sender.tick(NOW + 60).await.unwrap(), 0, "delivered once");
    let got = receiver.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let (headers, body) = &got[0];
    let header = |name: &str| headers[name].to_str().unwrap().to_owned();
    assert_eq!(header("x-chaperone-event"), "approval.pending");
    assert_eq!(
        header("x-chaperone-signature"),
        expected_signature(&header("x-chaperone-timestamp"), body)
    );
    let event: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(event["request_id"], answer["request_id"]);
    assert_eq!(event["reasons"][0]["code"], "needs_human_approval");
    assert!(
        event["reasons_text"][0]
            .as_str()
            .unwrap()
            .contains("above the approval threshold"),
        "{event}"
    );
    let request_id = answer["request_id"].as_str().unwrap();
    assert_eq!(
        event["console_url"],
        format!("https://console.example/approvals#request-{request_id}")
    );
}

#[tokio::test]
async fn a_failing_receiver_is_retried_with_backoff_until_it_answers() {
    let (receiver, url) = receiver(2).await;
    let hook = webhook(&url, WebhookFormat::Slack);
    let s = notifying(service().await, &hook).await;
    let (status, _) = request(&s, 1001, 0).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A second denial within the minute is not notified again.
    request(&s, 1002, 1).await;

    let sender = WebhookSender::new(s.store.clone(), hook);
    assert_eq!(sender.tick(NOW).await.unwrap(), 0);
    assert_eq!(
        sender.tick(NOW + 5).await.unwrap(),
        0,
        "not due before 10 s"
    );
    assert_eq!(receiver.got.lock().unwrap().len(), 1);
    assert_eq!(
        sender.tick(NOW + 10).await.unwrap(),
        0,
        "the second attempt fails too"
    );
    let log = s.store.webhook_log(10).await.unwrap();
    assert_eq!(log.len(), 1, "one notification for both denials");
    assert_eq!((log[0].attempts, log[0].status.as_str()), (2, "pending"));
    assert_eq!(log[0].next_attempt_at, NOW + 10 + 20);
    assert!(log[0].last_error.as_deref().unwrap().contains("HTTP 500"));
    assert_eq!(sender.tick(NOW + 30).await.unwrap(), 1);
    let log = s.store.webhook_log(10).await.unwrap();
    assert_eq!((log[0].attempts, log[0].status.as_str()), (3, "delivered"));
    // Slack's format: a text with the reasons and the console link.
    let (_, body) = receiver.got.lock().unwrap()[2].clone();
    let slack: serde_json::Value = serde_json::from_str(&body).unwrap();
    let text = slack["text"].as_str().unwrap();
    assert!(text.contains("over the per-payment cap"), "{text}");
    assert!(
        text.contains("<https://console.example/decisions?wallet="),
        "{text}"
    );
}

#[tokio::test]
async fn an_unreachable_receiver_is_given_up_and_the_failure_is_visible() {
    // A port nothing listens on.
    let url = format!("http://127.0.0.1:{}/hook", free_port());
    let hook = webhook(&url, WebhookFormat::Json);
    let s = notifying(service().await, &hook).await;
    request(&s, 600, 1).await;
    let sender = WebhookSender::new(s.store.clone(), hook);
    let mut now = NOW;
    for _ in 0..WEBHOOK_MAX_ATTEMPTS {
        assert_eq!(sender.tick(now).await.unwrap(), 0);
        now += 3_600;
    }
    let log = s.store.webhook_log(10).await.unwrap();
    assert_eq!(log[0].status, "failed");
    assert_eq!(log[0].attempts, WEBHOOK_MAX_ATTEMPTS);
    assert!(sender.tick(now + 86_400).await.unwrap() == 0);
    assert_eq!(
        s.store.webhook_log(10).await.unwrap()[0].attempts,
        WEBHOOK_MAX_ATTEMPTS
    );

    // The console's delivery log shows it.
    let page = Request::builder()
        .uri("/webhooks")
        .header(header::COOKIE, crate::login(&s.router, ADMIN).await)
        .body(Body::empty())
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), s.router.clone().oneshot(page))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let html = String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(
        html.contains("approval.pending") && html.contains("failed"),
        "{html}"
    );
}

//! The evidence pack's endpoints: who may ask, how a bad query is refused, and a report in
//! which a token's symbol, an approver's comment and an agent's model id (all chosen by
//! someone else) are text, never markup. The bundle is verified against a real chain by the
//! CLI's end-to-end test (tests/e2e/evidence.rs) and the Python implementation.

use axum::http::StatusCode;
use chaperone_core::B256;

use crate::{
    ADMIN, APPROVER, AUDITOR, NOW, TestAgent, call_text, service,
    untrusted::{COMMENT, MARKUP_SYMBOL, MODEL, hostile, log_models},
};

#[tokio::test]
async fn evidence_queries_are_checked_and_only_auditors_and_admins_may_ask() {
    let s = service().await;
    let period = format!("from={}&to={}", NOW - 86_400, NOW + 86_400);
    for path in ["/v1/evidence/bundle", "/v1/evidence/report"] {
        let uri = format!("{path}?{period}");
        for token in [AUDITOR, ADMIN] {
            let (status, body, _, _) = call_text(&s.router, &uri, token).await;
            assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        }
        let (status, _, _, _) = call_text(&s.router, &uri, APPROVER).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{uri} as an approver");
        let (status, _, _, _) = call_text(&s.router, &uri, "no-such-token").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri} with a wrong token");
        let refused = [
            (format!("{path}?from=10&to=5"), "invalid_query", "before"),
            (format!("{path}?from=10"), "invalid_query", "to"),
            (
                format!("{path}?{period}&color=red"),
                "invalid_query",
                "color",
            ),
            (
                format!("{path}?{period}&agents=%3Cscript%3E"),
                "invalid_query",
                "is not an address",
            ),
            (
                format!("{path}?from=0&to={}", 400 * 86_400),
                "out_of_range",
                "366 days",
            ),
        ];
        for (uri, code, names) in refused {
            let (status, body, _, _) = call_text(&s.router, &uri, AUDITOR).await;
            assert!(status.is_client_error(), "{uri}: {status} {body}");
            assert!(body.contains(code), "{uri}: {body}");
            assert!(body.contains(names), "{uri} names `{names}`: {body}");
            assert!(!body.contains("<script>"), "{uri} echoes markup: {body}");
        }
    }
}

#[tokio::test]
async fn an_empty_period_gives_an_empty_bundle() {
    let s = service().await;
    let uri = format!("/v1/evidence/bundle?from={}&to={}", NOW - 10, NOW + 10);
    let (status, body, content_type, _) = call_text(&s.router, &uri, AUDITOR).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(content_type.as_deref(), Some("application/json"));
    let bundle: chaperone_api::evidence::EvidenceBundle = serde_json::from_str(&body).unwrap();
    assert!(bundle.records.is_empty() && bundle.checkpoints.is_empty());
    assert_eq!(bundle.version, chaperone_api::evidence::EVIDENCE_VERSION);
}

#[tokio::test]
async fn the_report_shows_hostile_symbols_comments_and_models_as_text_in_one_self_contained_page() {
    let h = hostile(MARKUP_SYMBOL, None).await;
    let s = &h.s;
    // A payment a human denied with a comment, one over the cap, one approved.
    let (status, pending) = h.pay(600, 0).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{pending}");
    let id: B256 = pending["request_id"].as_str().unwrap().parse().unwrap();
    s.store
        .resolve_approval(id, false, "alice", Some(COMMENT), NOW + 30)
        .await
        .unwrap();
    assert_eq!(h.pay(2000, 1).await.0, StatusCode::FORBIDDEN);
    assert_eq!(h.pay(100, 2).await.0, StatusCode::OK);
    let mut agent = TestAgent::registered(&s.store).await;
    log_models(s, &mut agent, &[MODEL, "model-b"]).await;

    let uri = format!(
        "/v1/evidence/report?from={}&to={}&wallets={}&agents={}",
        NOW - 86_400,
        NOW + 86_400,
        s.wallet,
        agent.key.address()
    );
    let (status, html, content_type, _) = call_text(&s.router, &uri, AUDITOR).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert_eq!(content_type.as_deref(), Some("text/html; charset=utf-8"));
    for injected in ["<meta http-equiv", "</svg><meta", "<script", "<img"] {
        assert!(
            !html.contains(injected),
            "the report carries `{injected}` unescaped:\n{html}"
        );
    }
    // Self-contained: nothing loaded from anywhere (the SVG namespace is a name, not a load).
    for external in [" src=\"", " href=\"http", "<link", "@import", "url("] {
        assert!(!html.contains(external), "the report loads `{external}`");
    }
    // The hostile text is there, as text.
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{html}"
    );
    assert!(html.contains("&lt;/svg&gt;&lt;meta http-equiv"), "{html}");
    assert!(html.contains(&h.token.to_string()), "the token's address");
    // The plots and sections an auditor reads.
    for section in [
        "Spend per day against the caps",
        "Decisions by outcome",
        "Reasons given, by code",
        "Approvals",
        "Records per day of",
        "Anchoring",
        "Article 12",
        "chaperone verify --bundle",
    ] {
        assert!(html.contains(section), "the report has `{section}`");
    }
    assert!(html.matches("<svg").count() >= 4, "plots are inline SVG");
    assert!(html.contains("class=\"axis\""), "plots have axes");
    // The approver's verdict and its latency (30 s after the request, within its validity).
    assert!(html.contains(">30s<") || html.contains(" 30s"), "{html}");
}

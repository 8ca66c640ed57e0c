//! How a request that waited for a human ends (fifth red-team review of issue 29): a denial
//! through the API, or an approval that expires, ends it with a final decision that the
//! anchorer logs after its pending record.

use axum::http::StatusCode;
use serde_json::json;

use crate::{
    APPROVER, AUDITOR, NOW, call,
    people::{anchorer, quorum_service, vote},
};

/// Fifth red-team review of issue 29 (Medium): a denial through the API, and an approval that
/// expires with nobody voting, end the waiting request with a final decision (denied, saying
/// which) that the anchorer logs after its pending record; the agent asking again is told it
/// is denied, not to keep waiting.
#[tokio::test]
async fn a_denied_or_expired_request_ends_with_a_final_logged_decision() {
    let s = quorum_service().await;
    let mut anchorer = anchorer(&s);
    let (_, denied) = crate::cosign::request(&s, 600, 1).await;
    let (_, expired) = crate::cosign::request(&s, 600, 2).await;
    let report = anchorer.flush(NOW).await.unwrap();
    assert_eq!(report.decisions_logged, 2, "{report:?}");
    let denied = denied["request_id"].as_str().unwrap().to_owned();
    let expired = expired["request_id"].as_str().unwrap().to_owned();
    let (status, answer) = vote(&s, &denied, APPROVER, "deny").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // validUntil is NOW + 60: the other one cannot be co-signed after it.
    let report = anchorer.flush(NOW + 61).await.unwrap();
    assert_eq!(
        (report.approvals_expired, report.decisions_logged),
        (1, 2),
        "{report:?}"
    );
    let (status, page) = call(
        &s.router,
        "GET",
        "/v1/decisions?outcome=denied",
        Some(AUDITOR),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    for (id, code) in [(&denied, "approval_denied"), (&expired, "approval_expired")] {
        let decision = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["request_id"] == json!(id))
            .unwrap_or_else(|| panic!("{id} is not denied: {page}"));
        let reasons = decision["reasons"].as_array().unwrap();
        assert_eq!(reasons.last().unwrap()["code"], code, "{decision}");
        assert!(decision["logged_leaf"].is_string(), "{decision}");
        let openings = s
            .store
            .decision_openings(&[id.parse().unwrap()])
            .await
            .unwrap();
        assert_eq!(openings.len(), 2, "the pending record and the final one");
    }
    let (status, again) = crate::cosign::request(&s, 600, 2).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{again}");
    assert_eq!(anchorer.flush(NOW + 62).await.unwrap().decisions_logged, 0);
}

//! The arguments of a held tool call (the second red-team review of issue 30): the approver
//! decides on what the call will do, so the gateway sends the arguments beside the held
//! decision. The server takes them only for a held call and only if they hash to the signed
//! `arguments_hash`; the inbox shows them escaped, cut when long (and says so), beside the
//! agent's reasons marked as the agent's words; they are never listed, and are cleared once
//! the approval is decided or expires.

use axum::{Router, http::StatusCode};
use chaperone_api::tools::{HeldArguments, MAX_SHOWN_ARGUMENTS_LEN, ToolOutcome};
use chaperone_core::B256;
use serde_json::{Value, json};

use crate::{
    APPROVER, AUDITOR, Service, TestAgent, call, call_text,
    tool_approvals::{approval_state, approve_arguments, held, held_decisions},
    tools::{decision, sign_and_post},
};

const HOSTILE: &str = "<img src=x onerror=alert(1)>";

fn hostile_arguments() -> HeldArguments {
    let arguments = json!({ "to": "0xabc", "note": HOSTILE, "secret": "s3cr3t-raw-content" });
    HeldArguments::of(arguments.as_object().unwrap())
}

/// A held call of `tool` reported with `arguments` (its hash signed in the decision).
async fn report_held(s: &Service, a: &TestAgent, tool: &str, arguments: HeldArguments) -> B256 {
    let mut d = held(&a.key, tool, 60);
    d.arguments_hash = Some(arguments.hash());
    let id = d.id;
    let (status, answer) = sign_and_post(&s.router, d, &a.key, Some(arguments)).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    id
}

/// The held calls an approver reads through the API, read with `token` (if any).
async fn held_calls(router: &Router, token: Option<&str>) -> (StatusCode, Value) {
    call(router, "GET", "/v1/admin/tool-approvals", token, None).await
}

async fn inbox(s: &Service) -> String {
    let cookie = crate::login(&s.router, APPROVER).await;
    crate::get_with_cookie(&s.router, "/approvals", &cookie)
        .await
        .2
}

/// The approver sees what the call will do: the arguments, pretty-printed and escaped (a
/// hostile argument is text, not markup), and the agent's reasons marked as its own words.
#[tokio::test]
async fn the_approver_sees_the_held_arguments_escaped() {
    for s in crate::services().await {
        let a = TestAgent::registered(&s.store).await;
        let id = report_held(&s, &a, "transfer", hostile_arguments()).await;
        let html = inbox(&s).await;
        let section = html
            .split(&format!("id=\"tool-{id}\""))
            .nth(1)
            .expect("the held call is in the inbox");
        assert!(
            section.contains("&lt;img src=x onerror=alert(1)&gt;") && !html.contains(HOSTILE),
            "the arguments are shown escaped: {section}"
        );
        assert!(
            section.contains("pre class=\"arguments\""),
            "in a <pre>: {section}"
        );
        // Pretty-printed: one key a line.
        assert!(
            section.contains("\n  &quot;to&quot;: &quot;0xabc&quot;"),
            "{section}"
        );
        assert!(section.contains("the agent's own words"), "{section}");
    }
}

/// Red team: a view that does not hash to the signed `arguments_hash` would show the approver
/// one call and approve another. Refused (400), nothing stored.
#[tokio::test]
async fn held_arguments_that_do_not_hash_to_the_decision_are_refused() {
    for s in crate::services().await {
        let a = TestAgent::registered(&s.store).await;
        let mut d = held(&a.key, "transfer", 60);
        d.arguments_hash = Some(hostile_arguments().hash());
        let id = d.id;
        let mut shown = hostile_arguments();
        shown.json = shown.json.replace("0xabc", "0xdef");
        let (status, answer) = sign_and_post(&s.router, d, &a.key, Some(shown)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(answer.to_string().contains("arguments_hash"), "{answer}");
        let approval = format!("/v1/tool-decisions/{id}/approval");
        let (status, _) = call(&s.router, "GET", &approval, None, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "nothing was stored");
    }
}

/// A held call without its arguments leaves the approver nothing to judge: refused. And raw
/// content leaves the agent only for a held call: a decision that asks nobody may not carry
/// arguments.
#[tokio::test]
async fn arguments_come_with_held_calls_and_only_with_them() {
    for s in crate::services().await {
        let a = TestAgent::registered(&s.store).await;
        let d = held(&a.key, "transfer", 60);
        let (status, answer) = sign_and_post(&s.router, d, &a.key, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(answer.to_string().contains("arguments"), "{answer}");
        for outcome in [ToolOutcome::Allowed, ToolOutcome::Denied] {
            let d = decision(&a.key, "echo", outcome);
            let (status, answer) =
                sign_and_post(&s.router, d, &a.key, Some(hostile_arguments())).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{outcome:?}: {answer}");
        }
    }
}

/// Arguments are raw content: kept only while the approval is pending, never in a listing
/// (JSON or CSV), cleared once the approval is decided, or once it expires.
#[tokio::test]
async fn held_arguments_are_never_listed_and_are_cleared_once_decided() {
    for s in crate::services().await {
        let a = TestAgent::registered(&s.store).await;
        let id = report_held(&s, &a, "transfer", hostile_arguments()).await;
        assert!(s.store.held_arguments(id).await.unwrap().is_some());
        for uri in [
            "/v1/tool-decisions",
            "/v1/tool-decisions?format=csv",
            "/v1/decisions?kind=all",
            "/v1/decisions?kind=tool&format=csv",
        ] {
            let (status, text, _, _) = call_text(&s.router, uri, AUDITOR).await;
            assert_eq!(status, StatusCode::OK, "{uri}: {text}");
            assert!(
                text.contains(&id.to_string()),
                "{uri} lists the call: {text}"
            );
            assert!(
                !text.contains("s3cr3t"),
                "{uri} lists the arguments: {text}"
            );
        }
        let deny = format!("/v1/admin/tool-approvals/{id}/deny");
        let (status, _) = call(&s.router, "POST", &deny, Some(APPROVER), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(s.store.held_arguments(id).await.unwrap(), None);
        // The hash stays: it is what the decision bound.
        let page = held_decisions(&s.router).await;
        assert_eq!(
            page["items"][0]["arguments_hash"],
            json!(hostile_arguments().hash())
        );
    }
}

/// Red team: the open approval state (anyone holding the id reads it) gave the arguments hash,
/// unsalted: low-entropy arguments (an amount, a short address list) could be guessed from it.
/// It now says only the state and the expiry; the hash is for authenticated readers.
#[tokio::test]
async fn the_open_approval_state_does_not_give_the_arguments_hash() {
    let s = crate::service().await;
    let a = TestAgent::registered(&s.store).await;
    let id = report_held(&s, &a, "transfer", hostile_arguments()).await;
    let (status, answer) = approval_state(&s.router, id).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], json!("pending"));
    assert!(answer.get("arguments_hash").is_none(), "{answer}");
    // The approver's answer (authenticated) names what was approved.
    let (status, answer) =
        approve_arguments(&s.router, id, Some(APPROVER), hostile_arguments().hash()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["arguments_hash"], json!(hostile_arguments().hash()));
}

/// Arguments past the cap: the approver sees their first bytes and is told the view is cut
/// and how long the whole is; the hash binds the whole (a forged start is refused).
#[tokio::test]
async fn long_arguments_are_shown_cut_and_said_to_be() {
    for s in crate::services().await {
        let a = TestAgent::registered(&s.store).await;
        let long = json!({ "to": "0xabc", "memo": "é\"<".repeat(40_000), "tail": "hidden-tail" });
        let whole = serde_json::to_string(&long).unwrap();
        let arguments = HeldArguments::of(long.as_object().unwrap());
        assert!(arguments.is_cut() && arguments.json.len() <= MAX_SHOWN_ARGUMENTS_LEN);
        assert_eq!(
            arguments.hash(),
            chaperone_api::tools::arguments_hash(long.as_object().unwrap())
        );
        // A forged start: the hash of the whole does not match it.
        let mut d = held(&a.key, "transfer", 60);
        d.arguments_hash = Some(arguments.hash());
        let mut forged = arguments.clone();
        forged.json = forged.json.replacen("memo", "note", 1);
        assert_ne!(forged.json, arguments.json);
        let (status, answer) = sign_and_post(&s.router, d, &a.key, Some(forged)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        let id = report_held(&s, &a, "transfer", arguments).await;
        let html = inbox(&s).await;
        let section = html.split(&format!("id=\"tool-{id}\"")).nth(1).unwrap();
        assert!(
            section.contains("cut"),
            "the view says it is cut: {section}"
        );
        assert!(
            section.contains(&format!("{} bytes", whole.len()))
                || section.contains(&format_bytes(whole.len())),
            "and how long the whole is: {section}"
        );
        assert!(!section.contains("hidden-tail"));
        assert!(!section.contains("\"<"), "escaped: no raw markup");
    }
}

/// `1234567` as the inbox writes it (`1,234,567`).
fn format_bytes(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!("{out} bytes")
}

/// Red team: a call the agent cancelled stayed pending, and an approver could approve a call
/// that would never run. The gateway withdraws it, signed by the agent (only that agent):
/// withdrawn, it takes no verdict and its arguments are cleared.
#[tokio::test]
async fn a_call_the_agent_withdrew_cannot_be_approved() {
    for s in crate::services().await {
        let a = TestAgent::registered(&s.store).await;
        let id = report_held(&s, &a, "transfer", hostile_arguments()).await;
        let withdraw = format!("/v1/tool-decisions/{id}/withdraw");
        let body = |key: &chaperone_core::Secp256k1Signer| {
            let signature = key
                .sign_message(&chaperone_api::tools::withdrawal_message(id))
                .unwrap();
            Some(json!({ "signature": signature }).to_string())
        };
        // Another agent's key withdraws nothing.
        let other = TestAgent::registered(&s.store).await;
        let (status, answer) = call(&s.router, "POST", &withdraw, None, body(&other.key)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
        assert_eq!(answer["error"]["code"], json!("bad_signature"));
        let (status, answer) = call(&s.router, "POST", &withdraw, None, body(&a.key)).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["status"], json!("withdrawn"));
        assert_eq!(s.store.held_arguments(id).await.unwrap(), None);
        let (status, answer) =
            approve_arguments(&s.router, id, Some(APPROVER), hostile_arguments().hash()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
        let (_, answer) = approval_state(&s.router, id).await;
        assert_eq!(answer["status"], json!("withdrawn"));
        assert!(!inbox(&s).await.contains(&format!("tool-{id}")));
        // Twice: nothing is pending any more.
        let (status, _) = call(&s.router, "POST", &withdraw, None, body(&a.key)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

/// An approver who uses the API, not the console, reads what it approves too: the pending
/// held calls with their arguments, for approvers and admins only (an auditor reads the
/// decisions, not the raw arguments).
#[tokio::test]
async fn an_approver_reads_the_held_arguments_through_the_api() {
    let s = crate::service().await;
    let a = TestAgent::registered(&s.store).await;
    let id = report_held(&s, &a, "transfer", hostile_arguments()).await;
    let (status, _) = held_calls(&s.router, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = held_calls(&s.router, Some(AUDITOR)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, answer) = held_calls(&s.router, Some(APPROVER)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["pending"], json!(1));
    let held = &answer["items"][0];
    assert_eq!(held["decision"]["id"], json!(id));
    assert_eq!(held["arguments"]["json"], json!(hostile_arguments().json));
    let (status, _) = call(
        &s.router,
        "POST",
        &format!("/v1/admin/tool-approvals/{id}/deny"),
        Some(APPROVER),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, answer) = held_calls(&s.router, Some(APPROVER)).await;
    assert_eq!(answer["items"], json!([]));
}

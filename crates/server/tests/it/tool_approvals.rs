//! Tool calls an `approve` rule holds in the agent's MCP gateway until a human decides (the
//! red-team review of issue 30): only an approver's or admin's token decides, once; a pending
//! approval expires after its rule's timeout; one agent cannot bury the inbox; an approval
//! approves the arguments hash the approver was shown; the open state names nobody.

use axum::{Router, http::StatusCode};
use chaperone_api::tools::{
    HeldArguments, MAX_APPROVAL_TIMEOUT_SECS, MAX_PENDING_TOOL_APPROVALS, ToolOutcome,
};
use chaperone_core::{B256, Secp256k1Signer};
use chaperone_server::{AppState, app};
use serde_json::{Value, json};

use crate::{
    ADMIN, APPROVER, AUDITOR, NOW, Service, TestAgent, call,
    tools::{decision, sign_and_post},
};

/// A call held with `arguments` for up to `timeout` seconds.
pub(crate) fn held(
    agent: &Secp256k1Signer,
    tool: &str,
    timeout: u64,
) -> chaperone_api::tools::ToolDecision {
    let mut d = decision(agent, tool, ToolOutcome::ApprovalRequired);
    d.leaf_hash = None;
    d.arguments_hash = Some(arguments_of(tool));
    d.approval_timeout_seconds = Some(timeout);
    d
}

fn arguments_of(tool: &str) -> B256 {
    held_arguments(tool).hash()
}

/// The arguments `held` holds a call of `tool` with, as the gateway sends them.
pub(crate) fn held_arguments(tool: &str) -> HeldArguments {
    let arguments = json!({ "to": "0xabc", "tool": tool });
    HeldArguments::of(arguments.as_object().unwrap())
}

/// Reports `d`, with the arguments `held` names beside a held call.
async fn report(
    s: &Service,
    key: &Secp256k1Signer,
    d: chaperone_api::tools::ToolDecision,
) -> (StatusCode, Value) {
    let arguments = (d.outcome == ToolOutcome::ApprovalRequired).then(|| held_arguments(&d.tool));
    sign_and_post(&s.router, d, key, arguments).await
}

/// Approves held call `id` with the arguments `hash` the approver was shown, through the API
/// with `token` (if any).
pub(crate) async fn approve_arguments(
    router: &Router,
    id: B256,
    token: Option<&str>,
    hash: B256,
) -> (StatusCode, Value) {
    let approve = format!("/v1/admin/tool-approvals/{id}/approve");
    let body = json!({ "arguments_hash": hash }).to_string();
    call(router, "POST", &approve, token, Some(body)).await
}

/// The open state of held call `id`'s approval (anyone holding the id reads it).
pub(crate) async fn approval_state(router: &Router, id: B256) -> (StatusCode, Value) {
    call(
        router,
        "GET",
        &format!("/v1/tool-decisions/{id}/approval"),
        None,
        None,
    )
    .await
}

/// The auditor's listing of held calls' decisions (`outcome=approval_required`).
pub(crate) async fn held_decisions(router: &Router) -> Value {
    let uri = "/v1/tool-decisions?outcome=approval_required";
    call(router, "GET", uri, Some(AUDITOR), None).await.1
}

/// The same service read at a later time (same store, another clock).
fn later(s: &Service, clock: fn() -> u64) -> Router {
    app(AppState::with_clock(
        s.store.clone(),
        s.cosigner.clone(),
        31337,
        clock,
    ))
}

fn a_minute_later() -> u64 {
    NOW + 61
}

fn two_hours_later() -> u64 {
    NOW + 2 * 3_600
}

/// Pending until an approver's (or admin's) token decides; the agent, which has no such token,
/// cannot; the inbox shows it with its arguments hash; a verdict is given once.
#[tokio::test]
async fn a_held_tool_call_waits_for_a_human() {
    for s in crate::services().await {
        let a = TestAgent::registered(&s.store).await;
        let d = held(&a.key, "<b>transfer</b>", 60);
        let (id, hash) = (d.id, d.arguments_hash.unwrap());
        let (status, answer) = report(&s, &a.key, d).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        let approval = format!("/v1/tool-decisions/{id}/approval");
        let (status, answer) = call(&s.router, "GET", &approval, None, None).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["status"], json!("pending"));
        assert_eq!(answer["expires_at"], json!(NOW + 60));
        // The agent has no bearer token: it cannot vote on its own call.
        let (status, _) = approve_arguments(&s.router, id, None, hash).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        // An auditor may look, not decide.
        let (status, _) = approve_arguments(&s.router, id, Some(AUDITOR), hash).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let cookie = crate::login(&s.router, APPROVER).await;
        let (_, _, html) = crate::get_with_cookie(&s.router, "/approvals", &cookie).await;
        assert!(html.contains(&format!("/approvals/tools/{id}")), "{html}");
        assert!(html.contains("&lt;b&gt;transfer&lt;/b&gt;") && !html.contains("<b>transfer"));
        assert!(
            html.contains(&hash.to_string()),
            "the inbox shows the arguments hash: {html}"
        );
        let (status, answer) = approve_arguments(&s.router, id, Some(APPROVER), hash).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["status"], json!("approved"));
        let (_, answer) = call(&s.router, "GET", &approval, None, None).await;
        assert_eq!(answer["status"], json!("approved"));
        // Once: a second verdict changes nothing.
        let deny = format!("/v1/admin/tool-approvals/{id}/deny");
        let (status, _) = call(&s.router, "POST", &deny, Some(ADMIN), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, answer) = call(&s.router, "GET", &approval, None, None).await;
        assert_eq!(answer["status"], json!("approved"));
        // A decision that asked no human has no approval; a bad id is a 400.
        let plain = decision(&a.key, "echo", ToolOutcome::Allowed);
        let plain_id = plain.id;
        report(&s, &a.key, plain).await;
        let (status, _) = approval_state(&s.router, plain_id).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = call(
            &s.router,
            "GET",
            "/v1/tool-decisions/nope/approval",
            None,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}

/// An approver denies a held tool call in the console (with the session's CSRF token; without
/// it, nothing changes).
#[tokio::test]
async fn an_approver_denies_a_held_tool_call_in_the_console() {
    let s = crate::service().await;
    let a = TestAgent::registered(&s.store).await;
    let d = held(&a.key, "transfer", 60);
    let id = d.id;
    report(&s, &a.key, d).await;
    let cookie = crate::login(&s.router, APPROVER).await;
    let (_, _, html) = crate::get_with_cookie(&s.router, "/approvals", &cookie).await;
    let action = format!("/approvals/tools/{id}");
    let (status, _, _) =
        crate::people::post_form(&s, &action, &cookie, "csrf=wrong&verdict=deny").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let approval = format!("/v1/tool-decisions/{id}/approval");
    let (_, answer) = call(&s.router, "GET", &approval, None, None).await;
    assert_eq!(answer["status"], json!("pending"));
    let form = format!("csrf={}&verdict=deny", crate::people::csrf(&html));
    let (status, location, body) = crate::people::post_form(&s, &action, &cookie, &form).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(location.as_deref(), Some("/approvals"));
    let (_, answer) = call(&s.router, "GET", &approval, None, None).await;
    assert_eq!(answer["status"], json!("denied"));
    let (_, _, html) = crate::get_with_cookie(&s.router, "/approvals", &cookie).await;
    assert!(!html.contains(&action), "{html}");
}

/// Red team: pending approvals never expired. Now one expires after its rule's timeout (capped
/// at the server's maximum): its state says so, no verdict is taken, the inbox drops it.
#[tokio::test]
async fn a_pending_approval_expires_after_its_timeout() {
    for s in crate::services().await {
        let a = TestAgent::registered(&s.store).await;
        let d = held(&a.key, "transfer", 60);
        let (id, hash) = (d.id, d.arguments_hash.unwrap());
        report(&s, &a.key, d).await;
        let forever = held(&a.key, "wire", u64::MAX / 2);
        let forever_id = forever.id;
        let (status, answer) = report(&s, &a.key, forever).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        let router = later(&s, a_minute_later);
        let approval = format!("/v1/tool-decisions/{id}/approval");
        let (_, answer) = call(&router, "GET", &approval, None, None).await;
        assert_eq!(answer["status"], json!("expired"), "{answer}");
        let (status, answer) = approve_arguments(&router, id, Some(APPROVER), hash).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
        assert_eq!(answer["error"]["code"], json!("no_pending_approval"));
        let (_, answer) = call(&router, "GET", &approval, None, None).await;
        assert_eq!(answer["status"], json!("expired"));
        let cookie = crate::login(&router, APPROVER).await;
        let (_, _, html) = crate::get_with_cookie(&router, "/approvals", &cookie).await;
        assert!(!html.contains(&format!("/approvals/tools/{id}")), "{html}");
        assert!(
            html.contains(&format!("/approvals/tools/{forever_id}")),
            "{html}"
        );
        // A timeout past the server's maximum is cut to it.
        let (_, answer) = approval_state(&router, forever_id).await;
        assert_eq!(
            answer["expires_at"],
            json!(NOW + MAX_APPROVAL_TIMEOUT_SECS),
            "{answer}"
        );
        let (_, answer) = approval_state(&later(&s, two_hours_later), forever_id).await;
        assert_eq!(answer["status"], json!("expired"), "{answer}");
    }
}

/// Red team: a registered agent could flood the inbox with held calls. Past the cap its next
/// one is 429 and nothing is stored; other agents are not affected; a verdict or an expiry
/// makes room.
#[tokio::test]
async fn one_agent_cannot_bury_the_inbox() {
    for s in crate::services().await {
        let a = TestAgent::registered(&s.store).await;
        let mut first = None;
        for i in 0..MAX_PENDING_TOOL_APPROVALS {
            let d = held(&a.key, &format!("tool{i}"), 60);
            first.get_or_insert(d.clone());
            let (status, answer) = report(&s, &a.key, d).await;
            assert_eq!(status, StatusCode::CREATED, "{i}: {answer}");
        }
        let over = held(&a.key, "one-too-many", 60);
        let over_id = over.id;
        let (status, answer) = report(&s, &a.key, over.clone()).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{answer}");
        assert_eq!(answer["error"]["code"], json!("too_many_pending_approvals"));
        let (status, _) = approval_state(&s.router, over_id).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "nothing was stored");
        // A replay of a stored one is still a replay, not a refusal.
        let first = first.unwrap();
        let (status, answer) = report(&s, &a.key, first.clone()).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["replayed"], json!(true));
        // Another agent still asks.
        let b = TestAgent::registered(&s.store).await;
        let (status, _) = report(&s, &b.key, held(&b.key, "transfer", 60)).await;
        assert_eq!(status, StatusCode::CREATED);
        // A verdict makes room.
        let deny = format!("/v1/admin/tool-approvals/{}/deny", first.id);
        let (status, _) = call(&s.router, "POST", &deny, Some(APPROVER), None).await;
        assert_eq!(status, StatusCode::OK);
        let (status, answer) = report(&s, &a.key, over).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        // So does expiry: a minute later none of the agent's approvals is pending.
        let router = later(&s, a_minute_later);
        let d = held(&a.key, "after", 60);
        let (status, answer) =
            sign_and_post(&router, d, &a.key, Some(held_arguments("after"))).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }
}

/// Red team: the approver saw no arguments and the approval was not bound to them. A held
/// call must name its arguments hash; an approval must name the hash it was shown, and one
/// naming another is refused (nothing changes); the open state says only the state, never the
/// approver, who is in the authenticated listing.
#[tokio::test]
async fn an_approval_approves_the_arguments_it_was_shown() {
    for s in crate::services().await {
        let a = TestAgent::registered(&s.store).await;
        let mut unbound = held(&a.key, "transfer", 60);
        unbound.arguments_hash = None;
        let (status, answer) = report(&s, &a.key, unbound).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(answer.to_string().contains("arguments_hash"), "{answer}");

        let d = held(&a.key, "transfer", 60);
        let (id, hash) = (d.id, d.arguments_hash.unwrap());
        report(&s, &a.key, d).await;
        let approve = format!("/v1/admin/tool-approvals/{id}/approve");
        let approval = format!("/v1/tool-decisions/{id}/approval");
        let other = arguments_of("something else");
        let (status, answer) = approve_arguments(&s.router, id, Some(APPROVER), other).await;
        assert_eq!(status, StatusCode::CONFLICT, "{answer}");
        assert_eq!(answer["error"]["code"], json!("arguments_mismatch"));
        // An approval that names no hash approves nothing.
        let (status, answer) = call(&s.router, "POST", &approve, Some(APPROVER), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        let (_, answer) = call(&s.router, "GET", &approval, None, None).await;
        assert_eq!(answer["status"], json!("pending"));
        let (status, _) = approve_arguments(&s.router, id, Some(APPROVER), hash).await;
        assert_eq!(status, StatusCode::OK);
        let (_, answer) = call(&s.router, "GET", &approval, None, None).await;
        assert_eq!(answer["status"], json!("approved"));
        assert!(
            !answer.to_string().contains("alice"),
            "the open state names the approver: {answer}"
        );
        let page = held_decisions(&s.router).await;
        let row = &page["items"][0];
        assert_eq!(row["approval_status"], json!("approved"), "{page}");
        assert_eq!(row["approval_by"], json!("alice"), "{page}");
        assert_eq!(row["arguments_hash"], json!(hash), "{page}");
    }
}

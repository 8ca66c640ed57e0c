//! Tool-policy decisions of the MCP gateway: reported signed by the agent, listed by tool, on
//! SQLite and PostgreSQL; another agent's key, an unregistered agent and bad input refused.

use axum::{Router, http::StatusCode};
use chaperone_api::tools::{HeldArguments, ToolDecision, ToolDecisionBody, ToolOutcome};
use chaperone_core::{B256, Secp256k1Signer};
use serde_json::{Value, json};

use crate::{AUDITOR, NOW, TestAgent, call, services};

// Held calls (approvals) are tested in `tool_approvals`.

pub(crate) fn decision(agent: &Secp256k1Signer, tool: &str, outcome: ToolOutcome) -> ToolDecision {
    ToolDecision {
        id: chaperone_core::keccak256(Secp256k1Signer::random().unwrap().address()),
        agent: agent.address(),
        upstream: "everything".into(),
        tool: tool.into(),
        outcome,
        reasons: vec!["no rule allows `<script>alert(1)</script>`".into()],
        policy_version: 3,
        policy_hash: "0xabc".into(),
        leaf_hash: Some(B256::repeat_byte(7)),
        decided_at_ms: NOW * 1000,
        arguments_hash: None,
        approval_timeout_seconds: None,
    }
}

pub(crate) fn signed(decision: ToolDecision, key: &Secp256k1Signer) -> String {
    signed_with(decision, key, None)
}

/// The signed body with a held call's `arguments` beside it.
pub(crate) fn signed_with(
    decision: ToolDecision,
    key: &Secp256k1Signer,
    arguments: Option<HeldArguments>,
) -> String {
    let signature = key.sign_message(&decision.signing_message()).unwrap();
    serde_json::to_string(&ToolDecisionBody {
        decision,
        signature,
        arguments,
    })
    .unwrap()
}

/// Posts a tool decision's `body` as the gateway does: signed by the agent, no bearer token.
pub(crate) async fn post_decision(router: &Router, body: String) -> (StatusCode, Value) {
    call(router, "POST", "/v1/tool-decisions", None, Some(body)).await
}

/// Signs `decision` with `key` and posts it, a held call's `arguments` beside it.
pub(crate) async fn sign_and_post(
    router: &Router,
    decision: ToolDecision,
    key: &Secp256k1Signer,
    arguments: Option<HeldArguments>,
) -> (StatusCode, Value) {
    post_decision(router, signed_with(decision, key, arguments)).await
}

/// Asserts the auditor's listing `uri` is refused as a precise 400 `invalid_query`.
pub(crate) async fn assert_invalid_query(router: &Router, uri: &str) {
    let (status, answer) = call(router, "GET", uri, Some(AUDITOR), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {answer}");
    assert_eq!(
        answer["error"]["code"],
        json!("invalid_query"),
        "{uri}: {answer}"
    );
}

#[tokio::test]
async fn decisions_are_stored_signed_and_listed_by_tool() {
    for s in services().await {
        let a = TestAgent::registered(&s.store).await;
        let denied = decision(&a.key, "printEnv", ToolOutcome::Denied);
        let body = signed(denied.clone(), &a.key);
        let (status, answer) = post_decision(&s.router, body.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        assert_eq!(answer["replayed"], json!(false));
        // The same body again: one decision.
        let (status, answer) = post_decision(&s.router, body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["replayed"], json!(true));
        // The same id with other content: refused, nothing changes.
        let mut other = denied.clone();
        other.outcome = ToolOutcome::Allowed;
        let (status, answer) = sign_and_post(&s.router, other, &a.key, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        let allowed = decision(&a.key, "echo", ToolOutcome::Allowed);
        let (status, _) = sign_and_post(&s.router, allowed, &a.key, None).await;
        assert_eq!(status, StatusCode::CREATED);

        let (status, page) = call(
            &s.router,
            "GET",
            "/v1/tool-decisions?tool=printEnv",
            Some(AUDITOR),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{page}");
        assert_eq!(items[0]["id"], json!(denied.id));
        assert_eq!(items[0]["outcome"], json!("denied"));
        assert_eq!(items[0]["agent"], json!(a.key.address()));
        assert_eq!(items[0]["policy_version"], json!(3));
        assert_eq!(items[0]["leaf_hash"], json!(B256::repeat_byte(7)));
        let (_, all) = call(&s.router, "GET", "/v1/tool-decisions", Some(AUDITOR), None).await;
        assert_eq!(all["items"].as_array().unwrap().len(), 2);
        let (_, allowed) = call(
            &s.router,
            "GET",
            "/v1/tool-decisions?outcome=allowed",
            Some(AUDITOR),
            None,
        )
        .await;
        assert_eq!(allowed["items"][0]["tool"], json!("echo"));
        // Not for the agent, nor anyone without a token.
        let (status, _) = call(&s.router, "GET", "/v1/tool-decisions", None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}

/// Attacker A holds its own agent key: it cannot write decisions in another agent's name, and
/// an unregistered key writes nothing.
#[tokio::test]
async fn no_key_writes_another_agents_decisions() {
    for s in services().await {
        let victim = TestAgent::registered(&s.store).await;
        let attacker = TestAgent::registered(&s.store).await;
        let forged = decision(&victim.key, "transfer", ToolOutcome::Allowed);
        let (status, answer) = sign_and_post(&s.router, forged, &attacker.key, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
        assert_eq!(answer["error"]["code"], json!("bad_signature"), "{answer}");
        let stranger = Secp256k1Signer::random().unwrap();
        let own = decision(&stranger, "transfer", ToolOutcome::Allowed);
        let (status, answer) = sign_and_post(&s.router, own, &stranger, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
        let (_, all) = call(&s.router, "GET", "/v1/tool-decisions", Some(AUDITOR), None).await;
        assert_eq!(all["items"], json!([]));
    }
}

#[tokio::test]
async fn bad_input_is_a_precise_4xx() {
    for s in services().await {
        let a = TestAgent::registered(&s.store).await;
        let nul = decision(&a.key, "a\0b", ToolOutcome::Denied);
        let mut long = decision(&a.key, "t", ToolOutcome::Denied);
        long.upstream = "u".repeat(300);
        let mut huge = decision(&a.key, "t", ToolOutcome::Denied);
        huge.decided_at_ms = u64::MAX;
        let mut nul_reason = decision(&a.key, "t", ToolOutcome::Denied);
        nul_reason.reasons = vec!["x\0".into()];
        let mut empty = decision(&a.key, "", ToolOutcome::Denied);
        empty.reasons.clear();
        for (d, code) in [
            (nul, "invalid_request"),
            (long, "invalid_request"),
            (huge, "out_of_range"),
            (nul_reason, "invalid_request"),
            (empty, "invalid_request"),
        ] {
            let (status, answer) = sign_and_post(&s.router, d, &a.key, None).await;
            assert!(status.is_client_error(), "{status} {answer}");
            assert_eq!(answer["error"]["code"], json!(code), "{answer}");
        }
        let good: Value =
            serde_json::from_str(&signed(decision(&a.key, "t", ToolOutcome::Denied), &a.key))
                .unwrap();
        let mut unknown = good.clone();
        unknown["decision"]["extra"] = json!(1);
        let mut bad_outcome = good.clone();
        bad_outcome["decision"]["outcome"] = json!("maybe");
        let mut bad_signature = good.clone();
        bad_signature["signature"] = json!("0x00");
        for body in [
            unknown.to_string(),
            bad_outcome.to_string(),
            bad_signature.to_string(),
            "{".into(),
        ] {
            let (status, answer) = post_decision(&s.router, body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        }
        for query in [
            "outcome=maybe",
            "agent=nope",
            "cursor=x",
            "color=red",
            "limit=0",
        ] {
            assert_invalid_query(&s.router, &format!("/v1/tool-decisions?{query}")).await;
        }
        let (_, all) = call(&s.router, "GET", "/v1/tool-decisions", Some(AUDITOR), None).await;
        assert_eq!(all["items"], json!([]));
        // The same filters in the decisions' listing (`kind=tool`): the same 400s.
        assert_invalid_query(&s.router, "/v1/decisions?kind=tool&outcome=approved").await;
    }
}

/// The console lists them (a page of its own, linked from Decisions), filtered by tool, with
/// the agent-chosen tool name and reasons escaped.
#[tokio::test]
async fn the_console_lists_them_escaped() {
    let s = crate::service().await;
    let a = TestAgent::registered(&s.store).await;
    let evil = "<img src=x onerror=alert(1)>";
    let mut d = decision(&a.key, evil, ToolOutcome::Denied);
    d.reasons = vec![format!("no rule names `{evil}`")];
    let (status, _) = sign_and_post(&s.router, d, &a.key, None).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = sign_and_post(
        &s.router,
        decision(&a.key, "echo", ToolOutcome::Allowed),
        &a.key,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let cookie = crate::login(&s.router, AUDITOR).await;
    let (status, _, html) =
        crate::get_with_cookie(&s.router, "/decisions/tools?outcome=denied", &cookie).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(!html.contains("<img"), "{html}");
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{html}"
    );
    assert!(!html.contains("everything/echo"), "{html}");
    let (_, _, html) =
        crate::get_with_cookie(&s.router, "/decisions/tools?tool=echo", &cookie).await;
    assert!(
        html.contains("everything/echo") && !html.contains("&lt;img"),
        "{html}"
    );
    let (status, _, html) =
        crate::get_with_cookie(&s.router, "/decisions/tools?outcome=maybe", &cookie).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("is not an outcome"), "{html}");
    let (_, _, html) = crate::get_with_cookie(&s.router, "/decisions", &cookie).await;
    assert!(html.contains("href=\"/decisions/tools\""), "{html}");
}

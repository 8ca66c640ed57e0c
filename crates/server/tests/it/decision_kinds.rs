//! Issue 30: every decision in one listing. Tool-policy decisions are rows of `/v1/decisions`
//! (`kind=tool`, or `kind=all` beside the wallets' by time), filterable by tool and outcome,
//! exported as CSV and JSON Lines with agent-chosen names neutralised; the console's Decisions
//! page shows both kinds, escaped. Without `kind` the listing stays the payments'.

use axum::http::StatusCode;
use chaperone_api::tools::ToolOutcome;
use serde_json::{Value, json};

use crate::{
    AUDITOR, Service, TestAgent, call, call_text,
    tools::{assert_invalid_query, decision, sign_and_post},
};

/// Follows `next_cursor` to the end.
async fn all_pages(s: &Service, uri: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page_uri = match &cursor {
            Some(c) => format!("{uri}&cursor={c}"),
            None => uri.to_owned(),
        };
        let (status, page) = call(&s.router, "GET", &page_uri, Some(AUDITOR), None).await;
        assert_eq!(status, StatusCode::OK, "{page_uri}: {page}");
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return items,
        }
    }
}

fn kinds(items: &[Value]) -> Vec<&str> {
    let mut kinds: Vec<&str> = items.iter().map(|i| i["kind"].as_str().unwrap()).collect();
    kinds.sort_unstable();
    kinds
}

const FORMULA: &str = "=HYPERLINK(\"http://evil\")";

#[tokio::test]
async fn tool_decisions_are_decisions_filterable_by_kind_and_tool() {
    for s in crate::services().await {
        let s = crate::cosign::ready_on(s).await;
        // Four payment decisions (two approved, one pending approval, one denied)...
        for (value, nonce) in [(100, 1), (200, 2), (10_000_000, 3), (600, 4)] {
            crate::cosign::request(&s, value, nonce).await;
        }
        // ...and three tool decisions, one with a tool name a spreadsheet would run.
        let a = TestAgent::registered(&s.store).await;
        for (tool, outcome) in [
            ("printEnv", ToolOutcome::Denied),
            ("echo", ToolOutcome::Allowed),
            (FORMULA, ToolOutcome::Denied),
        ] {
            let (status, answer) =
                sign_and_post(&s.router, decision(&a.key, tool, outcome), &a.key, None).await;
            assert_eq!(status, StatusCode::CREATED, "{answer}");
        }

        // One listing, paged one row at a time across both kinds: every decision once.
        let everything = all_pages(&s, "/v1/decisions?kind=all&limit=1").await;
        assert_eq!(
            kinds(&everything),
            [
                "payment", "payment", "payment", "payment", "tool", "tool", "tool"
            ]
        );
        let mut ids: Vec<String> = everything
            .iter()
            .map(|i| i.get("request_id").or(i.get("id")).unwrap().to_string())
            .collect();
        ids.dedup();
        assert_eq!(ids.len(), 7);
        // Without `kind`: the payments, as before tool decisions existed (tagged).
        let default = all_pages(&s, "/v1/decisions?limit=100").await;
        assert_eq!(kinds(&default), ["payment"; 4]);
        // By tool (which implies kind=tool) and by kind.
        let by_tool = all_pages(&s, "/v1/decisions?tool=printEnv").await;
        assert_eq!(by_tool.len(), 1, "{by_tool:?}");
        assert_eq!(by_tool[0]["kind"], json!("tool"));
        assert_eq!(by_tool[0]["outcome"], json!("denied"));
        assert_eq!(by_tool[0]["agent"], json!(a.key.address()));
        assert_eq!(all_pages(&s, "/v1/decisions?kind=tool").await.len(), 3);
        assert_eq!(all_pages(&s, "/v1/decisions?kind=payment").await.len(), 4);
        // An outcome both kinds have selects both; one only tool calls have, tool calls.
        let denied = all_pages(&s, "/v1/decisions?kind=all&outcome=denied").await;
        assert_eq!(kinds(&denied), ["payment", "tool", "tool"]);
        let allowed = all_pages(&s, "/v1/decisions?kind=all&outcome=allowed").await;
        assert_eq!(allowed.len(), 1);
        assert_eq!(allowed[0]["tool"], json!("echo"));
        let approved = all_pages(&s, "/v1/decisions?kind=all&outcome=approved").await;
        assert_eq!(kinds(&approved), ["payment", "payment"]);

        // Exports: one header for both kinds; the formula is text.
        let (status, csv, _, _) = call_text(
            &s.router,
            "/v1/decisions?kind=all&format=csv&limit=100",
            AUDITOR,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{csv}");
        let header = csv.lines().next().unwrap();
        assert!(header.starts_with("kind,request_id,wallet,"), "{header}");
        assert!(
            header.contains(",upstream,tool,") && header.contains(",arguments_hash,"),
            "{header}"
        );
        assert_eq!(csv.lines().count(), 8, "{csv}");
        assert!(
            !csv.contains(",=HYPERLINK"),
            "a cell a spreadsheet runs: {csv}"
        );
        assert!(
            csv.contains("\"'=HYPERLINK(\"\"http://evil\"\")\""),
            "{csv}"
        );
        let (status, jsonl, _, _) =
            call_text(&s.router, "/v1/decisions?tool=echo&format=jsonl", AUDITOR).await;
        assert_eq!(status, StatusCode::OK);
        let line: Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
        assert_eq!(line["kind"], json!("tool"));
        assert_eq!(line["tool"], json!("echo"));

        // Filters of the other kind are precise 400s, never an empty page that looks true.
        for query in [
            "kind=maybe",
            "kind=payment&tool=echo",
            "kind=tool&wallet=0x0000000000000000000000000000000000000001",
            "kind=tool&reason=window_cap",
            "kind=all&reason=window_cap&tool=echo",
            "kind=all&outcome=maybe",
            "kind=tool&outcome=pending_approval",
            "tool=echo&agent=0x12",
        ] {
            assert_invalid_query(&s.router, &format!("/v1/decisions?{query}")).await;
        }
    }
}

/// The console's Decisions page lists both kinds (tool names and reasons escaped), filters by
/// kind and tool, and exports what it shows.
#[tokio::test]
async fn the_decisions_page_shows_tool_calls_escaped() {
    let s = crate::cosign::ready_on(crate::service().await).await;
    crate::cosign::request(&s, 100, 1).await;
    let a = TestAgent::registered(&s.store).await;
    let evil = "<img src=x onerror=alert(1)>";
    let mut d = decision(&a.key, evil, ToolOutcome::Denied);
    d.reasons = vec![format!("no rule names `{evil}`")];
    let (status, _) = sign_and_post(&s.router, d, &a.key, None).await;
    assert_eq!(status, StatusCode::CREATED);
    let cookie = crate::login(&s.router, AUDITOR).await;
    let (status, _, html) = crate::get_with_cookie(&s.router, "/decisions", &cookie).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(!html.contains("<img"), "{html}");
    assert!(
        html.contains("everything/&lt;img src=x onerror=alert(1)&gt;"),
        "{html}"
    );
    assert!(html.contains("href=\"/decisions/tools\""), "{html}");
    assert!(
        html.contains("/v1/decisions?format=csv&amp;kind=all"),
        "{html}"
    );
    // Payments only: no tool call.
    let (_, _, html) = crate::get_with_cookie(&s.router, "/decisions?kind=payment", &cookie).await;
    assert!(!html.contains("&lt;img"), "{html}");
    // One tool: no payment table.
    let (status, _, html) =
        crate::get_with_cookie(&s.router, "/decisions?tool=echo", &cookie).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        !html.contains("&lt;img") && !html.contains("<h2>Payments"),
        "{html}"
    );
    assert!(html.contains("kind=tool&amp;tool=echo"), "{html}");
    let (status, _, html) =
        crate::get_with_cookie(&s.router, "/decisions?kind=tool&wallet=0x12", &cookie).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
}

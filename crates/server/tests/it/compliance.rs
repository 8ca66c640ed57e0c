//! Every compliance endpoint on SQLite and PostgreSQL: filters, cursor pagination, the JSON,
//! JSON Lines and CSV forms, roles, and clear 400s for bad query parameters.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::{ADMIN, APPROVER, AUDITOR, Service, TestAgent, call, call_text, services};

async fn get(s: &Service, uri: &str) -> (StatusCode, Value) {
    call(&s.router, "GET", uri, Some(AUDITOR), None).await
}

/// Follows `next_cursor` to the end, collecting every item.
async fn all_pages(s: &Service, uri: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if uri.contains('?') { '&' } else { '?' };
        let page_uri = match &cursor {
            Some(c) => format!("{uri}{sep}cursor={c}"),
            None => uri.to_owned(),
        };
        let (status, page) = get(s, &page_uri).await;
        assert_eq!(status, StatusCode::OK, "{page_uri}: {page}");
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return items,
        }
    }
}

async fn populated() -> Vec<(Service, Vec<TestAgent>)> {
    let mut out = Vec::new();
    for s in services().await {
        let s = crate::cosign::ready_on(s).await;
        let mut agents = vec![
            TestAgent::registered(&s.store).await,
            TestAgent::registered(&s.store).await,
            TestAgent::registered(&s.store).await,
        ];
        for (i, agent) in agents.iter_mut().enumerate() {
            let batch = agent.batch(10 + i, "m");
            let (status, body) = call(
                &s.router,
                "POST",
                "/v1/records",
                None,
                Some(serde_json::to_string(&batch).unwrap()),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        for (value, nonce) in [(100, 1), (200, 2), (10_000_000, 3), (600, 4)] {
            crate::cosign::request(&s, value, nonce).await;
        }
        out.push((s, agents));
    }
    out
}

#[tokio::test]
async fn agents_and_their_records_page_filter_and_export() {
    for (s, agents) in populated().await {
        let listed = all_pages(&s, "/v1/agents?limit=2").await;
        assert_eq!(listed.len(), 3);
        let mut expected: Vec<String> = agents
            .iter()
            .map(|a| a.key.address().to_string().to_lowercase())
            .collect();
        expected.sort();
        let got: Vec<String> = listed
            .iter()
            .map(|a| a["address"].as_str().unwrap().to_lowercase())
            .collect();
        assert_eq!(got, expected);

        let agent = &agents[2];
        let base = format!("/v1/agents/{}/records", agent.key.address());
        let records = all_pages(&s, &format!("{base}?limit=5")).await;
        assert_eq!(records.len(), 12);
        let sequences: Vec<u64> = records
            .iter()
            .map(|r| r["sequence"].as_u64().unwrap())
            .collect();
        assert_eq!(sequences, (0..12).collect::<Vec<_>>());

        let model_b = all_pages(&s, &format!("{base}?model=model-b")).await;
        assert_eq!(model_b.len(), 6);
        assert!(model_b.iter().all(|r| r["model"] == "model-b"));
        let from = crate::NOW * 1000 + 3;
        let to = crate::NOW * 1000 + 7;
        let ranged = all_pages(&s, &format!("{base}?from_ms={from}&to_ms={to}")).await;
        assert_eq!(ranged.len(), 4, "sequences 3 to 6");

        let (status, csv, content_type, cursor) =
            call_text(&s.router, &format!("{base}?format=csv&limit=5"), AUDITOR).await;
        assert_eq!(status, StatusCode::OK);
        assert!(content_type.unwrap().starts_with("text/csv"));
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "index,leaf_hash,agent,sequence,timestamp_ms,model,input_commitment,output_commitment,metadata_commitment,previous"
        );
        assert_eq!(lines.len(), 6);
        assert_eq!(cursor, Some(records[4]["index"].to_string()));

        let (status, jsonl, content_type, _) =
            call_text(&s.router, &format!("{base}?format=jsonl"), AUDITOR).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type.as_deref(), Some("application/x-ndjson"));
        let parsed: Vec<Value> = jsonl
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(parsed, records);

        let unknown = format!(
            "/v1/agents/{}/records",
            chaperone_core::Address::repeat_byte(1)
        );
        assert_eq!(get(&s, &unknown).await.0, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn decisions_and_spend_page_filter_and_export() {
    for (s, _) in populated().await {
        let decisions = all_pages(&s, "/v1/decisions?limit=1").await;
        assert_eq!(decisions.len(), 4);
        let outcomes: Vec<&str> = decisions
            .iter()
            .map(|d| d["outcome"].as_str().unwrap())
            .collect();
        let mut sorted = outcomes.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            ["approved", "approved", "denied", "pending_approval"]
        );
        let denied = all_pages(&s, "/v1/decisions?outcome=denied").await;
        assert_eq!(denied.len(), 1);
        assert!(!denied[0]["reasons"].as_array().unwrap().is_empty());
        let by_wallet = all_pages(&s, &format!("/v1/decisions?wallet={}", s.wallet)).await;
        assert_eq!(by_wallet.len(), 4);
        let none = all_pages(&s, &format!("/v1/decisions?to={}", crate::NOW)).await;
        assert!(none.is_empty());

        let (status, csv, _, _) = call_text(&s.router, "/v1/decisions?format=csv", AUDITOR).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(csv.lines().count(), 5);
        assert!(csv.lines().next().unwrap().starts_with(
            "request_id,wallet,created_at,created_at_iso,outcome,reasons,reasons_text"
        ));
        // Readable beside exact: ISO 8601 times and reasons in words.
        assert!(csv.contains(",2025-06-15T"), "{csv}");
        assert!(csv.contains("is over the per-payment cap of"), "{csv}");
        // Reasons are their codes, not JSON (`reasons_text` has the words and figures).
        assert!(csv.contains(",per_transaction_cap; window_cap,"), "{csv}");
        assert!(!csv.contains("\"[{\"\""), "{csv}");

        let spend = all_pages(&s, &format!("/v1/spend?wallet={}&window=1h", s.wallet)).await;
        assert_eq!(spend.len(), 1, "{spend:?}");
        assert_eq!(spend[0]["token"], "native");
        assert_eq!(spend[0]["reserved"], "300", "two approvals of 100 and 200");
        assert_eq!(spend[0]["committed"], "300");
        assert_eq!(spend[0]["approvals"], json!(2));
        let (status, jsonl, _, _) = call_text(&s.router, "/v1/spend?format=jsonl", AUDITOR).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(jsonl.lines().count(), 1);
    }
}

#[tokio::test]
async fn numbers_beyond_63_bits_are_a_400_on_every_backend() {
    for (s, agents) in populated().await {
        let base = format!("/v1/agents/{}/records", agents[0].key.address());
        let huge = 1u64 << 63;
        for query in [
            format!("from_ms={huge}"),
            format!("to_ms={}", u64::MAX),
            format!("cursor={huge}"),
        ] {
            let uri = format!("{base}?{query}");
            let (status, body) = get(&s, &uri).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
            assert_eq!(body["error"]["code"], "out_of_range", "{uri}");
        }
        let wallet = serde_json::json!({
            "address": chaperone_core::Address::repeat_byte(0x42),
            "chain_id": huge,
            "agent": chaperone_core::Address::repeat_byte(0x43),
        });
        let (status, body) = call(
            &s.router,
            "POST",
            "/v1/admin/wallets",
            Some(ADMIN),
            Some(wallet.to_string()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"]["code"], "out_of_range");
    }
}

#[tokio::test]
async fn bad_query_parameters_and_wrong_roles_get_clear_errors() {
    let (s, _) = populated().await.remove(0);
    for uri in [
        "/v1/agents?limit=0",
        "/v1/agents?limit=1001",
        "/v1/agents?limit=ten",
        "/v1/agents?format=xml",
        "/v1/agents?cursor=not-an-address",
        "/v1/agents?colour=blue",
        "/v1/agents?limit=1&limit=2",
        "/v1/decisions?outcome=maybe",
        "/v1/decisions?from=yesterday",
        "/v1/decisions?wallet=0x12",
        "/v1/decisions?cursor=garbage",
        "/v1/spend?window=forever",
        "/v1/spend?token=gold",
        "/v1/agents/0xnothex/records",
    ] {
        let (status, body) = get(&s, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(body["error"]["code"], "invalid_query", "{uri}");
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    }
    for uri in ["/v1/agents", "/v1/decisions", "/v1/spend"] {
        assert_eq!(
            call(&s.router, "GET", uri, None, None).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            call(&s.router, "GET", uri, Some(APPROVER), None).await.0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            call(&s.router, "GET", uri, Some(ADMIN), None).await.0,
            StatusCode::OK
        );
    }
}

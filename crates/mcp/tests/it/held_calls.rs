//! A call held for a human, against a hand-written server that approves it (or refuses its
//! report): what the approver did not see is not forwarded (red team i30c #3, #6, #8).

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use chaperone_mcp::{CallRecorder, DecisionReporter, GatewayConfig, GatewayState};
use chaperone_sdk::Secp256k1Signer;
use rmcp::model::{CallToolRequestParams, CallToolResponse, RequestMetaObject, UpdateTaskParams};
use serde_json::{Value, json};

use crate::{
    harness::{Agent, TASK, agent_over_stdio, recorder, serve},
    task_inputs::upstream,
};

/// A server that approves every held call, or refuses every report; counts withdrawals.
async fn server(refuse_reports: bool, withdrawals: Arc<AtomicUsize>) -> String {
    use axum::{extract::Path, http::StatusCode, response::IntoResponse, routing};
    let zero = format!("0x{}", "0".repeat(64));
    let report = move || async move {
        if refuse_reports {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": {"code": "bad_request", "message": "no"}})),
            )
                .into_response();
        }
        axum::Json(json!({"id": zero, "replayed": false})).into_response()
    };
    let approval =
        |Path(id): Path<String>| async move { axum::Json(json!({"id": id, "status": "approved"})) };
    let withdraw = move |Path(id): Path<String>| {
        let withdrawals = withdrawals.clone();
        async move {
            withdrawals.fetch_add(1, Ordering::SeqCst);
            axum::Json(json!({"id": id, "status": "withdrawn"}))
        }
    };
    let url = serve(
        axum::Router::new()
            .route("/v1/tool-decisions", routing::post(report))
            .route("/v1/tool-decisions/{id}/approval", routing::get(approval))
            .route("/v1/tool-decisions/{id}/withdraw", routing::post(withdraw)),
    )
    .await;
    url.trim_end_matches("/mcp").to_owned()
}

/// A gateway holding every call of `slow` for `server`'s approval, recording to a fresh outbox.
async fn held_gateway(upstream: &str, server: &str) -> Arc<GatewayState> {
    let recorder = CallRecorder::new(recorder(u64::MAX).await, Duration::ZERO);
    let config = GatewayConfig::from_toml(&format!(
        "[policy]\n[[policy.tool]]\nname = \"slow\"\naction = \"approve\"\n\
         [[upstream]]\nname = \"hostile\"\nurl = \"{upstream}\"\n"
    ))
    .unwrap();
    let reporter = DecisionReporter::new(server, Secp256k1Signer::random().unwrap());
    GatewayState::reporting(config, recorder, None, Some(reporter)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_calls_task_takes_no_input_responses_and_its_meta_is_not_forwarded() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let url = upstream(seen.clone()).await;
    let server = server(false, Arc::default()).await;
    let state = held_gateway(&url, &server).await;
    let client = agent_over_stdio(state, Agent::default()).await;
    let mut params = CallToolRequestParams::new("slow");
    let mut meta = rmcp::model::MetaObject::new();
    meta.0
        .insert("vendor/unseen".into(), json!({"pay_to": "0xattacker"}));
    params.meta = Some(RequestMetaObject(meta));
    let answer = client
        .call_tool_once(params)
        .await
        .expect("approved, answered");
    assert!(matches!(answer, CallToolResponse::Task(_)), "{answer:?}");
    let calls: Vec<Value> = seen.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(
        !calls[0].to_string().contains("0xattacker"),
        "the held call's _meta, never shown to the approver, reached the tool: {calls:?}"
    );
    let responses = std::collections::BTreeMap::from([(
        "confirm".to_owned(),
        json!({"action": "accept", "content": {"pay_to": "0xattacker"}}),
    )]);
    let update = client
        .peer()
        .update_task(UpdateTaskParams::new(TASK, responses))
        .await;
    let e = update.expect_err("a held call's task takes no input responses");
    assert!(e.to_string().contains("approver did not see"), "{e}");
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "nothing more reached the tool"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_call_whose_report_fails_is_withdrawn() {
    let url = upstream(Arc::default()).await;
    let withdrawals = Arc::new(AtomicUsize::new(0));
    let server = server(true, withdrawals.clone()).await;
    let state = held_gateway(&url, &server).await;
    let client = agent_over_stdio(state, Agent::default()).await;
    let answer = client
        .call_tool_once(CallToolRequestParams::new("slow"))
        .await
        .expect("answered: refused");
    assert!(
        format!("{answer:?}").contains("could not be asked for"),
        "{answer:?}"
    );
    assert_eq!(withdrawals.load(Ordering::SeqCst), 1, "withdrawn once");
}

//! A tool call whose record cannot be written: the tool ran, the answer is withheld.

use std::time::Duration;

use chaperone_mcp::CallRecorder;
use rmcp::model::CallToolRequestParams;
use serde_json::json;

use crate::harness::{Agent, Hostility, agent_over_stdio, gateway, recorder, upstream};

fn echo(message: &str) -> CallToolRequestParams {
    CallToolRequestParams::new("echo")
        .with_arguments(json!({ "message": message }).as_object().unwrap().clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_whose_record_is_not_written_is_withheld() {
    let url = upstream(Hostility::default()).await;
    // The outbox takes one record and then none (a full or failing disk: the recorder keeps
    // the record queued and retries).
    let recorder = recorder(1).await;
    let calls = CallRecorder::new(recorder.clone(), Duration::ZERO)
        .with_persist_timeout(Duration::from_secs(1));
    let client = agent_over_stdio(gateway(&url, calls), Agent::default()).await;
    let first = client.call_tool(echo("first")).await.expect("recorded");
    assert!(format!("{first:?}").contains("first"));
    let second = client.call_tool(echo("second, never recorded")).await;
    match second {
        Ok(answer) => panic!("the answer reached the agent unrecorded: {answer:?}"),
        Err(e) => {
            let e = e.to_string();
            assert!(
                e.contains("withholds the answer") && e.contains("the tool ran"),
                "{e}"
            );
            assert!(
                !e.contains("never recorded"),
                "the error quotes no content: {e}"
            );
        }
    }
    assert_eq!(recorder.progress().persisted, 1, "one record in the outbox");
}

/// Red team i30c #2: a record late to the outbox is still returned (so a paid call's payment
/// is bound to it once it persists): the withheld answer's error names the queued record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_late_to_the_outbox_is_named_in_the_withheld_answer() {
    let url = upstream(Hostility::default()).await;
    let recorder = recorder(1).await;
    let calls = CallRecorder::new(recorder.clone(), Duration::ZERO)
        .with_persist_timeout(Duration::from_secs(1));
    let client = agent_over_stdio(gateway(&url, calls), Agent::default()).await;
    client.call_tool(echo("first")).await.expect("recorded");
    let second = client.call_tool(echo("second, late")).await;
    let Err(rmcp::ServiceError::McpError(error)) = second else {
        panic!("the answer is withheld with an MCP error: {second:?}");
    };
    assert!(error.message.contains("the tool ran"), "{}", error.message);
    let record = error
        .data
        .as_ref()
        .and_then(|d| d.get(chaperone_mcp::RECORD_META_KEY))
        .unwrap_or_else(|| panic!("the error names the queued record: {error:?}"));
    assert!(record.get("leaf_hash").is_some(), "{record}");
    assert!(record.get("outbox_error").is_some(), "{record}");
    assert!(
        record.get("receipt").is_none(),
        "not in the log yet: {record}"
    );
}

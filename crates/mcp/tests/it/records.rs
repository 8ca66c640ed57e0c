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

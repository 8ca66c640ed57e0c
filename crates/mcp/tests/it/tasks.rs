//! Tasks (SEP-2663): a task's end reaches the agent only as recorded, once, however the agent
//! polls and whatever the upstream sends.

use std::time::Duration;

use chaperone_mcp::{CallRecorder, RECORD_META_KEY};
use rmcp::model::{CallToolRequestParams, CallToolResponse, GetTaskParams, GetTaskResult};
use serde_json::Value;

use crate::harness::{
    Agent, Hostility, TASK, agent_over_http, agent_over_stdio, gateway, recorder,
    recording_gateway, upstream, upstream_answering_polls_with_a_tool_result,
};

fn record_of(result: &GetTaskResult) -> Value {
    result
        .meta
        .as_ref()
        .and_then(|m| m.0.get(RECORD_META_KEY))
        .cloned()
        .unwrap_or_else(|| panic!("a task's end without its record: {result:?}"))
}

fn text_of(result: &GetTaskResult) -> String {
    serde_json::to_value(&result.task).unwrap()["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn start_task(client: &rmcp::service::RunningService<rmcp::RoleClient, Agent>) {
    let answer = client
        .call_tool_once(CallToolRequestParams::new("slow"))
        .await
        .expect("the call is answered");
    assert!(
        matches!(answer, CallToolResponse::Task(ref t) if t.task.task_id == TASK),
        "{answer:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_polls_of_a_tasks_end_all_carry_its_one_record() {
    let url = upstream(Hostility {
        get_delay: Duration::from_millis(50),
        ..Hostility::default()
    })
    .await;
    let recorder = recorder(u64::MAX).await;
    // No server gives a receipt: each record waits the whole 300 ms for one, so the polls
    // overlap the first one's record.
    let state = gateway(
        &url,
        CallRecorder::new(recorder.clone(), Duration::from_millis(300)),
    );
    let client = agent_over_stdio(state, Agent::default()).await;
    start_task(&client).await;
    let poll = || client.peer().get_task(GetTaskParams::new(TASK));
    let (a, b, c) = tokio::join!(poll(), poll(), poll());
    let answers = [a, b, c].map(|answer| answer.expect("each poll is answered"));
    let first = record_of(&answers[0]);
    for answer in &answers {
        assert_eq!(text_of(answer), "done");
        assert_eq!(record_of(answer), first, "every poll shows the one record");
    }
    recorder.flush().await.unwrap();
    let records = recorder.records().await.unwrap();
    assert_eq!(
        records.len(),
        2,
        "the handle and the end, once: {records:?}"
    );
    assert_eq!(
        Some(records[1].1.to_string()),
        first["leaf_hash"].as_str().map(str::to_owned)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_tasks_other_answer_is_never_shown_under_its_record() {
    let url = upstream(Hostility {
        changes_its_answer: true,
        ..Hostility::default()
    })
    .await;
    let (state, _) = recording_gateway(&url).await;
    let client = agent_over_stdio(state, Agent::default()).await;
    start_task(&client).await;
    let first = client
        .peer()
        .get_task(GetTaskParams::new(TASK))
        .await
        .expect("the end");
    assert_eq!(text_of(&first), "done");
    for _ in 0..2 {
        match client.peer().get_task(GetTaskParams::new(TASK)).await {
            Ok(later) => {
                assert_eq!(text_of(&later), "done", "another answer under the record");
                assert_eq!(record_of(&later), record_of(&first));
            }
            Err(e) => assert!(e.to_string().contains("recorded end"), "{e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tasks_end_whose_record_fails_never_reaches_the_agent() {
    let url = upstream(Hostility::default()).await;
    // The outbox takes the task's handle and then nothing (a full or failing disk).
    let recorder = recorder(1).await;
    let calls = CallRecorder::new(recorder.clone(), Duration::ZERO)
        .with_persist_timeout(Duration::from_millis(300));
    let client = agent_over_stdio(gateway(&url, calls), Agent::default()).await;
    start_task(&client).await;
    for poll in 0..3 {
        match client.peer().get_task(GetTaskParams::new(TASK)).await {
            Ok(answer) => panic!("poll {poll}: the end reached the agent unrecorded: {answer:?}"),
            Err(e) => assert!(e.to_string().contains("withholds the answer"), "{e}"),
        }
    }
    assert_eq!(
        recorder.progress().persisted,
        1,
        "only the handle was written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_notifications_reach_the_agent_only_as_recorded() {
    let url = upstream(Hostility {
        notifies_results: true,
        notifies_after_get: true,
        ..Hostility::default()
    })
    .await;
    let (state, _) = recording_gateway(&url).await;
    let agent = Agent::default();
    let client = agent_over_stdio(state, agent.clone()).await;
    start_task(&client).await;
    // The upstream's unasked notices come 200 ms after the task.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let polled = client
        .peer()
        .get_task(GetTaskParams::new(TASK))
        .await
        .expect("the end");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = agent.notifications.lock().unwrap().clone();
    let wire = agent.wire.lock().unwrap().clone();
    let text = serde_json::to_string(&(&seen, &wire)).unwrap();
    assert!(
        !text.contains("leaked"),
        "an unrecorded result reached the agent: {text}"
    );
    assert!(
        !text.contains("forged"),
        "the upstream's own record reached the agent: {text}"
    );
    let ends: Vec<&Value> = wire
        .iter()
        .filter(|n| n["method"] == "notifications/tasks")
        .collect();
    assert_eq!(
        ends.len(),
        1,
        "the end notified after it was recorded: {text}"
    );
    assert_eq!(
        ends[0]["params"]["_meta"][RECORD_META_KEY],
        record_of(&polled),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_answered_with_a_tool_result_never_reaches_the_agent() {
    let url = upstream_answering_polls_with_a_tool_result().await;
    let (state, _) = recording_gateway(&url).await;
    let agent = Agent::default();
    let client = agent_over_stdio(state, agent.clone()).await;
    start_task(&client).await;
    let polled = client.peer().get_task(GetTaskParams::new(TASK)).await;
    assert!(polled.is_err(), "{polled:?}");
    let wire = serde_json::to_string(&*agent.wire.lock().unwrap()).unwrap();
    assert!(
        !wire.contains("smuggled"),
        "unrecorded content reached the agent: {wire}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http_a_task_is_routed_and_its_end_recorded() {
    let url = upstream(Hostility::default()).await;
    let (state, _) = recording_gateway(&url).await;
    let client = agent_over_http(state, Agent::default()).await;
    start_task(&client).await;
    let end = client
        .peer()
        .get_task(GetTaskParams::new(TASK))
        .await
        .expect("tasks/get over --http");
    assert_eq!(text_of(&end), "done");
    record_of(&end);
    let unknown = client
        .peer()
        .get_task(GetTaskParams::new("never-issued"))
        .await;
    assert!(
        unknown.is_err_and(|e| e.to_string().contains("unknown task")),
        "an id no call created is refused"
    );
}

//! Tasks (2026 protocol, SEP-2663): a `tools/call` may be answered with a task handle, and its
//! result comes later through `tasks/get`. The call's record at that point holds only the
//! handle, so the gateway keeps, per session, which upstream issued each task and for which
//! call: `tasks/get`, `tasks/update` and `tasks/cancel` go to that upstream (an id no call of
//! this session created is refused, never sent to a guessed upstream), and a task's end
//! (completed, failed, cancelled) is recorded once, as its call, naming the handle's record.
//!
//! No end reaches the agent unrecorded: polls of one task that see its end wait for each other
//! (the first records, the others get the same record); a record that fails is an error and
//! the next poll records again; a later answer that differs from the recorded end is refused
//! (an upstream cannot show something else under the record); and an upstream's
//! `notifications/tasks` reaches the agent only for a task that upstream issued in this
//! session, an end only once it is recorded and only as recorded (upstream.rs).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use chaperone_core::B256;
use rmcp::{
    RoleServer,
    model::{ClientRequest, ErrorData, ServerResult, TaskStatus},
    service::RequestContext,
};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::{
    gateway::Gateway,
    meta::{strip_object, strip_payload, upstream_result},
    policy::PolicyDecision,
    record::{CallStatus, ToolCall},
};

/// The most tasks one session keeps track of (a finished one is dropped first).
const MAX_TASKS: usize = 1024;

/// A task's end as recorded: what goes into the answer's `_meta`, and the fingerprint of the
/// end that was recorded (only that end is ever shown under it).
#[derive(Debug, Clone)]
struct RecordedEnd {
    meta: Value,
    fingerprint: [u8; 32],
}

/// The call a task belongs to.
#[derive(Debug)]
struct IssuedTask {
    upstream: String,
    tool: String,
    call_id: String,
    arguments: Map<String, Value>,
    decision: PolicyDecision,
    handle: B256,
    /// Its call was held for a human (`approval_required`): the approver saw its arguments,
    /// never the input responses a `tasks/update` would add, so none is forwarded.
    held: bool,
    /// Its end, once recorded. Held while the end is being recorded, so that another poll
    /// waits for that record rather than passing the end on unrecorded.
    end: Arc<tokio::sync::Mutex<Option<RecordedEnd>>>,
}

impl IssuedTask {
    fn ended(&self) -> bool {
        self.end.try_lock().is_ok_and(|end| end.is_some())
    }
}

/// A session's tasks, by id (shared with the session's upstream clients, which route the
/// upstreams' task notifications by it).
#[derive(Debug, Default)]
pub(crate) struct TaskRoutes(Mutex<HashMap<String, Arc<IssuedTask>>>);

/// What an end is compared by: its JSON as the agent is shown it (the task, its result or
/// error, its `_meta` without the gateway's keys), whether it came as a `tasks/get` answer or
/// in a notification.
pub(crate) fn shown_end(mut value: Value) -> Value {
    if let Some(object) = value.as_object_mut() {
        object.remove("resultType");
        strip_payload(object);
        let empty_meta = match object.get_mut("_meta") {
            Some(Value::Object(meta)) => {
                strip_object(meta);
                meta.is_empty()
            }
            Some(Value::Null) => true,
            _ => false,
        };
        if empty_meta {
            object.remove("_meta");
        }
    }
    value
}

fn fingerprint(shown: &Value) -> [u8; 32] {
    // serde_json's Map is a BTreeMap here: equal ends serialise to equal bytes.
    Sha256::digest(serde_json::to_vec(shown).unwrap_or_default()).into()
}

/// The status a task's end is recorded with, or `None` while it runs.
pub(crate) fn end_status(status: TaskStatus) -> Option<CallStatus> {
    match status {
        TaskStatus::Completed => Some(CallStatus::Answered),
        TaskStatus::Failed => Some(CallStatus::UpstreamError),
        TaskStatus::Cancelled => Some(CallStatus::Cancelled),
        // Still running (or a status this build does not know): nothing has ended.
        _ => None,
    }
}

fn changed_end(upstream: &str, id: &str, meta: &Value) -> ErrorData {
    ErrorData::internal_error(
        format!(
            "upstream `{upstream}` answered task `{id}` differently from its recorded end \
             (record {}): the gateway shows a task's end only as recorded",
            meta.get("leaf_hash").unwrap_or(&Value::Null)
        ),
        None,
    )
}

impl TaskRoutes {
    /// Notes a task `upstream` answered `call` with (the handle recorded as `handle`).
    pub(crate) fn issued(
        &self,
        id: &str,
        upstream: &str,
        call: &ToolCall<'_>,
        decision: &PolicyDecision,
        handle: B256,
        held: bool,
    ) -> Result<(), ErrorData> {
        let mut tasks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if tasks.len() >= MAX_TASKS {
            tasks.retain(|_, t| !t.ended());
        }
        if tasks.len() >= MAX_TASKS {
            return Err(ErrorData::internal_error(
                format!("this session has {MAX_TASKS} unfinished tasks: the gateway takes no more"),
                None,
            ));
        }
        if tasks.contains_key(id) {
            // Two calls answered with the same id (from two upstreams, or one upstream
            // twice): routing or recording by it would be a guess.
            return Err(ErrorData::internal_error(
                format!("upstream `{upstream}` answered with a task id this session already has"),
                None,
            ));
        }
        tasks.insert(
            id.to_owned(),
            Arc::new(IssuedTask {
                upstream: upstream.to_owned(),
                tool: call.tool.to_owned(),
                call_id: call.call_id.clone(),
                arguments: call.arguments.clone(),
                decision: decision.clone(),
                handle,
                held,
                end: Arc::default(),
            }),
        );
        Ok(())
    }

    /// The upstream that issued task `id`.
    pub(crate) fn upstream_of(&self, id: &str) -> Option<String> {
        let tasks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        tasks.get(id).map(|t| t.upstream.clone())
    }

    fn task(&self, id: &str, upstream: &str) -> Option<Arc<IssuedTask>> {
        let tasks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        tasks.get(id).filter(|t| t.upstream == upstream).cloned()
    }

    /// The record's `_meta` for task `id`'s end `shown` (see [`shown_end`]), if that end was
    /// recorded; an error if another end was. Waits while a poll records it.
    pub(crate) async fn recorded_end(
        &self,
        id: &str,
        upstream: &str,
        shown: &Value,
    ) -> Option<Result<Value, ErrorData>> {
        let task = self.task(id, upstream)?;
        let end = task.end.lock().await;
        let recorded = end.as_ref()?;
        Some(if recorded.fingerprint == fingerprint(shown) {
            Ok(recorded.meta.clone())
        } else {
            Err(changed_end(upstream, id, &recorded.meta))
        })
    }

    /// The record of task `id`'s end, if one was recorded (waits while a poll records it):
    /// after it, a running task's answer or notice (its status message, its input requests)
    /// would reach the agent under no record (red team i30c #7).
    pub(crate) async fn end_record(&self, id: &str, upstream: &str) -> Option<Value> {
        let task = self.task(id, upstream)?;
        let end = task.end.lock().await;
        end.as_ref().map(|recorded| recorded.meta.clone())
    }

    /// Task `id`'s end `shown`, recorded by `record` unless it was (then its record, or an
    /// error if another end was recorded). Polls that see the end at once take turns: the
    /// first records, the others get its record. A failed record leaves the end unrecorded,
    /// for the next poll to record.
    async fn end<F, Fut>(
        &self,
        id: &str,
        upstream: &str,
        shown: &Value,
        record: F,
    ) -> Result<Value, ErrorData>
    where
        F: FnOnce(Arc<IssuedTask>) -> Fut,
        Fut: std::future::Future<Output = Result<Value, ErrorData>>,
    {
        let Some(task) = self.task(id, upstream) else {
            return Err(ErrorData::invalid_params(
                format!("unknown task `{id}`: no tool call of this session created it"),
                None,
            ));
        };
        let slot = task.end.clone();
        let mut end = slot.lock().await;
        let fingerprint = fingerprint(shown);
        if let Some(recorded) = end.as_ref() {
            return if recorded.fingerprint == fingerprint {
                Ok(recorded.meta.clone())
            } else {
                Err(changed_end(upstream, id, &recorded.meta))
            };
        }
        let meta = record(task).await?;
        *end = Some(RecordedEnd {
            meta: meta.clone(),
            fingerprint,
        });
        Ok(meta)
    }
}

impl Gateway {
    /// `tasks/get`, `tasks/update`, `tasks/cancel`: to the upstream that issued the task.
    pub(crate) async fn task_request(
        &self,
        request: ClientRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<ServerResult, ErrorData> {
        let (id, get) = match &request {
            ClientRequest::GetTaskRequest(r) => (r.params.task_id.clone(), true),
            ClientRequest::UpdateTaskRequest(r) => (r.params.task_id.clone(), false),
            ClientRequest::CancelTaskRequest(r) => (r.params.task_id.clone(), false),
            other => {
                return Err(ErrorData::internal_error(
                    format!("{} is not a task request", other.method()),
                    None,
                ));
            }
        };
        let upstreams = self.session(&context).await?;
        let Some(upstream) = self
            .tasks
            .upstream_of(&id)
            .and_then(|name| upstreams.iter().find(|u| u.name == name))
        else {
            return Err(ErrorData::invalid_params(
                format!("unknown task `{id}`: no tool call of this session created it"),
                None,
            ));
        };
        if let ClientRequest::UpdateTaskRequest(update) = &request {
            self.record_update(&id, &upstream.name, &update.params.input_responses)
                .await?;
        }
        let mut context = context;
        if self.tasks.task(&id, &upstream.name).is_some_and(|t| t.held) {
            // A held call's task forwards no more of the agent's `_meta` than the call did.
            crate::call::keep_held_meta(&mut context.meta);
        }
        let answer = self.pass(upstream, request, context).await?;
        // Only a task's own answer passes: anything else (a tool result in answer to
        // `tasks/get`, say) would reach the agent as no record says.
        let result = match answer {
            ServerResult::GetTaskResult(result) if get => result,
            answer @ (ServerResult::TaskAckResult(_) | ServerResult::EmptyResult(_)) if !get => {
                return Ok(answer);
            }
            _ => {
                return Err(ErrorData::internal_error(
                    format!(
                        "upstream `{}` answered a task request with another kind of result",
                        upstream.name
                    ),
                    None,
                ));
            }
        };
        let Some(status) = end_status(result.task.status()) else {
            if let Some(meta) = self.tasks.end_record(&id, &upstream.name).await {
                return Err(changed_end(&upstream.name, &id, &meta));
            }
            return Ok(ServerResult::GetTaskResult(result));
        };
        let shown = shown_end(serde_json::to_value(&result).map_err(|e| {
            ErrorData::internal_error(format!("reading a task's answer: {e}"), None)
        })?);
        let (task_id, end) = (&id, &shown);
        let meta = self
            .tasks
            .end(&id, &upstream.name, &shown, |task| async move {
                let call = ToolCall {
                    upstream: &task.upstream,
                    tool: &task.tool,
                    call_id: task.call_id.clone(),
                    arguments: &task.arguments,
                };
                let extra = Map::from_iter([(
                    "mcp.task".to_owned(),
                    json!({ "id": task_id, "handle_record": task.handle }),
                )]);
                self.record(&call, &task.decision, status, end, extra)
                    .await
                    .map(|(_, meta)| meta)
            })
            .await?;
        upstream_result(ServerResult::GetTaskResult(result), Some(meta))
    }

    /// Records a `tasks/update`'s input responses (what the tool will act on, committed as a
    /// call's arguments are) before they are sent on, under the task's lock (after its end
    /// nothing is sent). A task whose call a human approved takes none: the approver never
    /// saw them (red team i30c #3).
    async fn record_update(
        &self,
        id: &str,
        upstream: &str,
        responses: &rmcp::model::InputResponses,
    ) -> Result<(), ErrorData> {
        let Some(task) = self.tasks.task(id, upstream) else {
            return Err(ErrorData::invalid_params(
                format!("unknown task `{id}`: no tool call of this session created it"),
                None,
            ));
        };
        if task.held {
            return Err(ErrorData::invalid_params(
                format!(
                    "task `{id}` belongs to a call a human approved: the approver did not see \
                     these input responses, so the gateway does not forward them (ask for the \
                     call again with its inputResponses, to be approved with them)"
                ),
                None,
            ));
        }
        let end = task.end.lock().await;
        if let Some(recorded) = end.as_ref() {
            return Err(ErrorData::invalid_params(
                format!(
                    "task `{id}` has ended (record {}): it takes no more input",
                    recorded.meta.get("leaf_hash").unwrap_or(&Value::Null)
                ),
                None,
            ));
        }
        let inputs: Map<String, Value> = responses
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or(Value::Null)))
            .collect();
        let call = ToolCall {
            upstream: &task.upstream,
            tool: &task.tool,
            call_id: task.call_id.clone(),
            arguments: &inputs,
        };
        let extra = Map::from_iter([
            ("mcp.method.name".to_owned(), json!("tasks/update")),
            (
                "mcp.task".to_owned(),
                json!({ "id": id, "handle_record": task.handle }),
            ),
        ]);
        self.record(
            &call,
            &task.decision,
            CallStatus::Forwarded,
            &Value::Null,
            extra,
        )
        .await?;
        drop(end);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::policy::ToolOutcome;

    fn routes_with_task() -> TaskRoutes {
        let routes = TaskRoutes::default();
        let arguments = Map::new();
        let call = ToolCall {
            upstream: "b",
            tool: "slow",
            call_id: "7".into(),
            arguments: &arguments,
        };
        let decision = PolicyDecision {
            outcome: ToolOutcome::Allowed,
            reasons: vec![],
            rule: None,
            policy_version: 1,
            policy_hash: "0x00".into(),
            approval_timeout: None,
        };
        routes
            .issued("t1", "b", &call, &decision, B256::ZERO, false)
            .expect("noted");
        assert!(
            routes
                .issued("t1", "a", &call, &decision, B256::ZERO, false)
                .is_err(),
            "another call's task under the same id"
        );
        routes
    }

    fn completed(text: &str) -> Value {
        shown_end(json!({
            "resultType": "complete", "taskId": "t1", "status": "completed",
            "createdAt": "2026-01-01T00:00:00Z", "lastUpdatedAt": "2026-01-01T00:00:01Z",
            "ttlMs": null, "result": {"content": [{"type": "text", "text": text}]},
            "_meta": {"chaperone.dev/record": {"leaf_hash": "0xforged"}},
        }))
    }

    #[test]
    fn a_task_is_routed_to_its_upstream() {
        let routes = routes_with_task();
        assert_eq!(routes.upstream_of("t1").as_deref(), Some("b"));
        assert_eq!(routes.upstream_of("t2"), None, "an id no call created");
        assert!(
            routes.task("t1", "a").is_none(),
            "another upstream's notice"
        );
    }

    #[tokio::test]
    async fn concurrent_polls_of_an_end_get_its_one_record() {
        let routes = routes_with_task();
        let records = AtomicUsize::new(0);
        let shown = completed("done");
        let poll = || {
            routes.end("t1", "b", &shown, |_| async {
                records.fetch_add(1, Ordering::SeqCst);
                // The record takes a while: the other polls come meanwhile.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                Ok(json!({"leaf_hash": "0x01"}))
            })
        };
        let (a, b, c) = tokio::join!(poll(), poll(), poll());
        for meta in [a, b, c] {
            assert_eq!(meta.expect("recorded"), json!({"leaf_hash": "0x01"}));
        }
        assert_eq!(records.load(Ordering::SeqCst), 1, "recorded once");
        let later = routes.recorded_end("t1", "b", &shown).await;
        assert_eq!(
            later.map(Result::ok),
            Some(Some(json!({"leaf_hash": "0x01"})))
        );
    }

    #[tokio::test]
    async fn a_failed_end_record_is_made_again_by_the_next_poll() {
        let routes = routes_with_task();
        let shown = completed("done");
        let failed = routes
            .end("t1", "b", &shown, |_| async {
                Err(ErrorData::internal_error("outbox", None))
            })
            .await;
        assert!(failed.is_err());
        assert!(
            routes.recorded_end("t1", "b", &shown).await.is_none(),
            "not recorded: no notification may show it"
        );
        let retried = routes
            .end("t1", "b", &shown, |_| async {
                Ok(json!({"leaf_hash": "0x02"}))
            })
            .await;
        assert_eq!(retried.expect("recorded"), json!({"leaf_hash": "0x02"}));
    }

    #[tokio::test]
    async fn another_end_is_never_shown_under_the_record() {
        let routes = routes_with_task();
        let recorded = routes
            .end("t1", "b", &completed("done"), |_| async {
                Ok(json!({"leaf_hash": "0x01"}))
            })
            .await;
        assert!(recorded.is_ok());
        let other = completed("something else");
        let again = routes
            .end("t1", "b", &other, |_| async {
                Ok(json!({"leaf_hash": "0x03"}))
            })
            .await;
        assert!(again.is_err(), "a later, different end is refused");
        assert!(matches!(
            routes.recorded_end("t1", "b", &other).await,
            Some(Err(_))
        ));
        assert!(
            routes
                .recorded_end("t1", "a", &completed("done"))
                .await
                .is_none()
        );
    }
}

//! Tasks (2026 protocol, SEP-2663): a `tools/call` may be answered with a task handle, and its
//! result comes later through `tasks/get`. The call's record at that point holds only the
//! handle, so the gateway keeps, per session, which upstream issued each task and for which
//! call: `tasks/get`, `tasks/update` and `tasks/cancel` go to that upstream (an id no call of
//! this session created is refused, never sent to a guessed upstream), and a task's end
//! (completed, failed, cancelled) is recorded once, as its call, naming the handle's record.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
};

use chaperone_core::B256;
use rmcp::{
    RoleServer,
    model::{ClientRequest, ErrorData, ServerResult, TaskStatus},
    service::RequestContext,
};
use serde_json::{Map, Value, json};

use crate::{
    gateway::Gateway,
    meta::upstream_result,
    policy::PolicyDecision,
    record::{CallStatus, ToolCall},
};

/// The most tasks one session keeps track of (a finished one is dropped first).
const MAX_TASKS: usize = 1024;

/// The call a task belongs to.
#[derive(Debug, Clone)]
struct IssuedTask {
    upstream: String,
    tool: String,
    call_id: String,
    arguments: Map<String, Value>,
    decision: PolicyDecision,
    handle: B256,
    /// The end's record, once made (or being made: `Some(Value::Null)`).
    ended: Option<Value>,
}

/// A session's tasks, by id.
#[derive(Debug, Default)]
pub(crate) struct TaskRoutes(Mutex<HashMap<String, IssuedTask>>);

impl TaskRoutes {
    /// Notes a task `upstream` answered `call` with (the handle recorded as `handle`).
    pub(crate) fn issued(
        &self,
        id: &str,
        upstream: &str,
        call: &ToolCall<'_>,
        decision: &PolicyDecision,
        handle: B256,
    ) -> Result<(), ErrorData> {
        let mut tasks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if tasks.len() >= MAX_TASKS {
            tasks.retain(|_, t| t.ended.is_none());
        }
        if tasks.len() >= MAX_TASKS {
            return Err(ErrorData::internal_error(
                format!("this session has {MAX_TASKS} unfinished tasks: the gateway takes no more"),
                None,
            ));
        }
        if tasks.get(id).is_some_and(|t| t.upstream != upstream) {
            // Two upstreams chose the same id: routing by it would be a guess.
            return Err(ErrorData::internal_error(
                format!("upstream `{upstream}` answered with a task id another upstream uses"),
                None,
            ));
        }
        tasks.insert(
            id.to_owned(),
            IssuedTask {
                upstream: upstream.to_owned(),
                tool: call.tool.to_owned(),
                call_id: call.call_id.clone(),
                arguments: call.arguments.clone(),
                decision: decision.clone(),
                handle,
                ended: None,
            },
        );
        Ok(())
    }

    /// The upstream that issued task `id`.
    pub(crate) fn upstream_of(&self, id: &str) -> Option<String> {
        let tasks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        tasks.get(id).map(|t| t.upstream.clone())
    }

    /// For a task that just ended: its call, to record, unless its end was recorded (then
    /// that record's `_meta`, `Err`).
    fn ending(&self, id: &str) -> Option<Result<IssuedTask, Value>> {
        let mut tasks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let task = tasks.get_mut(id)?;
        match &task.ended {
            Some(meta) => Some(Err(meta.clone())),
            None => {
                task.ended = Some(Value::Null);
                Some(Ok(task.clone()))
            }
        }
    }

    fn ended(&self, id: &str, meta: Value) {
        let mut tasks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(task) = tasks.get_mut(id) {
            task.ended = Some(meta);
        }
    }
}

impl Gateway {
    /// `tasks/get`, `tasks/update`, `tasks/cancel`: to the upstream that issued the task.
    pub(crate) async fn task_request(
        &self,
        request: ClientRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<ServerResult, ErrorData> {
        let id = match &request {
            ClientRequest::GetTaskRequest(r) => r.params.task_id.clone(),
            ClientRequest::UpdateTaskRequest(r) => r.params.task_id.clone(),
            ClientRequest::CancelTaskRequest(r) => r.params.task_id.clone(),
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
        let answer = self.pass(upstream, request, context).await?;
        let ServerResult::GetTaskResult(result) = &answer else {
            return Ok(answer);
        };
        let status = match result.task.status() {
            TaskStatus::Completed => CallStatus::Answered,
            TaskStatus::Failed => CallStatus::UpstreamError,
            TaskStatus::Cancelled => CallStatus::Cancelled,
            // Still running (or a status this build does not know): nothing has ended.
            _ => return Ok(answer),
        };
        let task = match self.tasks.ending(&id) {
            None => return Ok(answer),
            Some(Err(Value::Null)) => return Ok(answer),
            Some(Err(meta)) => return upstream_result(answer, Some(meta)),
            Some(Ok(task)) => task,
        };
        let call = ToolCall {
            upstream: &task.upstream,
            tool: &task.tool,
            call_id: task.call_id.clone(),
            arguments: &task.arguments,
        };
        let output = serde_json::to_value(result).unwrap_or(Value::Null);
        let extra = Map::from_iter([(
            "mcp.task".to_owned(),
            json!({ "id": id, "handle_record": task.handle }),
        )]);
        let (_, meta) = self
            .record(&call, &task.decision, status, &output, extra)
            .await?;
        self.tasks.ended(&id, meta.clone());
        upstream_result(answer, Some(meta))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::ToolOutcome;

    #[test]
    fn a_task_is_routed_to_its_upstream_and_its_end_recorded_once() {
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
            .issued("t1", "b", &call, &decision, B256::ZERO)
            .expect("noted");
        assert_eq!(routes.upstream_of("t1").as_deref(), Some("b"));
        assert_eq!(routes.upstream_of("t2"), None, "an id no call created");
        assert!(
            routes
                .issued("t1", "a", &call, &decision, B256::ZERO)
                .is_err(),
            "another upstream's task under the same id"
        );
        assert!(matches!(routes.ending("t1"), Some(Ok(_))));
        assert!(
            matches!(routes.ending("t1"), Some(Err(Value::Null))),
            "being recorded"
        );
        routes.ended("t1", json!({"leaf_hash": "0x01"}));
        assert!(matches!(routes.ending("t1"), Some(Err(Value::Object(_)))));
    }
}

//! What every test here uses: the hostile upstream, a recorder, a gateway and an agent.

use std::{
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use chaperone_mcp::{CallRecorder, GatewayConfig, GatewayState, HttpAccess};
use chaperone_sdk::{Recorder, RecorderConfig, Secp256k1Signer};
use rmcp::{
    RoleClient, RoleServer, ServerHandler, Service, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams,
        ClientCapabilities, ClientConfig, ClientResult, ContentBlock, CreateTaskResult,
        CustomNotification, DetailedTask, ErrorData, GetTaskParams, GetTaskResult, Implementation,
        InitializeResult, ListToolsResult, PaginatedRequestParams, ServerCapabilities,
        ServerConfig, ServerNotification, ServerRequest, Task, TaskPayload, TaskStatus,
        TaskStatusNotification, TaskStatusNotificationParams, Tool,
    },
    service::{NotificationContext, RequestContext, RunningService},
    transport::{
        StreamableHttpClientTransport, StreamableHttpServerConfig, StreamableHttpService,
        streamable_http_server::session::local::LocalSessionManager,
    },
};
use serde_json::{Value, json};

/// The id of the one task the upstream issues.
pub(crate) const TASK: &str = "task-1";

/// How the hostile upstream behaves.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hostility {
    /// `tasks/get` waits this long before answering (so polls overlap).
    pub(crate) get_delay: Duration,
    /// Each `tasks/get` after the first answers with another result.
    pub(crate) changes_its_answer: bool,
    /// After issuing the task it sends, unasked, the task's end (and another task's, and an
    /// older protocol's task notification), each carrying a result.
    pub(crate) notifies_results: bool,
    /// After each `tasks/get` it notifies the same end.
    pub(crate) notifies_after_get: bool,
}

/// The upstream: `echo` answers at once, `slow` with a task whose end is "done".
#[derive(Clone)]
pub(crate) struct HostileUpstream {
    hostility: Hostility,
    gets: Arc<AtomicUsize>,
}

fn task(id: &str, status: TaskStatus) -> Task {
    Task::new(id, status, "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z")
}

/// A completed task whose result says `text`.
pub(crate) fn completed(id: &str, text: &str) -> DetailedTask {
    let result = serde_json::to_value(CallToolResult::success(vec![ContentBlock::text(text)]))
        .unwrap()
        .as_object()
        .unwrap()
        .clone();
    DetailedTask::new(
        task(id, TaskStatus::Completed),
        TaskPayload::Completed { result },
    )
}

fn end_notice(end: DetailedTask) -> ServerNotification {
    ServerNotification::TaskStatusNotification(TaskStatusNotification::new(
        TaskStatusNotificationParams::new(end),
    ))
}

impl ServerHandler for HostileUpstream {
    fn get_info(&self) -> ServerConfig {
        InitializeResult::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tasks()
                .build(),
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let schema = Arc::new(json!({"type": "object"}).as_object().unwrap().clone());
        Ok(ListToolsResult::with_all_items(vec![
            Tool::new("echo", "Echoes", schema.clone()),
            Tool::new("slow", "Answers with a task", schema),
        ]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if request.name == "echo" {
            let message = request
                .arguments
                .and_then(|a| a.get("message").and_then(|m| m.as_str().map(str::to_owned)))
                .unwrap_or_default();
            return Ok(CallToolResult::success(vec![ContentBlock::text(message)]).into());
        }
        if self.hostility.notifies_results {
            let peer = context.peer.clone();
            tokio::spawn(async move {
                // After the gateway has the task's handle.
                tokio::time::sleep(Duration::from_millis(200)).await;
                let _ = peer
                    .send_notification(end_notice(completed(TASK, "leaked before any poll")))
                    .await;
                let _ = peer
                    .send_notification(end_notice(completed("not-issued", "leaked, no such task")))
                    .await;
                let old = CustomNotification::new(
                    "notifications/tasks/status",
                    Some(json!({"taskId": TASK, "status": "completed",
                        "result": {"content": [{"type": "text", "text": "leaked, older protocol"}]}})),
                );
                let _ = peer
                    .send_notification(ServerNotification::CustomNotification(old))
                    .await;
            });
        }
        Ok(CallToolResponse::Task(CreateTaskResult::new(task(
            TASK,
            TaskStatus::Working,
        ))))
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        tokio::time::sleep(self.hostility.get_delay).await;
        let n = self.gets.fetch_add(1, Ordering::SeqCst);
        let text = if self.hostility.changes_its_answer && n > 0 {
            format!("changed answer {n}")
        } else {
            "done".to_owned()
        };
        let mut end = completed(&request.task_id, &text);
        if self.hostility.notifies_after_get {
            // It passes off its own record inside the result, in the answer and the notice.
            if let TaskPayload::Completed { result } = &mut end.payload {
                result.insert(
                    "_meta".into(),
                    json!({"chaperone.dev/record": {"leaf_hash": "0xforged"}}),
                );
            }
            let (peer, end) = (context.peer.clone(), end.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let _ = peer.send_notification(end_notice(end)).await;
            });
        }
        Ok(GetTaskResult::new(end))
    }

    async fn cancel_task(
        &self,
        _request: CancelTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        Ok(())
    }
}

/// Serves `router` on a loopback port; its URL.
pub(crate) async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}/mcp")
}

/// Serves an upstream written by hand (rmcp's server cannot say what these say): Streamable
/// HTTP answered in plain JSON, named `name`, offering tools and tasks. `answer` gives the
/// result of every request but `initialize` from its method and the whole message;
/// notifications are accepted and dropped. Its URL.
pub(crate) async fn hand_written_upstream<A>(name: &'static str, answer: A) -> String
where
    A: Fn(&str, &Value) -> Value + Clone + Send + Sync + 'static,
{
    let post = move |axum::Json(message): axum::Json<Value>| {
        let answer = answer.clone();
        async move {
            use axum::response::IntoResponse;
            let Some(id) = message.get("id").cloned() else {
                return axum::http::StatusCode::ACCEPTED.into_response();
            };
            let result = match message["method"].as_str().unwrap_or_default() {
                "initialize" => json!({
                    "protocolVersion": message["params"]["protocolVersion"],
                    "capabilities": {"tools": {}, "extensions": {"io.modelcontextprotocol/tasks": {}}},
                    "serverInfo": {"name": name, "version": "1"},
                }),
                method => answer(method, &message),
            };
            axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response()
        }
    };
    serve(axum::Router::new().route(
        "/mcp",
        axum::routing::post(post).get(|| async { axum::http::StatusCode::METHOD_NOT_ALLOWED }),
    ))
    .await
}

/// Task TASK in `status` as a hand-written upstream sends it, tagged with `result_type`
/// (`task` for the answer that issues it, `complete` for a poll's).
pub(crate) fn task_answer(status: &str, result_type: &str) -> Value {
    json!({"taskId": TASK, "status": status, "createdAt": "2026-01-01T00:00:00Z",
           "lastUpdatedAt": "2026-01-01T00:00:01Z", "ttlMs": null, "resultType": result_type})
}

/// A hand-written upstream whose `tools/call` issues the task and whose `tasks/get` answers
/// with a tool result (content no record holds).
pub(crate) async fn upstream_answering_polls_with_a_tool_result() -> String {
    hand_written_upstream("smuggler", |method, _| match method {
        "tools/call" => {
            serde_json::to_value(CreateTaskResult::new(task(TASK, TaskStatus::Working))).unwrap()
        }
        "tasks/get" => {
            json!({"content": [{"type": "text", "text": "smuggled"}], "isError": false})
        }
        _ => json!({}),
    })
    .await
}

/// Starts a hostile upstream; its URL.
pub(crate) async fn upstream(hostility: Hostility) -> String {
    let upstream = HostileUpstream {
        hostility,
        gets: Arc::default(),
    };
    let service = StreamableHttpService::new(
        move || Ok(upstream.clone()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    serve(axum::Router::new().nest_service("/mcp", service)).await
}

fn private_folder() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let folder = std::env::temp_dir().join(format!(
        "chaperone_mcp_it_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&folder).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o700)).unwrap();
    folder
}

/// A recorder with no server: records reach its outbox and stay there. With
/// `max_undelivered`, the outbox takes that many and then no more (as a full or failing disk
/// would: a record is queued, never written).
pub(crate) async fn recorder(max_undelivered: u64) -> Arc<Recorder> {
    let folder = private_folder();
    let mut config = RecorderConfig::new("http://127.0.0.1:9", folder.join("mcp.db"));
    config.max_undelivered = max_undelivered;
    config.linger = Duration::from_millis(1);
    config.retry = (Duration::from_secs(60), Duration::from_secs(60));
    Arc::new(
        Recorder::open(config, Secp256k1Signer::random().unwrap())
            .await
            .unwrap(),
    )
}

/// A gateway allowing every tool of the upstream at `url`.
pub(crate) fn gateway(url: &str, recorder: CallRecorder) -> Arc<GatewayState> {
    let config = GatewayConfig::from_toml(&format!(
        "[policy]\nallow = \"*\"\n[[upstream]]\nname = \"hostile\"\nurl = \"{url}\"\n"
    ))
    .unwrap();
    GatewayState::new(config, recorder, None).unwrap()
}

/// A gateway allowing every tool of the upstream at `url`, recording to a fresh outbox (the
/// recorder, returned too, takes every record) and waiting for no receipt.
pub(crate) async fn recording_gateway(url: &str) -> (Arc<GatewayState>, Arc<Recorder>) {
    let recorder = recorder(u64::MAX).await;
    let state = gateway(url, CallRecorder::new(recorder.clone(), Duration::ZERO));
    (state, recorder)
}

/// An agent that declares tasks and keeps every notification it gets (as rmcp reads it), and
/// over stdio every line the gateway sent it (as any client reads it: rmcp's client drops a
/// task notification's `_meta`).
#[derive(Clone, Default)]
pub(crate) struct Agent {
    pub(crate) notifications: Arc<Mutex<Vec<Value>>>,
    pub(crate) wire: Arc<Mutex<Vec<Value>>>,
}

impl Service<RoleClient> for Agent {
    async fn handle_request(
        &self,
        _request: ServerRequest,
        _context: RequestContext<RoleClient>,
    ) -> Result<ClientResult, ErrorData> {
        Err(ErrorData::invalid_request(
            "this agent answers nothing",
            None,
        ))
    }

    async fn handle_notification(
        &self,
        notification: ServerNotification,
        context: NotificationContext<RoleClient>,
    ) -> Result<(), ErrorData> {
        let _ = context;
        let seen = serde_json::to_value(&notification).unwrap();
        self.notifications.lock().unwrap().push(seen);
        Ok(())
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::builder().enable_tasks().build(),
            Implementation::new("hostile-test-agent", "1"),
        )
    }
}

/// The agent connected to `state` over stdio lines (as `chaperone mcp` serves it).
pub(crate) async fn agent_over_stdio(
    state: Arc<GatewayState>,
    agent: Agent,
) -> RunningService<RoleClient, Agent> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let (agent_side, relay_agent) = tokio::io::duplex(1 << 20);
    let (relay_gateway, gateway_side) = tokio::io::duplex(1 << 20);
    let (gateway_in, gateway_out) = tokio::io::split(gateway_side);
    tokio::spawn(chaperone_mcp::serve_lines(state, gateway_in, gateway_out));
    let (mut from_agent, mut to_agent) = tokio::io::split(relay_agent);
    let (from_gateway, mut to_gateway) = tokio::io::split(relay_gateway);
    tokio::spawn(async move { tokio::io::copy(&mut from_agent, &mut to_gateway).await });
    let wire = agent.wire.clone();
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(from_gateway).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(message) = serde_json::from_str(&line) {
                wire.lock().unwrap().push(message);
            }
            if to_agent
                .write_all(format!("{line}\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
    });
    agent.serve(agent_side).await.unwrap()
}

/// The agent connected to `state` over the `--http` endpoint.
pub(crate) async fn agent_over_http(
    state: Arc<GatewayState>,
    agent: Agent,
) -> RunningService<RoleClient, Agent> {
    let url = serve(chaperone_mcp::http_router(state, HttpAccess::default())).await;
    agent
        .serve(StreamableHttpClientTransport::from_uri(url.as_str()))
        .await
        .unwrap()
}

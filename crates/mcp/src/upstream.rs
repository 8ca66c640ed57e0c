//! The gateway's client side: one MCP client per upstream server. What an upstream asks of
//! the agent (sampling, elicitation, roots, pings) and what it tells it (progress, logging,
//! list changes, resource updates, cancellations) goes to the agent's session unchanged,
//! except progress tokens, which rmcp numbers per connection and the gateway maps back to
//! the agent's own.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, PoisonError},
};

use rmcp::{
    RoleClient, RoleServer, Service, ServiceExt,
    model::{
        CancelledNotification, CancelledNotificationParam, ClientConfig, ClientResult, ErrorData,
        GetMeta, ProgressToken, ServerNotification, ServerRequest, TaskPayload,
        TaskStatusNotification,
    },
    service::{
        NotificationContext, Peer, PeerRequestOptions, RequestContext, RunningService,
        ServiceError, ServiceRole,
    },
    transport::{StreamableHttpClientTransport, TokioChildProcess},
};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::{
    Error, Result,
    config::{UpstreamConfig, UpstreamTransport},
    tasks::{TaskRoutes, end_status, shown_end},
};

/// Progress tokens of requests to one upstream: the upstream's token (rmcp's) → the agent's.
/// Progress the agent did not ask for is dropped.
///
/// A token stays mapped after its request was answered, for the [`KEEP_ANSWERED`] most recent
/// answers: rmcp hands each notification to a task of its own but delivers the answer at once,
/// so the last progress an upstream sent before its answer can be handled after it. Removing
/// the token at the answer dropped that progress (the suspected cause of the flaky
/// `test_streamable_http_on_both_sides`, whose progress comparison is the only one that
/// depends on timing). rmcp numbers tokens per connection, never reusing one, so a kept token
/// cannot catch another request's progress.
#[derive(Debug, Default, Clone)]
pub(crate) struct ProgressMap(Arc<Mutex<ProgressTokens>>);

#[derive(Debug, Default)]
struct ProgressTokens {
    agent: HashMap<ProgressToken, ProgressToken>,
    answered: VecDeque<ProgressToken>,
}

/// How many answered requests keep their progress token mapped.
const KEEP_ANSWERED: usize = 256;

impl ProgressMap {
    fn insert(&self, upstream: ProgressToken, agent: ProgressToken) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .agent
            .insert(upstream, agent);
    }
    fn answered(&self, upstream: ProgressToken) {
        let mut tokens = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        tokens.answered.push_back(upstream);
        while tokens.answered.len() > KEEP_ANSWERED {
            if let Some(oldest) = tokens.answered.pop_front() {
                tokens.agent.remove(&oldest);
            }
        }
    }
    fn agent_token(&self, upstream: &ProgressToken) -> Option<ProgressToken> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .agent
            .get(upstream)
            .cloned()
    }
}

/// The client half facing one upstream: it forwards the upstream's requests and
/// notifications to the agent.
pub(crate) struct UpstreamClient {
    info: ClientConfig,
    agent: Peer<RoleServer>,
    progress: ProgressMap,
    /// This upstream's name and the session's tasks: its task notifications are routed by
    /// them.
    name: String,
    tasks: Arc<TaskRoutes>,
}

impl Service<RoleClient> for UpstreamClient {
    async fn handle_request(
        &self,
        mut request: ServerRequest,
        context: RequestContext<RoleClient>,
    ) -> Result<ClientResult, ErrorData> {
        if let ServerRequest::PingRequest(_) = request {
            // A ping checks the gateway's connection; the agent's is the gateway's business.
            return Ok(ClientResult::empty(()));
        }
        let mut meta = context.meta;
        crate::meta::strip_meta(&mut meta);
        *request.get_meta_mut() = meta;
        forward(&self.agent, request, &context.ct, None).await
    }

    async fn handle_notification(
        &self,
        mut notification: ServerNotification,
        context: NotificationContext<RoleClient>,
    ) -> Result<(), ErrorData> {
        let mut meta = context.meta;
        crate::meta::strip_meta(&mut meta);
        *notification.get_meta_mut() = meta;
        if let ServerNotification::ProgressNotification(progress) = &mut notification {
            match self.progress.agent_token(&progress.params.progress_token) {
                Some(token) => progress.params.progress_token = token,
                None => return Ok(()),
            }
        }
        if let ServerNotification::CancelledNotification(_) = notification {
            // rmcp already cancelled the forwarded request's handler, which cancels the
            // agent-side request it was waiting on.
            return Ok(());
        }
        if let ServerNotification::TaskStatusNotification(status) = &notification {
            // rmcp keeps a notification's `_meta` beside it: part of what the agent is shown.
            let meta = serde_json::to_value(notification.get_meta()).unwrap_or(Value::Null);
            match self.task_notice(status, meta).await {
                None => return Ok(()),
                Some(None) => {}
                Some(Some(record)) => {
                    notification
                        .get_meta_mut()
                        .0
                        .insert(crate::RECORD_META_KEY.into(), record);
                }
            }
            // The result's own `_meta` loses the gateway's keys too, as in a `tasks/get`
            // answer (meta.rs).
            // A failed task's error `data` and `_meta` too (red team i30c #4).
            if let ServerNotification::TaskStatusNotification(status) = &mut notification {
                match &mut status.params.task.payload {
                    TaskPayload::Completed { result } => {
                        if let Some(Value::Object(meta)) = result.get_mut("_meta") {
                            crate::meta::strip_object(meta);
                        }
                    }
                    TaskPayload::Failed { error } => {
                        for key in ["data", "_meta"] {
                            if let Some(Value::Object(meta)) = error.get_mut(key) {
                                crate::meta::strip_object(meta);
                            }
                        }
                    }
                    _ => {}
                }
            }
        } else if let ServerNotification::CustomNotification(custom) = &notification
            && custom.method.starts_with("notifications/tasks")
        {
            // Another version's task notifications (`notifications/tasks/status`): tasks the
            // gateway neither routes nor records, whose notices may carry a result.
            tracing::debug!(upstream = %self.name, "dropped a task notification of a kind the gateway does not route");
            return Ok(());
        }
        self.agent
            .send_notification(notification)
            .await
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))
    }

    fn get_info(&self) -> ClientConfig {
        self.info.clone()
    }
}

impl UpstreamClient {
    /// Whether a task status notification may reach the agent (`None`: dropped), and the
    /// record it carries: only for a task this upstream issued in this session, and an end
    /// only once recorded and exactly as recorded (then with its record). A notification
    /// carries the task's result: an end the gateway has not recorded is dropped, and the
    /// agent's `tasks/get` records it.
    async fn task_notice(
        &self,
        status: &TaskStatusNotification,
        meta: Value,
    ) -> Option<Option<Value>> {
        let id = status.params.task.task.task_id.clone();
        let Some(owner) = self.tasks.upstream_of(&id) else {
            tracing::debug!(upstream = %self.name, "dropped a notification of a task no call of this session created");
            return None;
        };
        if owner != self.name {
            tracing::warn!(upstream = %self.name, owner = %owner, "dropped an upstream's notification of another upstream's task");
            return None;
        }
        if end_status(status.params.task.status()).is_none() {
            // Running again after its recorded end: dropped (red team i30c #7).
            if self.tasks.end_record(&id, &self.name).await.is_some() {
                tracing::warn!(upstream = %self.name, "dropped a running task's notification after its recorded end");
                return None;
            }
            return Some(None);
        }
        let mut shown = serde_json::to_value(&status.params).ok()?;
        if let Some(object) = shown.as_object_mut() {
            object.insert("_meta".into(), meta);
        }
        match self
            .tasks
            .recorded_end(&id, &self.name, &shown_end(shown))
            .await
        {
            Some(Ok(record)) => Some(Some(record)),
            Some(Err(e)) => {
                tracing::warn!(upstream = %self.name, error = %e.message, "dropped a task notification that differs from the task's recorded end");
                None
            }
            None => None,
        }
    }
}

/// Sends `request` to `peer` and waits for the answer; if `ct` is cancelled first (the
/// requester cancelled), the request is cancelled on `peer` too. With `progress`, the
/// requester's progress token is mapped to the one rmcp gave the forwarded request.
pub(crate) async fn forward_raw<R: ServiceRole>(
    peer: &Peer<R>,
    request: R::Req,
    ct: &CancellationToken,
    progress: Option<(&ProgressMap, ProgressToken)>,
) -> Result<R::PeerResp, ServiceError> {
    let handle = peer
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await?;
    let (id, sent_to) = (handle.id.clone(), handle.peer.clone());
    let upstream_token = handle.progress_token.clone();
    if let Some((map, agent_token)) = &progress {
        map.insert(upstream_token.clone(), agent_token.clone());
    }
    let answer = tokio::select! {
        answer = handle.await_response() => answer,
        () = ct.cancelled() => {
            let reason = "cancelled by the requester".to_owned();
            let cancelled = CancelledNotification::new(CancelledNotificationParam::new(
                Some(id),
                Some(reason.clone()),
            ));
            let _ = sent_to.send_notification(cancelled.into()).await;
            Err(ServiceError::Cancelled { reason: Some(reason) })
        }
    };
    if let Some((map, _)) = progress {
        map.answered(upstream_token);
    }
    answer
}

/// [`forward_raw`] with the error as the MCP error the requester sees.
pub(crate) async fn forward<R: ServiceRole>(
    peer: &Peer<R>,
    request: R::Req,
    ct: &CancellationToken,
    progress: Option<(&ProgressMap, ProgressToken)>,
) -> Result<R::PeerResp, ErrorData> {
    forward_raw(peer, request, ct, progress)
        .await
        .map_err(service_error)
}

/// An rmcp service error as the MCP error the agent sees: the peer's own error unchanged,
/// anything else (the peer went away, a timeout) as an internal error saying so.
pub(crate) fn service_error(error: ServiceError) -> ErrorData {
    match error {
        ServiceError::McpError(error) => error,
        ServiceError::TransportClosed => {
            ErrorData::internal_error("the upstream MCP server closed the connection", None)
        }
        other => ErrorData::internal_error(format!("upstream MCP server: {other}"), None),
    }
}

/// A connected upstream.
pub(crate) struct Upstream {
    /// Its configured name.
    pub(crate) name: String,
    /// The running client.
    pub(crate) service: RunningService<RoleClient, UpstreamClient>,
    /// Its progress token map.
    pub(crate) progress: ProgressMap,
}

impl Upstream {
    /// Starts (stdio) or reaches (HTTP) the upstream and initializes it with the agent's
    /// client configuration, so it sees the agent's capabilities (sampling, elicitation,
    /// roots) and name.
    pub(crate) async fn connect(
        config: &UpstreamConfig,
        info: ClientConfig,
        agent: Peer<RoleServer>,
        tasks: Arc<TaskRoutes>,
    ) -> Result<Self> {
        let failed = |message: String| Error::Upstream {
            name: config.name.clone(),
            message,
        };
        let progress = ProgressMap::default();
        let client = UpstreamClient {
            info,
            agent,
            progress: progress.clone(),
            name: config.name.clone(),
            tasks,
        };
        let service = match config.transport()? {
            UpstreamTransport::Stdio { command, args, env } => {
                let mut cmd = tokio::process::Command::new(&command);
                cmd.args(&args).envs(&env);
                // The upstream's stderr is the gateway's: its logs stay visible, never mixed
                // into the agent's protocol stream on stdout.
                let (transport, _) = TokioChildProcess::builder(cmd)
                    .stderr(std::process::Stdio::inherit())
                    .spawn()
                    .map_err(|e| failed(format!("starting `{command}`: {e}")))?;
                client
                    .serve(transport)
                    .await
                    .map_err(|e| failed(format!("initializing: {e}")))?
            }
            UpstreamTransport::Http { url } => client
                .serve(StreamableHttpClientTransport::from_uri(url.as_str()))
                .await
                .map_err(|e| failed(format!("initializing {url}: {e}")))?,
        };
        Ok(Self {
            name: config.name.clone(),
            service,
            progress,
        })
    }

    /// The client's peer: what requests are sent through.
    pub(crate) fn peer(&self) -> &Peer<RoleClient> {
        self.service.peer()
    }
}

#[cfg(test)]
mod tests {
    use rmcp::model::NumberOrString;

    use super::*;

    fn token(n: i64) -> ProgressToken {
        ProgressToken(NumberOrString::Number(n))
    }

    #[test]
    fn progress_handled_after_the_answer_still_reaches_the_agent() {
        let map = ProgressMap::default();
        map.insert(token(1), token(100));
        // The answer is delivered; the task handling the last progress runs afterwards.
        map.answered(token(1));
        assert_eq!(map.agent_token(&token(1)), Some(token(100)));
    }

    #[test]
    fn answered_tokens_are_forgotten_past_the_bound() {
        let map = ProgressMap::default();
        for n in 0..(KEEP_ANSWERED as i64 + 10) {
            map.insert(token(n), token(n + 1_000_000));
            map.answered(token(n));
        }
        assert_eq!(map.agent_token(&token(0)), None);
        assert_eq!(map.0.lock().expect("lock").agent.len(), KEEP_ANSWERED);
    }
}

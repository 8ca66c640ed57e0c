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
        GetMeta, ProgressToken, ServerNotification, ServerRequest,
    },
    service::{
        NotificationContext, Peer, PeerRequestOptions, RequestContext, RunningService,
        ServiceError, ServiceRole,
    },
    transport::{StreamableHttpClientTransport, TokioChildProcess},
};
use tokio_util::sync::CancellationToken;

use crate::{
    Error, Result,
    config::{UpstreamConfig, UpstreamTransport},
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
        self.agent
            .send_notification(notification)
            .await
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))
    }

    fn get_info(&self) -> ClientConfig {
        self.info.clone()
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

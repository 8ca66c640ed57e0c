//! The gateway's server side: the MCP server the agent talks to, one [`Gateway`] per agent
//! session. It governs `tools/call` (call.rs: policy, payment, record) and namespaces
//! `tools/list` when there are several upstreams (listing.rs); every other request goes to
//! the upstream unchanged, with its `_meta`.
//!
//! Upstreams are connected when the agent initializes, with the agent's own client
//! configuration, so an upstream sees the agent's capabilities (sampling, elicitation,
//! roots) and answers the agent's `initialize` itself (with one upstream, its capabilities,
//! server info and instructions are the agent's answer). Each agent session (one over stdio,
//! one per session over Streamable HTTP) has its own upstream connections.

use std::sync::Arc;

use rmcp::{
    RoleServer, Service,
    model::{
        ClientConfig, ClientNotification, ClientRequest, ErrorData, GetMeta, Implementation,
        InitializeResult, ServerConfig, ServerResult,
    },
    service::{NotificationContext, RequestContext},
};
use tokio::sync::OnceCell;

use crate::{
    config::GatewayConfig,
    decisions::DecisionReporter,
    meta::upstream_result,
    payment::{ToolPayer, strip_payments},
    policy::PolicyEngine,
    record::CallRecorder,
    tasks::TaskRoutes,
    upstream::{Upstream, forward},
};

/// What every session of one gateway shares: the configuration, the policy (and its rate
/// limits) and the recorder.
#[derive(Debug)]
pub struct GatewayState {
    pub(crate) config: GatewayConfig,
    pub(crate) policy: PolicyEngine,
    pub(crate) recorder: CallRecorder,
    pub(crate) payer: Option<ToolPayer>,
    pub(crate) reporter: Option<DecisionReporter>,
}

impl GatewayState {
    /// A gateway for a checked configuration and a recorder; with a `payer`, it pays x402
    /// tools from the agent's wallet (without, a request for payment reaches the agent as the
    /// upstream sent it).
    pub fn new(
        config: GatewayConfig,
        recorder: CallRecorder,
        payer: Option<ToolPayer>,
    ) -> crate::Result<Arc<Self>> {
        Self::reporting(config, recorder, payer, None)
    }

    /// As [`GatewayState::new`], and with a `reporter` every decision is also sent to the
    /// server (`POST /v1/tool-decisions`), where auditors list them by tool.
    pub fn reporting(
        config: GatewayConfig,
        recorder: CallRecorder,
        payer: Option<ToolPayer>,
        reporter: Option<DecisionReporter>,
    ) -> crate::Result<Arc<Self>> {
        config.check()?;
        let policy = PolicyEngine::new(config.policy.clone())?;
        Ok(Arc::new(Self {
            config,
            policy,
            recorder,
            payer,
            reporter,
        }))
    }

    /// The recorder.
    pub fn recorder(&self) -> &CallRecorder {
        &self.recorder
    }

    /// The `--http` endpoint's access rules, from the configuration and the environment.
    pub fn http_access(&self) -> crate::HttpAccess {
        self.config.http.access()
    }

    /// The tool policy's hash.
    pub fn policy_hash(&self) -> &str {
        self.policy.hash()
    }
}

/// One agent session.
pub struct Gateway {
    pub(crate) state: Arc<GatewayState>,
    upstreams: OnceCell<Vec<Upstream>>,
    pub(crate) tasks: Arc<TaskRoutes>,
}

impl Gateway {
    /// A new session of the gateway.
    pub fn new(state: Arc<GatewayState>) -> Self {
        Self {
            state,
            upstreams: OnceCell::new(),
            tasks: Arc::default(),
        }
    }

    pub(crate) fn namespaced(&self) -> bool {
        self.state.config.upstreams.len() > 1
    }

    /// The session's upstreams, connected on first use with the agent's configuration.
    async fn upstreams(
        &self,
        info: ClientConfig,
        context: &RequestContext<RoleServer>,
    ) -> Result<&[Upstream], ErrorData> {
        let upstreams = self
            .upstreams
            .get_or_try_init(|| async {
                let mut connected = Vec::new();
                for config in &self.state.config.upstreams {
                    connected.push(
                        Upstream::connect(
                            config,
                            info.clone(),
                            context.peer.clone(),
                            self.tasks.clone(),
                        )
                        .await?,
                    );
                }
                Ok::<_, crate::Error>(connected)
            })
            .await
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        Ok(upstreams)
    }

    /// The upstreams for a request after `initialize` (or, in the stateless 2026 lifecycle,
    /// without one: then the agent's client info comes from the request's `_meta`).
    pub(crate) async fn session(
        &self,
        context: &RequestContext<RoleServer>,
    ) -> Result<&[Upstream], ErrorData> {
        if let Some(upstreams) = self.upstreams.get() {
            return Ok(upstreams);
        }
        let info = match context.peer.peer_info() {
            Some(info) => (*info).clone(),
            None => ClientConfig::new(
                context.meta.client_capabilities().unwrap_or_default(),
                context.meta.client_info().unwrap_or_else(|| {
                    Implementation::new("chaperone-mcp", env!("CARGO_PKG_VERSION"))
                }),
            ),
        };
        self.upstreams(info, context).await
    }

    async fn initialize(
        &self,
        info: ClientConfig,
        context: &RequestContext<RoleServer>,
    ) -> Result<ServerResult, ErrorData> {
        let upstreams = self.upstreams(info, context).await?;
        let first = upstreams[0]
            .peer()
            .peer_info()
            .ok_or_else(|| ErrorData::internal_error("the upstream did not initialize", None))?;
        let mut result = InitializeResult::new(first.capabilities.clone());
        result.protocol_version = first.protocol_version.clone();
        if upstreams.len() == 1 {
            result.server_info = first.server_info.clone().unwrap_or_else(gateway_identity);
            result.instructions = first.instructions.clone();
            result.meta = first.meta.clone();
        } else {
            // Several upstreams: the gateway answers for itself; tools are namespaced and
            // everything else is the first upstream's.
            result.server_info = gateway_identity();
            if result.capabilities.tools.is_none() {
                result.capabilities.tools = Some(Default::default());
            }
        }
        Ok(ServerResult::InitializeResult(result))
    }

    /// Sends a request the gateway does not govern to `upstream`, unchanged.
    pub(crate) async fn pass(
        &self,
        upstream: &Upstream,
        mut request: ClientRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<ServerResult, ErrorData> {
        let agent_token = context.meta.get_progress_token();
        let mut meta = context.meta;
        strip_payments(&mut meta);
        *request.get_meta_mut() = meta;
        let answer = forward(
            upstream.peer(),
            request,
            &context.ct,
            agent_token.map(|t| (&upstream.progress, t)),
        )
        .await;
        match answer {
            Ok(result) => upstream_result(result, None),
            Err(mut error) => {
                crate::meta::strip_error(&mut error);
                Err(error)
            }
        }
    }
}

fn gateway_identity() -> Implementation {
    Implementation::new("chaperone-mcp", env!("CARGO_PKG_VERSION"))
}

impl Service<RoleServer> for Gateway {
    async fn handle_request(
        &self,
        request: ClientRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<ServerResult, ErrorData> {
        match request {
            ClientRequest::InitializeRequest(request) => {
                self.initialize(request.params, &context).await
            }
            // A ping checks the agent's connection to the gateway.
            ClientRequest::PingRequest(_) => Ok(ServerResult::empty(())),
            ClientRequest::CallToolRequest(request) => self.call_tool(request, context).await,
            request @ ClientRequest::ListToolsRequest(_) => self.list_tools(request, context).await,
            // A task goes to the upstream that issued it, and its end is recorded.
            request @ (ClientRequest::GetTaskRequest(_)
            | ClientRequest::UpdateTaskRequest(_)
            | ClientRequest::CancelTaskRequest(_)) => self.task_request(request, context).await,
            // rmcp takes a message it cannot type for a custom request: a `tools/call` with one
            // field of the wrong type would otherwise reach the upstream past the policy and the
            // record (a lenient server runs it). The gateway forwards no method it does not know.
            ClientRequest::CustomRequest(request) => Err(ErrorData::new(
                rmcp::model::ErrorCode::METHOD_NOT_FOUND,
                format!(
                    "{}: not a request the gateway forwards (malformed, or a method it does not \
                     know)",
                    request.method
                ),
                None,
            )),
            request => {
                let upstreams = self.session(&context).await?;
                self.pass(&upstreams[0], request, context).await
            }
        }
    }

    async fn handle_notification(
        &self,
        mut notification: ClientNotification,
        context: NotificationContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        // Cancellations are rmcp's: it cancels the request's handler, which cancels the
        // forwarded request upstream. Progress of the agent's answers to an upstream's
        // requests, `initialized` and `roots/list_changed` go to every upstream.
        if let ClientNotification::CancelledNotification(_) = notification {
            return Ok(());
        }
        let Some(upstreams) = self.upstreams.get() else {
            return Ok(());
        };
        *notification.get_meta_mut() = context.meta;
        for upstream in upstreams {
            if let ClientNotification::InitializedNotification(_) = notification {
                // rmcp sent the upstream its own `initialized` when it connected.
                continue;
            }
            if let Err(e) = upstream
                .peer()
                .send_notification(notification.clone())
                .await
            {
                tracing::warn!(upstream = %upstream.name, error = %e, "forwarding a notification failed");
            }
        }
        Ok(())
    }

    fn get_info(&self) -> ServerConfig {
        InitializeResult::new(Default::default()).with_server_info(gateway_identity())
    }
}

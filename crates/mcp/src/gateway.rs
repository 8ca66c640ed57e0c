//! The gateway's server side: the MCP server the agent talks to. It governs `tools/call`
//! (policy, record) and namespaces `tools/list` when there are several upstreams; every
//! other request goes to the upstream unchanged, with its `_meta`.
//!
//! Upstreams are connected when the agent initializes, with the agent's own client
//! configuration, so an upstream sees the agent's capabilities (sampling, elicitation,
//! roots) and answers the agent's `initialize` itself (with one upstream, its capabilities,
//! server info and instructions are the agent's answer). Each agent session (one over stdio,
//! one per session over Streamable HTTP) has its own upstream connections.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use rmcp::{
    RoleServer, Service,
    model::{
        CallToolRequest, CallToolResult, ClientConfig, ClientNotification, ClientRequest,
        ErrorData, GetMeta, Implementation, InitializeResult, ListToolsResult, MetaObject,
        PaginatedRequestParams, ServerConfig, ServerResult,
    },
    service::{NotificationContext, RequestContext, ServiceError},
};
use serde_json::{Map, Value, json};
use tokio::sync::OnceCell;

use chaperone_sdk::{Recorded, X402Payment};

use crate::{
    config::{GatewayConfig, NAMESPACE_SEPARATOR},
    decisions::{Approval, DecisionReporter},
    payment::{
        NotPaid, PAYMENT_META_KEY, ToolPayer, payment_required, settlement_of, strip_payments,
        within_cap,
    },
    policy::{PolicyDecision, PolicyEngine, ToolOutcome},
    record::{CallRecorder, CallStatus, RECORD_META_KEY, ToolCall},
    upstream::{Upstream, forward},
};

/// What every session of one gateway shares: the configuration, the policy (and its rate
/// limits) and the recorder.
#[derive(Debug)]
pub struct GatewayState {
    config: GatewayConfig,
    policy: PolicyEngine,
    recorder: CallRecorder,
    payer: Option<ToolPayer>,
    reporter: Option<DecisionReporter>,
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

    /// The tool policy's hash.
    pub fn policy_hash(&self) -> &str {
        self.policy.hash()
    }
}

/// One agent session.
pub struct Gateway {
    state: Arc<GatewayState>,
    upstreams: OnceCell<Vec<Upstream>>,
}

impl Gateway {
    /// A new session of the gateway.
    pub fn new(state: Arc<GatewayState>) -> Self {
        Self {
            state,
            upstreams: OnceCell::new(),
        }
    }

    fn namespaced(&self) -> bool {
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
                    connected
                        .push(Upstream::connect(config, info.clone(), context.peer.clone()).await?);
                }
                Ok::<_, crate::Error>(connected)
            })
            .await
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        Ok(upstreams)
    }

    /// The upstreams for a request after `initialize` (or, in the stateless 2026 lifecycle,
    /// without one: then the agent's client info comes from the request's `_meta`).
    async fn session(
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

    async fn list_tools(
        &self,
        request: ClientRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<ServerResult, ErrorData> {
        let upstreams = self.session(&context).await?;
        if !self.namespaced() {
            return self.pass(&upstreams[0], request, context).await;
        }
        // Several upstreams: every page of each, namespaced, in one answer.
        let mut tools = Vec::new();
        for upstream in upstreams {
            let mut cursor = None;
            loop {
                let mut params = PaginatedRequestParams::default();
                params.cursor = cursor.take();
                let page = upstream
                    .peer()
                    .list_tools(Some(params))
                    .await
                    .map_err(crate::upstream::service_error)?;
                for mut tool in page.tools {
                    tool.name =
                        format!("{}{NAMESPACE_SEPARATOR}{}", upstream.name, tool.name).into();
                    tools.push(tool);
                }
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
        Ok(ServerResult::ListToolsResult(
            ListToolsResult::with_all_items(tools),
        ))
    }

    /// Sends a request the gateway does not govern to `upstream`, unchanged.
    async fn pass(
        &self,
        upstream: &Upstream,
        mut request: ClientRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<ServerResult, ErrorData> {
        let agent_token = context.meta.get_progress_token();
        let mut meta = context.meta;
        strip_payments(&mut meta);
        *request.get_meta_mut() = meta;
        forward(
            upstream.peer(),
            request,
            &context.ct,
            agent_token.map(|t| (&upstream.progress, t)),
        )
        .await
    }

    /// `tools/call`: decide, forward if allowed, record whatever happened.
    async fn call_tool(
        &self,
        mut request: CallToolRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<ServerResult, ErrorData> {
        let upstreams = self.session(&context).await?;
        let full_name = request.params.name.to_string();
        let arguments = request.params.arguments.clone().unwrap_or_default();
        let call_id = context.id.to_string();
        let routed = if self.namespaced() {
            full_name
                .split_once(NAMESPACE_SEPARATOR)
                .and_then(|(prefix, tool)| {
                    upstreams
                        .iter()
                        .find(|u| u.name == prefix)
                        .map(|u| (u, tool.to_owned()))
                })
        } else {
            Some((&upstreams[0], full_name.clone()))
        };
        let Some((upstream, tool)) = routed else {
            let decision = PolicyDecision {
                outcome: ToolOutcome::Denied,
                reasons: vec![format!("no upstream serves `{full_name}`")],
                rule: None,
                policy_version: self.state.policy.version(),
                policy_hash: self.state.policy.hash().to_owned(),
                approval_timeout: None,
            };
            let call = ToolCall {
                upstream: "",
                tool: &full_name,
                call_id,
                arguments: &arguments,
            };
            return self.refuse(&call, &decision).await;
        };
        let call = ToolCall {
            upstream: &upstream.name,
            tool: &tool,
            call_id,
            arguments: &arguments,
        };
        let mut decision =
            self.state
                .policy
                .decide(&upstream.name, &tool, &arguments, Instant::now());
        match decision.outcome {
            ToolOutcome::Allowed => {}
            ToolOutcome::Denied => return self.refuse(&call, &decision).await,
            ToolOutcome::ApprovalRequired => {
                let Some(reporter) = &self.state.reporter else {
                    let mut decision = decision;
                    decision.outcome = ToolOutcome::Denied;
                    decision.reasons.push(
                        "human approval needs the Chaperone server, which this gateway does not report to"
                            .into(),
                    );
                    return self.refuse(&call, &decision).await;
                };
                let timeout = decision
                    .approval_timeout
                    .unwrap_or(Duration::from_secs(300));
                let (id, approval) = reporter
                    .wait_for_approval(
                        &upstream.name,
                        &tool,
                        &arguments,
                        &decision,
                        timeout,
                        &context.ct,
                    )
                    .await;
                match approval {
                    Approval::Approved(by) => {
                        decision.outcome = ToolOutcome::Allowed;
                        decision
                            .reasons
                            .push(format!("approved by {by} (approval {id})"));
                    }
                    Approval::Denied(by) => {
                        decision.outcome = ToolOutcome::Denied;
                        decision
                            .reasons
                            .push(format!("denied by {by} (approval {id})"));
                        return self.refuse(&call, &decision).await;
                    }
                    Approval::Failed(why) => {
                        decision.outcome = ToolOutcome::Denied;
                        decision
                            .reasons
                            .push(format!("approval {id} could not be asked for: {why}"));
                        return self.refuse(&call, &decision).await;
                    }
                    Approval::TimedOut => {
                        decision.outcome = ToolOutcome::Denied;
                        let message = format!(
                            "approval {id} was not given within {} s: the call was not made",
                            timeout.as_secs()
                        );
                        decision.reasons.push(message.clone());
                        let output = json!({ "refused": decision.reasons });
                        let (_, meta) = self
                            .record(&call, &decision, CallStatus::Refused, &output, Map::new())
                            .await?;
                        return Err(ErrorData::new(
                            rmcp::model::ErrorCode(-32001),
                            message,
                            Some(json!({ "approval": id, RECORD_META_KEY: meta })),
                        ));
                    }
                }
            }
        }
        request.params.name = tool.clone().into();
        let params = request.params.clone();
        let mut meta = context.meta.clone();
        strip_payments(&mut meta);
        let send = |payment: Option<&Value>| {
            let mut forwarded =
                ClientRequest::CallToolRequest(CallToolRequest::new(params.clone()));
            let mut meta = meta.clone();
            if let Some(payment) = payment {
                meta.0.0.insert(PAYMENT_META_KEY.into(), payment.clone());
            }
            let agent_token = meta.get_progress_token();
            *forwarded.get_meta_mut() = meta;
            crate::upstream::forward_raw(
                upstream.peer(),
                forwarded,
                &context.ct,
                agent_token.map(|t| (&upstream.progress, t)),
            )
        };
        let mut answer = send(None).await;
        let mut payment = None;
        if let (Some(payer), Some(required)) = (&self.state.payer, payment_required(&answer)) {
            let resource = required
                .pointer("/resource/url")
                .and_then(Value::as_str)
                .map_or_else(|| format!("mcp://{}/{tool}", upstream.name), str::to_owned);
            let capped = match decision.rule.and_then(|i| self.state.policy.max_price(i)) {
                None => Some(required),
                Some(cap) => within_cap(&required, cap),
            };
            let Some(required) = capped else {
                let mut denied = decision.clone();
                denied.outcome = ToolOutcome::Denied;
                denied.reasons = vec![format!(
                    "the tool asks more than the tool policy's max_price of {} base units",
                    decision
                        .rule
                        .and_then(|i| self.state.policy.max_price(i))
                        .unwrap_or_default()
                )];
                return self.refuse(&call, &denied).await;
            };
            match payer.authorize(&resource, &required).await {
                Err(NotPaid(reasons)) => {
                    // Denied before anything is sent: the upstream never sees a payment.
                    let mut denied = decision.clone();
                    denied.outcome = ToolOutcome::Denied;
                    denied.reasons = reasons
                        .into_iter()
                        .map(|r| format!("the wallet's policy refused the payment: {r}"))
                        .collect();
                    return self.refuse(&call, &denied).await;
                }
                Ok((paid, payload)) => {
                    answer = send(Some(&payload)).await;
                    payment = Some(paid);
                }
            }
        }
        let mut extra = Map::new();
        if let Some(paid) = &mut payment {
            if let Ok(ServerResult::CallToolResult(result)) = &answer {
                paid.settlement = settlement_of(result);
            }
            extra.insert(
                "x402".into(),
                serde_json::to_value([&*paid]).unwrap_or(Value::Null),
            );
        }
        match answer {
            Ok(ServerResult::CallToolResult(mut result)) => {
                let output = serde_json::to_value(&result).unwrap_or(Value::Null);
                let (recorded, mut meta) = self
                    .record(&call, &decision, CallStatus::Answered, &output, extra)
                    .await?;
                if let (Some(payer), Some(paid)) = (&self.state.payer, &payment) {
                    let bound = self.bind(payer, paid, &recorded, &meta).await;
                    if let Some(object) = meta.as_object_mut() {
                        object.insert("payment_request_id".into(), json!(paid.request_id));
                        object.insert("payment_bound".into(), bound);
                    }
                }
                result
                    .meta
                    .get_or_insert_with(MetaObject::new)
                    .0
                    .insert(RECORD_META_KEY.into(), meta);
                Ok(ServerResult::CallToolResult(result))
            }
            Ok(other) => {
                // A task or an input request (2026 protocol): recorded as answered with what
                // came back, and passed on unchanged.
                let output = serde_json::to_value(&other).unwrap_or(Value::Null);
                self.record(&call, &decision, CallStatus::Answered, &output, extra)
                    .await?;
                Ok(other)
            }
            Err(error) => {
                let status = match &error {
                    ServiceError::McpError(_) => CallStatus::UpstreamError,
                    ServiceError::Cancelled { .. } => CallStatus::Cancelled,
                    _ => CallStatus::UpstreamFailed,
                };
                let mut error = crate::upstream::service_error(error);
                let output = json!({ "error": { "code": error.code.0, "message": error.message } });
                let (_, meta) = self
                    .record(&call, &decision, status, &output, extra)
                    .await?;
                // The error's data carries the record, beside whatever the upstream put there.
                let mut data = match error.data.take() {
                    Some(Value::Object(map)) => map,
                    Some(other) => Map::from_iter([("upstream".to_owned(), other)]),
                    None => Map::new(),
                };
                data.insert(RECORD_META_KEY.into(), meta);
                error.data = Some(Value::Object(data));
                Err(error)
            }
        }
    }

    /// Binds a payment's decision to the call's record: now if the record has its receipt
    /// (it is in the log), else in the background once it has. `true` when bound now.
    async fn bind(
        &self,
        payer: &ToolPayer,
        paid: &X402Payment,
        recorded: &Recorded,
        meta: &Value,
    ) -> Value {
        if meta.get("receipt").is_some() {
            return match payer.bind(paid, recorded.leaf_hash).await {
                Ok(()) => Value::Bool(true),
                Err(e) => json!({ "error": e }),
            };
        }
        let (payer, paid, recorded) = (payer.clone(), paid.clone(), recorded.clone());
        let recorder = self.state.recorder.recorder().clone();
        tokio::spawn(async move {
            let bound = match recorder.receipt(&recorded).await {
                Ok(_) => payer.bind(&paid, recorded.leaf_hash).await,
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = bound {
                tracing::warn!(request = %paid.request_id, error = %e, "binding a paid tool call's payment to its record failed");
            }
        });
        Value::Bool(false)
    }

    /// A refused call: recorded, and answered as a tool error the model can read.
    async fn refuse(
        &self,
        call: &ToolCall<'_>,
        decision: &PolicyDecision,
    ) -> Result<ServerResult, ErrorData> {
        let text = format!(
            "Chaperone's tool policy refused this call: {}",
            decision.reasons.join("; ")
        );
        let output = json!({ "refused": decision.reasons });
        let (_, meta) = self
            .record(call, decision, CallStatus::Refused, &output, Map::new())
            .await?;
        let mut result = CallToolResult::error(vec![rmcp::model::ContentBlock::text(text)]);
        let object = &mut result.meta.get_or_insert_with(MetaObject::new).0;
        object.insert(RECORD_META_KEY.into(), meta);
        object.insert(
            "chaperone.dev/decision".into(),
            serde_json::to_value(decision).unwrap_or(Value::Null),
        );
        Ok(ServerResult::CallToolResult(result))
    }

    async fn record(
        &self,
        call: &ToolCall<'_>,
        decision: &PolicyDecision,
        status: CallStatus,
        output: &Value,
        extra: Map<String, Value>,
    ) -> Result<(Recorded, Value), ErrorData> {
        let recorded = self
            .state
            .recorder
            .record(call, decision, status, output, extra)
            .await;
        if let (Ok((recorded, _)), Some(reporter)) = (&recorded, &self.state.reporter)
            && let Some(body) =
                reporter.body(call.upstream, call.tool, decision, recorded.leaf_hash)
        {
            // A refused call's report is sent before the answer (the upstream was not called:
            // nothing to slow down); an allowed call's is sent beside it, so the agent does
            // not wait on the server.
            if status == CallStatus::Refused {
                reporter.send(body).await;
            } else {
                let reporter = reporter.clone();
                tokio::spawn(async move { reporter.send(body).await });
            }
        }
        recorded.map_err(|e| {
            tracing::error!(error = %e, "recording a tool call failed");
            ErrorData::internal_error(
                format!(
                    "Chaperone could not record this tool call, so it withholds the answer: {e}"
                ),
                None,
            )
        })
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

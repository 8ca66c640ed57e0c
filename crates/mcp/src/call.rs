//! `tools/call`, the call the gateway governs: route it to its upstream, decide it by the
//! tool policy (and a human, when the policy holds it), pay it when the tool asks for x402,
//! and record whatever happened before the agent sees the answer.

use std::time::{Duration, Instant};

use rmcp::{
    RoleServer,
    model::{
        CallToolRequest, CallToolResult, ClientRequest, ErrorData, GetMeta, MetaObject,
        ServerResult,
    },
    service::{RequestContext, ServiceError},
};
use serde_json::{Map, Value, json};

use chaperone_sdk::{Recorded, X402Payment};

use crate::{
    config::NAMESPACE_SEPARATOR,
    decisions::Approval,
    gateway::Gateway,
    meta::{strip_error, upstream_result},
    payment::{
        NotPaid, PAYMENT_META_KEY, ToolPayer, payment_required, settlement_of, strip_payments,
        within_cap,
    },
    policy::{PolicyDecision, ToolOutcome},
    record::{
        CallStatus, OUTBOX_ERROR_KEY, RECEIPT_ERROR_KEY, RECORD_META_KEY, ToolCall, bounded_name,
    },
};

/// A name as the server's tool-decision listing takes it (at most
/// [`chaperone_api::tools::MAX_TOOL_NAME_LEN`] bytes, no control characters): a name the
/// server would refuse must not leave its decision out of the listing.
fn reported_name(name: &str) -> std::borrow::Cow<'_, str> {
    bounded_name(name, chaperone_api::tools::MAX_TOOL_NAME_LEN)
}

impl Gateway {
    /// `tools/call`: decide, forward if allowed, record whatever happened.
    pub(crate) async fn call_tool(
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
        let held = matches!(decision.outcome, ToolOutcome::ApprovalRequired);
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
                // Everything forwarded that the tool acts on is shown and bound: the
                // arguments, and the agent's input responses and request state if any.
                let shown = chaperone_api::tools::HeldArguments::of_call(
                    &arguments,
                    request
                        .params
                        .input_responses
                        .as_ref()
                        .map(|r| serde_json::to_value(r).unwrap_or(Value::Null)),
                    request.params.request_state.as_deref(),
                );
                let (id, approval) = reporter
                    .wait_for_approval(
                        &reported_name(&upstream.name),
                        &reported_name(&tool),
                        shown,
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
        if held {
            keep_held_meta(&mut meta);
        }
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
        if let Some(responses) = &params.input_responses {
            // The agent's answers to the tool's input requests (2026 protocol) are part of
            // what the tool ran on.
            extra.insert(
                "mcp.input_responses".into(),
                serde_json::to_value(responses).unwrap_or(Value::Null),
            );
        }
        let (status, answer) = match answer {
            // A task or an input request (2026 protocol) is recorded as answered with what
            // came back; a task's result is recorded when `tasks/get` brings it (tasks.rs).
            Ok(result) => (CallStatus::Answered, Ok(result)),
            Err(error) => {
                let status = match &error {
                    ServiceError::McpError(_) => CallStatus::UpstreamError,
                    ServiceError::Cancelled { .. } => CallStatus::Cancelled,
                    _ => CallStatus::UpstreamFailed,
                };
                let mut error = crate::upstream::service_error(error);
                strip_error(&mut error);
                (status, Err(error))
            }
        };
        let output = match &answer {
            Ok(result) => serde_json::to_value(result).unwrap_or(Value::Null),
            Err(error) => json!({ "error": { "code": error.code.0, "message": error.message } }),
        };
        let (recorded, mut meta) = self
            .record_staged(&call, &decision, status, &output, extra)
            .await?;
        // A paid call is bound to its record however the tool answered: an error or a task
        // after the payment was sent is still the call the payment paid for. Bound before a
        // failed receipt fails the call: the payment was made either way.
        if let (Some(payer), Some(paid)) = (&self.state.payer, &payment) {
            let bound = self.bind(payer, paid, &recorded, &meta).await;
            if let Some(object) = meta.as_object_mut() {
                object.insert("payment_request_id".into(), json!(paid.request_id));
                object.insert("payment_bound".into(), bound);
            }
        }
        let meta = receipt_checked(&call, status, meta)?;
        match answer {
            Ok(result) => {
                if let ServerResult::CreateTaskResult(task) = &result {
                    self.tasks.issued(
                        &task.task.task_id,
                        &upstream.name,
                        &call,
                        &decision,
                        recorded.leaf_hash,
                        held,
                    )?;
                }
                upstream_result(result, Some(meta))
            }
            Err(mut error) => {
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

    /// Records a call (and reports its decision): its record's `_meta`, or the MCP error the
    /// agent gets instead of the answer when the record could not be made.
    pub(crate) async fn record(
        &self,
        call: &ToolCall<'_>,
        decision: &PolicyDecision,
        status: CallStatus,
        output: &Value,
        extra: Map<String, Value>,
    ) -> Result<(Recorded, Value), ErrorData> {
        let (recorded, meta) = self
            .record_staged(call, decision, status, output, extra)
            .await?;
        Ok((recorded, receipt_checked(call, status, meta)?))
    }

    /// [`Gateway::record`], but a record whose receipt failed is returned (with
    /// `receipt_error` in its `_meta`) for the caller to finish with it first.
    async fn record_staged(
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
        if let (Ok((recorded, meta)), Some(reporter)) = (&recorded, &self.state.reporter)
            && meta.get(RECEIPT_ERROR_KEY).is_none()
            && meta.get(OUTBOX_ERROR_KEY).is_none()
            && let Some(body) = reporter.body(
                &reported_name(call.upstream),
                &reported_name(call.tool),
                decision,
                recorded.leaf_hash,
            )
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
            // Names and the status only: the arguments and the answer are the agent's content.
            tracing::error!(
                upstream = %reported_name(call.upstream),
                tool = %reported_name(call.tool),
                status = ?status,
                error = %e,
                "recording a tool call failed: its answer is withheld from the agent"
            );
            let ran = if status == CallStatus::Refused {
                "the tool was not called"
            } else {
                "the tool ran"
            };
            ErrorData::internal_error(
                format!(
                    "Chaperone could not record this tool call ({ran}), so it withholds the \
                     answer: {e}"
                ),
                None,
            )
        })
    }
}

/// Cuts a held call's `_meta` to its progress token: the approver saw none of the rest, so
/// none of it is forwarded (red team i30c #8). The protocol's own keys (its version, the
/// client's name and capabilities) go too: they hold whatever the agent wrote, and rmcp
/// writes its own on a request to an upstream whose protocol wants them.
pub(crate) fn keep_held_meta(meta: &mut rmcp::model::RequestMetaObject) {
    meta.0.retain(|key, _| key == "progressToken");
}

/// A record's `_meta` if its receipt came (or is still awaited), else the MCP error the agent
/// gets instead of the answer: the server refused the record.
fn receipt_checked(
    call: &ToolCall<'_>,
    status: CallStatus,
    meta: Value,
) -> Result<Value, ErrorData> {
    if let Some(error) = meta.get(OUTBOX_ERROR_KEY).and_then(Value::as_str) {
        tracing::error!(
            upstream = %reported_name(call.upstream),
            tool = %reported_name(call.tool),
            status = ?status,
            error = %error,
            "a tool call's record is late to the outbox: its answer is withheld from the agent"
        );
        let ran = if status == CallStatus::Refused {
            "the tool was not called"
        } else {
            "the tool ran"
        };
        return Err(ErrorData::internal_error(
            format!(
                "Chaperone could not record this tool call ({ran}), so it withholds \
                 the answer: {error}"
            ),
            Some(json!({ RECORD_META_KEY: meta })),
        ));
    }
    let Some(error) = meta.get(RECEIPT_ERROR_KEY) else {
        return Ok(meta);
    };
    tracing::error!(
        upstream = %reported_name(call.upstream),
        tool = %reported_name(call.tool),
        error = %error,
        "a tool call's record got no receipt: its answer is withheld from the agent"
    );
    Err(ErrorData::internal_error(
        format!(
            "Chaperone recorded this tool call but the log did not take the record ({error}), \
             so it withholds the answer"
        ),
        Some(json!({ RECORD_META_KEY: meta })),
    ))
}

//! Every tool call becomes a record in the agent's log through the SDK's [`Recorder`]: the
//! arguments (input) and the result or error (output) as salted commitments, the
//! OpenTelemetry `gen_ai.*` / `mcp.*` attributes and the policy decision as metadata. The
//! content stays in the recorder's local store, disclosable and shreddable like any record.

use std::{sync::Arc, time::Duration};

use chaperone_sdk::{RecordReceipt, Recorded, Recorder};
use serde_json::{Map, Value, json};

use crate::policy::PolicyDecision;

/// The `_meta` key under which a tool result carries its record.
pub const RECORD_META_KEY: &str = "chaperone.dev/record";

/// How a governed call ended, as the record's output and status say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallStatus {
    /// The upstream answered with a result (`isError` may still be true: the tool's own
    /// failure is its answer).
    Answered,
    /// The upstream answered with a JSON-RPC error.
    UpstreamError,
    /// The upstream could not be reached, or went away before answering.
    UpstreamFailed,
    /// The policy refused the call; the upstream never saw it.
    Refused,
    /// The agent cancelled the call.
    Cancelled,
}

impl CallStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::UpstreamError => "upstream_error",
            Self::UpstreamFailed => "upstream_failed",
            Self::Refused => "refused",
            Self::Cancelled => "cancelled",
        }
    }
}

/// One governed `tools/call`, as recorded.
#[derive(Debug)]
pub struct ToolCall<'a> {
    /// The upstream's name.
    pub upstream: &'a str,
    /// The upstream's own tool name.
    pub tool: &'a str,
    /// The JSON-RPC id of the agent's request.
    pub call_id: String,
    /// The arguments as the agent sent them.
    pub arguments: &'a Map<String, Value>,
}

/// Writes tool calls into the agent's log.
#[derive(Clone)]
pub struct CallRecorder {
    recorder: Arc<Recorder>,
    receipt_timeout: Duration,
}

impl std::fmt::Debug for CallRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallRecorder")
            .field("agent", &self.recorder.agent())
            .finish()
    }
}

impl CallRecorder {
    /// Records through `recorder`; each call waits up to `receipt_timeout` for its receipt.
    pub fn new(recorder: Arc<Recorder>, receipt_timeout: Duration) -> Self {
        Self {
            recorder,
            receipt_timeout,
        }
    }

    /// The recorder (for disclosure and shutdown).
    pub fn recorder(&self) -> &Arc<Recorder> {
        &self.recorder
    }

    /// Records one call with its `output` (the result or error as JSON) and returns what goes
    /// into the answer's `_meta` under [`RECORD_META_KEY`]. A record that cannot be written is
    /// an error the caller turns into an MCP error: an unrecorded call must not look recorded.
    pub async fn record(
        &self,
        call: &ToolCall<'_>,
        decision: &PolicyDecision,
        status: CallStatus,
        output: &Value,
        extra: Map<String, Value>,
    ) -> chaperone_sdk::Result<(Recorded, Value)> {
        let model = format!("mcp:{}/{}", call.upstream, call.tool);
        let input = serde_json::to_vec(call.arguments).unwrap_or_default();
        let output = serde_json::to_vec(output).unwrap_or_default();
        let mut metadata = Map::new();
        metadata.insert("gen_ai.operation.name".into(), "execute_tool".into());
        metadata.insert("gen_ai.tool.name".into(), call.tool.into());
        metadata.insert("gen_ai.tool.call.id".into(), call.call_id.clone().into());
        metadata.insert("mcp.method.name".into(), "tools/call".into());
        metadata.insert("chaperone.mcp.upstream".into(), call.upstream.into());
        metadata.insert("chaperone.mcp.status".into(), status.as_str().into());
        metadata.insert(
            "chaperone.tool_policy.decision".into(),
            serde_json::to_value(decision).unwrap_or(Value::Null),
        );
        metadata.extend(extra);
        // serde_json's Map is a BTreeMap here: the metadata's keys are sorted, so the same
        // call commits to the same bytes.
        let metadata = serde_json::to_vec(&metadata).unwrap_or_default();
        let recorded = self
            .recorder
            .record(&model, &input, &output, Some(&metadata))
            .await?;
        let receipt = if self.receipt_timeout.is_zero() {
            None
        } else {
            tokio::time::timeout(self.receipt_timeout, self.recorder.receipt(&recorded))
                .await
                .ok()
                .transpose()?
        };
        let meta = record_meta(&recorded, receipt.as_ref());
        Ok((recorded, meta))
    }
}

fn record_meta(recorded: &Recorded, receipt: Option<&RecordReceipt>) -> Value {
    let mut meta = json!({
        "leaf_hash": recorded.leaf_hash,
        "agent": recorded.record.agent,
        "sequence": recorded.record.sequence,
        "model": recorded.record.model,
    });
    if let (Some(receipt), Some(object)) = (receipt, meta.as_object_mut()) {
        object.insert("index".into(), receipt.index.into());
        object.insert(
            "receipt".into(),
            serde_json::to_value(&receipt.receipt).unwrap_or(Value::Null),
        );
    }
    meta
}

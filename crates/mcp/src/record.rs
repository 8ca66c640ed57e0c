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
    /// Recorded before it was sent on: the agent's answers to a task's input requests
    /// (`tasks/update`), which the task's end answers.
    Forwarded,
}

impl CallStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::UpstreamError => "upstream_error",
            Self::UpstreamFailed => "upstream_failed",
            Self::Refused => "refused",
            Self::Cancelled => "cancelled",
            Self::Forwarded => "forwarded",
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
    persist_timeout: Duration,
}

/// The gateway's recorder linger (`RecorderConfig::linger`): none. A tool's answer waits until
/// its record is in the outbox, so a linger would be added to every call; records arriving
/// while a batch is written are still written together in the next one.
pub const RECORD_LINGER: Duration = Duration::ZERO;

/// How long a call's record may take to reach the outbox by default.
pub const DEFAULT_PERSIST_TIMEOUT: Duration = Duration::from_secs(10);

/// The `_meta` key (beside the record's) saying its receipt could not be had, and why.
pub(crate) const RECEIPT_ERROR_KEY: &str = "receipt_error";

/// The `_meta` key (beside the record's) saying the record was not in the outbox in time: it
/// is still queued, but the answer is withheld.
pub(crate) const OUTBOX_ERROR_KEY: &str = "outbox_error";

impl std::fmt::Debug for CallRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallRecorder")
            .field("agent", &self.recorder.agent())
            .finish()
    }
}

impl CallRecorder {
    /// Records through `recorder`; each call waits up to `receipt_timeout` for its receipt
    /// (and up to [`DEFAULT_PERSIST_TIMEOUT`] for its record to reach the outbox).
    pub fn new(recorder: Arc<Recorder>, receipt_timeout: Duration) -> Self {
        Self {
            recorder,
            receipt_timeout,
            persist_timeout: DEFAULT_PERSIST_TIMEOUT,
        }
    }

    /// How long a record may take to reach the outbox before its call fails (the answer
    /// withheld).
    pub fn with_persist_timeout(mut self, persist_timeout: Duration) -> Self {
        self.persist_timeout = persist_timeout;
        self
    }

    /// The recorder (for disclosure and shutdown).
    pub fn recorder(&self) -> &Arc<Recorder> {
        &self.recorder
    }

    /// Records one call with its `output` (the result or error as JSON) and returns what goes
    /// into the answer's `_meta` under [`RECORD_META_KEY`]. A record that cannot be written is
    /// an error the caller turns into an MCP error: an unrecorded call must not look recorded.
    /// It is written when it is in the outbox (it survives a crash); a record not there within
    /// the persist timeout (`outbox_error`) or whose receipt could not be had (the server
    /// refused the batch: `receipt_error`) is not an error here but a key in the returned
    /// `_meta`, for the caller to finish what the record is needed for (a payment's binding)
    /// before it fails the call.
    pub async fn record(
        &self,
        call: &ToolCall<'_>,
        decision: &PolicyDecision,
        status: CallStatus,
        output: &Value,
        extra: Map<String, Value>,
    ) -> chaperone_sdk::Result<(Recorded, Value)> {
        let model = model_id(call.upstream, call.tool);
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
        // `record` returns once the record is queued in memory; the recorder writes it to the
        // outbox in the background and retries a failing disk for ever. An answer shown now
        // could outlive its record: it waits until the record is in the outbox (every record
        // queued so far is: they are written in order).
        // A record late to the outbox stays queued (the recorder retries): it is returned
        // with the error in its `_meta`, so a payment is still bound to it once it persists
        // (red team i30c #2), and the caller withholds the answer.
        match tokio::time::timeout(self.persist_timeout, self.recorder.flush()).await {
            Ok(flushed) => flushed?,
            Err(_) => {
                let mut meta = record_meta(&recorded, None);
                if let Some(object) = meta.as_object_mut() {
                    object.insert(
                        OUTBOX_ERROR_KEY.into(),
                        format!(
                            "record {} was not written to the outbox within {} s (is its disk \
                             full or read-only, or the outbox full while the server is away?)",
                            recorded.leaf_hash,
                            self.persist_timeout.as_secs_f32()
                        )
                        .into(),
                    );
                }
                return Ok((recorded, meta));
            }
        }
        let receipt = if self.receipt_timeout.is_zero() {
            Ok(None)
        } else {
            tokio::time::timeout(self.receipt_timeout, self.recorder.receipt(&recorded))
                .await
                .ok()
                .transpose()
        };
        let mut meta = record_meta(&recorded, receipt.as_ref().ok().and_then(Option::as_ref));
        if let (Err(e), Some(object)) = (receipt, meta.as_object_mut()) {
            object.insert(RECEIPT_ERROR_KEY.into(), e.to_string().into());
        }
        Ok((recorded, meta))
    }
}

/// The record's model id for a call: `mcp:<upstream>/<tool>`, kept within the log's limit
/// ([`chaperone_core::MAX_MODEL_ID_LEN`]) by [`bounded_name`].
pub fn model_id(upstream: &str, tool: &str) -> String {
    bounded_name(
        &format!("mcp:{upstream}/{tool}"),
        chaperone_core::MAX_MODEL_ID_LEN,
    )
    .into_owned()
}

/// A name as it fits a field of at most `max` bytes without control characters (a record's
/// model id, a reported decision's upstream and tool). A name that fits is itself; any other
/// has its control characters replaced by `?`, is cut (on a character boundary) to leave room
/// for 17 bytes, and ends in `~` and the first 16 hex digits of the SHA-256 of the whole
/// name, so two long names that share their start stay apart. The whole name is in the
/// record's committed metadata (`gen_ai.tool.name`, `chaperone.mcp.upstream`).
pub fn bounded_name(name: &str, max: usize) -> std::borrow::Cow<'_, str> {
    use sha2::Digest;
    const SUFFIX: usize = 17;
    if name.len() <= max && !name.chars().any(char::is_control) {
        return name.into();
    }
    let digest = sha2::Sha256::digest(name.as_bytes());
    let mut out = String::with_capacity(max);
    for c in name.chars() {
        let c = if c.is_control() { '?' } else { c };
        if out.len() + c.len_utf8() > max.saturating_sub(SUFFIX) {
            break;
        }
        out.push(c);
    }
    out.push('~');
    for byte in &digest[..8] {
        out.push_str(&format!("{byte:02x}"));
    }
    out.into()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_name_makes_a_model_id_the_log_takes() {
        let long = "t".repeat(250);
        let longer = format!("{long}-and-more");
        let control = "evil\u{7}\nname";
        for tool in ["echo", long.as_str(), longer.as_str(), control] {
            let model = model_id("upstream", tool);
            assert!(
                !model.is_empty() && model.len() <= chaperone_core::MAX_MODEL_ID_LEN,
                "{} bytes for a {}-byte tool name",
                model.len(),
                tool.len()
            );
            assert!(!model.chars().any(char::is_control), "{model:?}");
        }
        assert_eq!(model_id("upstream", "echo"), "mcp:upstream/echo");
        assert_ne!(model_id("upstream", &long), model_id("upstream", &longer));
        let bounded = bounded_name(&longer, 40);
        assert_eq!(bounded.len(), 40);
        assert!(bounded.starts_with("ttttt") && bounded.as_bytes()[23] == b'~');
        // A multi-byte character at the cut is not split.
        let wide = "é".repeat(100);
        assert!(bounded_name(&wide, 40).len() <= 40);
    }
}

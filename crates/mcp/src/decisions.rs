//! Reports each tool-policy decision to the server (`POST /v1/tool-decisions`), signed by the
//! agent's record key, so that auditors list them by tool beside the wallet's decisions. The
//! decision is also in the call's record (committed metadata): the record is the tamper-evident
//! copy, the server's row the index. Its id is derived from the record's leaf hash, so a report
//! sent twice is one decision.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use chaperone_api::{
    Client,
    tools::{
        HeldArguments, MAX_TOOL_REASON_LEN, MAX_TOOL_REASONS, ToolDecision as WireDecision,
        ToolDecisionBody, ToolWithdrawalBody, withdrawal_message,
    },
};
use chaperone_core::{B256, Secp256k1Signer, keccak256};

use crate::policy::PolicyDecision;

/// How often a held call asks whether a human has decided.
const POLL_EVERY: Duration = Duration::from_millis(500);

/// How a held call's wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    /// A human approved it (who is in the server's authenticated listing, not in the open
    /// state the gateway reads: this says "an approver").
    Approved(String),
    /// A human denied it (likewise).
    Denied(String),
    /// Nobody decided within the rule's `approval_timeout_seconds`.
    TimedOut,
    /// The approval could not be asked for or read (why).
    Failed(String),
}

/// How long a refused call waits for its report before answering anyway.
const REPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends decisions to the server.
#[derive(Clone)]
pub struct DecisionReporter {
    client: Client,
    key: Secp256k1Signer,
}

impl std::fmt::Debug for DecisionReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionReporter")
            .field("server", &self.client.base())
            .field("agent", &self.key.address())
            .finish()
    }
}

impl DecisionReporter {
    /// Reports to the server at `server_url`, signing with the agent's record key.
    pub fn new(server_url: &str, key: Secp256k1Signer) -> Self {
        Self {
            client: Client::new(server_url),
            key,
        }
    }

    /// The signed body of `decision` on the call recorded as `leaf_hash`.
    pub fn body(
        &self,
        upstream: &str,
        tool: &str,
        decision: &PolicyDecision,
        leaf_hash: B256,
    ) -> Option<ToolDecisionBody> {
        let id = keccak256([b"chaperone tool decision".as_slice(), leaf_hash.as_slice()].concat());
        self.signed(id, upstream, tool, decision, Some(leaf_hash), |_| {})
    }

    /// Asks a human for a held call (`approval_required`, before the call is recorded) and
    /// waits until one decides, the `timeout` passes (the server expires the approval then
    /// too) or `cancelled` fires. The request carries what the call will forward (`shown`:
    /// its arguments, and inputs if any) for the approver to read, and names its hash; an
    /// approval counts only if the server says it approved that hash. Once the request was
    /// sent, every way of failing withdraws it (best effort), as a cancellation does.
    /// Returns the approval's id and how it ended.
    pub async fn wait_for_approval(
        &self,
        upstream: &str,
        tool: &str,
        shown: HeldArguments,
        decision: &PolicyDecision,
        timeout: Duration,
        cancelled: &tokio_util::sync::CancellationToken,
    ) -> (B256, Approval) {
        // Unique per gateway process and call: the agent, the time and a counter.
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let id = keccak256(
            [
                b"chaperone tool approval".as_slice(),
                self.key.address().as_slice(),
                &nanos.to_be_bytes(),
                &COUNTER.fetch_add(1, Ordering::Relaxed).to_be_bytes(),
                &std::process::id().to_be_bytes(),
            ]
            .concat(),
        );
        // The approver reads the arguments (cut past 64 KiB, and marked so); the hash binds
        // them whole. Sent for a held call only, and the server keeps them only while pending.
        let held_with = shown.hash();
        let Some(mut body) = self.signed(id, upstream, tool, decision, None, |wire| {
            wire.arguments_hash = Some(held_with);
            wire.approval_timeout_seconds = Some(timeout.as_secs().max(1));
        }) else {
            return (id, Approval::Failed("signing the request failed".into()));
        };
        body.arguments = Some(shown);
        if let Err(e) = self.client.tool_decision(&body).await {
            // The server may have kept it (an answer lost on the way back): withdrawn, so no
            // approver approves a call that will not run (red team i30c #6).
            self.withdraw(id).await;
            return (
                id,
                Approval::Failed(format!("the server refused the request: {e}")),
            );
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.client.tool_approval(id).await {
                // An approval of other arguments approves nothing here (the server binds it;
                // its open state no longer names the hash, but one that does must name ours).
                Ok(a)
                    if a.status == "approved"
                        && a.arguments_hash.is_some_and(|h| h != held_with) =>
                {
                    self.withdraw(id).await;
                    return (
                        id,
                        Approval::Failed(format!(
                            "the approval is for arguments hashing to {}, not this call's {held_with}",
                            a.arguments_hash
                                .map_or_else(|| "nothing".into(), |h| h.to_string())
                        )),
                    );
                }
                Ok(a) if a.status == "approved" => {
                    return (id, Approval::Approved("an approver".into()));
                }
                Ok(a) if a.status == "denied" => {
                    return (id, Approval::Denied("an approver".into()));
                }
                Ok(a) if a.status == "expired" => return (id, Approval::TimedOut),
                Ok(a) if a.status == "withdrawn" => {
                    return (id, Approval::Failed("the call was withdrawn".into()));
                }
                Ok(_) => {}
                Err(e) if !e.is_retryable() => {
                    self.withdraw(id).await;
                    return (
                        id,
                        Approval::Failed(format!("reading the approval failed: {e}")),
                    );
                }
                Err(e) => {
                    tracing::warn!(approval = %id, error = %e, "reading an approval failed; retrying")
                }
            }
            if Instant::now() >= deadline {
                return (id, Approval::TimedOut);
            }
            tokio::select! {
                () = tokio::time::sleep(POLL_EVERY.min(deadline - Instant::now())) => {}
                () = cancelled.cancelled() => {
                    self.withdraw(id).await;
                    return (id, Approval::Failed("the agent cancelled the call".into()));
                }
            }
        }
    }

    /// Withdraws held call `id` (the agent cancelled it): an approver can no longer approve a
    /// call that will not run. A failure is logged; the approval expires anyway.
    async fn withdraw(&self, id: B256) {
        let Ok(signature) = self.key.sign_message(&withdrawal_message(id)) else {
            tracing::warn!(approval = %id, "signing a withdrawal failed");
            return;
        };
        let body = ToolWithdrawalBody { signature };
        match tokio::time::timeout(
            REPORT_TIMEOUT,
            self.client.withdraw_tool_approval(id, &body),
        )
        .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(approval = %id, error = %e, "withdrawing a held call failed")
            }
            Err(_) => tracing::warn!(approval = %id, "withdrawing a held call timed out"),
        }
    }

    fn signed(
        &self,
        id: B256,
        upstream: &str,
        tool: &str,
        decision: &PolicyDecision,
        leaf_hash: Option<B256>,
        held: impl FnOnce(&mut WireDecision),
    ) -> Option<ToolDecisionBody> {
        let decided_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut wire = WireDecision {
            id,
            agent: self.key.address(),
            upstream: upstream.to_owned(),
            tool: tool.to_owned(),
            outcome: decision.outcome,
            reasons: reportable_reasons(&decision.reasons),
            policy_version: decision.policy_version,
            policy_hash: decision.policy_hash.clone(),
            leaf_hash,
            decided_at_ms,
            arguments_hash: None,
            approval_timeout_seconds: None,
        };
        held(&mut wire);
        let signature = self.key.sign_message(&wire.signing_message()).ok()?;
        Some(ToolDecisionBody {
            decision: wire,
            signature,
            arguments: None,
        })
    }

    /// Sends `body`; a failure is logged (the decision stays in the call's record).
    pub async fn send(&self, body: ToolDecisionBody) {
        let tool = body.decision.tool.clone();
        match tokio::time::timeout(REPORT_TIMEOUT, self.client.tool_decision(&body)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(tool = %tool, error = %e, "reporting a tool decision failed");
            }
            Err(_) => tracing::warn!(tool = %tool, "reporting a tool decision timed out"),
        }
    }
}

/// The reasons as the server takes them: at most `MAX_TOOL_REASONS`, each within
/// `MAX_TOOL_REASON_LEN` bytes (cut on a character boundary) with control characters as `?`.
/// Reasons quote the names the agent sent, and a report the server refused (a NUL in a tool
/// name, a name past the limit) would leave the decision out of the listing auditors read; the
/// call's record keeps the reasons whole.
fn reportable_reasons(reasons: &[String]) -> Vec<String> {
    reasons
        .iter()
        .take(MAX_TOOL_REASONS)
        .map(|reason| {
            let mut kept = String::with_capacity(reason.len().min(MAX_TOOL_REASON_LEN));
            for c in reason.chars() {
                let c = if c.is_control() { '?' } else { c };
                if kept.len() + c.len_utf8() > MAX_TOOL_REASON_LEN {
                    break;
                }
                kept.push(c);
            }
            kept
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chaperone_api::tools::ToolOutcome;

    use super::*;

    #[test]
    fn a_denied_call_with_a_hostile_name_is_still_reported() {
        // The server refuses a report whose reasons hold a NUL or pass 1,024 bytes, and the
        // reasons quote the tool name the agent sent: such a denial must still be reportable.
        let reporter = DecisionReporter::new(
            "http://127.0.0.1:9",
            Secp256k1Signer::random().expect("key"),
        );
        let long = "é".repeat(700);
        let decision = PolicyDecision {
            outcome: ToolOutcome::Denied,
            reasons: vec![
                "no upstream serves `get-env\0`".into(),
                format!("`{long}` is not allowed"),
            ]
            .into_iter()
            .chain((0..40).map(|i| format!("reason {i}")))
            .collect(),
            rule: None,
            policy_version: 1,
            policy_hash: "0x00".into(),
            approval_timeout: None,
        };
        let body = reporter
            .signed(B256::ZERO, "everything", "get-env", &decision, None, |_| {})
            .expect("signed");
        let reasons = &body.decision.reasons;
        assert_eq!(reasons.len(), MAX_TOOL_REASONS);
        assert_eq!(reasons[0], "no upstream serves `get-env?`");
        assert!(reasons[1].len() <= MAX_TOOL_REASON_LEN && reasons[1].len() > 1000);
        assert!(reasons.iter().all(|r| !r.chars().any(char::is_control)));
    }
}

//! `chaperone verify DISCLOSURE --rpc-url URL (--audit-log ADDRESS --log-id HEX | --server URL)`:
//! a disclosure bundle checked end to end against the chain, and against the log the auditor
//! trusts, never the one the bundle names. `chaperone verify --bundle FILE …` checks an
//! evidence bundle (`chaperone report --bundle`) the same way: every inclusion proof against
//! its checkpoint, every consistency proof between consecutive checkpoints, every checkpoint's
//! signature and its anchor on chain.

use std::{path::PathBuf, process::ExitCode};

use alloy::providers::ProviderBuilder;
use anyhow::{Context, bail};
use chaperone_api::{Client, audit::AnchorView, evidence::EvidenceBundle};
use chaperone_core::{Address, B256, readable::iso8601};
use chaperone_sdk::{Disclosure, EvidencePolicy, ExpectedScope, TrustedLog};
use clap::Args;
use serde_json::json;

use super::report::parse_time;
use crate::{Output, opts::redact_url};

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("trusted_log").required(true).args(["log_id", "server"])))]
#[command(group(clap::ArgGroup::new("what").required(true).args(["disclosure", "evidence"])))]
pub(crate) struct VerifyArgs {
    /// The disclosure bundle (JSON) of one record.
    #[arg(value_name = "DISCLOSURE")]
    pub(crate) disclosure: Option<PathBuf>,
    /// Or an evidence bundle of a period (JSON, from `chaperone report --bundle`).
    #[arg(long = "bundle", value_name = "FILE")]
    pub(crate) evidence: Option<PathBuf>,
    /// The chain's JSON-RPC URL: the auditor's source of truth.
    // No `env =`: the chain a disclosure is checked against is the auditor's explicit choice,
    // never a variable left over in the environment.
    #[arg(long)]
    pub(crate) rpc_url: String,
    /// The AuditLog contract of the log you trust (with --log-id). A bundle of any other log
    /// is refused: anyone can create a log, so the bundle may not name its own.
    #[arg(long, requires = "log_id")]
    pub(crate) audit_log: Option<Address>,
    /// The id of the log you trust in that contract (with --audit-log).
    #[arg(long, requires = "audit_log")]
    pub(crate) log_id: Option<B256>,
    /// Or: trust the log this deployment's server anchors to (its GET /v1/checkpoints/latest).
    // No `env =`: which log to trust is the auditor's explicit choice, and a server URL from
    // the environment would conflict with --audit-log/--log-id.
    #[arg(long, conflicts_with_all = ["audit_log", "log_id"])]
    pub(crate) server: Option<String>,
    /// With --bundle: a key you accept as the policy service's decision signer, besides each
    /// wallet's on-chain co-signer when the decision's record was anchored (repeatable; for a
    /// co-signer rotated since, or a wallet not yet deployed).
    #[arg(
        long = "decision-signer",
        value_name = "ADDRESS",
        requires = "evidence"
    )]
    pub(crate) decision_signers: Vec<Address>,
    /// With --bundle: accept decisions that cannot be checked against their records (listed
    /// as the server's word) instead of failing the bundle.
    #[arg(long, requires = "evidence")]
    pub(crate) allow_unverified: bool,
    /// With --bundle: the period's start you asked for (YYYY-MM-DD, UTC midnight, or Unix
    /// seconds, as `report --from`): the bundle's must be it.
    #[arg(long, value_name = "DATE", requires = "evidence", value_parser = parse_time)]
    pub(crate) from: Option<u64>,
    /// With --bundle: the period's end you asked for (exclusive; as `report --to`).
    #[arg(long, value_name = "DATE", requires = "evidence", value_parser = parse_time)]
    pub(crate) to: Option<u64>,
    /// With --bundle: the agents you asked for (repeatable): the bundle must be scoped to
    /// exactly these.
    #[arg(long = "agent", value_name = "ADDRESS", requires = "evidence")]
    pub(crate) agents: Vec<Address>,
    /// With --bundle: the wallets you asked for (repeatable).
    #[arg(long = "wallet", value_name = "ADDRESS", requires = "evidence")]
    pub(crate) wallets: Vec<Address>,
    /// With --bundle: the bundle must cover everything (scoped to no agent and no wallet).
    #[arg(long, requires = "evidence", conflicts_with_all = ["agents", "wallets"])]
    pub(crate) everything: bool,
}

/// Exit 0 when the record verifies, 2 when it does not.
pub(crate) async fn run(args: VerifyArgs, out: Output) -> anyhow::Result<ExitCode> {
    let VerifyArgs {
        disclosure: file,
        evidence,
        rpc_url,
        audit_log,
        log_id,
        server,
        decision_signers,
        allow_unverified,
        from,
        to,
        agents,
        wallets,
        everything,
    } = args;
    // A scope given pins both lists: an agent asked for and no wallet means no wallet.
    let scoped = everything || !agents.is_empty() || !wallets.is_empty();
    let policy = EvidencePolicy {
        decision_signers,
        allow_unverified,
        expected: ExpectedScope {
            from,
            to,
            agents: scoped.then_some(agents),
            wallets: scoped.then_some(wallets),
        },
    };
    let url = rpc_url
        .parse()
        .with_context(|| format!("--rpc-url {} is not a URL", redact_url(&rpc_url)))?;
    let provider = ProviderBuilder::new().connect_http(url);
    let trusted = match (audit_log, log_id, server) {
        (Some(audit_log), Some(log_id), _) => TrustedLog { audit_log, log_id },
        (_, _, Some(server)) => deployment_log(&server).await?,
        // clap requires one of the two.
        _ => bail!("name the log you trust: --audit-log and --log-id, or --server"),
    };
    let file = match (file, evidence) {
        (_, Some(evidence)) => {
            return verify_evidence(&evidence, &provider, &trusted, &policy, out).await;
        }
        (Some(file), None) => file,
        // clap requires one of the two.
        (None, None) => bail!("name a disclosure file or --bundle FILE"),
    };
    let disclosure = Disclosure::read(&file)?;
    match disclosure.verify_on_chain(&provider, &trusted).await {
        Ok(verified) => {
            let mut contents: Vec<String> = disclosure
                .bundle
                .disclosed
                .iter()
                .map(|d| format!("  {:?}: {}", d.kind, String::from_utf8_lossy(&d.content)))
                .collect();
            // What the agent paid within the call (x402), checked against the chain.
            let mut payments = Vec::new();
            for d in &disclosure.bundle.disclosed {
                if d.kind != chaperone_sdk::CommitmentKind::Metadata {
                    continue;
                }
                for payment in chaperone_sdk::X402Payment::from_metadata(&d.content) {
                    // Settled only if the chain shows this authorization used, from an
                    // AgentWallet of the agent that signed the record.
                    let settled = payment.verify_settlement(&provider, verified.agent).await;
                    let payer = match (&settled, payment.authorization()) {
                        (Ok(s), _) => s.payer.to_string(),
                        (Err(_), Ok(a)) => format!("{} (claimed)", a.payer()),
                        (Err(_), Err(_)) => "unknown".to_owned(),
                    };
                    contents.push(format!(
                        "  paid: {} base units of {} from {payer} to {} for {} (decision {}): {}",
                        payment.amount,
                        payment.asset,
                        payment.pay_to,
                        payment.resource,
                        payment.request_id,
                        match &settled {
                            Ok(s) => format!(
                                "settled on chain in {} (block {}; agent {}, co-signer {})",
                                s.transaction, s.block, s.agent, s.cosigner
                            ),
                            Err(e) => format!("NOT SETTLED: {e}"),
                        }
                    ));
                    payments.push(json!({
                        "payment": payment,
                        "settled_on_chain": settled.is_ok(),
                        "payer": settled.as_ref().ok().map(|s| s.payer),
                        "settlement": settled.as_ref().ok(),
                        "settlement_error": settled.err().map(|e| e.to_string()),
                    }));
                }
            }
            out.result(
                &json!({ "valid": true, "verified": verified, "payments": payments }),
                &format!(
                    "VALID: record {} (index {}) by agent {}, model {}\n  \
                     log:       {} of AuditLog {} (operator {}, owner {})\n  \
                     anchored:  at size {} (root {}), {}\n  \
                     made at:   {} (the agent's own claim; the anchor bounds it)\n{}",
                    verified.leaf_hash,
                    verified.index,
                    verified.agent,
                    verified.model,
                    verified.log_id,
                    verified.audit_log,
                    verified.operator,
                    verified.log_owner,
                    verified.checkpoint_size,
                    verified.checkpoint_root,
                    match (verified.anchor_block, verified.anchored_at) {
                        (Some(block), Some(time)) =>
                            format!("in block {block} at {}", iso8601(time)),
                        _ => "in a block the RPC would not search for".to_owned(),
                    },
                    iso8601(verified.timestamp_ms / 1000),
                    contents.join("\n")
                ),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            out.result(
                &json!({ "valid": false, "error": e.to_string() }),
                &format!("INVALID: {e}"),
            )?;
            Ok(ExitCode::from(2))
        }
    }
}

/// Checks an evidence bundle; exit 0 when it verifies, 2 when it does not.
async fn verify_evidence<P: alloy::providers::Provider>(
    file: &std::path::Path,
    provider: &P,
    trusted: &TrustedLog,
    policy: &EvidencePolicy,
    out: Output,
) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let checked = match serde_json::from_str::<EvidenceBundle>(&text) {
        Ok(bundle) => chaperone_sdk::verify_evidence(&bundle, provider, trusted, policy)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(format!("{} is not an evidence bundle: {e}", file.display())),
    };
    match checked {
        Ok(verified) => {
            // Decisions are the server's word unless checked against their own records: say
            // which were, and list the others as unverified.
            let mut text = format!(
                "VALID: {} records included, {} checkpoints signed by operator {} and \
                 anchored{}, {} consistency proofs; {} of {} decisions verified against their \
                 records",
                verified.records,
                verified.checkpoints,
                verified.operator,
                verified
                    .sizes
                    .map(|(a, b)| format!(" (sizes {a} to {b})"))
                    .unwrap_or_default(),
                verified.consistency_proofs,
                verified.decisions_verified,
                verified.decisions,
            );
            if !verified.decision_signers.is_empty() {
                let signers: Vec<String> = verified
                    .decision_signers
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                text += &format!(" (signed by {})", signers.join(", "));
            }
            // The period and scope are the bundle's author's word unless pinned: say them.
            let list = |l: &[Address]| {
                l.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            text = format!(
                "{text}\nPeriod: {} to {} (from {} to {}, unix seconds, to exclusive); scope: {}",
                iso8601(verified.period.0),
                iso8601(verified.period.1),
                verified.period.0,
                verified.period.1,
                match (verified.agents.is_empty(), verified.wallets.is_empty()) {
                    (true, true) => "every agent and wallet".to_owned(),
                    (false, true) => format!("agents {}", list(&verified.agents)),
                    (true, false) => format!("wallets {}", list(&verified.wallets)),
                    (false, false) => format!(
                        "agents {}; wallets {}",
                        list(&verified.agents),
                        list(&verified.wallets)
                    ),
                }
            );
            text += &format!(
                "\nCompleteness: {} decision records opened (each decision shows its last); the \
                 records received in the period chain without a gap for {} agent(s){}",
                verified.decision_records_opened,
                verified.chains_checked.len(),
                if verified.chains_checked.is_empty() {
                    " (a bundle scoped to wallets only: what it leaves out is not checked)"
                } else {
                    ""
                }
            );
            // A scoped bundle never proves its decisions complete: said whatever it holds (it
            // may hold no decision record at all, fifth red-team review).
            if !verified.decisions_completeness_checked {
                text += &format!(
                    "\nDecisions' completeness NOT checked (bundle scoped to agents or wallets): \
                     a decision left out with its record is not detected{}",
                    if verified.service_chains_unchecked.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " (service chain not checked for {})",
                            list(&verified.service_chains_unchecked)
                        )
                    }
                );
            }
            for w in &verified.server_word {
                text += &format!(
                    "\nDecision {}: its {} are the server's word (no decision record commits \
                     to them)",
                    w.request_id,
                    w.fields.join(", ")
                );
            }
            for u in &verified.unverified_decisions {
                text += &format!(
                    "\nUNVERIFIED decision {}: {} (its fields are the server's word only)",
                    u.request_id, u.reason
                );
            }
            // Still waiting for a human when the bundle was made (the service logs a final
            // record for every request that ends): apart from the unverified ones above.
            if !verified.pending_decisions.is_empty() {
                text += &format!(
                    "\nUNVERIFIED, pending at the end of the period: {} (no final record of \
                     them, approved, denied or expired, is in the bundle)",
                    verified.pending_decisions.len()
                );
                for u in &verified.pending_decisions {
                    text += &format!("\n  pending decision {}", u.request_id);
                }
            }
            out.result(&json!({ "valid": true, "verified": verified }), &text)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            out.result(
                &json!({ "valid": false, "error": e }),
                &format!("INVALID: {e}"),
            )?;
            Ok(ExitCode::from(2))
        }
    }
}

/// The log a deployment's server anchors to, as its `GET /v1/checkpoints/latest` says.
async fn deployment_log(server: &str) -> anyhow::Result<TrustedLog> {
    let client = Client::new(server);
    let url = format!("{}/v1/checkpoints/latest", client.base());
    let latest = client
        .latest_checkpoint()
        .await
        .with_context(|| format!("asking {url} for the deployment's log"))?;
    match latest.anchor {
        Some(AnchorView {
            audit_log: Some(audit_log),
            log_id: Some(log_id),
            ..
        }) => Ok(TrustedLog { audit_log, log_id }),
        _ => bail!("{url} names no anchored log yet: pass --audit-log and --log-id"),
    }
}

//! The evidence pack end to end: a server anchoring to a real Anvil logs records of two agents
//! and co-sign decisions over three checkpoints; `chaperone report` fetches the HTML report and
//! the bundle; the bundle verifies with `chaperone verify --bundle` against the chain and with
//! the independent Python implementation of RFC 9162 (tests/evidence/rfc9162.py), and a
//! doctored one (a changed record, a changed proof node, reordered checkpoints, a changed
//! consistency node) is refused by both. A bundle checked against another log than the one the
//! auditor names is refused too.
//!
//! Red team M4: records are selected by when the server received them (an agent that dates
//! its records outside the period is still in it); an empty bundle is refused, not VALID; each
//! decision is checked against its own record (a doctored outcome or opening is INVALID, one
//! without its opening is printed UNVERIFIED). Fifth red-team review: a request denied by an
//! approver and one whose approval expired end with final records, and their period's bundle
//! verifies without `--allow-unverified`.

use std::{path::Path, process::Command};

use alloy::signers::local::PrivateKeySigner;
use chaperone_api::Payment;
use chaperone_chain::{create_log, deploy};
use chaperone_core::{
    Address, Call, CommitmentKind, Execute, Opening, Record, Secp256k1Signer, SignedBatch, U256,
    policy::Policy,
};
use chaperone_server::{
    AnchorPolicy, Anchorer, AppState, DECISION_MODEL, LogConfig, app, token_hash,
};
use chaperone_store::{Store, WalletRecord};
use chaperone_testkit::{
    devnet, provider, provider_with, serve, signed_cosign_json, sqlite_file, temp_dir,
};
use serde_json::Value;

use crate::chaperone;

const AUDITOR: &str = "evidence-auditor-token";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An agent's next `n` records, signed as one batch, dated now.
fn batch(
    key: &Secp256k1Signer,
    sequence: &mut u64,
    previous: &mut chaperone_core::B256,
    n: usize,
) -> SignedBatch {
    batch_dated(key, sequence, previous, &vec![now() * 1000; n])
}

/// An agent's next records, one per timestamp (ms) it claims, signed as one batch.
fn batch_dated(
    key: &Secp256k1Signer,
    sequence: &mut u64,
    previous: &mut chaperone_core::B256,
    timestamps_ms: &[u64],
) -> SignedBatch {
    let records = timestamps_ms
        .iter()
        .map(|timestamp_ms| {
            let commit =
                |kind, text: String| Opening::new(kind, text.into_bytes()).unwrap().commitment();
            let record = Record {
                agent: key.address(),
                sequence: *sequence,
                timestamp_ms: *timestamp_ms,
                model: "gpt-test".into(),
                input: commit(CommitmentKind::Input, format!("q{sequence}")),
                output: commit(CommitmentKind::Output, format!("a{sequence}")),
                metadata: None,
                previous: *previous,
            };
            *previous = record.leaf_hash().unwrap();
            *sequence += 1;
            record
        })
        .collect();
    SignedBatch::sign(records, key).unwrap()
}

/// Runs `chaperone report` as the auditor for the period `from..to` (seconds), writing the bundle
/// to `bundle` (and the page to `html`, if given); fails the test with its stderr if it fails.
fn report_bundle(url: &str, from: &str, to: &str, bundle: &Path, html: Option<&Path>) {
    let mut command = chaperone();
    command
        .args([
            "report", "--server", url, "--from", from, "--to", to, "--bundle",
        ])
        .arg(bundle)
        .env("CHAPERONE_AUDITOR_TOKEN", AUDITOR)
        .env_remove("CHAPERONE_ADMIN_TOKEN");
    if let Some(html) = html {
        command.arg("--html").arg(html);
    }
    let reported = command.output().unwrap();
    assert!(
        reported.status.success(),
        "{}",
        String::from_utf8_lossy(&reported.stderr)
    );
}

/// (exit code, stdout) of the Python verifier on `file`.
fn python_verify(file: &Path) -> (i32, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/evidence/rfc9162.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(file)
        .output()
        .expect("python3 is needed for the independent RFC 9162 check: install Python 3");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

// Multi-threaded: the server runs in this runtime while the test waits on the CLI's process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evidence_bundle_verifies_with_both_implementations_and_a_doctored_one_with_neither() {
    let devnet = devnet();
    let operator_key = devnet.signer(0);
    let operator = Secp256k1Signer::from_bytes(&operator_key.to_bytes()).unwrap();
    let chain = provider(&devnet, 0);
    let deployment = deploy(&chain).await.unwrap();
    let log_id = create_log(&chain, deployment.audit_log, operator.address())
        .await
        .unwrap();
    let other_log = create_log(&chain, deployment.audit_log, operator.address())
        .await
        .unwrap();
    let log = LogConfig::anchored(
        devnet.chain_id(),
        operator.clone(),
        chain.clone(),
        deployment.audit_log,
        log_id,
    );
    let store = Store::connect(&sqlite_file("evidence").url).await.unwrap();
    store
        .add_api_token(token_hash(AUDITOR), "carol", "auditor", now())
        .await
        .unwrap();
    let cosigner = Secp256k1Signer::random().unwrap();
    // The wallet below is not deployed, so no `cosigner()` on chain names the service's key:
    // the auditor names it (`--decision-signer`).
    let service_key = cosigner.address().to_string();
    let state = AppState::new(store.clone(), cosigner.clone(), devnet.chain_id())
        .with_log(log.clone(), Default::default());
    let url = serve(app(state)).await;
    let mut anchorer = Anchorer::new(
        store.clone(),
        log,
        cosigner,
        Some(provider_with(
            &devnet,
            PrivateKeySigner::from_bytes(&operator_key.to_bytes()).unwrap(),
        )),
        AnchorPolicy {
            interval_secs: 3600,
            max_records: 1_000_000,
        },
    );
    let http = reqwest::Client::new();
    // Two honest agents and one that dates its records outside any recent period.
    let agents: Vec<Secp256k1Signer> = (0..3).map(|_| Secp256k1Signer::random().unwrap()).collect();
    let mut chains = [(0u64, chaperone_core::B256::ZERO); 3];
    // A wallet whose payments the service decides, so the period holds decisions too.
    let (wallet, payer) = (
        Address::repeat_byte(0x77),
        Secp256k1Signer::random().unwrap(),
    );
    store
        .register_wallet(
            &WalletRecord {
                address: wallet,
                chain_id: devnet.chain_id(),
                agent: payer.address(),
            },
            now(),
        )
        .await
        .unwrap();
    let policy = format!(
        "version = 1\nchains = [{}]\n[[limits]]\ntoken = \"native\"\nper_transaction = \"100\"\n\
         windows = [{{ window = \"1h\", max = \"1000\" }}]",
        devnet.chain_id()
    );
    store
        .set_policy(wallet, &Policy::from_toml(&policy).unwrap(), now())
        .await
        .unwrap();
    let mut nonce = 0u64;
    for agent in &agents {
        store
            .register_agent(agent.address(), "test", now())
            .await
            .unwrap();
    }
    // Three rounds, each anchored: 5 + 3, then 6 + 1, then 2 + 4 records; in the last, the
    // third agent's two records claim 2001 and 2100.
    for sizes in [[5, 3, 0], [6, 1, 0], [2, 4, 2]] {
        for (i, n) in sizes.into_iter().enumerate() {
            let (sequence, previous) = &mut chains[i];
            let body = match (i, n) {
                (_, 0) => continue,
                (2, _) => batch_dated(
                    &agents[i],
                    sequence,
                    previous,
                    &[1_000_000_000_000, 4_102_444_800_000],
                ),
                _ => batch(&agents[i], sequence, previous, n),
            };
            let response = http
                .post(format!("{url}/v1/records"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 201);
        }
        // One payment within the policy, one over its cap: two decisions per round.
        for (value, status) in [(10u64, 200u16), (500, 403)] {
            let payment = Payment::Execute(Execute {
                calls: vec![Call {
                    to: Address::repeat_byte(0x42),
                    value: U256::from(value),
                    data: Default::default(),
                }],
                nonce: U256::from(nonce),
                validUntil: now() + 60,
            });
            nonce += 1;
            let body = signed_cosign_json(&payer, devnet.chain_id(), wallet, payment);
            let response = http
                .post(format!("{url}/v1/cosign"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), status);
        }
        let report = anchorer.flush(now()).await.unwrap();
        assert!(report.anchored.is_some(), "{report:?}");
    }

    let dir = temp_dir("evidence");
    let (bundle_file, html_file) = (dir.join("bundle.json"), dir.join("report.html"));
    let from = (now() - 3600).to_string();
    let to = (now() + 3600).to_string();
    report_bundle(&url, &from, &to, &bundle_file, Some(&html_file));
    let html = std::fs::read_to_string(&html_file).unwrap();
    assert!(
        html.starts_with("<!DOCTYPE html>") && html.contains("<svg"),
        "{html}"
    );
    let bundle: Value =
        serde_json::from_str(&std::fs::read_to_string(&bundle_file).unwrap()).unwrap();
    let models: Vec<&str> = bundle["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["model"].as_str().unwrap())
        .collect();
    assert_eq!(
        models.iter().filter(|m| **m == "gpt-test").count(),
        23,
        "every agent record the server received in the period, whatever time it claims"
    );
    assert_eq!(
        models.iter().filter(|m| **m == DECISION_MODEL).count(),
        6,
        "the decisions' records"
    );
    assert_eq!(bundle["decisions"].as_array().unwrap().len(), 6);
    assert_eq!(bundle["decision_openings"].as_array().unwrap().len(), 6);
    let sizes: Vec<u64> = bundle["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["size"].as_u64().unwrap())
        .collect();
    assert_eq!(
        sizes,
        [10, 19, 29],
        "the three anchored checkpoints the proofs need"
    );
    assert_eq!(bundle["consistency"].as_array().unwrap().len(), 2);

    let verify = |file: &Path, log: chaperone_core::B256| {
        let output = chaperone()
            .args(["verify", "--decision-signer", &service_key, "--bundle"])
            .arg(file)
            .args(["--rpc-url", &devnet.rpc_url(), "--audit-log"])
            .arg(deployment.audit_log.to_string())
            .args(["--log-id", &log.to_string()])
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (code, out) = verify(&bundle_file, log_id);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("VALID: 29 records"), "{out}");
    assert!(
        out.contains("6 of 6 decisions verified against their records"),
        "{out}"
    );
    assert!(!out.contains("UNVERIFIED"), "{out}");
    // Every decision record is opened, and the records of the period chain for the three
    // agents and the service (third red-team review).
    assert!(
        out.contains("6 decision records opened")
            && out.contains("chain without a gap for 4 agent(s)"),
        "{out}"
    );
    // The period and scope are printed; pinned, they must be the bundle's (fourth red-team
    // review, F).
    assert!(
        out.contains(&format!("(from {from} to {to}, unix seconds")),
        "{out}"
    );
    assert!(out.contains("scope: every agent and wallet"), "{out}");
    let pinned = |extra: &[&str]| {
        let output = chaperone()
            .args(["verify", "--decision-signer", &service_key, "--bundle"])
            .arg(&bundle_file)
            .args(["--rpc-url", &devnet.rpc_url(), "--audit-log"])
            .arg(deployment.audit_log.to_string())
            .args(["--log-id", &log_id.to_string()])
            .args(extra)
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (code, out) = pinned(&["--from", &from, "--to", &to, "--everything"]);
    assert_eq!(code, 0, "{out}");
    let earlier_to = (to.parse::<u64>().unwrap() - 1).to_string();
    let (code, out) = pinned(&["--to", &earlier_to]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("you asked for to"), "{out}");
    let (code, out) = pinned(&["--agent", &Address::repeat_byte(0x44).to_string()]);
    assert_eq!(code, 2, "{out}");
    let (code, out) = python_verify(&bundle_file);
    assert_eq!(code, 0, "{out}");
    // Without the service's key named, a decision record signed by a key no wallet names on
    // chain proves nothing: refused (red team rt29 F1).
    let output = chaperone()
        .args(["verify", "--bundle"])
        .arg(&bundle_file)
        .args(["--rpc-url", &devnet.rpc_url(), "--audit-log"])
        .arg(deployment.audit_log.to_string())
        .args(["--log-id", &log_id.to_string()])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{out}");
    assert!(out.contains("--decision-signer"), "{out}");
    // The bundle of the log you trust, checked as another log's, is refused.
    let (code, out) = verify(&bundle_file, other_log);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("not of the log you trust"), "{out}");

    let flip = |hex: &Value| {
        let text = hex.as_str().unwrap();
        let last = text.chars().last().unwrap();
        let changed = if last == '0' { '1' } else { '0' };
        Value::String(format!("{}{changed}", &text[..text.len() - 1]))
    };
    let mut doctored: Vec<(&str, Value)> = Vec::new();
    let mut changed_record = bundle.clone();
    changed_record["records"][3]["leaf_data"] = flip(&changed_record["records"][3]["leaf_data"]);
    doctored.push(("a changed record", changed_record));
    let mut changed_node = bundle.clone();
    changed_node["records"][10]["inclusion"]["path"][0] =
        flip(&changed_node["records"][10]["inclusion"]["path"][0]);
    doctored.push(("a changed proof node", changed_node));
    let mut reordered = bundle.clone();
    reordered["checkpoints"].as_array_mut().unwrap().swap(0, 1);
    doctored.push(("reordered checkpoints", reordered));
    let mut changed_consistency = bundle.clone();
    changed_consistency["consistency"][1]["path"][0] =
        flip(&changed_consistency["consistency"][1]["path"][0]);
    doctored.push(("a changed consistency node", changed_consistency));
    for (what, forged) in doctored {
        let file = dir.join("doctored.json");
        std::fs::write(&file, serde_json::to_string(&forged).unwrap()).unwrap();
        let (code, out) = verify(&file, log_id);
        assert_eq!(code, 2, "chaperone verify --bundle accepted {what}: {out}");
        assert!(out.starts_with("INVALID"), "{what}: {out}");
        let (code, out) = python_verify(&file);
        assert_eq!(code, 2, "the Python verifier accepted {what}: {out}");
    }

    // Decisions are checked against their records: a changed field or opening is INVALID.
    let denied = bundle["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .position(|d| d["outcome"] == "denied")
        .unwrap();
    let mut forged_decisions: Vec<(&str, Value)> = Vec::new();
    let mut approved = bundle.clone();
    approved["decisions"][denied]["outcome"] = "approved".into();
    approved["decisions"][denied]["signed"] = true.into();
    forged_decisions.push(("a denied decision shown approved", approved));
    let mut reasons = bundle.clone();
    reasons["decisions"][denied]["reasons"] = serde_json::json!([]);
    forged_decisions.push(("a decision without its reasons", reasons));
    let mut opening = bundle.clone();
    let text = opening["decision_openings"][0]["decision"]
        .as_str()
        .unwrap()
        .replace("\"policy_version\":1", "\"policy_version\":2");
    opening["decision_openings"][0]["decision"] = text.into();
    forged_decisions.push(("a changed opening", opening));
    for (what, forged) in forged_decisions {
        let file = dir.join("doctored.json");
        std::fs::write(&file, serde_json::to_string(&forged).unwrap()).unwrap();
        let (code, out) = verify(&file, log_id);
        assert_eq!(code, 2, "chaperone verify --bundle accepted {what}: {out}");
        assert!(
            out.starts_with("INVALID") && out.contains("decision"),
            "{what}: {out}"
        );
    }
    // A decision left out with its opening and its record leaves a gap in the service's
    // chain: INVALID (third red-team review, High). A decision logged between two others: one
    // left out before the first or after the last is not a gap (an open finding).
    let index_of = |leaf: &Value| {
        bundle["records"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["leaf_hash"] == *leaf)
            .map(|r| r["index"].as_u64().unwrap())
            .unwrap()
    };
    let mut by_index: Vec<usize> = (0..bundle["decisions"].as_array().unwrap().len()).collect();
    by_index.sort_by_key(|i| index_of(&bundle["decisions"][*i]["logged_leaf"]));
    let middle = by_index[by_index.len() / 2];
    let mut left_out = bundle.clone();
    let leaf = left_out["decisions"][middle]["logged_leaf"].clone();
    let id = left_out["decisions"][middle]["request_id"].clone();
    left_out["decisions"].as_array_mut().unwrap().remove(middle);
    left_out["decision_openings"]
        .as_array_mut()
        .unwrap()
        .retain(|o| o["request_id"] != id);
    left_out["records"]
        .as_array_mut()
        .unwrap()
        .retain(|r| r["leaf_hash"] != leaf);
    let file = dir.join("left_out.json");
    std::fs::write(&file, serde_json::to_string(&left_out).unwrap()).unwrap();
    let (code, out) = verify(&file, log_id);
    assert_eq!(
        code, 2,
        "a decision left out with its record verified: {out}"
    );
    // In a bundle of everything the hole in the indexes is named first (fifth red-team
    // review); the gap in the service's chain would say "left out".
    assert!(
        out.contains("is missing") || out.contains("left out"),
        "{out}"
    );
    // Without its opening a decision is printed unverified, not verified.
    let mut unopened = bundle.clone();
    unopened["decision_openings"]
        .as_array_mut()
        .unwrap()
        .remove(0);
    let file = dir.join("unopened.json");
    std::fs::write(&file, serde_json::to_string(&unopened).unwrap()).unwrap();
    // A decision that cannot be checked fails the bundle (red team rt29 F9)...
    let (code, out) = verify(&file, log_id);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--allow-unverified"), "{out}");
    // ...unless the auditor accepts it, printed as the server's word.
    let output = chaperone()
        .args([
            "verify",
            "--allow-unverified",
            "--decision-signer",
            &service_key,
        ])
        .arg("--bundle")
        .arg(&file)
        .args(["--rpc-url", &devnet.rpc_url(), "--audit-log"])
        .arg(deployment.audit_log.to_string())
        .args(["--log-id", &log_id.to_string()])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.contains("5 of 6 decisions verified"), "{out}");
    assert!(out.contains("UNVERIFIED decision"), "{out}");

    // Fifth red-team review of issue 29 (Medium): a request a human denied and one whose
    // approval expired each end with a final record after their pending one, so a bundle of
    // their period verifies without --allow-unverified.
    std::thread::sleep(std::time::Duration::from_secs(1));
    let waited_from = now();
    let waiting_policy = format!(
        "version = 2\nchains = [{}]\n[[limits]]\ntoken = \"native\"\nper_transaction = \"100\"\n\
         windows = [{{ window = \"1h\", max = \"1000\" }}]\n[approval]\nexpires_after = \"10m\"\n\
         above = [{{ token = \"native\", amount = \"50\" }}]",
        devnet.chain_id()
    );
    store
        .set_policy(wallet, &Policy::from_toml(&waiting_policy).unwrap(), now())
        .await
        .unwrap();
    store
        .add_api_token(token_hash("evidence-approver"), "alice", "approver", now())
        .await
        .unwrap();
    let mut waiting: Vec<chaperone_core::B256> = Vec::new();
    for valid_for in [60, 2] {
        let payment = Payment::Execute(Execute {
            calls: vec![Call {
                to: Address::repeat_byte(0x42),
                value: U256::from(60),
                data: Default::default(),
            }],
            nonce: U256::from(nonce),
            validUntil: now() + valid_for,
        });
        nonce += 1;
        let body = signed_cosign_json(&payer, devnet.chain_id(), wallet, payment);
        let response = http
            .post(format!("{url}/v1/cosign"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 202);
        let answer: Value = response.json().await.unwrap();
        waiting.push(answer["request_id"].as_str().unwrap().parse().unwrap());
    }
    assert!(anchorer.flush(now()).await.unwrap().anchored.is_some());
    store
        .resolve_approval(waiting[0], false, "alice", Some("no"), now())
        .await
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    let report = anchorer.flush(now()).await.unwrap();
    assert_eq!((report.approvals_expired, report.decisions_logged), (1, 2));
    assert!(report.anchored.is_some(), "{report:?}");
    let waited_file = dir.join("waited.json");
    let waited_to = (now() + 3600).to_string();
    report_bundle(
        &url,
        &waited_from.to_string(),
        &waited_to,
        &waited_file,
        None,
    );
    let (code, out) = verify(&waited_file, log_id);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("2 of 2 decisions verified") && out.contains("4 decision records opened"),
        "{out}"
    );
    assert!(!out.contains("UNVERIFIED"), "{out}");

    // An empty bundle (a period with nothing in it) proves nothing: refused by both.
    let empty_file = dir.join("empty.json");
    report_bundle(&url, "1000", "2000", &empty_file, None);
    let (code, out) = verify(&empty_file, log_id);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("proves nothing"), "{out}");
    let (code, out) = python_verify(&empty_file);
    assert_eq!(
        code, 2,
        "the Python verifier accepted an empty bundle: {out}"
    );
}

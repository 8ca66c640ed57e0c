//! The evidence pack end to end: a server anchoring to a real Anvil logs records of two agents
//! over three checkpoints; `chaperone report` fetches the HTML report and the bundle; the
//! bundle verifies with `chaperone verify --bundle` against the chain and with the independent
//! Python implementation of RFC 9162 (tests/evidence/rfc9162.py), and a doctored one (a
//! changed record, a changed proof node, reordered checkpoints, a changed consistency node) is
//! refused by both. A bundle checked against another log than the one the auditor names is
//! refused too.

use std::{path::Path, process::Command};

use alloy::signers::local::PrivateKeySigner;
use chaperone_chain::{create_log, deploy};
use chaperone_core::{CommitmentKind, Opening, Record, Secp256k1Signer, SignedBatch};
use chaperone_server::{AnchorPolicy, Anchorer, AppState, LogConfig, app, token_hash};
use chaperone_store::Store;
use chaperone_testkit::{devnet, provider, provider_with, serve, sqlite_file, temp_dir};
use serde_json::Value;

use crate::chaperone;

const AUDITOR: &str = "evidence-auditor-token";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An agent's next `n` records, signed as one batch.
fn batch(
    key: &Secp256k1Signer,
    sequence: &mut u64,
    previous: &mut chaperone_core::B256,
    n: usize,
) -> SignedBatch {
    let records = (0..n)
        .map(|_| {
            let commit =
                |kind, text: String| Opening::new(kind, text.into_bytes()).unwrap().commitment();
            let record = Record {
                agent: key.address(),
                sequence: *sequence,
                timestamp_ms: now() * 1000,
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
    let agents: Vec<Secp256k1Signer> = (0..2).map(|_| Secp256k1Signer::random().unwrap()).collect();
    let mut chains = [(0u64, chaperone_core::B256::ZERO); 2];
    for agent in &agents {
        store
            .register_agent(agent.address(), "test", now())
            .await
            .unwrap();
    }
    // Three rounds, each anchored: 5 + 3, then 6 + 1, then 2 + 4 records.
    for sizes in [[5, 3], [6, 1], [2, 4]] {
        for (i, n) in sizes.into_iter().enumerate() {
            let (sequence, previous) = &mut chains[i];
            let body = batch(&agents[i], sequence, previous, n);
            let response = http
                .post(format!("{url}/v1/records"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 201);
        }
        let report = anchorer.flush(now()).await.unwrap();
        assert!(report.anchored.is_some(), "{report:?}");
    }

    let dir = temp_dir("evidence");
    let (bundle_file, html_file) = (dir.join("bundle.json"), dir.join("report.html"));
    let from = (now() - 3600).to_string();
    let to = (now() + 3600).to_string();
    let reported = chaperone()
        .args([
            "report", "--server", &url, "--from", &from, "--to", &to, "--bundle",
        ])
        .arg(&bundle_file)
        .arg("--html")
        .arg(&html_file)
        .env("CHAPERONE_AUDITOR_TOKEN", AUDITOR)
        .env_remove("CHAPERONE_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert!(
        reported.status.success(),
        "{}",
        String::from_utf8_lossy(&reported.stderr)
    );
    let html = std::fs::read_to_string(&html_file).unwrap();
    assert!(
        html.starts_with("<!DOCTYPE html>") && html.contains("<svg"),
        "{html}"
    );
    let bundle: Value =
        serde_json::from_str(&std::fs::read_to_string(&bundle_file).unwrap()).unwrap();
    assert_eq!(
        bundle["records"].as_array().unwrap().len(),
        21,
        "every record of the period"
    );
    let sizes: Vec<u64> = bundle["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["size"].as_u64().unwrap())
        .collect();
    assert_eq!(
        sizes,
        [8, 15, 21],
        "the three anchored checkpoints the proofs need"
    );
    assert_eq!(bundle["consistency"].as_array().unwrap().len(), 2);

    let verify = |file: &Path, log: chaperone_core::B256| {
        let output = chaperone()
            .args(["verify", "--bundle"])
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
    assert!(out.starts_with("VALID: 21 records"), "{out}");
    let (code, out) = python_verify(&bundle_file);
    assert_eq!(code, 0, "{out}");
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
}

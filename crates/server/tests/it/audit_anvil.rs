//! The audit log end to end on a real Anvil: ingestion over HTTP, anchoring, proofs verified by
//! `AuditLog.verifyInclusion`, disclosure verification, the indexer through a reorganisation,
//! a `chaperone-server` process killed between ingest and anchor, and a scan proving raw
//! content reaches neither the database, the logs nor the chain.

use std::time::Duration;

use alloy::{
    primitives::{Address, B256},
    providers::{DynProvider, Provider},
    rpc::types::{BlockTransactionsKind, Filter},
};
use chaperone_chain::{AuditLog, Devnet, create_log, deploy};
use chaperone_core::{
    CommitmentKind, DisclosedContent, DisclosureBundle, Secp256k1Signer, SignedBatch,
};
use chaperone_server::{AnchorPolicy, Anchorer, AppState, Indexer, LogConfig, app};
use chaperone_store::Store;
use chaperone_testkit::{
    SqliteFile, devnet, free_port, provider, provider_with, serve, sqlite_file,
};
use serde_json::{Value, json};

use crate::TestAgent;

type Http = alloy::transports::http::reqwest::Client;

pub(crate) struct Chain {
    pub(crate) devnet: Devnet,
    pub(crate) provider: DynProvider,
    pub(crate) operator: Secp256k1Signer,
    pub(crate) audit_log: Address,
    pub(crate) log_id: B256,
}

/// Anvil with AuditLog deployed and a log whose operator is dev account `account`.
pub(crate) async fn chain(account: usize) -> Chain {
    let devnet = devnet();
    let operator = Secp256k1Signer::from_bytes(&devnet.signer(account).to_bytes()).unwrap();
    let provider = provider(&devnet, account);
    let deployment = deploy(&provider).await.unwrap();
    let log_id = create_log(&provider, deployment.audit_log, operator.address())
        .await
        .unwrap();
    Chain {
        devnet,
        provider,
        operator,
        audit_log: deployment.audit_log,
        log_id,
    }
}

impl Chain {
    pub(crate) fn log_config(&self, cosigner: &Secp256k1Signer) -> LogConfig {
        let _ = cosigner;
        LogConfig::anchored(
            self.devnet.chain_id(),
            self.operator.clone(),
            self.provider.clone(),
            self.audit_log,
            self.log_id,
        )
    }

    pub(crate) fn anchorer(&self, store: &Store, cosigner: &Secp256k1Signer) -> Anchorer {
        // A fresh provider, as a restarted worker would have.
        let sender = provider_with(
            &self.devnet,
            alloy::signers::local::PrivateKeySigner::from_bytes(&self.operator.to_bytes()).unwrap(),
        );
        Anchorer::new(
            store.clone(),
            self.log_config(cosigner),
            cosigner.clone(),
            Some(sender),
            AnchorPolicy {
                interval_secs: 3600,
                max_records: 1_000_000,
            },
        )
    }

    async fn verify_on_chain(&self, proof: &Value) -> bool {
        let inclusion: chaperone_core::InclusionProof =
            serde_json::from_value(proof["inclusion"].clone()).unwrap();
        AuditLog::new(self.audit_log, &self.provider)
            .verifyInclusion(
                self.log_id,
                inclusion.size,
                inclusion.index,
                proof["leaf_hash"].as_str().unwrap().parse().unwrap(),
                inclusion.path,
            )
            .call()
            .await
            .unwrap()
    }

    /// Every byte the chain holds that a transaction or event put there.
    async fn all_calldata_and_logs(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        let latest = self.provider.get_block_number().await.unwrap();
        for n in 0..=latest {
            let block = self
                .provider
                .get_block_by_number(n.into())
                .kind(BlockTransactionsKind::Full)
                .await
                .unwrap()
                .unwrap();
            for tx in block.transactions.txns() {
                use alloy::consensus::Transaction;
                bytes.extend_from_slice(tx.input());
            }
        }
        for log in self
            .provider
            .get_logs(&Filter::new().from_block(0).to_block(latest))
            .await
            .unwrap()
        {
            bytes.extend_from_slice(&log.inner.data.data);
            for topic in log.topics() {
                bytes.extend_from_slice(topic.as_slice());
            }
        }
        bytes
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn post(http: &Http, url: &str, body: String) -> (u16, Value) {
    let response = http
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get(http: &Http, url: &str) -> (u16, Value) {
    let response = http.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn ten_thousand_records_from_three_agents_are_anchored_and_verify_on_chain() {
    let chain = chain(0).await;
    let store = Store::connect(&sqlite_file("server").url).await.unwrap();
    let cosigner = Secp256k1Signer::random().unwrap();
    let state = AppState::new(store.clone(), cosigner.clone(), chain.devnet.chain_id())
        .with_log(chain.log_config(&cosigner), Default::default());
    let url = serve(app(state)).await;
    let http = Http::new();

    let mut agents = [
        TestAgent::registered(&store).await,
        TestAgent::registered(&store).await,
        TestAgent::registered(&store).await,
    ];
    let mut leaves = Vec::new();
    let mut sent = 0;
    'outer: loop {
        for agent in agents.iter_mut() {
            let n = 500.min(10_000 - sent);
            if n == 0 {
                break 'outer;
            }
            let batch = agent.batch(n, "e2e");
            leaves.extend(
                batch
                    .leaf_hashes()
                    .unwrap()
                    .into_iter()
                    .map(|l| (l, agent.key.address())),
            );
            let (status, body) = post(
                &http,
                &format!("{url}/v1/records"),
                serde_json::to_string(&batch).unwrap(),
            )
            .await;
            assert_eq!(status, 201, "{body}");
            sent += n;
        }
    }
    assert_eq!(leaves.len(), 10_000);

    let report = chain.anchorer(&store, &cosigner).flush(1).await.unwrap();
    assert_eq!(report.anchored.map(|(size, _)| size), Some(10_000));
    let (_, latest) = get(&http, &format!("{url}/v1/checkpoints/latest")).await;
    assert_eq!(latest["size"], json!(10_000));
    assert!(latest["anchor"]["tx_hash"].is_string(), "{latest}");

    for (i, (leaf, _)) in leaves.iter().enumerate().step_by(100) {
        let (status, proof) = get(&http, &format!("{url}/v1/records/{leaf}/proof")).await;
        assert_eq!(status, 200, "{proof}");
        assert_eq!(proof["index"], json!(i));
        assert!(
            chain.verify_on_chain(&proof).await,
            "record {i} verifies on chain"
        );
    }

    // An agent discloses one record's input to an auditor; the server checks it end to end.
    let (leaf, agent_address) = leaves[4321];
    let agent = agents
        .iter()
        .find(|a| a.key.address() == agent_address)
        .unwrap();
    let (input, _) = &agent.openings[&leaf];
    let (_, proof) = get(&http, &format!("{url}/v1/records/{leaf}/proof")).await;
    let mut bundle = DisclosureBundle {
        record: serde_json::from_value(proof["record"].clone()).unwrap(),
        disclosed: vec![DisclosedContent {
            kind: CommitmentKind::Input,
            salt: input.salt().clone(),
            content: input.content().to_vec().into(),
        }],
        batch: serde_json::from_value(proof["batch"].clone()).unwrap(),
        inclusion: serde_json::from_value(proof["inclusion"].clone()).unwrap(),
        checkpoint: proof["checkpoint"].as_str().unwrap().to_owned(),
    };
    let (status, verdict) = post(
        &http,
        &format!("{url}/v1/verify"),
        serde_json::to_string(&bundle).unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(verdict["valid"], json!(true));
    assert_eq!(verdict["checkpoint_size"], json!(10_000));
    assert!(verdict["anchor_tx"].is_string());

    bundle.disclosed[0].content = b"a different prompt".to_vec().into();
    let (status, verdict) = post(
        &http,
        &format!("{url}/v1/verify"),
        serde_json::to_string(&bundle).unwrap(),
    )
    .await;
    assert_eq!(status, 422, "{verdict}");
    assert_eq!(verdict["error"]["code"], "invalid_disclosure");
}

#[tokio::test]
async fn the_indexer_matches_the_chain_after_a_reorganisation() {
    let chain = chain(0).await;
    let store = Store::connect(&sqlite_file("server").url).await.unwrap();
    let cosigner = Secp256k1Signer::random().unwrap();
    let mut indexer = Indexer::new(
        chain.provider.clone(),
        store.clone(),
        Some((chain.audit_log, chain.log_id)),
        0,
        0,
    );
    let mut agent = TestAgent::new();
    let mut ingest = async |n: usize| {
        let batch: SignedBatch = agent.batch(n, "reorg");
        let leaves = batch.verify().unwrap();
        store.append_batch(&batch, &leaves, 0, &[]).await.unwrap();
    };
    ingest(10).await;
    chain.anchorer(&store, &cosigner).flush(1).await.unwrap();
    indexer.tick().await.unwrap();

    let snapshot: String = chain
        .provider
        .raw_request("evm_snapshot".into(), ())
        .await
        .unwrap();
    ingest(5).await;
    let anchored = chain.anchorer(&store, &cosigner).flush(2).await.unwrap();
    assert_eq!(anchored.anchored.map(|a| a.0), Some(15));
    indexer.tick().await.unwrap();
    let before = indexed(&store).await;
    assert_eq!(
        before.iter().filter(|e| e.1 == "Anchored").count(),
        2,
        "{before:?}"
    );

    // Replace the last block with a longer branch that lacks the second anchor.
    let reverted: bool = chain
        .provider
        .raw_request("evm_revert".into(), (snapshot,))
        .await
        .unwrap();
    assert!(reverted);
    let _: () = chain
        .provider
        .raw_request("anvil_mine".into(), (3u64,))
        .await
        .unwrap();
    let report = indexer.tick().await.unwrap();
    assert!(report.rewound > 0, "{report:?}");
    assert_eq!(indexed(&store).await, on_chain(&chain).await);
    assert_eq!(store.latest_anchor().await.unwrap().unwrap().size, 10);

    // The anchoring worker anchors the lost checkpoint again on the new branch.
    let again = chain.anchorer(&store, &cosigner).tick(3).await.unwrap();
    assert_eq!(again.anchored.map(|a| a.0), Some(15));
    indexer.tick().await.unwrap();
    let after = indexed(&store).await;
    assert_eq!(after, on_chain(&chain).await);
    assert_eq!(after.iter().filter(|e| e.1 == "Anchored").count(), 2);
}

/// (block, event name, tx) of what the indexer stored.
async fn indexed(store: &Store) -> Vec<(u64, String, B256)> {
    store
        .chain_events(None, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.block_number, e.event, e.tx_hash))
        .collect()
}

/// The same, read from the chain.
async fn on_chain(chain: &Chain) -> Vec<(u64, String, B256)> {
    let logs = chain
        .provider
        .get_logs(&Filter::new().address(chain.audit_log).from_block(0))
        .await
        .unwrap();
    logs.iter()
        .map(|log| {
            use alloy::sol_types::SolEventInterface;
            let name = match AuditLog::AuditLogEvents::decode_log(&log.inner)
                .unwrap()
                .data
            {
                AuditLog::AuditLogEvents::Anchored(_) => "Anchored",
                AuditLog::AuditLogEvents::LogCreated(_) => "LogCreated",
                AuditLog::AuditLogEvents::OperatorChanged(_) => "OperatorChanged",
                AuditLog::AuditLogEvents::OwnerChanged(_) => "OwnerChanged",
            };
            (
                log.block_number.unwrap(),
                name.to_owned(),
                log.transaction_hash.unwrap(),
            )
        })
        .collect()
}

/// A `chaperone-server` process with its output captured.
struct ServerProcess {
    child: std::process::Child,
    url: String,
    output: std::path::PathBuf,
}

fn start_server(
    chain: &Chain,
    database: &str,
    cosigner: &Secp256k1Signer,
    interval: u64,
    tag: &str,
) -> ServerProcess {
    let port = free_port();
    let output = chaperone_testkit::temp_dir("server_process").join(format!("{tag}.log"));
    let log = std::fs::File::create(&output).unwrap();
    let config = format!(
        r#"database = "{database}"
chain_id = {chain_id}
listen = "127.0.0.1:{port}"
rpc_url = "{rpc_url}"
confirmations = 0

[audit_log]
address = "{audit_log}"
log_id = "{log_id}"

[checkpoints]
interval_secs = {interval}

[cosigner]
env = "CHAPERONE_COSIGNER_KEY"

[operator]
env = "CHAPERONE_OPERATOR_KEY"
"#,
        chain_id = chain.devnet.chain_id(),
        rpc_url = chain.devnet.rpc_url(),
        audit_log = chain.audit_log,
        log_id = chain.log_id,
    );
    let config_file = output.with_extension("toml");
    std::fs::write(&config_file, config).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_chaperone-server"))
        .arg("--config")
        .arg(&config_file)
        .env("CHAPERONE_COSIGNER_KEY", cosigner.to_bytes().to_string())
        .env(
            "CHAPERONE_OPERATOR_KEY",
            chain.operator.to_bytes().to_string(),
        )
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    ServerProcess {
        child,
        url: format!("http://127.0.0.1:{port}"),
        output,
    }
}

async fn wait_until_up(http: &Http, url: &str) {
    for _ in 0..200 {
        if http.get(format!("{url}/healthz")).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("chaperone-server did not come up at {url}");
}

#[tokio::test]
async fn a_killed_server_loses_no_record_and_raw_content_reaches_no_database_log_or_chain() {
    let chain = chain(1).await;
    let SqliteFile {
        path: db_path,
        url: database,
    } = sqlite_file("server");
    let cosigner = Secp256k1Signer::random().unwrap();
    let http = Http::new();
    let marker = format!(
        "RAW-CONTENT-MARKER-{}",
        Secp256k1Signer::random().unwrap().address()
    );

    let mut first = start_server(&chain, &database, &cosigner, 3600, "first");
    wait_until_up(&http, &first.url).await;
    let mut agent = TestAgent::registered(&Store::connect(&database).await.unwrap()).await;
    let mut leaves = Vec::new();
    for _ in 0..4 {
        let batch = agent.batch(500, &marker);
        leaves.extend(batch.leaf_hashes().unwrap());
        let (status, body) = post(
            &http,
            &format!("{}/v1/records", first.url),
            serde_json::to_string(&batch).unwrap(),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, _) = get(&http, &format!("{}/v1/checkpoints/latest", first.url)).await;
    assert_eq!(status, 404, "nothing anchored before the kill");
    first.child.kill().unwrap(); // SIGKILL: no graceful shutdown
    first.child.wait().unwrap();

    let mut second = start_server(&chain, &database, &cosigner, 1, "second");
    wait_until_up(&http, &second.url).await;
    let mut latest = Value::Null;
    for _ in 0..120 {
        latest = get(&http, &format!("{}/v1/checkpoints/latest", second.url))
            .await
            .1;
        if latest["anchor"].is_object() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(latest["size"], json!(2000), "{latest}");
    assert!(
        latest["anchor"].is_object(),
        "anchored after the restart: {latest}"
    );
    for leaf in leaves.iter().step_by(97) {
        let (status, proof) = get(&http, &format!("{}/v1/records/{leaf}/proof", second.url)).await;
        assert_eq!(status, 200, "{proof}");
        assert!(chain.verify_on_chain(&proof).await);
    }
    second.child.kill().unwrap();
    second.child.wait().unwrap();

    // The scan: the marker (as text and as hex) is nowhere but in the agent's own memory.
    let needles = [
        marker.as_bytes().to_vec(),
        hex_of(marker.as_bytes()).into_bytes(),
    ];
    let mut places: Vec<(String, Vec<u8>)> = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", db_path.display());
        if let Ok(bytes) = std::fs::read(&path) {
            places.push((path, bytes));
        }
    }
    assert!(!places.is_empty(), "the database file exists");
    for server in [&first, &second] {
        let log = std::fs::read(&server.output).unwrap();
        assert!(
            contains(&log, b"listening"),
            "the server's output was captured"
        );
        places.push((server.output.display().to_string(), log));
    }
    assert!(
        contains(&places.last().unwrap().1, b"checkpoint anchored"),
        "the restarted server logged its anchoring"
    );
    places.push(("the chain".into(), chain.all_calldata_and_logs().await));
    for (place, bytes) in &places {
        for needle in &needles {
            assert!(!contains(bytes, needle), "raw content found in {place}");
        }
    }
    // The scan can fail: the agent's own disclosure store does hold the content.
    let opening = agent.openings.values().next().unwrap();
    assert!(contains(opening.0.content(), marker.as_bytes()));
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Failover: while another replica led, it sent transactions from the same operator account.
/// The returning leader must take its nonce from the chain, not from its provider's cache
/// ("nonce too low" otherwise, growing with the other replica's transactions).
#[tokio::test]
async fn a_returning_leader_takes_its_nonce_from_the_chain() {
    let chain = chain(0).await;
    let store = Store::connect(&sqlite_file("server").url).await.unwrap();
    let cosigner = Secp256k1Signer::random().unwrap();
    let mut anchorer = chain.anchorer(&store, &cosigner);
    let mut agent = TestAgent::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for round in 0..3 {
        let batch: SignedBatch = agent.batch(3, "failover");
        let leaves = batch.verify().unwrap();
        store.append_batch(&batch, &leaves, 0, &[]).await.unwrap();
        let report = anchorer.flush(now + round).await.unwrap();
        assert!(report.anchored.is_some(), "round {round}: {report:?}");
        // The other replica's transactions from the operator account (its own provider, as
        // another process has).
        let other = provider(&chain.devnet, 0);
        for _ in 0..=round {
            other
                .send_transaction(
                    alloy::rpc::types::TransactionRequest::default()
                        .to(Address::repeat_byte(1))
                        .value(alloy::primitives::U256::from(1)),
                )
                .await
                .unwrap()
                .watch()
                .await
                .unwrap();
        }
    }
}

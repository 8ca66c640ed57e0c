//! Record ingestion, receipts, checkpoints and proofs through the router, on SQLite and
//! PostgreSQL; co-sign decisions entering the log.

use axum::http::StatusCode;
use chaperone_core::{
    B256, BatchReceipt, CheckpointVerifier, InclusionProof, SignedCheckpoint, leaf_hash,
};
use chaperone_server::{AnchorPolicy, Anchorer, DECISION_MODEL, LogConfig};
use serde_json::{Value, json};

use crate::{NOW, Service, TestAgent, call, services};

async fn ingest(s: &Service, batch: &chaperone_core::SignedBatch) -> (StatusCode, Value) {
    call(
        &s.router,
        "POST",
        "/v1/records",
        None,
        Some(serde_json::to_string(batch).unwrap()),
    )
    .await
}

fn anchorer(s: &Service) -> Anchorer {
    Anchorer::new(
        s.store.clone(),
        LogConfig::unanchored(31337, s.cosigner.clone()),
        s.cosigner.clone(),
        None,
        AnchorPolicy {
            interval_secs: 3600,
            max_records: 1_000_000,
        },
    )
}

#[tokio::test]
async fn batches_are_appended_with_receipts_and_replays_change_nothing() {
    for s in services().await {
        let (mut a, mut b) = (
            TestAgent::registered(&s.store).await,
            TestAgent::registered(&s.store).await,
        );
        let first = a.batch(5, "m");
        let (status, body) = ingest(&s, &first).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let receipt: BatchReceipt = serde_json::from_value(body["receipt"].clone()).unwrap();
        assert_eq!((receipt.first_index, receipt.size), (0, 5));
        receipt.verify(s.cosigner.address()).unwrap();
        // Each record's receipt checks with its membership in the signed batch.
        for i in 0..5 {
            let membership = first.membership(i).unwrap();
            let leaf = first.records[i].leaf_hash().unwrap();
            let index = receipt
                .verify_record(s.cosigner.address(), &leaf, &membership)
                .unwrap();
            assert_eq!(index, i as u64);
            assert_eq!(body["records"][i]["index"], json!(i));
        }

        let (status, again) = ingest(&s, &first).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(again["replayed"], json!(true));
        assert_eq!(
            again["receipt"], body["receipt"],
            "a replay gets the same receipt"
        );

        let (status, other) = ingest(&s, &b.batch(3, "m")).await;
        assert_eq!(status, StatusCode::CREATED, "{other}");
        assert_eq!(other["receipt"]["first_index"], json!(5));
        let (status, _) = ingest(&s, &a.batch(2, "m")).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(s.store.log_head().await.unwrap().0, 10);
    }
}

#[tokio::test]
async fn gaps_broken_chains_forgeries_and_malformed_batches_are_refused_and_write_nothing() {
    for s in services().await {
        let mut agent = TestAgent::registered(&s.store).await;
        assert_eq!(
            ingest(&s, &agent.batch(2, "m")).await.0,
            StatusCode::CREATED
        );

        // A gap: skip a record.
        let mut skipping = TestAgent {
            key: agent.key.clone(),
            sequence: agent.sequence,
            previous: agent.previous,
            openings: Default::default(),
        };
        let _lost = skipping.batch(1, "m");
        let (status, body) = ingest(&s, &skipping.batch(1, "m")).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["error"]["code"], "sequence_gap", "{body}");

        // The right sequence but the wrong previous hash.
        let mut forked = TestAgent {
            key: agent.key.clone(),
            sequence: agent.sequence,
            previous: B256::repeat_byte(7),
            openings: Default::default(),
        };
        let (status, body) = ingest(&s, &forked.batch(1, "m")).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["error"]["code"], "broken_chain", "{body}");

        // Signed by someone else.
        let mut batch = agent.clone_batch(1);
        let mallory = chaperone_core::Secp256k1Signer::random().unwrap();
        let root = batch.root().unwrap();
        batch.signature = mallory
            .sign_message(&chaperone_core::batch_message(1, &root))
            .unwrap();
        let (status, body) = ingest(&s, &batch).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["error"]["code"], "bad_signature");

        // An oversized batch: 413 naming the limit of this endpoint (8 MiB), not the 64 KiB of
        // the others.
        let pad = "x".repeat(chaperone_server::MAX_BATCH_BODY_BYTES + 1);
        let (status, body) = call(
            &s.router,
            "POST",
            "/v1/records",
            None,
            Some(format!("{{\"pad\":\"{pad}\"}}")),
        )
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&chaperone_server::MAX_BATCH_BODY_BYTES.to_string()),
            "{message}"
        );

        // An unknown field inside a record is refused like one at the top.
        let mut extra = serde_json::to_value(agent.clone_batch(1)).unwrap();
        extra["records"][0]["note"] = json!("unsigned");
        let (status, body) = call(
            &s.router,
            "POST",
            "/v1/records",
            None,
            Some(extra.to_string()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"]["code"], "invalid_request");

        for (bad, code) in [
            ("{", "invalid_json"),
            (r#"{"records": [], "signature": null}"#, "invalid_request"),
            (r#"{"records": [], "extra": 1}"#, "invalid_request"),
        ] {
            let (status, body) =
                call(&s.router, "POST", "/v1/records", None, Some(bad.into())).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
            assert_eq!(body["error"]["code"], code, "{bad}");
        }
        let empty = json!({ "records": [], "signature": batch.signature }).to_string();
        let (status, body) = call(&s.router, "POST", "/v1/records", None, Some(empty)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "invalid_batch");

        // Numbers beyond what the log can store (≥ 2^63): a precise 400, not a 500.
        for (sequence, timestamp_ms) in [(1u64 << 63, 1), (0, u64::MAX)] {
            let other = chaperone_core::Secp256k1Signer::random().unwrap();
            let mut huge = TestAgent {
                key: other.clone(),
                sequence,
                previous: if sequence == 0 {
                    B256::ZERO
                } else {
                    B256::repeat_byte(1)
                },
                openings: Default::default(),
            }
            .batch(1, "m");
            huge.records[0].timestamp_ms = timestamp_ms;
            let huge = chaperone_core::SignedBatch::sign(huge.records, &other).unwrap();
            let (status, body) = ingest(&s, &huge).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(body["error"]["code"], "out_of_range", "{body}");
        }

        assert_eq!(
            s.store.log_head().await.unwrap().0,
            2,
            "nothing was written"
        );
        // The honest continuation still goes in.
        assert_eq!(
            ingest(&s, &agent.batch(1, "m")).await.0,
            StatusCode::CREATED
        );
    }
}

impl TestAgent {
    /// The agent's next `n` records, signed, without advancing the agent.
    fn clone_batch(&self, n: usize) -> chaperone_core::SignedBatch {
        let mut copy = TestAgent {
            key: self.key.clone(),
            sequence: self.sequence,
            previous: self.previous,
            openings: Default::default(),
        };
        copy.batch(n, "m")
    }
}

#[tokio::test]
async fn proofs_come_from_the_stored_tree_and_verify_against_signed_checkpoints() {
    for s in services().await {
        let mut agents = [
            TestAgent::registered(&s.store).await,
            TestAgent::registered(&s.store).await,
            TestAgent::registered(&s.store).await,
        ];
        let mut leaves = Vec::new();
        for round in 0..4 {
            for agent in agents.iter_mut() {
                let batch = agent.batch(7 + round, "m");
                leaves.extend(batch.leaf_hashes().unwrap());
                assert_eq!(ingest(&s, &batch).await.0, StatusCode::CREATED);
            }
        }
        // Past 256 leaves: proofs then combine stored subtrees (64 leaves and up) with
        // smaller ones hashed from the leaves, across several tiles.
        let batch = agents[0].batch(200, "m");
        leaves.extend(batch.leaf_hashes().unwrap());
        assert_eq!(ingest(&s, &batch).await.0, StatusCode::CREATED);
        let n = leaves.len() as u64;
        let (status, body) = call(
            &s.router,
            "GET",
            &format!("/v1/records/{}/proof", leaves[0]),
            None,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT, "no checkpoint yet: {body}");
        let (status, _) = call(&s.router, "GET", "/v1/checkpoints/latest", None, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        let report = anchorer(&s).flush(NOW).await.unwrap();
        assert_eq!(report.checkpoint, Some(n));
        let (status, latest) = call(&s.router, "GET", "/v1/checkpoints/latest", None, None).await;
        assert_eq!(status, StatusCode::OK);
        let verifier = CheckpointVerifier {
            name: "chaperone.dev/31337/unanchored".into(),
            address: s.cosigner.address(),
        };
        let checkpoint = SignedCheckpoint::verify(latest["note"].as_str().unwrap(), &verifier)
            .unwrap()
            .checkpoint;
        assert_eq!(checkpoint.size, n);

        // The root from the database equals a fresh in-memory tree's.
        let mut tree = chaperone_core::MerkleLog::new();
        for leaf in &leaves {
            tree.append_leaf_hash(*leaf);
        }
        assert_eq!(checkpoint.root, tree.root());
        for (i, leaf) in leaves.iter().enumerate() {
            let (status, proof) = call(
                &s.router,
                "GET",
                &format!("/v1/records/{leaf}/proof"),
                None,
                None,
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{proof}");
            let inclusion: InclusionProof =
                serde_json::from_value(proof["inclusion"].clone()).unwrap();
            assert_eq!(inclusion.index, i as u64);
            inclusion.verify(leaf, &checkpoint.root).unwrap();
            assert_eq!(inclusion, tree.inclusion_proof(i as u64, n).unwrap());
            assert!(proof["anchor"].is_null(), "no chain, no anchor");
        }
        // Consistency proofs from the database match the in-memory tree's.
        for m in [1, 5, 17, 63, 64, 65, 128, 200, 256, n - 1] {
            assert_eq!(
                s.store.consistency_proof(m, n).await.unwrap(),
                tree.consistency_proof(m, n).unwrap()
            );
        }
        let (status, body) = call(&s.router, "GET", "/v1/records/0x1234/proof", None, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let unknown = leaf_hash(b"never logged");
        let (status, body) = call(
            &s.router,
            "GET",
            &format!("/v1/records/{unknown}/proof"),
            None,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["code"], "unknown_record");
    }
}

#[tokio::test]
async fn cosign_decisions_become_records_of_the_policy_service() {
    for s in services().await {
        let s = crate::cosign::ready_on(s).await;
        let (status, approved) = crate::cosign::request(&s, 100, 1).await;
        assert_eq!(status, StatusCode::OK, "{approved}");
        let (status, denied) = crate::cosign::request(&s, 10_000_000, 2).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{denied}");

        let report = anchorer(&s).flush(NOW).await.unwrap();
        assert_eq!(report.decisions_logged, 2);
        let mut agent = TestAgent::registered(&s.store).await;
        assert_eq!(
            ingest(&s, &agent.batch(1, "m")).await.0,
            StatusCode::CREATED
        );
        assert_eq!(anchorer(&s).flush(NOW).await.unwrap().decisions_logged, 0);

        for answer in [&approved, &denied] {
            let id: B256 = answer["request_id"].as_str().unwrap().parse().unwrap();
            let leaf = s.store.decision_leaf(id).await.unwrap().expect("logged");
            let logged = s.store.record(leaf).await.unwrap().unwrap();
            assert_eq!(logged.record.agent, s.cosigner.address());
            assert_eq!(logged.record.model, DECISION_MODEL);
        }
        let (_, page) = call(
            &s.router,
            "GET",
            &format!("/v1/agents/{}/records", s.cosigner.address()),
            Some(crate::ADMIN),
            None,
        )
        .await;
        // The two decisions, and the two administrative actions that set the wallet up
        // (its registration and its policy), all records of the policy service.
        let models: Vec<&str> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["model"].as_str().unwrap())
            .collect();
        assert_eq!(
            models,
            [
                DECISION_MODEL,
                DECISION_MODEL,
                chaperone_server::ADMIN_ACTION_MODEL,
                chaperone_server::ADMIN_ACTION_MODEL
            ],
            "{page}"
        );
    }
}

#[tokio::test]
async fn exactly_one_replica_holds_the_anchoring_lock_on_postgresql() {
    for s in services().await {
        let postgres = s.store.backend() == chaperone_store::Backend::Postgres;
        let mut agent = TestAgent::registered(&s.store).await;
        assert_eq!(
            ingest(&s, &agent.batch(3, "m")).await.0,
            StatusCode::CREATED
        );
        let (mut first, mut second) = (anchorer(&s), anchorer(&s));
        assert!(first.tick(NOW).await.unwrap().leader);
        let report = second.tick(NOW).await.unwrap();
        // SQLite is one process's file: every worker there may anchor.
        assert_eq!(report.leader, !postgres, "{report:?}");
        drop(first);
        // The lock goes with its connection once the pool closes it; a new leader takes over.
        if postgres {
            let mut took_over = false;
            for _ in 0..50 {
                if second.tick(NOW).await.unwrap().leader {
                    took_over = true;
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            assert!(
                took_over,
                "the second replica takes over after the first stops"
            );
        }
    }
}

/// Only the deployment's registered agents append: a batch signed by any other key (valid in
/// itself) is refused with 403 and writes nothing, until an admin registers the key; an agent
/// unregistered stops appending. Registering a wallet registers its agent.
#[tokio::test]
async fn only_registered_agents_append_to_the_log() {
    use crate::ADMIN;
    for s in services().await {
        let mut outsider = TestAgent::new();
        let batch = outsider.batch(2, "misleading");
        let (status, body) = ingest(&s, &batch).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["error"]["code"], "agent_not_registered", "{body}");
        assert_eq!(
            s.store.log_head().await.unwrap().0,
            0,
            "nothing was written"
        );

        let register = json!({ "address": outsider.key.address() }).to_string();
        let (status, _) = call(
            &s.router,
            "POST",
            "/v1/admin/agents",
            None,
            Some(register.clone()),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "an admin registers agents"
        );
        let (status, body) = call(
            &s.router,
            "POST",
            "/v1/admin/agents",
            Some(ADMIN),
            Some(register.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, _) = call(
            &s.router,
            "POST",
            "/v1/admin/agents",
            Some(ADMIN),
            Some(register),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "registering twice changes nothing");
        let (status, body) = ingest(&s, &batch).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");

        let (status, list) = call(&s.router, "GET", "/v1/admin/agents", Some(ADMIN), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            list["agents"][0]["address"],
            json!(outsider.key.address()),
            "{list}"
        );
        assert_eq!(list["agents"][0]["registered_by"], "ops", "{list}");

        let uri = format!("/v1/admin/agents/{}", outsider.key.address());
        let (status, _) = call(&s.router, "DELETE", &uri, Some(ADMIN), None).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = call(&s.router, "DELETE", &uri, Some(ADMIN), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = ingest(&s, &outsider.batch(1, "after")).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "unregistered agents stop appending"
        );
        assert_eq!(s.store.log_head().await.unwrap().0, 2);

        // The wallet's agent is registered with its wallet.
        let s = crate::cosign::ready_on(s).await;
        let mut agent = TestAgent {
            key: s.agent.clone(),
            ..TestAgent::new()
        };
        let (status, body) = ingest(&s, &agent.batch(1, "m")).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
}

/// Attacker A: an agent key logs a record that reads as the policy service's own (a made-up
/// "approved" decision for an evidence bundle). The prefix is the service's: refused whole.
#[tokio::test]
async fn an_agent_cannot_log_a_record_under_the_policy_services_model() {
    for s in services().await {
        for model in [
            DECISION_MODEL,
            chaperone_server::ADMIN_ACTION_MODEL,
            "chaperone-policy/x",
        ] {
            let mut agent = TestAgent::registered(&s.store).await;
            let mut batch = agent.batch(1, "m");
            batch.records[0].model = model.to_owned();
            let root = batch.root().unwrap();
            batch.signature = agent
                .key
                .sign_message(&chaperone_core::batch_message(1, &root))
                .unwrap();
            let (status, body) = ingest(&s, &batch).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{model}: {body}");
            assert_eq!(body["error"]["code"], "invalid_record", "{body}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("reserved"),
                "{body}"
            );
        }
        // Nothing was written: a fresh agent's first batch is still the log's first leaf.
        let mut agent = TestAgent::registered(&s.store).await;
        let (status, body) = ingest(&s, &agent.batch(1, "m")).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["receipt"]["first_index"], json!(0), "{body}");
    }
}

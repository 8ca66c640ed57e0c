//! `verify_evidence` bounds a record's receive time by the first anchoring on chain that holds
//! it, found from the chain, not by the checkpoints the bundle chose (fifth red-team review of
//! issue 29, Medium): on a real Anvil with the real contracts, two anchorings 1,000 s apart.

use alloy::providers::Provider;
use chaperone_api::{
    audit::AnchorView,
    evidence::{
        EVIDENCE_VERSION, EvidenceBundle, EvidenceCheckpoint, EvidenceConsistency, EvidenceRecord,
    },
};
use chaperone_chain::{AuditLog, create_log, deploy};
use chaperone_core::{
    B256, Checkpoint, CommitmentKind, MerkleLog, Opening, Record, Secp256k1Signer,
};
use chaperone_sdk::{EvidencePolicy, TrustedLog, verify_evidence};
use chaperone_testkit::{devnet, provider};

/// An agent's chain of `n` records.
fn records(agent: &Secp256k1Signer, n: u64) -> Vec<Record> {
    let mut previous = B256::ZERO;
    (0..n)
        .map(|sequence| {
            let commit =
                |kind, text: String| Opening::new(kind, text.into_bytes()).unwrap().commitment();
            let record = Record {
                agent: agent.address(),
                sequence,
                timestamp_ms: 1_700_000_000_000 + sequence,
                model: "gpt-test".into(),
                input: commit(CommitmentKind::Input, format!("q{sequence}")),
                output: commit(CommitmentKind::Output, format!("a{sequence}")),
                metadata: None,
                previous,
            };
            previous = record.leaf_hash().unwrap();
            record
        })
        .collect()
}

/// A bundle author proves every record against a later checkpoint than the first that holds
/// it: the "received before anchoring" bound then used that checkpoint's anchoring, 1,000 s
/// after the first, and a record dated 400 s after its first anchoring (moved towards the end
/// of the period, out of its place) verified. The bound is the first anchoring on chain.
#[tokio::test]
async fn a_receive_time_after_the_first_anchoring_holding_it_does_not_verify() {
    let devnet = devnet();
    let owner = provider(&devnet, 0);
    let deployment = deploy(&owner).await.unwrap();
    let chain_id = owner.get_chain_id().await.unwrap();
    // The operator signs checkpoints and sends the anchoring transactions.
    let operator = Secp256k1Signer::from_bytes(&devnet.signer(0).to_bytes()).unwrap();
    let trusted = TrustedLog {
        audit_log: deployment.audit_log,
        log_id: create_log(&owner, deployment.audit_log, operator.address())
            .await
            .unwrap(),
    };
    let origin = format!(
        "chaperone.dev/{chain_id}/{}/{}",
        deployment.audit_log, trusted.log_id
    );
    let agent = Secp256k1Signer::random().unwrap();
    let logged = records(&agent, 4);
    let mut log = MerkleLog::new();
    let audit_log = AuditLog::new(deployment.audit_log, &owner);
    // Two records, anchored; 1,000 s later two more, anchored with a consistency proof.
    let mut checkpoints = Vec::new();
    for (size, consistency) in [(2u64, false), (4, true)] {
        while log.size() < size {
            log.append(&logged[log.size() as usize].encode().unwrap());
        }
        let root = log.root();
        let proof = if consistency {
            log.consistency_proof(2, 4).unwrap().path
        } else {
            vec![]
        };
        let receipt = audit_log
            .anchor(trusted.log_id, size, root, proof)
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        let block = receipt.block_number.unwrap();
        let time = owner
            .get_block_by_number(block.into())
            .await
            .unwrap()
            .unwrap()
            .header
            .timestamp;
        let note = Checkpoint {
            origin: origin.clone(),
            size,
            root,
        }
        .sign(&origin, &operator)
        .unwrap()
        .note;
        checkpoints.push((
            time,
            EvidenceCheckpoint {
                size,
                root,
                note,
                anchor: AnchorView {
                    audit_log: Some(deployment.audit_log),
                    log_id: Some(trusted.log_id),
                    size,
                    tx_hash: receipt.transaction_hash,
                    block_number: block,
                },
            },
        ));
        owner
            .raw_request::<_, serde_json::Value>("evm_increaseTime".into(), (1_000u64,))
            .await
            .unwrap();
    }
    let (first_anchored, second_anchored) = (checkpoints[0].0, checkpoints[1].0);
    assert!(second_anchored >= first_anchored + 1_000);
    // A bundle of the four records, each proved against checkpoint `proved_against[i]`, with
    // the receive times given.
    let bundle = |proved_against: [u64; 4], received_ms: [u64; 4]| {
        let sizes: Vec<u64> = {
            let mut sizes = proved_against.to_vec();
            sizes.dedup();
            sizes
        };
        EvidenceBundle {
            version: EVIDENCE_VERSION,
            from: first_anchored - 100,
            to: second_anchored + 100,
            agents: vec![],
            wallets: vec![],
            records: logged
                .iter()
                .enumerate()
                .map(|(i, record)| EvidenceRecord {
                    index: i as u64,
                    leaf_hash: record.leaf_hash().unwrap(),
                    leaf_data: record.encode().unwrap().into(),
                    agent: record.agent,
                    model: record.model.clone(),
                    timestamp_ms: record.timestamp_ms,
                    received_ms: received_ms[i],
                    inclusion: log.inclusion_proof(i as u64, proved_against[i]).unwrap(),
                })
                .collect(),
            unanchored_records: 0,
            checkpoints: checkpoints
                .iter()
                .filter(|(_, c)| sizes.contains(&c.size))
                .map(|(_, c)| c.clone())
                .collect(),
            consistency: if sizes.len() == 2 {
                vec![EvidenceConsistency {
                    first: 2,
                    second: 4,
                    path: log.consistency_proof(2, 4).unwrap().path,
                }]
            } else {
                vec![]
            },
            decisions: vec![],
            decision_openings: vec![],
        }
    };
    let (before_first, before_second) =
        ((first_anchored - 10) * 1000, (first_anchored + 500) * 1000);
    let honest = [before_first, before_first, before_second, before_second];
    let policy = EvidencePolicy::default();
    for proved_against in [[2, 2, 4, 4], [4, 4, 4, 4]] {
        verify_evidence(&bundle(proved_against, honest), &owner, &trusted, &policy)
            .await
            .unwrap_or_else(|e| panic!("the honest bundle ({proved_against:?}) failed: {e}"));
    }
    // Record 1 dated 400 s after the anchoring of checkpoint 2, which holds it.
    let moved = [
        before_first,
        (first_anchored + 400) * 1000,
        before_second,
        before_second,
    ];
    let refused = verify_evidence(&bundle([4, 4, 4, 4], moved), &owner, &trusted, &policy)
        .await
        .expect_err("a receive time after the first anchoring holding it verified");
    let message = refused.to_string();
    assert!(
        message.contains("record 1")
            && message.contains("first anchored on chain holding it (size 2"),
        "{message}"
    );
    // Proved against the checkpoints that hold it first, it is refused too.
    assert!(
        verify_evidence(&bundle([2, 2, 4, 4], moved), &owner, &trusted, &policy)
            .await
            .is_err()
    );
}

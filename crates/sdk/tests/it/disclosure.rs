//! `Disclosure::verify_on_chain` trusts only the log the auditor names: the attack of the second
//! review, on a real Anvil with the real contracts.

use alloy::{
    primitives::{B256, Bytes},
    providers::Provider,
};
use chaperone_chain::{AuditLog, create_log, deploy};
use chaperone_core::{
    Checkpoint, CommitmentKind, DisclosedContent, DisclosureBundle, MerkleLog, Opening, Record,
    Secp256k1Signer, SignedBatch,
};
use chaperone_sdk::{AnchorView, Disclosure, TrustedLog};
use chaperone_testkit::{devnet, provider};

/// A compromised agent creates a log of its own in the genuine `AuditLog` (anyone may), anchors
/// a made-up record signed with the real agent key (sequence 0 again, a 2020 timestamp), and
/// hands the auditor a bundle naming that log. Every signature and proof in it is valid; only
/// the log differs. Before the fix `verify` printed it VALID, by the real agent.
#[tokio::test]
async fn a_bundle_from_a_log_the_auditor_does_not_trust_is_refused() {
    let devnet = devnet();
    let owner = provider(&devnet, 0);
    let deployment = deploy(&owner).await.unwrap();
    let chain_id = owner.get_chain_id().await.unwrap();
    let operator = Secp256k1Signer::random().unwrap();
    let genuine = TrustedLog {
        audit_log: deployment.audit_log,
        log_id: create_log(&owner, deployment.audit_log, operator.address())
            .await
            .unwrap(),
    };

    // The attacker: the real agent key, and a key of its own as its log's operator.
    let agent = Secp256k1Signer::random().unwrap();
    let rogue_operator = devnet.signer(1);
    let rogue_key = Secp256k1Signer::from_bytes(&rogue_operator.to_bytes()).unwrap();
    let attacker = provider(&devnet, 1);
    let rogue_log = create_log(&attacker, deployment.audit_log, rogue_key.address())
        .await
        .unwrap();
    let input = Opening::new(
        CommitmentKind::Input,
        b"approve the wire to account 666".to_vec(),
    )
    .unwrap();
    let output = Opening::new(CommitmentKind::Output, b"approved".to_vec()).unwrap();
    let record = Record {
        agent: agent.address(),
        sequence: 0,
        timestamp_ms: 1_577_836_800_000, // 2020-01-01
        model: "gpt-4o".into(),
        input: input.commitment(),
        output: output.commitment(),
        metadata: None,
        previous: B256::ZERO,
    };
    let batch = SignedBatch::sign(vec![record.clone()], &agent).unwrap();
    let mut log = MerkleLog::new();
    log.append(&record.encode().unwrap());
    let origin = format!(
        "chaperone.dev/{chain_id}/{}/{rogue_log}",
        deployment.audit_log
    );
    let checkpoint = Checkpoint {
        origin: origin.clone(),
        size: 1,
        root: log.root(),
    }
    .sign(&origin, &rogue_key)
    .unwrap();
    let receipt = AuditLog::new(deployment.audit_log, &attacker)
        .anchor(rogue_log, 1, log.root(), vec![])
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let forged = Disclosure {
        bundle: DisclosureBundle {
            record,
            disclosed: vec![DisclosedContent {
                kind: CommitmentKind::Input,
                salt: input.salt().clone(),
                content: Bytes::from(input.content().to_vec()),
            }],
            batch: batch.membership(0).unwrap(),
            inclusion: log.inclusion_proof(0, 1).unwrap(),
            checkpoint: checkpoint.note,
        },
        anchor: Some(AnchorView {
            audit_log: Some(deployment.audit_log),
            log_id: Some(rogue_log),
            size: 1,
            tx_hash: receipt.transaction_hash,
            block_number: receipt.block_number.unwrap(),
        }),
    };

    let refused = forged.verify_on_chain(&owner, &genuine).await.unwrap_err();
    assert!(
        refused.to_string().contains("not of the log you trust"),
        "{refused}"
    );
    // The bundle is otherwise sound: against the rogue log it verifies, which is exactly why the
    // auditor, not the bundle, must name the log. The anchor's block time comes from the chain.
    let rogue = TrustedLog {
        audit_log: deployment.audit_log,
        log_id: rogue_log,
    };
    let verified = forged.verify_on_chain(&owner, &rogue).await.unwrap();
    assert_eq!(verified.operator, rogue_key.address());
    assert_eq!(verified.log_owner, rogue_operator.address());
    assert_eq!(verified.anchor_block, receipt.block_number);
    let block = owner
        .get_block_by_number(receipt.block_number.unwrap().into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(verified.anchored_at, Some(block.header.timestamp));
    assert!(
        verified.anchored_at.unwrap() * 1000 > verified.timestamp_ms,
        "the record claims 2020; the anchor shows when it really reached the chain"
    );
}

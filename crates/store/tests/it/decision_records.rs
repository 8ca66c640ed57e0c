//! The records of decisions and their openings: every record of a request re-decided after a
//! human approval keeps its opening, and a decision re-decided while it is logged is logged
//! again (third red-team review of issue 29).

use chaperone_core::{B256, policy::Outcome};
use chaperone_store::Store;

use crate::{
    decisions::{NOW, decide, pay, request},
    people::{at, quorum_wallet},
    stores,
};

/// Logs the unlogged decisions as the anchorer does (one batch of `key`'s records after its
/// `sequence`/`previous`), each record committing to what `unlogged_decisions` gives.
pub(crate) async fn log_decisions(
    store: &Store,
    key: &chaperone_core::Secp256k1Signer,
    chain: &mut (u64, B256),
    received_ms: u64,
) -> Vec<B256> {
    let pending = store.unlogged_decisions(100).await.unwrap();
    log_read(store, key, chain, received_ms, pending).await
}

/// Logs `pending` (as read by `unlogged_decisions`, maybe a while ago).
async fn log_read(
    store: &Store,
    key: &chaperone_core::Secp256k1Signer,
    chain: &mut (u64, B256),
    received_ms: u64,
    pending: Vec<chaperone_store::UnloggedDecision>,
) -> Vec<B256> {
    use chaperone_core::{Commitment, CommitmentKind, Record, Salt, SignedBatch};
    let mut records = Vec::new();
    let mut logged = Vec::new();
    for d in pending {
        let (input, output) = (Salt::random().unwrap(), Salt::random().unwrap());
        let record = Record {
            agent: key.address(),
            sequence: chain.0,
            timestamp_ms: d.created_at * 1000,
            model: "chaperone-policy/decision/v1".into(),
            input: Commitment::compute(CommitmentKind::Input, &input, d.request.as_bytes()),
            output: Commitment::compute(CommitmentKind::Output, &output, d.decision.as_bytes()),
            metadata: None,
            previous: chain.1,
        };
        *chain = (chain.0 + 1, record.leaf_hash().unwrap());
        records.push(record);
        let salts = serde_json::json!({ "input": input, "output": output }).to_string();
        logged.push((d, salts));
    }
    let batch = SignedBatch::sign(records, key).unwrap();
    let leaves = batch.leaf_hashes().unwrap();
    store
        .append_batch(&batch, &leaves, received_ms, &logged)
        .await
        .unwrap();
    leaves
}

/// Third red-team review of issue 29 (Medium-high): a request re-decided after a human
/// approval is logged again, and its first record ("pending") stays in the log; its opening
/// was lost (the salts were overwritten per request), so a bundle could neither open it nor
/// tell it was superseded. Every record's opening is kept, each with what it committed to.
#[tokio::test]
async fn a_re_decided_request_keeps_the_opening_of_each_of_its_records() {
    for store in stores().await {
        quorum_wallet(&store).await;
        let key = chaperone_core::Secp256k1Signer::random().unwrap();
        let mut chain = (0, B256::ZERO);
        let (id, req) = request(vec![pay(1_500_000)], 0, NOW);
        assert_eq!(
            decide(&store, id, &req).await.outcome,
            Outcome::PendingApproval
        );
        let pending_leaf = log_decisions(&store, &key, &mut chain, NOW * 1000).await[0];
        store
            .resolve_approval(id, true, "alice", None, NOW + 1)
            .await
            .unwrap();
        assert_eq!(
            decide(&store, id, &at(&req, NOW + 2)).await.outcome,
            Outcome::Approved
        );
        let approved_leaf = log_decisions(&store, &key, &mut chain, (NOW + 2) * 1000).await[0];
        assert_eq!(store.decision_leaf(id).await.unwrap(), Some(approved_leaf));
        let mut openings = store.decision_openings(&[id]).await.unwrap();
        openings.sort_by_key(|o| o.leaf_hash != pending_leaf);
        let found: Vec<(B256, B256, bool)> = openings
            .iter()
            .map(|o| {
                (
                    o.request_id,
                    o.leaf_hash,
                    o.decision.contains("\"outcome\":\"approved\""),
                )
            })
            .collect();
        assert_eq!(
            found,
            [(id, pending_leaf, false), (id, approved_leaf, true)],
            "every record of a re-decided request is opened with what it committed to"
        );
    }
}

/// Third red-team review of issue 29 (a finding of the session that fixed it): a request
/// re-decided between the anchorer reading it and logging it was marked logged under the record
/// of its earlier verdict, and its new verdict was never logged. It is marked logged only if
/// unchanged since it was read, and the new verdict is logged next.
#[tokio::test]
async fn a_decision_re_decided_while_it_is_logged_is_logged_again() {
    for store in stores().await {
        quorum_wallet(&store).await;
        let key = chaperone_core::Secp256k1Signer::random().unwrap();
        let mut chain = (0, B256::ZERO);
        let (id, req) = request(vec![pay(1_500_000)], 0, NOW);
        assert_eq!(
            decide(&store, id, &req).await.outcome,
            Outcome::PendingApproval
        );
        let read = store.unlogged_decisions(100).await.unwrap();
        store
            .resolve_approval(id, true, "alice", None, NOW + 1)
            .await
            .unwrap();
        assert_eq!(
            decide(&store, id, &at(&req, NOW + 2)).await.outcome,
            Outcome::Approved
        );
        let pending_leaf = log_read(&store, &key, &mut chain, NOW * 1000, read).await[0];
        assert_eq!(
            store.decision_leaf(id).await.unwrap(),
            None,
            "a re-decided request was marked logged under its earlier verdict's record"
        );
        let approved_leaf = log_decisions(&store, &key, &mut chain, (NOW + 2) * 1000).await[0];
        assert_eq!(store.decision_leaf(id).await.unwrap(), Some(approved_leaf));
        let openings = store.decision_openings(&[id]).await.unwrap();
        let pending = openings.iter().find(|o| o.leaf_hash == pending_leaf);
        assert!(
            pending.is_some_and(|o| o.decision.contains("\"outcome\":\"pending_approval\"")),
            "{openings:?}"
        );
    }
}

/// Fifth red-team review of issue 29 (High, keeping honest bundles valid): a verifier refuses a
/// decision's record received before the period or before the time it was signed with, but the
/// anchorer dates its batch with its tick's start, which can be before a decision made during
/// the tick (or on a replica whose clock is ahead). The store receives the service's records
/// no earlier than the time they are signed with.
#[tokio::test]
async fn a_decision_record_is_received_no_earlier_than_its_decision() {
    for store in stores().await {
        quorum_wallet(&store).await;
        let key = chaperone_core::Secp256k1Signer::random().unwrap();
        let mut chain = (0, B256::ZERO);
        let (id, req) = request(vec![pay(1)], 0, NOW);
        decide(&store, id, &req).await;
        // The tick started two seconds before the decision.
        let leaf = log_decisions(&store, &key, &mut chain, (NOW - 2) * 1000).await[0];
        let found = store.records_by_leaf(&[leaf]).await.unwrap();
        assert_eq!(
            found[0].received_ms,
            NOW * 1000,
            "a decision record was received before its decision was made"
        );
    }
}

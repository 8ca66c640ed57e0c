//! How a request that waits for a human ends (fifth red-team review of issue 29, Medium): a
//! human denial, or an approval that expires (its own expiry or the request's `validUntil`,
//! whichever comes first), makes the decision final at once, denied with a reason that says
//! which, so the anchorer logs a final record after the pending one. Approval, denial and
//! expiry racing each other end a request exactly once.

use std::sync::Arc;

use chaperone_core::{
    B256, Secp256k1Signer, U256,
    policy::{Outcome, PolicyRequest, Token},
};
use chaperone_store::{Error, Store};
use serde_json::Value;

use crate::{
    decision_records::log_decisions,
    decisions::{NOW, decide, pay, request, wallet},
    people::{at, quorum_wallet},
    stores,
};

/// A request of the quorum wallet paying `amount` that waits for a human, with its pending
/// record logged by the service's `key` on `chain`.
pub(crate) struct Waiting {
    pub key: Secp256k1Signer,
    pub chain: (u64, B256),
    pub id: B256,
    pub req: PolicyRequest,
    pub pending: B256,
}

pub(crate) async fn waiting_and_logged(store: &Store, amount: u64) -> Waiting {
    quorum_wallet(store).await;
    let key = Secp256k1Signer::random().unwrap();
    let mut chain = (0, B256::ZERO);
    let (id, req) = request(vec![pay(amount)], 0, NOW);
    assert_eq!(
        decide(store, id, &req).await.outcome,
        Outcome::PendingApproval
    );
    let pending = log_decisions(store, &key, &mut chain, NOW * 1000).await[0];
    Waiting {
        key,
        chain,
        id,
        req,
        pending,
    }
}

/// The decision the opening of record `leaf` of request `id` commits to, as JSON.
async fn recorded(store: &Store, id: B256, leaf: B256) -> Value {
    let openings = store.decision_openings(&[id]).await.unwrap();
    let opening = openings
        .iter()
        .find(|o| o.leaf_hash == leaf)
        .expect("the record is opened");
    serde_json::from_str(&opening.decision).unwrap()
}

/// The codes of a recorded decision's reasons.
fn codes(decision: &Value) -> Vec<String> {
    decision["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_human_denial_logs_a_final_denied_decision() {
    for store in stores().await {
        let Waiting {
            key,
            mut chain,
            id,
            req,
            pending,
        } = waiting_and_logged(&store, 1_500_000).await;
        store
            .resolve_approval(id, false, "alice", Some("no"), NOW + 1)
            .await
            .unwrap();
        let unlogged = store.unlogged_decisions(100).await.unwrap();
        assert_eq!(
            unlogged.len(),
            1,
            "a human denial left the decision pending, with no final record to log"
        );
        let denied = log_decisions(&store, &key, &mut chain, (NOW + 1) * 1000).await[0];
        assert_eq!(store.decision_leaf(id).await.unwrap(), Some(denied));
        let first = recorded(&store, id, pending).await;
        let last = recorded(&store, id, denied).await;
        assert_eq!(first["outcome"], "pending_approval");
        // Denied, never co-signed; the reasons say why a human was asked, then that one denied.
        assert_eq!(last["outcome"], "denied");
        assert!(last["cosigner_signature"].is_null(), "{last}");
        assert_eq!(codes(&last), ["needs_human_approval", "approval_denied"]);
        // The agent asking again is told so; nothing more is logged, and no vote counts now.
        let again = decide(&store, id, &at(&req, NOW + 2)).await;
        assert_eq!(again.outcome, Outcome::Denied);
        assert!(store.unlogged_decisions(100).await.unwrap().is_empty());
        let late = store.resolve_approval(id, true, "bob", None, NOW + 3).await;
        assert!(matches!(late, Err(Error::NoPendingApproval(_))), "{late:?}");
    }
}

#[tokio::test]
async fn an_expired_approval_logs_a_final_expired_decision() {
    for store in stores().await {
        quorum_wallet(&store).await;
        let key = Secp256k1Signer::random().unwrap();
        let mut chain = (0, B256::ZERO);
        // validUntil is NOW + 60, before the approval's own expiry (NOW + 600): each of these
        // can no longer be co-signed from NOW + 61. The first nobody votes on, the second is
        // approved but its agent never asks again, the third's agent asks again too late.
        let requests: Vec<_> = (0..3)
            .map(|nonce| request(vec![pay(1_500_000)], nonce, NOW))
            .collect();
        for (id, req) in &requests {
            assert_eq!(
                decide(&store, *id, req).await.outcome,
                Outcome::PendingApproval
            );
        }
        log_decisions(&store, &key, &mut chain, NOW * 1000).await;
        store
            .resolve_approval(requests[1].0, true, "alice", None, NOW + 1)
            .await
            .unwrap();
        assert_eq!(
            store.expire_approvals(NOW + 60).await.unwrap(),
            0,
            "nothing has expired yet"
        );
        let (late, late_request) = &requests[2];
        let answer = decide(&store, *late, &at(late_request, NOW + 61)).await;
        assert_eq!(
            answer.outcome,
            Outcome::Denied,
            "an agent asking after its approval expired was told to keep waiting"
        );
        assert_eq!(store.expire_approvals(NOW + 61).await.unwrap(), 2);
        assert_eq!(store.expire_approvals(NOW + 62).await.unwrap(), 0);
        let finals = log_decisions(&store, &key, &mut chain, (NOW + 61) * 1000).await;
        assert_eq!(finals.len(), 3, "each expired request has a final record");
        for (id, _) in &requests {
            let last = store.decision_leaf(*id).await.unwrap().unwrap();
            assert!(
                finals.contains(&last),
                "{id} was last logged before it expired"
            );
            let decision = recorded(&store, *id, last).await;
            assert_eq!(decision["outcome"], "denied", "{decision}");
            assert!(decision["cosigner_signature"].is_null(), "{decision}");
            assert_eq!(
                codes(&decision),
                ["needs_human_approval", "approval_expired"]
            );
            let reasons = decision["reasons"].as_array().unwrap();
            assert_eq!(reasons[1]["expired_at"], NOW + 60, "{decision}");
        }
        // An approval given now changes nothing.
        let refused = store
            .resolve_approval(requests[0].0, true, "bob", None, NOW + 60)
            .await;
        assert!(
            matches!(refused, Err(Error::NoPendingApproval(_))),
            "{refused:?}"
        );
    }
}

/// An approval (then the agent asking again), a denial and the expiry task race for each of
/// many requests: each ends exactly once (one re-decision of its row, so one final record),
/// and only the approved ones reserve their spend.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approval_denial_and_expiry_racing_end_a_request_exactly_once() {
    const REQUESTS: u64 = 9;
    for store in stores().await {
        quorum_wallet(&store).await;
        let store = Arc::new(store);
        let requests: Vec<_> = (0..REQUESTS)
            .map(|nonce| request(vec![pay(1_000_001)], nonce, NOW))
            .collect();
        for (id, req) in &requests {
            assert_eq!(
                decide(&store, *id, req).await.outcome,
                Outcome::PendingApproval
            );
        }
        let mut tasks = Vec::new();
        for (i, (id, req)) in requests.iter().cloned().enumerate() {
            let (s1, s2, s3) = (store.clone(), store.clone(), store.clone());
            let approve = async move {
                let _ = s1.resolve_approval(id, true, "alice", None, NOW + 1).await;
                decide(&s1, id, &at(&req, NOW + 59)).await.outcome
            };
            let deny = async move {
                let _ = s2.resolve_approval(id, false, "bob", None, NOW + 1).await;
            };
            let expire = async move { s3.expire_approvals(NOW + 61).await.unwrap() };
            // Started in a different order for each request.
            match i % 3 {
                0 => {
                    tasks.push(tokio::spawn(approve));
                    tokio::spawn(deny);
                    tokio::spawn(expire);
                }
                1 => {
                    tokio::spawn(expire);
                    tasks.push(tokio::spawn(approve));
                    tokio::spawn(deny);
                }
                _ => {
                    tokio::spawn(deny);
                    tokio::spawn(expire);
                    tasks.push(tokio::spawn(approve));
                }
            }
        }
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap());
        }
        // Every spawned task has run once the approvals are all done and one more expiry finds
        // nothing left to end.
        while store.expire_approvals(NOW + 61).await.unwrap() > 0 {}
        let unlogged = store.unlogged_decisions(1000).await.unwrap();
        assert_eq!(unlogged.len(), REQUESTS as usize);
        let mut approved = 0u64;
        for ((id, _), answer) in requests.iter().zip(&answers) {
            let row = unlogged.iter().find(|d| d.request_id == *id).unwrap();
            let decision: Value = serde_json::from_str(&row.decision).unwrap();
            let outcome = decision["outcome"].as_str().unwrap();
            assert_ne!(outcome, "pending_approval", "{id}: never ended");
            assert_eq!(
                row.revision, 1,
                "{id} ended more than once ({outcome}, revision {})",
                row.revision
            );
            if outcome == "approved" {
                approved += 1;
                assert_eq!(*answer, Outcome::Approved);
            } else {
                assert_ne!(*answer, Outcome::Approved, "{id}: {decision}");
            }
        }
        assert_eq!(
            store
                .committed_spend(wallet(), Token::Native)
                .await
                .unwrap()
                .0,
            U256::from(approved * 1_000_001),
            "only the approved requests reserve"
        );
    }
}

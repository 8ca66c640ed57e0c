//! Approvers' votes (a quorum of distinct names, one denial denies, a revoked name refused), an
//! inbox that drops requests whose agent gave up, and administrative actions recorded with the
//! change they describe.

use chaperone_core::{
    Address, B256,
    policy::{Outcome, Policy, PolicyRequest, Tally},
};
use chaperone_store::{Actor, Error, Store, WalletRecord};

use crate::{
    decisions::{NOW, decide, pay, request, wallet},
    stores,
};

/// `request` asked again at `now`.
fn at(request: &PolicyRequest, now: u64) -> PolicyRequest {
    PolicyRequest {
        now,
        ..request.clone()
    }
}

/// A wallet whose payments above 1,000,000 need one approver and above 2,000,000 two.
async fn quorum_wallet(store: &Store) {
    let record = WalletRecord {
        address: wallet(),
        chain_id: 31337,
        agent: Address::repeat_byte(0xa9),
    };
    store.register_wallet(&record, NOW).await.unwrap();
    for (i, name) in ["alice", "bob", "erin"].into_iter().enumerate() {
        store
            .add_api_token(B256::repeat_byte(0xb0 + i as u8), name, "approver", NOW)
            .await
            .unwrap();
    }
    let policy = Policy::from_toml(
        r#"
        version = 1
        chains = [31337]
        [[limits]]
        token = "native"
        windows = [{ window = "1h", max = "10000000" }]
        [approval]
        expires_after = "10m"
        above = [{ token = "native", amount = "1000000" }]
        quorum = { approvers = 2, above = [{ token = "native", amount = "2000000" }] }
        "#,
    )
    .unwrap();
    let admin = Actor::new("ops", "admin");
    store
        .add_api_token(B256::repeat_byte(0xc0), "ops", "admin", NOW)
        .await
        .unwrap();
    store
        .install_policy(
            wallet(),
            &policy,
            Some(("# why\nversion = 1", "toml")),
            Some(&admin),
            NOW,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_quorum_counts_distinct_live_approvers_and_one_denial_denies() {
    for store in stores().await {
        quorum_wallet(&store).await;
        let (id, req) = request(vec![pay(3_000_000)], 0, NOW);
        assert_eq!(
            decide(&store, id, &req).await.outcome,
            Outcome::PendingApproval
        );
        let alice = Actor::new("alice", "approver");
        let first = store
            .cast_vote(id, true, &alice, None, NOW + 1)
            .await
            .unwrap();
        assert_eq!(first.required, 2);
        assert!(matches!(first.tally, Tally::Pending { remaining: 1, .. }));
        // Twice the same name: counted once, still pending, and the request is not signed.
        let again = store
            .cast_vote(id, true, &alice, None, NOW + 2)
            .await
            .unwrap();
        assert!(!again.counted);
        assert!(matches!(again.tally, Tally::Pending { remaining: 1, .. }));
        // Asked again before the quorum: still pending (the test's signer would sign anything
        // the store let through to it, so the outcome is what tells).
        let redecided = decide(&store, id, &at(&req, NOW + 3)).await;
        assert_eq!(redecided.outcome, Outcome::PendingApproval);
        // A revoked name is refused and changes nothing.
        store.revoke_api_tokens("erin", NOW + 3).await.unwrap();
        let refused = store
            .cast_vote(id, false, &Actor::new("erin", "approver"), None, NOW + 4)
            .await;
        assert!(
            matches!(refused, Err(Error::RevokedToken(_))),
            "{refused:?}"
        );
        // A denial by another denies, whatever alice said.
        let denied = store
            .cast_vote(
                id,
                false,
                &Actor::new("bob", "approver"),
                Some("no"),
                NOW + 5,
            )
            .await
            .unwrap();
        assert_eq!(
            denied.tally,
            Tally::Denied {
                denied_by: "bob".into()
            }
        );
        assert_eq!(
            decide(&store, id, &at(&req, NOW + 6)).await.outcome,
            Outcome::Denied
        );
        // Each counted vote is an administrative action (the repeated one is not).
        let verdicts: Vec<_> = store
            .admin_actions(None, 100)
            .await
            .unwrap()
            .into_iter()
            .filter(|a| a.action == "verdict")
            .map(|a| a.actor.name)
            .collect();
        assert_eq!(verdicts, ["bob", "alice"]);
    }
}

#[tokio::test]
async fn a_request_whose_agent_gave_up_leaves_the_inbox() {
    for store in stores().await {
        quorum_wallet(&store).await;
        // validUntil is NOW + 60; the approval itself would last ten minutes.
        let (id, req) = request(vec![pay(1_500_000)], 0, NOW);
        assert_eq!(
            decide(&store, id, &req).await.outcome,
            Outcome::PendingApproval
        );
        assert_eq!(store.pending_approvals(NOW + 60).await.unwrap().len(), 1);
        assert_eq!(
            store
                .pending_approval_details(NOW + 60)
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(store.pending_approvals(NOW + 61).await.unwrap().is_empty());
        assert!(
            store
                .pending_approval_details(NOW + 61)
                .await
                .unwrap()
                .is_empty()
        );
        let late = store
            .cast_vote(id, true, &Actor::new("alice", "approver"), None, NOW + 61)
            .await;
        assert!(matches!(late, Err(Error::NoPendingApproval(_))), "{late:?}");
    }
}

#[tokio::test]
async fn a_policy_keeps_its_source_and_who_installed_it() {
    for store in stores().await {
        quorum_wallet(&store).await;
        let history = store.policy_history(wallet()).await.unwrap();
        assert_eq!(history[0].source.as_deref(), Some("# why\nversion = 1"));
        assert_eq!(history[0].installed_by.as_deref(), Some("ops"));
        let actions = store.admin_actions(None, 10).await.unwrap();
        assert_eq!(actions[0].action, "policy.set");
        assert_eq!(actions[0].actor, Actor::new("ops", "admin"));
        // A revoked admin installs nothing.
        store.revoke_api_tokens("ops", NOW).await.unwrap();
        let mut next = history[0].policy.clone();
        next.version = 2;
        let refused = store
            .install_policy(
                wallet(),
                &next,
                None,
                Some(&Actor::new("ops", "admin")),
                NOW,
            )
            .await;
        assert!(
            matches!(refused, Err(Error::RevokedToken(_))),
            "{refused:?}"
        );
        assert_eq!(store.policy_history(wallet()).await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn a_revoked_approvers_vote_stops_counting_towards_a_quorum() {
    for store in stores().await {
        quorum_wallet(&store).await;
        let (id, req) = request(vec![pay(3_000_000)], 0, NOW);
        assert_eq!(
            decide(&store, id, &req).await.outcome,
            Outcome::PendingApproval
        );
        let alice = Actor::new("alice", "approver");
        store
            .cast_vote(id, true, &alice, None, NOW + 1)
            .await
            .unwrap();
        // Alice's token was stolen: revoked, her approval no longer counts, so bob's alone
        // does not reach the quorum of two.
        store.revoke_api_tokens("alice", NOW + 2).await.unwrap();
        let bob = store
            .cast_vote(id, true, &Actor::new("bob", "approver"), None, NOW + 3)
            .await
            .unwrap();
        assert!(
            matches!(bob.tally, Tally::Pending { remaining: 1, .. }),
            "{:?}",
            bob.tally
        );
        assert_eq!(
            decide(&store, id, &at(&req, NOW + 4)).await.outcome,
            Outcome::PendingApproval
        );
    }
}

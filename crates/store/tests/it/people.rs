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
pub(crate) fn at(request: &PolicyRequest, now: u64) -> PolicyRequest {
    PolicyRequest {
        now,
        ..request.clone()
    }
}

/// A wallet whose payments above 1,000,000 need one approver and above 2,000,000 two.
pub(crate) async fn quorum_wallet(store: &Store) {
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
                .pending_approval_details(NOW + 60, 100)
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(store.pending_approvals(NOW + 61).await.unwrap().is_empty());
        assert!(
            store
                .pending_approval_details(NOW + 61, 100)
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

/// Red team M2: one admin mints a second approver token once a request waits, and votes with
/// both names. A vote counts only from a token issued before the request started waiting.
#[tokio::test]
async fn a_token_issued_after_the_request_cannot_vote_on_it() {
    for store in stores().await {
        quorum_wallet(&store).await;
        let (id, req) = request(vec![pay(3_000_000)], 0, NOW);
        assert_eq!(
            decide(&store, id, &req).await.outcome,
            Outcome::PendingApproval
        );
        let admin = Actor::new("ops", "admin");
        // The same second as the request, and later: neither is "before".
        for (i, (name, at)) in [("mallory", NOW), ("trent", NOW + 1)]
            .into_iter()
            .enumerate()
        {
            store
                .issue_api_token(
                    B256::repeat_byte(0xd0 + i as u8),
                    name,
                    "approver",
                    &admin,
                    at,
                )
                .await
                .unwrap();
        }
        let first = store
            .cast_vote(id, true, &Actor::new("alice", "approver"), None, NOW + 2)
            .await
            .unwrap();
        assert!(matches!(first.tally, Tally::Pending { remaining: 1, .. }));
        for name in ["mallory", "trent"] {
            let refused = store
                .cast_vote(id, true, &Actor::new(name, "approver"), None, NOW + 3)
                .await;
            assert!(
                matches!(refused, Err(Error::TokenNewerThanRequest(ref n)) if n == name),
                "{refused:?}"
            );
        }
        assert_eq!(
            decide(&store, id, &at(&req, NOW + 4)).await.outcome,
            Outcome::PendingApproval
        );
        // Alice's token replaced (the configuration names a new one; an admin may not issue a
        // configured name): a new token, which waits too.
        store
            .add_api_token(B256::repeat_byte(0xd5), "alice", "approver", NOW + 5)
            .await
            .unwrap();
        let again = store
            .cast_vote(id, true, &Actor::new("alice", "approver"), None, NOW + 6)
            .await;
        assert!(
            matches!(again, Err(Error::TokenNewerThanRequest(_))),
            "{again:?}"
        );
        // A request that starts waiting now may be voted on by every token issued so far.
        let (later, later_req) = request(vec![pay(3_000_001)], 1, NOW + 7);
        assert_eq!(
            decide(&store, later, &later_req).await.outcome,
            Outcome::PendingApproval
        );
        for name in ["mallory", "trent"] {
            store
                .cast_vote(later, true, &Actor::new(name, "approver"), None, NOW + 8)
                .await
                .unwrap();
        }
        assert_eq!(
            decide(&store, later, &at(&later_req, NOW + 9))
                .await
                .outcome,
            Outcome::Approved
        );
    }
}

/// Red team M2: a live name is one person, whatever its case; the database refuses a second.
#[tokio::test]
async fn a_live_name_is_unique_without_regard_to_case() {
    for store in stores().await {
        quorum_wallet(&store).await;
        let admin = Actor::new("ops", "admin");
        for name in ["alice", "ALICE", "Alice"] {
            let taken = store
                .issue_api_token(B256::repeat_byte(0xe0), name, "approver", &admin, NOW + 1)
                .await;
            assert!(
                matches!(taken, Err(Error::NameTaken(_))),
                "{name}: {taken:?}"
            );
        }
        assert!(store.api_token_named("ALICE").await.unwrap());
        // Revoked by name in any case; then an issued name is free again (a configured one
        // stays the configuration's).
        store
            .issue_api_token(B256::repeat_byte(0xe3), "dave", "approver", &admin, NOW + 1)
            .await
            .unwrap();
        for name in ["Alice", "DAVE"] {
            assert_eq!(
                store
                    .revoke_api_tokens_by(name, &admin, NOW + 2)
                    .await
                    .unwrap(),
                1
            );
        }
        store
            .issue_api_token(B256::repeat_byte(0xe1), "dave", "approver", &admin, NOW + 3)
            .await
            .unwrap();
        // The configuration's token of a name replaces the live one (on the record).
        store
            .add_api_token(B256::repeat_byte(0xe2), "ops", "admin", NOW + 4)
            .await
            .unwrap();
        let ops: Vec<_> = store
            .api_tokens()
            .await
            .unwrap()
            .into_iter()
            .filter(|t| t.name == "ops")
            .map(|t| t.revoked_at.is_some())
            .collect();
        assert_eq!(ops, [true, false]);
    }
}

/// Red team M3: lists of requests longer than a statement may bind (SQLite 32,766 parameters,
/// PostgreSQL 65,535) are read in parts, not refused by the database.
#[tokio::test]
async fn lists_longer_than_the_bind_limits_are_read() {
    for store in stores().await {
        quorum_wallet(&store).await;
        let (id, req) = request(vec![pay(3_000_000)], 0, NOW);
        assert_eq!(
            decide(&store, id, &req).await.outcome,
            Outcome::PendingApproval
        );
        store
            .cast_vote(id, true, &Actor::new("alice", "approver"), None, NOW + 1)
            .await
            .unwrap();
        let mut ids: Vec<B256> = (1..=70_000u64)
            .map(|i| B256::left_padding_from(&i.to_be_bytes()))
            .collect();
        ids.push(id);
        let votes = store.votes(&ids).await.unwrap();
        assert_eq!(votes.len(), 1);
        assert_eq!(votes[&id].1.len(), 1);
        let verdicts = store.verdicts(&ids).await.unwrap();
        assert_eq!(verdicts.len(), 1);
        assert_eq!(verdicts[&id].status, "pending");
        let details = store.payment_details(&ids).await.unwrap();
        assert_eq!(details.len(), 1);
        assert!(details.contains_key(&id));
    }
}

/// Red team (rt29 F8): an admin can mint approver tokens for made-up people before a request
/// waits, and they satisfy its quorum (each a logged `token.create`, but nowhere near the
/// votes). Each vote names the admin who issued the token it was cast with, so the approvals
/// page shows who stands behind a quorum; a token of the configuration names none.
#[tokio::test]
async fn each_vote_names_the_admin_who_issued_its_token() {
    for store in stores().await {
        quorum_wallet(&store).await;
        let admin = Actor::new("ops", "admin");
        for (i, name) in ["mallory", "trent"].into_iter().enumerate() {
            store
                .issue_api_token(
                    B256::repeat_byte(0xe0 + i as u8),
                    name,
                    "approver",
                    &admin,
                    NOW - 10,
                )
                .await
                .unwrap();
        }
        // The puppets make one request's quorum, two people of the configuration another's.
        let mut issuers = Vec::new();
        for (nonce, voters) in [(0, ["mallory", "trent"]), (1, ["alice", "bob"])] {
            let (id, req) = request(vec![pay(3_000_000)], nonce, NOW);
            assert_eq!(
                decide(&store, id, &req).await.outcome,
                Outcome::PendingApproval
            );
            for (i, name) in voters.into_iter().enumerate() {
                store
                    .cast_vote(
                        id,
                        true,
                        &Actor::new(name, "approver"),
                        None,
                        NOW + 1 + i as u64,
                    )
                    .await
                    .unwrap();
            }
            let votes = store.votes(&[id]).await.unwrap();
            issuers.extend(
                votes[&id]
                    .1
                    .iter()
                    .map(|v| (v.approver.clone(), v.issued_by.clone())),
            );
        }
        let ops = Some("ops".to_owned());
        assert_eq!(
            issuers,
            [
                ("mallory".to_owned(), ops.clone()),
                ("trent".to_owned(), ops),
                ("alice".to_owned(), None),
                ("bob".to_owned(), None),
            ]
        );
    }
}

/// Third red-team review of issue 29 (Medium): the issuer of a vote's token was looked up when
/// read, with whole-second times, so a token revoked in the second it voted was found by no
/// lookup and its vote read as cast with a token of the configuration. The issuer is noted
/// when the vote is cast.
#[tokio::test]
async fn a_vote_keeps_its_issuer_when_its_token_is_revoked_in_the_same_second() {
    for store in stores().await {
        quorum_wallet(&store).await;
        let admin = Actor::new("ops", "admin");
        for (i, name) in ["mallory", "trent"].into_iter().enumerate() {
            store
                .issue_api_token(
                    B256::repeat_byte(0xe0 + i as u8),
                    name,
                    "approver",
                    &admin,
                    NOW - 10,
                )
                .await
                .unwrap();
        }
        let (id, req) = request(vec![pay(3_000_000)], 0, NOW);
        assert_eq!(
            decide(&store, id, &req).await.outcome,
            Outcome::PendingApproval
        );
        for name in ["mallory", "trent"] {
            store
                .cast_vote(id, true, &Actor::new(name, "approver"), None, NOW + 1)
                .await
                .unwrap();
        }
        // The quorum is reached; the puppets' tokens are revoked in that same second.
        for name in ["mallory", "trent"] {
            assert_eq!(
                store
                    .revoke_api_tokens_by(name, &admin, NOW + 1)
                    .await
                    .unwrap(),
                1
            );
        }
        let issuers: Vec<(String, Option<String>)> = store.votes(&[id]).await.unwrap()[&id]
            .1
            .iter()
            .map(|v| (v.approver.clone(), v.issued_by.clone()))
            .collect();
        let ops = Some("ops".to_owned());
        assert_eq!(
            issuers,
            [
                ("mallory".to_owned(), ops.clone()),
                ("trent".to_owned(), ops)
            ],
            "a vote of a token revoked in the second it voted read as the configuration's"
        );
    }
}

/// Third red-team review of issue 29 (Medium): an admin could issue a token under a name the
/// configuration's token has (once that one was revoked), and its votes read beside the
/// configuration's person. A name a configured token has or had is refused (409).
#[tokio::test]
async fn an_issued_token_cannot_take_a_configured_name() {
    for store in stores().await {
        quorum_wallet(&store).await;
        let admin = Actor::new("ops", "admin");
        assert_eq!(store.revoke_api_tokens("alice", NOW).await.unwrap(), 1);
        for name in ["alice", "ALICE"] {
            let taken = store
                .issue_api_token(B256::repeat_byte(0xe9), name, "approver", &admin, NOW + 1)
                .await;
            assert!(
                matches!(taken, Err(Error::NameConfigured(_))),
                "{name}: {taken:?}"
            );
        }
        store
            .issue_api_token(B256::repeat_byte(0xe9), "zoe", "approver", &admin, NOW + 1)
            .await
            .expect("a name of no configured token is issued");
    }
}

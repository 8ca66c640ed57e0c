use chaperone_core::{
    Address, B256, Bytes, Call, Execute, U256,
    policy::{Outcome, Policy, PolicyRequest, Reason, RequestKind, Token, evaluate},
};
use chaperone_store::{Decided, Error, RequestRecord, Store, WalletRecord};

fn bare(request_id: B256) -> RequestRecord<'static> {
    RequestRecord {
        wallet: wallet(),
        request_id,
        nonce: None,
        authorization: None,
        pays: None,
        json: "{}",
        valid_until: NOW + 60,
    }
}

use crate::stores;

pub const NOW: u64 = 1_750_000_000;

pub fn policy(window_max: u64) -> Policy {
    Policy::from_toml(&format!(
        r#"
        version = 1
        chains = [31337]
        [[limits]]
        token = "native"
        windows = [{{ window = "1h", max = "{window_max}" }}]
        [[limits]]
        token = "{token}"
        windows = [{{ window = "1h", max = "{window_max}" }}]
        [approval]
        expires_after = "10m"
        above = [{{ token = "native", amount = "1000000" }}]
        "#,
        token = token()
    ))
    .unwrap()
}

pub fn token() -> Address {
    Address::repeat_byte(0x70)
}

pub fn wallet() -> Address {
    Address::repeat_byte(0xaa)
}

pub async fn registered(store: &Store, window_max: u64) {
    let record = WalletRecord {
        address: wallet(),
        chain_id: 31337,
        agent: Address::repeat_byte(0xa9),
    };
    store.register_wallet(&record, NOW).await.unwrap();
    // The approver the tests vote as: a vote needs a live token of that name.
    store
        .add_api_token(B256::repeat_byte(0xa1), "alice", "approver", NOW)
        .await
        .unwrap();
    store
        .set_policy(wallet(), &policy(window_max), NOW)
        .await
        .unwrap();
}

pub fn request(calls: Vec<Call>, nonce: u64, now: u64) -> (B256, PolicyRequest) {
    let execute = Execute {
        calls,
        nonce: U256::from(nonce),
        validUntil: now + 60,
    };
    let id = execute.digest(31337, wallet());
    let request = PolicyRequest {
        chain_id: 31337,
        wallet: wallet(),
        now,
        kind: RequestKind::Execute(execute),
        human_approved: false,
    };
    (id, request)
}

pub fn pay(value: u64) -> Call {
    Call {
        to: Address::repeat_byte(0xb0),
        value: U256::from(value),
        data: Bytes::new(),
    }
}

pub async fn decide(
    store: &Store,
    id: B256,
    request: &PolicyRequest,
) -> chaperone_store::StoredDecision {
    let (valid_until, nonce) = match &request.kind {
        RequestKind::Execute(e) => (e.validUntil, Some(e.nonce)),
        RequestKind::TypedData { .. } => (request.now + 60, None),
    };
    store
        .decide(
            &RequestRecord {
                wallet: wallet(),
                request_id: id,
                nonce,
                authorization: None,
                pays: None,
                json: "{}",
                valid_until,
            },
            || request.now,
            |policy, history, approved, now| Decided {
                decision: evaluate(
                    policy,
                    &PolicyRequest {
                        human_approved: approved,
                        now,
                        ..request.clone()
                    },
                    history,
                ),
                signature: Some("0xsig".into()),
            },
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn a_replayed_request_returns_the_recorded_decision_and_reserves_once() {
    for store in stores().await {
        registered(&store, 100).await;
        let (id, req) = request(vec![pay(60)], 0, NOW);
        let first = decide(&store, id, &req).await;
        assert_eq!(first.outcome, Outcome::Approved);
        assert!(!first.replayed);
        let again = decide(&store, id, &req).await;
        assert!(again.replayed);
        assert_eq!(
            (again.outcome, again.signature.clone()),
            (first.outcome, first.signature.clone())
        );
        assert_eq!(
            store
                .committed_spend(wallet(), Token::Native)
                .await
                .unwrap()
                .0,
            U256::from(60)
        );

        // A second distinct request of 60 would exceed the 100 window: denied, nothing reserved.
        let (id2, req2) = request(vec![pay(60)], 1, NOW + 1);
        assert_eq!(decide(&store, id2, &req2).await.outcome, Outcome::Denied);
        assert_eq!(
            store
                .committed_spend(wallet(), Token::Native)
                .await
                .unwrap()
                .0,
            U256::from(60)
        );
    }
}

#[tokio::test]
async fn reservations_settle_release_and_expire() {
    for store in stores().await {
        registered(&store, 100).await;
        let (a, ra) = request(vec![pay(30)], 0, NOW);
        let (b, rb) = request(vec![pay(30)], 1, NOW);
        let (c, rc) = request(vec![pay(30)], 2, NOW);
        for (id, r) in [(a, &ra), (b, &rb), (c, &rc)] {
            assert_eq!(decide(&store, id, r).await.outcome, Outcome::Approved);
        }
        assert_eq!(
            store.settle_execution(wallet(), a).await.unwrap(),
            1,
            "Executed(0, a) settles a"
        );
        assert_eq!(store.settle(a).await.unwrap(), 0, "already settled");
        assert_eq!(
            store.release(b).await.unwrap(),
            1,
            "reverted execution frees its spend"
        );
        assert_eq!(
            store.release(a).await.unwrap(),
            0,
            "a settled spend stays spent"
        );
        assert_eq!(
            store
                .committed_spend(wallet(), Token::Native)
                .await
                .unwrap()
                .0,
            U256::from(60)
        );
        // validUntil (NOW + 60) passes without execution: c is released; a stays settled.
        assert_eq!(store.release_expired(NOW + 61).await.unwrap(), 1);
        assert_eq!(
            store
                .committed_spend(wallet(), Token::Native)
                .await
                .unwrap()
                .0,
            U256::from(30)
        );
    }
}

#[tokio::test]
async fn pending_approval_reserves_nothing() {
    for store in stores().await {
        registered(&store, 10_000_000).await;
        let (id, req) = request(vec![pay(2_000_000)], 0, NOW);
        let d = decide(&store, id, &req).await;
        assert_eq!(d.outcome, Outcome::PendingApproval);
        assert_eq!(
            store
                .committed_spend(wallet(), Token::Native)
                .await
                .unwrap()
                .0,
            U256::ZERO
        );
    }
}

#[tokio::test]
async fn wallets_and_policy_versions_are_checked() {
    for store in stores().await {
        let (id, req) = request(vec![pay(1)], 0, NOW);
        let err = store
            .decide(
                &bare(id),
                || NOW,
                |p, h, _, _| Decided {
                    decision: evaluate(p, &req, h),
                    signature: None,
                },
            )
            .await;
        assert!(matches!(err, Err(Error::UnknownWallet(_))));

        let record = WalletRecord {
            address: wallet(),
            chain_id: 31337,
            agent: Address::repeat_byte(1),
        };
        store.register_wallet(&record, NOW).await.unwrap();
        assert!(matches!(
            store.register_wallet(&record, NOW).await,
            Err(Error::WalletExists(_))
        ));
        assert_eq!(store.wallet(wallet()).await.unwrap(), Some(record));
        let err = store
            .decide(
                &bare(id),
                || NOW,
                |p, h, _, _| Decided {
                    decision: evaluate(p, &req, h),
                    signature: None,
                },
            )
            .await;
        assert!(matches!(err, Err(Error::NoPolicy(_))));

        store.set_policy(wallet(), &policy(5), NOW).await.unwrap();
        assert!(matches!(
            store.set_policy(wallet(), &policy(6), NOW).await,
            Err(Error::StalePolicyVersion {
                current: 1,
                given: 1
            })
        ));
        let mut v2 = policy(6);
        v2.version = 2;
        store.set_policy(wallet(), &v2, NOW).await.unwrap();
        assert_eq!(store.policy(wallet()).await.unwrap(), Some(v2));
    }
}

#[tokio::test]
async fn an_approved_pending_request_is_decided_again_and_reserves() {
    for store in stores().await {
        registered(&store, 10_000_000).await;
        let (id, req) = request(vec![pay(2_000_000)], 0, NOW);
        assert_eq!(
            decide(&store, id, &req).await.outcome,
            Outcome::PendingApproval
        );
        let pending = store.pending_approvals(NOW).await.unwrap();
        assert_eq!(pending, vec![(id, wallet(), NOW + 600)]);

        store
            .resolve_approval(id, true, "alice", None, NOW + 10)
            .await
            .unwrap();
        assert!(matches!(
            store
                .resolve_approval(id, true, "alice", None, NOW + 11)
                .await,
            Err(Error::NoPendingApproval(_))
        ));
        let again = decide(
            &store,
            id,
            &PolicyRequest {
                now: NOW + 20,
                ..req.clone()
            },
        )
        .await;
        assert_eq!(again.outcome, Outcome::Approved, "{:?}", again.reasons);
        assert_eq!(
            store
                .committed_spend(wallet(), Token::Native)
                .await
                .unwrap()
                .0,
            U256::from(2_000_000)
        );
        // Asking once more returns the approval, reserving nothing twice.
        assert!(decide(&store, id, &req).await.replayed);
        assert_eq!(
            store
                .committed_spend(wallet(), Token::Native)
                .await
                .unwrap()
                .0,
            U256::from(2_000_000)
        );

        // Another large request whose approval window passes: it cannot be approved any more.
        let (late, late_req) = request(vec![pay(2_000_001)], 1, NOW);
        assert_eq!(
            decide(&store, late, &late_req).await.outcome,
            Outcome::PendingApproval
        );
        assert!(matches!(
            store
                .resolve_approval(late, true, "alice", None, NOW + 601)
                .await,
            Err(Error::NoPendingApproval(_))
        ));
        let still = decide(
            &store,
            late,
            &PolicyRequest {
                now: NOW + 700,
                ..late_req
            },
        )
        .await;
        // Ended, not left waiting for ever (fifth red-team review of issue 29): denied, saying
        // that no approval was used before it expired (validUntil, NOW + 60, came first).
        assert_eq!(still.outcome, Outcome::Denied);
        assert!(
            matches!(
                still.reasons[..],
                [
                    Reason::NeedsHumanApproval { .. },
                    Reason::ApprovalExpired { expired_at }
                ] if expired_at == NOW + 60
            ),
            "{:?}",
            still.reasons
        );
    }
}

#[tokio::test]
async fn a_request_a_human_denied_is_answered_denied_and_reserves_nothing() {
    for store in stores().await {
        registered(&store, 10_000_000).await;
        let (id, req) = request(vec![pay(2_000_000)], 0, NOW);
        assert_eq!(
            decide(&store, id, &req).await.outcome,
            Outcome::PendingApproval
        );
        store
            .resolve_approval(id, false, "alice", None, NOW + 10)
            .await
            .unwrap();
        let again = decide(
            &store,
            id,
            &PolicyRequest {
                now: NOW + 20,
                ..req.clone()
            },
        )
        .await;
        assert_eq!(again.outcome, Outcome::Denied);
        assert!(again.signature.is_none());
        // The console reads the verdict with who gave it (one query for a page of decisions).
        let verdicts = store.verdicts(&[id, B256::repeat_byte(7)]).await.unwrap();
        assert_eq!(verdicts.len(), 1);
        assert_eq!(
            (
                verdicts[&id].status.as_str(),
                verdicts[&id].decided_by.as_deref()
            ),
            ("denied", Some("alice"))
        );
        // Why a human was asked, then that one denied (fifth red-team review of issue 29).
        assert!(
            matches!(
                again.reasons[..],
                [Reason::NeedsHumanApproval { .. }, Reason::ApprovalDenied]
            ),
            "{:?}",
            again.reasons
        );
        assert_eq!(
            store
                .committed_spend(wallet(), Token::Native)
                .await
                .unwrap()
                .0,
            U256::ZERO
        );
    }
}

#[tokio::test]
async fn an_expired_authorization_stays_spent_an_expired_execute_does_not() {
    for store in stores().await {
        registered(&store, 100).await;
        let with_authorizations = Policy::from_toml(&format!(
            r#"
            version = 2
            chains = [31337]
            [[limits]]
            token = "native"
            windows = [{{ window = "1h", max = "100" }}]
            [[limits]]
            token = "{token}"
            windows = [{{ window = "1h", max = "100" }}]
            [[typed_data]]
            primary_type = "TransferWithAuthorization"
            verifying_contract = "{token}"
            "#,
            token = token()
        ))
        .unwrap();
        store
            .set_policy(wallet(), &with_authorizations, NOW)
            .await
            .unwrap();
        let authorization = PolicyRequest {
            chain_id: 31337,
            wallet: wallet(),
            now: NOW,
            kind: RequestKind::TypedData {
                domain_name: Some("USD Coin".into()),
                domain_version: Some("2".into()),
                verifying_contract: token(),
                primary_type: "TransferWithAuthorization".into(),
                message: serde_json::json!({
                    "from": wallet(),
                    "to": Address::repeat_byte(0xb0),
                    "value": "30",
                    "validAfter": "0",
                    "validBefore": (NOW + 60).to_string(),
                    "nonce": B256::repeat_byte(7),
                }),
            },
            human_approved: false,
        };
        let id = B256::repeat_byte(0x31);
        assert_eq!(
            decide(&store, id, &authorization).await.outcome,
            Outcome::Approved
        );
        let (execute_id, execute) = request(vec![pay(30)], 0, NOW);
        assert_eq!(
            decide(&store, execute_id, &execute).await.outcome,
            Outcome::Approved
        );
        // Both expire. Whether the authorization was used only the token knows: it stays spent.
        assert_eq!(store.release_expired(NOW + 61).await.unwrap(), 1);
        let committed = |token| {
            let store = store.clone();
            async move { store.committed_spend(wallet(), token).await.unwrap().0 }
        };
        assert_eq!(committed(Token::Erc20(token())).await, U256::from(30));
        assert_eq!(committed(Token::Native).await, U256::ZERO);
    }
}

/// The co-signer's wallet lookups are cached: an address asked for before it was registered
/// must still be found once it is (only registered wallets are kept).
#[tokio::test]
async fn a_wallet_asked_for_before_registration_is_found_after() {
    for store in stores().await {
        assert_eq!(store.wallet(wallet()).await.unwrap(), None);
        let record = WalletRecord {
            address: wallet(),
            chain_id: 31337,
            agent: Address::repeat_byte(0xa9),
        };
        store.register_wallet(&record, NOW).await.unwrap();
        assert_eq!(store.wallet(wallet()).await.unwrap(), Some(record.clone()));
        assert_eq!(store.clone().wallet(wallet()).await.unwrap(), Some(record));
    }
}

/// Pooled connections used within the last second are handed out without a ping (one round
/// trip fewer per decision): one the database closed while it sat idle longer must be found
/// out and replaced, not handed to a decision.
#[tokio::test]
async fn a_connection_the_database_closed_is_replaced_not_used() {
    let Some(url) = crate::postgres_url().await else {
        return;
    };
    let store = Store::connect(&url)
        .await
        .unwrap()
        .with_max_clock_skew(None);
    let decider = store.with_own_pool(2);
    registered(&store, 100).await;
    let (id, first) = request(vec![pay(1)], 1, NOW);
    assert_eq!(
        decide(&decider, id, &first).await.outcome,
        Outcome::Approved
    );

    let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let closed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(!closed.is_empty(), "the pools held connections to close");
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;

    let (id, second) = request(vec![pay(1)], 2, NOW);
    assert_eq!(
        decide(&decider, id, &second).await.outcome,
        Outcome::Approved
    );
    assert!(
        store.policy(wallet()).await.unwrap().is_some(),
        "the main pool recovers too"
    );
}

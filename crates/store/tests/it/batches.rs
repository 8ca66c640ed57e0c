//! Decisions in batches (`Store::decide_batch`, the service's group commit): in order, each
//! seeing what the ones before reserved, exact when batches race, and one bad request failing
//! only itself.

use std::sync::Arc;

use chaperone_core::{
    Address, B256,
    policy::{Outcome, PolicyRequest, RequestKind, evaluate},
};
use chaperone_store::{Decided, Error, MAX_BATCH, RequestRecord, Store, StoredDecision};

use crate::{
    decisions::{NOW, pay, registered, request},
    stores,
};

/// Decides `requests` (id, request, wallet) in one batch, approving what the engine approves.
async fn decide_batch(
    store: &Store,
    requests: &[(B256, PolicyRequest, Address)],
) -> Vec<Result<StoredDecision, Error>> {
    let records: Vec<RequestRecord<'_>> = requests
        .iter()
        .map(|(id, r, wallet)| {
            let RequestKind::Execute(e) = &r.kind else {
                unreachable!("execute requests only")
            };
            RequestRecord {
                wallet: *wallet,
                request_id: *id,
                nonce: Some(e.nonce),
                authorization: None,
                pays: None,
                json: "{}",
                valid_until: e.validUntil,
            }
        })
        .collect();
    store
        .decide_batch(
            &records,
            || NOW,
            |i, policy, history, approved, now| {
                let request = PolicyRequest {
                    human_approved: approved,
                    now,
                    wallet: requests[i].2,
                    ..requests[i].1.clone()
                };
                Decided {
                    decision: evaluate(policy, &request, history),
                    signature: Some("0xsig".into()),
                }
            },
        )
        .await
        .unwrap()
}

fn outcome(answer: &Result<StoredDecision, Error>) -> Outcome {
    answer.as_ref().unwrap().outcome
}

#[tokio::test]
async fn a_batch_decides_in_order_and_each_request_sees_the_ones_before() {
    for store in stores().await {
        registered(&store, 100).await;
        let wallet = crate::decisions::wallet();
        let mut requests: Vec<_> = (0..6)
            .map(|nonce| {
                let (id, r) = request(vec![pay(30)], nonce, NOW);
                (id, r, wallet)
            })
            .collect();
        // The first request again, and one for a wallet nobody registered.
        requests.insert(2, requests[0].clone());
        let stranger = Address::repeat_byte(0x5e);
        let (id, r) = request(vec![pay(1)], 99, NOW);
        requests.push((id, r, stranger));

        let answers = decide_batch(&store, &requests).await;
        assert_eq!(answers.len(), requests.len());
        let outcomes: Vec<Outcome> = answers[..7].iter().map(outcome).collect();
        use Outcome::{Approved as A, Denied as D};
        // 30 + 30 + 30 fit 100; the fourth would make 120. The repeat is the first's answer.
        assert_eq!(outcomes, [A, A, A, A, D, D, D]);
        let repeat = answers[2].as_ref().unwrap();
        assert!(
            repeat.replayed,
            "a request twice in a batch is decided once"
        );
        assert_eq!(repeat.request_id, requests[0].0);
        assert!(matches!(answers[7], Err(Error::UnknownWallet(_))));
        let spent = store
            .committed_spend(wallet, chaperone_core::policy::Token::Native)
            .await
            .unwrap();
        assert_eq!(spent.0, chaperone_core::U256::from(90));

        // Decided again in a later batch, every request is answered as recorded.
        let again = decide_batch(&store, &requests[..7]).await;
        for (first, second) in answers.iter().zip(&again) {
            let (first, second) = (first.as_ref().unwrap(), second.as_ref().unwrap());
            assert!(second.replayed);
            assert_eq!(
                (first.outcome, &first.signature),
                (second.outcome, &second.signature)
            );
        }
    }
}

#[tokio::test]
async fn a_wallet_without_a_policy_fails_only_its_own_requests() {
    for store in stores().await {
        registered(&store, 100).await;
        let bare = Address::repeat_byte(0xbe);
        let record = chaperone_store::WalletRecord {
            address: bare,
            chain_id: 31337,
            agent: Address::repeat_byte(0xa9),
        };
        store.register_wallet(&record, NOW).await.unwrap();
        let (a, ra) = request(vec![pay(10)], 0, NOW);
        let (b, rb) = request(vec![pay(10)], 1, NOW);
        let answers = decide_batch(
            &store,
            &[(a, ra, bare), (b, rb, crate::decisions::wallet())],
        )
        .await;
        assert!(matches!(answers[0], Err(Error::NoPolicy(_))));
        assert_eq!(outcome(&answers[1]), Outcome::Approved);
    }
}

#[tokio::test]
async fn a_batch_larger_than_the_maximum_is_refused_whole() {
    for store in stores().await {
        registered(&store, 100).await;
        let wallet = crate::decisions::wallet();
        let requests: Vec<_> = (0..MAX_BATCH as u64 + 1)
            .map(|nonce| {
                let (id, r) = request(vec![pay(1)], nonce, NOW);
                (id, r, wallet)
            })
            .collect();
        let records: Vec<RequestRecord<'_>> = requests
            .iter()
            .map(|(id, _, wallet)| RequestRecord {
                wallet: *wallet,
                request_id: *id,
                nonce: None,
                authorization: None,
                pays: None,
                json: "{}",
                valid_until: NOW + 60,
            })
            .collect();
        let refused = store
            .decide_batch(&records, || NOW, |_, _, _, _, _| unreachable!())
            .await;
        assert!(matches!(refused, Err(Error::OutOfRange(_))));
        let spent = store
            .committed_spend(wallet, chaperone_core::policy::Token::Native)
            .await
            .unwrap();
        assert_eq!(spent.0, chaperone_core::U256::ZERO);
    }
}

/// Twenty batches of 25 one-unit requests race for a 100-unit window: exactly 100 approved.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_batches_approve_exactly_the_window() {
    for store in stores().await {
        registered(&store, 100).await;
        let store = Arc::new(store);
        let wallet = crate::decisions::wallet();
        let handles: Vec<_> = (0..20u64)
            .map(|b| {
                let store = store.clone();
                tokio::spawn(async move {
                    let requests: Vec<_> = (0..25u64)
                        .map(|i| {
                            let (id, r) = request(vec![pay(1)], b * 25 + i, NOW);
                            (id, r, wallet)
                        })
                        .collect();
                    decide_batch(&store, &requests).await
                })
            })
            .collect();
        let mut approved = 0;
        for h in handles {
            for answer in h.await.unwrap() {
                approved += usize::from(outcome(&answer) == Outcome::Approved);
            }
        }
        assert_eq!(approved, 100);
        let spent = store
            .committed_spend(wallet, chaperone_core::policy::Token::Native)
            .await
            .unwrap();
        assert_eq!(spent.0, chaperone_core::U256::from(100));
    }
}

//! Reorganisations in reconciliation: the spends, pairings and settlements of dropped blocks
//! are forgotten (the new branch reconciles what it mines again), acknowledgements are not.

use chaperone_core::B256;
use chaperone_store::PaymentState;
use serde_json::json;

use crate::{
    attacks::decide_at,
    decisions::{NOW, pay, registered, request, wallet},
    reconcile::{event, in_tx, index, spend, states},
    stores,
};

/// L3: a reorganisation forgets the spends above the fork point; when the new branch mines the
/// same transaction again, an acknowledged spend comes back acknowledged (no second alert), and
/// another transaction spending the same nonce is a new alert.
#[tokio::test]
async fn an_acknowledgement_outlives_a_reorganisation() {
    for store in stores().await {
        registered(&store, 1_000).await;
        let executed = |nonce: u64| json!({ "nonce": nonce.to_string(), "digest": B256::repeat_byte(nonce as u8) });
        let stolen = [
            in_tx(0xa1, event(10, 0, wallet(), "Executed", executed(1))),
            in_tx(0xa2, event(10, 1, wallet(), "Executed", executed(2))),
        ];
        assert_eq!(index(&store, 10, &stolen).await.len(), 2);
        let permit2 = store
            .reconcile_permit2(wallet(), &[B256::repeat_byte(4)], 10, NOW + 100)
            .await
            .unwrap();
        assert_eq!(permit2.len(), 1);
        for s in store.unauthorized_spends(true, 10).await.unwrap() {
            store
                .acknowledge_unauthorized_spend(s.id, "ops", NOW + 200)
                .await
                .unwrap();
        }
        assert_eq!(store.open_unauthorized_spends().await.unwrap(), 0);

        // The fork point is block 9; the new branch mines the first transaction again (in
        // block 11), the second nonce in another transaction, and Permit2 shows nonce 4 used
        // (at block 12).
        store.rewind_index(9).await.unwrap();
        assert_eq!(store.unauthorized_spends(false, 10).await.unwrap(), []);
        let new_branch = [
            in_tx(0xa1, event(11, 0, wallet(), "Executed", executed(1))),
            in_tx(0xb2, event(11, 1, wallet(), "Executed", executed(2))),
        ];
        assert_eq!(
            index(&store, 11, &new_branch).await,
            [spend("execute", 2, "no_decision")],
            "only the other transaction alerts"
        );
        assert!(
            store
                .reconcile_permit2(wallet(), &[B256::repeat_byte(4)], 12, NOW + 100)
                .await
                .unwrap()
                .is_empty(),
            "the same Permit2 nonce, acknowledged"
        );
        let all = store.unauthorized_spends(false, 10).await.unwrap();
        let acknowledged: Vec<(&str, Option<&str>)> = all
            .iter()
            .map(|s| {
                (
                    s.nonce.as_str(),
                    s.acknowledged.as_ref().map(|(by, _)| by.as_str()),
                )
            })
            .collect();
        let permit2_nonce = B256::repeat_byte(4).to_string();
        assert_eq!(
            acknowledged,
            [
                (permit2_nonce.as_str(), Some("ops")),
                ("2", None),
                ("1", Some("ops")),
            ]
        );
        assert_eq!(store.open_unauthorized_spends().await.unwrap(), 1);
    }
}

/// Red team (rt29): a reorganisation forgets the events, blocks, anchors, unauthorized spends
/// and Permit2 pairings above the fork, but not the settlements they made: the ledger keeps
/// the approved payment settled in a transaction that is no longer on chain. On the new branch
/// attacker B can spend the same nonce on other calls (an alert), yet the ledger still says the
/// approved payment settled.
#[tokio::test]
async fn a_reorganisation_forgets_the_settlements_of_dropped_blocks() {
    for store in stores().await {
        registered(&store, 1_000).await;
        let (id, req) = request(vec![pay(10)], 0, NOW);
        decide_at(&store, id, &req, NOW, NOW + 60, None).await;
        let executed = json!({ "nonce": "0", "digest": id });
        index(
            &store,
            10,
            &[event(10, 0, wallet(), "Executed", executed.clone())],
        )
        .await;
        let settled = states(&store).await;
        assert_eq!(settled[0].1, PaymentState::Settled);
        // Block 10 is replaced: its transaction is gone.
        store.rewind_index(9).await.unwrap();
        let after = states(&store).await;
        assert_ne!(
            after[0],
            (id, PaymentState::Settled, Some(B256::repeat_byte(0))),
            "the ledger still names a settlement in a dropped block"
        );
        // Reserved again, still counting against the limits.
        assert_eq!(after[0], (id, PaymentState::Reserved, None));
        let committed = store
            .committed_spend(wallet(), chaperone_core::policy::Token::Native)
            .await
            .unwrap();
        assert_eq!(committed.0, chaperone_core::U256::from(10));
        // The new branch mines it again (another transaction): settled there.
        let again = in_tx(0x0b, event(11, 0, wallet(), "Executed", executed));
        assert_eq!(index(&store, 11, &[again]).await, []);
        assert_eq!(
            states(&store).await[0],
            (id, PaymentState::Settled, Some(B256::repeat_byte(0x0b)))
        );
    }
}

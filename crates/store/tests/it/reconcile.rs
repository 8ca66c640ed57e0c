//! Reconciliation in the store, on SQLite and PostgreSQL: an outflow (`Executed`,
//! `AuthorizationUsed`) with no approved decision of exactly it is stored once as an
//! unauthorized spend, however often the indexer runs over it; a reorganisation forgets it
//! with its block; an admin acknowledges it once.

use chaperone_core::{Address, B256};
use chaperone_store::{ChainEvent, Store};
use serde_json::json;

use crate::{
    attacks::decide_at,
    decisions::{NOW, pay, registered, request, token, wallet},
    stores,
};

fn event(
    block: u64,
    index: u64,
    contract: Address,
    name: &str,
    fields: serde_json::Value,
) -> ChainEvent {
    ChainEvent {
        block_number: block,
        log_index: index,
        block_hash: B256::repeat_byte(block as u8),
        tx_hash: B256::repeat_byte(index as u8),
        contract,
        event: name.into(),
        fields,
        block_time: Some(NOW + block),
    }
}

async fn index(store: &Store, block: u64, events: &[ChainEvent]) -> Vec<(String, String)> {
    store
        .index_blocks(
            &[(block, B256::repeat_byte(block as u8))],
            events,
            Some(NOW + 100),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.kind, s.nonce))
        .collect()
}

#[tokio::test]
async fn only_outflows_an_approved_decision_accounts_for_pass() {
    for store in stores().await {
        registered(&store, 1_000).await;
        // Approved: nonce 0 (an execute) and an EIP-3009 authorization of `token()`.
        let (approved_id, approved) = request(vec![pay(10)], 0, NOW);
        decide_at(&store, approved_id, &approved, NOW, NOW + 60, None).await;
        let usdc_nonce = B256::repeat_byte(1);
        let (id, req) = request(vec![pay(20)], 1, NOW);
        decide_at(&store, id, &req, NOW, NOW + 60, Some((token(), usdc_nonce))).await;
        // Denied (over the window's cap): nonce 2.
        let (id, denied) = request(vec![pay(5_000)], 2, NOW);
        let d = decide_at(&store, id, &denied, NOW, NOW + 60, None).await;
        assert_ne!(d.outcome, chaperone_core::policy::Outcome::Approved);

        let used = |nonce: B256| json!({ "authorizer": wallet(), "nonce": nonce });
        let events = [
            // Accounted for: the approved execute, with and without the decoded digest.
            event(10, 0, wallet(), "Executed", json!({ "nonce": "0" })),
            event(
                10,
                1,
                wallet(),
                "Executed",
                json!({ "nonce": "0", "digest": approved_id }),
            ),
            event(10, 2, token(), "AuthorizationUsed", used(usdc_nonce)),
            // Not: the same nonce with other calls, a denied nonce, an unknown one, the
            // approved authorization's nonce on another token.
            event(
                10,
                3,
                wallet(),
                "Executed",
                json!({ "nonce": "0", "digest": B256::repeat_byte(9) }),
            ),
            event(10, 4, wallet(), "Executed", json!({ "nonce": "2" })),
            event(10, 5, wallet(), "Executed", json!({ "nonce": "7" })),
            event(
                10,
                6,
                Address::repeat_byte(0x66),
                "AuthorizationUsed",
                used(usdc_nonce),
            ),
            // Not an outflow.
            event(10, 7, wallet(), "FrozenSet", json!({ "frozen": true })),
            // The owner's authorization budgets: `token()` and 0x66 may move the wallet's funds
            // through EIP-1271.
            event(
                10,
                8,
                wallet(),
                "AuthorizationBudgetSet",
                json!({ "token": token() }),
            ),
            event(
                10,
                9,
                wallet(),
                "AuthorizationBudgetSet",
                json!({ "token": Address::repeat_byte(0x66) }),
            ),
            // Not an outflow either: a contract with no budget (anyone's) claiming the wallet
            // authorized it; the wallet would have refused, so no alert (an outsider must not
            // be able to flood the owner's alerts).
            event(
                10,
                10,
                Address::repeat_byte(0x77),
                "AuthorizationUsed",
                used(B256::repeat_byte(2)),
            ),
        ];
        let found = index(&store, 10, &events).await;
        let usdc = usdc_nonce.to_string();
        assert_eq!(
            found,
            [
                ("execute".to_owned(), "0".to_owned()),
                ("execute".into(), "2".into()),
                ("execute".into(), "7".into()),
                ("eip3009".into(), usdc.clone()),
            ]
        );
        assert_eq!(store.open_unauthorized_spends().await.unwrap(), 4);

        // The indexer running over the same blocks again stores nothing twice.
        assert_eq!(index(&store, 10, &events).await, []);
        assert_eq!(store.open_unauthorized_spends().await.unwrap(), 4);

        // A reorganisation drops block 10: its spends go with it, and come back with the
        // new branch if it mines them again.
        store.rewind_index(9).await.unwrap();
        assert_eq!(store.open_unauthorized_spends().await.unwrap(), 0);
        let again = index(&store, 10, &events[5..6]).await;
        assert_eq!(again, [("execute".to_owned(), "7".to_owned())]);

        // Acknowledged once: the first name stands; an unknown id is none.
        let id = store.unauthorized_spends(true, 10).await.unwrap()[0].id;
        let first = store
            .acknowledge_unauthorized_spend(id, "ops", NOW + 200)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.acknowledged, Some(("ops".to_owned(), NOW + 200)));
        let second = store
            .acknowledge_unauthorized_spend(id, "eve", NOW + 300)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(second.acknowledged, Some(("ops".to_owned(), NOW + 200)));
        assert!(
            store
                .acknowledge_unauthorized_spend(id + 1_000, "ops", NOW)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(store.open_unauthorized_spends().await.unwrap(), 0);
        assert_eq!(store.unauthorized_spends(false, 10).await.unwrap().len(), 1);
    }
}

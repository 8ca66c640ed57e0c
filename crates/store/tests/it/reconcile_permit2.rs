//! Reconciliation of x402 Permit2 payments (Permit2 emits no event: the indexer reads its nonce
//! bitmap, and a payment's transfer is the one the x402 Permit2 proxy made): the second
//! red-team review of issue 29 (F3, F4, F5).

use chaperone_core::{Address, B256, PERMIT2};
use chaperone_store::PaymentState;
use serde_json::json;

use crate::{
    decisions::{NOW, registered, token, wallet},
    reconcile::{approve_authorization, budget, event, in_tx, index, proxy_settled, states},
    stores,
};

/// Red team (rt29): the indexer settles an approved Permit2 payment as soon as Permit2's bitmap
/// shows its nonce used (`settle_used_permit2` → `settle_authorization_seen`), whatever the nonce
/// paid. Attacker B spending the approved nonce on a payment to itself leaves the ledger saying
/// the approved payment settled, though it never happened (the module says it is released).
#[tokio::test]
async fn a_permit2_nonce_spent_on_another_payment_does_not_settle_its_approval() {
    for store in stores().await {
        registered(&store, 10_000).await;
        let (merchant, thief) = (Address::repeat_byte(0x42), Address::repeat_byte(0x66));
        let nonce = B256::repeat_byte(5);
        let reused = approve_authorization(&store, 5, (PERMIT2, nonce), merchant, 25).await;
        let transfer = json!({ "from": wallet(), "to": thief, "value": "80" });
        let events = [
            budget(20, 0),
            // Attacker B's Permit2 payment to itself, through the x402 proxy.
            in_tx(5, event(20, 1, token(), "Transfer", transfer)),
            in_tx(5, proxy_settled(20, 2)),
        ];
        index(&store, 20, &events).await;
        // What the indexer does next in the same pass: the bitmap shows the nonce used.
        store
            .settle_authorization_seen(
                wallet(),
                PERMIT2,
                nonce,
                Some(chaperone_store::Settlement {
                    tx: None,
                    block: 20,
                    time: Some(NOW + 20),
                }),
            )
            .await
            .unwrap();
        let alerts = store
            .reconcile_permit2(wallet(), &[nonce], 20, NOW + 100)
            .await
            .unwrap();
        assert_eq!(alerts.len(), 1, "the reuse is alerted");
        let ledger = states(&store).await;
        let state = ledger.iter().find(|(r, ..)| *r == reused).unwrap().1;
        assert_ne!(
            state,
            PaymentState::Settled,
            "the ledger settled an approved payment that never happened"
        );
        // Shown as its own state, and still counted (the nonce is gone).
        assert_eq!(state, PaymentState::Misused);
    }
}

/// Red team (rt29): a Permit2 approval is "paired" with any transfer from the wallet of the
/// same token, recipient and amount outside the wallet's executions and authorizations, e.g.
/// one pulled through an allowance a past approved `approve` gave (a subscription the merchant
/// collects). Attacker B spends the approved Permit2 nonce on a payment to itself; the
/// merchant's own pull of the same amount pairs with the approval and the reuse is never
/// alerted. Permit2 emits the nonce's use nowhere; matching by amount alone is not enough.
#[tokio::test]
async fn an_allowance_pull_does_not_pair_with_a_permit2_approval() {
    for store in stores().await {
        registered(&store, 10_000).await;
        let (merchant, thief) = (Address::repeat_byte(0x42), Address::repeat_byte(0x66));
        let nonce = B256::repeat_byte(5);
        approve_authorization(&store, 5, (PERMIT2, nonce), merchant, 25).await;
        let transfer =
            |to: Address, value: &str| json!({ "from": wallet(), "to": to, "value": value });
        let events = [
            budget(20, 0),
            // Permit2 pulls 80 to the thief under the approved nonce, through the x402 proxy.
            in_tx(5, event(20, 1, token(), "Transfer", transfer(thief, "80"))),
            in_tx(5, proxy_settled(20, 2)),
            // The merchant collects 25 through its allowance (transferFrom, no wallet event).
            in_tx(
                9,
                event(20, 3, token(), "Transfer", transfer(merchant, "25")),
            ),
        ];
        index(&store, 20, &events).await;
        let alerts = store
            .reconcile_permit2(wallet(), &[nonce], 20, NOW + 100)
            .await
            .unwrap();
        assert_eq!(
            alerts.len(),
            1,
            "the reused Permit2 nonce escaped the alert"
        );
    }
}

/// Red team (rt29): the indexer reads Permit2's bitmap only for the slots of the latest budget
/// (`permit2_budgets`). Attacker B uses Permit2 slots 0..5 (none approved), then the owner
/// lowers the budget to 0 Permit2 slots (or removes the backstop) before the indexer's next
/// bitmap read: the nonces already used are never looked at, and the spend raises no alert.
/// The slots to check must be the most any budget allowed (fixed: `permit2_budgets`).
#[tokio::test]
async fn a_lowered_permit2_budget_still_checks_the_slots_used_before() {
    for store in stores().await {
        registered(&store, 10_000).await;
        let lowered = event(
            21,
            0,
            wallet(),
            "AuthorizationBudgetSet",
            json!({ "token": token(), "max_value": "1000", "slots": 5, "permit2_slots": 0 }),
        );
        index(&store, 20, &[budget(20, 0)]).await;
        store
            .index_blocks(&[(21, B256::repeat_byte(21))], &[lowered], Some(NOW + 100))
            .await
            .unwrap();
        let budgets = store.permit2_budgets().await.unwrap();
        assert!(
            budgets
                .iter()
                .any(|&(w, t, slots)| w == wallet() && t == token() && slots >= 5),
            "the indexer no longer checks the 5 Permit2 slots usable earlier this period: {budgets:?}"
        );
    }
}

/// F5: when the indexer read the Permit2 nonce from the proxy call (a facilitator calls the
/// proxy's `settle` directly), the transfer pairs only with the decision of that nonce, not
/// with an earlier twin approval of the same payment (which would then be blamed for the
/// nonce's use: a false alert, and the twin's own use left unpaired).
#[tokio::test]
async fn a_proxy_call_nonce_pairs_its_transfer_with_that_nonces_decision() {
    for store in stores().await {
        registered(&store, 10_000).await;
        let merchant = Address::repeat_byte(0x42);
        let (first, second) = (B256::repeat_byte(4), B256::repeat_byte(5));
        let twin = approve_authorization(&store, 4, (PERMIT2, first), merchant, 25).await;
        let paid = approve_authorization(&store, 5, (PERMIT2, second), merchant, 25).await;
        let transfer = json!({ "from": wallet(), "to": merchant, "value": "25" });
        // The proxy's `Settled`, with the nonce the indexer read from the proxy call.
        let settled = chaperone_store::ChainEvent {
            fields: json!({ "nonce": second }),
            ..proxy_settled(20, 2)
        };
        let events = [
            budget(20, 0),
            in_tx(5, event(20, 1, token(), "Transfer", transfer)),
            in_tx(5, settled),
        ];
        index(&store, 20, &events).await;
        let alerts = store
            .reconcile_permit2(wallet(), &[second], 20, NOW + 100)
            .await
            .unwrap();
        assert!(alerts.is_empty(), "{alerts:?}");
        let ledger = states(&store).await;
        let state_of = |id: B256| *ledger.iter().find(|(r, ..)| *r == id).unwrap();
        assert_eq!(
            state_of(paid),
            (paid, PaymentState::Settled, Some(B256::repeat_byte(5)))
        );
        // The twin was never used: it expired unused (the indexed block is past its validity).
        assert_eq!(state_of(twin).1, PaymentState::Expired);
    }
}

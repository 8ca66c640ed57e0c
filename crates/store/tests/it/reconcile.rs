//! Reconciliation in the store, on SQLite and PostgreSQL: an outflow (`Executed`,
//! `AuthorizationUsed`, a Permit2 nonce used) with no approved decision of exactly what moved is
//! stored once as an unauthorized spend, however often the indexer runs over it; an admin
//! acknowledges it once. Attacker B reusing an approved nonce for another payment is caught (the
//! red-team review of issue 29, H1 and H2). Permit2's own cases are in `reconcile_permit2`,
//! reorganisations in `reconcile_reorg`; the helpers here serve all three.

use chaperone_core::{
    Address, B256, PERMIT2, U256, X402_PERMIT2_PROXY,
    policy::{Outcome, PolicyRequest, evaluate},
};
use chaperone_store::{
    AuthorizedTransfer, ChainEvent, Decided, PaymentFilter, PaymentState, RequestRecord, Store,
};
use serde_json::json;

use crate::{
    attacks::decide_at,
    decisions::{NOW, pay, registered, request, token, wallet},
    stores,
};

pub(crate) fn event(
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

/// The x402 Permit2 proxy's `Settled()` (it names no nonce; the indexer adds the proxy call's
/// when it can read it): the transfer right before it is a Permit2 payment.
pub(crate) fn proxy_settled(block: u64, index: u64) -> ChainEvent {
    event(block, index, X402_PERMIT2_PROXY, "Settled", json!({}))
}

/// `event`, in transaction `tx` (the events of one transaction share it).
pub(crate) fn in_tx(tx: u8, e: ChainEvent) -> ChainEvent {
    ChainEvent {
        tx_hash: B256::repeat_byte(tx),
        ..e
    }
}

pub(crate) async fn index(
    store: &Store,
    block: u64,
    events: &[ChainEvent],
) -> Vec<(String, String, String)> {
    store
        .index_blocks(
            &[(block, B256::repeat_byte(block as u8))],
            events,
            Some(NOW + 100),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.kind, s.nonce, s.reason))
        .collect()
}

pub(crate) fn spend(kind: &str, nonce: impl ToString, reason: &str) -> (String, String, String) {
    (kind.into(), nonce.to_string(), reason.into())
}

/// The owner gave `token()` an authorization budget (EIP-3009 and Permit2).
pub(crate) fn budget(block: u64, index: u64) -> ChainEvent {
    event(
        block,
        index,
        wallet(),
        "AuthorizationBudgetSet",
        json!({ "token": token(), "max_value": "1000", "slots": 5, "permit2_slots": 5 }),
    )
}

/// An approved x402 authorization (its key: the token or Permit2, and the nonce) paying `value`
/// of `token()` to `to`, usable from NOW to NOW + 60. (The engine decides it as an execute of
/// the same amount: the store records what the server tells it the authorization pays.)
pub(crate) async fn approve_authorization(
    store: &Store,
    n: u64,
    key: (Address, B256),
    to: Address,
    value: u64,
) -> B256 {
    let (id, req) = request(vec![pay(value)], 100 + n, NOW);
    let d = store
        .decide(
            &RequestRecord {
                wallet: wallet(),
                request_id: id,
                nonce: None,
                authorization: Some(key),
                pays: Some(AuthorizedTransfer {
                    token: token(),
                    to,
                    value: U256::from(value),
                    valid_from: NOW,
                }),
                json: "{}",
                valid_until: NOW + 60,
            },
            || NOW,
            |policy, history, approved, now| Decided {
                decision: evaluate(
                    policy,
                    &PolicyRequest {
                        now,
                        human_approved: approved,
                        ..req.clone()
                    },
                    history,
                ),
                signature: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(d.outcome, Outcome::Approved, "{:?}", d.reasons);
    id
}

/// The ledger state of each request.
pub(crate) async fn states(store: &Store) -> Vec<(B256, PaymentState, Option<B256>)> {
    let all = PaymentFilter {
        limit: 100,
        ..Default::default()
    };
    store
        .payments(&all)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.request_id, r.state, r.settlement.and_then(|s| s.tx)))
        .collect()
}

#[tokio::test]
async fn only_outflows_an_approved_decision_accounts_for_pass() {
    for store in stores().await {
        registered(&store, 1_000).await;
        // Approved: nonce 0 (an execute) and an EIP-3009 authorization of `token()`, decided
        // before the store recorded what an authorization pays (matched by its nonce).
        let (approved_id, approved) = request(vec![pay(10)], 0, NOW);
        decide_at(&store, approved_id, &approved, NOW, NOW + 60, None).await;
        let usdc_nonce = B256::repeat_byte(1);
        let (id, req) = request(vec![pay(20)], 1, NOW);
        decide_at(&store, id, &req, NOW, NOW + 60, Some((token(), usdc_nonce))).await;
        // Approved as well: nonce 3, never executed.
        let (unused_id, unused) = request(vec![pay(30)], 3, NOW);
        decide_at(&store, unused_id, &unused, NOW, NOW + 60, None).await;
        // Denied (over the window's cap): nonce 2.
        let (id, denied) = request(vec![pay(5_000)], 2, NOW);
        let d = decide_at(&store, id, &denied, NOW, NOW + 60, None).await;
        assert_ne!(d.outcome, Outcome::Approved);

        let used = |nonce: B256| json!({ "authorizer": wallet(), "nonce": nonce });
        let executed =
            |nonce: u64, digest: B256| json!({ "nonce": nonce.to_string(), "digest": digest });
        let events = [
            // Accounted for: the approved execute (its digest names its calls, however the
            // transaction reached the wallet) and the approved authorization.
            event(10, 0, wallet(), "Executed", executed(0, approved_id)),
            event(10, 2, token(), "AuthorizationUsed", used(usdc_nonce)),
            // Not: an approved nonce with other calls (attacker B), a denied nonce, an unknown
            // one, an event without a digest (never matched by the nonce alone), the approved
            // authorization's nonce on another token.
            event(
                10,
                3,
                wallet(),
                "Executed",
                executed(3, B256::repeat_byte(9)),
            ),
            event(
                10,
                4,
                wallet(),
                "Executed",
                executed(2, B256::repeat_byte(8)),
            ),
            event(
                10,
                5,
                wallet(),
                "Executed",
                executed(7, B256::repeat_byte(7)),
            ),
            event(10, 6, wallet(), "Executed", json!({ "nonce": "8" })),
            event(
                10,
                7,
                Address::repeat_byte(0x66),
                "AuthorizationUsed",
                used(usdc_nonce),
            ),
            // Not an outflow.
            event(10, 8, wallet(), "FrozenSet", json!({ "frozen": true })),
            // The owner's authorization budgets: `token()` and 0x66 may move the wallet's funds
            // through EIP-1271.
            budget(10, 9),
            event(
                10,
                10,
                wallet(),
                "AuthorizationBudgetSet",
                json!({ "token": Address::repeat_byte(0x66) }),
            ),
            // Not an outflow either: a contract with no budget (anyone's) claiming the wallet
            // authorized it; the wallet would have refused, so no alert (an outsider must not
            // be able to flood the owner's alerts).
            event(
                10,
                11,
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
                spend("execute", 3, "other_payment"),
                spend("execute", 2, "no_decision"),
                spend("execute", 7, "no_decision"),
                spend("execute", 8, "no_decision"),
                spend("eip3009", &usdc, "no_decision"),
            ]
        );
        assert_eq!(store.open_unauthorized_spends().await.unwrap(), 5);
        // The ledger: the approved execute settled with its transaction; nonce 3, whose calls
        // never ran, did not (it is released once it expires).
        let ledger = states(&store).await;
        assert!(ledger.contains(&(
            approved_id,
            PaymentState::Settled,
            Some(B256::repeat_byte(0))
        )));
        assert!(
            ledger
                .iter()
                .any(|(id, state, _)| *id == unused_id && *state == PaymentState::Expired),
            "{ledger:?}"
        );

        // The indexer running over the same blocks again stores nothing twice.
        assert_eq!(index(&store, 10, &events).await, []);
        assert_eq!(store.open_unauthorized_spends().await.unwrap(), 5);

        // A reorganisation drops block 10: its spends go with it, and come back with the
        // new branch if it mines them again.
        store.rewind_index(9).await.unwrap();
        assert_eq!(store.open_unauthorized_spends().await.unwrap(), 0);
        let again = index(&store, 10, &events[4..5]).await;
        assert_eq!(again, [spend("execute", 7, "no_decision")]);

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

/// H2: an `AuthorizationUsed` or a used Permit2 nonce carries no amount or recipient. Attacker
/// B reuses an approved nonce to pay itself, or pays the approved transfer when its approval
/// was not valid: the token's `Transfer` in the same transaction (EIP-3009) or the transfer
/// paired with the Permit2 payment gives it away.
#[tokio::test]
async fn an_approved_authorization_nonce_pays_only_its_approved_transfer() {
    for store in stores().await {
        registered(&store, 10_000).await;
        let (merchant, thief) = (Address::repeat_byte(0x42), Address::repeat_byte(0x66));
        let nonce = |n: u8| B256::repeat_byte(n);
        // EIP-3009, each approved to pay 30 to the merchant.
        let stolen = approve_authorization(&store, 1, (token(), nonce(1)), merchant, 30).await;
        let late = approve_authorization(&store, 2, (token(), nonce(2)), merchant, 30).await;
        let honest = approve_authorization(&store, 3, (token(), nonce(3)), merchant, 30).await;
        // Two more, both to pay the merchant 30: attacker B uses one as approved and, right
        // after it in the same transaction, the other to pay itself.
        approve_authorization(&store, 6, (token(), nonce(6)), merchant, 30).await;
        approve_authorization(&store, 7, (token(), nonce(7)), merchant, 30).await;
        // Permit2, approved to pay 20 and 25 to the merchant.
        let paid = approve_authorization(&store, 4, (PERMIT2, nonce(4)), merchant, 20).await;
        let reused = approve_authorization(&store, 5, (PERMIT2, nonce(5)), merchant, 25).await;

        let used = |n: u8| json!({ "authorizer": wallet(), "nonce": nonce(n) });
        let transfer = |to: Address, value: u64| json!({ "from": wallet(), "to": to, "value": value.to_string() });
        let in_block = |index: u64, contract: Address, name: &str, fields| {
            event(20, index, contract, name, fields)
        };
        let events = [
            budget(20, 0),
            // Nonce 1 used first by attacker B, paying itself 90.
            in_tx(1, in_block(1, token(), "AuthorizationUsed", used(1))),
            in_tx(1, in_block(2, token(), "Transfer", transfer(thief, 90))),
            // The approved transfer of nonce 2, after its approval expired (block 200: NOW +
            // 200 > NOW + 60).
            in_tx(
                2,
                ChainEvent {
                    block_time: Some(NOW + 200),
                    ..in_block(3, token(), "AuthorizationUsed", used(2))
                },
            ),
            in_tx(
                2,
                ChainEvent {
                    block_time: Some(NOW + 200),
                    ..in_block(4, token(), "Transfer", transfer(merchant, 30))
                },
            ),
            // Nonce 3 as approved.
            in_tx(3, in_block(5, token(), "AuthorizationUsed", used(3))),
            in_tx(3, in_block(6, token(), "Transfer", transfer(merchant, 30))),
            // Permit2 pulls through the x402 proxy (no event of the wallet's; the proxy's
            // `Settled` right after each): the approved 20 to the merchant, and 80 to the
            // thief under nonce 5 (approved for 25 to the merchant).
            in_tx(4, in_block(7, token(), "Transfer", transfer(merchant, 20))),
            in_tx(4, proxy_settled(20, 8)),
            in_tx(5, in_block(9, token(), "Transfer", transfer(thief, 80))),
            in_tx(5, proxy_settled(20, 10)),
            // Nonce 6 as approved, then nonce 7 paying the thief: the transfer before nonce 7's
            // AuthorizationUsed is nonce 6's, not its (the token emits its transfer after it).
            in_tx(6, in_block(11, token(), "AuthorizationUsed", used(6))),
            in_tx(6, in_block(12, token(), "Transfer", transfer(merchant, 30))),
            in_tx(6, in_block(13, token(), "AuthorizationUsed", used(7))),
            in_tx(6, in_block(14, token(), "Transfer", transfer(thief, 90))),
        ];
        let found = index(&store, 20, &events).await;
        assert_eq!(
            found,
            [
                spend("eip3009", nonce(1), "other_payment"),
                spend("eip3009", nonce(2), "outside_validity"),
                spend("eip3009", nonce(7), "other_payment"),
            ]
        );
        // Permit2's bitmap shows nonces 4 and 5 used, and 6, which nothing approved.
        let found: Vec<_> = store
            .reconcile_permit2(wallet(), &[nonce(4), nonce(5), nonce(6)], 20, NOW + 100)
            .await
            .unwrap()
            .into_iter()
            .map(|s| (s.kind, s.nonce, s.reason))
            .collect();
        assert_eq!(
            found,
            [
                spend("permit2", nonce(5), "other_payment"),
                spend("permit2", nonce(6), "no_decision"),
            ]
        );
        // Running again finds nothing new.
        assert_eq!(index(&store, 20, &events).await, []);
        assert!(
            store
                .reconcile_permit2(wallet(), &[nonce(4), nonce(5), nonce(6)], 20, NOW + 100)
                .await
                .unwrap()
                .is_empty()
        );

        // The ledger: only what paid as approved settled, with its transaction; the
        // approvals whose nonce paid something else never happened.
        let ledger = states(&store).await;
        let state_of = |id: B256| *ledger.iter().find(|(r, ..)| *r == id).unwrap();
        assert_eq!(
            state_of(honest),
            (honest, PaymentState::Settled, Some(B256::repeat_byte(3)))
        );
        assert_eq!(
            state_of(paid),
            (paid, PaymentState::Settled, Some(B256::repeat_byte(4)))
        );
        for id in [stolen, late] {
            assert_eq!(state_of(id).1, PaymentState::Expired, "{id}");
        }
        assert_ne!(state_of(reused).2, Some(B256::repeat_byte(5)));
    }
}

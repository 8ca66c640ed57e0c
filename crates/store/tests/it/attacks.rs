//! Attacker A (the agent key alone) against the store, on SQLite and PostgreSQL: stockpiled
//! co-signatures, the expiry race, clock order and clock skew. Each test is the attack the
//! outside review found, asserting it fails.

use chaperone_core::{
    Address, B256, U256,
    policy::{Outcome, PolicyRequest, Reason, RequestKind, Token, evaluate},
};
use chaperone_store::{ChainEvent, Decided, Error, RequestRecord, Store};
use serde_json::json;

use crate::{
    decisions::{NOW, decide, pay, registered, request, token, wallet},
    sqlite, stores,
};

async fn committed(store: &Store) -> U256 {
    store
        .committed_spend(wallet(), Token::Native)
        .await
        .unwrap()
        .0
}

/// Decides `request` with the store's clock reading `clock` (under the lock), for a
/// co-signature usable until `valid_until`.
pub async fn decide_at(
    store: &Store,
    id: B256,
    request: &PolicyRequest,
    clock: u64,
    valid_until: u64,
    authorization: Option<(Address, B256)>,
) -> chaperone_store::StoredDecision {
    store
        .decide(
            &RequestRecord {
                wallet: wallet(),
                request_id: id,
                nonce: match &request.kind {
                    RequestKind::Execute(e) if authorization.is_none() => Some(e.nonce),
                    _ => None,
                },
                authorization,
                pays: None,
                json: "{}",
                valid_until,
            },
            || clock,
            |policy, history, approved, now| Decided {
                decision: evaluate(
                    policy,
                    &PolicyRequest {
                        now,
                        human_approved: approved,
                        ..request.clone()
                    },
                    history,
                ),
                signature: None,
            },
        )
        .await
        .unwrap()
}

fn event(block: u64, contract: Address, name: &str, fields: serde_json::Value) -> ChainEvent {
    ChainEvent {
        block_number: block,
        log_index: 0,
        block_hash: B256::repeat_byte(block as u8),
        tx_hash: B256::repeat_byte(0xee),
        contract,
        event: name.into(),
        fields,
        block_time: None,
    }
}

/// Stockpiling: one full-cap co-signature per window, kept and spent together. A far expiry
/// is refused outright; a co-signature within `max_valid_for` keeps its reservation counted
/// in every window it can reach, until it can no longer be used.
#[tokio::test]
async fn stockpiled_cosignatures_cannot_spend_two_windows_at_once() {
    for store in stores().await {
        registered(&store, 100).await;
        // validUntil ten days out: denied, nothing reserved.
        let (id, mut far) = request(vec![pay(100)], 0, NOW);
        if let RequestKind::Execute(e) = &mut far.kind {
            e.validUntil = NOW + 10 * 86_400;
        }
        let d = decide(&store, id, &far).await;
        assert_eq!(d.outcome, Outcome::Denied);
        assert!(
            d.reasons
                .iter()
                .any(|r| matches!(r, Reason::ValidTooLong { .. }))
        );
        assert_eq!(committed(&store).await, U256::ZERO, "nothing reserved");

        // A full-cap co-signature usable for five minutes...
        let (id, first) = request(vec![pay(100)], 1, NOW);
        let d = decide_at(&store, id, &first, NOW, NOW + 300, None).await;
        assert_eq!(d.outcome, Outcome::Approved, "{:?}", d.reasons);
        // ...still counts an hour later in windows that overlap its usable span.
        let later = NOW + 3_600 + 100;
        let (id, second) = request(vec![pay(100)], 2, later);
        let d = decide_at(&store, id, &second, later, later + 60, None).await;
        assert_eq!(
            d.outcome,
            Outcome::Denied,
            "second window while the first is live"
        );
        let free = NOW + 300 + 3_600;
        let (id, third) = request(vec![pay(100)], 3, free);
        let d = decide_at(&store, id, &third, free, free + 60, None).await;
        assert_eq!(d.outcome, Outcome::Approved, "{:?}", d.reasons);
    }
}

/// The expiry race: the execution is mined in the block where `validUntil` falls, and the RPC
/// has not returned it yet. Nothing is released before a confirmed block *after* `validUntil`
/// has been indexed; an `Executed` seen late settles even a released reservation.
#[tokio::test]
async fn expiry_never_uncounts_a_spend_mined_at_valid_until() {
    for store in stores().await {
        registered(&store, 100).await;
        let (id, req) = request(vec![pay(100)], 0, NOW);
        let valid_until = NOW + 60;
        assert_eq!(
            decide_at(&store, id, &req, NOW, valid_until, None)
                .await
                .outcome,
            Outcome::Approved
        );
        // Wall-clock time is past validUntil, but the newest confirmed block is from
        // validUntil itself (the execution may be in it, or in the next unconfirmed block's
        // predecessor): nothing is released.
        store
            .index_blocks(&[(10, B256::repeat_byte(10))], &[], Some(valid_until))
            .await
            .unwrap();
        assert_eq!(committed(&store).await, U256::from(100), "still reserved");
        // The block mined at validUntil carried the execution: settled.
        store
            .index_blocks(
                &[(11, B256::repeat_byte(11))],
                &[event(
                    11,
                    wallet(),
                    "Executed",
                    json!({ "nonce": "0", "digest": id }),
                )],
                Some(valid_until),
            )
            .await
            .unwrap();
        store
            .index_blocks(&[(12, B256::repeat_byte(12))], &[], Some(valid_until + 12))
            .await
            .unwrap();
        assert_eq!(
            committed(&store).await,
            U256::from(100),
            "settled, not released"
        );

        // Another reservation is released once a confirmed block after its validUntil is
        // indexed, and settled again if its `Executed` shows up after all (a reorganisation).
        let (id, req) = request(vec![pay(1)], 5, valid_until + 5_000);
        let t = valid_until + 5_000;
        decide_at(&store, id, &req, t, t + 60, None).await;
        store
            .index_blocks(&[(20, B256::repeat_byte(20))], &[], Some(t + 61))
            .await
            .unwrap();
        assert_eq!(
            committed(&store).await,
            U256::from(100),
            "released after confirmation"
        );
        // Mined before its validUntil, seen after a block past it.
        let late = ChainEvent {
            block_time: Some(t + 30),
            ..event(
                21,
                wallet(),
                "Executed",
                json!({ "nonce": "5", "digest": id }),
            )
        };
        store
            .index_blocks(&[(21, B256::repeat_byte(21))], &[late], Some(t + 70))
            .await
            .unwrap();
        assert_eq!(
            committed(&store).await,
            U256::from(101),
            "a late Executed settles"
        );
    }
}

/// EIP-3009: the token's `AuthorizationUsed(wallet, nonce)` settles the authorization; an
/// unused one is released only after a confirmed block past its `validBefore`; the same event
/// from another token settles nothing.
#[tokio::test]
async fn authorization_used_settles_and_unused_authorizations_release() {
    for store in stores().await {
        registered(&store, 1_000).await;
        let usdc = token();
        let (used_nonce, unused_nonce) = (B256::repeat_byte(1), B256::repeat_byte(2));
        for (n, nonce) in [(10u64, used_nonce), (11, unused_nonce)] {
            let (id, req) = request(vec![pay(n)], n, NOW);
            decide_at(&store, id, &req, NOW, NOW + 60, Some((usdc, nonce))).await;
        }
        assert_eq!(committed(&store).await, U256::from(21));
        let fake = Address::repeat_byte(0x66);
        let fields = |nonce: B256| json!({ "authorizer": wallet(), "nonce": nonce });
        let mut from_fake = event(30, fake, "AuthorizationUsed", fields(unused_nonce));
        from_fake.log_index = 1;
        store
            .index_blocks(
                &[(30, B256::repeat_byte(30))],
                &[
                    event(30, usdc, "AuthorizationUsed", fields(used_nonce)),
                    from_fake,
                ],
                Some(NOW + 61),
            )
            .await
            .unwrap();
        assert_eq!(
            committed(&store).await,
            U256::from(10),
            "the used one settled, the unused one released (the other token's event is not its)"
        );
    }
}

/// Clock order: a request that read the time earlier (or on a replica whose clock is behind)
/// is decided after another request reserved. The reservation "in its future" still counts.
#[tokio::test]
async fn a_reservation_from_a_later_clock_still_counts() {
    for store in stores().await {
        registered(&store, 100).await;
        let (a, ra) = request(vec![pay(60)], 0, NOW + 20);
        assert_eq!(
            decide_at(&store, a, &ra, NOW + 20, NOW + 80, None)
                .await
                .outcome,
            Outcome::Approved
        );
        let (b, rb) = request(vec![pay(60)], 1, NOW + 10);
        let d = decide_at(&store, b, &rb, NOW + 10, NOW + 70, None).await;
        assert_eq!(d.outcome, Outcome::Denied, "both would take the window");
        assert_eq!(committed(&store).await, U256::from(60));
    }
}

/// The deciding clock is read under the lock and checked against the database's clock: a
/// replica whose clock is off by more than the bound refuses to decide, and writes nothing.
#[tokio::test]
async fn clock_skew_beyond_the_bound_is_refused() {
    let mut checked = vec![sqlite().await.with_max_clock_skew(Some(5))];
    if let Some(pg) = crate::postgres().await {
        checked.push(pg.with_max_clock_skew(Some(5)));
    }
    for store in checked {
        registered(&store, 100).await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let (id, req) = request(vec![pay(1)], 0, now);
        let record = RequestRecord {
            wallet: wallet(),
            request_id: id,
            nonce: Some(U256::ZERO),
            authorization: None,
            pays: None,
            json: "{}",
            valid_until: now + 60,
        };
        let eval = |policy: &_, history: &_, _, now| Decided {
            decision: evaluate(policy, &PolicyRequest { now, ..req.clone() }, history),
            signature: None,
        };
        let skewed = store.decide(&record, || now + 60, eval).await;
        assert!(matches!(skewed, Err(Error::ClockSkew { .. })), "{skewed:?}");
        assert_eq!(committed(&store).await, U256::ZERO, "nothing written");
        let d = store.decide(&record, || now, eval).await.unwrap();
        assert_eq!(d.outcome, Outcome::Approved, "{:?}", d.reasons);
    }
}

/// Padded calldata through the whole decision on both backends: a `transfer` with bytes after
/// its arguments is a spend of the token: reserved, and over the window denied. (With a
/// contract rule naming the token too: `core` attacks::padded_spend_calldata_is_still_a_spend.)
#[tokio::test]
async fn padded_transfer_calldata_is_reserved_as_a_spend() {
    for store in stores().await {
        registered(&store, 100).await;
        let padded = |amount: u64| {
            let mut data = chaperone_core::keccak256(b"transfer(address,uint256)")[..4].to_vec();
            data.extend_from_slice(Address::repeat_byte(0xb0).into_word().as_slice());
            data.extend_from_slice(&U256::from(amount).to_be_bytes::<32>());
            data.push(0xee);
            chaperone_core::Call {
                to: token(),
                value: U256::ZERO,
                data: data.into(),
            }
        };
        let (id, req) = request(vec![padded(80)], 0, NOW);
        assert_eq!(decide(&store, id, &req).await.outcome, Outcome::Approved);
        let spent = store
            .committed_spend(wallet(), Token::Erc20(token()))
            .await
            .unwrap()
            .0;
        assert_eq!(spent, U256::from(80), "counted as a spend of the token");
        let (id, req) = request(vec![padded(80)], 1, NOW);
        let d = decide(&store, id, &req).await;
        assert_eq!(d.outcome, Outcome::Denied);
        assert!(
            d.reasons
                .iter()
                .any(|r| matches!(r, Reason::WindowCap { .. }))
        );
    }
}

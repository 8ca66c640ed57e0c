//! x402 payment authorizations (EIP-3009 and Permit2) against a real wallet: a used Permit2
//! nonce keeps its spend past its deadline, and what the wallet could never honour is refused
//! before anything is reserved.

use alloy::primitives::{Address, U256};
use chaperone_api::{Payment, Permit2Payment};
use chaperone_chain::install_x402_contracts;
use chaperone_core::{PERMIT2_SLOTS, authorization_nonce, policy::Token};
use chaperone_testkit::signed_cosign_json;
use serde_json::json;

use super::world;

/// Permit2 reports no event when it uses a nonce, so an x402 Permit2 payment's reservation is
/// settled only when the indexer finds the nonce used in Permit2's bitmap. The attack it stops:
/// pay with Permit2, wait past the deadline, and the spend would be released as if never made,
/// freeing the window for more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permit2_payment_keeps_counting_after_its_deadline() {
    let w = world().await;
    install_x402_contracts(&w.provider).await.unwrap();
    w.set_authorization_budget(100, 5, 5).await;
    w.set_policy(json!({
        "version": 2,
        "chains": [w.chain_id],
        "limits": [{ "token": w.token.to_string(), "per_transaction": "100",
                     "windows": [{ "window": "24h", "max": "1000" }] }],
        "typed_data": [{ "primary_type": "PermitWitnessTransferFrom",
                         "verifying_contract": chaperone_core::PERMIT2.to_string() }],
    }))
    .await;
    let (now, period) = w.head_time().await;
    let merchant = Address::repeat_byte(0x77);

    // Paid through the x402 proxy; a second one co-signed and never used (Permit2's slots).
    let paid = w.permit(merchant, 60, period, 0, now + 20);
    let signature = w.permit2_approved(&paid).await;
    w.permit2_approved(&w.permit(merchant, 30, period, 1, now + 20))
        .await;
    w.settle_permit2(&paid, signature).await;
    assert_eq!(
        w.token_balance(merchant).await,
        U256::from(60),
        "paid through Permit2"
    );

    let committed = async || w.committed(Token::Erc20(w.token)).await;
    assert_eq!(committed().await, U256::from(90), "both reserved");
    // Past both deadlines, with a block to show it.
    w.mine_at(now + 21).await;
    let report = w.indexer().tick().await.unwrap();
    assert_eq!(
        report.unauthorized, 0,
        "a co-signed Permit2 payment reconciles: {report:?}"
    );
    assert_eq!(
        committed().await,
        U256::from(60),
        "the used Permit2 nonce keeps its spend; only the unused one is released"
    );
    // The ledger: the used one settled by the transfer the indexer paired it with (Permit2
    // emits no event, but the token's Transfer to the approved recipient names the
    // transaction), the unused one expired.
    let rows = w.ledger().await;
    let states: Vec<_> = rows.iter().map(|r| (r.amount, r.state)).collect();
    use chaperone_store::PaymentState::{Expired, Settled};
    assert_eq!(
        states,
        [(U256::from(30), Expired), (U256::from(60), Settled)],
        "{rows:?}"
    );
    let seen = rows[1].settlement.unwrap();
    assert!(
        seen.tx.is_some() && seen.block > 0 && seen.time.is_some(),
        "{seen:?}"
    );
}

/// Co-signatures the wallet's EIP-1271 could never honour are refused before anything is
/// reserved: they would hold window spend until they expire, for nothing (the second review
/// had all of these approved). Read from the wallet on a real Anvil.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorizations_the_wallet_cannot_honour_are_refused_and_reserve_nothing() {
    let w = world().await;
    w.set_authorization_budget(100, 2, 1).await;
    w.set_policy(json!({
        "version": 2,
        "chains": [w.chain_id],
        "limits": [{ "token": w.token.to_string(), "per_transaction": "1000" }],
        "typed_data": [
            { "primary_type": "TransferWithAuthorization", "verifying_contract": w.token.to_string() },
            { "primary_type": "PermitWitnessTransferFrom",
              "verifying_contract": chaperone_core::PERMIT2.to_string() },
        ],
    }))
    .await;
    let (now, period) = w.head_time().await;
    let merchant = Address::repeat_byte(0x77);
    let body = |payment: Payment| signed_cosign_json(&w.agent, w.chain_id, w.wallet, payment);
    let eip3009 = async |value: u64, period: u64, slot: u32| {
        let message = w.eip3009(merchant, value, now + 60, authorization_nonce(period, slot));
        body(w.eip3009_payment(&message).await)
    };
    // A Permit2 payment with nonce slot `slot` (Permit2's slots start at PERMIT2_SLOTS).
    let permit2 = |slot: u32| {
        let mut message = w.permit(merchant, 10, period, 0, now + 60);
        message.nonce = authorization_nonce(period, slot).into();
        body(Payment::Permit2(Permit2Payment { message }))
    };
    for (what, body, code) in [
        (
            "a Permit2 slot for EIP-3009",
            eip3009(10, period, PERMIT2_SLOTS).await,
            "nonce_outside_slots",
        ),
        (
            "beyond every slot",
            eip3009(10, period, 2).await,
            "nonce_outside_slots",
        ),
        (
            "an EIP-3009 slot for Permit2",
            permit2(0),
            "nonce_outside_slots",
        ),
        (
            "beyond Permit2's slot",
            permit2(PERMIT2_SLOTS + 1),
            "nonce_outside_slots",
        ),
        (
            "above maxValue",
            eip3009(101, period, 0).await,
            "over_max_value",
        ),
        (
            "a past period",
            eip3009(10, period - 1, 0).await,
            "nonce_of_another_period",
        ),
        (
            "a future period",
            eip3009(10, period + 1, 0).await,
            "nonce_of_another_period",
        ),
    ] {
        let (status, answer) = w.cosign_body(&body).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (422, Some(code)),
            "{what}: {answer}"
        );
    }
    assert_eq!(
        w.committed(Token::Erc20(w.token)).await,
        U256::ZERO,
        "nothing reserved for what cannot pay"
    );
    // What the wallet can honour is co-signed as before.
    for body in [eip3009(10, period, 1).await, permit2(PERMIT2_SLOTS)] {
        let (status, answer) = w.cosign_body(&body).await;
        assert_eq!(status, 200, "{answer}");
    }
}

//! Item 4: a settlement counts only when the chain shows *this* authorization used.

use chaperone_chain::MULTICALL3;
use chaperone_core::{Address, B256, U256};
use chaperone_sdk::Error;

use super::{
    PRICE, Shop, buy,
    facilitator::{batch, send, settle_on_chain, settlement_calls},
    merchant::{Merchant, OnPayment, paid},
    refused,
};

#[tokio::test(flavor = "multi_thread")]
async fn a_settlement_verifies_only_with_the_transaction_that_used_this_authorization() {
    let shop = Shop::open().await;
    let client = shop.client();
    let agent = shop.agent.address();
    let honest = Merchant::start(
        &shop,
        vec![
            ("/eip3009", paid("eip3009", OnPayment::Settle)),
            ("/permit2", paid("permit2", OnPayment::Settle)),
        ],
    )
    .await;

    // Honest settlements, both methods: verified against the chain, from the agent's wallet.
    let first = buy(&client, &honest, "/eip3009").await;
    let by_permit2 = buy(&client, &honest, "/permit2").await;
    for (payment, tx) in [&first, &by_permit2].into_iter().zip(honest.settled()) {
        let settled = payment
            .verify_settlement(&shop.provider, agent)
            .await
            .unwrap();
        assert_eq!(
            (
                settled.transaction,
                settled.payer,
                settled.agent,
                settled.cosigner
            ),
            (tx, shop.wallet, agent, shop.cosigner)
        );
        // The search finds the same transaction, whatever the merchant says.
        let found = payment
            .find_settlement(&shop.provider, agent)
            .await
            .unwrap();
        assert_eq!(found, Some(settled));
    }
    assert_eq!(shop.balance(shop.pay_to).await, U256::from(2 * PRICE));

    // The record is another agent's claim: refused.
    let stranger = Address::repeat_byte(0x77);
    let wrong_agent = first.verify_settlement(&shop.provider, stranger).await;
    assert!(
        matches!(&wrong_agent, Err(Error::Invalid(e)) if e.contains("signed by agent")),
        "{wrong_agent:?}"
    );

    // Merchant D takes a payment without settling it and names the earlier settlement (the
    // same amount from the same wallet to the same payee): not this authorization's.
    for (path, earlier) in [("/eip3009", &first), ("/permit2", &by_permit2)] {
        let stale = earlier.settlement.as_ref().unwrap().transaction.unwrap();
        let method = path.trim_start_matches('/');
        let liar =
            Merchant::start(&shop, vec![(path, paid(method, OnPayment::Report(stale)))]).await;
        let unpaid = buy(&client, &liar, path).await;
        let verdict = unpaid.verify_settlement(&shop.provider, agent).await;
        assert!(
            matches!(&verdict, Err(Error::Invalid(e)) if e.contains("not settled by this payment")),
            "{path}: a settlement of another authorization verified: {verdict:?}"
        );
        assert_eq!(
            unpaid.find_settlement(&shop.provider, agent).await.unwrap(),
            None
        );
    }
    assert_eq!(
        shop.balance(shop.pay_to).await,
        U256::from(2 * PRICE),
        "nothing more was paid"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_payment_the_agent_never_made_does_not_verify() {
    let shop = Shop::open().await;
    let client = shop.client();
    let agent = shop.agent.address();
    let merchant = Merchant::start(
        &shop,
        vec![("/eip3009", paid("eip3009", OnPayment::Settle))],
    )
    .await;
    let genuine = buy(&client, &merchant, "/eip3009").await;

    // Agent A logs a payment backed by another account's plain transfer to the merchant.
    let someone = shop.devnet.signer(1).address();
    let transfer = shop.unrelated_transfer(shop.pay_to, PRICE).await;
    let mut forged = genuine.clone();
    let settlement = forged.settlement.as_mut().unwrap();
    settlement.transaction = Some(transfer);
    settlement.payer = Some(someone);
    let verdict = forged.verify_settlement(&shop.provider, agent).await;
    assert!(
        verdict.is_err(),
        "a transfer from {someone}, no authorization of the wallet, verified as the payment"
    );

    // Or it rewrites the record to say it paid more, or someone else: the authorization it
    // carries no longer matches, and the decision id is no longer its digest.
    let mut inflated = genuine.clone();
    inflated.amount = U256::from(2 * PRICE);
    assert!(
        inflated
            .verify_settlement(&shop.provider, agent)
            .await
            .is_err()
    );
    let mut other_decision = genuine.clone();
    other_decision.request_id = B256::repeat_byte(9);
    assert!(
        other_decision
            .verify_settlement(&shop.provider, agent)
            .await
            .is_err()
    );
    genuine
        .verify_settlement(&shop.provider, agent)
        .await
        .unwrap();
}

/// Merchant D, as its own facilitator, settles a new payment in a Multicall3 batch that also
/// replays an older, already used one (tolerating its failure): the batch carries the old
/// authorization and pays the same amount to the same payee, so only the nonce's use tells
/// which payment it settled. One transaction never backs two payments.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_that_replays_a_used_authorization_settles_only_the_new_one() {
    let shop = Shop::open().await;
    let client = shop.client();
    let agent = shop.agent.address();
    for method in ["eip3009", "permit2"] {
        let honest = Merchant::start(&shop, vec![("/a", paid(method, OnPayment::Settle))]).await;
        let old = buy(&client, &honest, "/a").await;
        let keeper = Merchant::start(&shop, vec![("/b", paid(method, OnPayment::Refuse))]).await;
        let new = refused(client.get(&keeper.url("/b")).await);
        let calls = [&old, &new]
            .iter()
            .flat_map(|p| settlement_calls(shop.token, &p.payload))
            .collect();
        let tx = send(&shop.facilitator, MULTICALL3, batch(calls, true))
            .await
            .unwrap();

        let mut replayed = old.clone();
        replayed.settlement.as_mut().unwrap().transaction = Some(tx);
        let verdict = replayed.verify_settlement(&shop.provider, agent).await;
        assert!(
            matches!(&verdict, Err(Error::Invalid(e)) if e.contains("did not use this authorization")),
            "{method}: the batch verified as the old payment's settlement: {verdict:?}"
        );
        let settled = new
            .find_settlement(&shop.provider, agent)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(settled.transaction, tx, "{method}");
        client.release(new.request_id);
    }
}

/// ERC-6492: a wallet not deployed yet pays; the facilitator deploys it and settles in one
/// batch. Before, nothing is found (no code, nothing paid); after, the settlement verifies.
#[tokio::test(flavor = "multi_thread")]
async fn a_counterfactual_wallets_first_payment_verifies_once_it_deployed_the_wallet() {
    let shop = Shop::open_with(true).await;
    let client = shop.client();
    let agent = shop.agent.address();
    let keeper = Merchant::start(
        &shop,
        vec![("/weather", paid("eip3009", OnPayment::Refuse))],
    )
    .await;
    let payment = refused(client.get(&keeper.url("/weather")).await);
    assert_eq!(
        payment
            .find_settlement(&shop.provider, agent)
            .await
            .unwrap(),
        None
    );
    let tx = settle_on_chain(&shop.facilitator, shop.token, &payment.payload)
        .await
        .unwrap();
    let settled = client.watch(&payment).await.unwrap();
    assert_eq!((settled.transaction, settled.payer), (tx, shop.wallet));
    let mut reported = payment.clone();
    reported.settlement = Some(chaperone_sdk::Settlement {
        success: true,
        transaction: Some(tx),
        payer: Some(shop.wallet),
        network: "eip155:31337".into(),
        error_reason: None,
    });
    assert_eq!(
        reported
            .verify_settlement(&shop.provider, agent)
            .await
            .unwrap(),
        settled
    );
}

//! Item 6: a payment sent is never forgotten, and never made twice on the client's own.

use chaperone_core::U256;
use chaperone_sdk::Error;
use serde_json::json;

use super::{
    PRICE, Shop,
    facilitator::{decode_header, settle_on_chain},
    merchant::{Merchant, OnPayment, paid},
    refused,
};

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_payment_is_kept_and_never_signed_twice() {
    let shop = Shop::open().await;
    let client = shop.client();
    let keeper = Merchant::start(
        &shop,
        vec![("/weather", paid("eip3009", OnPayment::Refuse))],
    )
    .await;
    let url = keeper.url("/weather");

    // The error carries the payment the merchant now holds, and the client keeps it.
    let payment = refused(client.get(&url).await);
    assert_eq!(keeper.payments(), vec![payment.payload.clone()]);
    assert_eq!(client.outstanding(), vec![payment.clone()]);
    assert_eq!(payment.authorization().unwrap().payer(), shop.wallet);
    // It names itself with x402's `payment-identifier`, as the merchant offered.
    let id = &decode_header(&payment.payload)["extensions"]["payment-identifier"]["info"]["id"];
    assert_eq!(
        id,
        &json!(format!(
            "chaperone_{}",
            alloy::hex::encode(payment.request_id)
        ))
    );

    // The application retries the same request: the merchant sees the same authorization
    // again, never a second one.
    assert_eq!(refused(client.get(&url).await), payment);
    let payments = keeper.payments();
    assert_eq!(payments.len(), 2, "{:?}", keeper.seen());
    assert_eq!(
        payments[0], payments[1],
        "a second authorization was signed"
    );

    // The merchant settles it anyway: the client reports it settled, by this authorization.
    let tx = settle_on_chain(&shop.facilitator, shop.token, &payment.payload)
        .await
        .unwrap();
    let settled = client.watch(&payment).await.unwrap();
    assert_eq!((settled.transaction, settled.payer), (tx, shop.wallet));
    assert_eq!(shop.balance(shop.pay_to).await, U256::from(PRICE));

    // Paid, still refused: a retry presents the same (now used) authorization, and when it
    // can no longer be used the chain's answer is that it was paid. Never a second payment.
    assert_eq!(refused(client.get(&url).await), payment);
    shop.travel(600).await;
    let after = client.get(&url).await;
    assert!(
        matches!(&after, Err(Error::PaymentRefused { reason, .. }) if reason.contains(&tx.to_string())),
        "{after:?}"
    );
    assert_eq!(keeper.payments().len(), 3, "{:?}", keeper.seen());
    assert_eq!(shop.balance(shop.pay_to).await, U256::from(PRICE));

    // Only the application can let it go.
    assert_eq!(client.release(payment.request_id), Some(payment.clone()));
    assert!(client.outstanding().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_payment_never_used_is_paid_anew_only_once_it_expired() {
    let shop = Shop::open().await;
    let client = shop.client();
    let agent = shop.agent.address();
    let keeper = Merchant::start(
        &shop,
        vec![("/weather", paid("eip3009", OnPayment::Refuse))],
    )
    .await;
    let url = keeper.url("/weather");
    let first = refused(client.get(&url).await);

    // Chain time passes its validity: the watch says it expired, and the chain that it
    // never moved anything.
    shop.travel(600).await;
    assert!(matches!(client.watch(&first).await, Err(Error::Expired)));
    assert_eq!(
        first.find_settlement(&shop.provider, agent).await.unwrap(),
        None
    );
    assert!(client.outstanding().is_empty());

    // Then, and only then, the same request pays with a new authorization.
    let second = refused(client.get(&url).await);
    assert_ne!(second.nonce, first.nonce);
    assert_eq!(keeper.payments(), vec![first.payload, second.payload]);
}

/// The red team's race: two identical requests sent at once each signed a payment, so the
/// merchant held two usable authorizations. One payment decision runs at a time per request:
/// the second presents the first's payment.
#[tokio::test(flavor = "multi_thread")]
async fn identical_requests_sent_at_once_sign_one_payment() {
    let shop = Shop::open().await;
    let client = shop.client();
    let keeper = Merchant::start(
        &shop,
        vec![("/weather", paid("eip3009", OnPayment::Refuse))],
    )
    .await;
    let url = keeper.url("/weather");
    let (a, b) = tokio::join!(client.get(&url), client.get(&url));
    let (a, b) = (refused(a), refused(b));
    assert_eq!(a, b, "two payments were signed for one request");
    let payments = keeper.payments();
    assert_eq!(payments.len(), 2, "{:?}", keeper.seen());
    assert_eq!(
        payments[0], payments[1],
        "a second authorization was signed"
    );
}

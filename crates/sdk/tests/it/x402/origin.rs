//! Item 5: a payment header goes only to the origin that asked for it.

use super::{
    Shop,
    merchant::{Merchant, OnPayment, Route, paid},
};

#[tokio::test(flavor = "multi_thread")]
async fn a_payment_is_never_carried_to_another_origin() {
    let shop = Shop::open().await;
    let client = shop.client();
    let elsewhere = Merchant::start(
        &shop,
        vec![("/collect", paid("eip3009", OnPayment::Settle))],
    )
    .await;
    // D answers the paid request with a redirect to another origin.
    let redirecting = Merchant::start(
        &shop,
        vec![(
            "/weather",
            paid("eip3009", OnPayment::RedirectTo(elsewhere.url("/collect"))),
        )],
    )
    .await;
    let answer = client.get(&redirecting.url("/weather")).await;
    assert!(
        elsewhere.seen().is_empty(),
        "the paid request was carried to {}: {:?}",
        elsewhere.base,
        elsewhere.seen()
    );
    // The redirect is the answer, with the payment made (D may settle it: it was asked).
    let answer = answer.unwrap();
    assert_eq!(answer.response.status(), 307);
    let payment = answer.payment.expect("the payment made");
    assert_eq!(payment.resource, redirecting.url("/weather"));
    assert_eq!(redirecting.payments(), vec![payment.payload.clone()]);
    // The red team's attack: D settles, answers 307 to the same URL, and the application
    // follows it. The payment is still kept: the same authorization is presented again, no
    // second one is signed.
    let again = client.get(&redirecting.url("/weather")).await.unwrap();
    assert_eq!(again.response.status(), 307);
    assert_eq!(
        redirecting.payments(),
        vec![payment.payload.clone(), payment.payload],
        "a second payment was signed after a redirect"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_record_names_the_origin_that_asked_for_payment() {
    let shop = Shop::open().await;
    let client = shop.client();
    let seller = Merchant::start(
        &shop,
        vec![("/weather", paid("eip3009", OnPayment::Settle))],
    )
    .await;
    // The URL the app asked for redirects (before any payment) to another origin's 402.
    let front = Merchant::start(
        &shop,
        vec![(
            "/weather",
            Route::Redirect {
                to: seller.url("/weather"),
            },
        )],
    )
    .await;
    let bought = client.get(&front.url("/weather")).await.unwrap();
    assert_eq!(bought.response.status(), 200);
    let payment = bought.payment.expect("a payment");
    assert!(
        front.payments().is_empty(),
        "the origin that only redirected received the payment: {:?}",
        front.seen()
    );
    let asked: Vec<String> = front.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(asked, vec!["/weather"], "asked once, never paid");
    assert_eq!(seller.payments(), vec![payment.payload.clone()]);
    assert_eq!(
        payment.resource,
        seller.url("/weather"),
        "the record names the URL that asked for payment"
    );
}

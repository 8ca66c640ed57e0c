//! A merchant controls the bodies it answers with: one that streams without end must not
//! exhaust the agent's memory, before any payment or after one.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

use super::{
    Shop,
    merchant::{Merchant, OnPayment, paid},
};

/// A server answering every request 402 with no `Payment-Required` header and a chunked body
/// that never ends (x402 v1 puts the requirements in the body, so a client reads it).
async fn endless_402() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                // The request's head first (a GET has no body).
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let head = "HTTP/1.1 402 Payment Required\r\ncontent-type: application/json\r\n\
                            transfer-encoding: chunked\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                // 16 KiB a millisecond: endless, yet slow enough that a client without a limit
                // holds about a gigabyte when the test gives up on it.
                let chunk = format!("4000\r\n{}\r\n", " ".repeat(0x4000));
                while socket.write_all(chunk.as_bytes()).await.is_ok() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            });
        }
    });
    format!("http://{address}/weather")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_402_body_is_refused_at_the_limit() {
    let shop = Shop::open().await;
    let client = shop.client();
    let url = endless_402().await;
    // Without a limit the client reads until memory runs out; the guard only ends the test.
    let answer = tokio::time::timeout(Duration::from_secs(60), client.get(&url))
        .await
        .expect("the client read the endless 402 body without a limit");
    let error = answer.expect_err("a 402 without requirements cannot be paid");
    assert!(
        error.to_string().contains("larger than the limit"),
        "unexpected error: {error}"
    );
}

/// The payment authorizations (EIP-3009 / Permit2 payloads) among payment headers.
fn authorizations(headers: &[String]) -> std::collections::BTreeSet<String> {
    use x402_types::util::Base64Bytes;
    headers
        .iter()
        .map(|h| {
            let bytes = Base64Bytes::from(h.as_bytes()).decode().unwrap();
            let header: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            header["payload"].to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paid_200_whose_body_stalls_is_not_paid_again_by_a_request_sent_meanwhile() {
    // The payment was forgotten on the 200's status and the request's lock released before
    // its body was read: an identical request sent while the body stalled signed a second
    // authorization, though the merchant had settled the first and served nothing.
    let shop = Shop::open().await;
    let merchant = Merchant::start(
        &shop,
        vec![("/weather", paid("eip3009", OnPayment::SettleThenStall))],
    )
    .await;
    let client = shop.client();
    let request = |seconds| {
        let mut request = reqwest::Request::new(
            reqwest::Method::GET,
            merchant.url("/weather").parse().unwrap(),
        );
        *request.timeout_mut() = Some(Duration::from_secs(seconds));
        request
    };
    let first = {
        let client = client.clone();
        let request = request(4);
        tokio::spawn(async move { client.send_read(request, 1 << 20).await })
    };
    // The first is reading its stalled body once the merchant has seen its payment.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while merchant.payments().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no payment arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = client.send_read(request(4), 1 << 20).await;
    let first = first.await.unwrap();
    assert!(
        matches!(first, Err(chaperone_sdk::Error::PaymentUnanswered { .. })),
        "a stalled body is no answer: {first:?}"
    );
    // The merchant cannot settle it twice: it refuses it, or stalls again.
    assert!(
        matches!(
            second,
            Err(chaperone_sdk::Error::PaymentUnanswered { .. }
                | chaperone_sdk::Error::PaymentRefused { .. })
        ),
        "{second:?}"
    );
    let sent = merchant.payments();
    assert_eq!(
        authorizations(&sent).len(),
        1,
        "one request, nothing served: one authorization (sent {} times)",
        sent.len()
    );
    assert_eq!(merchant.settled().len(), 1);
    assert_eq!(
        client.outstanding().len(),
        1,
        "the settled, unserved payment stays kept"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn waiters_behind_a_stalled_paid_body_wait_at_most_their_own_timeout() {
    // The request's lock was awaited without a bound: identical requests queued behind a paid
    // body that stalls each waited for every request ahead of them, the k-th about k × its
    // timeout. A waiter now waits for the lock at most its own timeout, then fails carrying
    // the kept payment; nothing signs a second authorization.
    let shop = Shop::open().await;
    let merchant =
        Merchant::start(&shop, vec![("/weather", paid("eip3009", OnPayment::Stall))]).await;
    let client = shop.client();
    const TIMEOUT: Duration = Duration::from_secs(2);
    let request = || {
        let mut request = reqwest::Request::new(
            reqwest::Method::GET,
            merchant.url("/weather").parse().unwrap(),
        );
        *request.timeout_mut() = Some(TIMEOUT);
        request
    };
    let first = {
        let (client, request) = (client.clone(), request());
        tokio::spawn(async move { client.send_read(request, 1 << 20).await })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while merchant.payments().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no payment arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let (client, request) = (client.clone(), request());
            tokio::spawn(async move {
                let started = tokio::time::Instant::now();
                let answer = client.send_read(request, 1 << 20).await;
                (started.elapsed(), answer)
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for waiter in waiters {
        outcomes.push(waiter.await.unwrap());
    }
    assert!(matches!(
        first.await.unwrap(),
        Err(chaperone_sdk::Error::PaymentUnanswered { .. })
    ));
    for (elapsed, answer) in &outcomes {
        // At most its timeout for the lock, and at most its timeout for its own exchange.
        assert!(
            *elapsed < 2 * TIMEOUT + Duration::from_secs(1),
            "a waiter took {elapsed:?}, past twice its timeout of {TIMEOUT:?}"
        );
        match answer {
            Err(chaperone_sdk::Error::PaymentUnanswered { payment, .. }) => {
                assert_eq!(payment.request_id, client.outstanding()[0].request_id);
            }
            other => panic!("a stalled or still-held request is unanswered: {other:?}"),
        }
    }
    let timed_out = outcomes
        .iter()
        .filter(|(_, answer)| {
            answer
                .as_ref()
                .is_err_and(|e| e.to_string().contains("waited"))
        })
        .count();
    assert!(timed_out >= 1, "{outcomes:?}");
    let sent = merchant.payments();
    assert_eq!(
        authorizations(&sent).len(),
        1,
        "one authorization for one request (sent {} times)",
        sent.len()
    );
    assert_eq!(client.outstanding().len(), 1, "the payment stays kept");
}

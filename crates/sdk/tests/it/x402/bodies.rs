//! A merchant controls the bodies it answers with: one that streams without end must not
//! exhaust the agent's memory, before any payment or after one.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

use super::Shop;

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

//! `chaperone_api::Client` (the typed client the SDK and the CLI share), as the red team
//! attacked it: where its bearer token can go, and how it writes path segments.

use chaperone_api::{Client, ClientError, ErrorCode, admin::NewToken};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    sync::mpsc,
};

use crate::{ADMIN, Server};

/// A one-shot HTTP server: answers every request with `answer` and reports each request's head.
async fn raw_server(answer: String) -> (String, mpsc::UnboundedReceiver<String>) {
    let (listener, url) = chaperone_testkit::listen().await;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buffer = vec![0u8; 16 * 1024];
            let n = socket.read(&mut buffer).await.unwrap_or(0);
            let _ = tx.send(String::from_utf8_lossy(&buffer[..n]).into_owned());
            let _ = socket.write_all(answer.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    });
    (url, rx)
}

/// A `{:?}` of a client (a struct holding one, a `tracing` field, a panic message) never
/// prints its bearer token (the red team's finding: `Client` once derived `Debug`).
#[test]
fn a_debug_print_of_the_client_hides_the_bearer_token() {
    let client = Client::new("http://127.0.0.1:1").with_token("chp_SECRET_ADMIN_TOKEN");
    let printed = format!("{client:?}");
    assert!(!printed.contains("SECRET"), "{printed}");
    assert!(printed.contains("127.0.0.1:1"), "{printed}");
}

/// C/D controlling a redirect (a proxy, a compromised DNS name for the server): the token is
/// not carried to another origin (reqwest 0.13 drops `Authorization` when host, port or scheme
/// change). Held.
#[tokio::test]
async fn the_bearer_token_never_follows_a_redirect_to_another_origin() {
    let body = r#"{"tokens":[]}"#;
    let ok = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let (elsewhere, mut seen_elsewhere) = raw_server(ok.clone()).await;
    // `localhost` is the same machine but another origin than 127.0.0.1.
    let other_host = elsewhere.replace("127.0.0.1", "localhost");
    for target in [
        format!("{elsewhere}/v1/admin/tokens"),
        format!("{other_host}/v1/admin/tokens"),
    ] {
        let redirect = format!(
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: {target}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        );
        let (server, mut seen_server) = raw_server(redirect).await;
        let client = Client::new(&server).with_token("chp_SECRET_ADMIN_TOKEN");
        let answer = client.tokens().await;
        assert!(answer.is_ok(), "{answer:?}");
        let first = seen_server.recv().await.unwrap();
        assert!(first.contains("chp_SECRET_ADMIN_TOKEN"), "{first}");
        let second = seen_elsewhere.recv().await.unwrap();
        assert!(
            !second.to_lowercase().contains("authorization"),
            "the token went to {target}: {second}"
        );
    }
}

/// What a token's name does to the path the client calls: a name with `/`, `?`, `#`, `%` or
/// spaces round-trips (percent-encoded). The names `.` and `..` would be dot segments, which
/// every URL parser removes (`revoke_token("..")` would send `DELETE /v1/admin/`), so the
/// server refuses to issue them: a token is always revocable by its name.
#[tokio::test]
async fn every_token_the_server_issues_can_be_revoked_through_the_client() {
    let server = Server::start(0, None, &[]).await;
    let client = Client::new(&server.url).with_token(ADMIN);
    // Lower case: names are stored normalised (trimmed, lower case).
    let awkward = "a/b?c#d e%2f";
    let issued = client
        .issue_token(&NewToken {
            name: awkward.into(),
            role: "auditor".into(),
        })
        .await
        .unwrap();
    assert_eq!(issued.name, awkward);
    assert_eq!(client.revoke_token(awkward).await.unwrap().revoked, 1);
    for name in ["..", "."] {
        match client
            .issue_token(&NewToken {
                name: name.into(),
                role: "auditor".into(),
            })
            .await
        {
            Err(ClientError::Refused {
                status: 400,
                code: ErrorCode::InvalidName,
                ..
            }) => {}
            other => panic!("{name}: {other:?}"),
        }
    }
    let tokens = client.tokens().await.unwrap().tokens;
    assert!(
        tokens.iter().all(|t| t.name != "."
            && t.name != ".."
            && (t.name != awkward || t.revoked_at.is_some())),
        "{tokens:?}"
    );
    server.stop().await;
}

//! Servers inside the test process, each on a port of its own.

use axum::Router;
use tokio::net::TcpListener;

/// A listener on a port of its own on 127.0.0.1, and its base URL (`http://127.0.0.1:PORT`).
/// The port is held from the start, so nothing else can take it.
pub async fn listen() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a port on 127.0.0.1");
    let address = listener
        .local_addr()
        .expect("a bound listener has an address");
    (listener, format!("http://{address}"))
}

/// Serves `router` on a port of its own, in a task of the current runtime; its base URL
/// (`http://127.0.0.1:PORT`, no trailing slash).
pub async fn serve(router: Router) -> String {
    let (listener, url) = listen().await;
    tokio::spawn(async move {
        axum::serve(listener, router)
            .await
            .expect("the test server stopped");
    });
    url
}

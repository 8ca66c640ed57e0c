//! Who may use the gateway over Streamable HTTP. A caller of `/mcp` calls tools and pays from
//! the agent's wallet, so the endpoint asks for a bearer token when one is configured (and
//! the CLI refuses to bind beyond loopback without one), refuses a browser's request from an
//! origin neither on this machine nor listed (a web page the agent's user opens must not drive the gateway), and caps
//! the live sessions (each starts its own upstream servers): a new session past the cap is
//! 429, the sessions already open go on.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};

/// The header a Streamable HTTP request names its session in.
const SESSION_HEADER: &str = "mcp-session-id";

/// The default cap on live sessions.
pub const DEFAULT_MAX_SESSIONS: usize = 32;

/// The `--http` endpoint's access rules.
#[derive(Debug, Clone)]
pub struct HttpAccess {
    /// The bearer token every request must carry (`Authorization: Bearer …`); `None` lets any
    /// caller in (only sensible on loopback, for a single user).
    pub token: Option<String>,
    /// Browser origins allowed besides loopback ones (`scheme://host[:port]`, exact); a request
    /// without `Origin` (an agent, not a browser) passes.
    pub allowed_origins: Vec<String>,
    /// The most live sessions.
    pub max_sessions: usize,
}

impl Default for HttpAccess {
    fn default() -> Self {
        Self {
            token: None,
            allowed_origins: Vec::new(),
            max_sessions: DEFAULT_MAX_SESSIONS,
        }
    }
}

/// The access rules and the count of live sessions.
#[derive(Debug, Clone)]
pub(crate) struct Gatekeeper {
    access: Arc<HttpAccess>,
    live: Arc<AtomicUsize>,
}

/// Counts one live session while it is held.
#[derive(Debug)]
pub(crate) struct SessionSlot(Arc<AtomicUsize>);

impl Drop for SessionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Gatekeeper {
    pub(crate) fn new(access: HttpAccess) -> Self {
        Self {
            access: Arc::new(access),
            live: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A slot for a session being created (the count it holds ends with the session).
    pub(crate) fn slot(&self) -> SessionSlot {
        self.live.fetch_add(1, Ordering::AcqRel);
        SessionSlot(self.live.clone())
    }

    fn refusal(&self, request: &Request) -> Option<Response> {
        if let Some(token) = &self.access.token {
            let given = request
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            // Compared as hashes: the time taken says nothing about the token.
            let fits = given.is_some_and(|given| {
                Sha256::digest(given.as_bytes()) == Sha256::digest(token.as_bytes())
            });
            if !fits {
                let mut response = (
                    StatusCode::UNAUTHORIZED,
                    "a bearer token is required (Authorization: Bearer …)",
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return Some(response);
            }
        }
        if let Some(origin) = request.headers().get(header::ORIGIN) {
            let allowed = origin.to_str().is_ok_and(|o| {
                loopback_origin(o) || self.access.allowed_origins.iter().any(|a| a == o)
            });
            if !allowed {
                return Some(
                    (StatusCode::FORBIDDEN, "this origin may not use the gateway").into_response(),
                );
            }
        }
        let opens_session = request.method() == axum::http::Method::POST
            && !request.headers().contains_key(SESSION_HEADER);
        if opens_session && self.live.load(Ordering::Acquire) >= self.access.max_sessions {
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "the gateway serves at most {} sessions: close one (DELETE) or try later",
                    self.access.max_sessions
                ),
            )
                .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return Some(response);
        }
        None
    }
}

/// `http(s)://localhost`, `127.0.0.1` or `[::1]`, any port: a page on this machine, which
/// could reach the endpoint anyway (rmcp refuses a non-loopback `Host`, so a rebound name
/// never gets here with a loopback origin).
fn loopback_origin(origin: &str) -> bool {
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let host = match rest.strip_prefix("[::1]") {
        Some(port) => return port.is_empty() || port.starts_with(':'),
        None => rest.split(':').next().unwrap_or_default(),
    };
    let port = &rest[host.len()..];
    matches!(host, "localhost" | "127.0.0.1")
        && (port.is_empty() || port[1..].bytes().all(|b| b.is_ascii_digit()))
}

/// The middleware in front of `/mcp`.
pub(crate) async fn guard(
    State(keeper): State<Gatekeeper>,
    request: Request<Body>,
    next: Next,
) -> Response {
    match keeper.refusal(&request) {
        Some(refused) => refused,
        None => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use axum::{Router, routing::post};
    use tower::ServiceExt;

    use super::*;

    fn app(keeper: &Gatekeeper) -> Router {
        Router::new()
            .route("/mcp", post(|| async { "tools called" }))
            .layer(axum::middleware::from_fn_with_state(keeper.clone(), guard))
    }

    async fn status(keeper: &Gatekeeper, headers: &[(&str, &str)]) -> StatusCode {
        let mut request = Request::post("/mcp");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        app(keeper)
            .oneshot(request.body(Body::empty()).expect("request"))
            .await
            .expect("answer")
            .status()
    }

    #[tokio::test]
    async fn without_the_token_nothing_is_called() {
        let keeper = Gatekeeper::new(HttpAccess {
            token: Some("s3cret".into()),
            ..HttpAccess::default()
        });
        assert_eq!(status(&keeper, &[]).await, StatusCode::UNAUTHORIZED);
        let wrong = [("authorization", "Bearer guess")];
        assert_eq!(status(&keeper, &wrong).await, StatusCode::UNAUTHORIZED);
        let right = [("authorization", "Bearer s3cret")];
        assert_eq!(status(&keeper, &right).await, StatusCode::OK);
    }

    #[tokio::test]
    async fn a_web_page_of_another_origin_is_refused() {
        let keeper = Gatekeeper::new(HttpAccess {
            allowed_origins: vec!["http://localhost:3000".into()],
            ..HttpAccess::default()
        });
        let evil = [("origin", "https://evil.example")];
        assert_eq!(status(&keeper, &evil).await, StatusCode::FORBIDDEN);
        let listed = [("origin", "http://localhost:3000")];
        assert_eq!(status(&keeper, &listed).await, StatusCode::OK);
        assert_eq!(
            status(&keeper, &[]).await,
            StatusCode::OK,
            "an agent sends no Origin"
        );
    }

    #[tokio::test]
    async fn sessions_past_the_cap_are_refused_until_one_ends() {
        let keeper = Gatekeeper::new(HttpAccess {
            max_sessions: 2,
            ..HttpAccess::default()
        });
        let first = keeper.slot();
        let _second = keeper.slot();
        assert_eq!(status(&keeper, &[]).await, StatusCode::TOO_MANY_REQUESTS);
        let in_session = [(SESSION_HEADER, "abc")];
        assert_eq!(status(&keeper, &in_session).await, StatusCode::OK);
        drop(first);
        assert_eq!(status(&keeper, &[]).await, StatusCode::OK);
    }
}

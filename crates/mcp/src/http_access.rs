//! Who may use the gateway over Streamable HTTP. A caller of `/mcp` calls tools and pays from
//! the agent's wallet, so the endpoint asks for a bearer token when one is configured (and
//! the CLI refuses to bind beyond loopback without one), refuses a browser's request from an
//! origin neither on this machine nor listed (a web page the agent's user opens must not drive the gateway), and caps
//! the live sessions (each starts its own upstream servers): a new session past the cap is
//! 429, the sessions already open go on. The slot is taken (checked and counted in one step)
//! before the request that opens the session is served, so concurrent ones cannot pass the
//! cap together.

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

    /// The slot for a session being created (the count it holds ends with the session): the
    /// one [`guard`] took for the request that opens it, else (a session rmcp opens some
    /// other way) a new one.
    pub(crate) fn slot(&self) -> SessionSlot {
        if let Ok(Some(reserved)) = RESERVED.try_with(|r| {
            r.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
        }) {
            return reserved;
        }
        self.live.fetch_add(1, Ordering::AcqRel);
        SessionSlot(self.live.clone())
    }

    /// A slot if fewer than the cap are live, counted in the same step as the check:
    /// concurrent new sessions cannot all pass a count read before any was taken.
    fn try_slot(&self) -> Option<SessionSlot> {
        let max = self.access.max_sessions;
        self.live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |live| {
                (live < max).then_some(live + 1)
            })
            .ok()?;
        Some(SessionSlot(self.live.clone()))
    }

    fn too_many(&self) -> Response {
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
        response
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
        None
    }
}

/// A request that opens a session (rmcp's: a POST without a session id).
fn opens_session(request: &Request) -> bool {
    request.method() == axum::http::Method::POST && !request.headers().contains_key(SESSION_HEADER)
}

tokio::task_local! {
    /// The slot [`guard`] took for the request being served, for the session it opens
    /// ([`Gatekeeper::slot`]); dropped, so freed, if it opens none.
    static RESERVED: std::sync::Mutex<Option<SessionSlot>>;
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
    if let Some(refused) = keeper.refusal(&request) {
        return refused;
    }
    if !opens_session(&request) {
        return next.run(request).await;
    }
    // The slot is taken before the session is made (rmcp makes it while serving the request,
    // in this task): a new session past the cap is refused however many come at once.
    let Some(slot) = keeper.try_slot() else {
        return keeper.too_many();
    };
    RESERVED
        .scope(std::sync::Mutex::new(Some(slot)), next.run(request))
        .await
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

    #[tokio::test]
    async fn concurrent_new_sessions_never_pass_the_cap() {
        let keeper = Gatekeeper::new(HttpAccess {
            max_sessions: 2,
            ..HttpAccess::default()
        });
        let sessions = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        // As rmcp does: the session (and its slot) is made after the request was read.
        let opened = sessions.clone();
        let service_keeper = keeper.clone();
        let app = Router::new()
            .route(
                "/mcp",
                post(move || {
                    let (opened, keeper) = (opened.clone(), service_keeper.clone());
                    async move {
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        opened.lock().expect("lock").push(keeper.slot());
                        "session opened"
                    }
                }),
            )
            .layer(axum::middleware::from_fn_with_state(keeper.clone(), guard));
        let initialize = || {
            app.clone()
                .oneshot(Request::post("/mcp").body(Body::empty()).expect("request"))
        };
        let answers = futures_join_all((0..8).map(|_| initialize())).await;
        let opened = answers
            .iter()
            .filter(|a| a.as_ref().is_ok_and(|a| a.status() == StatusCode::OK))
            .count();
        assert_eq!(opened, 2, "sessions opened at once past the cap of 2");
        assert_eq!(sessions.lock().expect("lock").len(), 2);
        assert_eq!(keeper.live.load(Ordering::Acquire), 2);
        sessions.lock().expect("lock").clear();
        assert_eq!(
            keeper.live.load(Ordering::Acquire),
            0,
            "slots end with sessions"
        );
    }

    /// Runs the futures at once (tokio has no join_all; the crate takes no `futures`).
    async fn futures_join_all<F: std::future::Future + Send + 'static>(
        futures: impl Iterator<Item = F>,
    ) -> Vec<F::Output>
    where
        F::Output: Send + 'static,
    {
        let handles: Vec<_> = futures.map(tokio::spawn).collect();
        let mut outputs = Vec::new();
        for handle in handles {
            outputs.push(handle.await.expect("joined"));
        }
        outputs
    }
}

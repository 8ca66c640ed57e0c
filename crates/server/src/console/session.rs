//! Console sessions. Logging in with a bearer token opens a server-side session: a random
//! 256-bit id in an `HttpOnly`, `SameSite=Strict` cookie (`Secure` when served over HTTPS),
//! of which the store keeps only the SHA-256. A session expires after 12 hours, logout deletes
//! it, and revoking its token ends it: a copied cookie opens nothing afterwards. (The cookie
//! once held the bearer token itself, which no logout could take back.)
//!
//! Every form carries a CSRF token derived from the session id (SHA-256 of a tag and the id:
//! a page of another origin can neither read it nor compute it); the login form, which has no
//! session yet, uses a random double-submit cookie.

use axum::{
    Form, Router,
    extract::{FromRequestParts, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use chaperone_api::ErrorCode;
use maud::{Markup, html};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{PageError, page_response, url_encode};
use crate::{
    AppState,
    http::{ApiError, SESSION_COOKIE, cookie, id_hash, session_user},
    token_hash,
};

/// The login form's CSRF cookie (double submit: the form must carry the same value).
const LOGIN_COOKIE: &str = "chaperone_login";
/// How long a login lasts.
const SESSION_SECONDS: u64 = 12 * 3600;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", axum::routing::post(logout))
}

/// The logged-in user of a console page.
pub(crate) struct Session {
    pub(crate) name: String,
    pub(crate) role: String,
    id: String,
    /// Unauthorized spends nobody has acknowledged: while any, every page shows the banner.
    pub(crate) open_alerts: u64,
}

/// Whether the browser reached us over HTTPS. TLS ends at a reverse proxy in front of the
/// service, which says so in `X-Forwarded-Proto` (or RFC 7239 `Forwarded`). A client that
/// fakes it only gets a cookie its plain-HTTP browser will not send back.
fn over_https(headers: &HeaderMap) -> bool {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase)
    };
    header("x-forwarded-proto").is_some_and(|p| p.split(',').next() == Some("https"))
        || header("forwarded").is_some_and(|f| f.contains("proto=https"))
}

/// The `Set-Cookie` value of a session cookie (`max_age` 0 clears it).
fn session_cookie(id: &str, max_age: u64, headers: &HeaderMap) -> String {
    let secure = if over_https(headers) { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

/// Opens a session for a valid `token`: its cookie.
async fn open_session(
    state: &AppState,
    token: &str,
    headers: &HeaderMap,
) -> Result<String, PageError> {
    let mut id = [0u8; 32];
    getrandom::fill(&mut id).map_err(|_| ApiError::internal("no randomness for a session"))?;
    let id = alloy::hex::encode(id);
    let now = state.now();
    state
        .store()
        .create_session(id_hash(&id), token_hash(token), now, now + SESSION_SECONDS)
        .await?;
    Ok(session_cookie(&id, SESSION_SECONDS, headers))
}

impl FromRequestParts<AppState> for Session {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let next = parts
            .uri
            .path_and_query()
            .map_or("/".to_owned(), |p| p.as_str().to_owned());
        let id = cookie(&parts.headers, SESSION_COOKIE)
            .ok_or_else(|| PageError::Login(next.clone()))?
            .to_owned();
        let (role, name) = session_user(state, &id)
            .await?
            .ok_or(PageError::Login(next))?;
        let open_alerts = state.store().open_unauthorized_spends().await?;
        Ok(Self {
            name,
            role,
            id,
            open_alerts,
        })
    }
}

impl Session {
    /// Fails unless the user has one of `roles`.
    /// Who acts, as the record of an administrative action names them.
    pub(crate) fn actor(&self) -> chaperone_store::Actor {
        chaperone_store::Actor::new(&self.name, &self.role)
    }

    pub(crate) fn require(&self, roles: &[&str]) -> Result<(), PageError> {
        if roles.contains(&self.role.as_str()) {
            Ok(())
        } else {
            Err(PageError::Forbidden(format!(
                "this page needs role {}; you are logged in as {} ({})",
                roles.join(" or "),
                self.name,
                self.role
            )))
        }
    }

    /// The CSRF token every form of this session carries.
    pub(crate) fn csrf(&self) -> String {
        csrf_token(&self.id)
    }

    /// Fails unless `given` is this session's CSRF token.
    pub(crate) fn check_csrf(&self, given: &str) -> Result<(), PageError> {
        if same(&self.csrf(), given) {
            Ok(())
        } else {
            Err(PageError::Failed(ApiError::new(
                ErrorCode::Csrf,
                "the form's CSRF token is missing or wrong: reload the page and submit again",
            )))
        }
    }

    /// The hidden form field with the CSRF token.
    pub(crate) fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.csrf()); }
    }
}

/// Whether two tokens are equal, in time independent of where they differ.
fn same(expected: &str, given: &str) -> bool {
    expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

fn csrf_token(session: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(b"chaperone/console/csrf/v1\0");
    hash.update(session.as_bytes());
    alloy::hex::encode(hash.finalize())
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
    failed: Option<String>,
}

/// Only same-site paths are followed after login (no open redirect: browsers read `//host`
/// and `/\host` as another host).
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control) =>
        {
            path
        }
        _ => "/",
    }
}

async fn login_page(Query(query): Query<LoginQuery>) -> Response {
    let next = safe_next(query.next.as_deref()).to_owned();
    // The login form has no session to derive its CSRF token from: a random one goes into a
    // cookie and into the form, and the POST must bring both (another origin can set neither).
    let mut nonce = [0u8; 32];
    if getrandom::fill(&mut nonce).is_err() {
        return PageError::Failed(ApiError::internal("no randomness for the login form"))
            .into_response();
    }
    let csrf = alloy::hex::encode(nonce);
    let mut response = page_response(
        StatusCode::OK,
        "Log in",
        None,
        html! {
            @if query.failed.is_some() { p.error { "That token is not valid." } }
            p { "Log in with your bearer token (" code { "chaperone up" } " prints an admin token)." }
            form.login method="post" action="/login" {
                input type="hidden" name="next" value=(next);
                input type="hidden" name="csrf" value=(csrf);
                label { "Token " input type="password" name="token" autocomplete="off" required; }
                button type="submit" { "Log in" }
            }
        },
    );
    let cookie =
        format!("{LOGIN_COOKIE}={csrf}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=3600");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
    next: Option<String>,
    #[serde(default)]
    csrf: String,
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref()).to_owned();
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same(expected, &form.csrf) {
        return PageError::Failed(ApiError::new(
            ErrorCode::Csrf,
            "the login form's CSRF token is missing or wrong: open the login page and try again",
        ))
        .into_response();
    }
    let known = state.store().api_token(token_hash(&form.token)).await;
    match known {
        Ok(Some((role, name))) => {
            tracing::info!(user = %name, %role, "console login");
            match open_session(&state, &form.token, &headers).await {
                Ok(cookie) => ([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response(),
                Err(e) => e.into_response(),
            }
        }
        Ok(None) => {
            tracing::info!("console login with an unknown token");
            Redirect::to(&format!("/login?failed=1&next={}", url_encode(&next))).into_response()
        }
        Err(e) => PageError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// Ends the session on the server (a copy of the cookie opens nothing afterwards) and clears
/// the browser's.
async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: Session,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    session.check_csrf(&form.csrf)?;
    state.store().delete_session(id_hash(&session.id)).await?;
    tracing::info!(user = %session.name, "console logout");
    let cookie = session_cookie("", 0, &headers);
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response())
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn login_follows_only_same_site_paths() {
        assert_eq!(
            safe_next(Some("/decisions?outcome=denied")),
            "/decisions?outcome=denied"
        );
        for evil in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "evil",
            "/\n",
        ] {
            assert_eq!(safe_next(Some(evil)), "/", "{evil}");
        }
        assert_eq!(safe_next(None), "/");
    }
}

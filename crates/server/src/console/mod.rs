//! The compliance console: server-rendered HTML at `/`, for approvers and compliance officers.
//!
//! No front-end build and no script: maud templates compiled into the binary, plain forms, one
//! stylesheet. A login form takes a bearer token and keeps it in an `HttpOnly`,
//! `SameSite=Strict` cookie; every page checks it against the same roles as the API. Every
//! form carries a CSRF token derived from the session (SHA-256 of a tag and the session token:
//! a page of another origin can neither read it nor compute it), and POSTs without it are
//! refused. Pages are sent with `Cache-Control: no-store`, a CSP allowing no script, and
//! `X-Frame-Options: DENY` (an approve button must not be framed).

mod agents;
mod approvals;
mod audit;
mod decisions;
mod policies;
mod spend;
mod webhooks;

use std::{collections::HashMap, fmt::Write as _};

use axum::{
    Form, Router,
    extract::{FromRequestParts, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use chaperone_core::{
    policy::{Reason, Token},
    readable::{TokenUnits, iso8601, reason_text},
};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::{AppState, api::ApiError, token_hash};

/// The session cookie: the bearer token itself (the store keeps only its hash).
pub(crate) const SESSION_COOKIE: &str = "chaperone_session";
/// The login form's CSRF cookie (double submit: the form must carry the same value).
const LOGIN_COOKIE: &str = "chaperone_login";
/// How long a login lasts.
const SESSION_SECONDS: u64 = 12 * 3600;

const STYLE: &str = include_str!("style.css");

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/approvals") }))
        .route("/login", get(login_page).post(login))
        .route("/logout", axum::routing::post(logout))
        .route("/console.css", get(stylesheet))
        .merge(agents::router())
        .merge(approvals::router())
        .merge(decisions::router())
        .merge(spend::router())
        .merge(audit::router())
        .merge(policies::router())
        .merge(webhooks::router())
}

/// The logged-in user of a console page.
pub(crate) struct Session {
    pub(crate) name: String,
    pub(crate) role: String,
    token: String,
}

/// The session token from the request's cookies, if any.
pub(crate) fn session_token(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, SESSION_COOKIE)
}

/// A console page's failure: no session (to the login page), a missing role, or an error.
pub(crate) enum PageError {
    Login(String),
    Forbidden(String),
    Failed(ApiError),
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        Self::Failed(e)
    }
}

impl From<chaperone_store::Error> for PageError {
    fn from(e: chaperone_store::Error) -> Self {
        Self::Failed(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            Self::Login(next) => {
                Redirect::to(&format!("/login?next={}", url_encode(&next))).into_response()
            }
            Self::Forbidden(message) => page_response(
                StatusCode::FORBIDDEN,
                "Not allowed",
                None,
                html! { p.error { (message) } },
            ),
            Self::Failed(error) => {
                let status = error.status();
                let message = error.message().to_owned();
                page_response(status, "Error", None, html! { p.error { (message) } })
            }
        }
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let next = parts
            .uri
            .path_and_query()
            .map_or("/".to_owned(), |p| p.as_str().to_owned());
        let token = session_token(&parts.headers)
            .ok_or_else(|| PageError::Login(next.clone()))?
            .to_owned();
        let (role, name) = state
            .store()
            .api_token(token_hash(&token))
            .await?
            .ok_or(PageError::Login(next))?;
        Ok(Self { name, role, token })
    }
}

impl Session {
    /// Fails unless the user has one of `roles`.
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
        csrf_token(&self.token)
    }

    /// Fails unless `given` is this session's CSRF token.
    pub(crate) fn check_csrf(&self, given: &str) -> Result<(), PageError> {
        if same(&self.csrf(), given) {
            Ok(())
        } else {
            Err(PageError::Failed(ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf",
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

/// Percent-encodes a query value.
pub(crate) fn url_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~/".contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// The navigation: the pages this role may open.
fn nav(session: &Session) -> Markup {
    let pages: &[(&str, &str, &[&str])] = &[
        ("/approvals", "Approvals", &["admin", "approver"]),
        ("/decisions", "Decisions", &["admin", "auditor"]),
        ("/spend", "Spend", &["admin", "auditor"]),
        ("/audit", "Audit log", &["admin", "auditor"]),
        ("/policies", "Policies", &["admin", "approver", "auditor"]),
        ("/agents", "Agents", &["admin", "auditor"]),
        ("/webhooks", "Webhooks", &["admin"]),
    ];
    html! {
        nav {
            strong { "Chaperone" }
            @for (href, label, roles) in pages {
                @if roles.contains(&session.role.as_str()) { a href=(href) { (label) } }
            }
            span.who { (session.name) " (" (session.role) ")" }
            form method="post" action="/logout" {
                (session.csrf_field())
                button type="submit" { "Log out" }
            }
        }
    }
}

fn page_response(
    status: StatusCode,
    title: &str,
    session: Option<&Session>,
    body: Markup,
) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Chaperone" }
                link rel="stylesheet" href="/console.css";
            }
            body {
                @if let Some(session) = session { (nav(session)) }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    let mut response = (status, markup.into_string()).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A console page for `session`.
pub(crate) fn page(title: &str, session: &Session, body: Markup) -> Response {
    page_response(StatusCode::OK, title, Some(session), body)
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLE,
    )
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

/// A cookie's value from the request.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
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
            StatusCode::FORBIDDEN,
            "csrf",
            "the login form's CSRF token is missing or wrong: open the login page and try again",
        ))
        .into_response();
    }
    let known = state.store().api_token(token_hash(&form.token)).await;
    match known {
        Ok(Some((role, name))) => {
            tracing::info!(user = %name, %role, "console login");
            // A token that cannot be a cookie value (RFC 6265's cookie-octet) cannot log in.
            if !form
                .token
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b";,\"\\".contains(&b))
            {
                return Redirect::to("/login?failed=1").into_response();
            }
            let cookie = format!(
                "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}",
                form.token
            );
            ([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response()
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

async fn logout(session: Session, Form(form): Form<CsrfForm>) -> Result<Response, PageError> {
    session.check_csrf(&form.csrf)?;
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response())
}

/// The most characters of a token's symbol shown (its deployer chose it).
const SYMBOL_MAX_CHARS: usize = 32;

/// Token symbols and decimals for the tokens in `tokens`, read from the chain once each.
///
/// Every reader of token units (console pages, compliance API, notifications) goes through
/// here, so this is where a symbol read from a contract is made [`printable`].
pub(crate) async fn units_of(state: &AppState, tokens: Vec<Token>) -> HashMap<Token, TokenUnits> {
    let mut out = HashMap::new();
    for token in tokens {
        if let std::collections::hash_map::Entry::Vacant(slot) = out.entry(token) {
            let mut units = state.token_units(token).await;
            units.symbol = printable(&units.symbol, SYMBOL_MAX_CHARS);
            slot.insert(units);
        }
    }
    out
}

/// `text` read from a contract (a token's `symbol()` or `name()`), cut to `max_chars`
/// characters (with "…") and with every character that would move or hide text (controls
/// and line breaks, bidirectional overrides, zero-width characters) shown as U+FFFD.
///
/// This is not escaping: each place the text lands still escapes it for its own syntax
/// (maud for HTML, [`crate::webhooks`] for Slack, the CSV writer). It keeps a symbol from
/// forging a line of its own, reordering the sentence around it, or filling the page.
pub(crate) fn printable(text: &str, max_chars: usize) -> String {
    let hides_text = |c: char| {
        c.is_control()
            || matches!(c, '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{FEFF}'
                | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}')
    };
    let text = text.trim();
    let mut out: String = text
        .chars()
        .take(max_chars)
        .map(|c| if hides_text(c) { '\u{FFFD}' } else { c })
        .collect();
    if text.chars().nth(max_chars).is_some() {
        out.push('…');
    }
    out
}

/// The token a reason names, if any.
fn reason_token(reason: &Reason) -> Option<Token> {
    match reason {
        Reason::TokenNotAllowed { token }
        | Reason::PerTransactionCap { token, .. }
        | Reason::WindowCap { token, .. }
        | Reason::NeedsHumanApproval { token, .. } => Some(*token),
        _ => None,
    }
}

/// The tokens reasons name.
pub(crate) fn reason_tokens(reasons: &[Reason]) -> Vec<Token> {
    reasons.iter().filter_map(reason_token).collect()
}

/// A reason in words, then the address of the ERC-20 token it names: the words carry only
/// the token's symbol, which its deployer chose (any token can call itself "USDC").
pub(crate) fn reason_line(reason: &Reason, units: &HashMap<Token, TokenUnits>) -> Markup {
    html! {
        (reason_words(reason, units))
        @if let Some(token @ Token::Erc20(_)) = reason_token(reason) {
            " " small.token {
                "(" (units.get(&token).map_or("", |u| u.symbol.as_str())) " is " code { (token) } ")"
            }
        }
    }
}

/// A reason in words, with the units looked up.
pub(crate) fn reason_words(reason: &Reason, units: &HashMap<Token, TokenUnits>) -> String {
    reason_text(reason, |token| {
        units.get(token).cloned().unwrap_or_else(TokenUnits::native)
    })
}

/// Each of `reasons` in words, the units of their tokens looked up (nothing for none).
pub(crate) async fn reasons_in_words(state: &AppState, reasons: &[Reason]) -> Vec<String> {
    let units = units_of(state, reason_tokens(reasons)).await;
    reasons.iter().map(|r| reason_words(r, &units)).collect()
}

/// A time as ISO 8601 UTC in a `<time>` element.
pub(crate) fn when(unix: u64) -> Markup {
    let text = iso8601(unix);
    html! { time datetime=(text) { (text) } }
}

/// An address or hash, shortened for the eye with the full one as its title.
pub(crate) fn short(value: &impl std::fmt::Display) -> Markup {
    let full = value.to_string();
    html! { code title=(full) { (full[..8]) "…" (full[full.len() - 6..]) } }
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

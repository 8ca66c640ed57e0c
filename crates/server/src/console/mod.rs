//! The compliance console: server-rendered HTML at `/`, for approvers and compliance officers.
//!
//! No front-end build and no script: maud templates compiled into the binary, plain forms, one
//! stylesheet. A login form takes a bearer token and opens a server-side session (session.rs);
//! every page checks the session's token against the same roles as the API, and every form
//! carries the session's CSRF token. Pages are sent with `Cache-Control: no-store`, a CSP
//! allowing no script, and `X-Frame-Options: DENY` (an approve button must not be framed).

mod agents;
mod approvals;
mod audit;
mod decisions;
mod policies;
mod session;
mod spend;
mod webhooks;

use std::{collections::HashMap, fmt::Write as _};

use axum::{
    Router,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use chaperone_core::{
    policy::{Reason, Token},
    readable::{TokenUnits, iso8601, reason_text},
};
use maud::{DOCTYPE, Markup, html};

pub(crate) use session::{Session, cookie_user};

use crate::{AppState, api::ApiError};

const STYLE: &str = include_str!("style.css");

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/approvals") }))
        .route("/console.css", get(stylesheet))
        .merge(session::router())
        .merge(agents::router())
        .merge(approvals::router())
        .merge(decisions::router())
        .merge(spend::router())
        .merge(audit::router())
        .merge(policies::router())
        .merge(webhooks::router())
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

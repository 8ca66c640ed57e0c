//! The compliance console: server-rendered HTML at `/`, for approvers and compliance officers.
//!
//! No front-end build and no script: maud templates compiled into the binary, plain forms, one
//! stylesheet. A login form takes a bearer token and opens a server-side session (session.rs);
//! every page checks the session's token against the same roles as the API, and every form
//! carries the session's CSRF token. Pages are sent with `Cache-Control: no-store`, a CSP
//! allowing no script, and `X-Frame-Options: DENY` (an approve button must not be framed).

mod actions;
mod agents;
mod alerts;
mod approvals;
mod audit;
mod chart;
mod decisions;
mod disclosed;
mod payments;
mod people;
mod policies;
mod session;
mod spend;
mod tool_decisions;
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
    readable::{TokenUnits, iso8601},
};
use maud::{DOCTYPE, Markup, html};

pub(crate) use session::Session;

use crate::{AppState, http::ApiError};

const STYLE: &str = include_str!("style.css");

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/approvals") }))
        .route("/console.css", get(stylesheet))
        .merge(session::router())
        .merge(agents::router())
        .merge(approvals::router())
        .merge(decisions::router())
        .merge(tool_decisions::router())
        .merge(payments::router())
        .merge(spend::router())
        .merge(audit::router())
        .merge(policies::router())
        .merge(webhooks::router())
        .merge(alerts::router())
        .merge(people::router())
        .merge(actions::router())
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

/// A filter page's link to its API listing: `path` with `format`, then each filter the officer
/// filled in (blank ones are left out, so the export lists what the page shows).
pub(crate) fn export_url(path: &str, format: &str, filters: &[(&str, &str)]) -> String {
    let mut url = format!(
        "{path}{}format={format}",
        if path.contains('?') { '&' } else { '?' }
    );
    for (name, value) in filters {
        if !value.trim().is_empty() {
            let _ = write!(url, "&{name}={}", url_encode(value.trim()));
        }
    }
    url
}

/// A filter page's status: 400 when a filter was refused (the page still shows why), else 200.
pub(crate) fn filter_status(problem: &Option<String>) -> StatusCode {
    if problem.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
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
        ("/payments", "Payments", &["admin", "auditor"]),
        ("/spend", "Spend", &["admin", "auditor"]),
        ("/audit", "Audit log", &["admin", "auditor"]),
        ("/policies", "Policies", &["admin", "approver", "auditor"]),
        ("/agents", "Agents", &["admin", "auditor"]),
        ("/webhooks", "Webhooks", &["admin"]),
        ("/alerts", "Alerts", &["admin", "auditor"]),
        ("/people", "People", &["admin"]),
        ("/actions", "Actions", &["admin", "auditor"]),
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
                @if let Some(session) = session { (nav(session)) (alerts::banner(session)) }
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

/// A reason in words, then the address of the ERC-20 token it names: the words carry only
/// the token's symbol, which its deployer chose (any token can call itself "USDC").
pub(crate) fn reason_line(reason: &Reason, units: &HashMap<Token, TokenUnits>) -> Markup {
    html! {
        (crate::words::reason_words(reason, units))
        @if let Some(token @ Token::Erc20(_)) = crate::words::reason_token(reason) {
            " " small.token {
                "(" (units.get(&token).map_or("", |u| u.symbol.as_str())) " is " code { (token) } ")"
            }
        }
    }
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

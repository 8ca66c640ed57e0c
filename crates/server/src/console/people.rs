//! People (admin only): the named bearer tokens — create one (shown this once), list them with
//! who created each, revoke one. Every change is an administrative action on the record.

use axum::{
    Form, Router,
    extract::State,
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use maud::{Markup, html};
use serde::Deserialize;

use super::{PageError, Session, page, when};
use crate::{AppState, http::issue_token};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/people", get(people).post(create))
        .route("/people/revoke", post(revoke))
}

const ROLES: &[&str] = &["admin"];

/// The page, with `issued` (name, role, token) shown once after a creation.
async fn render(
    state: &AppState,
    session: &Session,
    issued: Option<(String, String, String)>,
) -> Result<Response, PageError> {
    let tokens = state.store().api_tokens().await?;
    let body: Markup = html! {
        p { "Each person or desk gets a named token with one role: " strong { "admin" } " (everything), "
            strong { "approver" } " (the approvals inbox), " strong { "auditor" } " (read only). "
            "Verdicts and changes are recorded with the token's name." }
        @if let Some((name, role, token)) = &issued {
            section.issued role="status" {
                h2 { "Token for " (name) " (" (role) ")" }
                p { "Copy it now: it is shown this once, and only its hash is kept." }
                pre.token { code #issued-token { (token) } }
            }
        }
        form.create method="post" action="/people" {
            (session.csrf_field())
            label { "Name " input type="text" name="name" required maxlength="64" placeholder="treasury-desk"; }
            label { "Role "
                select name="role" {
                    option value="approver" { "approver" }
                    option value="auditor" { "auditor" }
                    option value="admin" { "admin" }
                }
            }
            button type="submit" { "Create token" }
        }
        table.people {
            thead { tr { th { "Name" } th { "Role" } th { "Created" } th { "Created by" } th { "Status" } th {} } }
            tbody {
                @for token in &tokens {
                    tr.(if token.revoked_at.is_some() { "revoked" } else { "live" }) {
                        td.name { (token.name) }
                        td { (token.role) }
                        td { (when(token.created_at)) }
                        td { (token.created_by.as_deref().unwrap_or("configuration")) }
                        td {
                            @match token.revoked_at {
                                Some(at) => { "revoked " (when(at)) }
                                None => { "live" }
                            }
                        }
                        td {
                            @if token.revoked_at.is_none() {
                                form method="post" action="/people/revoke" {
                                    (session.csrf_field())
                                    input type="hidden" name="name" value=(token.name);
                                    button type="submit" class="deny" { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page("People", session, body))
}

async fn people(State(state): State<AppState>, session: Session) -> Result<Response, PageError> {
    session.require(ROLES)?;
    render(&state, &session, None).await
}

#[derive(Deserialize)]
struct CreateForm {
    #[serde(default)]
    csrf: String,
    name: String,
    role: String,
}

async fn create(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<CreateForm>,
) -> Result<Response, PageError> {
    session.require(ROLES)?;
    session.check_csrf(&form.csrf)?;
    let (name, token) = issue_token(&state, &session.actor(), &form.name, &form.role).await?;
    // Answered with the page itself, not a redirect: the token must not travel in a URL or be
    // kept anywhere to show it after one.
    render(&state, &session, Some((name, form.role.clone(), token))).await
}

#[derive(Deserialize)]
struct RevokeForm {
    #[serde(default)]
    csrf: String,
    name: String,
}

async fn revoke(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<RevokeForm>,
) -> Result<Response, PageError> {
    session.require(ROLES)?;
    session.check_csrf(&form.csrf)?;
    let revoked = state
        .store()
        .revoke_api_tokens_by(&form.name, &session.actor(), state.now())
        .await?;
    if revoked == 0 {
        return Err(crate::http::ApiError::not_found(format!(
            "no live token is named `{}`",
            form.name
        ))
        .into());
    }
    tracing::info!(name = %form.name, by = %session.name, "API token revoked in the console");
    // Revoking one's own token ends this session too: the redirect then asks for a login.
    Ok(Redirect::to("/people").into_response())
}

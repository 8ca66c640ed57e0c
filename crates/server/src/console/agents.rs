//! Who may append to the log: the registered agents with their labels and last activity,
//! registered and unregistered by an admin.

use axum::{
    Form, Router,
    extract::State,
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use chaperone_api::ErrorCode;
use chaperone_core::Address;
use maud::html;
use serde::Deserialize;

use super::{PageError, Session, page, when};
use crate::{
    AppState,
    http::{ApiError, agent_label},
};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/agents", get(agents).post(register))
        .route("/agents/unregister", post(unregister))
}

async fn agents(State(state): State<AppState>, session: Session) -> Result<Response, PageError> {
    session.require(&["admin", "auditor"])?;
    let registered = state.store().registered_agents().await?;
    let admin = session.role == "admin";
    Ok(page(
        "Agents",
        &session,
        html! {
            p { "Only these agents may append to the log; anyone else's records are refused. A wallet's agent is registered with its wallet." }
            @if admin {
                form.register method="post" action="/agents" {
                    (session.csrf_field())
                    label { "Agent address " input type="text" name="address" required pattern="0x[0-9a-fA-F]{40}" size="44" placeholder="0x…"; }
                    label { " Label " input type="text" name="label" maxlength="64" placeholder="support bot"; }
                    button type="submit" { "Register" }
                }
            }
            table {
                thead { tr { th { "Agent" } th { "Label" } th { "Last record" } th { "Last co-sign request" } th { "Registered" } th { "By" } @if admin { th {} } } }
                tbody {
                    @for agent in &registered {
                        tr {
                            td { a href=(format!("/audit/agents/{}", agent.address)) { code { (agent.address) } } }
                            td.label { (agent.label) }
                            td { @match agent.last_record_ms { Some(ms) => (when(ms / 1000)), None => span.empty { "none yet" } } }
                            td { @match agent.last_decision_at { Some(at) => (when(at)), None => span.empty { "never" } } }
                            td { (when(agent.registered_at)) }
                            td { (agent.registered_by) }
                            @if admin {
                                td {
                                    form method="post" action="/agents/unregister" {
                                        (session.csrf_field())
                                        input type="hidden" name="address" value=(agent.address);
                                        button type="submit" class="deny" { "Unregister" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

#[derive(Deserialize)]
struct AgentForm {
    #[serde(default)]
    csrf: String,
    address: String,
    /// Only on the register form; empty when left blank.
    #[serde(default)]
    label: String,
}

impl AgentForm {
    fn address(&self) -> Result<Address, PageError> {
        self.address.trim().parse().map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                "an agent is a 0x address of 40 hex digits",
            )
            .into()
        })
    }
}

async fn register(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<AgentForm>,
) -> Result<Response, PageError> {
    session.require(&["admin"])?;
    session.check_csrf(&form.csrf)?;
    let agent = form.address()?;
    let label = match form.label.trim() {
        "" => None,
        label => Some(agent_label(label)?),
    };
    let new = state
        .store()
        .register_agent_by(agent, label, &session.actor(), state.now())
        .await?;
    tracing::info!(%agent, by = %session.name, new, "agent registered in the console");
    Ok(Redirect::to("/agents").into_response())
}

async fn unregister(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<AgentForm>,
) -> Result<Response, PageError> {
    session.require(&["admin"])?;
    session.check_csrf(&form.csrf)?;
    let agent = form.address()?;
    state
        .store()
        .unregister_agent_by(agent, &session.actor(), state.now())
        .await?;
    tracing::info!(%agent, by = %session.name, "agent unregistered in the console");
    Ok(Redirect::to("/agents").into_response())
}

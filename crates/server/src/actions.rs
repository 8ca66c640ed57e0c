//! `GET /v1/admin/actions`: who did what, and when — every verdict, policy change, token change
//! and agent registration, newest first, each with the leaf hash of its record in the log (the
//! anchorer logs them as records of the policy service, model [`ADMIN_ACTION_MODEL`]), so an
//! auditor can fetch its inclusion proof and open its input commitment with `content` and
//! `input_salt`.
//!
//! [`ADMIN_ACTION_MODEL`]: crate::ADMIN_ACTION_MODEL

use axum::{
    extract::{Query, State, rejection::QueryRejection},
    response::Response,
};
use chaperone_api::{Page, admin::AdminActionRow};
use chaperone_store::AdminAction;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    http::{ApiError, Caller},
    openapi::error_answers,
    paging::{Paging, keyed_page, row},
};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(actions))
}

const ACTION_COLUMNS: &[&str] = &[
    "id",
    "at",
    "at_iso",
    "actor",
    "actor_role",
    "action",
    "subject",
    "leaf_hash",
    "input_salt",
    "content",
];

/// An action as the API shows it.
pub(crate) fn action_row(action: &AdminAction, input_salt: Option<String>) -> AdminActionRow {
    AdminActionRow {
        id: action.id,
        at: action.at,
        at_iso: chaperone_core::readable::iso8601(action.at),
        actor: action.actor.name.clone(),
        actor_role: action.actor.role.clone(),
        action: action.action.clone(),
        subject: action.subject.clone(),
        content: action.content(),
        leaf_hash: action.leaf_hash,
        input_salt,
    }
}

error_answers!(ActionErrors: InvalidQuery);

/// Administrative actions on the record, newest first.
#[utoipa::path(
    get,
    path = "/v1/admin/actions",
    description = "Roles: auditor, admin.",
    security(("bearer" = [])),
    params(Paging),
    responses(
        (status = 200, description = "a page of actions", content(
            (Page<AdminActionRow> = "application/json"),
            (AdminActionRow = "application/x-ndjson"),
            (String = "text/csv"),
        )),
        ActionErrors,
    )
)]
async fn actions(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(&["auditor", "admin"])?;
    keyed_page(
        query,
        ACTION_COLUMNS,
        |before: Option<u64>, limit| state.store().admin_actions(before, limit),
        |a| a.id.to_string(),
        |a| row(action_row(&a, a.input_salt.clone())),
    )
    .await
}

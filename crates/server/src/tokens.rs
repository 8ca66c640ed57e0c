//! `/v1/admin/tokens`: an admin issues bearer tokens (shown once, stored as SHA-256 hashes)
//! and revokes them; a revoked token stops working at once, for the API and for every console
//! session opened with it. Each issue and revocation is an administrative action on the record
//! (who, when), logged like decisions.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::IntoResponse,
};
use chaperone_api::admin::{IssuedToken, NewToken, Revoked, TokenView, Tokens};

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    http::{ApiError, ApiJson, Caller, issue_token},
    openapi::error_answers,
};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, issue))
        .routes(routes!(revoke))
}

error_answers!(IssueErrors: InvalidRole, InvalidName, NameTaken);

/// Issue a bearer token (shown once; only its hash is stored).
#[utoipa::path(
    post,
    path = "/v1/admin/tokens",
    description = "Roles: admin.",
    security(("bearer" = [])),
    request_body = NewToken,
    responses((status = 201, description = "the token, shown this once", body = IssuedToken), IssueErrors)
)]
async fn issue(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewToken>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(&["admin"])?;
    let (name, token) = issue_token(&state, &caller.actor(), &body.name, &body.role).await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedToken {
            name,
            role: body.role,
            token,
        }),
    ))
}

/// Every token's name, role and dates (never the tokens).
#[utoipa::path(
    get,
    path = "/v1/admin/tokens",
    description = "Roles: admin.",
    security(("bearer" = [])),
    responses((status = 200, description = "every token, oldest first", body = Tokens))
)]
async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Tokens>, ApiError> {
    caller.require(&["admin"])?;
    let tokens = state
        .store()
        .api_tokens()
        .await?
        .into_iter()
        .map(|t| TokenView {
            name: t.name,
            role: t.role,
            created_at: t.created_at,
            revoked_at: t.revoked_at,
            created_by: t.created_by,
        })
        .collect();
    Ok(Json(Tokens { tokens }))
}

error_answers!(RevokeErrors: NotFound);

/// Revoke the live token of this name: the API and its console sessions stop accepting it at
/// once.
#[utoipa::path(
    delete,
    path = "/v1/admin/tokens/{name}",
    description = "Roles: admin.",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "the token's name")),
    responses((status = 200, description = "revoked", body = Revoked), RevokeErrors)
)]
async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Revoked>, ApiError> {
    caller.require(&["admin"])?;
    let revoked = state
        .store()
        .revoke_api_tokens_by(&name, &caller.actor(), state.now())
        .await?;
    if revoked == 0 {
        return Err(ApiError::not_found(format!(
            "no live token is named `{name}`"
        )));
    }
    tracing::info!(%name, revoked, by = %caller.name, "API token revoked");
    Ok(Json(Revoked { name, revoked }))
}

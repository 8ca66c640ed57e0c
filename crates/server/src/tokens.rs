//! `/v1/admin/tokens`: an admin issues bearer tokens (shown once, stored as SHA-256 hashes)
//! and revokes them; a revoked token stops working at once, for the API and for every console
//! session opened with it.

use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    response::IntoResponse,
    routing::{delete, get},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    AppState,
    admin::Caller,
    api::{ApiError, ApiJson},
    token_hash,
};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/tokens", get(list).post(issue))
        .route("/v1/admin/tokens/{name}", delete(revoke))
}

/// A token to issue.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewToken {
    /// Who will hold it (1 to 64 printable characters), recorded with what they do.
    name: String,
    /// `admin`, `approver` or `auditor`.
    role: String,
}

/// A token issued: the only time the token itself is shown.
#[derive(Serialize, ToSchema)]
pub(crate) struct IssuedToken {
    name: String,
    role: String,
    token: String,
}

/// A token as listed (never the token).
#[derive(Serialize, ToSchema)]
pub(crate) struct TokenView {
    name: String,
    role: String,
    /// Unix seconds.
    created_at: u64,
    /// Unix seconds, if revoked.
    revoked_at: Option<u64>,
}

/// Every token, oldest first.
#[derive(Serialize, ToSchema)]
pub(crate) struct Tokens {
    tokens: Vec<TokenView>,
}

/// Tokens revoked.
#[derive(Serialize, ToSchema)]
pub(crate) struct Revoked {
    name: String,
    revoked: u64,
}

async fn issue(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewToken>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(&["admin"])?;
    if !["admin", "approver", "auditor"].contains(&body.role.as_str()) {
        return Err(ApiError::bad_request(
            "invalid_role",
            "role is one of admin, approver, auditor",
        ));
    }
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_name",
            "a name is 1 to 64 printable characters",
        ));
    }
    // One live token per name: a revocation by name then names exactly whom it stops.
    if state.store().api_token_named(name).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "name_taken",
            format!("a live token is named `{name}`: revoke it first, or choose another name"),
        ));
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|_| ApiError::internal("no randomness for a token"))?;
    let token = format!("chp_{}", alloy::hex::encode(secret));
    state
        .store()
        .add_api_token(token_hash(&token), name, &body.role, state.now())
        .await?;
    tracing::info!(name, role = %body.role, by = %caller.name, "API token issued");
    Ok((
        StatusCode::CREATED,
        Json(IssuedToken {
            name: name.to_owned(),
            role: body.role,
            token,
        }),
    ))
}

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
        })
        .collect();
    Ok(Json(Tokens { tokens }))
}

async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Revoked>, ApiError> {
    caller.require(&["admin"])?;
    let revoked = state.store().revoke_api_tokens(&name, state.now()).await?;
    if revoked == 0 {
        return Err(ApiError::not_found(format!(
            "no live token is named `{name}`"
        )));
    }
    tracing::info!(%name, revoked, by = %caller.name, "API token revoked");
    Ok(Json(Revoked { name, revoked }))
}

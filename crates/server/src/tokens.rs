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
use chaperone_api::{
    ErrorCode,
    admin::{IssuedToken, NewToken, Revoked, TokenView, Tokens},
};

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

async fn issue(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewToken>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(&["admin"])?;
    if !["admin", "approver", "auditor"].contains(&body.role.as_str()) {
        return Err(ApiError::new(
            ErrorCode::InvalidRole,
            "role is one of admin, approver, auditor",
        ));
    }
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(ApiError::new(
            ErrorCode::InvalidName,
            "a name is 1 to 64 printable characters",
        ));
    }
    // One live token per name: a revocation by name then names exactly whom it stops.
    if state.store().api_token_named(name).await? {
        return Err(ApiError::new(
            ErrorCode::NameTaken,
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

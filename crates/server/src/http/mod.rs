//! The HTTP pieces every area shares: the error shape and JSON extractor ([`ApiError`],
//! [`ApiJson`]), who is calling ([`Caller`]), names people give things (`names`), and the
//! service's own routes (liveness, metrics, the OpenAPI document).

mod auth;
mod error;
mod names;
mod people;

use axum::Json;
use serde_json::Value;
use utoipa_axum::{router::OpenApiRouter, routes};

pub use auth::token_hash;
pub(crate) use auth::{Caller, SESSION_COOKIE, cookie, id_hash, session_user};
pub use error::ApiError;
pub(crate) use error::ApiJson;
pub(crate) use names::agent_label;
pub(crate) use people::{issue_token, vote};

use crate::AppState;

/// `/healthz`, `/metrics`, `/openapi.json`.
pub(crate) fn meta_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(crate::metrics::metrics))
        .routes(routes!(openapi_json))
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "alive")))]
async fn healthz() -> &'static str {
    "ok"
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    responses((status = 200, description = "the OpenAPI document", body = Object))
)]
async fn openapi_json() -> Json<Value> {
    Json(crate::openapi())
}

//! Who is calling: a bearer token (stored as its SHA-256 hash) with a role, or for reads the
//! console's session cookie.

use axum::{
    extract::FromRequestParts,
    http::{Method, header::AUTHORIZATION, request::Parts},
};
use chaperone_api::ErrorCode;

use crate::{AppState, http::ApiError};

/// The authenticated caller.
pub(crate) struct Caller {
    pub(crate) name: String,
    role: String,
}

impl Caller {
    pub(crate) fn require(&self, roles: &[&str]) -> Result<(), ApiError> {
        if roles.contains(&self.role.as_str()) {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("this needs role {}", roles.join(" or ")),
            ))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let unauthorized = || {
            ApiError::new(
                ErrorCode::Unauthorized,
                "send Authorization: Bearer <token>",
            )
        };
        let bearer = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        // The console's session cookie also authorizes reads (its export links); never a
        // write, which a cross-site form could otherwise make with the cookie attached.
        let reading = parts.method == Method::GET || parts.method == Method::HEAD;
        let user = match bearer {
            Some(token) => state.store().api_token(token_hash(token)).await?,
            None if reading => crate::console::cookie_user(state, &parts.headers).await?,
            None => None,
        };
        let (role, name) = user.ok_or_else(unauthorized)?;
        Ok(Self { name, role })
    }
}

/// SHA-256 of a bearer token, as stored.
pub fn token_hash(token: &str) -> chaperone_core::B256 {
    use sha2::Digest;
    chaperone_core::B256::new(sha2::Sha256::digest(token.as_bytes()).into())
}

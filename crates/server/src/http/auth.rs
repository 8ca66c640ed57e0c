//! Who is calling: a bearer token (stored as its SHA-256 hash) with a role, or for reads the
//! console's session cookie (the console opens and closes sessions; they are looked up here).

use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, Method, header, header::AUTHORIZATION, request::Parts},
};
use chaperone_api::ErrorCode;
use chaperone_core::B256;
use sha2::{Digest, Sha256};

use crate::{AppState, http::ApiError};

/// The authenticated caller.
pub(crate) struct Caller {
    pub(crate) name: String,
    role: String,
}

impl Caller {
    /// Who acts, as the record of an administrative action names them.
    pub(crate) fn actor(&self) -> chaperone_store::Actor {
        chaperone_store::Actor::new(&self.name, &self.role)
    }

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
            None if reading => cookie_user(state, &parts.headers).await?,
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

/// The console's session cookie: a random session id (the store keeps only its hash).
pub(crate) const SESSION_COOKIE: &str = "chaperone_session";

/// The role and name behind the request's session cookie, if it names a live session: the
/// API accepts it for reads (the console's export links).
async fn cookie_user(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(String, String)>, ApiError> {
    match cookie(headers, SESSION_COOKIE) {
        Some(id) => session_user(state, id).await,
        None => Ok(None),
    }
}

pub(crate) async fn session_user(
    state: &AppState,
    id: &str,
) -> Result<Option<(String, String)>, ApiError> {
    Ok(state.store().session(id_hash(id), state.now()).await?)
}

/// What the store keeps of a session id.
pub(crate) fn id_hash(id: &str) -> B256 {
    let mut hash = Sha256::new();
    hash.update(b"chaperone/console/session/v1\0");
    hash.update(id.as_bytes());
    B256::from_slice(&hash.finalize())
}

/// A cookie's value from the request.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

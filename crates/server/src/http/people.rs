//! What the API and the console share about people: issuing a named token (shown once, stored
//! hashed, recorded as an administrative action) and casting an approver's vote.

use chaperone_api::{ErrorCode, admin::Resolved};
use chaperone_core::{B256, policy::Tally};
use chaperone_store::Actor;

use crate::{AppState, http::ApiError};

/// The roles a token may have.
pub(crate) const ROLES: &[&str] = &["admin", "approver", "auditor"];

/// Checks a token's name and role: a name is 1 to 64 printable characters, and not `.` or `..`
/// (as a URL path segment they are dot segments, which every URL parser removes, so
/// `DELETE /v1/admin/tokens/..` could never name the token to revoke).
pub(crate) fn check_new_token(name: &str, role: &str) -> Result<(), ApiError> {
    if !ROLES.contains(&role) {
        return Err(ApiError::new(
            ErrorCode::InvalidRole,
            "role is one of admin, approver, auditor",
        ));
    }
    if name.is_empty()
        || name.chars().count() > 64
        || name.chars().any(char::is_control)
        || name == "."
        || name == ".."
    {
        return Err(ApiError::new(
            ErrorCode::InvalidName,
            "a name is 1 to 64 printable characters, and not `.` or `..`",
        ));
    }
    Ok(())
}

/// Issues a token named `name` (already trimmed) with `role`, by `by`: returns the token, which
/// is never stored (only its SHA-256).
pub(crate) async fn issue_token(
    state: &AppState,
    by: &Actor,
    name: &str,
    role: &str,
) -> Result<String, ApiError> {
    check_new_token(name, role)?;
    // One live token per name: a revocation by name then names exactly whom it stops, and a
    // quorum's distinct names are distinct people.
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
        .issue_api_token(super::token_hash(&token), name, role, by, state.now())
        .await?;
    tracing::info!(name, role, by = %by.name, "API token issued");
    Ok(token)
}

/// Casts `by`'s vote on a pending request and says where the request stands.
pub(crate) async fn vote(
    state: &AppState,
    by: &Actor,
    request_id: B256,
    approve: bool,
    comment: Option<&str>,
) -> Result<Resolved, ApiError> {
    let count = state
        .store()
        .cast_vote(request_id, approve, by, comment, state.now())
        .await?;
    tracing::info!(request = %request_id, approve, by = %by.name, counted = count.counted, "vote cast");
    let (status, approved_by, remaining) = match count.tally {
        Tally::Approved { approved_by } => ("approved", approved_by, 0),
        Tally::Denied { .. } => (
            "denied",
            count
                .votes
                .iter()
                .filter(|v| v.approve)
                .map(|v| v.approver.clone())
                .collect(),
            0,
        ),
        Tally::Pending {
            approved_by,
            remaining,
        } => ("pending", approved_by, remaining),
    };
    Ok(Resolved {
        request_id,
        approved: approve,
        status: status.to_owned(),
        required: count.required,
        approved_by,
        remaining,
        counted: count.counted,
    })
}

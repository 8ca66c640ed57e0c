//! What the API and the console share about people: issuing a named token (shown once, stored
//! hashed, recorded as an administrative action) and casting an approver's vote.

use chaperone_api::{ErrorCode, admin::Resolved};
use chaperone_core::{B256, policy::Tally};
use chaperone_store::Actor;

use crate::{AppState, http::ApiError};

/// The roles a token may have.
pub(crate) const ROLES: &[&str] = &["admin", "approver", "auditor"];

/// A token's name as stored: trimmed, inner runs of whitespace made one space, and lower case.
/// Names are ASCII: distinct names must be distinct people in a quorum, and Unicode offers
/// look-alikes (Cyrillic `а` for Latin `a`, full-width letters, zero-width joiners) that no
/// normal form (NFKC) folds together. `,` and `;` are refused too: they separate names in
/// lists (an approval's `decided_by`, an export's cell). 1 to 64 characters, and not `.` or
/// `..` (as a URL path segment, every URL parser removes them, so `DELETE /v1/admin/tokens/..`
/// could never name the token to revoke). Names that read as the configuration (`the
/// configuration`, `configuration`, `config`) are reserved: the console says a token was
/// issued by the configuration, and no admin's token may pass for one.
pub(crate) fn token_name(name: &str) -> Result<String, ApiError> {
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    let allowed = |c: char| c.is_ascii_graphic() && c != ',' && c != ';' || c == ' ';
    if name.is_empty()
        || name.len() > 64
        || !name.chars().all(allowed)
        || name == "."
        || name == ".."
    {
        return Err(ApiError::new(
            ErrorCode::InvalidName,
            "a name is 1 to 64 ASCII letters, digits, spaces and punctuation other than `,` \
             and `;`, and not `.` or `..` (names that look alike must not be two people)",
        ));
    }
    let name = name.to_ascii_lowercase();
    let bare = name.strip_prefix("the ").unwrap_or(&name);
    if RESERVED_NAMES.contains(&bare) {
        return Err(ApiError::new(
            ErrorCode::InvalidName,
            format!(
                "`{name}` is reserved: the console names tokens of the configuration so, and a \
                 token may not pass for one"
            ),
        ));
    }
    Ok(name)
}

/// Names no token may take (after a leading `the `): they read as the configuration's.
const RESERVED_NAMES: &[&str] = &["configuration", "config", "configured"];

/// Issues a token named `name` (normalised by [`token_name`]) with `role`, by `by`: returns the
/// name as stored and the token, which is never stored (only its SHA-256).
pub(crate) async fn issue_token(
    state: &AppState,
    by: &Actor,
    name: &str,
    role: &str,
) -> Result<(String, String), ApiError> {
    if !ROLES.contains(&role) {
        return Err(ApiError::new(
            ErrorCode::InvalidRole,
            "role is one of admin, approver, auditor",
        ));
    }
    let name = token_name(name)?;
    // One live token per name (the store refuses another, in any case, and the database's
    // unique index settles a race): a revocation by name then names exactly whom it stops,
    // and a quorum's distinct names are distinct people.
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|_| ApiError::internal("no randomness for a token"))?;
    let token = format!("chp_{}", alloy::hex::encode(secret));
    state
        .store()
        .issue_api_token(super::token_hash(&token), &name, role, by, state.now())
        .await?;
    tracing::info!(%name, role, by = %by.name, "API token issued");
    Ok((name, token))
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

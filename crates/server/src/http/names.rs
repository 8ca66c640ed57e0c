//! Names people give things (an agent's label), checked the same way by the API and the
//! console: what is stored is what every page and export shows, so it must be printable.

use chaperone_api::ErrorCode;

use super::ApiError;

/// An agent's label: 1 to 64 printable characters, trimmed.
pub(crate) fn agent_label(text: &str) -> Result<&str, ApiError> {
    let label = text.trim();
    if label.is_empty() || label.chars().count() > 64 || label.chars().any(char::is_control) {
        return Err(ApiError::new(
            ErrorCode::InvalidName,
            "an agent's label is 1 to 64 printable characters",
        ));
    }
    Ok(label)
}

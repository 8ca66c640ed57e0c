//! The API's error shape and JSON extractor: every failure is
//! `{"error": {"code": "...", "message": "..."}}` with a fitting status, never a stack trace.

use axum::{
    Json,
    extract::{FromRequest, Request, rejection::JsonRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::de::DeserializeOwned;

/// An API error: status, stable code, human message.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Seconds for a `Retry-After` header (429 and 503).
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with this status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 429 `busy` with `Retry-After: 1`: the service cannot serve the request soon; the same
    /// request may be sent again (a co-sign request is idempotent by its digest).
    pub fn busy(message: impl Into<String>) -> Self {
        Self {
            retry_after: Some(1),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "busy", message)
        }
    }

    /// 503 `timeout` with `Retry-After: 1`: the request took too long and was abandoned.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            retry_after: Some(1),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "timeout", message)
        }
    }

    /// 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 500 `internal` (the cause is logged, not returned).
    pub fn internal(cause: &str) -> Self {
        tracing::error!(cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    /// The same error with `Retry-After: seconds`.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The message for people.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Every error's body: `{"error": {"code", "message"}}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

/// A stable code and a message for people.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorDetail {
    code: &'static str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        if let Some(seconds) = self.retry_after {
            return (
                self.status,
                [(axum::http::header::RETRY_AFTER, seconds.to_string())],
                Json(body),
            )
                .into_response();
        }
        (self.status, Json(body)).into_response()
    }
}

impl From<chaperone_store::Error> for ApiError {
    fn from(e: chaperone_store::Error) -> Self {
        use chaperone_store::Error as E;
        match e {
            E::UnknownWallet(_) => {
                Self::new(StatusCode::NOT_FOUND, "unknown_wallet", e.to_string())
            }
            E::WalletExists(_) => Self::new(StatusCode::CONFLICT, "wallet_exists", e.to_string()),
            E::NoPolicy(_) => Self::new(StatusCode::CONFLICT, "no_policy", e.to_string()),
            E::StalePolicyVersion { .. } => {
                Self::new(StatusCode::CONFLICT, "stale_policy_version", e.to_string())
            }
            E::NoPendingApproval(_) => {
                Self::new(StatusCode::NOT_FOUND, "no_pending_approval", e.to_string())
            }
            E::SequenceGap { .. } => Self::new(StatusCode::CONFLICT, "sequence_gap", e.to_string()),
            E::BrokenChain { .. } => Self::new(StatusCode::CONFLICT, "broken_chain", e.to_string()),
            E::Log(
                chaperone_core::Error::SizeOutOfRange { .. }
                | chaperone_core::Error::IndexOutOfRange { .. },
            ) => Self::bad_request("out_of_range", e.to_string()),
            E::OutOfRange(_) => Self::bad_request("out_of_range", e.to_string()),
            E::ClockSkew { .. } => {
                // An operator's problem (NTP), not the client's: refuse to decide until fixed.
                tracing::error!(error = %e, "refusing to decide");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "clock_skew",
                    "this replica's clock is out of step with the database; try again later",
                )
            }
            // Every connection is busy for longer than the pool waits: come back, not a 500.
            E::Database(_) if e.is_busy() => Self::busy("the database is busy; try again shortly"),
            E::Log(_) | E::UnsupportedUrl(_) | E::Database(_) | E::Migrate(_) | E::Corrupt(_) => {
                // The cause goes to the log, not to the client.
                tracing::error!(error = %e, "store failure");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
        }
    }
}

/// `Json` whose rejections use the API's error shape: malformed JSON, unknown fields and wrong
/// types are 400 `invalid_json`/`invalid_request`, a wrong content type 415, an oversized body 413.
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // The limit that applies to this route, for the 413 message (record batches get more).
        let limit = if req.uri().path() == "/v1/records" {
            crate::MAX_BATCH_BODY_BYTES
        } else {
            crate::MAX_BODY_BYTES
        };
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(match &rejection {
                JsonRejection::JsonDataError(_) => {
                    ApiError::bad_request("invalid_request", rejection.body_text())
                }
                JsonRejection::JsonSyntaxError(_) => {
                    ApiError::bad_request("invalid_json", rejection.body_text())
                }
                JsonRejection::MissingJsonContentType(_) => ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "send Content-Type: application/json",
                ),
                _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!("request bodies here are limited to {limit} bytes"),
                ),
                _ => ApiError::new(rejection.status(), "invalid_body", rejection.body_text()),
            }),
        }
    }
}

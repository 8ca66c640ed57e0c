//! The API's error shape and JSON extractor: every failure is
//! `{"error": {"code": "...", "message": "..."}}` with a fitting status, never a stack trace.

use axum::{
    Json,
    extract::{FromRequest, Request, rejection::JsonRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chaperone_api::{ErrorBody, ErrorCode, ErrorDetail};
use serde::de::DeserializeOwned;

/// An API error: a stable code (which fixes the status), a message for people, and for 429
/// and 503 how long to wait.
#[derive(Debug, Clone)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    /// Seconds for a `Retry-After` header (429 and 503).
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `code` (and its status).
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 429 `busy` with `Retry-After: 1`: the service cannot serve the request soon; the same
    /// request may be sent again (a co-sign request is idempotent by its digest).
    pub fn busy(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Busy, message).retry_after(1)
    }

    /// 503 `timeout` with `Retry-After: 1`: the request took too long and was abandoned.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Timeout, message).retry_after(1)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// 500 `internal` (the cause is logged, not returned).
    pub fn internal(cause: &str) -> Self {
        tracing::error!(cause, "internal error");
        Self::new(ErrorCode::Internal, "internal error")
    }

    /// The same error with `Retry-After: seconds`.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The status (the code's).
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message for people.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<ErrorDetail> for ApiError {
    fn from(detail: ErrorDetail) -> Self {
        Self::new(detail.code, detail.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        if let Some(seconds) = self.retry_after {
            return (
                status,
                [(axum::http::header::RETRY_AFTER, seconds.to_string())],
                Json(body),
            )
                .into_response();
        }
        (status, Json(body)).into_response()
    }
}

impl From<chaperone_store::Error> for ApiError {
    fn from(e: chaperone_store::Error) -> Self {
        use chaperone_store::Error as E;
        match e {
            E::UnknownWallet(_) => Self::new(ErrorCode::UnknownWallet, e.to_string()),
            E::WalletExists(_) => Self::new(ErrorCode::WalletExists, e.to_string()),
            E::NoPolicy(_) => Self::new(ErrorCode::NoPolicy, e.to_string()),
            E::StalePolicyVersion { .. } => Self::new(ErrorCode::StalePolicyVersion, e.to_string()),
            E::NoPendingApproval(_) => Self::new(ErrorCode::NoPendingApproval, e.to_string()),
            E::RevokedToken(_) => Self::new(ErrorCode::Unauthorized, e.to_string()),
            E::NameTaken(_) | E::NameConfigured(_) => {
                Self::new(ErrorCode::NameTaken, e.to_string())
            }
            E::TokenNewerThanRequest(_) => Self::new(ErrorCode::Forbidden, e.to_string()),
            E::SequenceGap { .. } => Self::new(ErrorCode::SequenceGap, e.to_string()),
            E::BrokenChain { .. } => Self::new(ErrorCode::BrokenChain, e.to_string()),
            E::Log(
                chaperone_core::Error::SizeOutOfRange { .. }
                | chaperone_core::Error::IndexOutOfRange { .. },
            ) => Self::new(ErrorCode::OutOfRange, e.to_string()),
            E::OutOfRange(_) => Self::new(ErrorCode::OutOfRange, e.to_string()),
            E::ClockSkew { .. } => {
                // An operator's problem (NTP), not the client's: refuse to decide until fixed.
                tracing::error!(error = %e, "refusing to decide");
                Self::new(
                    ErrorCode::ClockSkew,
                    "this replica's clock is out of step with the database; try again later",
                )
            }
            // Every connection is busy for longer than the pool waits: come back, not a 500.
            E::Database(_) if e.is_busy() => Self::busy("the database is busy; try again shortly"),
            E::Log(_) | E::UnsupportedUrl(_) | E::Database(_) | E::Migrate(_) | E::Corrupt(_) => {
                // The cause goes to the log, not to the client.
                tracing::error!(error = %e, "store failure");
                Self::new(ErrorCode::Internal, "internal error")
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
        let limit = match req.uri().path() {
            "/v1/records" => crate::MAX_BATCH_BODY_BYTES,
            "/v1/tool-decisions" => crate::tools::MAX_TOOL_DECISION_BODY_BYTES,
            _ => crate::MAX_BODY_BYTES,
        };
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(match &rejection {
                JsonRejection::JsonDataError(_) => {
                    ApiError::new(ErrorCode::InvalidRequest, rejection.body_text())
                }
                JsonRejection::JsonSyntaxError(_) => {
                    ApiError::new(ErrorCode::InvalidJson, rejection.body_text())
                }
                JsonRejection::MissingJsonContentType(_) => ApiError::new(
                    ErrorCode::UnsupportedMediaType,
                    "send Content-Type: application/json",
                ),
                _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                    ErrorCode::BodyTooLarge,
                    format!("request bodies here are limited to {limit} bytes"),
                ),
                _ => ApiError::new(ErrorCode::InvalidBody, rejection.body_text()),
            }),
        }
    }
}

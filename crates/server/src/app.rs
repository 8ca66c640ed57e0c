//! The service's router: the API (documented, see `openapi.rs`), the console, and the layers
//! every request passes.

use axum::{Router, extract::DefaultBodyLimit, http::HeaderName, response::IntoResponse};
use tower_http::{
    LatencyUnit,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::{DefaultOnResponse, TraceLayer},
};

use crate::{AppState, MAX_BODY_BYTES, console, http::ApiError, openapi::api_router};

/// The service's router: the endpoints, then (outermost last) the body limit, the timeout,
/// request/response tracing and the request id (`x-request-id`, taken from the client or
/// made up, returned on every response and named in every log line of the request).
pub fn app(state: AppState) -> Router {
    let x_request_id = HeaderName::from_static("x-request-id");
    let timeout = state.request_timeout();
    let (api, _document) = api_router().split_for_parts();
    api.merge(console::router())
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| async move {
                match tokio::time::timeout(timeout, next.run(request)).await {
                    Ok(response) => response,
                    Err(_) => ApiError::unavailable(format!(
                        "the request took longer than {} ms; nothing was decided or written \
                         unless an earlier answer said so: send it again",
                        timeout.as_millis()
                    ))
                    .into_response(),
                }
            },
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &axum::http::Request<_>| {
                    let id = request
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    // The path only: queries carry no secrets, but bodies and headers may.
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = %request.uri().path(),
                        request_id = %id,
                    )
                })
                .on_response(
                    DefaultOnResponse::new()
                        .level(tracing::Level::DEBUG)
                        .latency_unit(LatencyUnit::Micros),
                ),
        )
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
        .with_state(state)
}

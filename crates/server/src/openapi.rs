//! `GET /openapi.json`: the OpenAPI 3.1 document, derived from the handlers. Every API route is
//! declared through utoipa-axum's router with its handler's `#[utoipa::path]` (path, summary,
//! parameters, body, answers), so a route cannot exist undocumented; the bodies' schemas come
//! from the wire types of `chaperone-api`. An operation's error answers are the
//! [`ErrorCode`]s it names ([`error_answers!`]), each under the one status
//! [`ErrorCode::status`] gives it. This file adds the document's header and the answers every
//! operation of a kind shares (a JSON body, a path parameter, a bearer token, the database).

use std::{collections::BTreeMap, sync::OnceLock};

use chaperone_api::ErrorCode;
use serde_json::{Value, json};
use utoipa::{
    OpenApi,
    openapi::{
        ContentBuilder, Ref, RefOr,
        response::{Response, ResponseBuilder},
    },
};
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

/// The document's header; the operations come from the routers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Chaperone",
        description = "Audit trail and co-signing policy service for AI agents."
    ),
    components(schemas(chaperone_api::ErrorBody, chaperone_api::Format))
)]
struct Header;

/// The error answers of `codes`: one response per status, naming its codes, with the error body.
pub(crate) fn error_responses(codes: &[ErrorCode]) -> BTreeMap<String, RefOr<Response>> {
    let mut by_status: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
    for code in codes {
        by_status
            .entry(code.status())
            .or_default()
            .push(code.as_str());
    }
    by_status
        .into_iter()
        .map(|(status, names)| {
            let response = ResponseBuilder::new()
                .description(format!("`{}`", names.join("`, `")))
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build();
            (status.to_string(), RefOr::T(response))
        })
        .collect()
}

/// Declares `$name`, the error answers of an operation, for its `#[utoipa::path(responses(…))]`:
/// the codes it may refuse with (the answers every operation shares are added here).
macro_rules! error_answers {
    ($name:ident: $($code:ident),+ $(,)?) => {
        pub(crate) struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<
                String,
                utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
            > {
                $crate::openapi::error_responses(&[$(chaperone_api::ErrorCode::$code),+])
            }
        }
    };
}
pub(crate) use error_answers;

/// Every API route with its documentation.
pub(crate) fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(Header::openapi())
        .merge(crate::http::meta_router())
        .merge(crate::cosign::router())
        .merge(crate::admin::router())
        .merge(crate::tokens::router())
        .merge(crate::actions::router())
        .merge(crate::audit::router())
        .merge(crate::compliance::router())
        .merge(crate::tools::router())
        .merge(crate::payments::router())
        .merge(crate::alerts::router())
        .merge(crate::evidence::router())
}

/// The OpenAPI document (built once).
pub fn openapi() -> Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT
        .get_or_init(|| {
            let (_, document) = api_router().split_for_parts();
            finish(serde_json::to_value(document).unwrap_or(Value::Null))
        })
        .clone()
}

/// Adds what every operation of a kind can answer, and the bearer scheme.
fn finish(mut document: Value) -> Value {
    let error =
        |codes: &[ErrorCode]| serde_json::to_value(error_responses(codes)).unwrap_or_default();
    let shared = [
        // What every handler with a JSON body can answer before it runs (`ApiJson`).
        (
            "requestBody",
            error(&[
                ErrorCode::InvalidJson,
                ErrorCode::InvalidRequest,
                ErrorCode::InvalidBody,
                ErrorCode::BodyTooLarge,
                ErrorCode::UnsupportedMediaType,
            ]),
        ),
        // Path parameters are parsed by the handler: one that does not parse is a 400.
        ("pathParameter", error(&[ErrorCode::InvalidRequest])),
        (
            "security",
            error(&[ErrorCode::Unauthorized, ErrorCode::Forbidden]),
        ),
        // What every handler that reads the database can answer.
        (
            "database",
            error(&[ErrorCode::Busy, ErrorCode::Internal, ErrorCode::Timeout]),
        ),
    ];
    if let Some(paths) = document["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for operation in item.values_mut() {
                let has = |kind: &str| match kind {
                    "requestBody" => operation.get("requestBody").is_some(),
                    "pathParameter" => operation["parameters"]
                        .as_array()
                        .is_some_and(|p| p.iter().any(|p| p["in"] == "path")),
                    "security" => operation.get("security").is_some(),
                    _ => !["/healthz", "/openapi.json"].contains(&path.as_str()),
                };
                let kinds: Vec<&Value> = shared
                    .iter()
                    .filter(|(kind, _)| has(kind))
                    .map(|(_, answers)| answers)
                    .collect();
                let Some(responses) = operation["responses"].as_object_mut() else {
                    continue;
                };
                for answers in kinds {
                    for (status, answer) in answers.as_object().into_iter().flatten() {
                        let Some(existing) = responses.get_mut(status) else {
                            responses.insert(status.clone(), answer.clone());
                            continue;
                        };
                        // The same status already answers with the error body: name the
                        // shared codes too (a denial's 403 is a decision, not an error).
                        let is_error = existing["content"]["application/json"]["schema"]["$ref"]
                            == "#/components/schemas/ErrorBody";
                        let (Some(have), Some(add)) = (
                            existing["description"].as_str().map(str::to_owned),
                            answer["description"].as_str(),
                        ) else {
                            continue;
                        };
                        if is_error {
                            let missing: Vec<&str> =
                                add.split(", ").filter(|c| !have.contains(c)).collect();
                            if !missing.is_empty() {
                                existing["description"] =
                                    Value::String(format!("{have}, {}", missing.join(", ")));
                            }
                        }
                    }
                }
                // A summary is the doc comment's first paragraph: on one line.
                if let Some(summary) = operation["summary"].as_str() {
                    operation["summary"] =
                        Value::String(summary.split_whitespace().collect::<Vec<_>>().join(" "));
                }
            }
        }
    }
    document["components"]["securitySchemes"] =
        json!({ "bearer": { "type": "http", "scheme": "bearer" } });
    document
}

//! The OpenAPI document matches the routes: every route in the source is documented with its
//! methods, and every documented operation is routed (not the 404 fallback, not a 405).

use std::collections::BTreeSet;

use axum::http::StatusCode;

use crate::{call, service};

/// Source files of the server that route with axum's own `.route(`, which bypasses the
/// document: only the console (HTML pages, not the API) and the service's outer layers may.
fn undocumented_routing() -> Vec<String> {
    let mut found = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src"
    ))];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.ends_with("console") {
                continue;
            }
            if path.is_dir() {
                dirs.push(path);
            } else if std::fs::read_to_string(&path).unwrap().contains(".route(") {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

#[tokio::test]
async fn openapi_document_matches_the_routes() {
    let s = service().await;
    let (status, doc) = call(&s.router, "GET", "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            assert!(
                operation["responses"]
                    .as_object()
                    .is_some_and(|r| !r.is_empty())
            );
            documented.insert((method.clone(), path.clone()));
        }
    }
    // Every API route is declared with its documentation (utoipa-axum's `routes!`).
    assert_eq!(undocumented_routing(), Vec::<String>::new());
    assert_eq!(documented.len(), 36, "{documented:?}");

    for (method, path) in &documented {
        let uri = path
            .replace("{leaf_hash}", &format!("{}", chaperone_core::B256::ZERO))
            .replace("{address}", &s.wallet.to_string())
            .replace("{request_id}", &format!("{}", chaperone_core::B256::ZERO))
            .replace("{verdict}", "approve");
        let (status, body) = call(&s.router, &method.to_uppercase(), &uri, None, None).await;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        assert!(
            body["error"]["message"] != "no such endpoint",
            "{method} {uri} is documented but not routed"
        );
    }
}

fn refs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", serde_json::Value::String(r)) => out.push(r.clone()),
                    _ => refs(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// The schemas come from the Rust types: every reference resolves, no body is described in
/// prose, and every operation that takes JSON lists 400, 413 and 415.
#[tokio::test]
async fn every_schema_is_generated_and_every_reference_resolves() {
    let s = service().await;
    let (_, doc) = call(&s.router, "GET", "/openapi.json", None, None).await;
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 50, "{} references", all.len());
    for r in &all {
        let name = r.strip_prefix("#/components/schemas/").unwrap();
        assert!(
            schemas.contains_key(name),
            "{r} does not resolve among {:?}",
            schemas.keys().collect::<Vec<_>>()
        );
    }
    let cosign = &schemas["CosignBody"];
    assert_eq!(cosign["type"], "object");
    for field in ["chain_id", "wallet", "agent_signature"] {
        assert!(
            cosign["required"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == field),
            "{field} in {cosign}"
        );
    }
    assert!(schemas["Execute"]["properties"]["validUntil"].is_object());
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op.get("requestBody").is_some() {
                for status in ["400", "413", "415"] {
                    assert!(
                        op["responses"].get(status).is_some(),
                        "{method} {path} lacks {status}"
                    );
                }
            }
        }
    }
}

/// A co-sign denial answers 403 with the decision (outcome, reasons, no signature), and the
/// document says so (it said `ErrorBody`).
#[tokio::test]
async fn a_cosign_denial_is_documented_as_the_decision_it_is() {
    let s = crate::cosign::ready_on(service().await).await;
    let (_, doc) = call(&s.router, "GET", "/openapi.json", None, None).await;
    let denied = &doc["paths"]["/v1/cosign"]["post"]["responses"]["403"];
    assert_eq!(
        denied["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/CosignResponse",
        "{denied}"
    );
    let (status, answer) = crate::cosign::request(&s, u64::MAX, 7).await;
    assert_eq!(status, axum::http::StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["outcome"], "denied", "{answer}");
    assert!(
        answer["reasons"].as_array().is_some_and(|r| !r.is_empty()),
        "{answer}"
    );
    assert!(answer["cosigner_signature"].is_null(), "{answer}");
    let documented = doc["components"]["schemas"]["CosignResponse"]["properties"]
        .as_object()
        .unwrap();
    for field in answer.as_object().unwrap().keys() {
        assert!(
            documented.contains_key(field),
            "{field} is not in CosignResponse"
        );
    }
}

/// Every code the service can answer with is documented under its status on some operation
/// (the codes only the console or only a client uses are not the API's).
#[tokio::test]
async fn every_error_code_is_documented_under_its_status() {
    use chaperone_api::ErrorCode;
    let s = service().await;
    let (_, doc) = call(&s.router, "GET", "/openapi.json", None, None).await;
    let not_the_apis = [
        ErrorCode::Csrf,
        ErrorCode::NoAuthorizationSlot,
        ErrorCode::Unknown,
    ];
    for code in ErrorCode::ALL {
        if not_the_apis.contains(code) {
            continue;
        }
        let named = format!("`{}`", code.as_str());
        let documented = doc["paths"].as_object().unwrap().values().any(|item| {
            item.as_object().unwrap().values().any(|op| {
                op["responses"][code.status().to_string()]["description"]
                    .as_str()
                    .is_some_and(|d| d.split(", ").any(|c| c == named))
            })
        });
        assert!(
            documented,
            "{named} ({}) is documented nowhere",
            code.status()
        );
    }
}

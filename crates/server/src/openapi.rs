//! `GET /openapi.json`: the OpenAPI 3.1 document of every endpoint. The schemas of every
//! request and response body are derived from the Rust types the handlers read and write
//! (utoipa's `ToSchema`, on the server's types and, through its `openapi` feature, on core's),
//! so they cannot drift from the code. The operations (path, roles, parameters and every status
//! each handler can return) are listed here; a test checks that every route in the source is
//! listed and every listed operation is routed.

use serde_json::{Map, Value, json};
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{RefOr, schema::Schema},
};

use chaperone_api::{
    CosignBody, CosignResponse, ErrorBody, Page,
    admin::{
        IssuedToken, NewAgent, NewToken, NewWallet, PendingApprovals, PolicySet, Registered,
        RegisteredAgents, Resolved, Revoked, Tokens,
    },
    audit::{CheckpointResponse, IngestBody, IngestResponse, ProofResponse, VerifyResponse},
    compliance::{AgentRow, DecisionView, RecordRow, SpendRow},
    cosign::{CallBody, CallBound},
};

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorBody" } } }
    })
}

/// Every schema the document refers to, with the schemas they refer to, by name.
fn components() -> Map<String, Value> {
    fn add<T: ToSchema>(out: &mut Vec<(String, RefOr<Schema>)>) {
        out.push((T::name().into_owned(), T::schema()));
        T::schemas(out);
    }
    /// `Page_<Row>` and its row (a generic's name and schemas leave its parameter out).
    fn page<T: ToSchema>(out: &mut Vec<(String, RefOr<Schema>)>) {
        out.push((
            format!("Page_{}", T::name()),
            <Page<T> as PartialSchema>::schema(),
        ));
        add::<T>(out);
    }
    let mut schemas = Vec::new();
    add::<ErrorBody>(&mut schemas);
    add::<CosignBody>(&mut schemas);
    add::<CosignResponse>(&mut schemas);
    add::<CallBody>(&mut schemas);
    add::<CallBound>(&mut schemas);
    add::<NewWallet>(&mut schemas);
    add::<Registered>(&mut schemas);
    add::<NewAgent>(&mut schemas);
    add::<NewToken>(&mut schemas);
    add::<IssuedToken>(&mut schemas);
    add::<Tokens>(&mut schemas);
    add::<Revoked>(&mut schemas);
    add::<RegisteredAgents>(&mut schemas);
    add::<chaperone_core::policy::Policy>(&mut schemas);
    add::<PolicySet>(&mut schemas);
    add::<PendingApprovals>(&mut schemas);
    add::<Resolved>(&mut schemas);
    add::<IngestBody>(&mut schemas);
    add::<IngestResponse>(&mut schemas);
    add::<ProofResponse>(&mut schemas);
    add::<CheckpointResponse>(&mut schemas);
    add::<chaperone_core::DisclosureBundle>(&mut schemas);
    add::<VerifyResponse>(&mut schemas);
    page::<AgentRow>(&mut schemas);
    page::<RecordRow>(&mut schemas);
    page::<DecisionView>(&mut schemas);
    page::<SpendRow>(&mut schemas);
    schemas
        .into_iter()
        .map(|(name, schema)| (name, serde_json::to_value(schema).unwrap_or(Value::Null)))
        .collect()
}

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema })
}

/// A path parameter of the type the component `schema` describes (`HexAddress`, `Hex32`).
fn path(name: &str, description: &str, schema: &str) -> Value {
    let schema = json!({ "$ref": format!("#/components/schemas/{schema}") });
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": schema })
}

/// The parameters every compliance list takes.
fn paging() -> Vec<Value> {
    vec![
        query(
            "cursor",
            "`next_cursor` of the previous page",
            json!({ "type": "string" }),
        ),
        query(
            "limit",
            "page size, 1 to 1000 (default 100)",
            json!({ "type": "integer", "minimum": 1, "maximum": 1000 }),
        ),
        query(
            "format",
            "json (default), jsonl or csv; the export formats carry the next cursor in X-Next-Cursor",
            json!({ "type": "string", "enum": ["json", "jsonl", "csv"] }),
        ),
    ]
}

struct Operation {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    roles: &'static [&'static str],
    parameters: Vec<Value>,
    /// The request body's schema (a component).
    body: Option<&'static str>,
    /// The schema of the 2xx answers (a component); `None`: not JSON.
    answer: Option<&'static str>,
    responses: Vec<(&'static str, &'static str)>,
}

/// The (path, status) pairs outside 2xx answered with the operation's `answer`, not with
/// `ErrorBody`: a co-sign denial is a decision (outcome, every reason, no signature).
const ANSWERED_OUTSIDE_2XX: [(&str, &str); 1] = [("/v1/cosign", "403")];

fn operations() -> Vec<Operation> {
    let list = |mut extra: Vec<Value>| {
        extra.extend(paging());
        extra
    };
    let text = || json!({ "type": "string" });
    let int = || json!({ "type": "integer", "minimum": 0 });
    vec![
        Operation {
            method: "get",
            path: "/healthz",
            summary: "Liveness",
            roles: &[],
            parameters: vec![],
            body: None,
            answer: None,
            responses: vec![("200", "alive")],
        },
        Operation {
            method: "get",
            path: "/metrics",
            summary: "Prometheus metrics (OpenMetrics text): decisions by outcome and reason, co-sign latency, answers by status, records ingested, queue depths, anchoring lag, worker errors",
            roles: &[],
            parameters: vec![],
            body: None,
            answer: None,
            responses: vec![
                ("200", "the metrics"),
                ("500", "the database is unreachable"),
            ],
        },
        Operation {
            method: "get",
            path: "/openapi.json",
            summary: "This document",
            roles: &[],
            parameters: vec![],
            body: None,
            answer: None,
            responses: vec![("200", "the OpenAPI document")],
        },
        Operation {
            method: "post",
            path: "/v1/cosign",
            summary: "Request a co-signature for an AgentWallet execution or an x402 payment (EIP-3009 authorization or Permit2 witness transfer, through EIP-1271), signed by the wallet's agent",
            roles: &[],
            parameters: vec![],
            body: Some("CosignBody"),
            answer: Some("CosignResponse"),
            responses: vec![
                ("200", "approved: the co-signature"),
                ("202", "pending a human approver"),
                ("400", "malformed, expired, wrong chain id or bad signature"),
                ("401", "not signed by the wallet's agent"),
                (
                    "403",
                    "denied, with every reason (including a lifetime beyond the policy's max_valid_for or a future validAfter)",
                ),
                ("404", "unknown wallet"),
                ("409", "the wallet has no policy"),
                ("413", "body too large"),
                (
                    "429",
                    "busy: the wallet has 16 requests in progress here, or the database stays saturated (Retry-After)",
                ),
                (
                    "503",
                    "this replica's clock is more than 5 s from the database's: nothing decided",
                ),
            ],
        },
        Operation {
            method: "post",
            path: "/v1/decisions/{request_id}/call",
            summary: "Bind an approved payment to the model call it was made within (the leaf hash of the call's record), signed by the wallet's agent; set once",
            roles: &[],
            parameters: vec![path("request_id", "the co-sign request id", "Hex32")],
            body: Some("CallBody"),
            answer: Some("CallBound"),
            responses: vec![
                ("200", "bound (or already bound to this call)"),
                ("400", "malformed request id, body or signature"),
                ("401", "not signed by the wallet's agent"),
                (
                    "403",
                    "the record was signed by another agent than the wallet's",
                ),
                ("404", "no approved decision with this id"),
                ("409", "already bound to another call"),
                ("413", "body too large"),
                ("415", "not JSON"),
                (
                    "422",
                    "no such record in the log yet, or it was received outside the decision's validity",
                ),
            ],
        },
        Operation {
            method: "post",
            path: "/v1/records",
            summary: "Ingest a batch of records signed once by their agent; returns the operator's receipt",
            roles: &[],
            parameters: vec![],
            body: Some("IngestBody"),
            answer: Some("IngestResponse"),
            responses: vec![
                (
                    "201",
                    "appended: receipt, leaf hash and index of every record",
                ),
                (
                    "200",
                    "this exact batch was appended before: the same receipt",
                ),
                ("400", "malformed batch or record"),
                ("401", "the batch signature is not the agent's"),
                (
                    "403",
                    "the agent is not registered with this deployment: nothing is written",
                ),
                (
                    "409",
                    "the batch does not continue the agent's chain (sequence gap or wrong previous hash)",
                ),
                ("413", "body too large"),
            ],
        },
        Operation {
            method: "get",
            path: "/v1/records/{leaf_hash}/proof",
            summary: "Inclusion proof of a record in the latest anchored (else signed) checkpoint, with the anchor",
            roles: &[],
            parameters: vec![path("leaf_hash", "the record's leaf hash", "Hex32")],
            body: None,
            answer: Some("ProofResponse"),
            responses: vec![
                (
                    "200",
                    "record, batch membership, inclusion proof, checkpoint note, anchor",
                ),
                ("400", "not a leaf hash"),
                ("404", "unknown record"),
                ("409", "logged, but not yet in a checkpoint"),
            ],
        },
        Operation {
            method: "get",
            path: "/v1/checkpoints/latest",
            summary: "The latest signed checkpoint and its anchor",
            roles: &[],
            parameters: vec![],
            body: None,
            answer: Some("CheckpointResponse"),
            responses: vec![("200", "checkpoint"), ("404", "no checkpoint yet")],
        },
        Operation {
            method: "post",
            path: "/v1/verify",
            summary: "Verify a disclosure bundle end to end, the on-chain anchor included",
            roles: &[],
            parameters: vec![],
            body: Some("DisclosureBundle"),
            answer: Some("VerifyResponse"),
            responses: vec![
                ("200", "valid"),
                ("400", "malformed bundle"),
                ("422", "invalid: the failing check"),
                ("502", "the chain did not answer"),
                ("503", "no chain configured"),
            ],
        },
        Operation {
            method: "get",
            path: "/v1/agents",
            summary: "Agents with records in the log",
            roles: &["auditor", "admin"],
            parameters: list(vec![]),
            body: None,
            answer: Some("Page_AgentRow"),
            responses: vec![("200", "a page of agents"), ("400", "bad query parameter")],
        },
        Operation {
            method: "get",
            path: "/v1/agents/{address}/records",
            summary: "An agent's records (commitments only), by model and time range",
            roles: &["auditor", "admin"],
            parameters: list(vec![
                path("address", "the agent's address", "HexAddress"),
                query("model", "exact model id", text()),
                query("from_ms", "at or after, ms since the Unix epoch", int()),
                query("to_ms", "before, ms since the Unix epoch", int()),
            ]),
            body: None,
            answer: Some("Page_RecordRow"),
            responses: vec![
                ("200", "a page of records"),
                ("400", "bad query parameter"),
                ("404", "the agent has no records"),
            ],
        },
        Operation {
            method: "get",
            path: "/v1/decisions",
            summary: "Co-sign decisions with their reasons",
            roles: &["auditor", "admin"],
            parameters: list(vec![
                query("wallet", "one wallet's", text()),
                query(
                    "outcome",
                    "approved, pending_approval or denied",
                    json!({ "type": "string", "enum": ["approved", "pending_approval", "denied"] }),
                ),
                query("from", "at or after, Unix seconds", int()),
                query("to", "before, Unix seconds", int()),
            ]),
            body: None,
            answer: Some("Page_DecisionView"),
            responses: vec![
                ("200", "a page of decisions"),
                ("400", "bad query parameter"),
            ],
        },
        Operation {
            method: "get",
            path: "/v1/spend",
            summary: "Reserved, settled and released spend per wallet and token within a window",
            roles: &["auditor", "admin"],
            parameters: list(vec![
                query("wallet", "one wallet's", text()),
                query("token", "`native` or a token address", text()),
                query("window", "e.g. 1h, 24h (default), 7d, or seconds", text()),
            ]),
            body: None,
            answer: Some("Page_SpendRow"),
            responses: vec![("200", "a page of totals"), ("400", "bad query parameter")],
        },
        Operation {
            method: "post",
            path: "/v1/admin/wallets",
            summary: "Register a wallet and its agent (which may then append to the log)",
            roles: &["admin"],
            parameters: vec![],
            body: Some("NewWallet"),
            answer: Some("Registered"),
            responses: vec![("201", "registered"), ("409", "already registered")],
        },
        Operation {
            method: "post",
            path: "/v1/admin/tokens",
            summary: "Issue a bearer token (shown once; only its hash is stored)",
            roles: &["admin"],
            parameters: vec![],
            body: Some("NewToken"),
            answer: Some("IssuedToken"),
            responses: vec![
                ("201", "the token, shown this once"),
                ("400", "unknown role or bad name"),
                ("409", "a live token has this name"),
            ],
        },
        Operation {
            method: "get",
            path: "/v1/admin/tokens",
            summary: "Every token's name, role and dates (never the tokens)",
            roles: &["admin"],
            parameters: vec![],
            body: None,
            answer: Some("Tokens"),
            responses: vec![("200", "every token, oldest first")],
        },
        Operation {
            method: "delete",
            path: "/v1/admin/tokens/{name}",
            summary: "Revoke the live token of this name: the API and its console sessions stop accepting it at once",
            roles: &["admin"],
            parameters: vec![
                json!({ "name": "name", "in": "path", "required": true, "description": "the token's name", "schema": { "type": "string" } }),
            ],
            body: None,
            answer: Some("Revoked"),
            responses: vec![("200", "revoked"), ("404", "no live token has this name")],
        },
        Operation {
            method: "post",
            path: "/v1/admin/agents",
            summary: "Allow an agent to append to the log (POST /v1/records)",
            roles: &["admin"],
            parameters: vec![],
            body: Some("NewAgent"),
            answer: Some("Registered"),
            responses: vec![("201", "registered"), ("200", "it already was")],
        },
        Operation {
            method: "get",
            path: "/v1/admin/agents",
            summary: "The agents that may append to the log",
            roles: &["admin", "auditor"],
            parameters: vec![],
            body: None,
            answer: Some("RegisteredAgents"),
            responses: vec![("200", "every registered agent, oldest first")],
        },
        Operation {
            method: "delete",
            path: "/v1/admin/agents/{address}",
            summary: "Stop an agent appending to the log (its records stay)",
            roles: &["admin"],
            parameters: vec![path("address", "the agent", "HexAddress")],
            body: None,
            answer: Some("Registered"),
            responses: vec![("200", "unregistered"), ("404", "it was not registered")],
        },
        Operation {
            method: "put",
            path: "/v1/admin/wallets/{address}/policy",
            summary: "Set a new policy version",
            roles: &["admin"],
            parameters: vec![path("address", "the wallet", "HexAddress")],
            body: Some("Policy"),
            answer: Some("PolicySet"),
            responses: vec![
                ("200", "version and hash"),
                ("404", "the wallet is not registered"),
                ("409", "version not above the current one"),
                ("422", "invalid policy"),
            ],
        },
        Operation {
            method: "get",
            path: "/v1/admin/wallets/{address}/policy",
            summary: "The wallet's current policy",
            roles: &["admin", "approver"],
            parameters: vec![path("address", "the wallet", "HexAddress")],
            body: None,
            answer: Some("Policy"),
            responses: vec![("200", "the policy"), ("404", "no policy")],
        },
        Operation {
            method: "get",
            path: "/v1/admin/approvals",
            summary: "Pending, unexpired approvals",
            roles: &["admin", "approver"],
            parameters: vec![query(
                "format",
                "json (default), jsonl or csv",
                json!({ "type": "string", "enum": ["json", "jsonl", "csv"] }),
            )],
            body: None,
            answer: Some("PendingApprovals"),
            responses: vec![("200", "pending approvals"), ("400", "bad query parameter")],
        },
        Operation {
            method: "post",
            path: "/v1/admin/approvals/{request_id}/{verdict}",
            summary: "Approve or deny a pending request (verdict: approve or deny)",
            roles: &["admin", "approver"],
            parameters: vec![
                path("request_id", "the request id", "Hex32"),
                json!({ "name": "verdict", "in": "path", "required": true, "description": "approve or deny",
                        "schema": { "type": "string", "enum": ["approve", "deny"] } }),
            ],
            body: None,
            answer: Some("Resolved"),
            responses: vec![
                ("200", "resolved"),
                ("404", "no pending, unexpired approval"),
            ],
        },
    ]
}

/// The OpenAPI document.
pub fn openapi() -> Value {
    let mut paths = Map::new();
    for op in operations() {
        let mut responses = Map::new();
        for (status, description) in &op.responses {
            let answered =
                status.starts_with('2') || ANSWERED_OUTSIDE_2XX.contains(&(op.path, *status));
            let response = match (answered, op.answer) {
                (true, Some(schema)) => {
                    let mut content = json!({
                        "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } }
                    });
                    // The compliance lists and the approvals also export
                    // (`format=jsonl|csv`): one row per line.
                    let row = match schema.strip_prefix("Page_") {
                        Some(row) => Some(row),
                        None => (schema == "PendingApprovals").then_some("PendingApproval"),
                    };
                    if let Some(row) = row {
                        content["application/x-ndjson"] =
                            json!({ "schema": { "$ref": format!("#/components/schemas/{row}") } });
                        content["text/csv"] = json!({ "schema": { "type": "string" } });
                    }
                    json!({ "description": description, "content": content })
                }
                (true, None) => json!({ "description": description }),
                (false, _) => error_response(description),
            };
            responses.insert((*status).to_owned(), response);
        }
        // Path parameters are parsed by the handler: one that does not parse is a 400.
        if op.parameters.iter().any(|p| p["in"] == "path") {
            responses
                .entry("400")
                .or_insert_with(|| error_response("a path parameter does not parse"));
        }
        // What every handler with a JSON body can answer before it runs (ApiJson).
        if op.body.is_some() {
            for (status, description) in [
                (
                    "400",
                    "malformed JSON, a missing or unknown field, or a value out of range",
                ),
                ("413", "body too large"),
                ("415", "not Content-Type: application/json"),
            ] {
                responses
                    .entry(status)
                    .or_insert_with(|| error_response(description));
            }
        }
        // What every handler that reads the database can answer.
        if !["/healthz", "/openapi.json"].contains(&op.path) {
            for (status, description) in [
                (
                    "429",
                    "busy: the database stays saturated; send it again after Retry-After",
                ),
                ("500", "internal error (logged, not described)"),
                (
                    "503",
                    "timeout: the request took longer than 30 s; send it again",
                ),
            ] {
                responses
                    .entry(status)
                    .or_insert_with(|| error_response(description));
            }
        }
        if !op.roles.is_empty() {
            responses.insert(
                "401".into(),
                error_response("missing or unknown bearer token"),
            );
            responses.insert("403".into(), error_response("the token's role may not"));
        }
        let mut operation = json!({
            "summary": op.summary,
            "parameters": op.parameters,
            "responses": responses,
        });
        if !op.roles.is_empty() {
            operation["security"] = json!([{ "bearer": [] }]);
            operation["description"] = json!(format!("Roles: {}.", op.roles.join(", ")));
        }
        if let Some(body) = op.body {
            operation["requestBody"] = json!({
                "required": true,
                "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{body}") } } }
            });
        }
        let entry = paths.entry(op.path.to_owned()).or_insert_with(|| json!({}));
        entry[op.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Chaperone",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Audit trail and co-signing policy service for AI agents."
        },
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": components(),
        }
    })
}

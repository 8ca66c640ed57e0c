//! Operator endpoints, behind bearer tokens stored as SHA-256 hashes: `admin` manages wallets
//! and policies; `approver` (and `admin`) votes on pending requests. Every change is recorded
//! with who made it, as an administrative action that the anchorer logs.

use axum::{
    Json,
    body::Bytes,
    extract::{
        Path, Query, State,
        rejection::{BytesRejection, QueryRejection},
    },
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use chaperone_api::{
    ErrorCode, Format,
    admin::{
        AgentRegistration, NewAgent, NewWallet, PendingApproval, PendingApprovals, PolicySet,
        Registered, RegisteredAgents, Resolved,
    },
};
use chaperone_core::{Address, B256, policy::Policy};
use chaperone_store::WalletRecord;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    http::{ApiError, ApiJson, Caller, agent_label, vote},
    openapi::error_answers,
    paging::ExportFormat,
};

/// A verdict on a pending approval, as its path says it.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // documentation only: the handler reads the path segment itself
enum Verdict {
    Approve,
    Deny,
}

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register_wallet))
        .routes(routes!(registered_agents, register_agent))
        .routes(routes!(unregister_agent))
        .routes(routes!(get_policy, put_policy))
        .routes(routes!(pending_approvals))
        .routes(routes!(resolve_approval))
}

/// Records an administrative action that the store made in a transaction of its own.
async fn record_action(
    state: &AppState,
    caller: &Caller,
    action: &str,
    subject: &str,
    detail: serde_json::Value,
) -> Result<(), ApiError> {
    let action = chaperone_store::NewAdminAction {
        action,
        subject,
        detail,
    };
    state
        .store()
        .record_action(&caller.actor(), &action, state.now())
        .await?;
    Ok(())
}

fn parse<T: std::str::FromStr>(text: &str, what: &'static str) -> Result<T, ApiError> {
    text.parse().map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("{what} `{text}` does not parse"),
        )
    })
}

error_answers!(RegisterWalletErrors: OutOfRange, WalletExists);

/// Register a wallet and its agent (which may then append to the log).
#[utoipa::path(
    post,
    path = "/v1/admin/wallets",
    description = "Roles: admin.",
    security(("bearer" = [])),
    request_body = NewWallet,
    responses((status = 201, description = "registered", body = Registered), RegisterWalletErrors)
)]
async fn register_wallet(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewWallet>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(&["admin"])?;
    let record = WalletRecord {
        address: body.address,
        chain_id: body.chain_id,
        agent: body.agent,
    };
    state.store().register_wallet(&record, state.now()).await?;
    record_action(
        &state,
        &caller,
        "wallet.register",
        &body.address.to_string(),
        serde_json::json!({ "wallet": body.address, "chain_id": body.chain_id, "agent": body.agent }),
    )
    .await?;
    tracing::info!(wallet = %body.address, by = %caller.name, "wallet registered");
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            address: body.address,
        }),
    ))
}

error_answers!(RegisterAgentErrors: InvalidName);

/// Allow an agent to append to the log (POST /v1/records).
#[utoipa::path(
    post,
    path = "/v1/admin/agents",
    description = "Roles: admin.",
    security(("bearer" = [])),
    request_body = NewAgent,
    responses(
        (status = 201, description = "registered", body = Registered),
        (status = 200, description = "it already was (its label, if given, is the new one)", body = Registered),
        RegisterAgentErrors,
    )
)]
async fn register_agent(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewAgent>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(&["admin"])?;
    let label = body.label.as_deref().map(agent_label).transpose()?;
    let new = state
        .store()
        .register_agent_by(body.address, label, &caller.actor(), state.now())
        .await?;
    tracing::info!(agent = %body.address, by = %caller.name, new, "agent registered");
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(Registered {
            address: body.address,
        }),
    ))
}

error_answers!(UnregisterAgentErrors: NotFound);

/// Stop an agent appending to the log (its records stay).
#[utoipa::path(
    delete,
    path = "/v1/admin/agents/{address}",
    description = "Roles: admin.",
    security(("bearer" = [])),
    params(("address" = chaperone_core::openapi::HexAddress, Path, description = "the agent")),
    responses((status = 200, description = "unregistered", body = Registered), UnregisterAgentErrors)
)]
async fn unregister_agent(
    State(state): State<AppState>,
    caller: Caller,
    Path(address): Path<String>,
) -> Result<Json<Registered>, ApiError> {
    caller.require(&["admin"])?;
    let address: Address = parse(&address, "agent address")?;
    let unregistered = state
        .store()
        .unregister_agent_by(address, &caller.actor(), state.now())
        .await?;
    if !unregistered {
        return Err(ApiError::not_found(format!(
            "agent {address} is not registered"
        )));
    }
    tracing::info!(agent = %address, by = %caller.name, "agent unregistered");
    Ok(Json(Registered { address }))
}

/// The agents that may append to the log.
#[utoipa::path(
    get,
    path = "/v1/admin/agents",
    description = "Roles: admin, auditor.",
    security(("bearer" = [])),
    responses((status = 200, description = "every registered agent, oldest first", body = RegisteredAgents))
)]
async fn registered_agents(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<RegisteredAgents>, ApiError> {
    caller.require(&["admin", "auditor"])?;
    let agents = state
        .store()
        .registered_agents()
        .await?
        .into_iter()
        .map(|a| AgentRegistration {
            address: a.address,
            registered_at: a.registered_at,
            registered_by: a.registered_by,
            label: a.label,
            last_record_ms: a.last_record_ms,
            last_decision_at: a.last_decision_at,
        })
        .collect();
    Ok(Json(RegisteredAgents { agents }))
}

error_answers!(PutPolicyErrors: UnknownWallet, StalePolicyVersion, InvalidPolicy);

/// Set a new policy version: JSON, or TOML (`Content-Type: application/toml`), whose text is
/// kept as submitted, comments and all, beside the normalised document that is hashed.
#[utoipa::path(
    put,
    path = "/v1/admin/wallets/{address}/policy",
    description = "Roles: admin.",
    security(("bearer" = [])),
    params(("address" = chaperone_core::openapi::HexAddress, Path, description = "the wallet")),
    request_body(content(
        (Policy = "application/json"),
        (String = "application/toml"),
    )),
    responses((status = 200, description = "version and hash", body = PolicySet), PutPolicyErrors)
)]
async fn put_policy(
    State(state): State<AppState>,
    caller: Caller,
    Path(address): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(&["admin"])?;
    let wallet: Address = parse(&address, "wallet address")?;
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(ErrorCode::BodyTooLarge, rejection.body_text())
        } else {
            ApiError::new(ErrorCode::InvalidBody, rejection.body_text())
        }
    })?;
    let mime = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::new(ErrorCode::InvalidBody, "the policy is not UTF-8 text"))?;
    let (policy, format) = match mime.as_str() {
        "application/json" => (Policy::from_json(text), "json"),
        "application/toml" => (Policy::from_toml(text), "toml"),
        _ => {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "send the policy as application/json or application/toml",
            ));
        }
    };
    let policy = policy.map_err(|e| ApiError::new(ErrorCode::InvalidPolicy, e.to_string()))?;
    state
        .store()
        .install_policy(
            wallet,
            &policy,
            Some((text, format)),
            Some(&caller.actor()),
            state.now(),
        )
        .await?;
    tracing::info!(%wallet, version = policy.version, by = %caller.name, "policy set");
    Ok(Json(PolicySet {
        version: policy.version,
        hash: policy.hash(),
    }))
}

error_answers!(GetPolicyErrors: NotFound);

/// The wallet's current policy.
#[utoipa::path(
    get,
    path = "/v1/admin/wallets/{address}/policy",
    description = "Roles: admin, approver.",
    security(("bearer" = [])),
    params(("address" = chaperone_core::openapi::HexAddress, Path, description = "the wallet")),
    responses((status = 200, description = "the policy", body = Policy), GetPolicyErrors)
)]
async fn get_policy(
    State(state): State<AppState>,
    caller: Caller,
    Path(address): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(&["admin", "approver"])?;
    let wallet: Address = parse(&address, "wallet address")?;
    let policy = state
        .store()
        .policy(wallet)
        .await?
        .ok_or_else(|| ApiError::not_found("no policy for this wallet"))?;
    Ok(Json(policy))
}

const APPROVAL_COLUMNS: &[&str] = &["request_id", "wallet", "expires_at", "expires_at_iso"];

error_answers!(ListErrors: InvalidQuery);

/// Pending, unexpired approvals.
#[utoipa::path(
    get,
    path = "/v1/admin/approvals",
    description = "Roles: admin, approver.",
    security(("bearer" = [])),
    params(ExportFormat),
    responses(
        (status = 200, description = "pending approvals", content(
            (PendingApprovals = "application/json"),
            (PendingApproval = "application/x-ndjson"),
            (String = "text/csv"),
        )),
        ListErrors,
    )
)]
async fn pending_approvals(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(&["admin", "approver"])?;
    let format = crate::paging::list_format(query)?;
    let pending = state.store().pending_approvals(state.now()).await?;
    let pending: Vec<PendingApproval> = pending
        .into_iter()
        .map(|(request_id, wallet, expires_at)| PendingApproval {
            request_id,
            wallet,
            expires_at,
            expires_at_iso: chaperone_core::readable::iso8601(expires_at),
        })
        .collect();
    Ok(match format {
        Format::Json => Json(PendingApprovals { pending }).into_response(),
        export => {
            let rows = pending
                .iter()
                .map(|p| serde_json::to_value(p).unwrap_or_default())
                .collect();
            crate::paging::page(export, APPROVAL_COLUMNS, rows, None)
        }
    })
}

error_answers!(ResolveErrors: NoPendingApproval);

/// Vote on a pending request (verdict: approve or deny). One denial denies; a policy's quorum
/// asks for several distinct approvers, and the request is co-signed only once they agree: until
/// then the answer is 202 with who has approved and how many more are needed. A name votes once.
#[utoipa::path(
    post,
    path = "/v1/admin/approvals/{request_id}/{verdict}",
    description = "Roles: admin, approver.",
    security(("bearer" = [])),
    params(
        ("request_id" = chaperone_core::openapi::Hex32, Path, description = "the request id"),
        ("verdict" = inline(Verdict), Path, description = "approve or deny"),
    ),
    responses(
        (status = 200, description = "resolved: approved or denied", body = Resolved),
        (status = 202, description = "counted; more approvers are needed", body = Resolved),
        ResolveErrors,
    )
)]
async fn resolve_approval(
    State(state): State<AppState>,
    caller: Caller,
    Path((request_id, verdict)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(&["admin", "approver"])?;
    let id: B256 = parse(&request_id, "request id")?;
    let approve = match verdict.as_str() {
        "approve" => true,
        "deny" => false,
        _ => return Err(ApiError::not_found("use /approve or /deny")),
    };
    let resolved = vote(&state, &caller.actor(), id, approve, None).await?;
    let status = if resolved.status == "pending" {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(resolved)))
}

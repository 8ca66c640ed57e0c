//! Operator endpoints, behind bearer tokens stored as SHA-256 hashes: `admin` manages wallets
//! and policies; `approver` (and `admin`) resolves pending requests.

use axum::{
    Json, Router,
    extract::{FromRequestParts, Path, Query, State, rejection::QueryRejection},
    http::{Method, StatusCode, header::AUTHORIZATION, request::Parts},
    response::{IntoResponse, Response},
    routing::{delete, get, post},
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

use crate::{
    AppState,
    api::{ApiError, ApiJson},
    token_hash,
};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/wallets", post(register_wallet))
        .route(
            "/v1/admin/agents",
            get(registered_agents).post(register_agent),
        )
        .route("/v1/admin/agents/{address}", delete(unregister_agent))
        .route(
            "/v1/admin/wallets/{address}/policy",
            get(get_policy).put(put_policy),
        )
        .route("/v1/admin/approvals", get(pending_approvals))
        .route(
            "/v1/admin/approvals/{request_id}/{verdict}",
            post(resolve_approval),
        )
}

/// The authenticated caller.
pub(crate) struct Caller {
    pub(crate) name: String,
    role: String,
}

impl Caller {
    pub(crate) fn require(&self, roles: &[&str]) -> Result<(), ApiError> {
        if roles.contains(&self.role.as_str()) {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("this needs role {}", roles.join(" or ")),
            ))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let unauthorized = || {
            ApiError::new(
                ErrorCode::Unauthorized,
                "send Authorization: Bearer <token>",
            )
        };
        let bearer = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        // The console's session cookie also authorizes reads (its export links); never a
        // write, which a cross-site form could otherwise make with the cookie attached.
        let reading = parts.method == Method::GET || parts.method == Method::HEAD;
        let user = match bearer {
            Some(token) => state.store().api_token(token_hash(token)).await?,
            None if reading => crate::console::cookie_user(state, &parts.headers).await?,
            None => None,
        };
        let (role, name) = user.ok_or_else(unauthorized)?;
        Ok(Self { name, role })
    }
}

fn parse<T: std::str::FromStr>(text: &str, what: &'static str) -> Result<T, ApiError> {
    text.parse().map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("{what} `{text}` does not parse"),
        )
    })
}

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
    tracing::info!(wallet = %body.address, by = %caller.name, "wallet registered");
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            address: body.address,
        }),
    ))
}

async fn register_agent(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewAgent>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(&["admin"])?;
    let new = state
        .store()
        .register_agent(body.address, &caller.name, state.now())
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

async fn unregister_agent(
    State(state): State<AppState>,
    caller: Caller,
    Path(address): Path<String>,
) -> Result<Json<Registered>, ApiError> {
    caller.require(&["admin"])?;
    let address: Address = parse(&address, "agent address")?;
    if !state.store().unregister_agent(address).await? {
        return Err(ApiError::not_found(format!(
            "agent {address} is not registered"
        )));
    }
    tracing::info!(agent = %address, by = %caller.name, "agent unregistered");
    Ok(Json(Registered { address }))
}

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
        })
        .collect();
    Ok(Json(RegisteredAgents { agents }))
}

async fn put_policy(
    State(state): State<AppState>,
    caller: Caller,
    Path(address): Path<String>,
    ApiJson(document): ApiJson<serde_json::Value>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(&["admin"])?;
    let wallet: Address = parse(&address, "wallet address")?;
    let policy = Policy::from_json(&document.to_string())
        .map_err(|e| ApiError::new(ErrorCode::InvalidPolicy, e.to_string()))?;
    state
        .store()
        .set_policy(wallet, &policy, state.now())
        .await?;
    tracing::info!(%wallet, version = policy.version, by = %caller.name, "policy set");
    Ok(Json(PolicySet {
        version: policy.version,
        hash: policy.hash(),
    }))
}

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

async fn pending_approvals(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(&["admin", "approver"])?;
    let format = crate::compliance::list_format(query)?;
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
            crate::compliance::page(export, APPROVAL_COLUMNS, rows, None)
        }
    })
}

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
    state
        .store()
        .resolve_approval(id, approve, &caller.name, None, state.now())
        .await?;
    tracing::info!(request = %id, approve, by = %caller.name, "approval resolved");
    Ok(Json(Resolved {
        request_id: id,
        approved: approve,
    }))
}

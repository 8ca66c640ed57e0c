//! `POST /v1/cosign`: recover and check the agent, decide, reserve, sign, record.

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chaperone_api::{
    Authorization, CosignBody, CosignRequest, CosignResponse, ErrorCode,
    cosign::{CallBody, CallBound},
};
use chaperone_core::{Address, B256, Bytes, Signature, policy::Outcome, recover_low_s};

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    decider::Job,
    http::{ApiError, ApiJson},
    openapi::error_answers,
    payability,
};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(cosign))
        .routes(routes!(bind_call))
}

error_answers!(BindErrors:
    InvalidRequest, MalformedSignature, BadSignature, NotYourCall, UnknownDecision, AlreadyBound,
    UnknownCall, CallOutsideValidity);

/// Bind an approved payment to the model call it was made within (the leaf hash of the
/// call's record), signed by the wallet's agent; set once.
#[utoipa::path(
    post,
    path = "/v1/decisions/{request_id}/call",
    params(("request_id" = chaperone_core::openapi::Hex32, Path, description = "the co-sign request id")),
    request_body = CallBody,
    responses(
        (status = 200, description = "bound (or already bound to this call)", body = CallBound),
        BindErrors,
    )
)]
async fn bind_call(
    State(state): State<AppState>,
    axum::extract::Path(request_id): axum::extract::Path<String>,
    body: Result<ApiJson<CallBody>, ApiError>,
) -> Result<Json<CallBound>, ApiError> {
    let ApiJson(body) = body?;
    let request_id: B256 = request_id
        .parse()
        .map_err(|_| ApiError::new(ErrorCode::InvalidRequest, "request_id is not 32 bytes hex"))?;
    let not_found = || {
        ApiError::new(
            ErrorCode::UnknownDecision,
            format!("no approved decision {request_id}"),
        )
    };
    let decision = state
        .store()
        .approved_decision(request_id)
        .await?
        .ok_or_else(not_found)?;
    let wallet = state
        .store()
        .wallet(decision.wallet)
        .await?
        .ok_or_else(not_found)?;
    let digest = chaperone_core::PaymentCall {
        request: request_id,
        call: body.leaf_hash,
    }
    .digest(wallet.chain_id, wallet.address);
    check_agent_signature(&body.agent_signature, &digest, wallet.agent, "binding")?;
    // The call must be this agent's own record, logged while the co-signature was valid: an
    // agent may not claim a payment was made in another agent's call, or in a call of long
    // before or after it (the agent delivers the record before it binds).
    let call = state
        .store()
        .received_record(body.leaf_hash)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::UnknownCall,
                format!(
                    "no record {} is in the log: deliver the call's record first",
                    body.leaf_hash
                ),
            )
        })?;
    if call.agent != wallet.agent {
        return Err(ApiError::new(
            ErrorCode::NotYourCall,
            format!(
                "record {} was signed by {}, not by the wallet's agent {}",
                body.leaf_hash, call.agent, wallet.agent
            ),
        ));
    }
    let received = call.received_ms / 1000;
    if received < decision.created_at || received > decision.valid_until {
        return Err(ApiError::new(
            ErrorCode::CallOutsideValidity,
            format!(
                "record {} was received at {received}, outside the decision's validity \
                 ({} to {})",
                body.leaf_hash, decision.created_at, decision.valid_until
            ),
        ));
    }
    match state.store().bind_call(request_id, body.leaf_hash).await? {
        chaperone_store::CallBinding::Bound => Ok(Json(CallBound {
            request_id,
            call_leaf_hash: body.leaf_hash,
        })),
        chaperone_store::CallBinding::BoundElsewhere(existing) => Err(ApiError::new(
            ErrorCode::AlreadyBound,
            format!("decision {request_id} is bound to call {existing}; a binding is set once"),
        )),
        chaperone_store::CallBinding::NotApproved => Err(not_found()),
    }
}

/// Checks that `signature` (65 bytes r ‖ s ‖ v, low-s) is `agent`'s over `digest`: 400 when
/// it is malformed, 401 when it is someone else's (or over something else, the `what`).
fn check_agent_signature(
    signature: &Bytes,
    digest: &B256,
    agent: Address,
    what: &str,
) -> Result<(), ApiError> {
    let signature = Signature::from_raw(signature).map_err(|_| {
        ApiError::new(
            ErrorCode::MalformedSignature,
            "agent_signature must be 65 bytes r ‖ s ‖ v",
        )
    })?;
    match recover_low_s(&signature, digest) {
        Ok(signer) if signer == agent => Ok(()),
        Ok(_) => Err(ApiError::new(
            ErrorCode::BadSignature,
            format!("agent_signature is not by the wallet's registered agent over this {what}"),
        )),
        Err(e) => Err(ApiError::new(ErrorCode::MalformedSignature, e.to_string())),
    }
}

error_answers!(CosignErrors:
    InvalidRequest, Expired, WrongChainId, MalformedSignature, BadSignature, UnknownWallet,
    NoPolicy, WalletFrozen, NoAuthorizationBudget, OverMaxValue, NonceOfAnotherPeriod,
    NonceOutsideSlots, Busy, ClockSkew, ChainUnavailable, Timeout);

/// Request a co-signature for an AgentWallet execution or an x402 payment (EIP-3009
/// authorization or Permit2 witness transfer, through EIP-1271), signed by the wallet's agent.
#[utoipa::path(
    post,
    path = "/v1/cosign",
    request_body = CosignBody,
    responses(
        (status = 200, description = "approved: the co-signature", body = CosignResponse),
        (status = 202, description = "pending a human approver", body = CosignResponse),
        (status = 403, description = "denied, with every reason (including a lifetime beyond \
            the policy's max_valid_for or a future validAfter)", body = CosignResponse),
        CosignErrors,
    )
)]
async fn cosign(
    State(state): State<AppState>,
    body: Result<ApiJson<CosignRequest>, ApiError>,
) -> Response {
    let started = std::time::Instant::now();
    let answer = match body {
        Ok(ApiJson(body)) => decide(&state, body).await,
        Err(e) => Err(e),
    };
    let (status, decision) = match &answer {
        // A replay (an SDK polling its pending request, a retry) answers a decision already
        // counted: it counts as an answer, not as a new decision.
        Ok((status, response)) => (
            *status,
            (!response.replayed).then(|| (response.outcome, &response.reasons[..])),
        ),
        Err(e) => (e.status(), None),
    };
    state
        .metrics()
        .cosign_answered(status.as_u16(), decision, started.elapsed());
    match answer {
        Ok((status, response)) => (status, Json(response)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn decide(
    state: &AppState,
    body: CosignRequest,
) -> Result<(StatusCode, CosignResponse), ApiError> {
    // Only for the early checks of shape; the decision reads the clock again under the lock.
    let now = state.now();
    // Before any database work: one wallet's flood must not take what the others need.
    let _slot = state.admit_inflight(body.wallet)?;
    let chain_id = state.chain_id();
    if body.chain_id != chain_id {
        return Err(ApiError::new(
            ErrorCode::WrongChainId,
            format!(
                "this service co-signs for chain {chain_id}, not {}",
                body.chain_id
            ),
        ));
    }
    let wallet = state.store().wallet(body.wallet).await?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnknownWallet,
            format!("wallet {} is not registered", body.wallet),
        )
    })?;
    if wallet.chain_id != chain_id {
        return Err(ApiError::new(
            ErrorCode::WrongChainId,
            "the wallet is registered on another chain",
        ));
    }

    let subject = body.payment.subject(chain_id, wallet.address, now)?;
    let digest = subject.digest;
    check_agent_signature(&body.agent_signature, &digest, wallet.agent, "request")?;
    // The rate limit counts only requests the agent signed (admission.rs), before the lock,
    // and before the chain is asked anything on the agent's behalf.
    state.admit_rate(wallet.address, now).await?;
    // A payment the wallet could never honour is refused before anything is reserved.
    if let Some(authorization) = &subject.authorization {
        payability::check(state, wallet.address, authorization, now).await?;
    }
    let request_json = serde_json::to_string(&body)
        .map_err(|_| ApiError::new(ErrorCode::InvalidRequest, "unserialisable"))?;
    let stored = state
        .decider()
        .decide(Job {
            wallet: wallet.address,
            request_id: digest,
            kind: subject.kind,
            nonce: subject.nonce,
            authorization: subject.authorization.as_ref().map(Authorization::key),
            pays: subject
                .authorization
                .as_ref()
                .map(|a| chaperone_store::AuthorizedTransfer {
                    token: a.token,
                    to: a.to,
                    value: a.value,
                    valid_from: a.valid_from,
                }),
            json: request_json,
            valid_until: subject.valid_until,
        })
        .await?;

    // Reasons in words beside the exact values (token units from the chain, cached).
    let reasons_text = crate::words::reasons_in_words(state, &stored.reasons).await;
    if let Some(notifier) = state.notifier()
        && !stored.replayed
    {
        notifier
            .decision(
                wallet.address,
                stored.request_id,
                stored.outcome,
                &stored.reasons,
                reasons_text.clone(),
                state.now(),
            )
            .await;
    }

    let status = match stored.outcome {
        Outcome::Approved => StatusCode::OK,
        Outcome::PendingApproval => StatusCode::ACCEPTED,
        Outcome::Denied => StatusCode::FORBIDDEN,
    };
    tracing::info!(wallet = %wallet.address, request = %digest, outcome = ?stored.outcome, replayed = stored.replayed, "co-sign decision");
    let response = CosignResponse {
        request_id: digest,
        outcome: stored.outcome,
        reasons: stored.reasons,
        reasons_text,
        policy_version: stored.policy_version,
        policy_hash: stored.policy_hash,
        cosigner_signature: stored
            .signature
            .map(|hex| hex.parse::<Bytes>())
            .transpose()
            .map_err(|_| ApiError::internal("a stored co-signature is not hex"))?,
        replayed: stored.replayed,
    };
    Ok((status, response))
}

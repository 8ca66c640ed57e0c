//! `POST /v1/cosign`: recover and check the agent, decide, reserve, sign, record.

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::post,
};
use chaperone_core::{
    Address, AgentMessage, B256, Bytes, Eip3009Kind, Execute, PERMIT2, PermitWitnessTransferFrom,
    Signature, TokenDomain, TransferWithAuthorization,
    policy::{Effect, Outcome, Reason, RequestKind, call_effects, typed_data_effects},
    recover_low_s,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    AppState,
    api::{ApiError, ApiJson},
    decider::Job,
    payability,
};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/cosign", post(cosign))
        .route("/v1/decisions/{request_id}/call", post(bind_call))
}

/// The agent's statement that an approved payment was made within a model call: the leaf hash
/// of the call's audit record (which commits to the payment), signed as `PaymentCall`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CallBody {
    #[schema(value_type = chaperone_core::openapi::Hex32)]
    leaf_hash: B256,
    /// The agent's signature over `PaymentCall(request, call)` in the wallet's domain.
    #[schema(value_type = chaperone_core::openapi::HexBytes)]
    agent_signature: Bytes,
}

/// The decision and the call it is bound to.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CallBound {
    #[schema(value_type = chaperone_core::openapi::Hex32)]
    request_id: B256,
    #[schema(value_type = chaperone_core::openapi::Hex32)]
    call_leaf_hash: B256,
}

async fn bind_call(
    State(state): State<AppState>,
    axum::extract::Path(request_id): axum::extract::Path<String>,
    body: Result<ApiJson<CallBody>, ApiError>,
) -> Result<Json<CallBound>, ApiError> {
    let ApiJson(body) = body?;
    let request_id: B256 = request_id
        .parse()
        .map_err(|_| ApiError::bad_request("invalid_request", "request_id is not 32 bytes hex"))?;
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_decision",
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
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_call",
                format!(
                    "no record {} is in the log: deliver the call's record first",
                    body.leaf_hash
                ),
            )
        })?;
    if call.agent != wallet.agent {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_your_call",
            format!(
                "record {} was signed by {}, not by the wallet's agent {}",
                body.leaf_hash, call.agent, wallet.agent
            ),
        ));
    }
    let received = call.received_ms / 1000;
    if received < decision.created_at || received > decision.valid_until {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "call_outside_validity",
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
            StatusCode::CONFLICT,
            "already_bound",
            format!("decision {request_id} is bound to call {existing}; a binding is set once"),
        )),
        chaperone_store::CallBinding::NotApproved => Err(not_found()),
    }
}

/// A co-sign request: what the agent wants co-signed (an `Execute`, or an x402 payment to
/// approve through the wallet's EIP-1271: an EIP-3009 authorization or a Permit2 witness
/// transfer) and the agent's signature over the same EIP-712 digest the co-signer would sign.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CosignBody {
    chain_id: u64,
    #[schema(value_type = chaperone_core::openapi::HexAddress)]
    wallet: Address,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    execute: Option<Execute>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    authorization: Option<PaymentAuthorization>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    permit2: Option<Permit2Payment>,
    #[schema(value_type = chaperone_core::openapi::HexBytes)]
    agent_signature: Bytes,
}

/// An EIP-3009 authorization from the wallet, under its token's domain.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PaymentAuthorization {
    /// `TransferWithAuthorization` (the default) or `ReceiveWithAuthorization`.
    #[serde(default)]
    primary_type: Eip3009Kind,
    domain: TokenDomain,
    message: TransferWithAuthorization,
}

/// An x402 Permit2 payment from the wallet (Permit2's domain on this chain is implied).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Permit2Payment {
    message: PermitWitnessTransferFrom,
}

/// The `authorization_key` of a Permit2 payment: Permit2 keeps one nonce book per owner for
/// every token, so its nonces are keyed under Permit2's address.
pub(crate) fn permit2_key(nonce: chaperone_core::U256) -> (Address, B256) {
    (PERMIT2, B256::from(nonce))
}

/// Where an x402 authorization's nonce is used up: the token's book (EIP-3009), or Permit2's.
fn authorization_key(payment: &payability::Authorization) -> (Address, B256) {
    match payment.method {
        payability::Method::Eip3009 => (payment.token, payment.nonce),
        payability::Method::Permit2 => {
            permit2_key(chaperone_core::U256::from_be_bytes(payment.nonce.0))
        }
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
        ApiError::bad_request(
            "bad_signature",
            "agent_signature must be 65 bytes r ‖ s ‖ v",
        )
    })?;
    match recover_low_s(&signature, digest) {
        Ok(signer) if signer == agent => Ok(()),
        Ok(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            format!("agent_signature is not by the wallet's registered agent over this {what}"),
        )),
        Err(e) => Err(ApiError::bad_request("bad_signature", e.to_string())),
    }
}

/// What is to be co-signed, checked for shape: the digest both keys sign, the engine's view of
/// it, the `Execute` nonce or the x402 authorization, and the last second at which
/// the signature can be used. The engine checks its lifetime against the policy.
struct Subject {
    digest: B256,
    kind: RequestKind,
    nonce: Option<chaperone_core::U256>,
    /// An x402 authorization as the wallet's EIP-1271 will see it.
    payment: Option<payability::Authorization>,
    valid_until: u64,
}

fn subject(
    body: &CosignBody,
    chain_id: u64,
    wallet: Address,
    now: u64,
) -> Result<Subject, ApiError> {
    match (&body.execute, &body.authorization, &body.permit2) {
        (Some(execute), None, None) => {
            if execute.validUntil <= now {
                return Err(ApiError::bad_request("expired", "validUntil has passed"));
            }
            if execute.calls.is_empty() {
                return Err(ApiError::bad_request(
                    "invalid_request",
                    "execute has no calls",
                ));
            }
            Ok(Subject {
                digest: execute.digest(chain_id, wallet),
                kind: RequestKind::Execute(execute.clone()),
                nonce: Some(execute.nonce),
                payment: None,
                valid_until: execute.validUntil,
            })
        }
        (
            None,
            Some(PaymentAuthorization {
                primary_type,
                domain,
                message,
            }),
            None,
        ) => {
            if domain.chain_id != chain_id {
                return Err(ApiError::bad_request(
                    "wrong_chain_id",
                    "the authorization's token domain is for another chain",
                ));
            }
            if message.from != wallet {
                return Err(ApiError::bad_request(
                    "invalid_request",
                    "an authorization's `from` must be the wallet",
                ));
            }
            // EIP-3009 is usable strictly before `validBefore`.
            let valid_before = u64::try_from(message.validBefore).unwrap_or(u64::MAX);
            if valid_before <= now {
                return Err(ApiError::bad_request("expired", "validBefore has passed"));
            }
            let hash = message.hash(domain, *primary_type);
            let fields = serde_json::to_value(message)
                .map_err(|_| ApiError::bad_request("invalid_request", "unserialisable"))?;
            Ok(Subject {
                digest: AgentMessage { hash }.digest(chain_id, wallet),
                kind: RequestKind::TypedData {
                    domain_name: Some(domain.name.clone()),
                    domain_version: Some(domain.version.clone()),
                    verifying_contract: domain.verifying_contract,
                    primary_type: primary_type.primary_type().into(),
                    message: fields,
                },
                nonce: None,
                payment: Some(payability::Authorization {
                    method: payability::Method::Eip3009,
                    token: domain.verifying_contract,
                    value: message.value,
                    nonce: message.nonce,
                }),
                valid_until: valid_before - 1,
            })
        }
        (None, None, Some(Permit2Payment { message })) => {
            // Permit2 honours `deadline` inclusively.
            let deadline = u64::try_from(message.deadline).unwrap_or(u64::MAX);
            if deadline < now {
                return Err(ApiError::bad_request("expired", "the deadline has passed"));
            }
            let hash = message.hash(chain_id);
            let fields = serde_json::to_value(message)
                .map_err(|_| ApiError::bad_request("invalid_request", "unserialisable"))?;
            Ok(Subject {
                digest: AgentMessage { hash }.digest(chain_id, wallet),
                kind: RequestKind::TypedData {
                    domain_name: Some("Permit2".into()),
                    domain_version: None,
                    verifying_contract: PERMIT2,
                    primary_type: "PermitWitnessTransferFrom".into(),
                    message: fields,
                },
                nonce: None,
                payment: Some(payability::Authorization {
                    method: payability::Method::Permit2,
                    token: message.permitted.token,
                    value: message.permitted.amount,
                    nonce: B256::from(message.nonce),
                }),
                valid_until: deadline,
            })
        }
        _ => Err(ApiError::bad_request(
            "invalid_request",
            "send exactly one of `execute`, `authorization` and `permit2`",
        )),
    }
}

/// What a recorded request (its `/v1/cosign` body) moves, as the policy counts it.
pub(crate) fn recorded_effects(request_json: &str) -> Vec<Effect> {
    let Ok(body) = serde_json::from_str::<CosignBody>(request_json) else {
        return Vec::new();
    };
    if let Some(execute) = &body.execute {
        return execute.calls.iter().flat_map(call_effects).collect();
    }
    let typed = match (&body.authorization, &body.permit2) {
        (Some(a), _) => serde_json::to_value(&a.message).map(|m| {
            (
                a.domain.verifying_contract,
                a.primary_type.primary_type(),
                m,
            )
        }),
        (None, Some(p)) => {
            serde_json::to_value(&p.message).map(|m| (PERMIT2, "PermitWitnessTransferFrom", m))
        }
        (None, None) => return Vec::new(),
    };
    typed
        .ok()
        .and_then(|(contract, primary_type, message)| {
            typed_data_effects(contract, primary_type, &message).ok()
        })
        .unwrap_or_default()
}

/// The recorded decision, as returned to the agent.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CosignResponse {
    #[schema(value_type = chaperone_core::openapi::Hex32)]
    request_id: B256,
    outcome: Outcome,
    reasons: Vec<Reason>,
    /// Each reason in words, amounts in token units; `reasons` keeps the exact values.
    reasons_text: Vec<String>,
    policy_version: u32,
    #[schema(value_type = chaperone_core::openapi::Hex32)]
    policy_hash: B256,
    cosigner_signature: Option<String>,
    replayed: bool,
}

async fn cosign(
    State(state): State<AppState>,
    body: Result<ApiJson<CosignBody>, ApiError>,
) -> Response {
    let started = std::time::Instant::now();
    let answer = match body {
        Ok(ApiJson(body)) => decide(&state, body).await,
        Err(e) => Err(e),
    };
    let (status, decision) = match &answer {
        Ok((status, response)) => (*status, Some((response.outcome, &response.reasons[..]))),
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
    body: CosignBody,
) -> Result<(StatusCode, CosignResponse), ApiError> {
    // Only for the early checks of shape; the decision reads the clock again under the lock.
    let now = state.now();
    // Before any database work: one wallet's flood must not take what the others need.
    let _slot = state.admit_inflight(body.wallet)?;
    let chain_id = state.inner.chain_id;
    if body.chain_id != chain_id {
        return Err(ApiError::bad_request(
            "wrong_chain_id",
            format!(
                "this service co-signs for chain {chain_id}, not {}",
                body.chain_id
            ),
        ));
    }
    let wallet = state.store().wallet(body.wallet).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_wallet",
            format!("wallet {} is not registered", body.wallet),
        )
    })?;
    if wallet.chain_id != chain_id {
        return Err(ApiError::bad_request(
            "wrong_chain_id",
            "the wallet is registered on another chain",
        ));
    }

    let subject = subject(&body, chain_id, wallet.address, now)?;
    let digest = subject.digest;
    check_agent_signature(&body.agent_signature, &digest, wallet.agent, "request")?;
    // The rate limit counts only requests the agent signed (admission.rs), before the lock,
    // and before the chain is asked anything on the agent's behalf.
    state.admit_rate(wallet.address, now).await?;
    // A payment the wallet could never honour is refused before anything is reserved.
    if let Some(payment) = &subject.payment {
        payability::check(state, wallet.address, payment, now).await?;
    }
    let request_json = serde_json::to_string(&body)
        .map_err(|_| ApiError::bad_request("invalid_request", "unserialisable"))?;
    let stored = state
        .decider()
        .decide(Job {
            wallet: wallet.address,
            request_id: digest,
            kind: subject.kind,
            nonce: subject.nonce,
            authorization: subject.payment.as_ref().map(authorization_key),
            json: request_json,
            valid_until: subject.valid_until,
        })
        .await?;

    // Reasons in words beside the exact values (token units from the chain, cached).
    let reasons_text = crate::console::reasons_in_words(state, &stored.reasons).await;
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
        cosigner_signature: stored.signature,
        replayed: stored.replayed,
    };
    Ok((status, response))
}

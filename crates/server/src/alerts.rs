//! `/v1/unauthorized-spends`: reconciliation's alerts. The indexer stores every on-chain
//! outflow of a registered wallet that no approved co-sign decision accounts for (see
//! `chaperone_store`'s `reconcile.rs`); auditors and admins list them, an admin acknowledges
//! one once the owner has acted (the console's banner stays until then).

use axum::{
    Json,
    extract::{Path, State},
};
use chaperone_api::alerts::{OutflowKind, SpendReason, UnauthorizedSpendRow, UnauthorizedSpends};
use chaperone_core::readable::iso8601;
use chaperone_store::UnauthorizedSpend;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    http::{ApiError, Caller},
    openapi::error_answers,
};

/// The most spends a list returns.
const LISTED: u32 = 1_000;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(acknowledge))
}

/// Why a stored spend is unauthorized (the store's `reason` code).
pub(crate) fn reason(s: &UnauthorizedSpend) -> SpendReason {
    match s.reason.as_str() {
        "other_payment" => SpendReason::OtherPayment,
        "outside_validity" => SpendReason::OutsideValidity,
        _ => SpendReason::NoDecision,
    }
}

/// The wire row of a stored spend.
pub(crate) fn row(s: UnauthorizedSpend) -> UnauthorizedSpendRow {
    let (acknowledged_by, acknowledged_at) = s.acknowledged.clone().unzip();
    let reason = reason(&s);
    UnauthorizedSpendRow {
        id: s.id,
        wallet: s.wallet,
        kind: match s.kind.as_str() {
            "eip3009" => OutflowKind::Eip3009,
            "permit2" => OutflowKind::Permit2,
            _ => OutflowKind::Execute,
        },
        reason,
        reason_text: reason.text().to_owned(),
        block_number: s.block_number,
        tx_hash: s.tx_hash,
        contract: s.contract,
        nonce: s.nonce,
        detected_at: s.detected_at,
        detected_at_iso: iso8601(s.detected_at),
        acknowledged_by,
        acknowledged_at,
    }
}

/// Outflows no approved decision accounts for, newest first: each means the co-signer key
/// signed without the service (freeze the wallet, rotate the co-signer).
#[utoipa::path(
    get,
    path = "/v1/unauthorized-spends",
    description = "Roles: auditor, admin.",
    security(("bearer" = [])),
    responses((status = 200, description = "the newest 1,000 unauthorized spends", body = UnauthorizedSpends))
)]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<UnauthorizedSpends>, ApiError> {
    caller.require(&["auditor", "admin"])?;
    let store = state.store();
    let open = store.open_unauthorized_spends().await?;
    let items = store
        .unauthorized_spends(false, LISTED)
        .await?
        .into_iter()
        .map(row)
        .collect();
    Ok(Json(UnauthorizedSpends { open, items }))
}

error_answers!(AcknowledgeErrors: NotFound);

/// Acknowledge an unauthorized spend (the owner has been told and acts): it leaves the
/// console's banner. The first acknowledgement stands; acknowledging again changes nothing.
#[utoipa::path(
    post,
    path = "/v1/unauthorized-spends/{id}/acknowledge",
    description = "Roles: admin.",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "the spend's id")),
    responses((status = 200, description = "acknowledged", body = UnauthorizedSpendRow), AcknowledgeErrors)
)]
async fn acknowledge(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<UnauthorizedSpendRow>, ApiError> {
    caller.require(&["admin"])?;
    let spend = acknowledge_by(&state, &id, &caller.name).await?;
    Ok(Json(row(spend)))
}

/// Acknowledges spend `id` (as written in a path or a form) in `by`'s name.
pub(crate) async fn acknowledge_by(
    state: &AppState,
    id: &str,
    by: &str,
) -> Result<UnauthorizedSpend, ApiError> {
    let missing = || ApiError::not_found(format!("no unauthorized spend has id `{id}`"));
    let number: i64 = id.parse().map_err(|_| missing())?;
    let spend = state
        .store()
        .acknowledge_unauthorized_spend(number, by, state.now())
        .await?
        .ok_or_else(missing)?;
    tracing::warn!(id = number, wallet = %spend.wallet, by, "unauthorized spend acknowledged");
    Ok(spend)
}

//! The audit log over HTTP: ingest signed batches, serve inclusion proofs and checkpoints, and
//! verify disclosure bundles end to end (the on-chain anchor included).

use axum::{
    Json,
    extract::{DefaultBodyLimit, Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chaperone_api::{
    ErrorCode,
    audit::{
        AnchorView, CheckpointResponse, IngestBody, IngestResponse, ProofResponse, RecordPosition,
        VerifyResponse,
    },
    evidence::SERVICE_MODEL_PREFIX,
};
use chaperone_core::{B256, BatchReceipt, DisclosureBundle, SignedBatch};
use chaperone_store::Anchor;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState, LogConfig,
    http::{ApiError, ApiJson},
    openapi::error_answers,
};

/// The largest `POST /v1/records` body: about 10,000 records of JSON.
pub const MAX_BATCH_BODY_BYTES: usize = 8 * 1024 * 1024;
/// The most records one batch may hold.
pub const MAX_BATCH_RECORDS: usize = 10_000;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    // Batches may be larger than the other bodies.
    let ingestion = OpenApiRouter::new()
        .routes(routes!(ingest))
        .layer(DefaultBodyLimit::max(MAX_BATCH_BODY_BYTES));
    OpenApiRouter::new()
        .merge(ingestion)
        .routes(routes!(proof))
        .routes(routes!(latest_checkpoint))
        .routes(routes!(verify))
}

fn core_error(e: chaperone_core::Error) -> ApiError {
    use chaperone_core::Error as E;
    let message = e.to_string();
    match e {
        E::WrongSigner { .. } => ApiError::new(ErrorCode::BadSignature, message),
        E::InvalidSignature(_) => ApiError::new(ErrorCode::MalformedSignature, message),
        E::InvalidBatch(_) => ApiError::new(ErrorCode::InvalidBatch, message),
        E::InvalidRecord(_) | E::RecordEncoding(_) => {
            ApiError::new(ErrorCode::InvalidRecord, message)
        }
        _ => ApiError::new(ErrorCode::InvalidProof, message),
    }
}

error_answers!(IngestErrors:
    InvalidBatch, InvalidRecord, OutOfRange, MalformedSignature, BadSignature, AgentNotRegistered,
    SequenceGap, BrokenChain);

/// Ingest a batch of records signed once by their agent; returns the operator's receipt.
#[utoipa::path(
    post,
    path = "/v1/records",
    request_body = IngestBody,
    responses(
        (status = 201, description = "appended: receipt, leaf hash and index of every record", body = IngestResponse),
        (status = 200, description = "this exact batch was appended before: the same receipt", body = IngestResponse),
        IngestErrors,
    )
)]
async fn ingest(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<IngestBody>,
) -> Result<Response, ApiError> {
    if body.records.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidBatch,
            "a batch needs at least one record",
        ));
    }
    if body.records.len() > MAX_BATCH_RECORDS {
        return Err(ApiError::new(
            ErrorCode::InvalidBatch,
            format!("a batch holds at most {MAX_BATCH_RECORDS} records"),
        ));
    }
    // The log stores sequences and times as signed 64-bit integers: refuse larger ones here,
    // before any work, with the field named.
    for (i, record) in body.records.iter().enumerate() {
        for (field, value) in [
            ("sequence", record.sequence),
            ("timestamp_ms", record.timestamp_ms),
        ] {
            if i64::try_from(value).is_err() {
                return Err(ApiError::new(
                    ErrorCode::OutOfRange,
                    format!("record {i}: {field} {value} is out of range: it must be below 2^63"),
                ));
            }
        }
        if record.model.starts_with(SERVICE_MODEL_PREFIX) {
            return Err(ApiError::new(
                ErrorCode::InvalidRecord,
                format!(
                    "record {i}: the model id prefix {SERVICE_MODEL_PREFIX} is reserved for the \
                     policy service's own records"
                ),
            ));
        }
    }
    let batch = SignedBatch {
        records: body.records,
        signature: body.signature,
    };
    // Signature recovery and hashing are CPU work: keep them off the async workers.
    let (batch, leaves) = tokio::task::spawn_blocking(move || {
        let leaves = batch.verify();
        (batch, leaves)
    })
    .await
    .map_err(|_| ApiError::internal("batch verification panicked"))?;
    let leaves = leaves.map_err(core_error)?;
    // Only the deployment's own agents write to its log (verified above: every record is
    // signed by this key).
    let agent = batch.records[0].agent;
    if !state.store().agent_registered(agent).await? {
        return Err(ApiError::new(
            ErrorCode::AgentNotRegistered,
            format!("agent {agent} is not registered with this deployment: an admin registers it"),
        ));
    }
    let appended = state
        .store()
        .append_batch(&batch, &leaves, state.now() * 1000, &[])
        .await?;
    if !appended.replayed {
        state.metrics().records_ingested(leaves.len() as u64);
    }
    let log = state.log();
    let receipt = BatchReceipt::sign(
        &log.origin,
        appended.first_index,
        leaves.len() as u64,
        appended.batch_root,
        appended.received_ms,
        &log.operator,
    )
    .map_err(|_| ApiError::internal("signing the receipt failed"))?;
    tracing::debug!(
        agent = %batch.records[0].agent,
        records = leaves.len(),
        first_index = appended.first_index,
        replayed = appended.replayed,
        "batch ingested"
    );
    let status = if appended.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let records = leaves
        .iter()
        .enumerate()
        .map(|(i, leaf)| RecordPosition {
            leaf_hash: *leaf,
            index: appended.first_index + i as u64,
        })
        .collect();
    let response = IngestResponse {
        receipt,
        records,
        replayed: appended.replayed,
    };
    Ok((status, Json(response)).into_response())
}

fn anchor_view(log: &LogConfig, anchor: Anchor) -> AnchorView {
    AnchorView {
        audit_log: log.chain.as_ref().map(|c| c.audit_log),
        log_id: log.chain.as_ref().map(|c| c.log_id),
        size: anchor.size,
        tx_hash: anchor.tx_hash,
        block_number: anchor.block_number,
    }
}

error_answers!(ProofErrors: UnknownRecord, NotCheckpointed, OutOfRange);

/// Inclusion proof of a record in the latest anchored (else signed) checkpoint, with the
/// anchor.
#[utoipa::path(
    get,
    path = "/v1/records/{leaf_hash}/proof",
    params(("leaf_hash" = chaperone_core::openapi::Hex32, Path, description = "the record's leaf hash")),
    responses(
        (status = 200, description = "record, batch membership, inclusion proof, checkpoint note, anchor", body = ProofResponse),
        ProofErrors,
    )
)]
async fn proof(
    State(state): State<AppState>,
    Path(leaf_hash): Path<String>,
) -> Result<Json<ProofResponse>, ApiError> {
    let leaf_hash: B256 = leaf_hash.parse().map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            "leaf_hash must be 32 bytes of 0x hex",
        )
    })?;
    let store = state.store();
    let logged = store
        .record(leaf_hash)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::UnknownRecord, "no record with this leaf hash"))?;
    let batch = store
        .batch_membership(leaf_hash)
        .await?
        .ok_or_else(|| ApiError::internal("record without its batch"))?;
    // Prefer the latest anchored checkpoint (verifiable on chain); else the latest signed one.
    let anchor = store
        .latest_anchor()
        .await?
        .filter(|a| a.size > logged.index);
    let checkpoint = match &anchor {
        Some(a) => store.checkpoint(a.size).await?,
        None => None,
    };
    let (checkpoint, anchor) = match checkpoint {
        Some(c) => (c, anchor),
        None => match store.latest_checkpoint().await? {
            Some((c, _)) if c.size > logged.index => (c, None),
            _ => {
                return Err(ApiError::new(
                    ErrorCode::NotCheckpointed,
                    "the record is logged but no checkpoint covers it yet; retry after the next checkpoint",
                ));
            }
        },
    };
    let inclusion = store.inclusion_proof(logged.index, checkpoint.size).await?;
    Ok(Json(ProofResponse {
        leaf_hash,
        index: logged.index,
        record: logged.record,
        batch,
        inclusion,
        checkpoint: checkpoint.note,
        anchor: anchor.map(|a| anchor_view(state.log(), a)),
    }))
}

error_answers!(CheckpointErrors: NotFound);

/// The latest signed checkpoint and its anchor.
#[utoipa::path(
    get,
    path = "/v1/checkpoints/latest",
    responses((status = 200, description = "checkpoint", body = CheckpointResponse), CheckpointErrors)
)]
async fn latest_checkpoint(
    State(state): State<AppState>,
) -> Result<Json<CheckpointResponse>, ApiError> {
    let store = state.store();
    let (checkpoint, _) = store
        .latest_checkpoint()
        .await?
        .ok_or_else(|| ApiError::not_found("no checkpoint has been signed yet"))?;
    let anchor = store.anchor_at(checkpoint.size).await?;
    Ok(Json(CheckpointResponse {
        size: checkpoint.size,
        root: checkpoint.root,
        note: checkpoint.note,
        anchor: anchor.map(|a| anchor_view(state.log(), a)),
    }))
}

error_answers!(VerifyErrors:
    InvalidDisclosure, InvalidProof, AnchorMismatch, NotAnchored, MalformedSignature,
    BadSignature, ChainUnreachable, NoChain);

/// Verify a disclosure bundle end to end, the on-chain anchor included.
#[utoipa::path(
    post,
    path = "/v1/verify",
    request_body = DisclosureBundle,
    responses((status = 200, description = "valid", body = VerifyResponse), VerifyErrors)
)]
async fn verify(
    State(state): State<AppState>,
    ApiJson(bundle): ApiJson<DisclosureBundle>,
) -> Result<Json<VerifyResponse>, ApiError> {
    crate::verification::verify_bundle(&state, &bundle)
        .await
        .map(Json)
}

//! Verifying a disclosure bundle end to end: its own checks (openings, record, batch
//! signature, inclusion, checkpoint signature), then the root on chain (`AuditLog.rootAt` and
//! `verifyInclusion`). The API's `POST /v1/verify` and the console's verify page both call it.

use chaperone_api::{ErrorCode, audit::VerifyResponse};
use chaperone_chain::AuditLog;
use chaperone_core::{CheckpointVerifier, DisclosureBundle};

use crate::{AppState, http::ApiError};

/// Verifies a disclosure bundle against this server's log and the chain (also the console's
/// verify page).
pub(crate) async fn verify_bundle(
    state: &AppState,
    bundle: &DisclosureBundle,
) -> Result<VerifyResponse, ApiError> {
    let log = state.log();
    let invalid = |message: String| ApiError::new(ErrorCode::InvalidDisclosure, message);
    let verifier = CheckpointVerifier {
        name: log.origin.clone(),
        address: log.operator.address(),
    };
    let verified = bundle
        .verify(&verifier)
        .map_err(|e| invalid(e.to_string()))?;
    if verified.checkpoint.origin != log.origin {
        return Err(invalid(format!(
            "the checkpoint is of log `{}`, this server runs `{}`",
            verified.checkpoint.origin, log.origin
        )));
    }
    let chain = log.chain.as_ref().ok_or_else(|| {
        ApiError::new(ErrorCode::NoChain,
            "this server has no chain configured (--rpc-url, --audit-log, --log-id), so the anchor cannot be checked",
        )
    })?;
    let contract = AuditLog::new(chain.audit_log, &chain.provider);
    let size = verified.checkpoint.size;
    let chain_error = |e: alloy::contract::Error| {
        tracing::warn!(error = %e, "reading AuditLog failed");
        ApiError::new(
            ErrorCode::ChainUnreachable,
            "the chain did not answer; retry",
        )
    };
    let anchored = contract
        .rootAt(chain.log_id, size)
        .call()
        .await
        .map_err(chain_error)?;
    if anchored.is_zero() {
        return Err(ApiError::new(
            ErrorCode::NotAnchored,
            format!("tree size {size} is not anchored on chain"),
        ));
    }
    if anchored != verified.checkpoint.root {
        return Err(ApiError::new(
            ErrorCode::AnchorMismatch,
            format!(
                "the chain anchored root {anchored} at size {size}, the checkpoint says {}",
                verified.checkpoint.root
            ),
        ));
    }
    let included = contract
        .verifyInclusion(
            chain.log_id,
            size,
            verified.index,
            verified.leaf_hash,
            bundle.inclusion.path.clone(),
        )
        .call()
        .await
        .map_err(chain_error)?;
    if !included {
        return Err(invalid(
            "AuditLog.verifyInclusion rejected the proof".into(),
        ));
    }
    let anchor_tx = state.store().anchor_at(size).await?.map(|a| a.tx_hash);
    Ok(VerifyResponse {
        valid: true,
        leaf_hash: verified.leaf_hash,
        index: verified.index,
        agent: bundle.record.agent,
        checkpoint_size: size,
        checkpoint_root: verified.checkpoint.root,
        audit_log: chain.audit_log,
        log_id: chain.log_id,
        anchor_tx,
    })
}

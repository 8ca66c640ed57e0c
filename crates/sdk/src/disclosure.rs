//! Disclosure files an auditor can check end to end: the openings, the record, the agent's
//! batch signature, the inclusion proof, the operator's signed checkpoint, and the on-chain
//! anchor, verified against the `AuditLog` contract itself.

use std::{io::Write, os::unix::fs::OpenOptionsExt, path::Path};

use alloy::{providers::Provider, rpc::types::Filter, sol_types::SolEvent};
use chaperone_api::audit::{AnchorView, ProofResponse};
use chaperone_chain::AuditLog;
use chaperone_core::{
    Address, B256, CheckpointVerifier, CommitmentKind, DisclosedContent, DisclosureBundle,
};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The disclosure of a record from the server's proof and the openings `disclosed`.
pub(crate) fn disclosure_of(proof: ProofResponse, disclosed: Vec<DisclosedContent>) -> Disclosure {
    Disclosure {
        bundle: DisclosureBundle {
            record: proof.record,
            disclosed,
            batch: proof.batch,
            inclusion: proof.inclusion,
            checkpoint: proof.checkpoint,
        },
        anchor: proof.anchor,
    }
}

/// A disclosure file: a [`DisclosureBundle`] plus where its checkpoint was anchored. The JSON
/// is also what `POST /v1/verify` takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disclosure {
    /// The bundle.
    #[serde(flatten)]
    pub bundle: DisclosureBundle,
    /// The anchor the server reported, if the checkpoint was anchored yet.
    pub anchor: Option<AnchorView>,
}

/// The log an auditor trusts, named by the auditor (or the deployment's configuration), never
/// by the bundle under test: `AuditLog.createLog` is open to anyone, so a compromised agent can
/// create a log of its own, anchor a made-up record signed with its real key, and hand over a
/// bundle whose checkpoint names that log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedLog {
    /// The `AuditLog` contract.
    pub audit_log: Address,
    /// The deployment's log id in it.
    pub log_id: B256,
}

/// What a disclosure proved, checked against the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifiedOnChain {
    /// The record's leaf hash.
    pub leaf_hash: B256,
    /// Its index in the log.
    pub index: u64,
    /// The agent that signed it.
    pub agent: Address,
    /// The model id.
    pub model: String,
    /// When the agent made it (ms since the Unix epoch).
    pub timestamp_ms: u64,
    /// The anchored tree size the proof is against.
    pub checkpoint_size: u64,
    /// The root the chain holds for that size.
    pub checkpoint_root: B256,
    /// The `AuditLog` contract.
    pub audit_log: Address,
    /// The log id.
    pub log_id: B256,
    /// The log's operator (from the contract), who signed the checkpoint.
    pub operator: Address,
    /// The log's owner (from the contract), who may change its operator.
    pub log_owner: Address,
    /// The block whose `Anchored` event put this checkpoint on chain, when found.
    pub anchor_block: Option<u64>,
    /// That block's time (seconds since the Unix epoch): the record existed by then, whatever
    /// its own `timestamp_ms` (the agent's claim) says.
    pub anchored_at: Option<u64>,
    /// The commitments the disclosed content opened.
    pub disclosed: Vec<CommitmentKind>,
}

impl Disclosure {
    /// Reads a disclosure file.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Invalid(format!("reading {}: {e}", path.display())))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::Invalid(format!("{} is not a disclosure: {e}", path.display())))
    }

    /// Writes it as pretty JSON, readable by its owner alone (0600): it holds the disclosed
    /// content and salts, for the owner to hand to an auditor.
    pub fn write(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self)
            .map_err(|e| Error::Invalid(format!("serialising: {e}")))?;
        // Written to a new private file beside it, then renamed over it: a symlink planted at
        // `path` is replaced, never followed (its target is neither truncated nor chmodded).
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(format!(".{}.tmp", std::process::id()));
        let temporary = std::path::PathBuf::from(temporary);
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)
            .and_then(|mut file| file.write_all(json.as_bytes()))
            .and_then(|()| std::fs::rename(&temporary, path));
        written.map_err(|e| {
            let _ = std::fs::remove_file(&temporary);
            Error::Invalid(format!("writing {}: {e}", path.display()))
        })
    }

    /// Verifies everything against the chain `provider` serves and the log the auditor
    /// `trusts`: the checkpoint names exactly that `AuditLog` and log on this chain (any other
    /// log is refused, however valid); the log's operator (read from the contract) signed it;
    /// the disclosed content opens the record's commitments; the agent signed the record; the
    /// record is included at the checkpoint's size; the contract holds that root for that size
    /// and accepts the inclusion proof itself. It also finds when the chain anchored it.
    pub async fn verify_on_chain<P: Provider>(
        &self,
        provider: &P,
        trusted: &TrustedLog,
    ) -> Result<VerifiedOnChain> {
        let chain_error = |e: alloy::contract::Error| Error::Chain(e.to_string());
        let origin = self
            .bundle
            .checkpoint
            .lines()
            .next()
            .ok_or_else(|| Error::Invalid("the checkpoint is empty".into()))?;
        let (chain_id, audit_log, log_id) = parse_origin(origin)?;
        let served = provider
            .get_chain_id()
            .await
            .map_err(|e| Error::Chain(e.to_string()))?;
        if served != chain_id {
            return Err(Error::Invalid(format!(
                "the log is on chain {chain_id}, the RPC serves chain {served}"
            )));
        }
        if (audit_log, log_id) != (trusted.audit_log, trusted.log_id) {
            return Err(Error::Invalid(format!(
                "the bundle's checkpoint is of log {log_id} in AuditLog {audit_log}, not of the \
                 log you trust ({} in AuditLog {})",
                trusted.log_id, trusted.audit_log
            )));
        }
        let contract = AuditLog::new(audit_log, provider);
        let info = contract.logInfo(log_id).call().await.map_err(chain_error)?;
        if info.operator.is_zero() {
            return Err(Error::Invalid(format!(
                "log {log_id} does not exist in AuditLog {audit_log}"
            )));
        }
        let verifier = CheckpointVerifier {
            name: origin.to_owned(),
            address: info.operator,
        };
        let verified = self
            .bundle
            .verify(&verifier)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let size = verified.checkpoint.size;
        let anchored = contract
            .rootAt(log_id, size)
            .call()
            .await
            .map_err(chain_error)?;
        if anchored.is_zero() {
            return Err(Error::Invalid(format!(
                "tree size {size} is not anchored on chain (yet)"
            )));
        }
        if anchored != verified.checkpoint.root {
            return Err(Error::Invalid(format!(
                "the chain anchored root {anchored} at size {size}; the checkpoint says {}",
                verified.checkpoint.root
            )));
        }
        let included = contract
            .verifyInclusion(
                log_id,
                size,
                verified.index,
                verified.leaf_hash,
                self.bundle.inclusion.path.clone(),
            )
            .call()
            .await
            .map_err(chain_error)?;
        if !included {
            return Err(Error::Invalid(
                "AuditLog.verifyInclusion rejected the proof".into(),
            ));
        }
        let anchor = self
            .anchoring_block(provider, trusted, size, anchored)
            .await?;
        let record = &self.bundle.record;
        Ok(VerifiedOnChain {
            leaf_hash: verified.leaf_hash,
            index: verified.index,
            agent: record.agent,
            model: record.model.clone(),
            timestamp_ms: record.timestamp_ms,
            checkpoint_size: size,
            checkpoint_root: anchored,
            audit_log,
            log_id,
            operator: info.operator,
            log_owner: info.owner,
            anchor_block: anchor.map(|(block, _)| block),
            anchored_at: anchor.map(|(_, time)| time),
            disclosed: self.bundle.disclosed.iter().map(|d| d.kind).collect(),
        })
    }

    /// The block (and its time) of the `Anchored(log_id, size, root)` event. The server's
    /// anchor reference is only a hint of where to look: the event itself is read from the
    /// chain, in that block first, else over the whole history (an RPC may refuse so wide a
    /// range: then the time is unknown, which `verify` says).
    async fn anchoring_block<P: Provider>(
        &self,
        provider: &P,
        trusted: &TrustedLog,
        size: u64,
        root: B256,
    ) -> Result<Option<(u64, u64)>> {
        let filter = Filter::new()
            .address(trusted.audit_log)
            .event_signature(AuditLog::Anchored::SIGNATURE_HASH)
            .topic1(trusted.log_id);
        let hint = self.anchor.as_ref().map(|a| a.block_number);
        let ranges = hint
            .map(|b| filter.clone().from_block(b).to_block(b))
            .into_iter()
            .chain([filter.from_block(0)]);
        for range in ranges {
            let Ok(logs) = provider.get_logs(&range).await else {
                continue;
            };
            let found = logs.iter().find_map(|log| {
                let event = log.log_decode::<AuditLog::Anchored>().ok()?;
                let data = &event.inner.data;
                (data.size == size && data.root == root).then_some(log.block_number?)
            });
            if let Some(block) = found {
                let header = provider
                    .get_block_by_number(block.into())
                    .await
                    .map_err(|e| Error::Chain(e.to_string()))?
                    .ok_or_else(|| Error::Chain(format!("block {block} is not served")))?;
                return Ok(Some((block, header.header.timestamp)));
            }
        }
        Ok(None)
    }
}

/// `chaperone.dev/<chain id>/<AuditLog>/<log id>` → its parts.
pub(crate) fn parse_origin(origin: &str) -> Result<(u64, Address, B256)> {
    let parts: Vec<&str> = origin.split('/').collect();
    let parsed = match parts.as_slice() {
        ["chaperone.dev", chain, audit_log, log_id] => chain
            .parse()
            .ok()
            .zip(audit_log.parse().ok())
            .zip(log_id.parse().ok()),
        _ => None,
    };
    parsed.map(|((c, a), l)| (c, a, l)).ok_or_else(|| {
        Error::Invalid(format!(
            "checkpoint origin `{origin}` is not an anchored Chaperone log \
                 (chaperone.dev/<chain id>/<AuditLog>/<log id>)"
        ))
    })
}

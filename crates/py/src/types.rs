//! The SDK's result values as read-only Python objects.

use std::path::PathBuf;

use alloy::providers::ProviderBuilder;
use pyo3::prelude::*;

use crate::{block_on, convert, errors};

/// What one `record` committed to. Pass it to `Recorder.receipt`.
#[pyclass(frozen, module = "chaperone")]
pub(crate) struct Recorded {
    pub(crate) inner: chaperone_sdk::Recorded,
}

#[pymethods]
impl Recorded {
    /// The record's leaf hash: its id in the log and in the local store (`0x…`).
    #[getter]
    fn leaf_hash(&self) -> String {
        self.inner.leaf_hash.to_string()
    }

    /// Its place in the agent's chain of records (0, 1, 2, …).
    #[getter]
    fn sequence(&self) -> u64 {
        self.inner.record.sequence
    }

    /// The model id it was recorded under.
    #[getter]
    fn model(&self) -> &str {
        &self.inner.record.model
    }

    /// When it was recorded (ms since the Unix epoch).
    #[getter]
    fn timestamp_ms(&self) -> u64 {
        self.inner.record.timestamp_ms
    }

    /// The agent that signs it.
    #[getter]
    fn agent(&self) -> String {
        convert::checksummed(self.inner.record.agent)
    }

    fn __repr__(&self) -> String {
        format!(
            "Recorded(sequence={}, leaf_hash='{}')",
            self.inner.record.sequence, self.inner.leaf_hash
        )
    }
}

/// A delivered record's receipt: the log operator's signed promise to include its batch.
#[pyclass(frozen, get_all, module = "chaperone")]
pub(crate) struct RecordReceipt {
    /// The record's index in the log.
    index: u64,
    /// The log's origin line.
    origin: String,
    /// The batch's first index and size.
    batch_first_index: u64,
    batch_size: u64,
    /// RFC 9162 root of the batch.
    batch_root: String,
    /// When the log accepted the batch (ms since the Unix epoch).
    timestamp_ms: u64,
    /// The operator's signature (65 bytes, `0x…`).
    signature: String,
}

impl From<chaperone_sdk::RecordReceipt> for RecordReceipt {
    fn from(receipt: chaperone_sdk::RecordReceipt) -> Self {
        let batch = receipt.receipt;
        Self {
            index: receipt.index,
            origin: batch.origin,
            batch_first_index: batch.first_index,
            batch_size: batch.size,
            batch_root: batch.batch_root.to_string(),
            timestamp_ms: batch.timestamp_ms,
            signature: format!("0x{}", alloy::hex::encode(batch.signature.as_bytes())),
        }
    }
}

#[pymethods]
impl RecordReceipt {
    fn __repr__(&self) -> String {
        format!(
            "RecordReceipt(index={}, batch_root='{}')",
            self.index, self.batch_root
        )
    }
}

/// How far the recorder's background tasks got, in sequence numbers (exclusive).
#[pyclass(frozen, get_all, module = "chaperone")]
pub(crate) struct Progress {
    /// Records below this are in the outbox (they survive a crash).
    persisted: u64,
    /// Records below this have receipts.
    delivered: u64,
    /// The batch the server refused for good, and why; `None` normally.
    rejected: Option<(i64, String)>,
}

impl From<chaperone_sdk::Progress> for Progress {
    fn from(progress: chaperone_sdk::Progress) -> Self {
        Self {
            persisted: progress.persisted,
            delivered: progress.delivered,
            rejected: progress.rejected,
        }
    }
}

#[pymethods]
impl Progress {
    fn __repr__(&self) -> String {
        format!(
            "Progress(persisted={}, delivered={}, rejected={:?})",
            self.persisted, self.delivered, self.rejected
        )
    }
}

/// An executed, co-signed transaction.
#[pyclass(frozen, get_all, module = "chaperone")]
pub(crate) struct Executed {
    /// The co-sign request's id (its EIP-712 digest), as approvers and exports show it.
    request_id: String,
    /// The transaction hash.
    tx_hash: String,
    /// Its block.
    block_number: u64,
    /// Gas it used.
    gas_used: u64,
}

impl From<chaperone_sdk::Executed> for Executed {
    fn from(executed: chaperone_sdk::Executed) -> Self {
        Self {
            request_id: executed.request_id.to_string(),
            tx_hash: executed.tx_hash.to_string(),
            block_number: executed.block_number,
            gas_used: executed.gas_used,
        }
    }
}

#[pymethods]
impl Executed {
    fn __repr__(&self) -> String {
        format!(
            "Executed(tx_hash='{}', block_number={})",
            self.tx_hash, self.block_number
        )
    }
}

/// A payment a human approver must approve first. Pass it to `Wallet.wait_for_approval`; it
/// stays the same request (same nonce and id) throughout.
#[pyclass(frozen, module = "chaperone")]
pub(crate) struct PendingPayment {
    pub(crate) inner: chaperone_sdk::PendingPayment,
}

impl From<chaperone_sdk::PendingPayment> for PendingPayment {
    fn from(inner: chaperone_sdk::PendingPayment) -> Self {
        Self { inner }
    }
}

#[pymethods]
impl PendingPayment {
    /// The request's id, as approvers see it in `GET /v1/admin/approvals`.
    #[getter]
    fn request_id(&self) -> String {
        self.inner.request_id.to_string()
    }

    fn __repr__(&self) -> String {
        format!("PendingPayment(request_id='{}')", self.inner.request_id)
    }
}

/// An EIP-3009 `TransferWithAuthorization` from the wallet, signed by the agent and
/// co-signed within the policy: what an x402 "exact" payment carries.
#[pyclass(frozen, module = "chaperone")]
pub(crate) struct SignedAuthorization {
    pub(crate) inner: chaperone_sdk::SignedAuthorization,
}

#[pymethods]
impl SignedAuthorization {
    /// The EIP-712 hash the token passes to the wallet's `isValidSignature`.
    #[getter]
    fn hash(&self) -> String {
        self.inner.hash.to_string()
    }

    /// The wallet's EIP-1271 signature (agent ‖ co-signer ‖ the authorization), `0x…`.
    #[getter]
    fn signature(&self) -> String {
        self.inner.signature.to_string()
    }

    /// The token's EIP-712 domain: `name`, `version`, `chain_id`, `verifying_contract`.
    #[getter]
    fn domain<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
        let domain = &self.inner.domain;
        let dict = pyo3::types::PyDict::new(py);
        dict.set_item("name", &domain.name)?;
        dict.set_item("version", &domain.version)?;
        dict.set_item("chain_id", domain.chain_id)?;
        dict.set_item(
            "verifying_contract",
            convert::checksummed(domain.verifying_contract),
        )?;
        Ok(dict)
    }

    /// The authorization: `from`, `to`, `value`, `valid_after`, `valid_before`, `nonce`.
    #[getter]
    fn message<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
        let message = &self.inner.message;
        let dict = pyo3::types::PyDict::new(py);
        dict.set_item("from", convert::checksummed(message.from))?;
        dict.set_item("to", convert::checksummed(message.to))?;
        dict.set_item("value", convert::int(py, message.value)?)?;
        dict.set_item("valid_after", convert::int(py, message.validAfter)?)?;
        dict.set_item("valid_before", convert::int(py, message.validBefore)?)?;
        dict.set_item("nonce", message.nonce.to_string())?;
        Ok(dict)
    }

    fn __repr__(&self) -> String {
        format!("SignedAuthorization(hash='{}')", self.inner.hash)
    }
}

/// What a disclosure proved, checked against the chain.
#[pyclass(frozen, get_all, module = "chaperone")]
pub(crate) struct VerifiedOnChain {
    leaf_hash: String,
    index: u64,
    agent: String,
    model: String,
    timestamp_ms: u64,
    checkpoint_size: u64,
    checkpoint_root: String,
    audit_log: String,
    log_id: String,
    operator: String,
    log_owner: String,
    anchor_block: Option<u64>,
    anchored_at: Option<u64>,
    /// The commitments the disclosed content opened: `"input"`, `"output"`, `"metadata"`.
    disclosed: Vec<String>,
}

#[pymethods]
impl VerifiedOnChain {
    fn __repr__(&self) -> String {
        format!(
            "VerifiedOnChain(index={}, leaf_hash='{}', checkpoint_size={})",
            self.index, self.leaf_hash, self.checkpoint_size
        )
    }
}

/// A disclosure of one record for an auditor: the opened content, the record, the agent's
/// signature, the inclusion proof, the signed checkpoint and its anchor.
#[pyclass(frozen, module = "chaperone")]
pub(crate) struct Disclosure {
    pub(crate) inner: chaperone_sdk::Disclosure,
}

#[pymethods]
impl Disclosure {
    /// Reads a disclosure file (what `write` and `chaperone verify` use).
    #[staticmethod]
    fn read(path: PathBuf) -> PyResult<Self> {
        let inner = chaperone_sdk::Disclosure::read(&path).map_err(errors::to_py)?;
        Ok(Self { inner })
    }

    /// Parses the JSON form.
    #[staticmethod]
    fn from_json(text: &str) -> PyResult<Self> {
        serde_json::from_str(text)
            .map(|inner| Self { inner })
            .map_err(|e| errors::Invalid::new_err(format!("not a disclosure: {e}")))
    }

    /// The JSON form (also what `POST /v1/verify` takes).
    fn to_json(&self) -> String {
        serde_json::to_string(&self.inner).unwrap_or_default()
    }

    /// Writes it as pretty JSON, for `chaperone verify FILE`.
    fn write(&self, path: PathBuf) -> PyResult<()> {
        self.inner.write(&path).map_err(errors::to_py)
    }

    /// The disclosed record's leaf hash.
    #[getter]
    fn leaf_hash(&self) -> PyResult<String> {
        let hash = self.inner.bundle.record.leaf_hash();
        hash.map(|h| h.to_string())
            .map_err(|e| errors::to_py(e.into()))
    }

    /// Whether the server had anchored the record's checkpoint on chain when it was made
    /// (`verify_on_chain` needs an anchor: disclose again a few seconds later if not).
    #[getter]
    fn anchored(&self) -> bool {
        self.inner.anchor.is_some()
    }

    /// Verifies it end to end against the chain at `rpc_url` and the log you trust
    /// (`audit_log`, `log_id`: yours, never the bundle's own); raises `Invalid` if anything
    /// fails to check out, or the bundle is of another log.
    fn verify_on_chain(
        &self,
        py: Python<'_>,
        rpc_url: &str,
        audit_log: &str,
        log_id: &str,
    ) -> PyResult<VerifiedOnChain> {
        let url = rpc_url
            .parse()
            .map_err(|e| errors::Invalid::new_err(format!("rpc url {rpc_url:?}: {e}")))?;
        let trusted = chaperone_sdk::TrustedLog {
            audit_log: convert::address(audit_log)?,
            log_id: convert::b256(log_id, "log id")?,
        };
        let provider = ProviderBuilder::new().connect_http(url);
        let verified = block_on(py, self.inner.verify_on_chain(&provider, &trusted))?;
        Ok(VerifiedOnChain {
            leaf_hash: verified.leaf_hash.to_string(),
            index: verified.index,
            agent: convert::checksummed(verified.agent),
            model: verified.model,
            timestamp_ms: verified.timestamp_ms,
            checkpoint_size: verified.checkpoint_size,
            checkpoint_root: verified.checkpoint_root.to_string(),
            audit_log: convert::checksummed(verified.audit_log),
            log_id: verified.log_id.to_string(),
            operator: convert::checksummed(verified.operator),
            log_owner: convert::checksummed(verified.log_owner),
            anchor_block: verified.anchor_block,
            anchored_at: verified.anchored_at,
            disclosed: verified
                .disclosed
                .iter()
                .map(|kind| format!("{kind:?}").to_lowercase())
                .collect(),
        })
    }
}

/// What `chaperone up` wrote to `<data dir>/devnet.json`: URLs, contracts and demo keys.
/// Development only: it holds private keys in the clear.
#[pyclass(frozen, get_all, module = "chaperone")]
pub(crate) struct Devnet {
    server_url: String,
    rpc_url: String,
    chain_id: u64,
    audit_log: String,
    log_id: String,
    wallet_factory: String,
    wallet: String,
    owner: String,
    token: String,
    agent: String,
    agent_key: String,
    cosigner: String,
    admin_token: String,
    policy_file: String,
}

#[pymethods]
impl Devnet {
    /// Reads `devnet.json` (default: `.chaperone/devnet.json`, where `make up` writes it).
    #[staticmethod]
    #[pyo3(signature = (path = PathBuf::from(".chaperone/devnet.json")))]
    fn read(path: PathBuf) -> PyResult<Self> {
        let info = chaperone_sdk::DevnetInfo::read(&path).map_err(errors::to_py)?;
        Ok(Self {
            server_url: info.server_url,
            rpc_url: info.rpc_url,
            chain_id: info.chain_id,
            audit_log: convert::checksummed(info.audit_log),
            log_id: info.log_id.to_string(),
            wallet_factory: convert::checksummed(info.wallet_factory),
            wallet: convert::checksummed(info.wallet),
            owner: convert::checksummed(info.owner),
            token: convert::checksummed(info.token),
            agent: convert::checksummed(info.agent),
            agent_key: info.agent_key.to_string(),
            cosigner: convert::checksummed(info.cosigner),
            admin_token: info.admin_token,
            policy_file: info.policy_file,
        })
    }

    fn __repr__(&self) -> String {
        // No keys or tokens in a repr: it ends up in logs.
        format!(
            "Devnet(server_url='{}', rpc_url='{}', wallet='{}')",
            self.server_url, self.rpc_url, self.wallet
        )
    }
}

pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<Recorded>()?;
    module.add_class::<RecordReceipt>()?;
    module.add_class::<Progress>()?;
    module.add_class::<Executed>()?;
    module.add_class::<PendingPayment>()?;
    module.add_class::<SignedAuthorization>()?;
    module.add_class::<VerifiedOnChain>()?;
    module.add_class::<Disclosure>()?;
    module.add_class::<Devnet>()?;
    Ok(())
}

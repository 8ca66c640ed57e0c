//! `chaperone.X402Payment` and what the merchant and the chain say about it: the payment record
//! a model call's metadata commits to, and its settlement checked against the chain.

use alloy::providers::ProviderBuilder;
use chaperone_sdk::PaymentMethod;
use pyo3::{prelude::*, types::PyBytes};

use crate::{block_on, convert, errors, spawn};

/// What a merchant reported in its `Payment-Response` header.
#[pyclass(frozen, get_all, module = "chaperone")]
pub(crate) struct Settlement {
    /// Whether the payment settled.
    success: bool,
    /// The settling transaction (`0x…`), if reported.
    transaction: Option<String>,
    /// Who paid (the wallet), if reported.
    payer: Option<String>,
    /// The CAIP-2 network.
    network: String,
    /// Why it failed, when it did.
    error_reason: Option<String>,
}

#[pymethods]
impl Settlement {
    fn __repr__(&self) -> String {
        format!(
            "Settlement(success={}, transaction={:?})",
            if self.success { "True" } else { "False" },
            self.transaction
        )
    }
}

/// What the chain shows about a payment: the transaction that used its authorization.
#[pyclass(frozen, get_all, module = "chaperone")]
pub(crate) struct SettledPayment {
    /// The transaction that used the authorization.
    transaction: String,
    /// Its block.
    block: u64,
    /// The AgentWallet that paid.
    payer: String,
    /// The agent that signed the authorization.
    agent: String,
    /// The co-signer that signed it.
    cosigner: String,
}

impl From<chaperone_sdk::SettledPayment> for SettledPayment {
    fn from(settled: chaperone_sdk::SettledPayment) -> Self {
        Self {
            transaction: settled.transaction.to_string(),
            block: settled.block,
            payer: convert::checksummed(settled.payer),
            agent: convert::checksummed(settled.agent),
            cosigner: convert::checksummed(settled.cosigner),
        }
    }
}

#[pymethods]
impl SettledPayment {
    fn __repr__(&self) -> String {
        format!(
            "SettledPayment(transaction='{}', block={})",
            self.transaction, self.block
        )
    }
}

/// An x402 payment the agent made: what the merchant asked, what the wallet signed (the
/// header as sent) and what the merchant reported. A model call's record commits to it
/// through `X402Payment.record_metadata`.
#[pyclass(frozen, module = "chaperone")]
#[derive(Clone)]
pub(crate) struct X402Payment {
    pub(crate) inner: chaperone_sdk::X402Payment,
}

impl From<chaperone_sdk::X402Payment> for X402Payment {
    fn from(inner: chaperone_sdk::X402Payment) -> Self {
        Self { inner }
    }
}

fn provider(rpc_url: &str) -> PyResult<impl alloy::providers::Provider + Clone + 'static> {
    let url = rpc_url
        .parse()
        .map_err(|e| errors::Invalid::new_err(format!("rpc url {rpc_url:?}: {e}")))?;
    Ok(ProviderBuilder::new().connect_http(url))
}

#[pymethods]
impl X402Payment {
    /// The URL paid for.
    #[getter]
    fn resource(&self) -> &str {
        &self.inner.resource
    }

    /// The x402 version the merchant spoke (1 or 2).
    #[getter]
    fn x402_version(&self) -> u8 {
        self.inner.x402_version
    }

    /// The requirement accepted, as the merchant offered it (a dict).
    #[getter]
    fn requirement<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::json(py, &self.inner.requirement)
    }

    /// The CAIP-2 network (`eip155:<chain id>`).
    #[getter]
    fn network(&self) -> &str {
        &self.inner.network
    }

    /// `"eip3009"` or `"permit2"`.
    #[getter]
    fn method(&self) -> &'static str {
        match self.inner.method {
            PaymentMethod::Eip3009 => "eip3009",
            PaymentMethod::Permit2 => "permit2",
        }
    }

    /// The token.
    #[getter]
    fn asset(&self) -> String {
        convert::checksummed(self.inner.asset)
    }

    /// The merchant.
    #[getter]
    fn pay_to(&self) -> String {
        convert::checksummed(self.inner.pay_to)
    }

    /// The amount in base units.
    #[getter]
    fn amount<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::int(py, self.inner.amount)
    }

    /// The co-sign decision's id: pass it to `Wallet.bind_to_call`.
    #[getter]
    fn request_id(&self) -> String {
        self.inner.request_id.to_string()
    }

    /// The EIP-712 hash the token (or Permit2) verified through the wallet's EIP-1271.
    #[getter]
    fn authorization_hash(&self) -> String {
        self.inner.authorization_hash.to_string()
    }

    /// The authorization's nonce.
    #[getter]
    fn nonce(&self) -> String {
        self.inner.nonce.to_string()
    }

    /// The payment header's value as sent (base64 JSON).
    #[getter]
    fn payload(&self) -> &str {
        &self.inner.payload
    }

    /// The header that carried it: `Payment-Signature` (x402 v2) or `X-Payment` (v1).
    #[getter]
    fn header_name(&self) -> &'static str {
        if self.inner.x402_version == 2 {
            "Payment-Signature"
        } else {
            "X-Payment"
        }
    }

    /// What the merchant reported (`Payment-Response`), if anything.
    #[getter]
    fn settlement(&self) -> Option<Settlement> {
        self.inner.settlement.as_ref().map(|s| Settlement {
            success: s.success,
            transaction: s.transaction.map(|t| t.to_string()),
            payer: s.payer.map(convert::checksummed),
            network: s.network.clone(),
            error_reason: s.error_reason.clone(),
        })
    }

    /// The chain's block when it was sent (it cannot have settled earlier).
    #[getter]
    fn block_sent(&self) -> Option<u64> {
        self.inner.block_sent
    }

    /// The metadata a model call's record commits to for `payments` (`{"x402": [...]}` as
    /// JSON bytes): pass it as `Recorder.record(..., metadata=...)`.
    #[staticmethod]
    fn record_metadata<'py>(
        py: Python<'py>,
        payments: Vec<PyRef<'py, X402Payment>>,
    ) -> Bound<'py, PyBytes> {
        let payments: Vec<_> = payments.iter().map(|p| p.inner.clone()).collect();
        PyBytes::new(py, &chaperone_sdk::X402Payment::record_metadata(&payments))
    }

    /// The payments a model call's metadata (as `record_metadata` wrote it) names.
    #[staticmethod]
    fn from_metadata(metadata: &Bound<'_, PyAny>) -> PyResult<Vec<X402Payment>> {
        let bytes = convert::content(metadata, "metadata")?;
        Ok(chaperone_sdk::X402Payment::from_metadata(bytes)
            .into_iter()
            .map(X402Payment::from)
            .collect())
    }

    /// The payment as JSON (what `record_metadata` lists): keep it to watch or verify later.
    fn to_json(&self) -> String {
        serde_json::to_string(&self.inner).unwrap_or_default()
    }

    /// Parses `to_json`'s form.
    #[staticmethod]
    fn from_json(text: &str) -> PyResult<Self> {
        serde_json::from_str(text)
            .map(|inner| Self { inner })
            .map_err(|e| errors::Invalid::new_err(format!("not an x402 payment: {e}")))
    }

    /// Checks the settlement the merchant reported against the chain at `rpc_url`: its
    /// transaction must have used this very authorization, from an AgentWallet of `agent`.
    /// Raises `Invalid` otherwise.
    fn verify_settlement(
        &self,
        py: Python<'_>,
        rpc_url: &str,
        agent: &str,
    ) -> PyResult<SettledPayment> {
        let provider = provider(rpc_url)?;
        let agent = convert::address(agent)?;
        let settled = block_on(py, self.inner.verify_settlement(&provider, agent))?;
        Ok(settled.into())
    }

    /// `verify_settlement` for asyncio code.
    fn verify_settlement_async<'py>(
        &self,
        py: Python<'py>,
        rpc_url: &str,
        agent: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let provider = provider(rpc_url)?;
        let agent = convert::address(agent)?;
        let payment = self.inner.clone();
        spawn(py, async move {
            let settled = payment.verify_settlement(&provider, agent).await?;
            Ok(SettledPayment::from(settled))
        })
    }

    /// Looks on the chain for the transaction that used this authorization, whatever the
    /// merchant reported; `None` while it is unused.
    fn find_settlement(
        &self,
        py: Python<'_>,
        rpc_url: &str,
        agent: &str,
    ) -> PyResult<Option<SettledPayment>> {
        let provider = provider(rpc_url)?;
        let agent = convert::address(agent)?;
        let settled = block_on(py, self.inner.find_settlement(&provider, agent))?;
        Ok(settled.map(SettledPayment::from))
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<X402Payment>()
            .is_ok_and(|o| o.get().inner == self.inner)
    }

    fn __repr__(&self) -> String {
        format!(
            "X402Payment(resource='{}', amount={}, request_id='{}')",
            self.inner.resource, self.inner.amount, self.inner.request_id
        )
    }
}

//! `chaperone.Wallet`: pays through the agent's `AgentWallet`, within its policy.

use std::{sync::Arc, time::Duration};

use chaperone_core::{Bytes, Call, TokenDomain};
use chaperone_sdk::{Payment, WalletConfig};
use pyo3::{
    exceptions::{PyTypeError, PyValueError},
    prelude::*,
    types::{PyBytes, PyString},
};

use crate::{
    block_on, convert, errors,
    recorder::agent_key,
    types::{Executed, PendingPayment, SignedAuthorization},
};

fn seconds(value: f64, what: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| PyValueError::new_err(format!("{what} must be a number of seconds ≥ 0")))
}

/// One wallet call from Python: `(to, value, data)` with `data` as `bytes` or `0x` hex.
fn call(item: &Bound<'_, PyAny>) -> PyResult<Call> {
    let (to, value, data): (String, Bound<'_, PyAny>, Bound<'_, PyAny>) =
        item.extract().map_err(|_| {
            PyTypeError::new_err("each call is a tuple (to: str, value: int, data: bytes | str)")
        })?;
    let data = if let Ok(bytes) = data.cast::<PyBytes>() {
        Bytes::copy_from_slice(bytes.as_bytes())
    } else if let Ok(text) = data.cast::<PyString>() {
        text.to_str()?
            .parse()
            .map_err(|e| PyValueError::new_err(format!("call data is not 0x hex: {e}")))?
    } else {
        return Err(PyTypeError::new_err(
            "call data must be bytes or a 0x hex str",
        ));
    };
    Ok(Call {
        to: convert::address(&to)?,
        value: convert::u256(&value, "value")?,
        data,
    })
}

/// The agent's wallet: pays within its policy, never around it. Each payment is signed by
/// the agent, co-signed by the policy service, submitted and awaited. A denial raises
/// `Denied` (with every reason), a payment above an approval threshold `Pending`.
#[pyclass(frozen, module = "chaperone")]
pub(crate) struct Wallet {
    pub(crate) inner: Arc<chaperone_sdk::Wallet>,
}

fn wallet_config(
    server_url: String,
    rpc_url: String,
    wallet: &str,
    valid_for: f64,
    approval_poll: f64,
) -> PyResult<WalletConfig> {
    let mut config = WalletConfig::new(server_url, rpc_url, convert::address(wallet)?);
    config.valid_for = seconds(valid_for, "valid_for")?;
    config.approval_poll = seconds(approval_poll, "approval_poll")?;
    Ok(config)
}

impl Wallet {
    fn payment(to: &str, amount: &Bound<'_, PyAny>, token: Option<&str>) -> PyResult<Payment> {
        Ok(Payment {
            token: token.map(convert::address).transpose()?,
            to: convert::address(to)?,
            amount: convert::u256(amount, "amount")?,
        })
    }

    fn domain(&self, token: &str, name: String, version: String) -> PyResult<TokenDomain> {
        Ok(TokenDomain {
            name,
            version,
            chain_id: self.inner.chain_id(),
            verifying_contract: convert::address(token)?,
        })
    }
}

#[pymethods]
impl Wallet {
    /// Connects to the chain at `rpc_url` (the agent key pays the gas) and the policy service
    /// at `server_url`. `valid_for` (seconds) is how long a co-signed request stays valid;
    /// `approval_poll` how often `wait_for_approval` asks.
    #[new]
    #[pyo3(signature = (server_url, rpc_url, wallet, agent_key, *, valid_for = 120.0, approval_poll = 2.0))]
    fn new(
        py: Python<'_>,
        server_url: String,
        rpc_url: String,
        wallet: &str,
        agent_key: &str,
        valid_for: f64,
        approval_poll: f64,
    ) -> PyResult<Self> {
        let key = self::agent_key(agent_key)?;
        let config = wallet_config(server_url, rpc_url, wallet, valid_for, approval_poll)?;
        let inner = block_on(py, chaperone_sdk::Wallet::connect(config, key))?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// `Wallet(...)` for asyncio code: `wallet = await Wallet.connect_async(...)`.
    #[staticmethod]
    #[pyo3(signature = (server_url, rpc_url, wallet, agent_key, *, valid_for = 120.0, approval_poll = 2.0))]
    fn connect_async<'py>(
        py: Python<'py>,
        server_url: String,
        rpc_url: String,
        wallet: &str,
        agent_key: &str,
        valid_for: f64,
        approval_poll: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let key = self::agent_key(agent_key)?;
        let config = wallet_config(server_url, rpc_url, wallet, valid_for, approval_poll)?;
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let inner = chaperone_sdk::Wallet::connect(config, key)
                .await
                .map_err(errors::to_py)?;
            Ok(Wallet {
                inner: Arc::new(inner),
            })
        })
    }

    /// The wallet's address (checksummed).
    #[getter]
    fn address(&self) -> String {
        convert::checksummed(self.inner.address())
    }

    /// The chain id.
    #[getter]
    fn chain_id(&self) -> u64 {
        self.inner.chain_id()
    }

    /// Pays `amount` base units to `to`: native currency, or the ERC-20 `token`.
    #[pyo3(signature = (to, amount, token = None))]
    fn pay(
        &self,
        py: Python<'_>,
        to: &str,
        amount: &Bound<'_, PyAny>,
        token: Option<&str>,
    ) -> PyResult<Executed> {
        let payment = Self::payment(to, amount, token)?;
        Ok(block_on(py, self.inner.pay(payment))?.into())
    }

    /// `pay` for asyncio code.
    #[pyo3(signature = (to, amount, token = None))]
    fn pay_async<'py>(
        &self,
        py: Python<'py>,
        to: &str,
        amount: &Bound<'_, PyAny>,
        token: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let payment = Self::payment(to, amount, token)?;
        let wallet = self.inner.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let executed = wallet.pay(payment).await.map_err(errors::to_py)?;
            Ok(Executed::from(executed))
        })
    }

    /// Executes `calls` (tuples `(to, value, data)`) from the wallet in one transaction.
    fn execute(&self, py: Python<'_>, calls: Vec<Bound<'_, PyAny>>) -> PyResult<Executed> {
        let calls = calls.iter().map(call).collect::<PyResult<Vec<_>>>()?;
        Ok(block_on(py, self.inner.execute(calls))?.into())
    }

    /// `execute` for asyncio code.
    fn execute_async<'py>(
        &self,
        py: Python<'py>,
        calls: Vec<Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let calls = calls.iter().map(call).collect::<PyResult<Vec<_>>>()?;
        let wallet = self.inner.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let executed = wallet.execute(calls).await.map_err(errors::to_py)?;
            Ok(Executed::from(executed))
        })
    }

    /// Waits (up to `timeout` seconds) until an approver decides a pending payment, then
    /// submits it. Raises `Denied` if denied, `Expired` when the wait or the request runs out.
    #[pyo3(signature = (pending, timeout = 600.0))]
    fn wait_for_approval(
        &self,
        py: Python<'_>,
        pending: &PendingPayment,
        timeout: f64,
    ) -> PyResult<Executed> {
        let timeout = seconds(timeout, "timeout")?;
        let pending = pending.inner.clone();
        Ok(block_on(py, self.inner.wait_for_approval(pending, timeout))?.into())
    }

    /// `wait_for_approval` for asyncio code.
    #[pyo3(signature = (pending, timeout = 600.0))]
    fn wait_for_approval_async<'py>(
        &self,
        py: Python<'py>,
        pending: &PendingPayment,
        timeout: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let timeout = seconds(timeout, "timeout")?;
        let pending = pending.inner.clone();
        let wallet = self.inner.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let executed = wallet
                .wait_for_approval(pending, timeout)
                .await
                .map_err(errors::to_py)?;
            Ok(Executed::from(executed))
        })
    }

    /// Tells the policy service that the approved payment `request_id` (an
    /// `X402Payment.request_id`) was made in the model call whose record has `leaf_hash`
    /// (that record should commit to it: `X402Payment.record_metadata`); the decision then
    /// names the call. Set once; the record must be logged already (`Recorder.receipt`).
    fn bind_to_call(&self, py: Python<'_>, request_id: &str, leaf_hash: &str) -> PyResult<()> {
        let request_id = convert::b256(request_id, "request_id")?;
        let leaf_hash = convert::b256(leaf_hash, "leaf_hash")?;
        block_on(py, self.inner.bind_to_call(request_id, leaf_hash))
    }

    /// `bind_to_call` for asyncio code.
    fn bind_to_call_async<'py>(
        &self,
        py: Python<'py>,
        request_id: &str,
        leaf_hash: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let request_id = convert::b256(request_id, "request_id")?;
        let leaf_hash = convert::b256(leaf_hash, "leaf_hash")?;
        let wallet = self.inner.clone();
        crate::spawn(py, async move {
            wallet.bind_to_call(request_id, leaf_hash).await
        })
    }

    /// Signs an EIP-3009 `TransferWithAuthorization` of `value` base units of `token` to
    /// `to`, valid for `valid_for` seconds, and has it co-signed within the policy: what an
    /// x402 "exact" payment carries. `name` and `version` are the token's EIP-712 domain.
    #[pyo3(signature = (token, to, value, *, name, version, valid_for = 60.0))]
    #[allow(clippy::too_many_arguments)]
    fn sign_payment_authorization(
        &self,
        py: Python<'_>,
        token: &str,
        to: &str,
        value: &Bound<'_, PyAny>,
        name: String,
        version: String,
        valid_for: f64,
    ) -> PyResult<SignedAuthorization> {
        let domain = self.domain(token, name, version)?;
        let to = convert::address(to)?;
        let value = convert::u256(value, "value")?;
        let valid_for = seconds(valid_for, "valid_for")?;
        let inner = block_on(
            py,
            self.inner
                .sign_payment_authorization(domain, to, value, valid_for),
        )?;
        Ok(SignedAuthorization { inner })
    }

    /// `sign_payment_authorization` for asyncio code.
    #[pyo3(signature = (token, to, value, *, name, version, valid_for = 60.0))]
    #[allow(clippy::too_many_arguments)]
    fn sign_payment_authorization_async<'py>(
        &self,
        py: Python<'py>,
        token: &str,
        to: &str,
        value: &Bound<'_, PyAny>,
        name: String,
        version: String,
        valid_for: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let domain = self.domain(token, name, version)?;
        let to = convert::address(to)?;
        let value = convert::u256(value, "value")?;
        let valid_for = seconds(valid_for, "valid_for")?;
        let wallet = self.inner.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let inner = wallet
                .sign_payment_authorization(domain, to, value, valid_for)
                .await
                .map_err(errors::to_py)?;
            Ok(SignedAuthorization { inner })
        })
    }

    fn __repr__(&self) -> String {
        format!("Wallet(address='{}')", self.address())
    }
}

pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<Wallet>()
}

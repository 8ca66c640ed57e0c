//! `chaperone.Recorder`: the SDK's recorder. `record` only commits and queues (the hot path);
//! batching, signing, the outbox and delivery run on the shared runtime in the background.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use chaperone_core::{CommitmentKind, Secp256k1Signer};
use chaperone_sdk::RecorderConfig;
use pyo3::{exceptions::PyValueError, prelude::*};

use crate::{
    block_on, convert, errors,
    types::{Disclosure, Progress, RecordReceipt, Recorded},
};

/// Logs an agent's model calls to a Chaperone server: salted commitments, signed batches, a
/// durable outbox delivered exactly once. The content stays in the local file.
///
/// Use it as a context manager (or call `close`): records still queued in memory when the
/// process exits without it are lost, while those in the outbox are delivered by the next
/// `Recorder` on the same file.
#[pyclass(frozen, module = "chaperone")]
pub(crate) struct Recorder {
    inner: Mutex<Option<Arc<chaperone_sdk::Recorder>>>,
    agent: String,
}

/// The agent key from its `0x` hex form (the error never repeats the key).
pub(crate) fn agent_key(hex: &str) -> PyResult<Secp256k1Signer> {
    let bytes = convert::b256(hex, "agent_key")?;
    Secp256k1Signer::from_bytes(&bytes).map_err(|e| errors::to_py(e.into()))
}

fn kinds(names: Vec<String>) -> PyResult<Vec<CommitmentKind>> {
    names
        .iter()
        .map(|name| match name.as_str() {
            "input" => Ok(CommitmentKind::Input),
            "output" => Ok(CommitmentKind::Output),
            "metadata" => Ok(CommitmentKind::Metadata),
            other => Err(PyValueError::new_err(format!(
                "{other:?} is not a commitment: use \"input\", \"output\" or \"metadata\""
            ))),
        })
        .collect()
}

#[allow(clippy::too_many_arguments)] // Python keyword arguments, each with a default.
fn config(
    server_url: String,
    data_file: PathBuf,
    max_batch: usize,
    linger: f64,
    queue: usize,
    max_undelivered: u64,
) -> PyResult<RecorderConfig> {
    let mut config = RecorderConfig::new(server_url, data_file);
    config.max_batch = max_batch;
    config.linger = Duration::try_from_secs_f64(linger)
        .map_err(|_| PyValueError::new_err("linger must be a number of seconds ≥ 0"))?;
    config.queue = queue;
    config.max_undelivered = max_undelivered;
    Ok(config)
}

impl Recorder {
    fn from_sdk(recorder: chaperone_sdk::Recorder) -> Self {
        Self {
            agent: convert::checksummed(recorder.agent()),
            inner: Mutex::new(Some(Arc::new(recorder))),
        }
    }

    fn get(&self) -> PyResult<Arc<chaperone_sdk::Recorder>> {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| errors::to_py(chaperone_sdk::Error::Closed))
    }

    fn take(&self) -> Option<Arc<chaperone_sdk::Recorder>> {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// Persists what is queued, then stops the background tasks (dropping the last handle
/// aborts them; undelivered batches stay in the outbox).
async fn close(recorder: Option<Arc<chaperone_sdk::Recorder>>) -> chaperone_sdk::Result<()> {
    match recorder {
        Some(recorder) => recorder.flush().await,
        None => Ok(()),
    }
}

#[pymethods]
impl Recorder {
    /// Opens (or creates) the local file `data_file`, resumes the agent's chain, and starts
    /// delivering to `server_url`. `linger` is in seconds.
    #[new]
    #[pyo3(signature = (server_url, data_file, agent_key, *, max_batch = 5_000, linger = 0.02, queue = 20_000, max_undelivered = 1_000_000))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        server_url: String,
        data_file: PathBuf,
        agent_key: &str,
        max_batch: usize,
        linger: f64,
        queue: usize,
        max_undelivered: u64,
    ) -> PyResult<Self> {
        let key = self::agent_key(agent_key)?;
        let config = config(
            server_url,
            data_file,
            max_batch,
            linger,
            queue,
            max_undelivered,
        )?;
        let recorder = block_on(py, chaperone_sdk::Recorder::open(config, key))?;
        Ok(Self::from_sdk(recorder))
    }

    /// `Recorder(...)` for asyncio code: `recorder = await Recorder.open_async(...)`.
    #[staticmethod]
    #[pyo3(signature = (server_url, data_file, agent_key, *, max_batch = 5_000, linger = 0.02, queue = 20_000, max_undelivered = 1_000_000))]
    #[allow(clippy::too_many_arguments)]
    fn open_async<'py>(
        py: Python<'py>,
        server_url: String,
        data_file: PathBuf,
        agent_key: &str,
        max_batch: usize,
        linger: f64,
        queue: usize,
        max_undelivered: u64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let key = self::agent_key(agent_key)?;
        let config = config(
            server_url,
            data_file,
            max_batch,
            linger,
            queue,
            max_undelivered,
        )?;
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let recorder = chaperone_sdk::Recorder::open(config, key)
                .await
                .map_err(errors::to_py)?;
            Ok(Recorder::from_sdk(recorder))
        })
    }

    /// The agent's address (checksummed).
    #[getter]
    fn agent(&self) -> &str {
        &self.agent
    }

    /// Commits to one model call and queues its record; returns once it is queued. `input`
    /// and `output` are `str` (UTF-8) or `bytes`; `metadata` also a dict (JSON, sorted keys).
    /// Waits when the queue or the outbox is full.
    #[pyo3(signature = (model, input, output, metadata = None))]
    fn record(
        &self,
        py: Python<'_>,
        model: &str,
        input: &Bound<'_, PyAny>,
        output: &Bound<'_, PyAny>,
        metadata: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Recorded> {
        let recorder = self.get()?;
        let input = convert::content(input, "input")?;
        let output = convert::content(output, "output")?;
        let metadata = metadata.map(convert::metadata).transpose()?;
        let recorded = block_on(
            py,
            recorder.record(model, input, output, metadata.as_deref()),
        )?;
        Ok(Recorded { inner: recorded })
    }

    /// `record` for asyncio code.
    #[pyo3(signature = (model, input, output, metadata = None))]
    fn record_async<'py>(
        &self,
        py: Python<'py>,
        model: String,
        input: &Bound<'_, PyAny>,
        output: &Bound<'_, PyAny>,
        metadata: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let recorder = self.get()?;
        let input = convert::content(input, "input")?.to_vec();
        let output = convert::content(output, "output")?.to_vec();
        let metadata = metadata.map(convert::metadata).transpose()?;
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let recorded = recorder
                .record(&model, &input, &output, metadata.as_deref())
                .await
                .map_err(errors::to_py)?;
            Ok(Recorded { inner: recorded })
        })
    }

    /// How far the background tasks got.
    #[getter]
    fn progress(&self) -> PyResult<Progress> {
        Ok(self.get()?.progress().into())
    }

    /// Waits until every record so far is in the outbox (survives a crash).
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        let recorder = self.get()?;
        block_on(py, recorder.flush())
    }

    /// `flush` for asyncio code.
    fn flush_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let recorder = self.get()?;
        crate::spawn(py, async move { recorder.flush().await })
    }

    /// Waits until every record so far is delivered (has a receipt). Raises `Rejected` if the
    /// server refused a batch for good.
    fn sync(&self, py: Python<'_>) -> PyResult<()> {
        let recorder = self.get()?;
        block_on(py, recorder.sync())
    }

    /// `sync` for asyncio code.
    fn sync_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let recorder = self.get()?;
        crate::spawn(py, async move { recorder.sync().await })
    }

    /// Waits for a record's delivery and returns its receipt.
    fn receipt(&self, py: Python<'_>, recorded: &Recorded) -> PyResult<RecordReceipt> {
        let recorder = self.get()?;
        Ok(block_on(py, recorder.receipt(&recorded.inner))?.into())
    }

    /// `receipt` for asyncio code.
    fn receipt_async<'py>(
        &self,
        py: Python<'py>,
        recorded: &Recorded,
    ) -> PyResult<Bound<'py, PyAny>> {
        let recorder = self.get()?;
        let recorded = recorded.inner.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let receipt = recorder.receipt(&recorded).await.map_err(errors::to_py)?;
            Ok(RecordReceipt::from(receipt))
        })
    }

    /// The records in the local file, oldest first: `(sequence, leaf_hash, model)`.
    fn records(&self, py: Python<'_>) -> PyResult<Vec<(u64, String, String)>> {
        let recorder = self.get()?;
        let records = block_on(py, recorder.records())?;
        Ok(records
            .into_iter()
            .map(|(sequence, leaf_hash, model)| (sequence, leaf_hash.to_string(), model))
            .collect())
    }

    /// A disclosure of one record for an auditor, opening the named commitments
    /// (`"input"`, `"output"`, `"metadata"`). Raises `Forgotten` after `forget`.
    #[pyo3(signature = (leaf_hash, kinds = vec!["input".to_owned(), "output".to_owned()]))]
    fn disclose(
        &self,
        py: Python<'_>,
        leaf_hash: &str,
        kinds: Vec<String>,
    ) -> PyResult<Disclosure> {
        let recorder = self.get()?;
        let leaf_hash = convert::b256(leaf_hash, "leaf_hash")?;
        let kinds = self::kinds(kinds)?;
        let inner = block_on(py, recorder.disclose(leaf_hash, &kinds))?;
        Ok(Disclosure { inner })
    }

    /// `disclose` for asyncio code.
    #[pyo3(signature = (leaf_hash, kinds = vec!["input".to_owned(), "output".to_owned()]))]
    fn disclose_async<'py>(
        &self,
        py: Python<'py>,
        leaf_hash: &str,
        kinds: Vec<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let recorder = self.get()?;
        let leaf_hash = convert::b256(leaf_hash, "leaf_hash")?;
        let kinds = self::kinds(kinds)?;
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let inner = recorder
                .disclose(leaf_hash, &kinds)
                .await
                .map_err(errors::to_py)?;
            Ok(Disclosure { inner })
        })
    }

    /// Crypto-shreds a record: deletes its salts and content from the local files, so its
    /// commitments can never be opened again. The log is untouched.
    fn forget(&self, py: Python<'_>, leaf_hash: &str) -> PyResult<()> {
        let recorder = self.get()?;
        let leaf_hash = convert::b256(leaf_hash, "leaf_hash")?;
        block_on(py, recorder.forget(leaf_hash))
    }

    /// `forget` for asyncio code.
    fn forget_async<'py>(&self, py: Python<'py>, leaf_hash: &str) -> PyResult<Bound<'py, PyAny>> {
        let recorder = self.get()?;
        let leaf_hash = convert::b256(leaf_hash, "leaf_hash")?;
        crate::spawn(py, async move { recorder.forget(leaf_hash).await })
    }

    /// Persists what is queued and stops the background tasks. Later calls raise `Closed`;
    /// closing twice is harmless.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        block_on(py, close(self.take()))
    }

    /// `close` for asyncio code.
    fn close_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        crate::spawn(py, close(self.take()))
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _kind: Option<Bound<'_, PyAny>>,
        _value: Option<Bound<'_, PyAny>>,
        _traceback: Option<Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __aenter__<'py>(slf: Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let recorder = slf.unbind();
        pyo3_async_runtimes::tokio::future_into_py(py, async move { Ok(recorder) })
    }

    fn __aexit__<'py>(
        &self,
        py: Python<'py>,
        _kind: Option<Bound<'_, PyAny>>,
        _value: Option<Bound<'_, PyAny>>,
        _traceback: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let recorder = self.take();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            close(recorder).await.map_err(errors::to_py)?;
            Ok(false)
        })
    }

    fn __repr__(&self) -> String {
        format!("Recorder(agent='{}')", self.agent)
    }
}

/// The address of `agent_key` (0x hex), as an admin registers it with a deployment: only
/// registered agents may append to its log.
#[pyfunction]
fn agent_address(agent_key: &str) -> PyResult<String> {
    Ok(convert::checksummed(self::agent_key(agent_key)?.address()))
}

pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<Recorder>()?;
    module.add_function(wrap_pyfunction!(agent_address, module)?)
}

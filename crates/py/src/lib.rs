//! The Python package `chaperone` (module `chaperone._native`): the Rust SDK behind PyO3, so
//! a Python agent gets the same record format, commitments, batching and outbox as a Rust one
//! — there is no second implementation. Each blocking method releases the GIL and has an
//! `a`-prefixed `async` twin for asyncio code; both run on one shared Tokio runtime.

mod convert;
mod errors;
mod recorder;
mod types;
mod wallet;
mod x402;

use std::{future::Future, pin::pin, time::Duration};

use pyo3::prelude::*;

/// How often a blocking call wakes up to let Python see Ctrl-C (`KeyboardInterrupt`).
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// The runtime every call runs on: the one `pyo3-async-runtimes` also drives asyncio
/// futures with, so a `Recorder` opened from async code can be used from blocking code.
fn runtime() -> &'static tokio::runtime::Runtime {
    pyo3_async_runtimes::tokio::get_runtime()
}

/// Runs an SDK call to completion with the GIL released, waking every [`SIGNAL_POLL`] to run
/// Python's signal handlers (so Ctrl-C interrupts a long wait instead of being ignored).
fn block_on<T: Send>(
    py: Python<'_>,
    future: impl Future<Output = chaperone_sdk::Result<T>> + Send,
) -> PyResult<T> {
    let mut future = pin!(future);
    loop {
        let step = py.detach(|| {
            runtime().block_on(async { tokio::time::timeout(SIGNAL_POLL, future.as_mut()).await })
        });
        match step {
            Ok(result) => return result.map_err(errors::to_py),
            Err(_elapsed) => py.check_signals()?,
        }
    }
}

/// Starts an SDK call on the shared runtime and returns an awaitable of its result.
fn spawn<'py, T>(
    py: Python<'py>,
    future: impl Future<Output = chaperone_sdk::Result<T>> + Send + 'static,
) -> PyResult<Bound<'py, PyAny>>
where
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    pyo3_async_runtimes::tokio::future_into_py(
        py,
        async move { future.await.map_err(errors::to_py) },
    )
}

#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(module)?;
    types::register(module)?;
    recorder::register(module)?;
    wallet::register(module)?;
    x402::register(module)?;
    Ok(())
}

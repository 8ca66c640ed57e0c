//! `chaperone.X402Client`: the Rust SDK's x402 client (requirement selection, co-signing before
//! anything reaches the merchant, the payment header only to the origin that asked, no
//! redirect followed with a payment, sent payments kept, settlement checked on chain), with
//! the request and the merchant's answer as Python values. The httpx transports
//! (`chaperone.x402`) send every request through it.

use std::{sync::Arc, time::Duration};

mod payment;

pub(crate) use payment::X402Payment;
use payment::{SettledPayment, Settlement};
use pyo3::{
    exceptions::{PyTypeError, PyValueError},
    prelude::*,
    types::{PyBytes, PyList},
};

use crate::{block_on, convert, spawn, wallet::Wallet};

/// The bound on each HTTP exchange, in seconds, when the caller names none (`timeout=None`
/// is no bound): a merchant that never answers must not hold the call forever.
const DEFAULT_TIMEOUT_SECONDS: f64 = 300.0;

/// `t` seconds as a bound (`inf`: none).
fn seconds(t: f64, what: &str) -> PyResult<Option<Duration>> {
    if t == f64::INFINITY {
        return Ok(None);
    }
    Duration::try_from_secs_f64(t)
        .map(Some)
        .map_err(|_| PyValueError::new_err(format!("{what} must be a number of seconds ≥ 0")))
}

/// A request as Python hands it over: method, URL, headers, body and a timeout.
struct Outgoing {
    method: reqwest::Method,
    url: reqwest::Url,
    headers: reqwest::header::HeaderMap,
    body: Option<Vec<u8>>,
    timeout: Option<Duration>,
}

/// Headers the HTTP client sets itself from the URL and the body: a `Host` copied from the
/// caller would follow a redirect to another host, and a length would contradict the body.
const SET_BY_THE_CLIENT: [&str; 5] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
];

impl Outgoing {
    fn new(
        method: &str,
        url: &str,
        headers: Option<&Bound<'_, PyAny>>,
        body: Option<&Bound<'_, PyAny>>,
        timeout: Option<f64>,
        default_timeout: Option<Duration>,
    ) -> PyResult<Self> {
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| PyValueError::new_err(format!("{method:?} is not an HTTP method")))?;
        let url = reqwest::Url::parse(url)
            .map_err(|e| PyValueError::new_err(format!("{url:?} is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(PyValueError::new_err(format!(
                "{url} is not an http(s) URL"
            )));
        }
        let mut map = reqwest::header::HeaderMap::new();
        if let Some(headers) = headers {
            for item in headers.try_iter()? {
                let item = item?;
                let (name, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) =
                    item.extract().map_err(|_| {
                        PyTypeError::new_err("headers are (name, value) pairs of str or bytes")
                    })?;
                let name = reqwest::header::HeaderName::from_bytes(convert::content(
                    &name,
                    "a header name",
                )?)
                .map_err(|e| PyValueError::new_err(format!("a header name: {e}")))?;
                if SET_BY_THE_CLIENT.contains(&name.as_str()) {
                    continue;
                }
                let value = reqwest::header::HeaderValue::from_bytes(convert::content(
                    &value,
                    "a header value",
                )?)
                .map_err(|e| PyValueError::new_err(format!("header {name}: {e}")))?;
                map.append(name, value);
            }
        }
        let body = body
            .map(|b| convert::content(b, "body").map(<[u8]>::to_vec))
            .transpose()?;
        let timeout = match timeout {
            None => default_timeout,
            Some(t) => seconds(t, "timeout")?,
        };
        Ok(Self {
            method,
            url,
            headers: map,
            body,
            timeout,
        })
    }

    fn request(self) -> reqwest::Request {
        let mut request = reqwest::Request::new(self.method, self.url);
        *request.headers_mut() = self.headers;
        *request.timeout_mut() = self.timeout;
        if let Some(body) = self.body {
            *request.body_mut() = Some(body.into());
        }
        request
    }
}

/// The merchant's answer, read whole, and the payment made for it (if any).
#[pyclass(frozen, module = "chaperone")]
pub(crate) struct X402Response {
    /// The HTTP status.
    #[pyo3(get)]
    status: u16,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    body: Vec<u8>,
    /// The URL that answered (the request's, or where its redirects led before payment).
    #[pyo3(get)]
    url: String,
    /// `"HTTP/1.1"`, `"HTTP/2"`, …
    #[pyo3(get)]
    http_version: String,
    payment: Option<chaperone_sdk::X402Payment>,
}

/// Sends `request` through `client` and reads the answer whole, at most `max_body_bytes` of
/// body (a payment whose answer cannot be read is carried by the error and kept by the client).
async fn send(
    client: chaperone_sdk::X402Client,
    request: reqwest::Request,
    max_body_bytes: u64,
) -> chaperone_sdk::Result<X402Response> {
    let answer = client.send_read(request, max_body_bytes).await?;
    Ok(X402Response {
        status: answer.status.as_u16(),
        headers: answer
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().as_bytes().to_vec(), value.as_bytes().to_vec()))
            .collect(),
        body: answer.body,
        url: answer.url,
        http_version: format!("{:?}", answer.version),
        payment: answer.payment,
    })
}

#[pymethods]
impl X402Response {
    /// The headers as sent, `(name, value)` byte pairs in order (names lower-case).
    #[getter]
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(
            py,
            self.headers
                .iter()
                .map(|(n, v)| (PyBytes::new(py, n), PyBytes::new(py, v))),
        )
    }

    /// The body (as received: not decompressed).
    #[getter]
    fn body<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.body)
    }

    /// The payment made for this answer, if the resource asked for one.
    #[getter]
    fn payment(&self) -> Option<X402Payment> {
        self.payment.clone().map(X402Payment::from)
    }

    /// The first value of header `name` (any case), as text.
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    fn __repr__(&self) -> String {
        let paid = self
            .payment
            .as_ref()
            .map_or("None".to_owned(), |p| format!("'{}'", p.request_id));
        format!(
            "X402Response(status={}, url='{}', payment={paid})",
            self.status, self.url
        )
    }
}

/// An HTTP client that pays x402 (HTTP 402) resources from the agent's wallet, within its
/// policy: the Rust SDK's `X402Client`. Each payable requirement is co-signed before anything
/// goes back to the merchant; when the policy denies them all, `Denied` carries every reason
/// and the merchant has seen no payment. The payment header goes only to the origin that
/// asked, and no redirect is followed with it. A payment sent is kept until the merchant
/// serves the request (a retry presents the same one); `PaymentRefused` and
/// `PaymentUnanswered` carry it.
#[pyclass(frozen, module = "chaperone")]
pub(crate) struct X402Client {
    inner: chaperone_sdk::X402Client,
    /// The most bytes of an answer's body read (a merchant controls it).
    max_body_bytes: u64,
    /// The bound on each HTTP exchange when a call names none (`None`: no bound).
    timeout: Option<Duration>,
}

#[pymethods]
impl X402Client {
    /// A client paying from `wallet`, reading at most `max_body_bytes` of an answer's body
    /// (default 10 MiB; past it, `send` raises `PaymentUnanswered` carrying the payment made,
    /// or `Unreachable` when none was), each HTTP exchange bounded by `timeout` seconds unless
    /// a call names its own (default 300; None for no bound: a merchant that never answers
    /// would hold the call forever).
    #[new]
    #[pyo3(signature = (
        wallet, *, max_body_bytes = chaperone_sdk::DEFAULT_MAX_BODY_BYTES,
        timeout = Some(DEFAULT_TIMEOUT_SECONDS)
    ))]
    fn new(wallet: &Wallet, max_body_bytes: u64, timeout: Option<f64>) -> PyResult<Self> {
        Ok(Self {
            inner: chaperone_sdk::X402Client::new(Arc::unwrap_or_clone(wallet.inner.clone())),
            max_body_bytes,
            timeout: match timeout {
                None => None,
                Some(t) => seconds(t, "timeout")?,
            },
        })
    }

    /// Sends a request (following its redirects before payment) and pays a 402 within the
    /// policy; returns the merchant's answer, read whole, with the payment made. `headers` are
    /// `(name, value)` pairs of str or bytes; `body` bytes or str; `timeout` seconds for each
    /// HTTP exchange (default: the client's; `math.inf` for no bound).
    #[pyo3(signature = (method, url, *, headers = None, body = None, timeout = None))]
    fn send(
        &self,
        py: Python<'_>,
        method: &str,
        url: &str,
        headers: Option<&Bound<'_, PyAny>>,
        body: Option<&Bound<'_, PyAny>>,
        timeout: Option<f64>,
    ) -> PyResult<X402Response> {
        let request = Outgoing::new(method, url, headers, body, timeout, self.timeout)?.request();
        block_on(py, send(self.inner.clone(), request, self.max_body_bytes))
    }

    /// `send` for asyncio code.
    #[pyo3(signature = (method, url, *, headers = None, body = None, timeout = None))]
    fn send_async<'py>(
        &self,
        py: Python<'py>,
        method: &str,
        url: &str,
        headers: Option<&Bound<'_, PyAny>>,
        body: Option<&Bound<'_, PyAny>>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let request = Outgoing::new(method, url, headers, body, timeout, self.timeout)?.request();
        spawn(py, send(self.inner.clone(), request, self.max_body_bytes))
    }

    /// GETs `url`, paying if it asks for payment.
    #[pyo3(signature = (url, *, headers = None, timeout = None))]
    fn get(
        &self,
        py: Python<'_>,
        url: &str,
        headers: Option<&Bound<'_, PyAny>>,
        timeout: Option<f64>,
    ) -> PyResult<X402Response> {
        self.send(py, "GET", url, headers, None, timeout)
    }

    /// `get` for asyncio code.
    #[pyo3(signature = (url, *, headers = None, timeout = None))]
    fn get_async<'py>(
        &self,
        py: Python<'py>,
        url: &str,
        headers: Option<&Bound<'_, PyAny>>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.send_async(py, "GET", url, headers, None, timeout)
    }

    /// Co-signs a payment for a 402's requirements (`payment_required`: the JSON of a v2
    /// `Payment-Required` header, decoded, or of a v1 402 body) without sending anything:
    /// for an x402 client of another library that sends the header itself
    /// (`chaperone.x402.ChaperoneExactEvmScheme`). `resource` is the URL that asked. Nothing
    /// is kept: that library's handling of the header is its own.
    fn authorize(
        &self,
        py: Python<'_>,
        resource: &str,
        payment_required: &str,
    ) -> PyResult<X402Payment> {
        let payment = block_on(py, self.inner.authorize(resource, payment_required))?;
        Ok(payment.into())
    }

    /// `authorize` for asyncio code.
    fn authorize_async<'py>(
        &self,
        py: Python<'py>,
        resource: String,
        payment_required: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let client = self.inner.clone();
        spawn(py, async move {
            let payment = client.authorize(&resource, &payment_required).await?;
            Ok(X402Payment::from(payment))
        })
    }

    /// Waits until the chain shows `payment`'s authorization used (its settlement, checked as
    /// `X402Payment.verify_settlement` checks one), or raises `Expired` once it can never be
    /// used (the client then stops keeping it).
    fn watch(&self, py: Python<'_>, payment: &X402Payment) -> PyResult<SettledPayment> {
        let client = self.inner.clone();
        let payment = payment.inner.clone();
        let settled = block_on(py, async move { client.watch(&payment).await })?;
        Ok(settled.into())
    }

    /// `watch` for asyncio code.
    fn watch_async<'py>(
        &self,
        py: Python<'py>,
        payment: &X402Payment,
    ) -> PyResult<Bound<'py, PyAny>> {
        let client = self.inner.clone();
        let payment = payment.inner.clone();
        spawn(py, async move {
            let settled = client.watch(&payment).await?;
            Ok(SettledPayment::from(settled))
        })
    }

    /// Where `payment` stands on the chain, measured in chain time: `("usable", None)` (the
    /// merchant may still settle it), `("settled", SettledPayment)` (the transaction that used
    /// it) or `("expired", None)` (unused, and it never can be). `ChaperoneExactEvmScheme`
    /// asks before it forgets a payment it kept.
    fn standing(
        &self,
        py: Python<'_>,
        payment: &X402Payment,
    ) -> PyResult<(&'static str, Option<SettledPayment>)> {
        let client = self.inner.clone();
        let payment = payment.inner.clone();
        let standing = block_on(py, async move { client.standing(&payment).await })?;
        Ok(match standing {
            chaperone_sdk::PaymentStanding::Usable => ("usable", None),
            chaperone_sdk::PaymentStanding::Settled(settled) => ("settled", Some(settled.into())),
            chaperone_sdk::PaymentStanding::Expired => ("expired", None),
        })
    }

    /// The payments sent that no merchant has answered with its resource yet.
    fn outstanding(&self) -> Vec<X402Payment> {
        self.inner
            .outstanding()
            .into_iter()
            .map(X402Payment::from)
            .collect()
    }

    /// Stops keeping the payment of decision `request_id` (the next request for its resource
    /// pays anew); returns it, or `None` if none was kept.
    fn release(&self, request_id: &str) -> PyResult<Option<X402Payment>> {
        let request_id = convert::b256(request_id, "request_id")?;
        Ok(self.inner.release(request_id).map(X402Payment::from))
    }

    fn __repr__(&self) -> String {
        format!("X402Client(outstanding={})", self.inner.outstanding().len())
    }
}

pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<X402Client>()?;
    module.add_class::<X402Response>()?;
    module.add_class::<X402Payment>()?;
    module.add_class::<Settlement>()?;
    module.add_class::<SettledPayment>()?;
    Ok(())
}

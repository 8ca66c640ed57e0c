//! `X402Client`: the Rust SDK's x402 client (requirement selection, co-signing before anything
//! reaches the merchant, the payment header only to the origin that asked, no redirect followed
//! with a payment, sent payments kept, settlement checked on chain), with the request and the
//! merchant's answer as JavaScript values. `x402.js` builds `wrapFetchWithPayment` and the
//! `@x402/core` scheme on it; the payment logic stays the SDK's.

mod payment;

use std::{sync::Arc, time::Duration};

use napi::{
    Env,
    bindgen_prelude::{Buffer, Either, PromiseRaw, Uint8Array},
};
use napi_derive::napi;
pub(crate) use payment::{SettledPayment, X402Payment};

use crate::{convert, errors, wallet::Wallet};

/// Headers the HTTP client sets itself from the URL and the body: a `Host` copied from the
/// caller would follow a redirect to another host, and a length would contradict the body.
/// `accept-encoding` too: the answer is handed over as received, and this client decodes no
/// compression, so it asks for none.
const SET_BY_THE_CLIENT: [&str; 6] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "accept-encoding",
];

/// The bound on each HTTP exchange when neither the request nor the client names one (undici's
/// own default).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// A request to send through the client: what `fetch`'s `Request` holds.
#[napi(object, object_to_js = false)]
pub struct X402Request {
    /// The HTTP method (default `GET`).
    pub method: Option<String>,
    /// An `http:` or `https:` URL.
    pub url: String,
    /// `[name, value]` pairs, in order (values as `Headers` holds them: one byte per char).
    pub headers: Option<Vec<(String, String)>>,
    /// The body, if any.
    pub body: Option<Either<String, Uint8Array>>,
    /// A bound on each HTTP exchange, in ms (default: the client's, 300,000 unless set;
    /// `Infinity` for none): a merchant that never answers must not hold the call forever.
    pub timeout_ms: Option<f64>,
    /// The most bytes of the answer's body read (default 10 MiB): past it, `send` rejects
    /// (`PaymentUnanswered` carrying the payment, when one was made).
    pub max_body_bytes: Option<f64>,
}

impl X402Request {
    /// `maxBodyBytes`, checked (a whole number ≥ 0).
    fn body_limit(&self) -> napi::Result<u64> {
        match self.max_body_bytes {
            None => Ok(chaperone_sdk::DEFAULT_MAX_BODY_BYTES),
            Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= 9_007_199_254_740_991.0 => Ok(n as u64),
            Some(_) => Err(convert::invalid(
                "maxBodyBytes must be a whole number of bytes ≥ 0",
            )),
        }
    }
}

/// A header value from JavaScript: a byte string (each char one byte, as `Headers` holds it).
fn header_bytes(text: &str, what: &str) -> napi::Result<Vec<u8>> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)))
        .collect::<Result<_, _>>()
        .map_err(|_| convert::invalid(format!("{what} {text:?} is not a byte string")))
}

/// The bytes of a header as a JavaScript byte string.
fn byte_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| char::from(*b)).collect()
}

impl X402Request {
    fn into_request(self, default_timeout: Option<Duration>) -> napi::Result<reqwest::Request> {
        let method = self.method.unwrap_or_else(|| "GET".to_owned());
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| convert::invalid(format!("{method:?} is not an HTTP method")))?;
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| convert::invalid(format!("{:?} is not a URL: {e}", self.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(convert::invalid(format!("{url} is not an http(s) URL")));
        }
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in self.headers.unwrap_or_default() {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| convert::invalid(format!("header name {name:?}: {e}")))?;
            if SET_BY_THE_CLIENT.contains(&name.as_str()) {
                continue;
            }
            let value =
                reqwest::header::HeaderValue::from_bytes(&header_bytes(&value, "a header value")?)
                    .map_err(|e| convert::invalid(format!("header {name}: {e}")))?;
            headers.append(name, value);
        }
        let mut request = reqwest::Request::new(method, url);
        *request.headers_mut() = headers;
        *request.timeout_mut() = match self.timeout_ms {
            None => default_timeout,
            Some(ms) => timeout(ms)?,
        };
        if let Some(body) = self.body {
            let bytes = match body {
                Either::A(text) => text.into_bytes(),
                Either::B(bytes) => bytes.to_vec(),
            };
            *request.body_mut() = Some(bytes.into());
        }
        Ok(request)
    }
}

/// The merchant's answer, read whole, and the payment made for it (if any).
#[napi(object, object_from_js = false)]
pub struct X402Response {
    /// The HTTP status.
    pub status: u16,
    /// The status's reason phrase (empty for an unknown status).
    pub status_text: String,
    /// `[name, value]` pairs as received (names lower-case, values one byte per char).
    pub headers: Vec<(String, String)>,
    /// The body, as received (not decompressed).
    pub body: Buffer,
    /// The URL that answered (the request's, or where its redirects led before payment).
    pub url: String,
    /// The payment made for this answer, if the resource asked for one.
    pub payment: Option<X402Payment>,
}

/// Where a payment stands on the chain (`X402Client.standing`).
#[napi(object, object_from_js = false)]
pub struct PaymentStanding {
    /// `usable`, `settled` or `expired`.
    #[napi(ts_type = "'usable' | 'settled' | 'expired'")]
    pub state: String,
    /// The transaction that used it, when `settled`.
    pub settlement: Option<SettledPayment>,
}

impl PaymentStanding {
    fn new(state: &str, settlement: Option<SettledPayment>) -> Self {
        Self {
            state: state.to_owned(),
            settlement,
        }
    }
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
        status_text: answer
            .status
            .canonical_reason()
            .unwrap_or_default()
            .to_owned(),
        headers: answer
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), byte_string(value.as_bytes())))
            .collect(),
        body: answer.body.into(),
        url: answer.url,
        payment: answer.payment.map(X402Payment::from),
    })
}

/// An HTTP client that pays x402 (HTTP 402) resources from the agent's wallet, within its
/// policy: the Rust SDK's `X402Client`. Each payable requirement is co-signed before anything
/// goes back to the merchant; when the policy denies them all, `send` rejects with `Denied`
/// (every reason) and the merchant has seen no payment. The payment header goes only to the
/// origin that asked, and no redirect is followed with it. A payment sent is kept until the
/// merchant serves the request (a retry presents the same one); `PaymentRefused` and
/// `PaymentUnanswered` carry it.
#[napi]
pub struct X402Client {
    inner: chaperone_sdk::X402Client,
    wallet: Arc<chaperone_sdk::Wallet>,
    agent: String,
    /// The bound on each HTTP exchange of a request that names none (`None`: no bound).
    timeout: Option<Duration>,
}

/// Options of `new X402Client(wallet, options)`.
#[napi(object, object_to_js = false)]
pub struct X402ClientOptions {
    /// The bound on each HTTP exchange of a request that names no `timeoutMs`, in ms (default
    /// 300,000; `Infinity` for none).
    pub timeout_ms: Option<f64>,
}

/// `ms` as a bound (`Infinity`: none).
fn timeout(ms: f64) -> napi::Result<Option<Duration>> {
    if ms == f64::INFINITY {
        return Ok(None);
    }
    Duration::try_from_secs_f64(ms / 1000.0)
        .map(Some)
        .map_err(|_| convert::invalid("timeoutMs must be a number of ms ≥ 0 (or Infinity)"))
}

#[napi]
impl X402Client {
    /// A client paying from `wallet` (its own book of payments sent); `options.timeoutMs`
    /// bounds each HTTP exchange of a request that names no `timeoutMs` (default 300,000;
    /// `Infinity` for none).
    #[napi(constructor)]
    pub fn new(wallet: &Wallet, options: Option<X402ClientOptions>) -> napi::Result<Self> {
        let timeout = match options.and_then(|o| o.timeout_ms) {
            None => Some(DEFAULT_TIMEOUT),
            Some(ms) => timeout(ms)?,
        };
        Ok(Self {
            inner: chaperone_sdk::X402Client::new(Arc::unwrap_or_clone(wallet.inner.clone())),
            wallet: wallet.inner.clone(),
            agent: wallet.agent.clone(),
            timeout,
        })
    }

    /// The wallet that pays (checksummed).
    #[napi(getter)]
    pub fn wallet_address(&self) -> String {
        convert::checksummed(self.wallet.address())
    }

    /// The agent that signs its payments (checksummed): a record binds a payment only if
    /// this agent signed it.
    #[napi(getter)]
    pub fn agent(&self) -> String {
        self.agent.clone()
    }

    /// The chain id.
    #[napi(getter)]
    pub fn chain_id(&self) -> i64 {
        i64::try_from(self.wallet.chain_id()).unwrap_or(i64::MAX)
    }

    /// Sends a request (following its redirects before payment) and pays a 402 within the
    /// policy; resolves to the merchant's answer, read whole, with the payment made.
    #[napi]
    pub async fn send(&self, request: X402Request) -> napi::Result<X402Response> {
        let limit = request.body_limit()?;
        let request = request.into_request(self.timeout)?;
        errors::js(send(self.inner.clone(), request, limit).await)
    }

    /// Co-signs a payment for a 402's requirements (`paymentRequired`: the JSON of a v2
    /// `Payment-Required` header, decoded, or of a v1 402 body) without sending anything:
    /// for an x402 client of another library that sends the header itself
    /// (`ChaperoneExactEvmScheme`). `resource` is the URL that asked. Nothing is kept: that
    /// library's handling of the header is its own.
    #[napi]
    pub async fn authorize(
        &self,
        resource: String,
        payment_required: String,
    ) -> napi::Result<X402Payment> {
        let payment = self.inner.authorize(&resource, &payment_required).await;
        Ok(errors::js(payment)?.into())
    }

    /// Resolves once the chain shows `payment`'s authorization used (its settlement, checked
    /// as `X402Payment.verifySettlement` checks one); rejects with `Expired` once it can never
    /// be used (the client then stops keeping it).
    #[napi(ts_return_type = "Promise<SettledPayment>")]
    pub fn watch<'env>(
        &self,
        env: &'env Env,
        payment: &X402Payment,
    ) -> napi::Result<PromiseRaw<'env, SettledPayment>> {
        let client = self.inner.clone();
        let payment = payment.inner.clone();
        env.spawn_future(async move {
            let settled = errors::js(client.watch(&payment).await)?;
            Ok(SettledPayment::from(settled))
        })
    }

    /// Where `payment` stands on the chain (its validity measured in chain time, not the local
    /// clock): `usable` (the merchant may still settle it), `settled` (with the transaction
    /// that used it) or `expired` (unused, and it never can be). `ChaperoneExactEvmScheme`
    /// asks before it forgets a payment it kept.
    #[napi(ts_return_type = "Promise<PaymentStanding>")]
    pub fn standing<'env>(
        &self,
        env: &'env Env,
        payment: &X402Payment,
    ) -> napi::Result<PromiseRaw<'env, PaymentStanding>> {
        let client = self.inner.clone();
        let payment = payment.inner.clone();
        env.spawn_future(async move {
            let standing = errors::js(client.standing(&payment).await)?;
            Ok(match standing {
                chaperone_sdk::PaymentStanding::Usable => PaymentStanding::new("usable", None),
                chaperone_sdk::PaymentStanding::Settled(settled) => {
                    PaymentStanding::new("settled", Some(settled.into()))
                }
                chaperone_sdk::PaymentStanding::Expired => PaymentStanding::new("expired", None),
            })
        })
    }

    /// The payments sent that no merchant has answered with its resource yet.
    #[napi]
    pub fn outstanding(&self) -> Vec<X402Payment> {
        self.inner
            .outstanding()
            .into_iter()
            .map(X402Payment::from)
            .collect()
    }

    /// Stops keeping the payment of decision `requestId` (the next request for its resource
    /// pays anew); returns it, or `null` if none was kept.
    #[napi]
    pub fn release(&self, request_id: String) -> napi::Result<Option<X402Payment>> {
        let request_id = convert::b256(&request_id, "requestId")?;
        Ok(self.inner.release(request_id).map(X402Payment::from))
    }

    /// `Wallet.bindToCall` from this client's wallet: tells the policy service that payment
    /// `requestId` was made in the call whose record has `leafHash`.
    #[napi]
    pub async fn bind_to_call(&self, request_id: String, leaf_hash: String) -> napi::Result<()> {
        let request_id = convert::b256(&request_id, "requestId")?;
        let leaf_hash = convert::b256(&leaf_hash, "leafHash")?;
        errors::js(self.wallet.bind_to_call(request_id, leaf_hash).await)
    }
}

//! Paying for HTTP APIs with x402 (HTTP 402 Payment Required) from the agent's wallet, within
//! its policy. [`X402Client::send`] sends a request; on a 402 it reads the merchant's payment
//! requirements (x402 v2 `Payment-Required` header, or a v1 body), and tries the ones this
//! wallet can pay (its chain, the "exact" scheme, EIP-3009 or Permit2) in the merchant's order:
//! each is signed by the agent and co-signed by the policy service before anything goes back
//! to the merchant. The first one co-signed is sent as the payment header; the merchant's
//! answer comes back with the settlement it reports (transaction, payer, network).
//!
//! A merchant is untrusted (docs/security.md, "Paying merchants"):
//! - the payment header goes only to the origin whose 402 asked for it, and no redirect
//!   carries it on (`redirect.rs`); the payment record names the URL that asked;
//! - a payment sent is never forgotten: a merchant that answers it with another 402 (or not at
//!   all) gets it back in the error, the client keeps it, presents the same authorization
//!   again when the application retries, and signs no second one for that request while the
//!   first can still be used (`sent.rs`); [`X402Client::watch`] follows it until it settles or
//!   expires;
//! - a settlement counts only when the chain shows this authorization used, from an
//!   AgentWallet of the agent ([`X402Payment::verify_settlement`], `settlement.rs`).
//!
//! The protocol messages are x402-rs's (`x402-types`, `x402-chain-eip155`, and
//! `x402-reqwest`'s 402 parser), not a second rendering of the wire format. `x402-reqwest`'s
//! middleware is not used: its signer hook reports failure as a string, and a denial here must
//! come back typed, with every reason.

mod body;
mod header;
mod payment;
mod redirect;
mod requirements;
mod sent;
mod settlement;
mod standing;

use std::{sync::Arc, time::Duration};

use alloy::{eips::BlockNumberOrTag, primitives::B256, providers::Provider};
pub use body::DEFAULT_MAX_BODY_BYTES;
use body::{payment_required, read_body};
use header::{Envelope, Signed};
use payment::SettlementWire;
pub use payment::{PaidAuthorization, PaymentMethod, Settlement, X402Payment};
use requirements::{Candidate, candidate};
use sent::{SentPayments, request_key};
pub use settlement::SettledPayment;
pub use standing::PaymentStanding;
use x402_types::{
    chain::ChainId,
    proto::{OriginalJson, PaymentRequired, v1, v2},
    util::Base64Bytes,
};

use crate::{Error, Result, TokenDomain, Wallet, wallet::unix_now};

/// The most payment options of one 402 the client tries (each denied one is a decision).
const MAX_OPTIONS_TRIED: usize = 4;

/// The merchant's answer, and the payment if one was made.
#[derive(Debug)]
pub struct X402Response {
    /// The merchant's HTTP response (to the paid retry, when there was one).
    pub response: reqwest::Response,
    /// The payment made for it, if the resource asked for one.
    pub payment: Option<X402Payment>,
}

/// The merchant's answer read whole (by [`X402Client::send_read`]), and the payment if one
/// was made.
#[derive(Debug)]
pub struct X402Answer {
    /// The answer's status.
    pub status: reqwest::StatusCode,
    /// The HTTP version it came in.
    pub version: reqwest::Version,
    /// The URL that answered.
    pub url: String,
    /// Its headers.
    pub headers: reqwest::header::HeaderMap,
    /// Its body, whole.
    pub body: Vec<u8>,
    /// The payment made for it, if the resource asked for one.
    pub payment: Option<X402Payment>,
}

/// An HTTP client that pays x402 resources from the agent's wallet, within its policy.
#[derive(Debug, Clone)]
pub struct X402Client {
    /// Follows no redirects: a paid request's 3xx comes back as it is (see `redirect.rs`).
    http: reqwest::Client,
    wallet: Wallet,
    longest_validity: Duration,
    sent: Arc<SentPayments>,
    /// One payment decision at a time per request: two identical requests sent at once must
    /// not each sign a payment (the second waits and presents the first's).
    paying: Arc<std::sync::Mutex<std::collections::HashMap<B256, Arc<tokio::sync::Mutex<()>>>>>,
}

impl X402Client {
    /// A client paying from `wallet`, each authorization valid for at most the merchant's
    /// `maxTimeoutSeconds` and at most two minutes.
    pub fn new(wallet: Wallet) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            // As `reqwest::Client::new()` does: only a TLS backend that cannot start fails.
            .expect("an HTTP client without redirects");
        Self {
            http,
            wallet,
            longest_validity: Duration::from_secs(120),
            sent: Arc::default(),
            paying: Arc::default(),
        }
    }

    /// GETs `url`, paying if it asks for payment.
    pub async fn get(&self, url: &str) -> Result<X402Response> {
        let request = self
            .http
            .get(url)
            .build()
            .map_err(|e| unreachable(url, e))?;
        self.send(request).await
    }

    /// [`send`](Self::send), then reads the answer's body whole, at most `max_body_bytes`
    /// (what the language packages hand their callers). A payment made is never lost: when
    /// its answer's body cannot be read (or is larger), the error carries it and the client
    /// keeps it, so the request sent again presents the same payment instead of paying twice
    /// (the merchant, having served, may well have settled it). The request's lock is held
    /// until the body is read: an identical request sent meanwhile waits, then presents the
    /// same payment; a payment counts as served only once its whole answer was read.
    pub async fn send_read(
        &self,
        request: reqwest::Request,
        max_body_bytes: u64,
    ) -> Result<X402Answer> {
        self.exchange(request, move |response, payment| async move {
            let status = response.status();
            let version = response.version();
            let url = response.url().to_string();
            let headers = response.headers().clone();
            match read_body(response, max_body_bytes).await {
                Ok(body) => Ok(X402Answer {
                    status,
                    version,
                    url,
                    headers,
                    body,
                    payment,
                }),
                Err(why) => Err(match payment {
                    Some(payment) => Error::PaymentUnanswered {
                        detail: format!("reading the answer: {why}"),
                        payment: Box::new(payment),
                    },
                    None => Error::Unreachable {
                        url,
                        detail: format!("reading the answer: {why}"),
                    },
                }),
            }
        })
        .await
    }

    /// Sends `request` (following its redirects); on a 402, pays (see the module
    /// documentation) and sends the request that got the 402 again with the payment, to that
    /// origin only. A requirement the policy denies never reaches the merchant: when every
    /// payable requirement is denied, [`Error::Denied`] carries every reason. A payment the
    /// merchant refuses (it answers 402 again) is [`Error::PaymentRefused`], one it does not
    /// answer [`Error::PaymentUnanswered`]; both carry the payment, and the client presents
    /// that same payment again when the same request is sent while it can still be used.
    /// A paid 2xx counts as served when it comes back (its body is the caller's to read:
    /// [`send_read`](Self::send_read) counts it only once the body was read whole).
    pub async fn send(&self, request: reqwest::Request) -> Result<X402Response> {
        self.exchange(request, |response, payment| async move {
            Ok(X402Response { response, payment })
        })
        .await
    }

    /// [`send`](Self::send)'s exchange, handing the answer to `finish` while the request's
    /// lock is held; a paid answer counts as served when its status is 2xx and `finish`
    /// succeeded (until then the payment stays kept, presented again to a retry).
    async fn exchange<T, Fut>(
        &self,
        request: reqwest::Request,
        finish: impl FnOnce(reqwest::Response, Option<X402Payment>) -> Fut,
    ) -> Result<T>
    where
        Fut: std::future::Future<Output = Result<T>>,
    {
        let key = request_key(&request);
        let (paid_request, first) = redirect::follow(&self.http, request).await?;
        if first.status() != reqwest::StatusCode::PAYMENT_REQUIRED {
            return finish(first, None).await;
        }
        let url = paid_request.url().to_string();
        let required = payment_required(first).await.map_err(|why| {
            Error::Invalid(format!(
                "{url} answered 402 without x402 requirements ({why})"
            ))
        })?;
        // The request's own bound also bounds its wait behind an identical request whose paid
        // answer is still being read: queued behind a body that stalls, the k-th would
        // otherwise wait k times as long (and forever with no bound).
        let wait = paid_request.timeout().copied();
        let lock = self.request_lock(key);
        let answer = async {
            let _paying = match wait {
                None => lock.lock().await,
                Some(wait) => match tokio::time::timeout(wait, lock.lock()).await {
                    Ok(paying) => paying,
                    Err(_) => return Err(self.still_paying(key, &url, wait)),
                },
            };
            let payment = match self.outstanding_for(key, &url).await? {
                Some(payment) => payment,
                None => self.pay_anew(&url, required).await?,
            };
            let response = self.present(paid_request, key, payment).await?;
            let request_id = response.payment.as_ref().map(|p| p.request_id);
            // Served: a new request for the resource is a new purchase. Anything else (an
            // error, a body that never arrives whole, or a redirect: a merchant could settle,
            // answer 307 to the same URL and be paid again by an application that follows it)
            // leaves the payment kept, presented again.
            let served = response.response.status().is_success();
            let finished = finish(response.response, response.payment).await?;
            if let (true, Some(request_id)) = (served, request_id) {
                self.sent.done(key, request_id);
            }
            Ok(finished)
        }
        .await;
        self.forget_lock(key, lock);
        answer
    }

    /// Co-signs a payment for a 402's requirements (`payment_required`: the JSON of an x402 v2
    /// `Payment-Required` header, decoded, or of a v1 402 body) without sending anything: the
    /// same selection and co-signing as [`X402Client::send`], for an x402 client of another
    /// library that sends the payment header itself (Python's `x402` package). `resource` is
    /// the URL that asked, named in the payment record. The client keeps nothing: what that
    /// library does with the header (which origin gets it, a retry, a redirect) is its own.
    pub async fn authorize(&self, resource: &str, payment_required: &str) -> Result<X402Payment> {
        let required = serde_json::from_str::<v2::PaymentRequired<OriginalJson>>(payment_required)
            .map(PaymentRequired::V2)
            .or_else(|_| {
                serde_json::from_str::<v1::PaymentRequired<OriginalJson>>(payment_required)
                    .map(PaymentRequired::V1)
            })
            .map_err(|e| Error::Invalid(format!("not x402 payment requirements: {e}")))?;
        self.pay_anew(resource, required).await
    }

    /// The error of a request that waited `wait` (its own timeout) for an identical one still
    /// paying or reading its paid answer: the payment kept for it, if any, stays kept and is
    /// carried, so that nothing signs a second one.
    fn still_paying(&self, key: B256, url: &str, wait: Duration) -> Error {
        let detail = format!(
            "waited {} s (the request's timeout) for an identical request still paying {url} \
             or reading its paid answer",
            wait.as_secs_f64()
        );
        match self.sent.for_request(key) {
            Some(payment) => Error::PaymentUnanswered {
                detail,
                payment: Box::new(payment),
            },
            None => Error::Unreachable {
                url: url.to_owned(),
                detail,
            },
        }
    }

    /// The lock of request `key` (see `paying`).
    fn request_lock(&self, key: B256) -> Arc<tokio::sync::Mutex<()>> {
        self.paying
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(key)
            .or_default()
            .clone()
    }

    /// Drops request `key`'s lock once nobody else holds or waits for it.
    fn forget_lock(&self, key: B256, lock: Arc<tokio::sync::Mutex<()>>) {
        let mut locks = self
            .paying
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Ours and the map's: nobody else has it.
        if Arc::strong_count(&lock) == 2 {
            locks.remove(&key);
        }
    }

    /// Waits until the chain shows `payment`'s authorization used (its settlement, checked as
    /// [`X402Payment::verify_settlement`] checks one) or its validity over in chain time
    /// ([`Error::Expired`]: it can never move funds, and the client stops keeping it, so the
    /// request may be paid anew). Asks every `WalletConfig::approval_poll`. A settled payment
    /// stays kept: the merchant was paid, so a retry presents it again rather than pay twice
    /// (until the merchant serves the request, or [`X402Client::release`]).
    pub async fn watch(&self, payment: &X402Payment) -> Result<SettledPayment> {
        let agent = self.wallet.key.address();
        let usable_until = payment.authorization()?.usable_until();
        loop {
            // Read before searching: once chain time is past, no later block can use it, so a
            // search that finds nothing after this is final.
            let over = self.chain_time().await? > usable_until;
            if let Some(settled) = payment
                .find_settlement(&self.wallet.provider, agent)
                .await?
            {
                return Ok(settled);
            }
            if over {
                self.sent.release(payment.request_id);
                return Err(Error::Expired);
            }
            tokio::time::sleep(self.wallet.config.approval_poll).await;
        }
    }

    /// The payments sent that no merchant has answered with its resource yet.
    pub fn outstanding(&self) -> Vec<X402Payment> {
        self.sent.all()
    }

    /// Stops keeping the payment of decision `request_id`, so that the next request for its
    /// resource pays anew: for an application that knows the merchant will not use it.
    pub fn release(&self, request_id: B256) -> Option<X402Payment> {
        self.sent.release(request_id)
    }

    /// The payment already sent for request `key`, to present again to `url`; `None` when
    /// there is none or it can never be used (then a new one may be signed).
    async fn outstanding_for(&self, key: B256, url: &str) -> Result<Option<X402Payment>> {
        let Some(payment) = self.sent.for_request(key) else {
            return Ok(None);
        };
        let refused = |payment: X402Payment, reason: String| Error::PaymentRefused {
            request_id: payment.request_id,
            reason,
            payment: Box::new(payment),
        };
        let usable_until = payment.authorization()?.usable_until();
        if self.chain_time().await? <= usable_until {
            if payment.resource != url {
                let reason = format!(
                    "{url} asks for payment, but this request's payment to {} can still be used \
                     until {usable_until}",
                    payment.resource
                );
                return Err(refused(payment, reason));
            }
            return Ok(Some(payment));
        }
        // Past its validity the chain has the last word.
        let agent = self.wallet.key.address();
        if let Some(settled) = payment
            .find_settlement(&self.wallet.provider, agent)
            .await?
        {
            let reason = format!(
                "paid in transaction {}, and asked for payment again",
                settled.transaction
            );
            return Err(refused(payment, reason));
        }
        self.sent.done(key, payment.request_id);
        Ok(None)
    }

    /// Co-signs the first requirement of `required` that this wallet can pay and the policy
    /// allows (see [`X402Client::send`]).
    async fn pay_anew(&self, url: &str, required: PaymentRequired) -> Result<X402Payment> {
        let (version, resource, accepts, extensions) = match required {
            PaymentRequired::V2(r) => (2, r.resource, r.accepts, r.extensions),
            PaymentRequired::V1(r) => (1, None, r.accepts, v2::ExtensionsJson::default()),
        };
        let network = ChainId::new("eip155", self.wallet.chain_id().to_string());
        // A few options at most: each denied one is a decision, a log record and perhaps a
        // notification, and a 402 listing hundreds would flood them and the rate limit.
        let candidates: Vec<Candidate> = accepts
            .iter()
            .filter_map(|original| candidate(version, original, &network))
            .take(MAX_OPTIONS_TRIED)
            .collect();
        if candidates.is_empty() {
            return Err(Error::Invalid(format!(
                "{url} accepts no payment this wallet can make (the exact scheme with EIP-3009 \
                 or Permit2 on {network})"
            )));
        }
        // It cannot settle before the block the chain is at now.
        let block_sent = self
            .wallet
            .provider
            .get_block_number()
            .await
            .map_err(|e| Error::Chain(e.to_string()))?;
        let mut denied: Option<Error> = None;
        for candidate in candidates {
            let signed = match self.sign(&candidate).await {
                Ok(signed) => signed,
                Err(Error::Denied {
                    request_id,
                    reasons,
                    reasons_text,
                }) => {
                    denied = Some(merge_denials(denied, request_id, reasons, reasons_text));
                    continue;
                }
                Err(other) => return Err(other),
            };
            let envelope = Envelope {
                version,
                accepted: &candidate.original,
                resource,
                extensions: &extensions,
                network: &network,
            };
            let payload = header::encode(&signed, self.wallet.address(), envelope)?;
            return Ok(X402Payment {
                resource: url.to_owned(),
                x402_version: version,
                requirement: serde_json::from_str(candidate.original.0.get()).unwrap_or_default(),
                network: network.to_string(),
                method: candidate.method,
                asset: candidate.asset,
                pay_to: candidate.pay_to,
                amount: candidate.amount,
                request_id: signed.request_id(),
                authorization_hash: signed.hash(),
                nonce: signed.nonce(),
                payload,
                settlement: None,
                block_sent: Some(block_sent),
            });
        }
        Err(denied.unwrap_or(Error::Closed))
    }

    async fn sign(&self, c: &Candidate) -> Result<Signed> {
        let valid_for = Duration::from_secs(c.max_timeout_seconds).min(self.longest_validity);
        // Usable at once: a minute back covers a chain clock a little behind this one.
        let valid_after = unix_now().saturating_sub(60);
        Ok(match c.method {
            PaymentMethod::Eip3009 => {
                let (name, version) = c.domain.clone().unwrap_or_default();
                let domain = TokenDomain {
                    name,
                    version,
                    chain_id: self.wallet.chain_id(),
                    verifying_contract: c.asset,
                };
                Signed::Eip3009(
                    self.wallet
                        .sign_authorization(
                            chaperone_core::Eip3009Kind::TransferWithAuthorization,
                            domain,
                            c.pay_to,
                            c.amount,
                            valid_after,
                            valid_for,
                        )
                        .await?,
                )
            }
            PaymentMethod::Permit2 => Signed::Permit2(
                self.wallet
                    .sign_permit2_payment(c.asset, c.pay_to, c.amount, valid_after, valid_for)
                    .await?,
            ),
        })
    }

    /// Sends `request` (the one that got the 402) with `payment`, kept as sent for request
    /// `key` (until `exchange` sees the request served).
    async fn present(
        &self,
        mut request: reqwest::Request,
        key: B256,
        mut payment: X402Payment,
    ) -> Result<X402Response> {
        let value = payment
            .payload
            .parse()
            .map_err(|_| Error::Invalid("the payment header is not ASCII".into()))?;
        request.headers_mut().insert(payment.header_name(), value);
        // Kept before it leaves: from here the merchant may hold it.
        self.sent.keep(key, payment.clone());
        let response = match self.http.execute(request).await {
            Ok(response) => response,
            Err(e) => {
                return Err(Error::PaymentUnanswered {
                    detail: http_detail(&e),
                    payment: Box::new(payment),
                });
            }
        };
        if response.status() == reqwest::StatusCode::PAYMENT_REQUIRED {
            let reason = match payment_required(response).await {
                Ok(PaymentRequired::V2(r)) => r.error,
                Ok(PaymentRequired::V1(r)) => r.error,
                Err(_) => None,
            };
            return Err(Error::PaymentRefused {
                request_id: payment.request_id,
                reason: reason.unwrap_or_else(|| "no reason given".into()),
                payment: Box::new(payment),
            });
        }
        payment.settlement = ["Payment-Response", "X-Payment-Response"]
            .iter()
            .find_map(|name| response.headers().get(*name))
            .and_then(|h| Base64Bytes::from(h.as_bytes()).decode().ok())
            .and_then(|bytes| serde_json::from_slice::<SettlementWire>(&bytes).ok())
            .map(Settlement::from);
        Ok(X402Response {
            response,
            payment: Some(payment),
        })
    }

    /// The latest block's time: what an authorization's validity is measured against.
    async fn chain_time(&self) -> Result<u64> {
        let block = self
            .wallet
            .provider
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .map_err(|e| Error::Chain(e.to_string()))?
            .ok_or_else(|| Error::Chain("the chain has no latest block".into()))?;
        Ok(block.header.timestamp)
    }
}

/// Every requirement's denial reasons in one [`Error::Denied`] (the last request's id).
fn merge_denials(
    earlier: Option<Error>,
    request_id: B256,
    mut reasons: Vec<chaperone_core::policy::Reason>,
    mut reasons_text: Vec<String>,
) -> Error {
    if let Some(Error::Denied {
        reasons: mut before,
        reasons_text: mut before_text,
        ..
    }) = earlier
    {
        before.append(&mut reasons);
        before_text.append(&mut reasons_text);
        reasons = before;
        reasons_text = before_text;
    }
    Error::Denied {
        request_id,
        reasons,
        reasons_text,
    }
}

fn unreachable(url: &str, e: reqwest::Error) -> Error {
    Error::Unreachable {
        url: url.to_owned(),
        detail: http_detail(&e),
    }
}

/// An HTTP failure with its causes ("error sending request" alone does not say whether the
/// connection was refused, reset or timed out).
pub(crate) fn http_detail(e: &reqwest::Error) -> String {
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    detail
}

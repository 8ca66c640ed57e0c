//! The merchant: an HTTP server on a port of its own whose routes ask for payment (x402 v2)
//! and then settle it through the chain, report a settlement they did not make, keep the
//! payment, or redirect; it records every request it received.

use std::sync::{Arc, Mutex};

use alloy::providers::DynProvider;
use chaperone_core::{Address, B256};
use chaperone_testkit::listen;
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use x402_types::util::Base64Bytes;

use super::{
    PRICE, Shop,
    facilitator::{payer_of, settle_on_chain},
};

/// What one request carried, as the merchant saw it.
#[derive(Debug, Clone)]
pub(super) struct Seen {
    pub(super) path: String,
    /// The payment header's value, if any (`Payment-Signature` or `X-Payment`).
    pub(super) payment: Option<String>,
}

/// How a merchant's route answers.
#[derive(Debug, Clone)]
pub(super) enum Route {
    /// 402 until paid; then, per `on_payment`.
    Paid {
        method: &'static str,
        on_payment: OnPayment,
    },
    /// A redirect (302) to `to`, with or without a payment.
    Redirect { to: String },
}

/// What a merchant does with a payment it receives.
#[derive(Debug, Clone)]
pub(super) enum OnPayment {
    /// Settles it through the chain and serves the content with the transaction.
    Settle,
    /// Does not settle it, but reports `tx` as its settlement and serves the content.
    Report(B256),
    /// Keeps it (unsettled) and answers 402 again.
    Refuse,
    /// Answers 307 to another URL (the client would re-send the payment there).
    RedirectTo(String),
    /// Settles it through the chain, then answers 200 with a body that stalls after a few
    /// bytes (its stated length never arrives) until the connection is dropped.
    SettleThenStall,
    /// Keeps it (unsettled) and answers 200 with a body that stalls, every time it is
    /// presented: each paid request holds its request's lock until its own timeout.
    Stall,
}

/// A route paid by `method` (`eip3009` or `permit2`).
pub(super) fn paid(method: &'static str, on_payment: OnPayment) -> Route {
    Route::Paid { method, on_payment }
}

/// A merchant on a port of its own: its routes by path, and every request it received.
pub(super) struct Merchant {
    pub(super) base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// The settlements it made, in order.
    settled: Arc<Mutex<Vec<B256>>>,
}

impl Merchant {
    pub(super) async fn start(shop: &Shop, routes: Vec<(&'static str, Route)>) -> Self {
        let (listener, base) = listen().await;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let settled = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(MerchantState {
            base: base.clone(),
            routes,
            facilitator: shop.facilitator.clone(),
            token: shop.token,
            pay_to: shop.pay_to,
            seen: Arc::clone(&seen),
            settled: Arc::clone(&settled),
        });
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let state = Arc::clone(&state);
                tokio::spawn(async move { state.serve(stream).await });
            }
        });
        Self {
            base,
            seen,
            settled,
        }
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(super) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The transactions it settled, in order.
    pub(super) fn settled(&self) -> Vec<B256> {
        self.settled.lock().unwrap().clone()
    }

    /// The payment headers it received, in order.
    pub(super) fn payments(&self) -> Vec<String> {
        self.seen().into_iter().filter_map(|s| s.payment).collect()
    }
}

struct MerchantState {
    base: String,
    routes: Vec<(&'static str, Route)>,
    facilitator: DynProvider,
    token: Address,
    pay_to: Address,
    seen: Arc<Mutex<Vec<Seen>>>,
    settled: Arc<Mutex<Vec<B256>>>,
}

/// A response: status, headers, body.
type Answer = (u16, Vec<(String, String)>, String);

impl MerchantState {
    async fn serve(&self, mut stream: TcpStream) {
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 4096];
        while !buffer.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            buffer.extend_from_slice(&chunk[..n]);
        }
        let head = String::from_utf8_lossy(&buffer).to_string();
        let mut lines = head.split("\r\n");
        let path = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or("/")
            .to_owned();
        let payment = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(name, _)| {
                name.eq_ignore_ascii_case("payment-signature")
                    || name.eq_ignore_ascii_case("x-payment")
            })
            .map(|(_, value)| value.trim().to_owned());
        self.seen.lock().unwrap().push(Seen {
            path: path.clone(),
            payment: payment.clone(),
        });
        let stalls = payment.is_some()
            && self.routes.iter().any(|(p, route)| {
                *p == path
                    && matches!(
                        route,
                        Route::Paid {
                            on_payment: OnPayment::SettleThenStall | OnPayment::Stall,
                            ..
                        }
                    )
            });
        let (status, headers, body) = self.answer(&path, payment).await;
        if stalls && status == 200 {
            let head = "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n{\"forecast\":";
            stream.write_all(head.as_bytes()).await.ok();
            // Held open, the rest never sent, until the client gives up on it.
            let mut rest = [0u8; 64];
            while matches!(stream.read(&mut rest).await, Ok(n) if n > 0) {}
            return;
        }
        let mut response = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", body.len());
        for (name, value) in headers {
            response.push_str(&format!("{name}: {value}\r\n"));
        }
        response.push_str("Connection: close\r\n\r\n");
        response.push_str(&body);
        stream.write_all(response.as_bytes()).await.ok();
        stream.shutdown().await.ok();
    }

    async fn answer(&self, path: &str, payment: Option<String>) -> Answer {
        let Some((_, route)) = self.routes.iter().find(|(p, _)| *p == path) else {
            return (404, vec![], "no such route".into());
        };
        match route {
            Route::Redirect { to } => (302, vec![("Location".into(), to.clone())], String::new()),
            Route::Paid { method, on_payment } => match payment {
                None => self.payment_required(path, method),
                Some(header) => self.on_payment(path, method, on_payment, &header).await,
            },
        }
    }

    /// 402 with x402 v2 requirements for `method` (`eip3009` or `permit2`).
    fn payment_required(&self, path: &str, method: &str) -> Answer {
        let extra = match method {
            "permit2" => {
                json!({ "assetTransferMethod": "permit2", "name": "Test Token", "version": "1" })
            }
            _ => json!({ "name": "Test Token", "version": "1" }),
        };
        let required = json!({
            "x402Version": 2,
            "resource": { "url": format!("{}{path}", self.base) },
            "accepts": [{
                "scheme": "exact", "network": "eip155:31337", "amount": PRICE.to_string(),
                "payTo": self.pay_to, "maxTimeoutSeconds": 60, "asset": self.token, "extra": extra,
            }],
            // The x402 `payment-identifier` extension: a retried payment is recognised.
            "extensions": { "payment-identifier": { "info": { "required": false } } },
        });
        let header = Base64Bytes::encode(serde_json::to_vec(&required).unwrap()).to_string();
        (402, vec![("Payment-Required".into(), header)], "{}".into())
    }

    async fn on_payment(
        &self,
        path: &str,
        method: &str,
        on_payment: &OnPayment,
        header: &str,
    ) -> Answer {
        let settle = |tx: B256| {
            let response = json!({
                "success": true, "transaction": tx, "network": "eip155:31337",
                "payer": payer_of(header),
            });
            let header = Base64Bytes::encode(serde_json::to_vec(&response).unwrap()).to_string();
            (
                200,
                vec![("Payment-Response".into(), header)],
                "{\"forecast\": \"sunny\"}".to_owned(),
            )
        };
        match on_payment {
            OnPayment::Settle | OnPayment::SettleThenStall => {
                match settle_on_chain(&self.facilitator, self.token, header).await {
                    Ok(tx) => {
                        self.settled.lock().unwrap().push(tx);
                        settle(tx)
                    }
                    Err(e) => (402, vec![], format!("settlement failed: {e}")),
                }
            }
            OnPayment::Report(tx) => settle(*tx),
            OnPayment::Stall => (200, vec![], String::new()),
            OnPayment::Refuse => self.payment_required(path, method),
            OnPayment::RedirectTo(to) => {
                (307, vec![("Location".into(), to.clone())], String::new())
            }
        }
    }
}

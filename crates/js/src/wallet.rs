//! `Wallet`: pays through the agent's `AgentWallet`, within its policy.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use chaperone_core::{B256, Bytes, Call};
use chaperone_sdk::{Payment, PendingPayment, TokenDomain, WalletConfig};
use napi::bindgen_prelude::{BigInt, Either, Uint8Array};
use napi_derive::napi;

use crate::{
    convert, errors,
    recorder::agent_key,
    types::{AuthorizationOptions, Executed, SignedAuthorization},
};

/// How a `Wallet` asks: each field optional, the SDK's defaults otherwise.
#[napi(object)]
#[derive(Default)]
pub struct WalletOptions {
    /// How long a co-signed request stays valid, in seconds (default 120).
    pub valid_for: Option<f64>,
    /// How often `waitForApproval` asks, in seconds (default 2).
    pub approval_poll: Option<f64>,
}

/// One call from the wallet: `data` as bytes or `0x` hex (default none).
#[napi(object)]
pub struct WalletCall {
    /// The contract or account called (checksummed or all one case).
    pub to: String,
    /// Native value sent, in base units.
    pub value: BigInt,
    /// Call data.
    pub data: Option<Either<String, Uint8Array>>,
}

fn seconds(value: f64, what: &str) -> napi::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| convert::invalid(format!("{what} must be a number of seconds ≥ 0")))
}

fn call(call: &WalletCall) -> napi::Result<Call> {
    let data = match &call.data {
        None => Bytes::new(),
        Some(Either::A(hex)) => hex
            .parse()
            .map_err(|e| convert::invalid(format!("call data is not 0x hex: {e}")))?,
        Some(Either::B(bytes)) => Bytes::copy_from_slice(bytes),
    };
    Ok(Call {
        to: convert::address(&call.to)?,
        value: convert::u256(&call.value, "value")?,
        data,
    })
}

/// The agent's wallet: pays within its policy, never around it. Each payment is signed by the
/// agent, co-signed by the policy service, submitted and awaited. A denial rejects with
/// `Denied` (with every reason), a payment above an approval threshold with `Pending`.
#[napi]
pub struct Wallet {
    pub(crate) inner: Arc<chaperone_sdk::Wallet>,
    /// The agent that signs (checksummed).
    pub(crate) agent: String,
    /// Payments waiting for a human, by request id, for `waitForApproval`.
    pending: Arc<Mutex<HashMap<B256, PendingPayment>>>,
}

/// Keeps a pending payment for `waitForApproval` before its error leaves for JavaScript.
fn keep_pending<T>(
    pending: &Mutex<HashMap<B256, PendingPayment>>,
    result: chaperone_sdk::Result<T>,
) -> napi::Result<T> {
    if let Err(chaperone_sdk::Error::Pending(payment)) = &result {
        pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(payment.request_id, (**payment).clone());
    }
    errors::js(result)
}

#[napi]
impl Wallet {
    /// Connects to the chain at `rpcUrl` (the agent key pays the gas) and the policy service
    /// at `serverUrl`.
    #[napi]
    pub async fn connect(
        server_url: String,
        rpc_url: String,
        wallet: String,
        agent_key: String,
        options: Option<WalletOptions>,
    ) -> napi::Result<Wallet> {
        let key = self::agent_key(&agent_key)?;
        let options = options.unwrap_or_default();
        let mut config = WalletConfig::new(server_url, rpc_url, convert::address(&wallet)?);
        if let Some(valid_for) = options.valid_for {
            config.valid_for = seconds(valid_for, "validFor")?;
        }
        if let Some(poll) = options.approval_poll {
            config.approval_poll = seconds(poll, "approvalPoll")?;
        }
        let agent = convert::checksummed(key.address());
        let inner = errors::js(chaperone_sdk::Wallet::connect(config, key).await)?;
        Ok(Self {
            inner: Arc::new(inner),
            agent,
            pending: Arc::default(),
        })
    }

    /// The wallet's address (checksummed).
    #[napi(getter)]
    pub fn address(&self) -> String {
        convert::checksummed(self.inner.address())
    }

    /// The chain id.
    #[napi(getter)]
    pub fn chain_id(&self) -> i64 {
        i64::try_from(self.inner.chain_id()).unwrap_or(i64::MAX)
    }

    /// The agent that signs its payments (checksummed).
    #[napi(getter)]
    pub fn agent(&self) -> String {
        self.agent.clone()
    }

    /// Pays `amount` base units to `to`: native currency, or the ERC-20 `token`.
    #[napi]
    pub async fn pay(
        &self,
        to: String,
        amount: BigInt,
        token: Option<String>,
    ) -> napi::Result<Executed> {
        let payment = Payment {
            token: token.as_deref().map(convert::address).transpose()?,
            to: convert::address(&to)?,
            amount: convert::u256(&amount, "amount")?,
        };
        let wallet = self.inner.clone();
        Ok(keep_pending(&self.pending, wallet.pay(payment).await)?.into())
    }

    /// Executes `calls` from the wallet in one transaction.
    #[napi]
    pub async fn execute(&self, calls: Vec<WalletCall>) -> napi::Result<Executed> {
        let calls = calls.iter().map(call).collect::<napi::Result<Vec<_>>>()?;
        let wallet = self.inner.clone();
        Ok(keep_pending(&self.pending, wallet.execute(calls).await)?.into())
    }

    /// Waits (up to `timeoutSeconds`, default 600) until an approver decides the pending
    /// payment `requestId` (a `Pending` error's), then submits it. Rejects with `Denied` if
    /// denied, `Expired` when the wait or the request runs out.
    #[napi]
    pub async fn wait_for_approval(
        &self,
        request_id: String,
        timeout_seconds: Option<f64>,
    ) -> napi::Result<Executed> {
        let timeout = seconds(timeout_seconds.unwrap_or(600.0), "timeoutSeconds")?;
        let id = convert::b256(&request_id, "requestId")?;
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id)
            .ok_or_else(|| {
                convert::invalid(format!(
                    "{request_id} is no pending payment of this wallet (each is waited for once)"
                ))
            })?;
        let wallet = self.inner.clone();
        Ok(errors::js(wallet.wait_for_approval(pending, timeout).await)?.into())
    }

    /// Tells the policy service that the approved payment `requestId` (an
    /// `X402Payment.requestId`) was made in the model call whose record has `leafHash` (that
    /// record should commit to it: `X402Payment.recordMetadata`); the decision then names the
    /// call. Signed by the agent; set once. The record must be logged already
    /// (`Recorder.receipt`), and received while the co-signature was valid.
    #[napi]
    pub async fn bind_to_call(&self, request_id: String, leaf_hash: String) -> napi::Result<()> {
        let request_id = convert::b256(&request_id, "requestId")?;
        let leaf_hash = convert::b256(&leaf_hash, "leafHash")?;
        let wallet = self.inner.clone();
        errors::js(wallet.bind_to_call(request_id, leaf_hash).await)
    }

    /// Signs an EIP-3009 `TransferWithAuthorization` of `value` base units of `token` to `to`
    /// and has it co-signed within the policy: what an x402 "exact" payment carries, for a
    /// caller that builds the payment header itself. `options.name` and `options.version`
    /// are the token's EIP-712 domain; `options.validFor` seconds (default 60). Rejects with
    /// `Denied` (every reason) or `PendingAuthorization`.
    #[napi]
    pub async fn sign_payment_authorization(
        &self,
        token: String,
        to: String,
        value: BigInt,
        options: AuthorizationOptions,
    ) -> napi::Result<SignedAuthorization> {
        let domain = TokenDomain {
            name: options.name,
            version: options.version,
            chain_id: self.inner.chain_id(),
            verifying_contract: convert::address(&token)?,
        };
        let to = convert::address(&to)?;
        let value = convert::u256(&value, "value")?;
        let valid_for = seconds(options.valid_for.unwrap_or(60.0), "validFor")?;
        let wallet = self.inner.clone();
        let signed = wallet
            .sign_payment_authorization(domain, to, value, valid_for)
            .await;
        Ok(errors::js(signed)?.into())
    }
}

//! `X402Payment` and what the merchant and the chain say about it: the payment record a model
//! call's metadata commits to, and its settlement checked against the chain.

use alloy::providers::ProviderBuilder;
use chaperone_sdk::PaymentMethod;
use napi::{
    Env,
    bindgen_prelude::{BigInt, Buffer, ClassInstance, PromiseRaw},
};
use napi_derive::napi;

use crate::{convert, errors};

/// What a merchant reported in its `Payment-Response` header.
#[napi(object, object_from_js = false)]
pub struct Settlement {
    /// Whether the payment settled.
    pub success: bool,
    /// The settling transaction (`0x…`), if reported.
    pub transaction: Option<String>,
    /// Who paid (the wallet, checksummed), if reported.
    pub payer: Option<String>,
    /// The CAIP-2 network.
    pub network: String,
    /// Why it failed, when it did.
    pub error_reason: Option<String>,
}

/// What the chain shows about a payment: the transaction that used its authorization.
#[napi(object, object_from_js = false)]
pub struct SettledPayment {
    /// The transaction that used the authorization.
    pub transaction: String,
    /// Its block.
    pub block: i64,
    /// The AgentWallet that paid.
    pub payer: String,
    /// The agent that signed the authorization.
    pub agent: String,
    /// The co-signer that signed it.
    pub cosigner: String,
}

impl From<chaperone_sdk::SettledPayment> for SettledPayment {
    fn from(settled: chaperone_sdk::SettledPayment) -> Self {
        Self {
            transaction: settled.transaction.to_string(),
            block: i64::try_from(settled.block).unwrap_or(i64::MAX),
            payer: convert::checksummed(settled.payer),
            agent: convert::checksummed(settled.agent),
            cosigner: convert::checksummed(settled.cosigner),
        }
    }
}

/// An x402 payment the agent made: what the merchant asked, what the wallet signed (the
/// header as sent) and what the merchant reported. A model call's record commits to it
/// through `X402Payment.recordMetadata` (the integrations do it for the call in progress).
#[napi]
#[derive(Clone)]
pub struct X402Payment {
    pub(crate) inner: chaperone_sdk::X402Payment,
}

impl From<chaperone_sdk::X402Payment> for X402Payment {
    fn from(inner: chaperone_sdk::X402Payment) -> Self {
        Self { inner }
    }
}

fn provider(rpc_url: &str) -> napi::Result<impl alloy::providers::Provider + Clone + 'static> {
    let url = rpc_url
        .parse()
        .map_err(|e| convert::invalid(format!("rpc url {rpc_url:?}: {e}")))?;
    Ok(ProviderBuilder::new().connect_http(url))
}

#[napi]
impl X402Payment {
    /// The URL paid for.
    #[napi(getter)]
    pub fn resource(&self) -> String {
        self.inner.resource.clone()
    }

    /// The x402 version the merchant spoke (1 or 2).
    #[napi(getter)]
    pub fn x402_version(&self) -> u8 {
        self.inner.x402_version
    }

    /// The requirement accepted, as the merchant offered it.
    #[napi(getter, ts_return_type = "Record<string, unknown>")]
    pub fn requirement(&self) -> serde_json::Value {
        self.inner.requirement.clone()
    }

    /// The CAIP-2 network (`eip155:<chain id>`).
    #[napi(getter)]
    pub fn network(&self) -> String {
        self.inner.network.clone()
    }

    /// `"eip3009"` or `"permit2"`.
    #[napi(getter, ts_return_type = "'eip3009' | 'permit2'")]
    pub fn method(&self) -> &'static str {
        match self.inner.method {
            PaymentMethod::Eip3009 => "eip3009",
            PaymentMethod::Permit2 => "permit2",
        }
    }

    /// The token (checksummed).
    #[napi(getter)]
    pub fn asset(&self) -> String {
        convert::checksummed(self.inner.asset)
    }

    /// The merchant (checksummed).
    #[napi(getter)]
    pub fn pay_to(&self) -> String {
        convert::checksummed(self.inner.pay_to)
    }

    /// The amount in base units.
    #[napi(getter)]
    pub fn amount(&self) -> BigInt {
        convert::bigint(self.inner.amount)
    }

    /// The co-sign decision's id: what `bindToCall` binds.
    #[napi(getter)]
    pub fn request_id(&self) -> String {
        self.inner.request_id.to_string()
    }

    /// The EIP-712 hash the token (or Permit2) verified through the wallet's EIP-1271.
    #[napi(getter)]
    pub fn authorization_hash(&self) -> String {
        self.inner.authorization_hash.to_string()
    }

    /// The authorization's nonce.
    #[napi(getter)]
    pub fn nonce(&self) -> String {
        self.inner.nonce.to_string()
    }

    /// The payment header's value as sent (base64 JSON).
    #[napi(getter)]
    pub fn payload(&self) -> String {
        self.inner.payload.clone()
    }

    /// The header that carried it: `Payment-Signature` (x402 v2) or `X-Payment` (v1).
    #[napi(getter)]
    pub fn header_name(&self) -> &'static str {
        if self.inner.x402_version == 2 {
            "Payment-Signature"
        } else {
            "X-Payment"
        }
    }

    /// What the merchant reported (`Payment-Response`), if anything.
    #[napi(getter)]
    pub fn settlement(&self) -> Option<Settlement> {
        self.inner.settlement.as_ref().map(|s| Settlement {
            success: s.success,
            transaction: s.transaction.map(|t| t.to_string()),
            payer: s.payer.map(convert::checksummed),
            network: s.network.clone(),
            error_reason: s.error_reason.clone(),
        })
    }

    /// The chain's block when it was sent (it cannot have settled earlier).
    #[napi(getter)]
    pub fn block_sent(&self) -> Option<i64> {
        self.inner
            .block_sent
            .map(|b| i64::try_from(b).unwrap_or(i64::MAX))
    }

    /// The metadata a model call's record commits to for `payments` (`{"x402": [...]}` as
    /// JSON bytes): pass it as `Recorder.record(..., metadata)`.
    #[napi]
    pub fn record_metadata(payments: Vec<ClassInstance<'_, X402Payment>>) -> Buffer {
        let payments: Vec<_> = payments.iter().map(|p| p.inner.clone()).collect();
        chaperone_sdk::X402Payment::record_metadata(&payments).into()
    }

    /// The payments a model call's metadata (as `recordMetadata` wrote it, alone or beside
    /// other attributes) names.
    #[napi(ts_args_type = "metadata: string | Uint8Array")]
    pub fn from_metadata(metadata: convert::Content) -> Vec<X402Payment> {
        chaperone_sdk::X402Payment::from_metadata(convert::content(&metadata))
            .into_iter()
            .map(X402Payment::from)
            .collect()
    }

    /// The payment as JSON (what `recordMetadata` lists): keep it to watch or verify later.
    #[napi]
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.inner).unwrap_or_default()
    }

    /// Parses `toJson`'s form.
    #[napi(factory)]
    pub fn from_json(text: String) -> napi::Result<Self> {
        serde_json::from_str(&text)
            .map(|inner| Self { inner })
            .map_err(|e| {
                errors::to_js(chaperone_sdk::Error::Invalid(format!(
                    "not an x402 payment: {e}"
                )))
            })
    }

    /// Whether `other` is the same payment (every field alike).
    #[napi]
    pub fn equals(&self, other: &X402Payment) -> bool {
        self.inner == other.inner
    }

    /// Checks the settlement the merchant reported against the chain at `rpcUrl`: its
    /// transaction must have used this very authorization, from an AgentWallet of `agent`.
    /// Rejects with `Invalid` otherwise.
    #[napi(ts_return_type = "Promise<SettledPayment>")]
    pub fn verify_settlement<'env>(
        &self,
        env: &'env Env,
        rpc_url: String,
        agent: String,
    ) -> napi::Result<PromiseRaw<'env, SettledPayment>> {
        let provider = provider(&rpc_url)?;
        let agent = convert::address(&agent)?;
        let payment = self.inner.clone();
        env.spawn_future(async move {
            let settled = payment.verify_settlement(&provider, agent).await;
            Ok(SettledPayment::from(errors::js(settled)?))
        })
    }

    /// Looks on the chain for the transaction that used this authorization, whatever the
    /// merchant reported; `null` while it is unused.
    #[napi(ts_return_type = "Promise<SettledPayment | null>")]
    pub fn find_settlement<'env>(
        &self,
        env: &'env Env,
        rpc_url: String,
        agent: String,
    ) -> napi::Result<PromiseRaw<'env, Option<SettledPayment>>> {
        let provider = provider(&rpc_url)?;
        let agent = convert::address(&agent)?;
        let payment = self.inner.clone();
        env.spawn_future(async move {
            let settled = payment.find_settlement(&provider, agent).await;
            Ok(errors::js(settled)?.map(SettledPayment::from))
        })
    }
}

//! Paying for HTTP APIs with x402 (HTTP 402 Payment Required) from the agent's wallet, within
//! its policy. [`X402Client::send`] sends a request; on a 402 it reads the merchant's payment
//! requirements (x402 v2 `Payment-Required` header, or a v1 body), and tries the ones this
//! wallet can pay (its chain, the "exact" scheme, EIP-3009 or Permit2) in the merchant's order:
//! each is signed by the agent and co-signed by the policy service before anything goes back
//! to the merchant. The first one co-signed is sent as the payment header; the merchant's
//! answer comes back with the settlement it reports (transaction, payer, network).
//!
//! The protocol messages are x402-rs's (`x402-types`, `x402-chain-eip155`, and
//! `x402-reqwest`'s 402 parser), not a second rendering of the wire format. `x402-reqwest`'s
//! middleware is not used: its signer hook reports failure as a string, and a denial here must
//! come back typed, with every reason.

mod payment;

use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use payment::SettlementWire;
pub use payment::{PaymentMethod, Settlement, X402Payment};
use x402_chain_eip155::{
    chain::{
        AssetTransferMethod, ChecksummedAddress,
        permit2::{
            ExactPermit2Payload, ExactPermit2Witness, Permit2Authorization,
            Permit2AuthorizationPermitted,
        },
    },
    v1_eip155_exact::types::{
        ExactEvmPayload as Eip3009Payload, ExactEvmPayloadAuthorization,
        PaymentRequirements as V1Requirements,
    },
    v2_eip155_exact::types::{ExactEvmPayload, PaymentRequirements as V2Requirements},
};
use x402_types::{
    chain::ChainId,
    proto::{OriginalJson, PaymentRequired, v1, v2},
    timestamp::UnixTimestamp,
    util::Base64Bytes,
};

use crate::{
    Error, Result, TokenDomain, Wallet,
    authorization::{SignedAuthorization, SignedPermit2},
    wallet::unix_now,
};

/// The merchant's answer, and the payment if one was made.
#[derive(Debug)]
pub struct X402Response {
    /// The merchant's HTTP response (to the paid retry, when there was one).
    pub response: reqwest::Response,
    /// The payment made for it, if the resource asked for one.
    pub payment: Option<X402Payment>,
}

/// An HTTP client that pays x402 resources from the agent's wallet, within its policy.
#[derive(Debug, Clone)]
pub struct X402Client {
    http: reqwest::Client,
    wallet: Wallet,
    longest_validity: Duration,
}

/// One payable requirement, decoded.
struct Candidate {
    original: OriginalJson,
    method: PaymentMethod,
    asset: Address,
    pay_to: Address,
    amount: U256,
    max_timeout_seconds: u64,
    /// The EIP-3009 domain name and version (`extra`).
    domain: Option<(String, String)>,
}

/// The signed payment for one candidate.
enum Signed {
    Eip3009(SignedAuthorization),
    Permit2(SignedPermit2),
}

impl X402Client {
    /// A client paying from `wallet`, each authorization valid for at most the merchant's
    /// `maxTimeoutSeconds` and at most two minutes.
    pub fn new(wallet: Wallet) -> Self {
        Self {
            http: reqwest::Client::new(),
            wallet,
            longest_validity: Duration::from_secs(120),
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

    /// Sends `request`; on a 402, pays (see the module documentation) and sends it again with
    /// the payment. A requirement the policy denies never reaches the merchant: when every
    /// payable requirement is denied, [`Error::Denied`] carries every reason. A retry the
    /// merchant refuses (it answers 402 again) is [`Error::PaymentRefused`].
    pub async fn send(&self, request: reqwest::Request) -> Result<X402Response> {
        let url = request.url().to_string();
        let retry = request.try_clone().ok_or_else(|| {
            Error::Invalid(
                "an x402 request must be repeatable (a streaming body cannot be sent twice)".into(),
            )
        })?;
        let first = self
            .http
            .execute(request)
            .await
            .map_err(|e| unreachable(&url, e))?;
        if first.status() != reqwest::StatusCode::PAYMENT_REQUIRED {
            return Ok(X402Response {
                response: first,
                payment: None,
            });
        }
        let required = x402_reqwest::parse_payment_required(first)
            .await
            .ok_or_else(|| {
                Error::Invalid(format!("{url} answered 402 without x402 requirements"))
            })?;
        let (version, resource, accepts) = match &required {
            PaymentRequired::V2(r) => (2, r.resource.clone(), r.accepts.clone()),
            PaymentRequired::V1(r) => (1, None, r.accepts.clone()),
        };
        let network = ChainId::new("eip155", self.wallet.chain_id().to_string());
        let candidates: Vec<Candidate> = accepts
            .iter()
            .filter_map(|original| candidate(version, original, &network))
            .collect();
        if candidates.is_empty() {
            return Err(Error::Invalid(format!(
                "{url} accepts no payment this wallet can make (the exact scheme with EIP-3009 \
                 or Permit2 on {network})"
            )));
        }
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
            return self
                .pay(retry, version, resource, &network, candidate, signed)
                .await;
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

    async fn pay(
        &self,
        mut retry: reqwest::Request,
        version: u8,
        resource: Option<v2::ResourceInfo>,
        network: &ChainId,
        candidate: Candidate,
        signed: Signed,
    ) -> Result<X402Response> {
        let url = retry.url().to_string();
        let (payload, request_id, hash, nonce) = match &signed {
            Signed::Eip3009(a) => (
                ExactEvmPayload::Eip3009(Eip3009Payload {
                    signature: a.signature.clone(),
                    authorization: ExactEvmPayloadAuthorization {
                        from: a.message.from,
                        to: a.message.to,
                        value: a.message.value,
                        valid_after: timestamp(a.message.validAfter),
                        valid_before: timestamp(a.message.validBefore),
                        nonce: a.message.nonce,
                    },
                }),
                a.request_id,
                a.hash,
                a.message.nonce,
            ),
            Signed::Permit2(p) => (
                ExactEvmPayload::Permit2(ExactPermit2Payload {
                    permit_2_authorization: Permit2Authorization {
                        deadline: timestamp(p.message.deadline),
                        from: ChecksummedAddress(self.wallet.address()),
                        nonce: p.message.nonce,
                        permitted: Permit2AuthorizationPermitted {
                            amount: p.message.permitted.amount,
                            token: ChecksummedAddress(p.message.permitted.token),
                        },
                        spender: ChecksummedAddress(p.message.spender),
                        witness: ExactPermit2Witness {
                            to: ChecksummedAddress(p.message.witness.to),
                            valid_after: timestamp(p.message.witness.validAfter),
                        },
                    },
                    signature: p.signature.clone(),
                }),
                p.request_id,
                p.hash,
                B256::from(p.message.nonce),
            ),
        };
        let (header, json) = if version == 2 {
            let payload = v2::PaymentPayload {
                accepted: candidate.original.clone(),
                payload,
                resource,
                x402_version: v2::X402Version2,
                extensions: Default::default(),
            };
            ("Payment-Signature", serde_json::to_vec(&payload))
        } else {
            let ExactEvmPayload::Eip3009(payload) = payload else {
                return Err(Error::Invalid("x402 v1 pays with EIP-3009 only".into()));
            };
            let payload = v1::PaymentPayload {
                x402_version: v1::X402Version1,
                scheme: "exact".to_owned(),
                network: network.as_network_name().unwrap_or_default().to_owned(),
                payload,
            };
            ("X-Payment", serde_json::to_vec(&payload))
        };
        let json = json.map_err(|e| Error::Invalid(format!("encoding the payment: {e}")))?;
        let value = Base64Bytes::encode(&json).to_string();
        retry.headers_mut().insert(
            header,
            value
                .parse()
                .map_err(|_| Error::Invalid("the payment header is not ASCII".into()))?,
        );
        let payload = value;
        let response = self
            .http
            .execute(retry)
            .await
            .map_err(|e| unreachable(&url, e))?;
        if response.status() == reqwest::StatusCode::PAYMENT_REQUIRED {
            let reason = match x402_reqwest::parse_payment_required(response).await {
                Some(PaymentRequired::V2(r)) => r.error,
                Some(PaymentRequired::V1(r)) => r.error,
                None => None,
            };
            return Err(Error::PaymentRefused {
                request_id,
                reason: reason.unwrap_or_else(|| "no reason given".into()),
            });
        }
        let settlement = ["Payment-Response", "X-Payment-Response"]
            .iter()
            .find_map(|name| response.headers().get(*name))
            .and_then(|h| Base64Bytes::from(h.as_bytes()).decode().ok())
            .and_then(|bytes| serde_json::from_slice::<SettlementWire>(&bytes).ok())
            .map(Settlement::from);
        Ok(X402Response {
            response,
            payment: Some(X402Payment {
                resource: url,
                x402_version: version,
                requirement: serde_json::from_str(candidate.original.0.get()).unwrap_or_default(),
                network: network.to_string(),
                method: candidate.method,
                asset: candidate.asset,
                pay_to: candidate.pay_to,
                amount: candidate.amount,
                request_id,
                authorization_hash: hash,
                nonce,
                payload,
                settlement,
            }),
        })
    }
}

/// `original` if this wallet can pay it: the exact scheme, its network, EIP-3009 or Permit2.
fn candidate(version: u8, original: &OriginalJson, network: &ChainId) -> Option<Candidate> {
    let (method, domain, asset, pay_to, amount, max_timeout_seconds) = if version == 2 {
        let r = V2Requirements::try_from(original).ok()?;
        if &r.network != network {
            return None;
        }
        let (method, domain) = match r.extra {
            AssetTransferMethod::Eip3009 { name, version } => {
                (PaymentMethod::Eip3009, Some((name, version)))
            }
            AssetTransferMethod::Permit2 { .. } => (PaymentMethod::Permit2, None),
        };
        let amount: U256 = r.amount.into();
        (
            method,
            domain,
            r.asset.0,
            r.pay_to.0,
            amount,
            r.max_timeout_seconds,
        )
    } else {
        let r = V1Requirements::try_from(original).ok()?;
        if ChainId::from_network_name(&r.network).as_ref() != Some(network) {
            return None;
        }
        let domain = r.extra.map(|e| (e.name, e.version));
        (
            PaymentMethod::Eip3009,
            domain,
            r.asset,
            r.pay_to,
            r.max_amount_required,
            r.max_timeout_seconds,
        )
    };
    Some(Candidate {
        original: original.clone(),
        method,
        asset,
        pay_to,
        amount,
        max_timeout_seconds,
        domain,
    })
}

fn timestamp(seconds: U256) -> UnixTimestamp {
    UnixTimestamp::from_secs(u64::try_from(seconds).unwrap_or(u64::MAX))
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
        detail: e.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn original(json: serde_json::Value) -> OriginalJson {
        OriginalJson(serde_json::value::to_raw_value(&json).unwrap())
    }

    fn v2(network: &str, extra: serde_json::Value) -> OriginalJson {
        original(serde_json::json!({
            "scheme": "exact", "network": network, "amount": "10000",
            "payTo": "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720", "maxTimeoutSeconds": 60,
            "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e", "extra": extra,
        }))
    }

    #[test]
    fn v2_requirements_are_kept_for_this_chain_only_with_their_method() {
        let base = ChainId::new("eip155", "84532");
        let eip3009 = serde_json::json!({ "name": "USDC", "version": "2" });
        let c = candidate(2, &v2("eip155:84532", eip3009.clone()), &base).unwrap();
        assert_eq!(c.method, PaymentMethod::Eip3009);
        assert_eq!(c.amount, U256::from(10_000));
        assert_eq!(c.max_timeout_seconds, 60);
        assert_eq!(c.domain, Some(("USDC".into(), "2".into())));
        assert!(
            candidate(2, &v2("eip155:8453", eip3009), &base).is_none(),
            "another chain"
        );
        let permit2 =
            serde_json::json!({ "assetTransferMethod": "permit2", "name": "USDC", "version": "2" });
        let c = candidate(2, &v2("eip155:84532", permit2), &base).unwrap();
        assert_eq!(c.method, PaymentMethod::Permit2);
        let upto = original(serde_json::json!({
            "scheme": "upto", "network": "eip155:84532", "amount": "1",
            "payTo": "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720", "maxTimeoutSeconds": 60,
            "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e", "extra": null,
        }));
        assert!(
            candidate(2, &upto, &base).is_none(),
            "only the exact scheme"
        );
    }

    #[test]
    fn v1_requirements_name_their_network() {
        let v1 = original(serde_json::json!({
            "scheme": "exact", "network": "base-sepolia", "maxAmountRequired": "10000",
            "resource": "https://api.example/forecast", "description": "", "mimeType": null,
            "payTo": "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720", "maxTimeoutSeconds": 60,
            "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
            "extra": { "name": "USDC", "version": "2" },
        }));
        let c = candidate(1, &v1, &ChainId::new("eip155", "84532")).unwrap();
        assert_eq!(c.method, PaymentMethod::Eip3009);
        assert_eq!(c.amount, U256::from(10_000));
        assert!(candidate(1, &v1, &ChainId::new("eip155", "8453")).is_none());
    }

    #[test]
    fn metadata_round_trips_the_payments() {
        let payment = X402Payment {
            resource: "https://api.example/forecast".into(),
            x402_version: 2,
            requirement: serde_json::json!({ "scheme": "exact" }),
            network: "eip155:84532".into(),
            method: PaymentMethod::Permit2,
            asset: Address::repeat_byte(1),
            pay_to: Address::repeat_byte(2),
            amount: U256::from(10_000),
            request_id: B256::repeat_byte(3),
            authorization_hash: B256::repeat_byte(4),
            nonce: B256::repeat_byte(5),
            payload: "eyJ9".into(),
            settlement: None,
        };
        let metadata = X402Payment::record_metadata(std::slice::from_ref(&payment));
        assert_eq!(X402Payment::from_metadata(&metadata), vec![payment]);
        assert!(X402Payment::from_metadata(b"{\"gen_ai.usage.input_tokens\": 3}").is_empty());
    }
}

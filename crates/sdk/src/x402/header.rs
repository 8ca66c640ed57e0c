//! The payment header: the co-signed authorization in x402's wire format (x402-rs's types),
//! base64 JSON, with the `payment-identifier` extension when the merchant offers it.

use alloy::primitives::{Address, B256, U256};
use x402_chain_eip155::{
    chain::{
        ChecksummedAddress,
        permit2::{
            ExactPermit2Payload, ExactPermit2Witness, Permit2Authorization,
            Permit2AuthorizationPermitted,
        },
    },
    v1_eip155_exact::types::{ExactEvmPayload as Eip3009Payload, ExactEvmPayloadAuthorization},
    v2_eip155_exact::types::ExactEvmPayload,
};
use x402_types::{
    chain::ChainId,
    proto::{OriginalJson, v1, v2},
    timestamp::UnixTimestamp,
    util::Base64Bytes,
};

use crate::{
    Error, Result,
    authorization::{SignedAuthorization, SignedPermit2},
};

/// The x402 extension by which a client names a payment, so that a merchant (or its
/// facilitator) recognises the same payment presented again.
const PAYMENT_IDENTIFIER: &str = "payment-identifier";

/// A co-signed payment for one requirement.
pub(super) enum Signed {
    Eip3009(SignedAuthorization),
    Permit2(SignedPermit2),
}

impl Signed {
    /// The co-sign decision's id.
    pub(super) fn request_id(&self) -> B256 {
        match self {
            Self::Eip3009(a) => a.request_id,
            Self::Permit2(p) => p.request_id,
        }
    }

    /// The EIP-712 hash the wallet's EIP-1271 answers for.
    pub(super) fn hash(&self) -> B256 {
        match self {
            Self::Eip3009(a) => a.hash,
            Self::Permit2(p) => p.hash,
        }
    }

    /// The nonce the token or Permit2 marks used.
    pub(super) fn nonce(&self) -> B256 {
        match self {
            Self::Eip3009(a) => a.message.nonce,
            Self::Permit2(p) => B256::from(p.message.nonce),
        }
    }

    /// The scheme's payload (`payload` in the header's JSON).
    fn payload(&self, wallet: Address) -> ExactEvmPayload {
        match self {
            Self::Eip3009(a) => ExactEvmPayload::Eip3009(Eip3009Payload {
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
            Self::Permit2(p) => ExactEvmPayload::Permit2(ExactPermit2Payload {
                permit_2_authorization: Permit2Authorization {
                    deadline: timestamp(p.message.deadline),
                    from: ChecksummedAddress(wallet),
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
        }
    }
}

/// What the header says beside the signed payload.
pub(super) struct Envelope<'a> {
    /// The x402 version the merchant spoke.
    pub(super) version: u8,
    /// The requirement accepted, as the merchant offered it.
    pub(super) accepted: &'a OriginalJson,
    /// The merchant's description of the resource (v2).
    pub(super) resource: Option<v2::ResourceInfo>,
    /// The merchant's 402 extensions (v2).
    pub(super) extensions: &'a v2::ExtensionsJson,
    /// The wallet's network.
    pub(super) network: &'a ChainId,
}

/// The payment header's value for `signed` from `wallet`.
pub(super) fn encode(signed: &Signed, wallet: Address, envelope: Envelope<'_>) -> Result<String> {
    let payload = signed.payload(wallet);
    let json = if envelope.version == 2 {
        serde_json::to_vec(&v2::PaymentPayload {
            accepted: envelope.accepted.clone(),
            payload,
            resource: envelope.resource,
            x402_version: v2::X402Version2,
            extensions: payment_identifier(envelope.extensions, signed.request_id()),
        })
    } else {
        let ExactEvmPayload::Eip3009(payload) = payload else {
            return Err(Error::Invalid("x402 v1 pays with EIP-3009 only".into()));
        };
        serde_json::to_vec(&v1::PaymentPayload {
            x402_version: v1::X402Version1,
            scheme: "exact".to_owned(),
            network: envelope
                .network
                .as_network_name()
                .unwrap_or_default()
                .to_owned(),
            payload,
        })
    };
    let json = json.map_err(|e| Error::Invalid(format!("encoding the payment: {e}")))?;
    Ok(Base64Bytes::encode(&json).to_string())
}

/// The `payment-identifier` extension for the payment of decision `request_id`, if the
/// merchant offers it: its declaration echoed with the payment's id. The id names the signed
/// authorization (the decision id is its digest), so the same payment always carries the
/// same id, and a new payment a new one.
fn payment_identifier(offered: &v2::ExtensionsJson, request_id: B256) -> v2::ExtensionsJson {
    let Some(declared) = offered.as_ref().get(PAYMENT_IDENTIFIER) else {
        return v2::ExtensionsJson::default();
    };
    let mut extension = declared.clone();
    if !extension.is_object() {
        extension = serde_json::json!({});
    }
    let required = extension["info"]["required"].as_bool().unwrap_or(false);
    // 74 characters of [a-z0-9_]: within the extension's 16–128.
    let id = format!("chaperone_{}", alloy::hex::encode(request_id));
    extension["info"] = serde_json::json!({ "required": required, "id": id });
    [(PAYMENT_IDENTIFIER.to_owned(), extension)]
        .into_iter()
        .collect()
}

fn timestamp(seconds: U256) -> UnixTimestamp {
    UnixTimestamp::from_secs(u64::try_from(seconds).unwrap_or(u64::MAX))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_payment_identifier_echoes_the_offer_with_the_payments_id() {
        let offered: v2::ExtensionsJson = serde_json::from_value(serde_json::json!({
            "payment-identifier": { "info": { "required": true }, "schema": { "type": "object" } },
            "other": {},
        }))
        .unwrap();
        let request_id = B256::repeat_byte(0xab);
        let sent = serde_json::Value::from(payment_identifier(&offered, request_id));
        let id = format!("chaperone_{}", "ab".repeat(32));
        assert_eq!(
            sent,
            serde_json::json!({ "payment-identifier": {
                "info": { "required": true, "id": id },
                "schema": { "type": "object" },
            }})
        );
        assert!(payment_identifier(&v2::ExtensionsJson::default(), request_id).is_empty());
    }
}

//! `POST /v1/cosign` and `POST /v1/decisions/{request_id}/call`.

use chaperone_core::{
    Address, B256, Bytes, Execute,
    policy::{Outcome, Reason},
};
use serde::{Deserialize, Serialize};

use crate::{ErrorCode, ErrorDetail, Payment, PaymentAuthorization, Permit2Payment};

/// A co-sign request as it is written on the wire: the payment in exactly one of `execute`,
/// `authorization` and `permit2`, and the agent's signature over the same EIP-712 digest the
/// co-signer would sign ([`Payment::digest`]). Code reads it as a [`CosignRequest`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CosignBody {
    /// The chain the wallet is on.
    pub chain_id: u64,
    /// The wallet that pays.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::HexAddress))]
    pub wallet: Address,
    /// The wallet's own `execute` of calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execute: Option<Execute>,
    /// An EIP-3009 authorization from the wallet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<PaymentAuthorization>,
    /// A Permit2 witness transfer from the wallet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permit2: Option<Permit2Payment>,
    /// The agent's 65-byte signature (r ‖ s ‖ v) over the digest.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::HexBytes))]
    pub agent_signature: Bytes,
}

/// A co-sign request: which wallet, what payment, the agent's signature. It is read from and
/// written as a [`CosignBody`]; a body naming no payment, or more than one, does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CosignBody", into = "CosignBody")]
pub struct CosignRequest {
    /// The chain the wallet is on.
    pub chain_id: u64,
    /// The wallet that pays.
    pub wallet: Address,
    /// What is to be co-signed.
    pub payment: Payment,
    /// The agent's signature over [`Payment::digest`].
    pub agent_signature: Bytes,
}

impl TryFrom<CosignBody> for CosignRequest {
    type Error = ErrorDetail;

    fn try_from(body: CosignBody) -> Result<Self, ErrorDetail> {
        let payment = match (body.execute, body.authorization, body.permit2) {
            (Some(execute), None, None) => Payment::Execute(execute),
            (None, Some(authorization), None) => Payment::Eip3009(authorization),
            (None, None, Some(permit2)) => Payment::Permit2(permit2),
            _ => {
                return Err(ErrorDetail::new(
                    ErrorCode::InvalidRequest,
                    "send exactly one of `execute`, `authorization` and `permit2`",
                ));
            }
        };
        Ok(Self {
            chain_id: body.chain_id,
            wallet: body.wallet,
            payment,
            agent_signature: body.agent_signature,
        })
    }
}

impl From<CosignRequest> for CosignBody {
    fn from(request: CosignRequest) -> Self {
        let (mut execute, mut authorization, mut permit2) = (None, None, None);
        match request.payment {
            Payment::Execute(e) => execute = Some(e),
            Payment::Eip3009(a) => authorization = Some(a),
            Payment::Permit2(p) => permit2 = Some(p),
        }
        Self {
            chain_id: request.chain_id,
            wallet: request.wallet,
            execute,
            authorization,
            permit2,
            agent_signature: request.agent_signature,
        }
    }
}

/// The recorded decision, as returned to the agent: 200 approved (with the co-signature), 202
/// pending a human, 403 denied (with every reason).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CosignResponse {
    /// The request's id: the digest both keys sign.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub request_id: B256,
    /// Approved, pending approval or denied.
    pub outcome: Outcome,
    /// Why, with the exact values.
    pub reasons: Vec<Reason>,
    /// Each reason in words, amounts in token units; `reasons` keeps the exact values.
    pub reasons_text: Vec<String>,
    /// The policy version that decided.
    pub policy_version: u32,
    /// Its hash.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub policy_hash: B256,
    /// The co-signer's signature over the digest, when approved.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chaperone_core::openapi::HexBytes>))]
    pub cosigner_signature: Option<Bytes>,
    /// Whether this is the answer to the same request sent before.
    pub replayed: bool,
}

/// The agent's statement that an approved payment was made within a model call: the leaf hash
/// of the call's audit record (which commits to the payment), signed as `PaymentCall`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CallBody {
    /// The call's audit record.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub leaf_hash: B256,
    /// The agent's signature over `PaymentCall(request, call)` in the wallet's domain.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::HexBytes))]
    pub agent_signature: Bytes,
}

/// The decision and the call it is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CallBound {
    /// The decision.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub request_id: B256,
    /// The call's audit record.
    #[cfg_attr(feature = "openapi", schema(value_type = chaperone_core::openapi::Hex32))]
    pub call_leaf_hash: B256,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chaperone_core::{Call, U256};
    use serde_json::json;

    use super::*;

    fn execute() -> Execute {
        Execute {
            calls: vec![Call {
                to: Address::repeat_byte(1),
                value: U256::from(1),
                data: Bytes::new(),
            }],
            nonce: U256::ZERO,
            validUntil: 9,
        }
    }

    #[test]
    fn a_request_names_exactly_one_payment() {
        let base = json!({ "chain_id": 1, "wallet": Address::repeat_byte(0xaa), "agent_signature": "0x00" });
        let with = |fields: serde_json::Value| {
            let mut body = base.clone();
            body.as_object_mut()
                .unwrap()
                .extend(fields.as_object().unwrap().clone());
            serde_json::from_value::<CosignRequest>(body)
        };
        let one = with(json!({ "execute": execute() })).unwrap();
        assert_eq!(one.payment, Payment::Execute(execute()));
        // `null` beside it is no payment (as before the wire types moved).
        assert!(with(json!({ "execute": execute(), "permit2": null })).is_ok());
        for refused in [
            json!({}),
            json!({ "execute": null }),
            json!({ "execute": execute(), "authorization": { "domain": {}, "message": {} } }),
            json!({ "execute": execute(), "payment": {} }),
        ] {
            assert!(with(refused.clone()).is_err(), "{refused}");
        }
    }

    #[test]
    fn a_request_is_stored_as_the_wire_body_it_was_read_from() {
        let request = CosignRequest {
            chain_id: 1,
            wallet: Address::repeat_byte(0xaa),
            payment: Payment::Execute(execute()),
            agent_signature: Bytes::from(vec![1, 2, 3]),
        };
        let text = serde_json::to_string(&request).unwrap();
        let body: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(body.get("execute").is_some());
        assert!(body.get("authorization").is_none() && body.get("permit2").is_none());
        assert_eq!(
            serde_json::from_str::<CosignRequest>(&text).unwrap(),
            request
        );
    }
}

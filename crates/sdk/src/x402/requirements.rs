//! The merchant's payment requirements this wallet can pay: the "exact" scheme on the wallet's
//! chain, by EIP-3009 or Permit2, decoded with x402-rs's types (`x402-chain-eip155`).

use alloy::primitives::{Address, U256};
use x402_chain_eip155::{
    chain::AssetTransferMethod, v1_eip155_exact::types::PaymentRequirements as V1Requirements,
    v2_eip155_exact::types::PaymentRequirements as V2Requirements,
};
use x402_types::{chain::ChainId, proto::OriginalJson};

use super::PaymentMethod;

/// One payable requirement, decoded.
pub(super) struct Candidate {
    /// The requirement exactly as the merchant offered it.
    pub(super) original: OriginalJson,
    pub(super) method: PaymentMethod,
    pub(super) asset: Address,
    pub(super) pay_to: Address,
    pub(super) amount: U256,
    pub(super) max_timeout_seconds: u64,
    /// The EIP-3009 domain name and version (`extra`).
    pub(super) domain: Option<(String, String)>,
}

/// `original` if this wallet can pay it: the exact scheme, its network, EIP-3009 or Permit2.
pub(super) fn candidate(
    version: u8,
    original: &OriginalJson,
    network: &ChainId,
) -> Option<Candidate> {
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
}

//! The AgentWallet's EIP-712 types and digests, as `AgentWallet.sol` defines them. The domain
//! binds the chain id and the wallet's address, so a signature is valid for one wallet on one
//! chain only.

use alloy_sol_types::{Eip712Domain, SolStruct, SolValue, eip712_domain, sol};

use crate::{Address, B256, Bytes, U256};

sol! {
    /// One call made by `AgentWallet.execute`. Unknown fields are refused: what is signed must
    /// be all that was sent.
    #[derive(Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    struct Call {
        #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexAddress))]
        address to;
        #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexU256))]
        uint256 value;
        #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexBytes))]
        bytes data;
    }

    /// What the agent and the co-signer sign to execute calls.
    #[derive(Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    struct Execute {
        #[cfg_attr(feature = "openapi", schema(value_type = Vec<Call>))]
        Call[] calls;
        #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexU256))]
        uint256 nonce;
        #[cfg_attr(feature = "openapi", schema(value_type = u64))]
        uint64 validUntil;
    }

    /// The wrapper both keys sign to approve a hash for EIP-1271.
    #[derive(Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    struct AgentMessage {
        bytes32 hash;
    }

    /// An EIP-3009 payment authorization (what x402 pays with): `from` lets anyone move
    /// `value` of the token to `to` once, between `validAfter` and `validBefore`.
    #[derive(Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    struct TransferWithAuthorization {
        #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexAddress))]
        address from;
        #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexAddress))]
        address to;
        #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexU256))]
        uint256 value;
        #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexU256))]
        uint256 validAfter;
        #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexU256))]
        uint256 validBefore;
        #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Hex32))]
        bytes32 nonce;
    }
}

/// The EIP-712 domain of an EIP-3009 token (its `name()`, its version, chain and address).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenDomain {
    /// The token's EIP-712 domain name (usually its `name()`, e.g. "USD Coin").
    pub name: String,
    /// The domain version (USDC: "2").
    pub version: String,
    /// The chain id.
    pub chain_id: u64,
    /// The token contract.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexAddress))]
    pub verifying_contract: Address,
}

impl TransferWithAuthorization {
    /// The EIP-712 hash the token checks with `isValidSignature(hash, …)` on `from`.
    pub fn hash(&self, domain: &TokenDomain) -> B256 {
        let domain = eip712_domain! {
            name: domain.name.clone(),
            version: domain.version.clone(),
            chain_id: domain.chain_id,
            verifying_contract: domain.verifying_contract,
        };
        self.eip712_signing_hash(&domain)
    }
}

impl TransferWithAuthorization {
    /// The signature `AgentWallet.isValidSignature` accepts for this authorization of `token`:
    /// agent signature ‖ co-signer signature (each 65 bytes, over the `AgentMessage` of
    /// [`Self::hash`]) ‖ `abi.encode(token, typehash, to, value, validAfter, validBefore,
    /// nonce)`, so the wallet can recompute the hash and see what it pays.
    pub fn wallet_signature(
        &self,
        token: Address,
        agent_signature: &[u8],
        cosigner_signature: &[u8],
    ) -> Bytes {
        let typed = (
            token,
            self.eip712_type_hash(),
            self.to,
            self.value,
            self.validAfter,
            self.validBefore,
            self.nonce,
        )
            .abi_encode_params();
        [agent_signature, cosigner_signature, &typed]
            .concat()
            .into()
    }
}

/// The EIP-3009 nonce of authorization slot `slot` in backstop period `period_index`, the
/// only nonces `AgentWallet`'s EIP-1271 honours (see `AgentWallet.isValidSignature`).
pub fn authorization_nonce(period_index: u64, slot: u16) -> B256 {
    B256::from((U256::from(period_index) << 192usize) | U256::from(slot))
}

/// The EIP-712 domain of the wallet at `wallet` on chain `chain_id`.
pub fn wallet_domain(chain_id: u64, wallet: Address) -> Eip712Domain {
    eip712_domain! {
        name: "Chaperone AgentWallet",
        version: "1",
        chain_id: chain_id,
        verifying_contract: wallet,
    }
}

impl Execute {
    /// The digest both keys sign for `AgentWallet.execute`.
    pub fn digest(&self, chain_id: u64, wallet: Address) -> B256 {
        self.eip712_signing_hash(&wallet_domain(chain_id, wallet))
    }
}

impl AgentMessage {
    /// The digest both keys sign so that `isValidSignature(hash, …)` accepts.
    pub fn digest(&self, chain_id: u64, wallet: Address) -> B256 {
        self.eip712_signing_hash(&wallet_domain(chain_id, wallet))
    }
}

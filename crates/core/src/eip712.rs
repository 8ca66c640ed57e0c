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

sol! {
    /// A token and the most Permit2 may move of it.
    #[derive(Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    struct TokenPermissions {
        #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexAddress))]
        address token;
        #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexU256))]
        uint256 amount;
    }

    /// The x402 exact proxy's witness: the recipient and the earliest time it may be paid.
    #[derive(Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    struct Witness {
        #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexAddress))]
        address to;
        #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexU256))]
        uint256 validAfter;
    }

    /// An x402 Permit2 payment: Permit2 lets `spender` (the x402 exact proxy) move `permitted`
    /// once before `deadline`, and the proxy pays all of it to `witness.to`.
    #[derive(Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    struct PermitWitnessTransferFrom {
        #[cfg_attr(feature = "openapi", schema(value_type = TokenPermissions))]
        TokenPermissions permitted;
        #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexAddress))]
        address spender;
        #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexU256))]
        uint256 nonce;
        #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexU256))]
        uint256 deadline;
        #[cfg_attr(feature = "openapi", schema(value_type = Witness))]
        Witness witness;
    }
}

sol! {
    /// What the agent signs to say that the co-signed payment `request` was made within the
    /// model call whose audit record has leaf hash `call` (in the wallet's domain).
    #[derive(Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    struct PaymentCall {
        bytes32 request;
        bytes32 call;
    }
}

impl PaymentCall {
    /// The digest the agent signs, in the wallet's EIP-712 domain.
    pub fn digest(&self, chain_id: u64, wallet: Address) -> B256 {
        self.eip712_signing_hash(&wallet_domain(chain_id, wallet))
    }
}

/// Permit2's canonical address (the same on every chain that has it).
pub const PERMIT2: Address =
    alloy_primitives::address!("0x000000000022D473030F116dDEE9F6B43aC78BA3");

/// The x402 exact scheme's Permit2 proxy, the only Permit2 spender the wallet signs for.
pub const X402_PERMIT2_PROXY: Address =
    alloy_primitives::address!("0x402085c248EeA27D92E8b30b2C58ed07f9E20001");

/// The EIP-3009 authorization types the wallet signs: they differ only in who may submit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Eip3009Kind {
    /// `transferWithAuthorization`: anyone may submit it (what x402 facilitators use).
    #[default]
    TransferWithAuthorization,
    /// `receiveWithAuthorization`: only the payee may submit it.
    ReceiveWithAuthorization,
}

impl Eip3009Kind {
    /// The EIP-712 primary type name.
    pub fn primary_type(self) -> &'static str {
        match self {
            Self::TransferWithAuthorization => "TransferWithAuthorization",
            Self::ReceiveWithAuthorization => "ReceiveWithAuthorization",
        }
    }

    fn type_hash(self) -> B256 {
        crate::keccak256(format!(
            "{}(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)",
            self.primary_type()
        ))
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
    /// The EIP-712 hash the token checks with `isValidSignature(hash, …)` on `from`, for the
    /// `kind` of authorization (the two kinds share their fields, not their type hash).
    pub fn hash(&self, domain: &TokenDomain, kind: Eip3009Kind) -> B256 {
        let domain = eip712_domain! {
            name: domain.name.clone(),
            version: domain.version.clone(),
            chain_id: domain.chain_id,
            verifying_contract: domain.verifying_contract,
        };
        self.hash_under(domain.separator(), kind)
    }

    /// The same under a domain separator as given, e.g. the one the token itself reports
    /// (`DOMAIN_SEPARATOR()`), when the domain's fields are not known or not trusted.
    pub fn hash_under(&self, separator: B256, kind: Eip3009Kind) -> B256 {
        let struct_hash =
            crate::keccak256([kind.type_hash().as_slice(), &self.eip712_encode_data()].concat());
        crate::keccak256([&[0x19, 0x01], separator.as_slice(), struct_hash.as_slice()].concat())
    }

    /// The signature `AgentWallet.isValidSignature` accepts for this authorization of `token`:
    /// agent signature ‖ co-signer signature (each 65 bytes, over the `AgentMessage` of
    /// [`Self::hash`]) ‖ `abi.encode(token, typehash, to, value, validAfter, validBefore,
    /// nonce)`, so the wallet can recompute the hash and see what it pays.
    pub fn wallet_signature(
        &self,
        token: Address,
        kind: Eip3009Kind,
        agent_signature: &[u8],
        cosigner_signature: &[u8],
    ) -> Bytes {
        let typed = (
            token,
            kind.type_hash(),
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

impl PermitWitnessTransferFrom {
    /// The EIP-712 hash Permit2 checks with `isValidSignature(hash, …)` on the payer.
    pub fn hash(&self, chain_id: u64) -> B256 {
        self.eip712_signing_hash(&eip712_domain! {
            name: "Permit2",
            chain_id: chain_id,
            verifying_contract: PERMIT2,
        })
    }

    /// The signature `AgentWallet.isValidSignature` accepts for this Permit2 payment: the two
    /// signatures ‖ `abi.encode(token, typehash, witness.to, amount, witness.validAfter,
    /// deadline, nonce)` (the wallet's `Authorization` layout for Permit2).
    pub fn wallet_signature(&self, agent_signature: &[u8], cosigner_signature: &[u8]) -> Bytes {
        let typed = (
            self.permitted.token,
            self.eip712_type_hash(),
            self.witness.to,
            self.permitted.amount,
            self.witness.validAfter,
            self.deadline,
            B256::from(self.nonce),
        )
            .abi_encode_params();
        [agent_signature, cosigner_signature, &typed]
            .concat()
            .into()
    }
}

/// The first Permit2 authorization slot of an `AgentWallet`: EIP-3009 slots are
/// `[0, slots)`, Permit2 slots `[PERMIT2_SLOTS, PERMIT2_SLOTS + permit2Slots)`, ranges that
/// never meet, so a slot pays once, by one method (see `AgentWallet.isValidSignature`).
pub const PERMIT2_SLOTS: u32 = 1 << 16;

/// The nonce of authorization slot `slot` in backstop period `period_index`, the only nonces
/// `AgentWallet`'s EIP-1271 honours (see `AgentWallet.isValidSignature`).
pub fn authorization_nonce(period_index: u64, slot: u32) -> B256 {
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

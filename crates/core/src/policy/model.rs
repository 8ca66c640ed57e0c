//! The policy document. Every struct rejects unknown fields: a misspelt limit must be an error,
//! not a silently missing limit.

use std::{fmt, str::FromStr};

use alloy_primitives::U256;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};
use sha2::{Digest, Sha256};

use crate::{Address, B256};

/// Why a policy document was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    /// The document does not parse or has unknown fields.
    #[error("policy does not parse: {0}")]
    Parse(String),
    /// The document parses but is not usable.
    #[error("invalid policy: {0}")]
    Invalid(String),
}

/// How decisions are applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Mode {
    /// Approved requests are co-signed.
    #[default]
    Enforce,
    /// Dry run: requests are decided and recorded, never co-signed.
    Shadow,
}

/// A co-signing policy, version `version` of a wallet's policy history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Policy {
    /// Monotonic version number of this wallet's policy.
    pub version: u32,
    /// Enforce or shadow (dry run).
    #[serde(default)]
    pub mode: Mode,
    /// Chain ids requests may target.
    pub chains: Vec<u64>,
    /// Caps per token; a token without an entry cannot be spent.
    #[serde(default)]
    pub limits: Vec<TokenLimit>,
    /// Who may receive value (or an allowance).
    #[serde(default)]
    pub recipients: RecipientRules,
    /// Contracts that may be called with calldata the engine does not decode.
    #[serde(default)]
    pub contracts: Vec<ContractRule>,
    /// Requests per window.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// When a human must approve.
    #[serde(default)]
    pub approval: Option<ApprovalRule>,
    /// EIP-712 messages that may be co-signed for EIP-1271.
    #[serde(default)]
    pub typed_data: Vec<TypedDataRule>,
    /// The longest a co-signature may stay usable (`validUntil`, EIP-3009 `validBefore`),
    /// counted from the decision. Default: 5 minutes, or the shortest window if shorter; never
    /// longer than the shortest window, so a co-signature cannot be kept for a later window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_valid_for: Option<Seconds>,
}

/// `max_valid_for` when the policy does not set it: x402 uses 60–300 s.
pub const DEFAULT_MAX_VALID_FOR: u64 = 300;

impl Policy {
    /// Parses and validates a TOML document.
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        let policy: Self = toml::from_str(text).map_err(|e| PolicyError::Parse(e.to_string()))?;
        policy.validate()?;
        Ok(policy)
    }

    /// Parses and validates a JSON document.
    pub fn from_json(text: &str) -> Result<Self, PolicyError> {
        let policy: Self =
            serde_json::from_str(text).map_err(|e| PolicyError::Parse(e.to_string()))?;
        policy.validate()?;
        Ok(policy)
    }

    /// SHA-256 of the canonical JSON form; every decision records it.
    pub fn hash(&self) -> B256 {
        let canonical = serde_json::to_vec(self).expect("a policy always serialises");
        B256::new(Sha256::digest(canonical).into())
    }

    /// Checks what the types cannot: no duplicate tokens, windows and amounts that make sense.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let invalid = |m: String| Err(PolicyError::Invalid(m));
        if self.chains.is_empty() {
            return invalid("`chains` must name at least one chain id".into());
        }
        for (i, limit) in self.limits.iter().enumerate() {
            if self.limits[..i].iter().any(|l| l.token == limit.token) {
                return invalid(format!("token {} has two `limits` entries", limit.token));
            }
            if limit.per_transaction.is_none() && limit.windows.is_empty() {
                return invalid(format!(
                    "limit for {} sets neither per_transaction nor windows",
                    limit.token
                ));
            }
            if limit.windows.iter().any(|w| w.window.0 == 0) {
                return invalid(format!("a window for {} has zero length", limit.token));
            }
        }
        if let Some(rate) = &self.rate_limit
            && (rate.window.0 == 0 || rate.max_requests == 0)
        {
            return invalid("rate_limit needs a positive window and max_requests".into());
        }
        if let Some(approval) = &self.approval {
            approval.validate()?;
        }
        if let Some(max) = self.max_valid_for {
            if max.0 == 0 {
                return invalid("max_valid_for must be positive".into());
            }
            if let Some(shortest) = self.shortest_window()
                && max.0 > shortest
            {
                return invalid(format!(
                    "max_valid_for ({}s) is longer than the shortest window ({shortest}s): a \
                     co-signature could be kept and spent in a later window",
                    max.0
                ));
            }
        }
        Ok(())
    }

    /// The shortest sliding window of any token limit.
    pub fn shortest_window(&self) -> Option<u64> {
        self.limits
            .iter()
            .flat_map(|l| l.windows.iter().map(|w| w.window.0))
            .min()
    }

    /// How long a co-signature may stay usable: `max_valid_for`, else the default capped by
    /// the shortest window.
    pub fn max_valid_for(&self) -> u64 {
        self.max_valid_for.map_or_else(
            || {
                self.shortest_window()
                    .map_or(DEFAULT_MAX_VALID_FOR, |w| w.min(DEFAULT_MAX_VALID_FOR))
            },
            |m| m.0,
        )
    }

    /// The limit entry of `token`, if any.
    pub fn limit(&self, token: Token) -> Option<&TokenLimit> {
        self.limits.iter().find(|l| l.token == token)
    }
}

/// Native currency or an ERC-20 token. Written `"native"` or as the token's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Token {
    /// The chain's native currency.
    Native,
    /// An ERC-20 token contract.
    Erc20(Address),
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Native => f.write_str("native"),
            Self::Erc20(a) => write!(f, "{a}"),
        }
    }
}

impl FromStr for Token {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "native" {
            return Ok(Self::Native);
        }
        s.parse()
            .map(Self::Erc20)
            .map_err(|_| format!("`{s}` is neither \"native\" nor an address"))
    }
}

impl Serialize for Token {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Token {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(D::Error::custom)
    }
}

/// Policy numbers may be written as integers or strings.
#[derive(Deserialize)]
#[serde(untagged)]
enum IntOrText {
    Int(u64),
    Text(String),
}

/// An amount in base units. Written as a decimal string (`"1000000"`), a `0x` hex string, or a
/// small integer; serialised as a decimal string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Amount(pub U256);

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match IntOrText::deserialize(d)? {
            IntOrText::Int(n) => Ok(Self(U256::from(n))),
            IntOrText::Text(t) => {
                let parsed = match t.strip_prefix("0x") {
                    Some(hex) => U256::from_str_radix(hex, 16),
                    None => U256::from_str_radix(&t, 10),
                };
                parsed
                    .map(Self)
                    .map_err(|_| D::Error::custom(format!("`{t}` is not an amount")))
            }
        }
    }
}

/// A duration in seconds. Written `"90s"`, `"30m"`, `"1h"`, `"7d"` or as an integer of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seconds(pub u64);

impl Serialize for Seconds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = match IntOrText::deserialize(d)? {
            IntOrText::Int(n) => return Ok(Self(n)),
            IntOrText::Text(t) => t,
        };
        let bad = || D::Error::custom(format!("`{text}` is not a duration like 90s, 30m, 1h, 7d"));
        let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (number, unit) = text.split_at(split);
        let n: u64 = number.parse().map_err(|_| bad())?;
        let scale = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(bad()),
        };
        n.checked_mul(scale).map(Self).ok_or_else(bad)
    }
}

/// Caps for one token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenLimit {
    /// The token.
    pub token: Token,
    /// Most one request may move.
    #[serde(default)]
    pub per_transaction: Option<Amount>,
    /// Most that may move within any sliding window of this length.
    #[serde(default)]
    pub windows: Vec<WindowLimit>,
}

/// A sliding-window cap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WindowLimit {
    /// Window length.
    pub window: Seconds,
    /// Most that may move within it.
    pub max: Amount,
}

/// Recipient rules, applied to whoever receives value or an allowance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecipientRules {
    /// If set, only these may receive.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<crate::openapi::HexAddress>>))]
    pub allow: Option<Vec<Address>>,
    /// These may never receive.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<crate::openapi::HexAddress>))]
    pub deny: Vec<Address>,
}

/// A contract that may be called with calldata the engine does not decode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContractRule {
    /// The contract.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexAddress))]
    pub address: Address,
    /// Functions that may be called; each with optional argument rules.
    pub functions: Vec<FunctionRule>,
}

/// One allowed function: by signature (`"swap(address,uint256)"`) or selector (`"0x12345678"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FunctionRule {
    /// Signature or 4-byte selector.
    pub function: String,
    /// Rules on 32-byte ABI words of the arguments (static arguments only).
    #[serde(default)]
    pub args: Vec<ArgRule>,
}

impl FunctionRule {
    /// The 4-byte selector this rule allows.
    pub fn selector(&self) -> Option<[u8; 4]> {
        if let Some(hex) = self.function.strip_prefix("0x") {
            let bytes = alloy_primitives::hex::decode(hex).ok()?;
            return bytes.try_into().ok();
        }
        Some(super::effects::selector_of(&self.function))
    }
}

/// A rule on one static ABI argument (its 32-byte word).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ArgRule {
    /// Zero-based argument position.
    pub index: usize,
    /// The argument, as an unsigned integer, must not exceed this.
    #[serde(default)]
    pub max: Option<Amount>,
    /// The argument, as an address, must be one of these.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<crate::openapi::HexAddress>>))]
    pub one_of: Option<Vec<Address>>,
}

/// Requests per sliding window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RateLimit {
    /// Most requests within the window.
    pub max_requests: u32,
    /// Window length.
    pub window: Seconds,
}

/// Human approval above per-token thresholds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApprovalRule {
    /// A request moving more than `amount` of `token` waits for a human approver.
    pub above: Vec<Threshold>,
    /// How long a pending request stays approvable.
    pub expires_after: Seconds,
    /// Above a second, higher threshold, several distinct approvers must agree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<Quorum>,
}

/// A second approval threshold: a request moving more than one of `above` waits for
/// `approvers` distinct approvers (any one of whom can deny it), as Turnkey's consensus does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Quorum {
    /// How many distinct approvers (2 to [`MAX_APPROVERS`]).
    pub approvers: u32,
    /// Amounts above these need the quorum; each token must also have a (lower or equal)
    /// threshold in `approval.above`.
    pub above: Vec<Threshold>,
}

/// The most approvers a quorum may ask for.
pub const MAX_APPROVERS: u32 = 16;

impl ApprovalRule {
    /// How many distinct approvers a request moving `spends` needs: the quorum's number when
    /// one of them exceeds a quorum threshold, else one.
    pub fn approvers_required(&self, spends: &[(Token, U256)]) -> u32 {
        let Some(quorum) = &self.quorum else {
            return 1;
        };
        let over = spends.iter().any(|(token, amount)| {
            quorum
                .above
                .iter()
                .any(|t| t.token == *token && *amount > t.amount.0)
        });
        if over { quorum.approvers } else { 1 }
    }

    fn validate(&self) -> Result<(), PolicyError> {
        let invalid = |m: String| Err(PolicyError::Invalid(m));
        if self.expires_after.0 == 0 {
            return invalid("approval.expires_after must be positive".into());
        }
        let Some(quorum) = &self.quorum else {
            return Ok(());
        };
        if !(2..=MAX_APPROVERS).contains(&quorum.approvers) {
            return invalid(format!(
                "approval.quorum.approvers is 2 to {MAX_APPROVERS} (one approver needs no quorum)"
            ));
        }
        if quorum.above.is_empty() {
            return invalid("approval.quorum.above must name at least one threshold".into());
        }
        for t in &quorum.above {
            // Above the quorum's threshold a request must already wait for a human, or the
            // quorum would never be asked.
            match self.above.iter().find(|a| a.token == t.token) {
                Some(single) if single.amount.0 <= t.amount.0 => {}
                _ => {
                    return invalid(format!(
                        "approval.quorum for {} needs an `approval.above` threshold for the                          same token, no higher than the quorum's",
                        t.token
                    ));
                }
            }
        }
        Ok(())
    }
}

/// One approval threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Threshold {
    /// The token.
    pub token: Token,
    /// Amounts above this need approval.
    pub amount: Amount,
}

/// EIP-712 messages that may be co-signed for EIP-1271 (e.g. x402's EIP-3009 payments).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TypedDataRule {
    /// The primary type, e.g. `TransferWithAuthorization`.
    pub primary_type: String,
    /// Required domain name, if any.
    #[serde(default)]
    pub name: Option<String>,
    /// Required domain version, if any.
    #[serde(default)]
    pub version: Option<String>,
    /// Required verifying contract, if any.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::openapi::HexAddress>))]
    pub verifying_contract: Option<Address>,
}

//! What a request moves, decoded from calldata and typed data.

use alloy_primitives::{U256, keccak256};
use serde::{Deserialize, Serialize};

use super::model::Token;
use crate::{Address, Call};

/// One thing a request does, as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Effect {
    /// `amount` of `token` leaves the wallet to `recipient` (for approvals and permits: the
    /// spender, who can take it later without another co-signature).
    Spend {
        /// What moves.
        token: Token,
        /// How much, in base units.
        amount: U256,
        /// Who receives it (or the allowance).
        recipient: Address,
    },
    /// A call the engine cannot decode; allowed only by a contract rule.
    OpaqueCall {
        /// The called contract.
        to: Address,
        /// Its 4-byte selector (zero when the calldata is shorter).
        selector: [u8; 4],
        /// The calldata, for argument rules.
        data: Vec<u8>,
    },
}

const TRANSFER: [u8; 4] = [0xa9, 0x05, 0x9c, 0xbb];
const TRANSFER_FROM: [u8; 4] = [0x23, 0xb8, 0x72, 0xdd];
const APPROVE: [u8; 4] = [0x09, 0x5e, 0xa7, 0xb3];
const INCREASE_ALLOWANCE: [u8; 4] = [0x39, 0x50, 0x93, 0x51];
/// permit(address owner,address spender,uint256 value,uint256 deadline,uint8 v,bytes32 r,bytes32 s)
const PERMIT: [u8; 4] = [0xd5, 0x05, 0xac, 0xcf];

/// The `index`-th 32-byte argument word, if the calldata is long enough.
fn word(data: &[u8], index: usize) -> Option<[u8; 32]> {
    data.get(4 + 32 * index..4 + 32 * (index + 1))?
        .try_into()
        .ok()
}

/// The address a token reads from an ABI word: its low 20 bytes. Tokens compiled with ABI
/// coder v2 revert on dirty padding (nothing moves); older ones mask it and pay these 20 bytes.
fn address_in(w: [u8; 32]) -> Address {
    Address::from_slice(&w[12..])
}

/// The selectors that move value, with the argument index of the recipient (or spender) and
/// of the amount. Decoded at any calldata length, as the wallet and the tokens do: a token
/// ignores bytes past its arguments, so padding must never turn a spend into an opaque call.
const SPEND_SELECTORS: [([u8; 4], usize, usize, usize); 5] = [
    (TRANSFER, 0, 1, 2),
    (APPROVE, 0, 1, 2),
    (INCREASE_ALLOWANCE, 0, 1, 2),
    (TRANSFER_FROM, 1, 2, 3),
    (PERMIT, 1, 2, 7),
];

/// Whether `selector` moves value when called on a token (the engine always counts it).
pub fn is_spend_selector(selector: [u8; 4]) -> bool {
    SPEND_SELECTORS.iter().any(|(s, ..)| *s == selector)
}

/// The effects of one call. Spend selectors are decoded at any length: with fewer argument
/// words than the function takes, the amount counts as unlimited (as `AgentWallet` counts it),
/// so the request is over every cap. Anything else with calldata is an opaque call.
pub fn call_effects(call: &Call) -> Vec<Effect> {
    let mut effects = Vec::with_capacity(2);
    if !call.value.is_zero() {
        effects.push(Effect::Spend {
            token: Token::Native,
            amount: call.value,
            recipient: call.to,
        });
    }
    let data = call.data.as_ref();
    if data.is_empty() {
        return effects;
    }
    let selector: [u8; 4] = data
        .get(..4)
        .and_then(|s| s.try_into().ok())
        .unwrap_or_default();
    let spend = SPEND_SELECTORS.iter().find(|(s, ..)| *s == selector);
    match spend {
        Some(&(_, recipient_at, amount_at, words)) => {
            let complete = data.len() >= 4 + 32 * words;
            let recipient = word(data, recipient_at).map_or(Address::ZERO, address_in);
            let amount = match word(data, amount_at) {
                Some(w) if complete => U256::from_be_bytes(w),
                _ => U256::MAX,
            };
            effects.push(Effect::Spend {
                token: Token::Erc20(call.to),
                amount,
                recipient,
            });
        }
        None => effects.push(Effect::OpaqueCall {
            to: call.to,
            selector,
            data: data.to_vec(),
        }),
    }
    effects
}

/// When a typed-data message may be used: (valid after, valid until), in Unix seconds
/// (saturated to `u64`), for the types whose validity the engine knows (EIP-3009's
/// `validAfter`/`validBefore`, EIP-2612's `deadline`); `None` for others.
pub fn typed_data_validity(
    primary_type: &str,
    message: &serde_json::Value,
) -> Result<Option<(u64, u64)>, String> {
    let time = |name: &str| -> Result<u64, String> {
        let value = field_of(message, name)?;
        let n = amount_of(value).ok_or_else(|| format!("`{name}` is not a number"))?;
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    };
    Ok(match primary_type {
        // EIP-3009 is valid strictly before `validBefore`: the last usable second is one less.
        "TransferWithAuthorization" | "ReceiveWithAuthorization" => {
            Some((time("validAfter")?, time("validBefore")?.saturating_sub(1)))
        }
        "Permit" => Some((0, time("deadline")?)),
        // Permit2 honours `deadline` itself (inclusive); the x402 proxy `witness.validAfter`.
        "PermitWitnessTransferFrom" => Some((time("/witness/validAfter")?, time("/deadline")?)),
        _ => None,
    })
}

/// A message field by name, or by JSON pointer (`/witness/to`) for nested structs.
fn field_of<'m>(
    message: &'m serde_json::Value,
    name: &str,
) -> Result<&'m serde_json::Value, String> {
    let found = match name.starts_with('/') {
        true => message.pointer(name),
        false => message.get(name),
    };
    found.ok_or_else(|| format!("message lacks `{}`", name.trim_start_matches('/')))
}

/// A JSON number or decimal / `0x` hex string as an amount.
fn amount_of(value: &serde_json::Value) -> Option<U256> {
    match value {
        serde_json::Value::String(s) => match s.strip_prefix("0x") {
            Some(hex) => U256::from_str_radix(hex, 16).ok(),
            None => U256::from_str_radix(s, 10).ok(),
        },
        serde_json::Value::Number(n) => n.as_u64().map(U256::from),
        _ => None,
    }
}

/// The effects of an EIP-712 message co-signed for EIP-1271, from its verifying contract, primary
/// type and message fields. EIP-3009 `TransferWithAuthorization`/`ReceiveWithAuthorization`
/// (x402) and EIP-2612 `Permit` are spends of the verifying contract's token; an x402 Permit2
/// `PermitWitnessTransferFrom` is a spend of its permitted token to the witness's `to`, and only
/// through the x402 proxy (another spender could send the tokens anywhere). Other types move
/// nothing the engine can see and need an explicit typed-data rule.
pub fn typed_data_effects(
    verifying_contract: Address,
    primary_type: &str,
    message: &serde_json::Value,
) -> Result<Vec<Effect>, String> {
    let field = |name: &str| field_of(message, name);
    let address = |name: &str| -> Result<Address, String> {
        field(name)?
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("`{name}` is not an address"))
    };
    let amount = |name: &str| -> Result<U256, String> {
        amount_of(field(name)?).ok_or_else(|| format!("`{name}` is not an amount"))
    };
    let token = Token::Erc20(verifying_contract);
    Ok(match primary_type {
        "TransferWithAuthorization" | "ReceiveWithAuthorization" => {
            vec![Effect::Spend {
                token,
                amount: amount("value")?,
                recipient: address("to")?,
            }]
        }
        "Permit" => vec![Effect::Spend {
            token,
            amount: amount("value")?,
            recipient: address("spender")?,
        }],
        "PermitWitnessTransferFrom" => {
            if verifying_contract != crate::PERMIT2 {
                return Err(format!(
                    "a Permit2 message must be for Permit2 ({})",
                    crate::PERMIT2
                ));
            }
            if address("spender")? != crate::X402_PERMIT2_PROXY {
                return Err(format!(
                    "a Permit2 payment's spender must be the x402 exact proxy ({}), which pays \
                     the witness `to`",
                    crate::X402_PERMIT2_PROXY
                ));
            }
            vec![Effect::Spend {
                token: Token::Erc20(address("/permitted/token")?),
                amount: amount("/permitted/amount")?,
                recipient: address("/witness/to")?,
            }]
        }
        _ => vec![],
    })
}

/// The 4-byte selector of a function signature.
pub(crate) fn selector_of(signature: &str) -> [u8; 4] {
    let h = keccak256(signature.as_bytes());
    [h[0], h[1], h[2], h[3]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_match_their_signatures() {
        assert_eq!(selector_of("transfer(address,uint256)"), TRANSFER);
        assert_eq!(
            selector_of("transferFrom(address,address,uint256)"),
            TRANSFER_FROM
        );
        assert_eq!(selector_of("approve(address,uint256)"), APPROVE);
        assert_eq!(
            selector_of("increaseAllowance(address,uint256)"),
            INCREASE_ALLOWANCE
        );
        assert_eq!(
            selector_of("permit(address,address,uint256,uint256,uint8,bytes32,bytes32)"),
            PERMIT
        );
    }
}

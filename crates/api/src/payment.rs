//! What an agent asks to have co-signed: one [`Payment`] variant per way the wallet pays. A new
//! payment method is a variant and its arms here (its digest, its subject, its effects); the
//! exhaustive matches in the server, the SDK and the Python bindings then fail to compile
//! until they handle it.

use chaperone_core::{
    Address, AgentMessage, B256, Eip3009Kind, Execute, PERMIT2, PermitWitnessTransferFrom,
    TokenDomain, TransferWithAuthorization, U256,
    policy::{Effect, RequestKind, call_effects, typed_data_effects},
};
use serde::{Deserialize, Serialize};

use crate::{ErrorCode, ErrorDetail};

/// A payment from the wallet, as the agent signs it and the co-signer decides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payment {
    /// The wallet's own `execute` of a batch of calls.
    Execute(Execute),
    /// An EIP-3009 authorization from the wallet, honoured by its EIP-1271 (x402 "exact").
    Eip3009(PaymentAuthorization),
    /// A Permit2 witness transfer from the wallet through the x402 proxy, honoured by its
    /// EIP-1271.
    Permit2(Permit2Payment),
}

/// An EIP-3009 authorization from the wallet, under its token's domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PaymentAuthorization {
    /// `TransferWithAuthorization` (the default) or `ReceiveWithAuthorization`.
    #[serde(default)]
    pub primary_type: Eip3009Kind,
    /// The token's EIP-712 domain.
    pub domain: TokenDomain,
    /// The authorization (`from` is the wallet).
    pub message: TransferWithAuthorization,
}

/// An x402 Permit2 payment from the wallet (Permit2's domain on this chain is implied).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Permit2Payment {
    /// The Permit2 message (spender: the x402 exact proxy).
    pub message: PermitWitnessTransferFrom,
}

/// How an x402 authorization pays, each with its own nonce slots and nonce book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// EIP-3009: slots `[0, slots)`, the token's nonce book.
    Eip3009,
    /// Permit2: slots `[PERMIT2_SLOTS, PERMIT2_SLOTS + permit2Slots)`, Permit2's bitmap.
    Permit2,
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Eip3009 => "EIP-3009",
            Self::Permit2 => "Permit2",
        })
    }
}

/// An x402 authorization as the wallet's EIP-1271 will see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authorization {
    /// How it pays.
    pub method: Method,
    /// The token it moves.
    pub token: Address,
    /// How much.
    pub value: U256,
    /// Who it pays: the token moves `value` from the wallet to `to`, nothing else (what the
    /// indexer compares the token's `Transfer` with: the nonce carries neither).
    pub to: Address,
    /// Its nonce (a slot of a backstop period: `chaperone_core::authorization_nonce`).
    pub nonce: B256,
    /// The first second (Unix) at which it can be used on chain (the subject's `valid_until`
    /// is the last).
    pub valid_from: u64,
}

impl Authorization {
    /// Where its nonce is used up: the token's book (EIP-3009), or Permit2's, which keeps one
    /// book per owner for every token (keyed under Permit2's address).
    pub fn key(&self) -> (Address, B256) {
        match self.method {
            Method::Eip3009 => (self.token, self.nonce),
            Method::Permit2 => (PERMIT2, self.nonce),
        }
    }
}

/// A payment checked for shape: the digest both keys sign, the policy engine's view of it,
/// the `execute` nonce or the x402 authorization, and the last second at which the
/// signature can be used.
#[derive(Debug, Clone)]
pub struct Subject {
    /// The EIP-712 digest the agent and the co-signer sign (the request's id).
    pub digest: B256,
    /// What the policy engine decides.
    pub kind: RequestKind,
    /// The `execute` nonce.
    pub nonce: Option<U256>,
    /// The x402 authorization.
    pub authorization: Option<Authorization>,
    /// Unix seconds; the signature is usable up to and including it.
    pub valid_until: u64,
}

fn refused(code: ErrorCode, message: &str) -> ErrorDetail {
    ErrorDetail::new(code, message)
}

impl Payment {
    /// The EIP-712 digest the agent signs (and the co-signer co-signs) for `wallet` on
    /// `chain_id`: the `Execute` itself, or the wallet's `AgentMessage` over the hash the token
    /// or Permit2 passes to its `isValidSignature`.
    pub fn digest(&self, chain_id: u64, wallet: Address) -> B256 {
        match self {
            Self::Execute(execute) => execute.digest(chain_id, wallet),
            Self::Eip3009(a) => AgentMessage {
                hash: a.message.hash(&a.domain, a.primary_type),
            }
            .digest(chain_id, wallet),
            Self::Permit2(p) => AgentMessage {
                hash: p.message.hash(chain_id),
            }
            .digest(chain_id, wallet),
        }
    }

    /// The payment checked for shape at `now`, for `wallet` on `chain_id`.
    pub fn subject(
        &self,
        chain_id: u64,
        wallet: Address,
        now: u64,
    ) -> Result<Subject, ErrorDetail> {
        let digest = self.digest(chain_id, wallet);
        match self {
            Self::Execute(execute) => {
                if execute.validUntil <= now {
                    return Err(refused(ErrorCode::Expired, "validUntil has passed"));
                }
                if execute.calls.is_empty() {
                    return Err(refused(ErrorCode::InvalidRequest, "execute has no calls"));
                }
                Ok(Subject {
                    digest,
                    kind: RequestKind::Execute(execute.clone()),
                    nonce: Some(execute.nonce),
                    authorization: None,
                    valid_until: execute.validUntil,
                })
            }
            Self::Eip3009(PaymentAuthorization {
                primary_type,
                domain,
                message,
            }) => {
                if domain.chain_id != chain_id {
                    return Err(refused(
                        ErrorCode::WrongChainId,
                        "the authorization's token domain is for another chain",
                    ));
                }
                if message.from != wallet {
                    return Err(refused(
                        ErrorCode::InvalidRequest,
                        "an authorization's `from` must be the wallet",
                    ));
                }
                // EIP-3009 is usable strictly before `validBefore`.
                let valid_before = u64::try_from(message.validBefore).unwrap_or(u64::MAX);
                if valid_before <= now {
                    return Err(refused(ErrorCode::Expired, "validBefore has passed"));
                }
                Ok(Subject {
                    digest,
                    kind: RequestKind::TypedData {
                        domain_name: Some(domain.name.clone()),
                        domain_version: Some(domain.version.clone()),
                        verifying_contract: domain.verifying_contract,
                        primary_type: primary_type.primary_type().into(),
                        message: message_fields(message)?,
                    },
                    nonce: None,
                    authorization: Some(Authorization {
                        method: Method::Eip3009,
                        token: domain.verifying_contract,
                        value: message.value,
                        to: message.to,
                        nonce: message.nonce,
                        // EIP-3009 is usable strictly after `validAfter`.
                        valid_from: u64::try_from(message.validAfter)
                            .map_or(u64::MAX, |t| t.saturating_add(1)),
                    }),
                    valid_until: valid_before - 1,
                })
            }
            Self::Permit2(Permit2Payment { message }) => {
                // Permit2 honours `deadline` inclusively.
                let deadline = u64::try_from(message.deadline).unwrap_or(u64::MAX);
                if deadline < now {
                    return Err(refused(ErrorCode::Expired, "the deadline has passed"));
                }
                Ok(Subject {
                    digest,
                    kind: RequestKind::TypedData {
                        domain_name: Some("Permit2".into()),
                        domain_version: None,
                        verifying_contract: PERMIT2,
                        primary_type: "PermitWitnessTransferFrom".into(),
                        message: message_fields(message)?,
                    },
                    nonce: None,
                    authorization: Some(Authorization {
                        method: Method::Permit2,
                        token: message.permitted.token,
                        value: message.permitted.amount,
                        // The x402 proxy pays exactly the amount to the witness's `to`, from
                        // its `validAfter` on.
                        to: message.witness.to,
                        nonce: B256::from(message.nonce),
                        valid_from: u64::try_from(message.witness.validAfter).unwrap_or(u64::MAX),
                    }),
                    valid_until: deadline,
                })
            }
        }
    }

    /// How it is made.
    pub fn kind(&self) -> crate::ledger::PaymentKind {
        use crate::ledger::PaymentKind;
        match self {
            Self::Execute(_) => PaymentKind::Execute,
            Self::Eip3009(_) => PaymentKind::Eip3009,
            Self::Permit2(_) => PaymentKind::Permit2,
        }
    }

    /// What it spends per token, in the order first moved: the base units summed over its
    /// effects and the recipients, each once, in the order named. What the ledger and the
    /// decisions list show, and what an evidence verifier derives from a decision's record.
    pub fn spends(&self) -> Vec<(chaperone_core::policy::Token, U256, Vec<Address>)> {
        let mut spends: Vec<(chaperone_core::policy::Token, U256, Vec<Address>)> = Vec::new();
        for effect in self.effects() {
            let Effect::Spend {
                token,
                amount,
                recipient,
            } = effect
            else {
                continue;
            };
            match spends.iter_mut().find(|(t, ..)| *t == token) {
                Some((_, total, recipients)) => {
                    *total = total.saturating_add(amount);
                    if !recipients.contains(&recipient) {
                        recipients.push(recipient);
                    }
                }
                None => spends.push((token, amount, vec![recipient])),
            }
        }
        spends
    }

    /// What the payment moves, as the policy counts it (empty if the policy cannot read it).
    pub fn effects(&self) -> Vec<Effect> {
        let typed = match self {
            Self::Execute(execute) => {
                return execute.calls.iter().flat_map(call_effects).collect();
            }
            Self::Eip3009(a) => serde_json::to_value(&a.message).map(|m| {
                (
                    a.domain.verifying_contract,
                    a.primary_type.primary_type(),
                    m,
                )
            }),
            Self::Permit2(p) => {
                serde_json::to_value(&p.message).map(|m| (PERMIT2, "PermitWitnessTransferFrom", m))
            }
        };
        typed
            .ok()
            .and_then(|(contract, primary_type, message)| {
                typed_data_effects(contract, primary_type, &message).ok()
            })
            .unwrap_or_default()
    }
}

/// A typed-data message as the policy engine reads it (its JSON fields).
fn message_fields(message: &impl Serialize) -> Result<serde_json::Value, ErrorDetail> {
    serde_json::to_value(message)
        .map_err(|_| refused(ErrorCode::InvalidRequest, "the message does not serialise"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chaperone_core::{
        Call, Eip3009Kind, TokenPermissions, Witness, X402_PERMIT2_PROXY,
        policy::{Effect, Token},
    };

    use super::*;

    const CHAIN: u64 = 31337;
    const NOW: u64 = 1_750_000_000;
    const WALLET: Address = Address::repeat_byte(0xaa);
    const TOKEN: Address = Address::repeat_byte(0x70);

    fn execute(calls: Vec<Call>, valid_until: u64) -> Payment {
        Payment::Execute(Execute {
            calls,
            nonce: U256::from(7),
            validUntil: valid_until,
        })
    }

    fn pay(to: u8, value: u64) -> Call {
        Call {
            to: Address::repeat_byte(to),
            value: U256::from(value),
            data: Default::default(),
        }
    }

    fn eip3009(from: Address, chain_id: u64, valid_before: u64) -> Payment {
        Payment::Eip3009(PaymentAuthorization {
            primary_type: Eip3009Kind::TransferWithAuthorization,
            domain: TokenDomain {
                name: "USD Coin".into(),
                version: "2".into(),
                chain_id,
                verifying_contract: TOKEN,
            },
            message: TransferWithAuthorization {
                from,
                to: Address::repeat_byte(0x42),
                value: U256::from(5),
                validAfter: U256::ZERO,
                validBefore: U256::from(valid_before),
                nonce: B256::repeat_byte(3),
            },
        })
    }

    fn permit2(deadline: u64) -> Payment {
        Payment::Permit2(Permit2Payment {
            message: PermitWitnessTransferFrom {
                permitted: TokenPermissions {
                    token: TOKEN,
                    amount: U256::from(9),
                },
                spender: X402_PERMIT2_PROXY,
                nonce: U256::from(11),
                deadline: U256::from(deadline),
                witness: Witness {
                    to: Address::repeat_byte(0x42),
                    validAfter: U256::ZERO,
                },
            },
        })
    }

    #[test]
    fn each_method_signs_its_own_digest_in_the_wallets_domain() {
        let a = eip3009(WALLET, CHAIN, NOW + 60);
        let Payment::Eip3009(inner) = &a else {
            unreachable!()
        };
        let hash = inner.message.hash(&inner.domain, inner.primary_type);
        assert_eq!(
            a.digest(CHAIN, WALLET),
            AgentMessage { hash }.digest(CHAIN, WALLET)
        );
        // Another wallet, another chain: another digest (a co-signature is for one wallet).
        assert_ne!(a.digest(CHAIN, WALLET), a.digest(CHAIN, Address::ZERO));
        assert_ne!(a.digest(CHAIN, WALLET), a.digest(1, WALLET));
        let e = execute(vec![pay(1, 1)], NOW + 60);
        let subject = e.subject(CHAIN, WALLET, NOW).unwrap();
        assert_eq!(subject.digest, e.digest(CHAIN, WALLET));
        assert_eq!(subject.nonce, Some(U256::from(7)));
        assert!(subject.authorization.is_none());
    }

    #[test]
    fn shapes_that_cannot_be_co_signed_are_refused_with_their_code() {
        let refused = |p: Payment| p.subject(CHAIN, WALLET, NOW).unwrap_err().code;
        assert_eq!(refused(execute(vec![pay(1, 1)], NOW)), ErrorCode::Expired);
        assert_eq!(
            refused(execute(vec![], NOW + 60)),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            refused(eip3009(WALLET, 1, NOW + 60)),
            ErrorCode::WrongChainId
        );
        assert_eq!(
            refused(eip3009(Address::ZERO, CHAIN, NOW + 60)),
            ErrorCode::InvalidRequest
        );
        // EIP-3009 is usable strictly before validBefore; Permit2 up to its deadline.
        assert_eq!(refused(eip3009(WALLET, CHAIN, NOW)), ErrorCode::Expired);
        assert_eq!(refused(permit2(NOW - 1)), ErrorCode::Expired);
        let last = permit2(NOW).subject(CHAIN, WALLET, NOW).unwrap();
        assert_eq!(last.valid_until, NOW);
        let before = eip3009(WALLET, CHAIN, NOW + 1)
            .subject(CHAIN, WALLET, NOW)
            .unwrap();
        assert_eq!(before.valid_until, NOW);
    }

    #[test]
    fn each_method_uses_up_its_nonce_in_its_own_book() {
        let a = eip3009(WALLET, CHAIN, NOW + 60)
            .subject(CHAIN, WALLET, NOW)
            .unwrap()
            .authorization
            .unwrap();
        assert_eq!(a.method, Method::Eip3009);
        assert_eq!(a.key(), (TOKEN, B256::repeat_byte(3)));
        let p = permit2(NOW + 60)
            .subject(CHAIN, WALLET, NOW)
            .unwrap()
            .authorization
            .unwrap();
        assert_eq!(
            (p.method, p.token, p.value),
            (Method::Permit2, TOKEN, U256::from(9))
        );
        // Permit2 keeps one nonce book per owner for every token.
        assert_eq!(p.key(), (PERMIT2, B256::from(U256::from(11))));
    }

    #[test]
    fn effects_are_what_the_policy_counts() {
        let effects = execute(vec![pay(1, 5), pay(2, 6)], NOW + 60).effects();
        assert_eq!(effects.len(), 2);
        for p in [eip3009(WALLET, CHAIN, NOW + 60), permit2(NOW + 60)] {
            let effects = p.effects();
            assert!(
                matches!(
                    effects.as_slice(),
                    [Effect::Spend { token, recipient, .. }]
                        if *token == Token::Erc20(TOKEN) && *recipient == Address::repeat_byte(0x42)
                ),
                "{p:?}: {effects:?}"
            );
        }
    }
}

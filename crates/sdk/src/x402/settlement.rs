//! Whether the chain shows a payment's own authorization used: what `chaperone verify` means
//! by "settled on chain", and how a client watches a payment the merchant kept.
//!
//! A merchant's settlement report is a claim, and so is the payment an agent logs. A
//! transaction settles a payment only if all of this holds:
//!
//! 1. The record is consistent: the authorization in its payment header is the one it
//!    describes (token, payee, amount, nonce, method), its EIP-712 hash is the record's
//!    `authorization_hash` (recomputed: under the token's own `DOMAIN_SEPARATOR()` for
//!    EIP-3009, under Permit2's domain with the x402 proxy as spender for Permit2), and the
//!    decision id is the digest both keys signed for that hash in the wallet's domain.
//! 2. The signature is the wallet's format for exactly this authorization (agent ‖ co-signer ‖
//!    the authorization), and its agent signature recovers to the agent the caller names
//!    (for `chaperone verify`, the agent that signed the audit record).
//! 3. The payer is an `AgentWallet`: its code is the factory's ERC-1167 clone of an
//!    implementation whose code is `AgentWallet`'s, and its `agent()` is that agent.
//! 4. The transaction succeeded and carries this exact signature in its input (directly, or
//!    inside a Multicall3 or any wrapper that passes it through).
//! 5. It used the authorization's nonce and paid what the authorization says:
//!    - EIP-3009: the token emitted `AuthorizationUsed(wallet, nonce)` and, next to it, the
//!      `Transfer(wallet, payee, amount)` it made. A nonce is used once, so this can be only
//!      one transaction.
//!    - Permit2 emits nothing when it uses a nonce. The token's `Transfer(wallet, payee,
//!      amount)` is followed by the x402 proxy's `Settled()` (the proxy pays exactly the
//!      permitted amount to the signed recipient), and Permit2's `nonceBitmap` bit of
//!      (wallet, nonce) is clear before the transaction's block and set at it. This reads
//!      Permit2's state at the block before, which a pruned node may no longer hold.

use alloy::{
    consensus::Transaction as _,
    eips::BlockId,
    primitives::{Address, B256, Bytes, U256},
    providers::Provider,
    rpc::types::{Filter, Log},
    sol_types::{SolEvent, SolValue},
};
use chaperone_chain::{AgentWallet, Permit2, TestToken, X402ExactPermit2Proxy};
use chaperone_core::{AgentMessage, Eip3009Kind, PERMIT2, Signature, X402_PERMIT2_PROXY};
use serde::Serialize;

use super::{PaidAuthorization, X402Payment};
use crate::{Error, Result};

/// What the chain shows about a payment: the transaction that used its authorization, and who
/// paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettledPayment {
    /// The transaction that used the authorization.
    pub transaction: B256,
    /// Its block.
    pub block: u64,
    /// The AgentWallet that paid.
    pub payer: Address,
    /// The agent that signed the authorization (the wallet's `agent()`).
    pub agent: Address,
    /// The co-signer that signed it: the policy service the wallet trusted then.
    pub cosigner: Address,
}

/// A payment record that checks out off the chain's transactions (steps 1–3 above).
struct Checked {
    paid: PaidAuthorization,
    /// The signature without its ERC-6492 wrapping: what a settling transaction carries.
    signature: Bytes,
    agent: Address,
    cosigner: Address,
}

impl X402Payment {
    /// Checks the settlement the merchant reported against the chain: its transaction must
    /// have used this payment's own authorization, from an AgentWallet of `agent` (see the
    /// module documentation). `agent` is who the caller expects paid: for a disclosed model
    /// call, the agent that signed its record.
    pub async fn verify_settlement<P: Provider>(
        &self,
        provider: &P,
        agent: Address,
    ) -> Result<SettledPayment> {
        let transaction = self
            .settlement
            .as_ref()
            .filter(|s| s.success)
            .and_then(|s| s.transaction)
            .ok_or_else(|| Error::Invalid("the payment reports no settlement".into()))?;
        let checked = self.check(provider, agent).await?;
        self.used_in(provider, &checked, transaction).await
    }

    /// Looks for the transaction that used this payment's authorization, whatever the
    /// merchant reported (from [`X402Payment::block_sent`], else from the first block).
    /// `None`: not used yet.
    pub async fn find_settlement<P: Provider>(
        &self,
        provider: &P,
        agent: Address,
    ) -> Result<Option<SettledPayment>> {
        // A counterfactual wallet is deployed by its first payment's transaction: without code
        // it has paid nothing yet.
        let payer = self.authorization()?.payer();
        if provider.get_code_at(payer).await.map_err(chain)?.is_empty() {
            return Ok(None);
        }
        let checked = self.check(provider, agent).await?;
        let payer = checked.paid.payer().into_word();
        // The logs that name the authorization (EIP-3009) or its transfer (Permit2).
        let filter = Filter::new()
            .address(self.asset)
            .from_block(self.block_sent.unwrap_or(0));
        let filter = match &checked.paid {
            PaidAuthorization::Eip3009 { .. } => filter
                .event_signature(TestToken::AuthorizationUsed::SIGNATURE_HASH)
                .topic1(payer)
                .topic2(self.nonce),
            PaidAuthorization::Permit2 { .. } => filter
                .event_signature(TestToken::Transfer::SIGNATURE_HASH)
                .topic1(payer)
                .topic2(self.pay_to.into_word()),
        };
        let logs = provider.get_logs(&filter).await.map_err(chain)?;
        let mut candidates: Vec<B256> = logs.iter().filter_map(|l| l.transaction_hash).collect();
        candidates.dedup();
        for transaction in candidates {
            // Another payment's transfer to the same payee is not this one: keep looking.
            if let Ok(settled) = self.used_in(provider, &checked, transaction).await {
                return Ok(Some(settled));
            }
        }
        Ok(None)
    }

    /// Steps 1–3: the record, its signatures and its wallet.
    async fn check<P: Provider>(&self, provider: &P, agent: Address) -> Result<Checked> {
        let paid = self.authorization()?;
        self.check_describes(&paid)?;
        let chain_id = provider.get_chain_id().await.map_err(chain)?;
        let hash = match &paid {
            PaidAuthorization::Eip3009 { message, .. } => {
                let separator = TestToken::new(self.asset, provider)
                    .DOMAIN_SEPARATOR()
                    .call()
                    .await
                    .map_err(|e| Error::Chain(format!("{}.DOMAIN_SEPARATOR(): {e}", self.asset)))?;
                message.hash_under(separator, Eip3009Kind::TransferWithAuthorization)
            }
            PaidAuthorization::Permit2 { message, .. } => message.hash(chain_id),
        };
        if hash != self.authorization_hash {
            return Err(invalid(format!(
                "the authorization hashes to {hash}, not the recorded {}",
                self.authorization_hash
            )));
        }
        let request_id = AgentMessage { hash }.digest(chain_id, paid.payer());
        if request_id != self.request_id {
            return Err(invalid(format!(
                "decision {} is not the co-signature of this authorization ({request_id})",
                self.request_id
            )));
        }
        let signature = unwrap_erc6492(paid.signature());
        let (signer, cosigner) = signers(&paid, self.asset, &signature, request_id)?;
        if signer != agent {
            return Err(invalid(format!(
                "the authorization was signed by agent {signer}, not {agent}"
            )));
        }
        check_agent_wallet(provider, paid.payer(), agent).await?;
        Ok(Checked {
            paid,
            signature,
            agent,
            cosigner,
        })
    }

    /// The record's own fields are the authorization's.
    fn check_describes(&self, paid: &PaidAuthorization) -> Result<()> {
        let (token, to, amount) = paid.transfer();
        let matches = paid.method() == self.method
            && token.is_none_or(|t| t == self.asset)
            && to == self.pay_to
            && amount == self.amount
            && paid.nonce() == self.nonce;
        if !matches {
            return Err(invalid(format!(
                "the payment header authorizes {amount} to {to} (nonce {}), not the recorded \
                 {} of {} to {} (nonce {})",
                paid.nonce(),
                self.amount,
                self.asset,
                self.pay_to,
                self.nonce
            )));
        }
        match paid {
            PaidAuthorization::Permit2 { message, .. } if message.spender != X402_PERMIT2_PROXY => {
                Err(invalid(format!(
                    "the Permit2 spender is {}, not the x402 proxy",
                    message.spender
                )))
            }
            _ => Ok(()),
        }
    }

    /// Steps 4–5: `transaction` used this authorization.
    async fn used_in<P: Provider>(
        &self,
        provider: &P,
        checked: &Checked,
        transaction: B256,
    ) -> Result<SettledPayment> {
        let receipt = provider
            .get_transaction_receipt(transaction)
            .await
            .map_err(chain)?
            .filter(|r| r.status())
            .ok_or_else(|| invalid(format!("no successful transaction {transaction}")))?;
        let block = receipt
            .block_number
            .ok_or_else(|| invalid(format!("transaction {transaction} is not mined")))?;
        let input = provider
            .get_transaction_by_hash(transaction)
            .await
            .map_err(chain)?
            .map(|t| t.input().clone())
            .unwrap_or_default();
        if !contains(&input, &checked.signature) {
            return Err(invalid(format!(
                "transaction {transaction} does not carry this payment's signed authorization"
            )));
        }
        let payer = checked.paid.payer();
        let logs = receipt.inner.logs();
        let used = match &checked.paid {
            PaidAuthorization::Eip3009 { .. } => used_by_token(
                logs,
                self.asset,
                payer,
                self.nonce,
                self.pay_to,
                self.amount,
            ),
            PaidAuthorization::Permit2 { .. } => {
                paid_through_proxy(logs, self.asset, payer, self.pay_to, self.amount)
                    && permit2_nonce_used_at(provider, payer, self.nonce, block).await?
            }
        };
        if !used {
            return Err(invalid(format!(
                "transaction {transaction} did not use this authorization (nonce {} of {payer} \
                 paying {} of {} to {})",
                self.nonce, self.amount, self.asset, self.pay_to
            )));
        }
        Ok(SettledPayment {
            transaction,
            block,
            payer,
            agent: checked.agent,
            cosigner: checked.cosigner,
        })
    }
}

/// The agent and co-signer of a wallet signature, which must be the wallet's format for
/// exactly `paid` (agent ‖ co-signer ‖ the authorization, see `AgentWallet.isValidSignature`).
fn signers(
    paid: &PaidAuthorization,
    asset: Address,
    signature: &Bytes,
    request_id: B256,
) -> Result<(Address, Address)> {
    let (Some(agent), Some(cosigner)) = (signature.get(..65), signature.get(65..130)) else {
        return Err(invalid("the signature is not an AgentWallet's".into()));
    };
    let expected = match paid {
        PaidAuthorization::Eip3009 { message, .. } => message.wallet_signature(
            asset,
            Eip3009Kind::TransferWithAuthorization,
            agent,
            cosigner,
        ),
        PaidAuthorization::Permit2 { message, .. } => message.wallet_signature(agent, cosigner),
    };
    if &expected != signature {
        return Err(invalid(
            "the signature is not the wallet's signature of this authorization".into(),
        ));
    }
    let recover = |bytes: &[u8]| {
        Signature::try_from(bytes)
            .map_err(|e| invalid(format!("a signature: {e}")))
            .and_then(|s| Ok(chaperone_core::recover_low_s(&s, &request_id)?))
    };
    Ok((recover(agent)?, recover(cosigner)?))
}

/// `wallet` is an `AgentWallet` (the factory's clone of `AgentWallet`'s code) whose agent is
/// `agent`. A contract that merely answers `agent()` could be anyone's.
async fn check_agent_wallet<P: Provider>(
    provider: &P,
    wallet: Address,
    agent: Address,
) -> Result<()> {
    let code = provider.get_code_at(wallet).await.map_err(chain)?;
    let implementation = clone_implementation(&code)
        .ok_or_else(|| invalid(format!("the payer {wallet} is not an AgentWallet clone")))?;
    let code = provider.get_code_at(implementation).await.map_err(chain)?;
    if !is_agent_wallet_code(&code) {
        return Err(invalid(format!(
            "the payer {wallet} runs {implementation}, which is not AgentWallet's code"
        )));
    }
    let current = AgentWallet::new(wallet, provider)
        .agent()
        .call()
        .await
        .map_err(|e| Error::Chain(format!("{wallet}.agent(): {e}")))?;
    if current != agent {
        return Err(invalid(format!(
            "the payer {wallet}'s agent is {current}, not {agent}"
        )));
    }
    Ok(())
}

/// The implementation an OpenZeppelin ERC-1167 clone with immutable arguments (what
/// `AgentWalletFactory` deploys: the owner is its one argument) delegates to.
fn clone_implementation(code: &[u8]) -> Option<Address> {
    const PREFIX: [u8; 10] = [0x36, 0x3d, 0x3d, 0x37, 0x3d, 0x3d, 0x3d, 0x36, 0x3d, 0x73];
    const SUFFIX: [u8; 15] = [
        0x5a, 0xf4, 0x3d, 0x82, 0x80, 0x3e, 0x90, 0x3d, 0x91, 0x60, 0x2b, 0x57, 0xfd, 0x5b, 0xf3,
    ];
    let owner_argument = 32;
    (code.len() == PREFIX.len() + 20 + SUFFIX.len() + owner_argument
        && code.starts_with(&PREFIX)
        && code[30..45] == SUFFIX)
        .then(|| Address::from_slice(&code[10..30]))
}

/// Whether `code` is `AgentWallet`'s deployed code. Its immutables (the EIP-712 domain it
/// caches: this address, the chain id, the separator, name and version) differ per
/// deployment; solc leaves each as 32 zero bytes in the artifact's deployed bytecode, and
/// those are its only runs of 32 zero bytes (a unit test checks this against the artifact's
/// `immutableReferences`). Every other byte must be equal.
fn is_agent_wallet_code(code: &[u8]) -> bool {
    let reference: &[u8] = &AgentWallet::DEPLOYED_BYTECODE;
    code.len() == reference.len()
        && immutable_mask(reference)
            .iter()
            .zip(code.iter().zip(reference))
            .all(|(masked, (a, b))| *masked || a == b)
}

/// The bytes of `code` inside a run of at least 32 zero bytes.
fn immutable_mask(code: &[u8]) -> Vec<bool> {
    let mut mask = vec![false; code.len()];
    let mut start = 0;
    while start < code.len() {
        let run = code[start..].iter().take_while(|b| **b == 0).count();
        if run >= 32 {
            mask[start..start + run].fill(true);
        }
        start += run.max(1);
    }
    mask
}

/// EIP-3009's evidence: the token emitted `AuthorizationUsed(payer, nonce)` next to the
/// `Transfer(payer, to, amount)` it made (FiatToken emits the one before the other; either
/// order is taken, never a transfer elsewhere in the transaction).
fn used_by_token(
    logs: &[Log],
    token: Address,
    payer: Address,
    nonce: B256,
    to: Address,
    amount: U256,
) -> bool {
    let used = |log: &Log| {
        log.address() == token
            && TestToken::AuthorizationUsed::decode_log(&log.inner)
                .is_ok_and(|e| e.authorizer == payer && e.nonce == nonce)
    };
    let paid = |log: &Log| is_transfer(log, token, payer, to, amount);
    logs.windows(2)
        .any(|pair| (used(&pair[0]) && paid(&pair[1])) || (paid(&pair[0]) && used(&pair[1])))
}

/// Permit2's evidence in the logs: the token's `Transfer(payer, to, amount)` followed by the
/// x402 proxy's `Settled()`, so the proxy made that transfer.
fn paid_through_proxy(
    logs: &[Log],
    token: Address,
    payer: Address,
    to: Address,
    amount: U256,
) -> bool {
    logs.windows(2).any(|pair| {
        is_transfer(&pair[0], token, payer, to, amount)
            && pair[1].address() == X402_PERMIT2_PROXY
            && pair[1].topics().first() == Some(&X402ExactPermit2Proxy::Settled::SIGNATURE_HASH)
    })
}

fn is_transfer(log: &Log, token: Address, from: Address, to: Address, amount: U256) -> bool {
    log.address() == token
        && TestToken::Transfer::decode_log(&log.inner)
            .is_ok_and(|t| t.from == from && t.to == to && t.value == amount)
}

/// Whether Permit2 marked (owner, nonce) used in `block`: clear at the block before, set at it.
async fn permit2_nonce_used_at<P: Provider>(
    provider: &P,
    owner: Address,
    nonce: B256,
    block: u64,
) -> Result<bool> {
    let nonce = U256::from_be_bytes(nonce.0);
    let bit = U256::from(1) << (nonce & U256::from(0xff)).to::<usize>();
    let permit2 = Permit2::new(PERMIT2, provider);
    let set_at = |number: u64| {
        let call = permit2.nonceBitmap(owner, nonce >> 8usize);
        async move {
            call.block(BlockId::number(number))
                .call()
                .await
                .map(|word| word & bit != U256::ZERO)
                .map_err(|e| {
                    Error::Chain(format!(
                        "Permit2's nonces at block {number} (an archive node keeps old state): {e}"
                    ))
                })
        }
    };
    Ok(block > 0 && set_at(block).await? && !set_at(block - 1).await?)
}

/// An ERC-6492 signature's inner signature (the wallet's own, once deployed); any other
/// signature as it is.
fn unwrap_erc6492(signature: &Bytes) -> Bytes {
    const MAGIC: [u8; 32] = {
        let mut magic = [0x64; 32];
        let mut i = 1;
        while i < 32 {
            magic[i] = 0x92;
            i += 2;
        }
        magic
    };
    // abi.encode(factory, factoryCalldata, signature) ‖ MAGIC.
    signature
        .strip_suffix(&MAGIC)
        .and_then(|wrapped| <(Address, Bytes, Bytes)>::abi_decode_params(wrapped).ok())
        .map_or_else(|| signature.clone(), |(_, _, inner)| inner)
}

/// `haystack` contains `needle`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn invalid(why: String) -> Error {
    Error::Invalid(format!("not settled by this payment: {why}"))
}

fn chain(e: impl std::fmt::Display) -> Error {
    Error::Chain(e.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The immutables are exactly the artifact's runs of 32 zero bytes, so masking those runs
    /// masks the immutables and nothing else.
    #[test]
    fn agent_wallet_immutables_are_its_only_zero_runs() {
        let artifact = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../contracts/out/AgentWallet.sol/AgentWallet.json");
        let artifact: serde_json::Value =
            serde_json::from_slice(&std::fs::read(artifact).unwrap()).unwrap();
        let deployed = &artifact["deployedBytecode"];
        let code: Bytes = deployed["object"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            code,
            AgentWallet::DEPLOYED_BYTECODE,
            "the binding's artifact"
        );
        let mut expected = vec![false; code.len()];
        for references in deployed["immutableReferences"]
            .as_object()
            .unwrap()
            .values()
        {
            for r in references.as_array().unwrap() {
                let start = r["start"].as_u64().unwrap() as usize;
                let length = r["length"].as_u64().unwrap() as usize;
                expected[start..start + length].fill(true);
            }
        }
        assert_eq!(immutable_mask(&code), expected);
        assert!(is_agent_wallet_code(&code));
        let mut other = code.to_vec();
        other[100] ^= 1;
        assert!(!is_agent_wallet_code(&other));
    }

    #[test]
    fn a_clone_names_its_implementation() {
        let implementation = Address::repeat_byte(0xab);
        let mut code = hex_bytes("363d3d373d3d3d363d73");
        code.extend_from_slice(implementation.as_slice());
        code.extend_from_slice(&hex_bytes("5af43d82803e903d91602b57fd5bf3"));
        code.extend_from_slice(&[0; 32]);
        assert_eq!(clone_implementation(&code), Some(implementation));
        assert_eq!(clone_implementation(&code[..76]), None);
        code[0] = 0;
        assert_eq!(clone_implementation(&code), None);
    }

    #[test]
    fn an_erc6492_signature_unwraps_to_the_wallets_own() {
        let inner = Bytes::from(vec![7u8; 200]);
        let mut wrapped = (
            Address::repeat_byte(1),
            Bytes::from(vec![9u8; 70]),
            inner.clone(),
        )
            .abi_encode_params();
        let plain = Bytes::from(wrapped.clone());
        assert_eq!(unwrap_erc6492(&plain), plain, "no magic: as it is");
        wrapped.extend_from_slice(&[0x64, 0x92].repeat(16));
        assert_eq!(unwrap_erc6492(&Bytes::from(wrapped)), inner);
    }

    fn hex_bytes(s: &str) -> Vec<u8> {
        alloy::hex::decode(s).unwrap()
    }
}

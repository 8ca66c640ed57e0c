//! Off-chain payment authorizations the wallet validates through EIP-1271, the two ways x402's
//! "exact" EVM scheme pays: EIP-3009 `TransferWithAuthorization`/`ReceiveWithAuthorization`
//! (the token verifies) and Permit2 `PermitWitnessTransferFrom` through the x402 proxy (Permit2
//! verifies). The agent signs, the policy service co-signs within the same limits as `execute`
//! payments, and the wallet honours only nonces of the current backstop period's slots, each
//! method its own (see `AgentWallet.isValidSignature`).

use std::{ops::Range, sync::PoisonError, time::Duration};

use alloy::{
    providers::Provider,
    sol_types::{SolCall, SolValue},
};
use chaperone_api::{ErrorCode, Method, Payment, PaymentAuthorization, Permit2Payment};
use chaperone_chain::{AgentWallet, AgentWalletFactory, Permit2, TestToken};
use chaperone_core::{
    B256, Bytes, Eip3009Kind, PERMIT2, PermitWitnessTransferFrom, TokenDomain, TokenPermissions,
    TransferWithAuthorization, U256, Witness, X402_PERMIT2_PROXY,
};
use serde::Serialize;

use crate::{
    Address, Error, Result,
    wallet::{Cosigned, Wallet, revert_reason, unix_now},
};

/// An EIP-3009 authorization signed by the agent and co-signed by the policy service, valid
/// through the wallet's EIP-1271 `isValidSignature(hash, signature)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignedAuthorization {
    /// The co-sign decision's id (the digest both keys signed).
    pub request_id: B256,
    /// Transfer (anyone may submit it) or receive (only the payee may).
    pub kind: Eip3009Kind,
    /// The token's domain.
    pub domain: TokenDomain,
    /// The authorization (`from` is the wallet).
    pub message: TransferWithAuthorization,
    /// The EIP-712 hash the token passes to `isValidSignature`.
    pub hash: B256,
    /// The wallet's EIP-1271 format: agent signature ‖ co-signer signature ‖ the authorization
    /// ABI-encoded (see `TransferWithAuthorization::wallet_signature`).
    pub signature: Bytes,
}

/// An x402 Permit2 payment signed by the agent and co-signed by the policy service: the x402
/// proxy pays `message.permitted` to `message.witness.to` once, before `message.deadline`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignedPermit2 {
    /// The co-sign decision's id (the digest both keys signed).
    pub request_id: B256,
    /// The Permit2 message (spender: the x402 exact proxy).
    pub message: PermitWitnessTransferFrom,
    /// The EIP-712 hash Permit2 passes to `isValidSignature`.
    pub hash: B256,
    /// The wallet's EIP-1271 format (see `PermitWitnessTransferFrom::wallet_signature`).
    pub signature: Bytes,
}

/// A payment wallet that may not exist yet: the `AgentWalletFactory.createPaymentWallet`
/// arguments that deploy it at its predicted address (they are all bound into the address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Counterfactual {
    /// The factory.
    pub factory: Address,
    /// The wallet's owner.
    pub owner: Address,
    /// The co-signer.
    pub cosigner: Address,
    /// The salt.
    pub salt: B256,
    /// The token its backstop and authorization budget are for.
    pub token: Address,
    /// The backstop's `execute` limit per period.
    pub limit: U256,
    /// The backstop period in seconds.
    pub period: u32,
    /// The most one authorization may move.
    pub max_value: U256,
    /// EIP-3009 authorizations per period.
    pub slots: u16,
    /// Permit2 authorizations per period (their nonce slots follow the EIP-3009 ones).
    #[serde(default)]
    pub permit2_slots: u16,
}

impl Counterfactual {
    /// The factory call that deploys the wallet of `agent`.
    pub fn create_call(&self, agent: Address) -> Bytes {
        AgentWalletFactory::createPaymentWalletCall {
            owner: self.owner,
            agent,
            cosigner: self.cosigner,
            salt: self.salt,
            token: self.token,
            limit: self.limit,
            period: self.period,
            maxValue: self.max_value,
            slots: self.slots,
            permit2Slots: self.permit2_slots,
        }
        .abi_encode()
        .into()
    }

    /// The wallet's address for `agent`, as the factory predicts it.
    pub async fn address<P: Provider>(&self, provider: &P, agent: Address) -> Result<Address> {
        AgentWalletFactory::new(self.factory, provider)
            .predictPaymentWallet(
                self.owner,
                agent,
                self.cosigner,
                self.salt,
                self.token,
                self.limit,
                self.period,
                self.max_value,
                self.slots,
                self.permit2_slots,
            )
            .call()
            .await
            .map_err(|e| Error::Chain(revert_reason(&e)))
    }
}

/// ERC-6492's magic suffix: "this signature deploys its signer first".
const ERC6492_SUFFIX: [u8; 32] = {
    let mut suffix = [0x64; 32];
    let mut i = 1;
    while i < 32 {
        suffix[i] = 0x92;
        i += 2;
    }
    suffix
};

impl Wallet {
    /// Signs an EIP-3009 `TransferWithAuthorization` of `value` to `to`, valid from now for
    /// `valid_for` (see [`Wallet::sign_authorization`]).
    pub async fn sign_payment_authorization(
        &self,
        domain: TokenDomain,
        to: Address,
        value: U256,
        valid_for: Duration,
    ) -> Result<SignedAuthorization> {
        self.sign_authorization(
            Eip3009Kind::TransferWithAuthorization,
            domain,
            to,
            value,
            0,
            valid_for,
        )
        .await
    }

    /// Signs an EIP-3009 authorization of `kind` of `value` to `to` from the wallet, usable
    /// after `valid_after` (Unix seconds) and for `valid_for` from now, and gets it co-signed
    /// within the policy. Takes the first authorization slot of this backstop period that no
    /// method has used. Denied → [`Error::Denied`]; a human must approve →
    /// [`Error::PendingAuthorization`].
    pub async fn sign_authorization(
        &self,
        kind: Eip3009Kind,
        domain: TokenDomain,
        to: Address,
        value: U256,
        valid_after: u64,
        valid_for: Duration,
    ) -> Result<SignedAuthorization> {
        let token = domain.verifying_contract;
        let nonce = self
            .free_authorization_nonce(token, Method::Eip3009)
            .await?;
        let message = TransferWithAuthorization {
            from: self.wallet,
            to,
            value,
            validAfter: U256::from(valid_after),
            validBefore: U256::from(unix_now() + valid_for.as_secs()),
            nonce,
        };
        let hash = message.hash(&domain, kind);
        let payment = Payment::Eip3009(PaymentAuthorization {
            primary_type: kind,
            domain: domain.clone(),
            message: message.clone(),
        });
        let (request_id, agent_signature) = self.sign_as_agent(&payment)?;
        let cosignature = self
            .cosign_authorization(payment, agent_signature.clone(), token, nonce)
            .await?;
        let signature = message.wallet_signature(token, kind, &agent_signature, &cosignature);
        Ok(SignedAuthorization {
            request_id,
            kind,
            signature: self.deployable(signature).await?,
            domain,
            message,
            hash,
        })
    }

    /// Signs an x402 Permit2 payment of `value` of `token` to `to` (through the x402 exact
    /// proxy), usable after `valid_after` and until `valid_for` from now, and gets it co-signed
    /// within the policy (the same limits as EIP-3009 payments of `token`; its own slots).
    pub async fn sign_permit2_payment(
        &self,
        token: Address,
        to: Address,
        value: U256,
        valid_after: u64,
        valid_for: Duration,
    ) -> Result<SignedPermit2> {
        let nonce = self
            .free_authorization_nonce(token, Method::Permit2)
            .await?;
        let message = PermitWitnessTransferFrom {
            permitted: TokenPermissions {
                token,
                amount: value,
            },
            spender: X402_PERMIT2_PROXY,
            nonce: nonce.into(),
            deadline: U256::from(unix_now() + valid_for.as_secs()),
            witness: Witness {
                to,
                validAfter: U256::from(valid_after),
            },
        };
        let hash = message.hash(self.chain_id);
        let payment = Payment::Permit2(Permit2Payment {
            message: message.clone(),
        });
        let (request_id, agent_signature) = self.sign_as_agent(&payment)?;
        let cosignature = self
            .cosign_authorization(payment, agent_signature.clone(), token, nonce)
            .await?;
        let signature = message.wallet_signature(&agent_signature, &cosignature);
        Ok(SignedPermit2 {
            request_id,
            signature: self.deployable(signature).await?,
            message,
            hash,
        })
    }

    /// Whether the wallet has code yet.
    async fn deployed(&self) -> Result<bool> {
        let code = self
            .provider
            .get_code_at(self.wallet)
            .await
            .map_err(|e| Error::Chain(e.to_string()))?;
        Ok(!code.is_empty())
    }

    /// `signature` as a verifier can use it now: as it is once the wallet exists, else wrapped
    /// for ERC-6492 with the factory call that deploys it.
    async fn deployable(&self, signature: Bytes) -> Result<Bytes> {
        if self.deployed().await? {
            return Ok(signature);
        }
        let Some(counterfactual) = &self.config.counterfactual else {
            return Err(Error::Chain(format!(
                "wallet {} has no code, and no counterfactual deployment is configured",
                self.wallet
            )));
        };
        let mut wrapped = (
            counterfactual.factory,
            counterfactual.create_call(self.key.address()),
            signature,
        )
            .abi_encode_params();
        wrapped.extend_from_slice(&ERC6492_SUFFIX);
        Ok(wrapped.into())
    }

    /// The nonce slots `method` may use for `token` and the current period index: the
    /// wallet's, or for a wallet not deployed yet, what its counterfactual settings will give
    /// it. EIP-3009 slots are `[0, slots)`, Permit2's `[PERMIT2_SLOTS, PERMIT2_SLOTS +
    /// permit2Slots)`: the slot names the method, so a slot pays once, by one method.
    async fn slots_and_period(&self, token: Address, method: Method) -> Result<(Range<u32>, u64)> {
        let chain = |e: alloy::contract::Error| Error::Chain(revert_reason(&e));
        let range = |slots: u16, permit2_slots: u16| match method {
            Method::Eip3009 => 0..u32::from(slots),
            Method::Permit2 => {
                chaperone_core::PERMIT2_SLOTS
                    ..chaperone_core::PERMIT2_SLOTS + u32::from(permit2_slots)
            }
        };
        if !self.deployed().await?
            && let Some(c) = self
                .config
                .counterfactual
                .as_ref()
                .filter(|c| c.token == token)
        {
            // The wallet's period index is chain time over its period.
            let block = self
                .provider
                .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
                .await
                .map_err(|e| Error::Chain(e.to_string()))?
                .ok_or_else(|| Error::Chain("the chain has no latest block".into()))?;
            return Ok((
                range(c.slots, c.permit2_slots),
                block.header.timestamp / u64::from(c.period.max(1)),
            ));
        }
        let wallet = AgentWallet::new(self.wallet, &self.provider);
        let budget = wallet
            .authorizationBudget(token)
            .call()
            .await
            .map_err(chain)?;
        // The period is the wallet's (chain time); every slot's nonce follows from it.
        let period = wallet
            .authorizationNonce(token, 0)
            .call()
            .await
            .map_err(chain)?;
        let period = u64::try_from(U256::from_be_bytes(period.0) >> 192usize)
            .map_err(|_| Error::Chain(format!("{token}: period index beyond 64 bits")))?;
        Ok((range(budget.slots, budget.permit2Slots), period))
    }

    /// The request id (the digest both keys sign for `payment`) and the agent's signature of
    /// it.
    fn sign_as_agent(&self, payment: &Payment) -> Result<(B256, Bytes)> {
        let request_id = payment.digest(self.chain_id, self.wallet);
        let signature = self.key.sign_digest(&request_id)?.as_bytes().to_vec();
        Ok((request_id, signature.into()))
    }

    /// Asks for the co-signature of an authorization; on anything but an approval its slot
    /// `(token, nonce)` is freed again.
    async fn cosign_authorization(
        &self,
        payment: Payment,
        agent_signature: Bytes,
        token: Address,
        nonce: B256,
    ) -> Result<Bytes> {
        let answer = self.cosign(payment, agent_signature).await;
        if !matches!(answer, Ok(Cosigned::Approved(_))) {
            self.authorization_nonces
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&(token, nonce));
        }
        match answer? {
            Cosigned::Approved(cosignature) => Ok(cosignature),
            // Nobody waits for a human inside an x402 request; the approver sees it anyway.
            Cosigned::Pending(request_id) => Err(Error::PendingAuthorization { request_id }),
        }
    }

    /// The nonce of the first of `method`'s authorization slots of this backstop period of
    /// `token` that its nonce book (the token's for EIP-3009, Permit2's bitmap) has not marked
    /// used for the wallet and this `Wallet` has not handed out, claimed here.
    async fn free_authorization_nonce(&self, token: Address, method: Method) -> Result<B256> {
        let chain = |e: alloy::contract::Error| Error::Chain(revert_reason(&e));
        let (slots, period) = self.slots_and_period(token, method).await?;
        let erc3009 = TestToken::new(token, &self.provider);
        let permit2 = Permit2::new(PERMIT2, &self.provider);
        for slot in slots.clone() {
            let nonce = chaperone_core::authorization_nonce(period, slot);
            let claimed = |nonces: &std::collections::HashSet<(Address, B256)>| {
                nonces.contains(&(token, nonce))
            };
            if claimed(
                &self
                    .authorization_nonces
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner),
            ) {
                continue;
            }
            let used = match method {
                Method::Eip3009 => erc3009
                    .authorizationState(self.wallet, nonce)
                    .call()
                    .await
                    .map_err(chain)?,
                Method::Permit2 => {
                    let n = U256::from_be_bytes(nonce.0);
                    let bits = permit2
                        .nonceBitmap(self.wallet, n >> 8usize)
                        .call()
                        .await
                        .map_err(chain)?;
                    (bits >> (n & U256::from(0xff)).to::<usize>()) & U256::from(1) == U256::from(1)
                }
            };
            if !used
                && self
                    .authorization_nonces
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert((token, nonce))
            {
                return Ok(nonce);
            }
        }
        Err(Error::Refused {
            status: 409,
            code: ErrorCode::NoAuthorizationSlot,
            message: format!(
                "the wallet's EIP-1271 budget for {token} has no unused {method} slot this period \
                 (slots {}..{}; the owner sets them with setAuthorizationBudget)",
                slots.start, slots.end
            ),
        })
    }
}

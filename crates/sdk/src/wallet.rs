//! Paying through the agent's `AgentWallet`: build the EIP-712 `Execute`, sign it as the agent,
//! get the policy service's co-signature, submit, wait for the receipt. (Off-chain payment
//! authorizations are in `authorization.rs`.)

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use alloy::{
    network::EthereumWallet,
    primitives::aliases::U192,
    providers::{DynProvider, Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
    sol_types::SolCall,
};
use chaperone_api::{
    Client, ClientError, CosignRequest, ErrorCode, Payment as Paid, cosign::CallBody,
};
use chaperone_chain::{AgentWallet, TestToken};
use chaperone_core::{Address, B256, Bytes, Call, Execute, Secp256k1Signer, U256, policy::Outcome};
use serde::Serialize;

use crate::{Error, Result};

/// Where the wallet and the policy service are.
#[derive(Debug, Clone)]
pub struct WalletConfig {
    /// The Chaperone server (policy service), e.g. `http://127.0.0.1:8080`.
    pub server_url: String,
    /// The chain's JSON-RPC URL.
    pub rpc_url: String,
    /// The agent's `AgentWallet`.
    pub wallet: Address,
    /// How long a co-signed request stays valid (its `validUntil`). The policy's
    /// `max_valid_for` (default 5 minutes) bounds it, except for payments a human must approve,
    /// which may last as long as the policy's approval expiry.
    pub valid_for: Duration,
    /// How often `wait_for_approval` asks again.
    pub approval_poll: Duration,
    /// How `wallet` is deployed if it does not exist yet (a payment wallet from
    /// `AgentWalletFactory.createPaymentWallet`): its x402 payments then carry the factory
    /// call (ERC-6492), and the first one deploys it.
    pub counterfactual: Option<crate::Counterfactual>,
}

impl WalletConfig {
    /// Requests valid for 2 minutes; approvals polled every 2 seconds.
    pub fn new(server_url: impl Into<String>, rpc_url: impl Into<String>, wallet: Address) -> Self {
        Self {
            server_url: server_url.into(),
            rpc_url: rpc_url.into(),
            wallet,
            valid_for: Duration::from_secs(120),
            approval_poll: Duration::from_secs(2),
            counterfactual: None,
        }
    }
}

/// One payment: native currency (`token = None`) or an ERC-20 `transfer`.
///
/// ```
/// use chaperone_sdk::{Address, Payment, U256};
///
/// let vendor = Address::repeat_byte(0x42);
/// let usdc = Address::repeat_byte(0xa0);
/// let call = Payment { token: Some(usdc), to: vendor, amount: U256::from(5_000_000u64) }.call();
/// assert_eq!(call.to, usdc); // the wallet calls the token …
/// assert_eq!(call.value, U256::ZERO);
/// assert_eq!(&call.data[..4], &[0xa9, 0x05, 0x9c, 0xbb]); // … with transfer(vendor, 5 USDC)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payment {
    /// The ERC-20 token, or `None` for the chain's native currency.
    pub token: Option<Address>,
    /// The recipient.
    pub to: Address,
    /// The amount in base units.
    pub amount: U256,
}

impl Payment {
    /// The wallet call that makes this payment.
    pub fn call(&self) -> Call {
        match self.token {
            None => Call {
                to: self.to,
                value: self.amount,
                data: Bytes::new(),
            },
            Some(token) => Call {
                to: token,
                value: U256::ZERO,
                data: TestToken::transferCall {
                    to: self.to,
                    value: self.amount,
                }
                .abi_encode()
                .into(),
            },
        }
    }
}

/// An executed, co-signed transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Executed {
    /// The co-sign request's id (the EIP-712 digest).
    pub request_id: B256,
    /// The transaction.
    pub tx_hash: B256,
    /// Its block.
    pub block_number: u64,
    /// Gas it used.
    pub gas_used: u64,
}

/// A request a human approver must approve first. Keep it and pass it to
/// [`Wallet::wait_for_approval`]; it is the same request (same nonce and digest) throughout.
#[derive(Debug, Clone)]
pub struct PendingPayment {
    /// The request's id (its EIP-712 digest), as approvers see it.
    pub request_id: B256,
    execute: Execute,
    agent_signature: Bytes,
}

pub(crate) enum Cosigned {
    Approved(Bytes),
    Pending(B256),
}

/// The agent's wallet: pays within its policy, never around it.
#[derive(Debug, Clone)]
pub struct Wallet {
    api: Client,
    pub(crate) provider: DynProvider,
    pub(crate) key: Secp256k1Signer,
    pub(crate) wallet: Address,
    pub(crate) chain_id: u64,
    pub(crate) config: WalletConfig,
    nonces: Arc<Mutex<NoncePool>>,
    /// Authorization nonces this `Wallet` had co-signed, by token: the token (or Permit2)
    /// marks a nonce used only when the payment is settled, so two payments in flight must not
    /// take the same slot. (Each nonce names its backstop period, so stale entries never match
    /// again.)
    pub(crate) authorization_nonces: Arc<Mutex<std::collections::HashSet<(Address, B256)>>>,
}

/// Nonces ready to sign with. The wallet's 2-D nonces let independent payments use separate
/// keys, so a payment waiting for a human never blocks the next one; but a key's first use
/// writes a new storage slot (~22,100 gas) where a used key costs ~2,900 and key 0 (packed
/// with the wallet's configuration) nothing extra. So keys are reused: key 0 first, a fresh
/// random key only while every known key has a payment in flight.
#[derive(Debug, Default)]
struct NoncePool {
    /// The next nonce of each idle key.
    idle: Vec<U256>,
    /// Whether key 0 was read from the chain (it is then in `idle` or in flight).
    key0_claimed: bool,
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A fresh 2-D nonce: a random 192-bit key at sequence 0.
fn fresh_nonce() -> Result<U256> {
    let mut key = [0u8; 24];
    getrandom::fill(&mut key).map_err(|_| Error::Core(chaperone_core::Error::Random))?;
    Ok(U256::from_be_slice(&key) << 64)
}

impl Wallet {
    /// Connects to the chain (the agent key pays the gas) and the policy service.
    pub async fn connect(config: WalletConfig, key: Secp256k1Signer) -> Result<Self> {
        let signer = PrivateKeySigner::from_bytes(&key.to_bytes())
            .map_err(|e| Error::Chain(e.to_string()))?;
        let url = config
            .rpc_url
            .parse()
            .map_err(|e| Error::Chain(format!("rpc url {}: {e}", config.rpc_url)))?;
        let provider = ProviderBuilder::new()
            .wallet(EthereumWallet::from(signer))
            .connect_http(url)
            .erased();
        let chain_id = provider.get_chain_id().await.map_err(|e| {
            Error::Chain(format!("asking {} for its chain id: {e}", config.rpc_url))
        })?;
        Ok(Self {
            api: Client::new(&config.server_url),
            provider,
            key,
            wallet: config.wallet,
            chain_id,
            config,
            nonces: Arc::default(),
            authorization_nonces: Arc::default(),
        })
    }

    /// A nonce no other in-flight payment of this `Wallet` uses (see [`NoncePool`]). One
    /// `Wallet` per agent key: two processes sharing key 0 would race for its sequence.
    async fn take_nonce(&self) -> Result<U256> {
        {
            let mut pool = self.nonces.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(nonce) = pool.idle.pop() {
                return Ok(nonce);
            }
            if pool.key0_claimed {
                return fresh_nonce();
            }
            pool.key0_claimed = true;
        }
        let read = AgentWallet::new(self.wallet, &self.provider)
            .nextNonce(U192::ZERO)
            .call()
            .await;
        read.map_err(|e| {
            self.nonces
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .key0_claimed = false;
            Error::Chain(format!("reading the wallet's nonce: {e}"))
        })
    }

    /// Returns a nonce to the pool: the same one if it was not used, the next one if it was.
    fn put_back(&self, nonce: U256) {
        self.nonces
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .idle
            .push(nonce);
    }

    /// The wallet's address.
    pub fn address(&self) -> Address {
        self.wallet
    }

    /// The chain it is on (read from the RPC endpoint at `connect`).
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// Tells the policy service that the approved payment `request_id` was made within the
    /// model call whose audit record has `leaf_hash` (that record should commit to the
    /// payment, e.g. with [`crate::X402Payment::record_metadata`]); the decision then names
    /// the call. Signed by the agent; set once. The record must be in the log already
    /// (`Recorder::receipt` waits for its delivery) and received while the co-signature was
    /// valid.
    pub async fn bind_to_call(&self, request_id: B256, leaf_hash: B256) -> Result<()> {
        let digest = chaperone_core::PaymentCall {
            request: request_id,
            call: leaf_hash,
        }
        .digest(self.chain_id, self.wallet);
        let signature = Bytes::from(self.key.sign_digest(&digest)?.as_bytes().to_vec());
        let body = CallBody {
            leaf_hash,
            agent_signature: signature,
        };
        self.api.bind_call(request_id, &body).await?;
        Ok(())
    }

    /// Pays `payment` through the wallet (see [`Wallet::execute`]).
    pub async fn pay(&self, payment: Payment) -> Result<Executed> {
        self.execute(vec![payment.call()]).await
    }

    /// Executes `calls` from the wallet: signs the `Execute` as the agent, asks the policy
    /// service to co-sign, submits and waits for the receipt. Denied → [`Error::Denied`] with
    /// every reason; needing a human → [`Error::Pending`] (then `wait_for_approval`).
    pub async fn execute(&self, calls: Vec<Call>) -> Result<Executed> {
        let nonce = self.take_nonce().await?;
        let execute = Execute {
            calls,
            nonce,
            validUntil: unix_now() + self.config.valid_for.as_secs(),
        };
        let digest = execute.digest(self.chain_id, self.wallet);
        let signed = self.key.sign_digest(&digest);
        let agent_signature = match signed {
            Ok(signature) => Bytes::from(signature.as_bytes().to_vec()),
            Err(e) => {
                self.put_back(nonce);
                return Err(e.into());
            }
        };
        match self.cosign_execute(&execute, &agent_signature).await {
            Ok(Cosigned::Approved(cosignature)) => self.submit(digest, &execute, cosignature).await,
            // The nonce waits with the request; `wait_for_approval` returns it to the pool.
            Ok(Cosigned::Pending(request_id)) => Err(Error::Pending(Box::new(PendingPayment {
                request_id,
                execute,
                agent_signature,
            }))),
            Err(e) => {
                self.put_back(nonce);
                Err(e)
            }
        }
    }

    /// Waits (asking every `approval_poll`) until an approver decides a pending payment, then
    /// submits it. Fails with [`Error::Denied`] if denied, [`Error::Expired`] once `validUntil`
    /// passes or after `timeout`.
    pub async fn wait_for_approval(
        &self,
        pending: PendingPayment,
        timeout: Duration,
    ) -> Result<Executed> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if unix_now() >= pending.execute.validUntil || tokio::time::Instant::now() >= deadline {
                self.put_back(pending.execute.nonce);
                return Err(Error::Expired);
            }
            let answer = self
                .cosign_execute(&pending.execute, &pending.agent_signature)
                .await;
            match answer {
                Err(e @ (Error::Denied { .. } | Error::Expired | Error::Refused { .. })) => {
                    self.put_back(pending.execute.nonce);
                    return Err(e);
                }
                Err(e) => return Err(e),
                Ok(Cosigned::Approved(cosignature)) => {
                    return self
                        .submit(pending.request_id, &pending.execute, cosignature)
                        .await;
                }
                Ok(Cosigned::Pending(_)) => tokio::time::sleep(self.config.approval_poll).await,
            }
        }
    }

    async fn cosign_execute(&self, execute: &Execute, agent_signature: &Bytes) -> Result<Cosigned> {
        self.cosign(Paid::Execute(execute.clone()), agent_signature.clone())
            .await
    }

    /// Asks the policy service to co-sign `payment`, signed by the agent.
    pub(crate) async fn cosign(&self, payment: Paid, agent_signature: Bytes) -> Result<Cosigned> {
        let request = CosignRequest {
            chain_id: self.chain_id,
            wallet: self.wallet,
            payment,
            agent_signature,
        };
        let answer = match self.api.cosign(&request).await {
            Ok(decision) => decision.response,
            Err(ClientError::Refused {
                code: ErrorCode::Expired,
                ..
            }) => return Err(Error::Expired),
            Err(e) => return Err(e.into()),
        };
        match answer.outcome {
            Outcome::Approved => answer
                .cosigner_signature
                .map(Cosigned::Approved)
                .ok_or_else(|| Error::Unreachable {
                    url: self.api.base().to_owned(),
                    detail: "approved without a signature".into(),
                }),
            Outcome::PendingApproval => Ok(Cosigned::Pending(answer.request_id)),
            // An approval that expired or a human's "no" is a denial too.
            Outcome::Denied => Err(Error::Denied {
                request_id: answer.request_id,
                reasons: answer.reasons,
                reasons_text: answer.reasons_text,
            }),
        }
    }

    async fn submit(
        &self,
        request_id: B256,
        execute: &Execute,
        cosigner_signature: Bytes,
    ) -> Result<Executed> {
        let wallet = AgentWallet::new(self.wallet, &self.provider);
        let calls = execute.calls.iter().map(AgentWallet::Call::from).collect();
        // The agent's key sends (and pays for) the transaction, which proves the agent: only
        // the co-signature travels (about 4,900 gas less than a relayed `execute`).
        let call =
            wallet.executeAsAgent(calls, execute.nonce, execute.validUntil, cosigner_signature);
        // Simulate first: a send that fails at gas estimation may already have taken a
        // nonce from the provider's cache, and the gap would block every later transaction.
        // A revert leaves the wallet's nonce unused, so it goes back to the pool.
        if let Err(e) = call.call().await {
            self.put_back(execute.nonce);
            return Err(Error::Chain(revert_reason(&e)));
        }
        // From here a failure leaves the nonce's fate unknown: it is not reused.
        let pending = call
            .send()
            .await
            .map_err(|e| Error::Chain(revert_reason(&e)))?;
        let receipt = pending
            .get_receipt()
            .await
            .map_err(|e| Error::Chain(format!("waiting for the receipt: {e}")))?;
        if !receipt.status() {
            self.put_back(execute.nonce);
            return Err(Error::Chain(format!(
                "transaction {} reverted",
                receipt.transaction_hash
            )));
        }
        self.put_back(execute.nonce + U256::from(1));
        Ok(Executed {
            request_id,
            tx_hash: receipt.transaction_hash,
            block_number: receipt.block_number.unwrap_or_default(),
            gas_used: receipt.gas_used,
        })
    }
}

/// The wallet's custom error by name when the revert decodes, else the RPC's message.
pub(crate) fn revert_reason(e: &alloy::contract::Error) -> String {
    match e.as_decoded_interface_error::<AgentWallet::AgentWalletErrors>() {
        Some(decoded) => format!("AgentWallet reverted: {decoded:?}"),
        None => e.to_string(),
    }
}

//! End to end on a real Anvil: the service runs on a real socket, the agent asks it for a
//! co-signature over HTTP, and the wallet executes (or refuses) on chain.
//!
//! This module holds the shared fixture, the `World` (a devnet, a funded wallet under a policy,
//! the service on a real socket) and what its tests do with it (ask for a co-signature, execute,
//! pay an x402 authorization, sign as attacker B); the tests are in `execute` (co-signed
//! `execute` calls) and `authorizations` (x402 payment authorizations checked against the
//! wallet) and `reconcile` (attacker B spends with both keys, without the service, and the
//! indexer raises the alert).

mod authorizations;
mod execute;
mod reconcile;

use alloy::{
    eips::BlockNumberOrTag,
    primitives::{Address, B256, Bytes, U256},
    providers::{DynProvider, Provider},
    rpc::types::TransactionRequest,
};
use chaperone_api::{CosignRequest, Payment, PaymentAuthorization, Permit2Payment};
use chaperone_chain::{AgentWallet, Devnet, NewWallet, TestToken, WalletStart, deploy, x402_proxy};
use chaperone_core::{
    AgentMessage, Call, Eip3009Kind, Execute, PermitWitnessTransferFrom, Secp256k1Signer,
    TokenDomain, TokenPermissions, TransferWithAuthorization, Witness, X402_PERMIT2_PROXY,
    authorization_nonce, policy::Policy,
};
use chaperone_server::{AppState, Indexer, app};
use chaperone_store::{Store, WalletRecord};
use chaperone_testkit::{devnet, provider, serve, sign, signed_cosign, sqlite_file};
use serde_json::json;

const ETHER: u64 = 1_000_000_000_000_000_000;

/// EIP-3009's `TransferWithAuthorization`, the kind x402 pays with.
const EIP3009: Eip3009Kind = Eip3009Kind::TransferWithAuthorization;

fn to_contract(calls: &[Call]) -> Vec<AgentWallet::Call> {
    calls.iter().map(Into::into).collect()
}

/// A call that sends `value` wei to `to`.
fn native(to: Address, value: u64) -> Call {
    Call {
        to,
        value: U256::from(value),
        data: Bytes::new(),
    }
}

struct World {
    _devnet: Devnet,
    store: Store,
    provider: DynProvider,
    chain_id: u64,
    wallet: Address,
    token: Address,
    agent: Secp256k1Signer,
    cosigner: Secp256k1Signer,
    url: String,
}

async fn world() -> World {
    let devnet = devnet();
    let provider = provider(&devnet, 0);
    let deployment = deploy(&provider).await.unwrap();
    let (agent, cosigner) = (
        Secp256k1Signer::random().unwrap(),
        Secp256k1Signer::random().unwrap(),
    );
    let owner = devnet.signer(0).address();
    let wallet = NewWallet {
        factory: deployment.wallet_factory,
        owner,
        agent: agent.address(),
        cosigner: cosigner.address(),
        salt: B256::ZERO,
        start: WalletStart::Bare,
    }
    .create(&provider)
    .await
    .unwrap();
    let contract = AgentWallet::new(wallet, &provider);
    let token = TestToken::deploy(&provider).await.unwrap();
    token
        .mint(wallet, U256::from(1_000_000))
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    for (asset, limit) in [
        (Address::ZERO, U256::from(10u64 * ETHER)),
        (*token.address(), U256::from(1_000_000)),
    ] {
        contract
            .setBackstop(asset, limit, 86_400)
            .send()
            .await
            .unwrap()
            .watch()
            .await
            .unwrap();
    }
    provider
        .send_transaction(
            TransactionRequest::default()
                .to(wallet)
                .value(U256::from(5u64 * ETHER)),
        )
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();

    // The policy: 1 ETH per request, 2 ETH per hour; 100 token units per request.
    let store = Store::connect(&sqlite_file("server").url).await.unwrap();
    let chain_id = provider.get_chain_id().await.unwrap();
    store
        .register_wallet(
            &WalletRecord {
                address: wallet,
                chain_id,
                agent: agent.address(),
            },
            0,
        )
        .await
        .unwrap();
    let token = *token.address();
    let world = World {
        _devnet: devnet,
        store,
        provider,
        chain_id,
        wallet,
        token,
        agent,
        cosigner,
        url: String::new(),
    };
    world
        .set_policy(json!({
            "version": 1,
            "chains": [chain_id],
            "limits": [
                { "token": "native", "per_transaction": ETHER.to_string(), "windows": [{ "window": "1h", "max": (2 * ETHER).to_string() }] },
                { "token": token.to_string(), "per_transaction": "100" },
            ],
        }))
        .await;
    let router = app(
        AppState::new(world.store.clone(), world.cosigner.clone(), chain_id)
            .with_chain(world.provider.clone()),
    );
    World {
        url: serve(router).await,
        ..world
    }
}

impl World {
    fn execute(&self, calls: Vec<Call>, nonce: u64) -> Execute {
        Execute {
            calls,
            nonce: U256::from(nonce),
            // Within the policy's max_valid_for (5 minutes by default).
            validUntil: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                + 120,
        }
    }

    fn agent_signature(&self, e: &Execute) -> Bytes {
        sign(&self.agent, &e.digest(self.chain_id, self.wallet))
    }

    /// Installs policy `document` (JSON) for the wallet.
    async fn set_policy(&self, document: serde_json::Value) {
        let policy = Policy::from_json(&document.to_string()).unwrap();
        self.store
            .set_policy(self.wallet, &policy, 0)
            .await
            .unwrap();
    }

    /// The owner gives the token an EIP-1271 budget: `slots` EIP-3009 and `permit2_slots`
    /// Permit2 authorizations of at most `max_value` each per period.
    async fn set_authorization_budget(&self, max_value: u64, slots: u16, permit2_slots: u16) {
        AgentWallet::new(self.wallet, &self.provider)
            .setAuthorizationBudget(self.token, U256::from(max_value), slots, permit2_slots)
            .send()
            .await
            .unwrap()
            .watch()
            .await
            .unwrap();
    }

    /// POST /v1/cosign over real HTTP with any body: (status, body).
    async fn cosign_body(&self, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let response = alloy::transports::http::reqwest::Client::new()
            .post(format!("{}/v1/cosign", self.url))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (
            status,
            serde_json::from_str(&response.text().await.unwrap()).unwrap(),
        )
    }

    /// POST /v1/cosign for an `execute`, signed by the agent: (status, body).
    async fn cosign(&self, e: &Execute) -> (u16, serde_json::Value) {
        let request = signed_cosign(
            &self.agent,
            self.chain_id,
            self.wallet,
            Payment::Execute(e.clone()),
        );
        self.cosign_body(&serde_json::to_value(request).unwrap())
            .await
    }

    /// The service's co-signature of `payment` (which it must approve), with the request.
    async fn cosigned(&self, payment: Payment) -> (CosignRequest, Bytes) {
        let request = signed_cosign(&self.agent, self.chain_id, self.wallet, payment);
        let (status, answer) = self
            .cosign_body(&serde_json::to_value(&request).unwrap())
            .await;
        assert_eq!(status, 200, "{answer}");
        let cosignature = answer["cosigner_signature"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        (request, cosignature)
    }

    /// Sends `execute` straight to the wallet with these signatures and waits for it.
    async fn send_execute(&self, e: &Execute, agent_signature: Bytes, cosignature: Bytes) {
        AgentWallet::new(self.wallet, &self.provider)
            .execute(
                to_contract(&e.calls),
                e.nonce,
                e.validUntil,
                agent_signature,
                cosignature,
            )
            .send()
            .await
            .unwrap()
            .watch()
            .await
            .unwrap();
    }

    /// Asks the service to co-sign `e` (it must approve), then executes it.
    async fn execute_approved(&self, e: &Execute) {
        let (_, cosignature) = self.cosigned(Payment::Execute(e.clone())).await;
        self.send_execute(e, self.agent_signature(e), cosignature)
            .await;
    }

    /// Attacker B: both stolen keys sign `digest`, without the service.
    fn both_keys_sign(&self, digest: B256) -> (Bytes, Bytes) {
        (sign(&self.agent, &digest), sign(&self.cosigner, &digest))
    }

    /// Attacker B: both keys sign the wallet's EIP-1271 `AgentMessage` over `hash`.
    fn both_keys_sign_message(&self, hash: B256) -> (Bytes, Bytes) {
        self.both_keys_sign(AgentMessage { hash }.digest(self.chain_id, self.wallet))
    }

    /// The newest block's time and its backstop period (one day).
    async fn head_time(&self) -> (u64, u64) {
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .unwrap()
            .unwrap();
        (block.header.timestamp, block.header.timestamp / 86_400)
    }

    /// Mines a block at `time`, moving the chain's clock.
    async fn mine_at(&self, time: u64) {
        let _: String = self
            .provider
            .raw_request("evm_mine".into(), (time,))
            .await
            .unwrap();
    }

    /// The token's EIP-712 domain.
    async fn token_domain(&self) -> TokenDomain {
        TokenDomain {
            name: TestToken::new(self.token, &self.provider)
                .name()
                .call()
                .await
                .unwrap(),
            version: "1".into(),
            chain_id: self.chain_id,
            verifying_contract: self.token,
        }
    }

    /// An EIP-3009 authorization from the wallet of `value` to `to`, valid until
    /// `valid_before`, with `nonce`.
    fn eip3009(
        &self,
        to: Address,
        value: u64,
        valid_before: u64,
        nonce: B256,
    ) -> TransferWithAuthorization {
        TransferWithAuthorization {
            from: self.wallet,
            to,
            value: U256::from(value),
            validAfter: U256::ZERO,
            validBefore: U256::from(valid_before),
            nonce,
        }
    }

    /// The EIP-3009 payment the agent asks the service to co-sign for `message`.
    async fn eip3009_payment(&self, message: &TransferWithAuthorization) -> Payment {
        Payment::Eip3009(PaymentAuthorization {
            primary_type: EIP3009,
            domain: self.token_domain().await,
            message: message.clone(),
        })
    }

    /// Pays an EIP-3009 authorization with the wallet's EIP-1271 `signature` (as the merchant
    /// or a facilitator would) and waits for it.
    async fn use_eip3009(&self, m: &TransferWithAuthorization, signature: Bytes) {
        TestToken::new(self.token, &self.provider)
            .transferWithAuthorization(
                m.from,
                m.to,
                m.value,
                m.validAfter,
                m.validBefore,
                m.nonce,
                signature,
            )
            .send()
            .await
            .unwrap()
            .watch()
            .await
            .unwrap();
    }

    /// Asks the service to co-sign an EIP-3009 authorization (it must approve) and pays it.
    async fn pay_eip3009_approved(&self, m: &TransferWithAuthorization) {
        let (request, cosignature) = self.cosigned(self.eip3009_payment(m).await).await;
        let signature =
            m.wallet_signature(self.token, EIP3009, &request.agent_signature, &cosignature);
        self.use_eip3009(m, signature).await;
    }

    /// Attacker B pays an EIP-3009 authorization signed with both keys, without the service.
    async fn pay_eip3009_stolen(&self, m: &TransferWithAuthorization) {
        let hash = m.hash(&self.token_domain().await, EIP3009);
        let (agent, cosigner) = self.both_keys_sign_message(hash);
        let signature = m.wallet_signature(self.token, EIP3009, &agent, &cosigner);
        self.use_eip3009(m, signature).await;
    }

    /// An x402 Permit2 payment from the wallet of `amount` to `to` (through the x402 proxy),
    /// with Permit2 slot `slot` of `period` and deadline `deadline`.
    fn permit(
        &self,
        to: Address,
        amount: u64,
        period: u64,
        slot: u32,
        deadline: u64,
    ) -> PermitWitnessTransferFrom {
        PermitWitnessTransferFrom {
            permitted: TokenPermissions {
                token: self.token,
                amount: U256::from(amount),
            },
            spender: X402_PERMIT2_PROXY,
            nonce: authorization_nonce(period, chaperone_core::PERMIT2_SLOTS + slot).into(),
            deadline: U256::from(deadline),
            witness: Witness {
                to,
                validAfter: U256::ZERO,
            },
        }
    }

    /// The service's co-signature of a Permit2 payment, as the wallet's EIP-1271 signature.
    async fn permit2_approved(&self, p: &PermitWitnessTransferFrom) -> Bytes {
        let payment = Payment::Permit2(Permit2Payment { message: p.clone() });
        let (request, cosignature) = self.cosigned(payment).await;
        p.wallet_signature(&request.agent_signature, &cosignature)
    }

    /// Attacker B's EIP-1271 signature of a Permit2 payment, signed with both keys.
    fn permit2_stolen(&self, p: &PermitWitnessTransferFrom) -> Bytes {
        let (agent, cosigner) = self.both_keys_sign_message(p.hash(self.chain_id));
        p.wallet_signature(&agent, &cosigner)
    }

    /// Settles a Permit2 payment through the x402 proxy (as a facilitator would).
    async fn settle_permit2(&self, p: &PermitWitnessTransferFrom, signature: Bytes) {
        x402_proxy::X402ExactPermit2Proxy::new(X402_PERMIT2_PROXY, &self.provider)
            .settle(
                x402_proxy::Permit2::PermitTransferFrom {
                    permitted: x402_proxy::Permit2::TokenPermissions {
                        token: p.permitted.token,
                        amount: p.permitted.amount,
                    },
                    nonce: p.nonce,
                    deadline: p.deadline,
                },
                self.wallet,
                x402_proxy::X402ExactPermit2Proxy::Witness {
                    to: p.witness.to,
                    validAfter: p.witness.validAfter,
                },
                signature,
            )
            .send()
            .await
            .unwrap()
            .watch()
            .await
            .unwrap();
    }

    /// The token balance of `owner`.
    async fn token_balance(&self, owner: Address) -> U256 {
        TestToken::new(self.token, &self.provider)
            .balanceOf(owner)
            .call()
            .await
            .unwrap()
    }

    /// The payment ledger, newest first.
    async fn ledger(&self) -> Vec<chaperone_store::LedgerRow> {
        let all = chaperone_store::PaymentFilter {
            limit: 100,
            ..Default::default()
        };
        self.store.payments(&all).await.unwrap()
    }

    /// What the wallet has reserved or spent of `token` (what counts against the policy).
    async fn committed(&self, token: chaperone_core::policy::Token) -> U256 {
        self.store
            .committed_spend(self.wallet, token)
            .await
            .unwrap()
            .0
    }

    /// An indexer of the wallet from block 0, with no confirmations to wait for.
    fn indexer(&self) -> Indexer {
        Indexer::new(self.provider.clone(), self.store.clone(), None, 0, 0)
    }
}

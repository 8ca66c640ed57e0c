//! End to end on a real Anvil: the service runs on a real socket, the agent asks it for a
//! co-signature over HTTP, and the wallet executes (or refuses) on chain.
//!
//! This module holds the shared fixture, the `World` (a devnet, a funded wallet under a policy,
//! the service on a real socket); the tests are in `execute` (co-signed `execute` calls) and
//! `authorizations` (x402 payment authorizations checked against the wallet) and `reconcile`
//! (attacker B spends with both keys, without the service, and the indexer raises the alert).

mod authorizations;
mod execute;
mod reconcile;

use alloy::{
    primitives::{Address, B256, Bytes, U256},
    providers::{DynProvider, Provider},
    rpc::types::TransactionRequest,
};
use chaperone_api::Payment;
use chaperone_chain::{AgentWallet, Devnet, NewWallet, TestToken, WalletStart, deploy};
use chaperone_core::{Call, Execute, Secp256k1Signer, policy::Policy};
use chaperone_server::{AppState, app};
use chaperone_store::{Store, WalletRecord};
use chaperone_testkit::{devnet, provider, serve, sign, signed_cosign_json, sqlite_file};
use serde_json::json;

const ETHER: u64 = 1_000_000_000_000_000_000;

fn to_contract(calls: &[Call]) -> Vec<AgentWallet::Call> {
    calls.iter().map(Into::into).collect()
}

struct World {
    _devnet: Devnet,
    store: Store,
    provider: DynProvider,
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
    contract
        .setBackstop(Address::ZERO, U256::from(10u64 * ETHER), 86_400)
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    contract
        .setBackstop(*token.address(), U256::from(1_000_000), 86_400)
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
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
    let policy = Policy::from_json(&json!({
        "version": 1,
        "chains": [chain_id],
        "limits": [
            { "token": "native", "per_transaction": ETHER.to_string(), "windows": [{ "window": "1h", "max": (2 * ETHER).to_string() }] },
            { "token": token.address().to_string(), "per_transaction": "100" },
        ],
    }).to_string()).unwrap();
    store.set_policy(wallet, &policy, 0).await.unwrap();

    let router =
        app(AppState::new(store.clone(), cosigner.clone(), chain_id).with_chain(provider.clone()));
    let url = serve(router).await;
    let token = *token.address();
    World {
        _devnet: devnet,
        store,
        provider,
        wallet,
        token,
        agent,
        cosigner,
        url,
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

    async fn agent_signature(&self, e: &Execute) -> Bytes {
        let chain_id = self.provider.get_chain_id().await.unwrap();
        sign(&self.agent, &e.digest(chain_id, self.wallet))
    }

    /// POST /v1/cosign over real HTTP: (status, body).
    async fn cosign(&self, e: &Execute) -> (u16, serde_json::Value) {
        let chain_id = self.provider.get_chain_id().await.unwrap();
        let body = signed_cosign_json(
            &self.agent,
            chain_id,
            self.wallet,
            Payment::Execute(e.clone()),
        );
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
}

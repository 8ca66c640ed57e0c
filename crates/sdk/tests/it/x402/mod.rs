//! `X402Client` against merchants that attack it (issue 27, items 4–6): a real Anvil, a real
//! policy service, and merchants served from this test on real sockets, which settle (or not)
//! through the real token, Permit2 and x402 proxy as a facilitator would.
//!
//! This module holds the shared fixtures: the `Shop` (devnet, wallet, policy service) and the
//! helpers `buy` and `refused`. The merchant is in `merchant`, the facilitator's settlement in
//! `facilitator`; the tests, by item, in `settlement` (4), `origin` (5) and `outstanding` (6).

mod bodies;
mod facilitator;
mod merchant;
mod origin;
mod outstanding;
mod settlement;

use alloy::providers::{DynProvider, Provider};
use chaperone_chain::{
    AgentWallet, Devnet, NewWallet, TestToken, WalletStart, deploy, install_x402_contracts,
};
use chaperone_core::{Address, B256, PERMIT2, Secp256k1Signer, U256};
use chaperone_sdk::{Counterfactual, Error, Wallet, WalletConfig, X402Client, X402Payment};
use chaperone_server::WalletConfig as Registered;
use chaperone_testkit::{devnet, private_file, provider};

use crate::Server;
use merchant::Merchant;

/// The price of everything here, in the token's base units.
const PRICE: u64 = 10;

/// A devnet with the x402 contracts, a token, an agent's wallet that may pay it by EIP-3009
/// and Permit2 (budget: 100 per authorization, 8 a period), a policy service that co-signs
/// up to 100 a payment, and a facilitator account.
struct Shop {
    devnet: Devnet,
    provider: DynProvider,
    facilitator: DynProvider,
    token: Address,
    wallet: Address,
    agent: Secp256k1Signer,
    /// The policy service's co-signer.
    cosigner: Address,
    pay_to: Address,
    payer: Wallet,
    _server: Server,
}

impl Shop {
    async fn open() -> Self {
        Self::open_with(false).await
    }

    /// With `counterfactual`, the wallet is a payment wallet not deployed yet: its first
    /// payment carries the factory call (ERC-6492).
    async fn open_with(counterfactual: bool) -> Self {
        let devnet = devnet();
        let (provider, facilitator) = (provider(&devnet, 0), provider(&devnet, 1));
        install_x402_contracts(&provider).await.unwrap();
        let deployment = deploy(&provider).await.unwrap();
        let (agent, cosigner) = (
            Secp256k1Signer::random().unwrap(),
            Secp256k1Signer::random().unwrap(),
        );
        let token = *TestToken::deploy(&provider).await.unwrap().address();
        let owner = devnet.signer(0).address();
        // Either way: a backstop of 10,000 a day, 8 authorizations of at most 100.
        let (wallet, counterfactual) = if counterfactual {
            let c = Counterfactual {
                factory: deployment.wallet_factory,
                owner,
                cosigner: cosigner.address(),
                salt: B256::ZERO,
                token,
                limit: U256::from(10_000),
                period: 86_400,
                max_value: U256::from(100),
                slots: 8,
                permit2_slots: 8,
            };
            (
                c.address(&provider, agent.address()).await.unwrap(),
                Some(c),
            )
        } else {
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
            for call in [
                contract
                    .setBackstop(token, U256::from(10_000), 86_400)
                    .send()
                    .await,
                contract
                    .setAuthorizationBudget(token, U256::from(100), 8, 8)
                    .send()
                    .await,
            ] {
                call.unwrap().watch().await.unwrap();
            }
            (wallet, None)
        };
        TestToken::new(token, &provider)
            .mint(wallet, U256::from(10_000))
            .send()
            .await
            .unwrap()
            .watch()
            .await
            .unwrap();
        let policy = private_file("policy").with_extension("toml");
        std::fs::write(
            &policy,
            format!(
                r#"version = 1
mode = "enforce"
chains = [31337]
[[limits]]
token = "{token}"
per_transaction = "100"
[[typed_data]]
primary_type = "TransferWithAuthorization"
verifying_contract = "{token}"
[[typed_data]]
primary_type = "PermitWitnessTransferFrom"
verifying_contract = "{PERMIT2}"
"#
            ),
        )
        .unwrap();
        let rpc_url = devnet.rpc_url();
        let cosigner_address = cosigner.address();
        let server = Server::start_with(0, None, cosigner, |config| {
            config.rpc_url = Some(rpc_url.clone());
            config.wallets = vec![Registered {
                address: wallet,
                agent: agent.address(),
                policy: policy.clone(),
                install: Default::default(),
            }];
        })
        .await;
        let mut config = WalletConfig::new(&server.url, devnet.rpc_url(), wallet);
        config.counterfactual = counterfactual;
        let payer = Wallet::connect(config, agent.clone()).await.unwrap();
        Self {
            provider,
            facilitator,
            token,
            wallet,
            agent,
            cosigner: cosigner_address,
            pay_to: Address::repeat_byte(0x42),
            payer,
            devnet,
            _server: server,
        }
    }

    /// Moves chain time `seconds` ahead and mines a block there.
    async fn travel(&self, seconds: u64) {
        self.provider
            .raw_request::<_, serde_json::Value>("evm_increaseTime".into(), (seconds,))
            .await
            .unwrap();
        self.provider
            .raw_request::<_, serde_json::Value>("evm_mine".into(), ())
            .await
            .unwrap();
    }

    fn client(&self) -> X402Client {
        X402Client::new(self.payer.clone())
    }

    async fn balance(&self, of: Address) -> U256 {
        TestToken::new(self.token, &self.provider)
            .balanceOf(of)
            .call()
            .await
            .unwrap()
    }

    /// Moves `amount` of the token from the facilitator's account (not the wallet) to
    /// `to` with a plain ERC-20 transfer: a payment that is not the agent's.
    async fn unrelated_transfer(&self, to: Address, amount: u64) -> B256 {
        let token = TestToken::new(self.token, &self.facilitator);
        let from = self.devnet.signer(1).address();
        token
            .mint(from, U256::from(amount))
            .send()
            .await
            .unwrap()
            .watch()
            .await
            .unwrap();
        token
            .transfer(to, U256::from(amount))
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap()
            .transaction_hash
    }
}

/// Buys `path` from `merchant`; the payment it made.
async fn buy(client: &X402Client, merchant: &Merchant, path: &str) -> X402Payment {
    let bought = client.get(&merchant.url(path)).await.unwrap();
    assert_eq!(bought.response.status(), 200);
    bought.payment.expect("a payment")
}

/// The `PaymentRefused` error's payment.
fn refused(answer: chaperone_sdk::Result<chaperone_sdk::X402Response>) -> X402Payment {
    match answer {
        Err(Error::PaymentRefused { payment, .. }) => *payment,
        other => panic!("expected the payment refused, got {other:?}"),
    }
}

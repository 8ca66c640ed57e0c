//! End to end on a real Anvil: the service runs on a real socket, the agent asks it for a
//! co-signature over HTTP, and the wallet executes (or refuses) on chain.

use alloy::{
    primitives::{Address, B256, Bytes, U256},
    providers::{DynProvider, Provider},
    rpc::types::TransactionRequest,
    sol_types::SolCall,
};
use chaperone_api::{Payment, PaymentAuthorization, Permit2Payment};
use chaperone_chain::{AgentWallet, Devnet, NewWallet, TestToken, WalletStart, deploy};
use chaperone_core::{Call, Execute, Secp256k1Signer, policy::Policy};
use chaperone_server::{AppState, Indexer, app};
use chaperone_store::{Store, WalletRecord};
use chaperone_testkit::{
    devnet, provider, serve, sign, signed_cosign, signed_cosign_json, sqlite_file,
};
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

    let router = app(AppState::new(store.clone(), cosigner, chain_id).with_chain(provider.clone()));
    let url = serve(router).await;
    let token = *token.address();
    World {
        _devnet: devnet,
        store,
        provider,
        wallet,
        token,
        agent,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cosigned_payments_execute_and_the_rest_is_refused() {
    let w = world().await;
    let contract = AgentWallet::new(w.wallet, &w.provider);
    let recipient = Address::repeat_byte(0x42);

    // Within policy: the service co-signs and the wallet executes.
    let pay = w.execute(
        vec![Call {
            to: recipient,
            value: U256::from(ETHER / 2),
            data: Bytes::new(),
        }],
        0,
    );
    let (status, body) = w.cosign(&pay).await;
    assert_eq!(status, 200, "{body}");
    let cosig: Bytes = body["cosigner_signature"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    contract
        .execute(
            to_contract(&pay.calls),
            pay.nonce,
            pay.validUntil,
            w.agent_signature(&pay).await,
            cosig,
        )
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    assert_eq!(
        w.provider.get_balance(recipient).await.unwrap(),
        U256::from(ETHER / 2)
    );

    // An ERC-20 payment within policy executes too.
    let transfer = TestToken::transferCall {
        to: recipient,
        value: U256::from(40),
    }
    .abi_encode();
    let pay_token = w.execute(
        vec![Call {
            to: w.token,
            value: U256::ZERO,
            data: transfer.into(),
        }],
        1,
    );
    let (status, body) = w.cosign(&pay_token).await;
    assert_eq!(status, 200, "{body}");
    let cosig: Bytes = body["cosigner_signature"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    contract
        .execute(
            to_contract(&pay_token.calls),
            pay_token.nonce,
            pay_token.validUntil,
            w.agent_signature(&pay_token).await,
            cosig,
        )
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    let balance = TestToken::new(w.token, &w.provider)
        .balanceOf(recipient)
        .call()
        .await
        .unwrap();
    assert_eq!(balance, U256::from(40));

    // Over the per-request cap: denied, and executing without the co-signature reverts.
    let too_much = w.execute(
        vec![Call {
            to: recipient,
            value: U256::from(ETHER + 1),
            data: Bytes::new(),
        }],
        2,
    );
    let (status, body) = w.cosign(&too_much).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["reasons"][0]["code"], "per_transaction_cap");
    let agent_sig = w.agent_signature(&too_much).await;
    let err = contract
        .execute(
            to_contract(&too_much.calls),
            too_much.nonce,
            too_much.validUntil,
            agent_sig.clone(),
            agent_sig,
        )
        .call()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.as_decoded_interface_error::<AgentWallet::AgentWalletErrors>(),
            Some(AgentWallet::AgentWalletErrors::InvalidCosignerSignature(_))
        ),
        "{err}"
    );

    // The indexer sees both executions and settles their reservations (confirmations 0).
    let mut indexer = Indexer::new(w.provider.clone(), w.store.clone(), None, 0, 0);
    let report = indexer.tick().await.unwrap();
    assert!(report.events >= 2, "both executions indexed: {report:?}");
    for nonce in [0u64, 1] {
        assert_eq!(
            w.store
                .settle_execution(w.wallet, U256::from(nonce))
                .await
                .unwrap(),
            0,
            "Executed({nonce}) already settled by the indexer"
        );
    }
    let committed = async || {
        w.store
            .committed_spend(w.wallet, chaperone_core::policy::Token::Native)
            .await
            .unwrap()
            .0
    };
    let before = committed().await;

    // A co-signed request that is never executed is released only once a confirmed block
    // mined after its validUntil has been indexed, never by the wall clock alone.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut unused = w.execute(
        vec![Call {
            to: recipient,
            value: U256::from(ETHER / 4),
            data: Bytes::new(),
        }],
        2,
    );
    unused.validUntil = now + 30;
    let (status, body) = w.cosign(&unused).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(committed().await, before + U256::from(ETHER / 4));
    indexer.tick().await.unwrap();
    assert_eq!(
        committed().await,
        before + U256::from(ETHER / 4),
        "no block after validUntil yet"
    );
    let _: String = w
        .provider
        .raw_request("evm_mine".into(), (now + 31,))
        .await
        .unwrap();
    indexer.tick().await.unwrap();
    assert_eq!(
        committed().await,
        before,
        "released after a block past validUntil"
    );

    // An approve beyond the token budget is denied: an approval is spend.
    let approve = TestToken::approveCall {
        spender: recipient,
        value: U256::from(101),
    }
    .abi_encode();
    let (status, body) = w
        .cosign(&w.execute(
            vec![Call {
                to: w.token,
                value: U256::ZERO,
                data: approve.into(),
            }],
            2,
        ))
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["reasons"][0]["code"], "per_transaction_cap");
}

/// Permit2 reports no event when it uses a nonce, so an x402 Permit2 payment's reservation is
/// settled only when the indexer finds the nonce used in Permit2's bitmap. The attack it stops:
/// pay with Permit2, wait past the deadline, and the spend would be released as if never made,
/// freeing the window for more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permit2_payment_keeps_counting_after_its_deadline() {
    use chaperone_chain::{install_x402_contracts, x402_proxy};
    use chaperone_core::{
        PERMIT2_SLOTS, PermitWitnessTransferFrom, TokenPermissions, Witness, X402_PERMIT2_PROXY,
        authorization_nonce, policy::Token,
    };

    let w = world().await;
    install_x402_contracts(&w.provider).await.unwrap();
    let contract = AgentWallet::new(w.wallet, &w.provider);
    contract
        .setAuthorizationBudget(w.token, U256::from(100), 5, 5)
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    let chain_id = w.provider.get_chain_id().await.unwrap();
    let policy = Policy::from_json(
        &json!({
            "version": 2,
            "chains": [chain_id],
            "limits": [{ "token": w.token.to_string(), "per_transaction": "100",
                         "windows": [{ "window": "24h", "max": "1000" }] }],
            "typed_data": [{ "primary_type": "PermitWitnessTransferFrom",
                             "verifying_contract": chaperone_core::PERMIT2.to_string() }],
        })
        .to_string(),
    )
    .unwrap();
    w.store.set_policy(w.wallet, &policy, 1).await.unwrap();
    let period = contract
        .authorizationNonce(w.token, 0)
        .call()
        .await
        .unwrap();
    let period = u64::try_from(U256::from_be_bytes(period.0) >> 192usize).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let merchant = Address::repeat_byte(0x77);
    let permit = |slot: u32, amount: u64| PermitWitnessTransferFrom {
        permitted: TokenPermissions {
            token: w.token,
            amount: U256::from(amount),
        },
        spender: X402_PERMIT2_PROXY,
        nonce: authorization_nonce(period, slot).into(),
        deadline: U256::from(now + 20),
        witness: Witness {
            to: merchant,
            validAfter: U256::ZERO,
        },
    };
    let cosign = async |message: &PermitWitnessTransferFrom| {
        let payment = Payment::Permit2(Permit2Payment {
            message: message.clone(),
        });
        let request = signed_cosign(&w.agent, chain_id, w.wallet, payment);
        let response = alloy::transports::http::reqwest::Client::new()
            .post(format!("{}/v1/cosign", w.url))
            .header("content-type", "application/json")
            .body(serde_json::to_string(&request).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let answer: serde_json::Value = response.json().await.unwrap();
        let cosignature: Bytes = answer["cosigner_signature"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        message.wallet_signature(&request.agent_signature, &cosignature)
    };

    // Paid through the x402 proxy; a second one co-signed and never used (Permit2's slots).
    let paid = permit(PERMIT2_SLOTS, 60);
    let signature = cosign(&paid).await;
    cosign(&permit(PERMIT2_SLOTS + 1, 30)).await;
    x402_proxy::X402ExactPermit2Proxy::new(X402_PERMIT2_PROXY, &w.provider)
        .settle(
            x402_proxy::Permit2::PermitTransferFrom {
                permitted: x402_proxy::Permit2::TokenPermissions {
                    token: w.token,
                    amount: paid.permitted.amount,
                },
                nonce: paid.nonce,
                deadline: paid.deadline,
            },
            w.wallet,
            x402_proxy::X402ExactPermit2Proxy::Witness {
                to: merchant,
                validAfter: U256::ZERO,
            },
            signature,
        )
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    let balance = TestToken::new(w.token, &w.provider)
        .balanceOf(merchant)
        .call()
        .await
        .unwrap();
    assert_eq!(balance, U256::from(60), "paid through Permit2");

    let committed = async || {
        w.store
            .committed_spend(w.wallet, Token::Erc20(w.token))
            .await
            .unwrap()
            .0
    };
    assert_eq!(committed().await, U256::from(90), "both reserved");
    // Past both deadlines, with a block to show it.
    let _: String = w
        .provider
        .raw_request("evm_mine".into(), (now + 21,))
        .await
        .unwrap();
    let mut indexer = Indexer::new(w.provider.clone(), w.store.clone(), None, 0, 0);
    indexer.tick().await.unwrap();
    assert_eq!(
        committed().await,
        U256::from(60),
        "the used Permit2 nonce keeps its spend; only the unused one is released"
    );
}

/// Co-signatures the wallet's EIP-1271 could never honour are refused before anything is
/// reserved: they would hold window spend until they expire, for nothing (the second review
/// had all of these approved). Read from the wallet on a real Anvil.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorizations_the_wallet_cannot_honour_are_refused_and_reserve_nothing() {
    use chaperone_core::{
        Eip3009Kind, PERMIT2_SLOTS, PermitWitnessTransferFrom, TokenDomain, TokenPermissions,
        TransferWithAuthorization, Witness, X402_PERMIT2_PROXY, authorization_nonce, policy::Token,
    };

    let w = world().await;
    let chain_id = w.provider.get_chain_id().await.unwrap();
    AgentWallet::new(w.wallet, &w.provider)
        .setAuthorizationBudget(w.token, U256::from(100), 2, 1)
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    let policy = Policy::from_json(
        &json!({
            "version": 2,
            "chains": [chain_id],
            "limits": [{ "token": w.token.to_string(), "per_transaction": "1000" }],
            "typed_data": [
                { "primary_type": "TransferWithAuthorization", "verifying_contract": w.token.to_string() },
                { "primary_type": "PermitWitnessTransferFrom",
                  "verifying_contract": chaperone_core::PERMIT2.to_string() },
            ],
        })
        .to_string(),
    )
    .unwrap();
    w.store.set_policy(w.wallet, &policy, 1).await.unwrap();
    let block = w
        .provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .unwrap()
        .unwrap();
    let (now, period) = (block.header.timestamp, block.header.timestamp / 86_400);
    let domain = TokenDomain {
        name: TestToken::new(w.token, &w.provider)
            .name()
            .call()
            .await
            .unwrap(),
        version: "1".into(),
        chain_id,
        verifying_contract: w.token,
    };
    let merchant = Address::repeat_byte(0x77);
    let eip3009 = |value: u64, period: u64, slot: u32| {
        let message = TransferWithAuthorization {
            from: w.wallet,
            to: merchant,
            value: U256::from(value),
            validAfter: U256::ZERO,
            validBefore: U256::from(now + 60),
            nonce: authorization_nonce(period, slot),
        };
        let authorization = PaymentAuthorization {
            primary_type: Eip3009Kind::TransferWithAuthorization,
            domain: domain.clone(),
            message,
        };
        signed_cosign_json(
            &w.agent,
            chain_id,
            w.wallet,
            Payment::Eip3009(authorization),
        )
    };
    let permit2 = |slot: u32| {
        let message = PermitWitnessTransferFrom {
            permitted: TokenPermissions {
                token: w.token,
                amount: U256::from(10),
            },
            spender: X402_PERMIT2_PROXY,
            nonce: authorization_nonce(period, slot).into(),
            deadline: U256::from(now + 60),
            witness: Witness {
                to: merchant,
                validAfter: U256::ZERO,
            },
        };
        signed_cosign_json(
            &w.agent,
            chain_id,
            w.wallet,
            Payment::Permit2(Permit2Payment { message }),
        )
    };
    let cosign = async |body: serde_json::Value| {
        let response = alloy::transports::http::reqwest::Client::new()
            .post(format!("{}/v1/cosign", w.url))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json::<serde_json::Value>().await.unwrap())
    };
    for (what, body, code) in [
        (
            "a Permit2 slot for EIP-3009",
            eip3009(10, period, PERMIT2_SLOTS),
            "nonce_outside_slots",
        ),
        (
            "beyond every slot",
            eip3009(10, period, 2),
            "nonce_outside_slots",
        ),
        (
            "an EIP-3009 slot for Permit2",
            permit2(0),
            "nonce_outside_slots",
        ),
        (
            "beyond Permit2's slot",
            permit2(PERMIT2_SLOTS + 1),
            "nonce_outside_slots",
        ),
        ("above maxValue", eip3009(101, period, 0), "over_max_value"),
        (
            "a past period",
            eip3009(10, period - 1, 0),
            "nonce_of_another_period",
        ),
        (
            "a future period",
            eip3009(10, period + 1, 0),
            "nonce_of_another_period",
        ),
    ] {
        let (status, answer) = cosign(body).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (422, Some(code)),
            "{what}: {answer}"
        );
    }
    let committed = w
        .store
        .committed_spend(w.wallet, Token::Erc20(w.token))
        .await
        .unwrap()
        .0;
    assert_eq!(
        committed,
        U256::ZERO,
        "nothing reserved for what cannot pay"
    );
    // What the wallet can honour is co-signed as before.
    for body in [eip3009(10, period, 1), permit2(PERMIT2_SLOTS)] {
        let (status, answer) = cosign(body).await;
        assert_eq!(status, 200, "{answer}");
    }
}

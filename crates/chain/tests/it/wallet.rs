use alloy::{
    primitives::{Address, B256, Bytes, U256},
    providers::Provider,
    sol_types::SolCall,
};
use chaperone_chain::{AgentWallet, AgentWalletFactory, NewWallet, TestToken, WalletStart};
use chaperone_core::{Call, Execute, Secp256k1Signer};

use crate::Fixture;

struct Wallet {
    fx: Fixture,
    wallet: Address,
    agent: Secp256k1Signer,
    cosigner: Secp256k1Signer,
}

async fn wallet() -> Wallet {
    let fx = Fixture::new().await;
    let agent = Secp256k1Signer::random().unwrap();
    let cosigner = Secp256k1Signer::random().unwrap();
    let owner = fx.devnet.signer(0).address();
    let factory = AgentWalletFactory::new(fx.deployment.wallet_factory, &fx.provider);
    let salt = B256::repeat_byte(1);
    let predicted = factory
        .predict(owner, agent.address(), cosigner.address(), salt)
        .call()
        .await
        .unwrap();
    let receipt = factory
        .createWallet(owner, agent.address(), cosigner.address(), salt)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    let created = receipt
        .decoded_log::<AgentWalletFactory::WalletCreated>()
        .unwrap();
    assert_eq!(created.wallet, predicted, "CREATE2 address was predicted");
    Wallet {
        fx,
        wallet: predicted,
        agent,
        cosigner,
    }
}

fn sign(signer: &Secp256k1Signer, digest: &B256) -> Bytes {
    signer
        .sign_digest(digest)
        .unwrap()
        .as_bytes()
        .to_vec()
        .into()
}

fn to_contract_calls(calls: &[Call]) -> Vec<AgentWallet::Call> {
    calls.iter().map(Into::into).collect()
}

#[tokio::test]
async fn cosigned_eth_transfer_executes_and_single_signature_reverts() {
    let w = wallet().await;
    let provider = &w.fx.provider;
    let contract = AgentWallet::new(w.wallet, provider);
    // The owner (dev account 0) sets a native backstop and funds the wallet.
    contract
        .setBackstop(Address::ZERO, U256::from(10u64.pow(18) * 10), 86_400)
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    let fund = alloy::rpc::types::TransactionRequest::default()
        .to(w.wallet)
        .value(U256::from(5u64) * U256::from(10u64.pow(18)));
    provider
        .send_transaction(fund)
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();

    let recipient = Address::repeat_byte(0x42);
    let amount = U256::from(10u64.pow(18));
    let execute = Execute {
        calls: vec![Call {
            to: recipient,
            value: amount,
            data: Bytes::new(),
        }],
        nonce: U256::ZERO,
        validUntil: u64::MAX,
    };
    let chain_id = provider.get_chain_id().await.unwrap();
    let digest = execute.digest(chain_id, w.wallet);
    // The Rust EIP-712 digest is the contract's.
    let on_chain = contract
        .executeDigest(
            to_contract_calls(&execute.calls),
            execute.nonce,
            execute.validUntil,
        )
        .call()
        .await
        .unwrap();
    assert_eq!(on_chain, digest);

    // Only the agent (twice): reverts with the contract's custom error, and moves nothing.
    let agent_sig = sign(&w.agent, &digest);
    let err = contract
        .execute(
            to_contract_calls(&execute.calls),
            execute.nonce,
            execute.validUntil,
            agent_sig.clone(),
            agent_sig.clone(),
        )
        .call()
        .await
        .unwrap_err();
    let decoded = err.as_decoded_interface_error::<AgentWallet::AgentWalletErrors>();
    assert!(
        matches!(
            decoded,
            Some(AgentWallet::AgentWalletErrors::InvalidCosignerSignature(_))
        ),
        "{err}"
    );
    assert_eq!(provider.get_balance(recipient).await.unwrap(), U256::ZERO);

    // Both signatures, submitted by an unrelated relayer account: executes.
    let relayer = chaperone_testkit::provider(&w.fx.devnet, 3);
    let receipt = AgentWallet::new(w.wallet, &relayer)
        .execute(
            to_contract_calls(&execute.calls),
            execute.nonce,
            execute.validUntil,
            agent_sig,
            sign(&w.cosigner, &digest),
        )
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    let executed = receipt.decoded_log::<AgentWallet::Executed>().unwrap();
    assert_eq!(executed.nonce, U256::ZERO);
    assert_eq!(
        executed.digest, digest,
        "the event names the EIP-712 digest both keys signed (the request id)"
    );
    assert_eq!(provider.get_balance(recipient).await.unwrap(), amount);
    assert_eq!(
        contract
            .nextNonce(alloy::primitives::aliases::U192::ZERO)
            .call()
            .await
            .unwrap(),
        U256::from(1)
    );
}

#[tokio::test]
async fn cosigned_erc20_transfer_counts_against_the_backstop() {
    let w = wallet().await;
    let provider = &w.fx.provider;
    let token = TestToken::deploy(provider).await.unwrap();
    token
        .mint(w.wallet, U256::from(1000))
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    let contract = AgentWallet::new(w.wallet, provider);
    contract
        .setBackstop(*token.address(), U256::from(100), 3600)
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    let chain_id = provider.get_chain_id().await.unwrap();

    let pay = |amount: u64, nonce: u64| {
        let data = TestToken::transferCall {
            to: Address::repeat_byte(7),
            value: U256::from(amount),
        }
        .abi_encode();
        Execute {
            calls: vec![Call {
                to: *token.address(),
                value: U256::ZERO,
                data: data.into(),
            }],
            nonce: U256::from(nonce),
            validUntil: u64::MAX,
        }
    };
    let execute_call = |e: Execute| {
        let digest = e.digest(chain_id, w.wallet);
        let (a, c) = (sign(&w.agent, &digest), sign(&w.cosigner, &digest));
        contract.execute(to_contract_calls(&e.calls), e.nonce, e.validUntil, a, c)
    };
    execute_call(pay(60, 0))
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    assert_eq!(
        token
            .balanceOf(Address::repeat_byte(7))
            .call()
            .await
            .unwrap(),
        U256::from(60)
    );

    // A revert is shown by simulating the call (a failed send would still use up a nonce).
    let err = execute_call(pay(50, 1)).call().await.unwrap_err();
    match err.as_decoded_interface_error::<AgentWallet::AgentWalletErrors>() {
        Some(AgentWallet::AgentWalletErrors::BackstopExceeded(e)) => {
            assert_eq!((e.amount, e.remaining), (U256::from(50), U256::from(40)));
        }
        other => panic!("expected BackstopExceeded, got {other:?} ({err})"),
    }
}

/// Each `NewWallet` start deploys where its own prediction says, with the settings that
/// prediction bound; another limit predicts another address.
#[tokio::test]
async fn a_new_wallet_lands_where_predicted_with_its_backstop() {
    let fx = Fixture::new().await;
    let owner = fx.devnet.signer(0).address();
    let (agent, cosigner) = (Address::repeat_byte(0xA1), Address::repeat_byte(0xC0));
    let ready = NewWallet {
        factory: fx.deployment.wallet_factory,
        owner,
        agent,
        cosigner,
        salt: B256::repeat_byte(2),
        start: WalletStart::Backstop {
            token: Address::ZERO,
            limit: U256::from(10u64).pow(U256::from(18)),
            period: 86_400,
        },
    };
    let predicted = ready.predict(&fx.provider).await.unwrap();
    let bare = NewWallet {
        start: WalletStart::Bare,
        ..ready
    };
    let greedy = NewWallet {
        start: WalletStart::Backstop {
            token: Address::ZERO,
            limit: U256::from(u128::MAX),
            period: 86_400,
        },
        ..ready
    };
    for other in [bare, greedy] {
        let address = other.predict(&fx.provider).await.unwrap();
        assert_ne!(
            address, predicted,
            "{other:?} would land on the ready wallet"
        );
    }
    // Taking the other addresses first changes nothing for the ready wallet.
    bare.create(&fx.provider).await.unwrap();
    assert_eq!(ready.create(&fx.provider).await.unwrap(), predicted);
    let backstop = AgentWallet::new(predicted, &fx.provider)
        .backstop(Address::ZERO)
        .call()
        .await
        .unwrap();
    assert_eq!(
        U256::from(backstop.limit),
        U256::from(10u64).pow(U256::from(18))
    );
    assert_eq!(backstop.period, 86_400);
}

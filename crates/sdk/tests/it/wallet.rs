//! `Wallet` on a real Anvil with a real server: co-signed, denied, pending then approved,
//! EIP-3009 through EIP-1271, and a server that is not there.

use std::time::Duration;

use alloy::{providers::Provider, rpc::types::TransactionRequest, sol_types::SolCall};
use chaperone_chain::{AgentWallet, NewWallet, TestToken, WalletStart, deploy};
use chaperone_core::{Address, B256, Secp256k1Signer, U256, policy::Reason};
use chaperone_sdk::{Error, ErrorCode, Payment, TokenDomain, Wallet, WalletConfig};
use chaperone_server::WalletConfig as Registered;

use chaperone_testkit::{devnet, private_file, provider};

use crate::{ADMIN, Server};

const MILLI: u64 = 1_000_000_000_000_000;

/// A payment of `milli` thousandths of an ether.
fn native(to: Address, milli: u64) -> Payment {
    Payment {
        token: None,
        to,
        amount: U256::from(milli * MILLI),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pays_within_policy_waits_for_approval_and_signs_authorizations() {
    let devnet = devnet();
    let deployer = devnet.signer(0);
    let provider = provider(&devnet, 0);
    let deployment = deploy(&provider).await.unwrap();
    let (agent, cosigner) = (
        Secp256k1Signer::random().unwrap(),
        Secp256k1Signer::random().unwrap(),
    );
    let wallet = NewWallet {
        factory: deployment.wallet_factory,
        owner: deployer.address(),
        agent: agent.address(),
        cosigner: cosigner.address(),
        salt: B256::ZERO,
        start: WalletStart::Bare,
    }
    .create(&provider)
    .await
    .unwrap();
    let token = TestToken::deploy(&provider).await.unwrap();
    for (to, amount) in [(wallet, 10_000 * MILLI), (agent.address(), 1_000 * MILLI)] {
        let tx = TransactionRequest::default()
            .to(to)
            .value(U256::from(amount));
        provider
            .send_transaction(tx)
            .await
            .unwrap()
            .watch()
            .await
            .unwrap();
    }
    AgentWallet::new(wallet, &provider)
        .setBackstop(Address::ZERO, U256::from(730 * MILLI), 86_400)
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    // EIP-1271 payments of the token: three authorizations a day of at most 100 units.
    token
        .mint(wallet, U256::from(1_000))
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    AgentWallet::new(wallet, &provider)
        .setBackstop(*token.address(), U256::from(1_000), 86_400)
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    AgentWallet::new(wallet, &provider)
        .setAuthorizationBudget(*token.address(), U256::from(100), 3, 3)
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
token = "native"
per_transaction = "1000000000000000000"
windows = [{{ window = "1h", max = "3000000000000000000" }}]
[[limits]]
token = "{token}"
per_transaction = "100"
[approval]
expires_after = "1h"
above = [{{ token = "native", amount = "500000000000000000" }}]
[[typed_data]]
primary_type = "TransferWithAuthorization"
verifying_contract = "{token}"
"#,
            token = token.address()
        ),
    )
    .unwrap();
    let rpc_url = devnet.rpc_url();
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
    config.approval_poll = Duration::from_millis(200);
    let payer = Wallet::connect(config, agent.clone()).await.unwrap();
    let vendor = Address::repeat_byte(0x42);
    let balance = || async { provider.get_balance(vendor).await.unwrap() };

    // Within policy: co-signed and executed.
    let executed = payer.pay(native(vendor, 100)).await.unwrap();
    assert!(executed.gas_used > 0);
    assert_eq!(balance().await, U256::from(100 * MILLI));

    // Over the per-payment cap: denied with the reason, nothing moves.
    match payer.pay(native(vendor, 2_000)).await {
        Err(Error::Denied { reasons, .. }) => assert!(
            reasons
                .iter()
                .any(|r| matches!(r, Reason::PerTransactionCap { .. })),
            "{reasons:?}"
        ),
        other => panic!("expected a denial, got {other:?}"),
    }
    assert_eq!(balance().await, U256::from(100 * MILLI));

    // Above the approval threshold: pending until an approver says yes, then executed.
    let pending = match payer.pay(native(vendor, 600)).await {
        Err(Error::Pending(pending)) => *pending,
        other => panic!("expected pending, got {other:?}"),
    };
    // A payment waiting for a human does not block the next one (it takes another nonce key).
    payer.pay(native(vendor, 10)).await.unwrap();
    let approve = format!(
        "{}/v1/admin/approvals/{}/approve",
        server.url, pending.request_id
    );
    let approver = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let status = reqwest::Client::new()
            .post(approve)
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "approving: {status}");
    });
    let executed = payer
        .wait_for_approval(pending, Duration::from_secs(30))
        .await
        .unwrap();
    approver.await.unwrap();
    assert_eq!(executed.request_id.len(), 32);
    assert_eq!(balance().await, U256::from(710 * MILLI));

    // The policy would allow 0.1 ETH more, the on-chain backstop (0.73 ETH a day) does not:
    // the revert comes back by name, and the next payment is not stuck behind a nonce gap.
    match payer.pay(native(vendor, 100)).await {
        Err(Error::Chain(reason)) => assert!(reason.contains("BackstopExceeded"), "{reason}"),
        other => panic!("expected the backstop to revert, got {other:?}"),
    }
    payer.pay(native(vendor, 10)).await.unwrap();
    assert_eq!(balance().await, U256::from(720 * MILLI));
    // Key 0 (packed with the wallet's configuration, no extra storage write) served every
    // payment but the one made while another waited: the revert did not use up its nonce.
    let next = AgentWallet::new(wallet, &provider)
        .nextNonce(alloy::primitives::aliases::U192::ZERO)
        .call()
        .await
        .unwrap();
    assert_eq!(next, U256::from(3));

    // EIP-3009 through EIP-1271: valid with both signatures, and only for this hash.
    let domain = TokenDomain {
        name: "Test Token".into(),
        version: "1".into(),
        chain_id: 31337,
        verifying_contract: *token.address(),
    };
    let signed = payer
        .sign_payment_authorization(
            domain.clone(),
            vendor,
            U256::from(50),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let contract = AgentWallet::new(wallet, &provider);
    let magic = contract
        .isValidSignature(signed.hash, signed.signature.clone())
        .call()
        .await
        .unwrap();
    assert_eq!(magic.0, AgentWallet::isValidSignatureCall::SELECTOR);
    let other = contract
        .isValidSignature(B256::repeat_byte(1), signed.signature.clone())
        .call()
        .await
        .unwrap();
    assert_ne!(other.0, AgentWallet::isValidSignatureCall::SELECTOR);
    // A facilitator settles it through the token; the replayed header is refused by the token,
    // and the next authorization takes the next slot.
    let m = &signed.message;
    let settle = token.transferWithAuthorization(
        m.from,
        m.to,
        m.value,
        m.validAfter,
        m.validBefore,
        m.nonce,
        signed.signature.clone(),
    );
    settle.send().await.unwrap().watch().await.unwrap();
    assert_eq!(
        token.balanceOf(vendor).call().await.unwrap(),
        U256::from(50)
    );
    assert!(settle.call().await.is_err(), "replay refused by the token");
    let next = payer
        .sign_payment_authorization(
            domain.clone(),
            vendor,
            U256::from(1),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_ne!(next.message.nonce, signed.message.nonce, "the next slot");
    // Over what one authorization of the wallet may move: refused before the policy is even
    // asked, nothing reserved (and its slot, the third, stays free).
    let over = payer
        .sign_payment_authorization(
            domain.clone(),
            vendor,
            U256::from(500),
            Duration::from_secs(60),
        )
        .await;
    assert!(
        matches!(
            &over,
            Err(Error::Refused {
                status: 422,
                code: ErrorCode::OverMaxValue,
                ..
            })
        ),
        "{over:?}"
    );
    let third = payer
        .sign_payment_authorization(
            domain.clone(),
            vendor,
            U256::from(1),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    // Every slot of the period is now used or in flight: refused before asking the service.
    assert!(matches!(
        payer
            .sign_payment_authorization(domain, vendor, U256::from(1), Duration::from_secs(60))
            .await,
        Err(Error::Refused { status: 409, .. })
    ));
    assert_ne!(third.message.nonce, next.message.nonce);

    // No server: a typed error, not a panic.
    let offline = Wallet::connect(
        WalletConfig::new("http://127.0.0.1:9", devnet.rpc_url(), wallet),
        agent,
    )
    .await
    .unwrap();
    assert!(matches!(
        offline
            .pay(Payment {
                token: None,
                to: vendor,
                amount: U256::from(1)
            })
            .await,
        Err(Error::Unreachable { .. })
    ));
}

//! Total transaction gas (base + calldata + execution, what a user pays) of Chaperone's common
//! transactions, measured on a real Anvil from the pinned toolchain:
//!
//! ```text
//! cargo run --release -p chaperone-chain --example gas
//! ```
//!
//! Each wallet scenario measures the *second* transaction of its kind (nonce slot, backstop
//! window and the recipient's balance already exist), as the Safe reference figures do.
#![allow(clippy::unwrap_used)]

use alloy::{
    network::EthereumWallet,
    primitives::{Address, B256, Bytes, U256},
    providers::{Provider, ProviderBuilder},
    rpc::types::TransactionRequest,
    signers::local::PrivateKeySigner,
    sol_types::SolCall,
};
use chaperone_chain::{
    AgentWallet, AgentWalletFactory, AuditLog, Devnet, MULTICALL3, Multicall3, TestToken, deploy,
    install_x402_contracts, x402_proxy,
};
use chaperone_core::{
    AgentMessage, Call, Eip3009Kind, Execute, MerkleLog, PermitWitnessTransferFrom,
    Secp256k1Signer, TokenDomain, TokenPermissions, TransferWithAuthorization, Witness,
    X402_PERMIT2_PROXY, leaf_hash,
};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let devnet = Devnet::start().unwrap_or_else(|e| panic!("{e}"));
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(devnet.signer(0)))
        .connect_http(devnet.rpc_url().parse().unwrap());
    let deployment = deploy(&provider).await.unwrap();
    // Permit2 and the x402 proxy, as on the chains x402 runs on (also in `chaperone up`).
    install_x402_contracts(&provider).await.unwrap();
    let chain_id = provider.get_chain_id().await.unwrap();
    let owner = devnet.signer(0).address();
    let (agent, cosigner) = (
        Secp256k1Signer::random().unwrap(),
        Secp256k1Signer::random().unwrap(),
    );
    let mut rows = Vec::new();

    // Wallet creation through the factory, with owner, agent and co-signer set.
    let factory = AgentWalletFactory::new(deployment.wallet_factory, &provider);
    let receipt = factory
        .createWallet(owner, agent.address(), cosigner.address(), B256::ZERO)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    rows.push(("AgentWalletFactory.createWallet", receipt.gas_used));
    let wallet_address = receipt
        .decoded_log::<AgentWalletFactory::WalletCreated>()
        .unwrap()
        .wallet;
    let wallet = AgentWallet::new(wallet_address, &provider);

    // A ready wallet in one transaction: created with its first backstop.
    let receipt = factory
        .createWalletWithBackstop(
            owner,
            agent.address(),
            cosigner.address(),
            B256::repeat_byte(1),
            Address::ZERO,
            U256::from(10u64).pow(U256::from(18)),
            86_400,
        )
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    rows.push((
        "AgentWalletFactory.createWalletWithBackstop",
        receipt.gas_used,
    ));

    let token = TestToken::deploy(&provider).await.unwrap();
    token
        .mint(wallet_address, U256::from(10u64).pow(U256::from(24)))
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    let ether = U256::from(10u64).pow(U256::from(18));
    wallet
        .setBackstop(Address::ZERO, ether * U256::from(100), 86_400)
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    wallet
        .setBackstop(*token.address(), ether * U256::from(1000), 86_400)
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    provider
        .send_transaction(
            TransactionRequest::default()
                .to(wallet_address)
                .value(ether * U256::from(10)),
        )
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    let recipient = Address::repeat_byte(0x42);
    for to in [recipient, agent.address()] {
        let value = if to == recipient {
            U256::from(1)
        } else {
            ether
        };
        provider
            .send_transaction(TransactionRequest::default().to(to).value(value))
            .await
            .unwrap()
            .watch()
            .await
            .unwrap();
    }
    let agent_provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(
            PrivateKeySigner::from_bytes(&agent.to_bytes()).unwrap(),
        ))
        .connect_http(devnet.rpc_url().parse().unwrap());
    let agent_wallet = AgentWallet::new(wallet_address, &agent_provider);
    let mut nonce = 0u64;
    // Relayed (anyone sends it with both signatures) or sent by the agent itself with
    // `executeAsAgent` (its transaction signature replaces its EIP-712 one).
    let mut execute = async |call: Call, by_agent: bool| {
        let request = Execute {
            calls: vec![call],
            nonce: U256::from(nonce),
            validUntil: u64::MAX,
        };
        nonce += 1;
        let digest = request.digest(chain_id, wallet_address);
        let sign =
            |s: &Secp256k1Signer| Bytes::from(s.sign_digest(&digest).unwrap().as_bytes().to_vec());
        let calls: Vec<AgentWallet::Call> = request.calls.iter().map(Into::into).collect();
        let sent = if by_agent {
            agent_wallet
                .executeAsAgent(calls, request.nonce, request.validUntil, sign(&cosigner))
                .send()
                .await
        } else {
            wallet
                .execute(
                    calls,
                    request.nonce,
                    request.validUntil,
                    sign(&agent),
                    sign(&cosigner),
                )
                .send()
                .await
        };
        let receipt = sent.unwrap().get_receipt().await.unwrap();
        assert!(receipt.status());
        receipt.gas_used
    };
    let eth = Call {
        to: recipient,
        value: ether,
        data: Bytes::new(),
    };
    execute(eth.clone(), false).await;
    rows.push((
        "AgentWallet.execute: one ETH transfer (2nd tx)",
        execute(eth.clone(), false).await,
    ));
    rows.push((
        "AgentWallet.execute: one ETH transfer, sent by the agent",
        execute(eth, true).await,
    ));
    let transfer = TestToken::transferCall {
        to: recipient,
        value: ether,
    }
    .abi_encode();
    let erc20 = Call {
        to: *token.address(),
        value: U256::ZERO,
        data: transfer.into(),
    };
    execute(erc20.clone(), false).await;
    rows.push((
        "AgentWallet.execute: one ERC-20 transfer (2nd tx, devnet TestToken)",
        execute(erc20.clone(), false).await,
    ));
    rows.push((
        "AgentWallet.execute: one ERC-20 transfer, sent by the agent",
        execute(erc20, true).await,
    ));

    // x402: an EIP-3009 `transferWithAuthorization(…, bytes signature)` of one token relayed
    // by a facilitator (here the owner), paid by an EOA and by the wallet through its EIP-1271,
    // side by side; each the second of its kind. Permit2 is installed, as on the chains x402
    // runs on (the wallet used to read its nonce bitmap here).
    wallet
        .setAuthorizationBudget(*token.address(), ether, 10, 10)
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    let domain = TokenDomain {
        name: token.name().call().await.unwrap(),
        version: "1".into(),
        chain_id,
        verifying_contract: *token.address(),
    };
    let period = wallet
        .authorizationNonce(*token.address(), 0)
        .call()
        .await
        .unwrap();
    let period = u64::try_from(U256::from_be_bytes(period.0) >> 192usize).unwrap();
    let payer = Secp256k1Signer::random().unwrap();
    token
        .mint(payer.address(), ether * U256::from(10))
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    // `slot` of the wallet's EIP-3009 slots, or an EOA's nonce; signed as each payer signs.
    let pay = async |from: Address, slot: u32| {
        let message = TransferWithAuthorization {
            from,
            to: recipient,
            value: ether,
            validAfter: U256::ZERO,
            validBefore: U256::from(u64::MAX),
            nonce: chaperone_core::authorization_nonce(period, slot),
        };
        let hash = message.hash(&domain, Eip3009Kind::TransferWithAuthorization);
        let signature: Bytes = if from == wallet_address {
            let digest = AgentMessage { hash }.digest(chain_id, wallet_address);
            message.wallet_signature(
                *token.address(),
                Eip3009Kind::TransferWithAuthorization,
                &agent.sign_digest(&digest).unwrap().as_bytes(),
                &cosigner.sign_digest(&digest).unwrap().as_bytes(),
            )
        } else {
            payer.sign_digest(&hash).unwrap().as_bytes().to_vec().into()
        };
        let receipt = token
            .transferWithAuthorization(
                message.from,
                message.to,
                message.value,
                message.validAfter,
                message.validBefore,
                message.nonce,
                signature,
            )
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(receipt.status());
        receipt.gas_used
    };
    pay(payer.address(), 0).await;
    rows.push((
        "x402 EIP-3009: TestToken.transferWithAuthorization paid by an EOA (2nd)",
        pay(payer.address(), 1).await,
    ));
    rows.push((
        "x402 EIP-3009: the same through EIP-1271, the wallet's 1st (as measured before)",
        pay(wallet_address, 0).await,
    ));
    rows.push((
        "x402 EIP-3009: TestToken.transferWithAuthorization paid by the AgentWallet through EIP-1271 (2nd)",
        pay(wallet_address, 1).await,
    ));
    // x402 with Permit2: the x402 proxy's settle, Permit2 checking the wallet's EIP-1271.
    // The wallet's first Permit2 slot.
    let slot1 = chaperone_core::authorization_nonce(period, chaperone_core::PERMIT2_SLOTS);
    let permit = PermitWitnessTransferFrom {
        permitted: TokenPermissions {
            token: *token.address(),
            amount: ether,
        },
        spender: X402_PERMIT2_PROXY,
        nonce: slot1.into(),
        deadline: U256::from(u64::MAX),
        witness: Witness {
            to: recipient,
            validAfter: U256::ZERO,
        },
    };
    let digest = AgentMessage {
        hash: permit.hash(chain_id),
    }
    .digest(chain_id, wallet_address);
    let signature = permit.wallet_signature(
        &agent.sign_digest(&digest).unwrap().as_bytes(),
        &cosigner.sign_digest(&digest).unwrap().as_bytes(),
    );
    let receipt = x402_proxy::X402ExactPermit2Proxy::new(X402_PERMIT2_PROXY, &provider)
        .settle(
            x402_proxy::Permit2::PermitTransferFrom {
                permitted: x402_proxy::Permit2::TokenPermissions {
                    token: *token.address(),
                    amount: ether,
                },
                nonce: permit.nonce,
                deadline: permit.deadline,
            },
            wallet_address,
            x402_proxy::X402ExactPermit2Proxy::Witness {
                to: recipient,
                validAfter: U256::ZERO,
            },
            signature,
        )
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    rows.push((
        "X402ExactPermit2Proxy.settle: Permit2 through AgentWallet EIP-1271",
        receipt.gas_used,
    ));

    // ERC-6492: a payment wallet deployed by its first payment, as x402 facilitators settle
    // it (Multicall3: the factory call the signature carries, then the transfer).
    let create = AgentWalletFactory::createPaymentWalletCall {
        owner,
        agent: agent.address(),
        cosigner: cosigner.address(),
        salt: B256::with_last_byte(9),
        token: *token.address(),
        limit: ether,
        period: 86_400,
        maxValue: ether,
        slots: 10,
        permit2Slots: 10,
    };
    let counterfactual = factory
        .predictPaymentWallet(
            create.owner,
            create.agent,
            create.cosigner,
            create.salt,
            create.token,
            create.limit,
            create.period,
            create.maxValue,
            create.slots,
            create.permit2Slots,
        )
        .call()
        .await
        .unwrap();
    token
        .mint(counterfactual, ether)
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    let message = TransferWithAuthorization {
        from: counterfactual,
        to: recipient,
        value: ether,
        validAfter: U256::ZERO,
        validBefore: U256::from(u64::MAX),
        nonce: chaperone_core::authorization_nonce(period, 0),
    };
    let digest = AgentMessage {
        hash: message.hash(&domain, Eip3009Kind::TransferWithAuthorization),
    }
    .digest(chain_id, counterfactual);
    let inner = message.wallet_signature(
        *token.address(),
        Eip3009Kind::TransferWithAuthorization,
        &agent.sign_digest(&digest).unwrap().as_bytes(),
        &cosigner.sign_digest(&digest).unwrap().as_bytes(),
    );
    let pay = TestToken::transferWithAuthorizationCall {
        from: message.from,
        to: message.to,
        value: message.value,
        validAfter: message.validAfter,
        validBefore: message.validBefore,
        nonce: message.nonce,
        signature: inner,
    };
    let receipt = Multicall3::new(MULTICALL3, &provider)
        .aggregate3(vec![
            Multicall3::Call3 {
                target: deployment.wallet_factory,
                allowFailure: true,
                callData: create.abi_encode().into(),
            },
            Multicall3::Call3 {
                target: *token.address(),
                allowFailure: false,
                callData: pay.abi_encode().into(),
            },
        ])
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    rows.push((
        "Multicall3.aggregate3: deploy a payment wallet (ERC-6492) and pay 1 authorization",
        receipt.gas_used,
    ));

    // anchor at ~1,000,000 leaves, 30,000 after the previous anchor.
    let (first, second, index) = (1_000_000u64, 1_030_000u64, 123_456u64);
    let mut log = MerkleLog::new();
    for i in 0..second {
        log.append(&i.to_be_bytes());
    }
    let audit = AuditLog::new(deployment.audit_log, &provider);
    let created = audit
        .createLog(owner)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let log_id = created.decoded_log::<AuditLog::LogCreated>().unwrap().logId;
    audit
        .anchor(log_id, first, log.root_at(first).unwrap(), vec![])
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    let proof = log.consistency_proof(first, second).unwrap().path;
    let proof_len = proof.len();
    let receipt = audit
        .anchor(log_id, second, log.root(), proof)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    rows.push((
        "AuditLog.anchor: 1,000,000 -> 1,030,000 leaves",
        receipt.gas_used,
    ));

    // verifyInclusion is a view call: its execution gas comes from the forge snapshot
    // (contracts/snapshots/GasTest.json). An eth_estimateGas here would mostly measure the
    // EIP-7623 calldata floor of a transaction carrying a 20-hash proof, not the verification.
    let path = log.inclusion_proof(index, second).unwrap().path;
    assert_eq!(path.len(), 20);
    let leaf = leaf_hash(&index.to_be_bytes());
    assert!(
        audit
            .verifyInclusion(log_id, second, index, leaf, path)
            .call()
            .await
            .unwrap()
    );

    println!("| transaction | gas |\n| --- | ---: |");
    for (name, gas) in &rows {
        println!("| {name} | {gas} |");
    }
    let anchor_gas = rows
        .iter()
        .find(|(name, _)| name.starts_with("AuditLog.anchor"))
        .unwrap()
        .1;
    println!(
        "\nanchor proof: {proof_len} hashes; amortised anchoring gas: {:.2} per record",
        anchor_gas as f64 / (second - first) as f64
    );
}

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
    sol_types::SolCall,
};
use chaperone_chain::{AgentWallet, AgentWalletFactory, AuditLog, Devnet, TestToken, deploy};
use chaperone_core::{Call, Execute, MerkleLog, Secp256k1Signer, leaf_hash};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let devnet = Devnet::start().unwrap_or_else(|e| panic!("{e}"));
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(devnet.signer(0)))
        .connect_http(devnet.rpc_url().parse().unwrap());
    let deployment = deploy(&provider).await.unwrap();
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
    provider
        .send_transaction(
            TransactionRequest::default()
                .to(recipient)
                .value(U256::from(1)),
        )
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();

    let mut nonce = 0u64;
    let mut execute = async |call: Call| {
        let request = Execute {
            calls: vec![call],
            nonce: U256::from(nonce),
            validUntil: u64::MAX,
        };
        nonce += 1;
        let digest = request.digest(chain_id, wallet_address);
        let sign =
            |s: &Secp256k1Signer| Bytes::from(s.sign_digest(&digest).unwrap().as_bytes().to_vec());
        let calls = request.calls.iter().map(Into::into).collect();
        let receipt = wallet
            .execute(
                calls,
                request.nonce,
                request.validUntil,
                sign(&agent),
                sign(&cosigner),
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
    let eth = Call {
        to: recipient,
        value: ether,
        data: Bytes::new(),
    };
    execute(eth.clone()).await;
    rows.push((
        "AgentWallet.execute: one ETH transfer (2nd tx)",
        execute(eth).await,
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
    execute(erc20.clone()).await;
    rows.push((
        "AgentWallet.execute: one ERC-20 transfer (2nd tx)",
        execute(erc20).await,
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
    println!(
        "\nanchor proof: {proof_len} hashes; amortised anchoring gas: {:.2} per record",
        rows[3].1 as f64 / (second - first) as f64
    );
}

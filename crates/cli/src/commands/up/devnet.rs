//! A fresh devnet: the contracts, the audit log, a funded demo agent wallet with its backstops,
//! a counterfactual x402 wallet, and the demo policy.

use std::path::Path;

use alloy::{
    providers::Provider, rpc::types::TransactionRequest, signers::local::PrivateKeySigner,
};
use anyhow::{Context, bail};
use chaperone_chain::{AgentWallet, TestToken};
use chaperone_core::{Address, B256, Secp256k1Signer, U256};
use chaperone_sdk::DevnetInfo;
use serde::{Deserialize, Serialize};

use crate::Output;

const ETHER: u128 = 1_000_000_000_000_000_000;
/// The demo token has 6 decimals, like USDC.
const TOKEN_UNIT: u128 = 1_000_000;

/// What `up` keeps between runs: the devnet file plus the co-signer key.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct UpState {
    #[serde(flatten)]
    pub(super) info: DevnetInfo,
    pub(super) cosigner_key: B256,
}

async fn send<P: Provider>(provider: &P, tx: TransactionRequest) -> anyhow::Result<()> {
    let receipt = provider.send_transaction(tx).await?.get_receipt().await?;
    if !receipt.status() {
        bail!("transaction {} reverted", receipt.transaction_hash);
    }
    Ok(())
}

/// Deploys and funds everything a fresh devnet needs.
pub(super) async fn create<P: Provider>(
    provider: &P,
    deployer: &PrivateKeySigner,
    data_dir: &Path,
    rpc_url: &str,
    port: u16,
    chain_id: u64,
    out: Output,
) -> anyhow::Result<UpState> {
    out.step("deploying AuditLog and AgentWalletFactory");
    let deployment = chaperone_chain::deploy_deterministic(provider, B256::ZERO).await?;
    let cosigner = Secp256k1Signer::random()?;
    let agent = Secp256k1Signer::random()?;
    out.step("creating the audit log");
    let log_id =
        chaperone_chain::create_log(provider, deployment.audit_log, cosigner.address()).await?;
    out.step("creating and funding the demo agent wallet");
    let owner = deployer.address();
    let wallet = chaperone_chain::NewWallet {
        factory: deployment.wallet_factory,
        owner,
        agent: agent.address(),
        cosigner: cosigner.address(),
        salt: B256::ZERO,
        start: chaperone_chain::WalletStart::Bare,
    }
    .create(provider)
    .await?;
    // Before the wallet's authorization budget, which then gives Permit2 its allowance.
    if let Err(e) = chaperone_chain::install_x402_contracts(provider).await {
        out.step(&format!(
            "not installing the x402 contracts ({e}): x402 Permit2 payments need them"
        ));
    }
    let token = TestToken::deploy(provider).await?;
    token
        .mint(wallet, U256::from(1_000_000 * TOKEN_UNIT))
        .send()
        .await?
        .get_receipt()
        .await?;
    for (to, ether) in [(wallet, 10), (agent.address(), 1), (cosigner.address(), 1)] {
        send(
            provider,
            TransactionRequest::default()
                .to(to)
                .value(U256::from(ether * ETHER)),
        )
        .await?;
    }
    // The on-chain backstop: even a stolen co-signer key moves at most this much a day.
    let contract = AgentWallet::new(wallet, provider);
    for (asset, limit) in [
        (Address::ZERO, U256::from(2 * ETHER)),
        (*token.address(), U256::from(5_000 * TOKEN_UNIT)),
    ] {
        contract
            .setBackstop(asset, limit, 86_400)
            .send()
            .await?
            .get_receipt()
            .await?;
    }
    // x402 pays with EIP-3009 or Permit2 authorizations through the wallet's EIP-1271, which
    // the owner enables per token: here 10 of each a day of at most 100 DEMO each (the policy's
    // per-payment cap), on top of the `execute` backstop.
    contract
        .setAuthorizationBudget(*token.address(), U256::from(100 * TOKEN_UNIT), 10, 10)
        .send()
        .await?
        .get_receipt()
        .await?;
    // A second wallet for x402 that is not deployed: funded at its predicted address, it is
    // deployed by its first payment (the signature carries the factory call, ERC-6492).
    let payment_wallet = chaperone_sdk::Counterfactual {
        factory: deployment.wallet_factory,
        owner,
        cosigner: cosigner.address(),
        salt: B256::with_last_byte(1),
        token: *token.address(),
        limit: U256::from(5_000 * TOKEN_UNIT),
        period: 86_400,
        max_value: U256::from(100 * TOKEN_UNIT),
        slots: 10,
        permit2_slots: 10,
    };
    let counterfactual = payment_wallet.address(provider, agent.address()).await?;
    token
        .mint(counterfactual, U256::from(1_000 * TOKEN_UNIT))
        .send()
        .await?
        .get_receipt()
        .await?;
    let policy_file = data_dir.join("policy.toml");
    let install = format!(
        "CHAPERONE_ADMIN_TOKEN=<the admin token> {} policy set --server http://127.0.0.1:{port} \\\n#     --wallet {wallet} {}",
        chaperone_sdk::chaperone_command(),
        policy_file.display()
    );
    std::fs::write(
        &policy_file,
        demo_policy(chain_id, *token.address(), &install),
    )
    .with_context(|| format!("writing {}", policy_file.display()))?;
    Ok(UpState {
        info: DevnetInfo {
            server_url: format!("http://127.0.0.1:{port}"),
            rpc_url: rpc_url.to_owned(),
            chain_id,
            audit_log: deployment.audit_log,
            log_id,
            wallet_factory: deployment.wallet_factory,
            wallet,
            owner,
            token: *token.address(),
            agent: agent.address(),
            agent_key: agent.to_bytes(),
            cosigner: cosigner.address(),
            admin_token: random_token()?,
            policy_file: policy_file.display().to_string(),
            facilitator_url: None,
            counterfactual_wallet: Some(chaperone_sdk::CounterfactualWallet {
                address: counterfactual,
                deployment: payment_wallet,
            }),
        },
        cosigner_key: cosigner.to_bytes(),
    })
}

/// A random bearer token (32 hex characters).
fn random_token() -> anyhow::Result<String> {
    let key = Secp256k1Signer::random()?;
    Ok(format!("{:x}", key.to_bytes())[2..34].to_owned())
}

/// The demo policy: small native payments co-signed at once, larger ones need a human,
/// anything over 0.1 ETH (or 100 DEMO) is denied; hourly and daily windows below the backstop.
/// `install` is the command that installs the edited file on the demo wallet.
fn demo_policy(chain_id: u64, token: Address, install: &str) -> String {
    format!(
        r#"# The demo agent's policy, written by `chaperone up`. Edit it, raise `version`, and run
#   {install}
# (the admin token is in devnet.json; `chaperone up` itself installs this file only once).
version = 1
mode = "enforce"
chains = [{chain_id}]

# Native currency: at most 0.1 ETH per payment, 0.5 ETH per hour, 1 ETH per day.
[[limits]]
token = "native"
per_transaction = "100000000000000000"
windows = [
  {{ window = "1h", max = "500000000000000000" }},
  {{ window = "24h", max = "1000000000000000000" }},
]

# The demo token (6 decimals): 100 per payment, 1,000 per day.
[[limits]]
token = "{token}"
per_transaction = "100000000"
windows = [{{ window = "24h", max = "1000000000" }}]

[recipients]
deny = ["0x000000000000000000000000000000000000dEaD"]

[rate_limit]
max_requests = 600
window = "1m"

# A human approves native payments above 0.05 ETH (the approval expires after an hour).
[approval]
expires_after = "1h"
above = [{{ token = "native", amount = "50000000000000000" }}]

# x402: EIP-3009 authorizations of the demo token, and x402 Permit2 payments, may be
# co-signed (within the token's limits above, which count them like any payment).
[[typed_data]]
primary_type = "TransferWithAuthorization"
verifying_contract = "{token}"

[[typed_data]]
primary_type = "ReceiveWithAuthorization"
verifying_contract = "{token}"

[[typed_data]]
primary_type = "PermitWitnessTransferFrom"
verifying_contract = "{permit2}"
"#,
        permit2 = chaperone_core::PERMIT2,
    )
}

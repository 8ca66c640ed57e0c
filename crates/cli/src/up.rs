//! `chaperone up`: a complete local devnet from nothing, or from the data directory a previous
//! `up` left (Anvil's state is saved there, so the contracts, wallet and log survive).

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use alloy::{
    providers::Provider, rpc::types::TransactionRequest, signers::local::PrivateKeySigner,
};
use anyhow::{Context, bail};
use chaperone_chain::{AgentWallet, Devnet, TestToken};
use chaperone_core::{Address, B256, Secp256k1Signer, U256};
use chaperone_sdk::DevnetInfo;
use chaperone_server::{
    AuditLogConfig, CheckpointConfig, ServiceConfig, ServiceKeys, WalletConfig, start,
};
use serde::{Deserialize, Serialize};

use crate::{
    Output,
    args::UpArgs,
    commands::{key_from_env, shutdown_signal, signing_provider},
};

/// Anvil's first dev account: public knowledge, funded only on devnets.
const ANVIL_KEY_0: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const ETHER: u128 = 1_000_000_000_000_000_000;
/// The demo token has 6 decimals, like USDC.
const TOKEN_UNIT: u128 = 1_000_000;

/// What `up` keeps between runs: the devnet file plus the co-signer key.
#[derive(Debug, Serialize, Deserialize)]
struct UpState {
    #[serde(flatten)]
    info: DevnetInfo,
    cosigner_key: B256,
}

pub(crate) async fn up(args: UpArgs, out: Output) -> anyhow::Result<ExitCode> {
    let UpArgs {
        data_dir,
        port,
        anvil_port,
        rpc_url,
        facilitator_port,
    } = args;
    private_data_dir(&data_dir)?;
    let data_dir = data_dir.canonicalize()?;
    let state_file = data_dir.join("state.json");
    let previous: Option<UpState> = match std::fs::read_to_string(&state_file) {
        Ok(text) => Some(serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is damaged; remove {} to start over",
                state_file.display(),
                data_dir.display()
            )
        })?),
        Err(_) => None,
    };

    let devnet = match &rpc_url {
        Some(_) => None,
        None => {
            // A `chaperone up` killed without its Ctrl-C handling (SIGKILL, a crash) leaves its
            // Anvil running on the port: stop that one first (SIGTERM, so it writes its state).
            let pid_file = data_dir.join("anvil.pid");
            stop_leftover_anvil(&pid_file, &out);
            out.step(&format!("starting Anvil on port {anvil_port}"));
            let anvil_state = data_dir.join("anvil-state.json");
            let devnet = Devnet::start_with(|anvil| {
                anvil
                    .port(anvil_port)
                    .arg("--state")
                    .arg(&anvil_state)
                    .arg("--state-interval")
                    .arg("5")
            })
            .with_context(|| {
                format!(
                    "starting Anvil on port {anvil_port} (if the port is taken, pass --anvil-port)"
                )
            })?;
            std::fs::write(&pid_file, devnet.anvil().child().id().to_string())
                .with_context(|| format!("writing {}", pid_file.display()))?;
            Some(devnet)
        }
    };
    let rpc_url =
        rpc_url.unwrap_or_else(|| devnet.as_ref().map(Devnet::rpc_url).unwrap_or_default());
    let deployer = match std::env::var_os("CHAPERONE_DEPLOYER_KEY") {
        Some(_) => key_from_env("CHAPERONE_DEPLOYER_KEY")?,
        None => ANVIL_KEY_0.parse::<PrivateKeySigner>()?,
    };
    let (provider, chain_id) = signing_provider(&rpc_url, &deployer).await?;

    let state = match previous {
        Some(state) => {
            if state.info.chain_id != chain_id
                || provider.get_code_at(state.info.wallet).await?.is_empty()
            {
                bail!(
                    "the chain at {rpc_url} does not hold the devnet in {} (its state was lost); \
                     remove {} to start over",
                    data_dir.display(),
                    data_dir.display()
                );
            }
            out.step(&format!("reusing the devnet in {}", data_dir.display()));
            state
        }
        None => {
            let state = create(
                &provider, &deployer, &data_dir, &rpc_url, port, chain_id, out,
            )
            .await
            .with_context(|| {
                format!(
                    "setting up the devnet as {} (with --rpc-url, set CHAPERONE_DEPLOYER_KEY \
                     to a key with gas money)",
                    deployer.address()
                )
            })?;
            write_private(&state_file, &serde_json::to_string_pretty(&state)?)?;
            state
        }
    };
    // x402: Permit2, its x402 proxy, ERC-6492's validator and Multicall3 at their canonical
    // addresses (Anvil has none), then x402-rs's facilitator, settling from the deployer.
    let mut state = state;
    state.info.facilitator_url = None;
    if chaperone_chain::install_x402_contracts(&provider)
        .await
        .is_ok()
    {
        let listen = format!("127.0.0.1:{facilitator_port}");
        let listener = tokio::net::TcpListener::bind(&listen).await.with_context(|| {
            format!("the x402 facilitator's port {facilitator_port} is taken (use --facilitator-port)")
        })?;
        let key = format!("{:#x}", B256::from_slice(&deployer.to_bytes()[..]));
        let (rpc, facilitator_out) = (rpc_url.clone(), out);
        tokio::spawn(async move {
            if let Err(e) = crate::facilitator::serve(listener, &rpc, chain_id, &key).await {
                facilitator_out.step(&format!("the x402 facilitator stopped: {e:#}"));
            }
        });
        state.info.facilitator_url = Some(format!("http://{listen}"));
    } else {
        out.step("no x402 facilitator: this chain has no Permit2 and `anvil_setCode` failed");
    }
    let info = &state.info;
    write_private(
        &data_dir.join("devnet.json"),
        &serde_json::to_string_pretty(info)?,
    )?;

    out.step("starting the server");
    let cosigner = Secp256k1Signer::from_bytes(&state.cosigner_key)?;
    let config = ServiceConfig {
        database: format!(
            "sqlite:{}?mode=rwc",
            data_dir.join("chaperone.db").display()
        ),
        chain_id,
        listen: format!("127.0.0.1:{port}"),
        rpc_url: Some(rpc_url.clone()),
        // Anvil mines a block per transaction and none otherwise: follow the head.
        confirmations: 0,
        start_block: 0,
        audit_log: Some(AuditLogConfig {
            address: info.audit_log,
            log_id: info.log_id,
        }),
        checkpoints: CheckpointConfig {
            interval_secs: 2,
            max_records: 10_000,
        },
        // `up` hands the keys over directly.
        cosigner: None,
        operator: None,
        admin_token_env: None,
        wallets: std::iter::once(info.wallet)
            .chain(info.counterfactual_wallet.as_ref().map(|c| c.address))
            .map(|address| WalletConfig {
                address,
                agent: info.agent,
                policy: PathBuf::from(&info.policy_file),
            })
            .collect(),
        // The demo agent is registered with its wallets.
        agents: vec![],
        webhook: None,
    };
    let keys = ServiceKeys {
        cosigner: cosigner.clone(),
        operator: cosigner,
        admin_token: Some(info.admin_token.clone()),
    };
    let service = start(&config, keys, shutdown_signal())
        .await
        .with_context(|| format!("starting the server (is port {port} free? use --port)"))?;

    out.result(
        &serde_json::to_value(info)?,
        &format!(
            "\nChaperone devnet is up (Ctrl-C to stop; everything is in {dir})\n\
             \n  console       {server}/   (log in with the admin token below)\
             \n  server        {server}   (API: {server}/openapi.json, metrics: {server}/metrics)\
             \n  RPC           {rpc}   (chain {chain_id})\
             \n  AuditLog      {audit_log}   log {log_id}\
             \n  factory       {factory}\
             \n  demo wallet   {wallet}   (owner {owner})\
             \n  demo token    {token}   (6 decimals)\
             \n  x402 wallet   {counterfactual}   (not deployed: its first x402 payment deploys it)\
             \n  agent         {agent}\
             \n  agent key     {agent_key}   (devnet only)\
             \n  co-signer     {cosigner}\
             \n  admin token   {admin}\
             \n  policy        {policy}\
             \n  x402          facilitator {facilitator}   (x402-rs)\
             \n\nThe paid API the agent buys from (x402):  make paid-api\
             \nThen the example agent against it:       make agent\n",
            dir = data_dir.display(),
            server = info.server_url,
            rpc = info.rpc_url,
            audit_log = info.audit_log,
            log_id = info.log_id,
            factory = info.wallet_factory,
            wallet = info.wallet,
            owner = info.owner,
            token = info.token,
            counterfactual = info
                .counterfactual_wallet
                .as_ref()
                .map_or("none".to_owned(), |c| c.address.to_string()),
            agent = info.agent,
            agent_key = info.agent_key,
            cosigner = info.cosigner,
            admin = info.admin_token,
            policy = info.policy_file,
            facilitator = info.facilitator_url.as_deref().unwrap_or("none"),
        ),
    );
    let served = service.task.await;
    out.step("stopping");
    if let Some(devnet) = devnet {
        devnet.stop();
        let _ = std::fs::remove_file(data_dir.join("anvil.pid"));
    }
    served.context("the server task failed")??;
    Ok(ExitCode::SUCCESS)
}

/// Stops the Anvil a previous `up` of this data directory recorded in `pid_file`, if it still
/// runs: only a process that is Anvil (its command line says so, on Linux) is signalled, so a
/// recycled pid is left alone. SIGTERM first (Anvil then writes its `--state`), SIGKILL after
/// ten seconds.
fn stop_leftover_anvil(pid_file: &Path, out: &Output) {
    let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
    else {
        return;
    };
    let alive = || Path::new(&format!("/proc/{pid}")).exists();
    let is_anvil = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|cmdline| String::from_utf8_lossy(&cmdline).contains("anvil"))
        .unwrap_or(false);
    if is_anvil {
        out.step(&format!(
            "stopping the Anvil (pid {pid}) a previous `chaperone up` left running"
        ));
        let signal = |name: &str| {
            let _ = std::process::Command::new("kill")
                .arg(format!("-{name}"))
                .arg(pid.to_string())
                .status();
        };
        signal("TERM");
        for _ in 0..100 {
            if !alive() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        if alive() {
            signal("KILL");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
    let _ = std::fs::remove_file(pid_file);
}

/// Creates the data directory so that only its owner can enter it (0700): it holds the
/// devnet's keys and admin token, and the example agents' salts and content. An existing one
/// is left as its owner made it, unless other users can write to it: refused, since they could
/// replace those files or plant their own where an agent's are about to be created.
fn private_data_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating the data directory {}", dir.display())),
        Err(e) => Err(e).with_context(|| format!("reading the data directory {}", dir.display())),
        Ok(metadata) if metadata.permissions().mode() & 0o002 != 0 => bail!(
            "the data directory {} is writable by other users of this machine, who could \
             read or replace the keys and salts kept there: use a directory only you can \
             write to (--data-dir), or `chmod 700 {}`",
            dir.display(),
            dir.display()
        ),
        Ok(_) => Ok(()),
    }
}

/// Writes a file only its owner can read (0600): it holds (devnet) private keys. A new file
/// is never readable by others, not even for a moment; one that was there is made 0600
/// before the keys are written into it.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::{
        io::Write,
        os::unix::fs::{OpenOptionsExt, PermissionsExt},
    };
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            file.write_all(text.as_bytes())
        });
    written.with_context(|| format!("writing {}", path.display()))
}

async fn send<P: Provider>(provider: &P, tx: TransactionRequest) -> anyhow::Result<()> {
    let receipt = provider.send_transaction(tx).await?.get_receipt().await?;
    if !receipt.status() {
        bail!("transaction {} reverted", receipt.transaction_hash);
    }
    Ok(())
}

/// Deploys and funds everything a fresh devnet needs.
async fn create<P: Provider>(
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
    std::fs::write(&policy_file, demo_policy(chain_id, *token.address()))
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
fn demo_policy(chain_id: u64, token: Address) -> String {
    format!(
        r#"# The demo agent's policy, written by `chaperone up`. Edit it and run
# `chaperone policy set --server http://127.0.0.1:8080 --wallet <wallet> {{this file}}`
# after raising `version`.
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn scratch(what: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "chaperone_up_{what}_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        private_data_dir(&dir).unwrap();
        dir
    }

    #[test]
    fn the_data_directory_and_the_key_files_are_private() {
        let parent = scratch("keys");
        assert_eq!(mode(&parent), 0o700);
        let dir = parent.join(".chaperone").join("devnet");
        private_data_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&parent.join(".chaperone")), 0o700);

        let file = dir.join("devnet.json");
        write_private(&file, "{\"agent_key\": \"0x01\"}").unwrap();
        assert_eq!(mode(&file), 0o600);
        // A file an older `up` left readable is made private before the keys go in.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&file, "{}").unwrap();
        assert_eq!(mode(&file), 0o600);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "{}");
        std::fs::remove_dir_all(&parent).unwrap();
    }

    #[test]
    fn a_data_directory_other_users_can_write_to_is_refused() {
        let dir = scratch("open");
        for open in [0o777, 0o1777] {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(open)).unwrap();
            let message = format!("{:#}", private_data_dir(&dir).unwrap_err());
            assert!(message.contains("writable by other users"), "{message}");
            assert_eq!(mode(&dir), open, "left as its owner made it");
        }
        // Its owner's own choice otherwise (a shared, read-only project folder, say).
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_data_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o755);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

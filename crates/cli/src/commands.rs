//! Every command but `up`: thin shells over the server, chain and SDK crates.

use std::process::ExitCode;

use alloy::{
    network::EthereumWallet,
    providers::{DynProvider, Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use anyhow::{Context, bail};
use chaperone_chain::{NewWallet, WalletStart};
use chaperone_core::{
    Address, Call, Execute, U256,
    policy::{CosignRequest, Outcome, RequestKind, SpendHistory, Token, evaluate},
    readable::{TokenUnits, iso8601, reason_text},
};
use chaperone_sdk::{Disclosure, Payment, TrustedLog};
use chaperone_server::{KeySource, ServiceConfig, read_policy, start};
use serde_json::json;

use crate::{
    Output,
    args::{
        DeployArgs, ExportArgs, PolicySetArgs, PolicyTestArgs, ServeArgs, ServerWallet, VerifyArgs,
        WalletCreateArgs,
    },
};

/// Resolves on Ctrl-C or SIGTERM (what systemd sends to stop a unit). The handlers are
/// installed when this is called, not when the future is first polled: a Ctrl-C that arrives
/// right after the banner (before the server polls it) must still stop cleanly, so Anvil can
/// write its state, instead of killing the process.
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let handlers = signal(SignalKind::interrupt())
            .and_then(|int| Ok((int, signal(SignalKind::terminate())?)));
        async move {
            match handlers {
                Ok((mut int, mut term)) => {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    tokio::signal::ctrl_c().await.ok();
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        tokio::signal::ctrl_c().await.ok();
    }
}

/// A provider that signs with `key`, and the chain id it serves (asking proves it answers).
pub(crate) async fn signing_provider(
    rpc_url: &str,
    key: &PrivateKeySigner,
) -> anyhow::Result<(DynProvider, u64)> {
    let url = rpc_url
        .parse()
        .with_context(|| format!("--rpc-url {rpc_url} is not a URL"))?;
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(key.clone()))
        .connect_http(url)
        .erased();
    let chain_id = provider
        .get_chain_id()
        .await
        .with_context(|| format!("{rpc_url} does not answer (is the node running?)"))?;
    Ok((provider, chain_id))
}

/// The sending account's key from the environment variable `var` (hex).
pub(crate) fn key_from_env(var: &str) -> anyhow::Result<PrivateKeySigner> {
    let key = KeySource::Env { env: var.into() }
        .load()
        .with_context(|| format!("set {var} to the sending account's private key (hex)"))?;
    Ok(PrivateKeySigner::from_bytes(&key.to_bytes())?)
}

fn bearer_token() -> anyhow::Result<String> {
    std::env::var("CHAPERONE_ADMIN_TOKEN")
        .or_else(|_| std::env::var("CHAPERONE_AUDITOR_TOKEN"))
        .context("set CHAPERONE_ADMIN_TOKEN (or CHAPERONE_AUDITOR_TOKEN for export) to a bearer token of the server")
}

/// `chaperone serve --config FILE`
pub(crate) async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let path = args.config;
    let config = ServiceConfig::from_file(&path)?;
    let keys = config.load_keys()?;
    let service = start(&config, keys, shutdown_signal()).await?;
    eprintln!(
        "chaperone: serving http://{} (co-signer {}, log {})",
        service.local_addr, service.cosigner, service.origin
    );
    service.task.await.context("the server task failed")??;
    Ok(ExitCode::SUCCESS)
}

/// `chaperone deploy --rpc-url URL [--salt HEX] [--operator ADDRESS]`
pub(crate) async fn deploy(args: DeployArgs, out: Output) -> anyhow::Result<ExitCode> {
    let DeployArgs {
        rpc_url,
        salt,
        operator,
    } = args;
    let key = key_from_env("CHAPERONE_DEPLOYER_KEY")?;
    let (provider, chain_id) = signing_provider(&rpc_url, &key).await?;
    out.step(&format!(
        "deploying from {} on chain {chain_id}",
        key.address()
    ));
    let deployment = chaperone_chain::deploy_deterministic(&provider, salt)
        .await
        .context("deploying the contracts")?;
    let log_id = match operator {
        Some(operator) => {
            out.step(&format!("creating a log operated by {operator}"));
            Some(chaperone_chain::create_log(&provider, deployment.audit_log, operator).await?)
        }
        None => None,
    };
    let value = json!({
        "chain_id": chain_id,
        "audit_log": deployment.audit_log,
        "wallet_factory": deployment.wallet_factory,
        "wallet_implementation": deployment.wallet_implementation,
        "log_id": log_id,
    });
    let mut text = format!(
        "AuditLog            {}\nAgentWalletFactory  {}\nAgentWallet (impl.) {}",
        deployment.audit_log, deployment.wallet_factory, deployment.wallet_implementation
    );
    if let Some(id) = log_id {
        text.push_str(&format!("\nlog id              {id}"));
    }
    out.result(&value, &text);
    Ok(ExitCode::SUCCESS)
}

/// `chaperone wallet create …`
pub(crate) async fn wallet_create(args: WalletCreateArgs, out: Output) -> anyhow::Result<ExitCode> {
    let WalletCreateArgs {
        rpc_url,
        factory,
        owner,
        agent,
        cosigner,
        salt,
        backstop_token,
        backstop_limit,
        backstop_period,
        predict,
    } = args;
    let start = match (backstop_token, backstop_limit, backstop_period) {
        (Some(token), Some(limit), Some(period)) => WalletStart::Backstop {
            token,
            limit,
            period,
        },
        // clap requires all three together.
        _ => WalletStart::Bare,
    };
    let new_wallet = NewWallet {
        factory,
        owner,
        agent,
        cosigner,
        salt,
        start,
    };
    let backstop = match start {
        WalletStart::Bare => "no backstop".to_owned(),
        WalletStart::Backstop {
            token,
            limit,
            period,
        } => format!("backstop {limit} of {token} per {period} s"),
    };
    let wallet = if predict {
        let provider = ProviderBuilder::new()
            .connect(&rpc_url)
            .await
            .with_context(|| format!("connecting to {rpc_url}"))?;
        new_wallet
            .predict(&provider)
            .await
            .context("asking the factory (is the factory address right?)")?
    } else {
        let key = key_from_env("CHAPERONE_DEPLOYER_KEY")?;
        let (provider, _) = signing_provider(&rpc_url, &key).await?;
        new_wallet
            .create(&provider)
            .await
            .context("creating the wallet (is the factory address right?)")?
    };
    let verb = if predict { "would be" } else { "is" };
    out.result(
        &json!({ "wallet": wallet, "deployed": !predict, "owner": owner, "agent": agent,
                 "cosigner": cosigner, "salt": salt, "backstop": backstop }),
        &format!(
            "AgentWallet {wallet} {verb} (owner {owner}, agent {agent}, co-signer {cosigner}, {backstop})"
        ),
    );
    Ok(ExitCode::SUCCESS)
}

/// `text` as one URL path segment (percent-encoded: a name may hold `/`, `?` or spaces).
pub(crate) fn path_segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(crate) async fn admin_call(
    method: reqwest::Method,
    url: String,
    body: Option<String>,
) -> anyhow::Result<serde_json::Value> {
    let token = bearer_token()?;
    let mut request = reqwest::Client::new()
        .request(method, &url)
        .bearer_auth(token);
    if let Some(body) = body {
        request = request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("{url} does not answer (is the server running?)"))?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!(
            "{status}: {}",
            body["error"]["message"].as_str().unwrap_or("no message")
        );
    }
    Ok(body)
}

/// `chaperone policy set --server URL --wallet ADDRESS FILE`
pub(crate) async fn policy_set(args: PolicySetArgs, out: Output) -> anyhow::Result<ExitCode> {
    let PolicySetArgs {
        target: ServerWallet { server, wallet },
        file,
    } = args;
    let policy = read_policy(&file)?;
    let body = serde_json::to_string(&policy)?;
    let answer = admin_call(
        reqwest::Method::PUT,
        format!(
            "{}/v1/admin/wallets/{wallet}/policy",
            server.trim_end_matches('/')
        ),
        Some(body),
    )
    .await?;
    out.result(
        &answer,
        &format!("wallet {wallet} now has policy version {}", policy.version),
    );
    Ok(ExitCode::SUCCESS)
}

/// `chaperone policy show --server URL --wallet ADDRESS`
pub(crate) async fn policy_show(args: ServerWallet, out: Output) -> anyhow::Result<ExitCode> {
    let ServerWallet { server, wallet } = args;
    let answer = admin_call(
        reqwest::Method::GET,
        format!(
            "{}/v1/admin/wallets/{wallet}/policy",
            server.trim_end_matches('/')
        ),
        None,
    )
    .await?;
    out.result(&answer, &serde_json::to_string_pretty(&answer)?);
    Ok(ExitCode::SUCCESS)
}

/// `chaperone policy test FILE --to ADDRESS --amount WEI [--token ADDRESS] [--chain-id N]`:
/// exit 0 when approved, 1 when pending a human, 2 when denied.
pub(crate) fn policy_test(args: PolicyTestArgs, out: Output) -> anyhow::Result<ExitCode> {
    let PolicyTestArgs {
        file,
        to,
        amount,
        token,
        chain_id,
    } = args;
    let policy = read_policy(&file)?;
    let chain_id = chain_id
        .or_else(|| policy.chains.first().copied())
        .unwrap_or(31337);
    let call: Call = Payment { token, to, amount }.call();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let request = CosignRequest {
        chain_id,
        wallet: Address::ZERO,
        now,
        kind: RequestKind::Execute(Execute {
            calls: vec![call],
            nonce: U256::ZERO,
            validUntil: now + 600,
        }),
        human_approved: false,
    };
    let decision = evaluate(&policy, &request, &SpendHistory::default());
    let mut text = format!(
        "{:?} by policy version {}",
        decision.outcome, decision.policy_version
    );
    // Offline there is no chain to read a token's decimals from: ERC-20 amounts stay in
    // base units (native ones are ETH).
    let units = |token: &Token| match token {
        Token::Native => TokenUnits::native(),
        Token::Erc20(address) => TokenUnits {
            symbol: format!("base units of {address}"),
            decimals: 0,
        },
    };
    let words: Vec<String> = decision
        .reasons
        .iter()
        .map(|reason| reason_text(reason, units))
        .collect();
    for (reason, words) in decision.reasons.iter().zip(&words) {
        text.push_str(&format!(
            "\n  - {words}  {}",
            serde_json::to_string(reason)?
        ));
    }
    out.result(
        &json!({
            "outcome": decision.outcome,
            "reasons": decision.reasons,
            "reasons_text": words,
            "policy_version": decision.policy_version,
            "policy_hash": decision.policy_hash,
        }),
        &text,
    );
    Ok(ExitCode::from(match decision.outcome {
        Outcome::Approved => 0,
        Outcome::PendingApproval => 1,
        Outcome::Denied => 2,
    }))
}

/// `chaperone verify BUNDLE --rpc-url URL`
pub(crate) async fn verify(args: VerifyArgs, out: Output) -> anyhow::Result<ExitCode> {
    let VerifyArgs {
        bundle: file,
        rpc_url,
        audit_log,
        log_id,
        server,
    } = args;
    let disclosure = Disclosure::read(&file)?;
    let url = rpc_url
        .parse()
        .with_context(|| format!("--rpc-url {rpc_url} is not a URL"))?;
    let provider = ProviderBuilder::new().connect_http(url);
    let trusted = match (audit_log, log_id, server) {
        (Some(audit_log), Some(log_id), _) => TrustedLog { audit_log, log_id },
        (_, _, Some(server)) => deployment_log(&server).await?,
        // clap requires one of the two.
        _ => bail!("name the log you trust: --audit-log and --log-id, or --server"),
    };
    match disclosure.verify_on_chain(&provider, &trusted).await {
        Ok(verified) => {
            let mut contents: Vec<String> = disclosure
                .bundle
                .disclosed
                .iter()
                .map(|d| format!("  {:?}: {}", d.kind, String::from_utf8_lossy(&d.content)))
                .collect();
            // What the agent paid within the call (x402), checked against the chain.
            let mut payments = Vec::new();
            for d in &disclosure.bundle.disclosed {
                if d.kind != chaperone_sdk::CommitmentKind::Metadata {
                    continue;
                }
                for payment in chaperone_sdk::X402Payment::from_metadata(&d.content) {
                    // Settled only if the chain shows this authorization used, from an
                    // AgentWallet of the agent that signed the record.
                    let settled = payment.verify_settlement(&provider, verified.agent).await;
                    let payer = match (&settled, payment.authorization()) {
                        (Ok(s), _) => s.payer.to_string(),
                        (Err(_), Ok(a)) => format!("{} (claimed)", a.payer()),
                        (Err(_), Err(_)) => "unknown".to_owned(),
                    };
                    contents.push(format!(
                        "  paid: {} base units of {} from {payer} to {} for {} (decision {}): {}",
                        payment.amount,
                        payment.asset,
                        payment.pay_to,
                        payment.resource,
                        payment.request_id,
                        match &settled {
                            Ok(s) => format!(
                                "settled on chain in {} (block {}; agent {}, co-signer {})",
                                s.transaction, s.block, s.agent, s.cosigner
                            ),
                            Err(e) => format!("NOT SETTLED: {e}"),
                        }
                    ));
                    payments.push(json!({
                        "payment": payment,
                        "settled_on_chain": settled.is_ok(),
                        "payer": settled.as_ref().ok().map(|s| s.payer),
                        "settlement": settled.as_ref().ok(),
                        "settlement_error": settled.err().map(|e| e.to_string()),
                    }));
                }
            }
            out.result(
                &json!({ "valid": true, "verified": verified, "payments": payments }),
                &format!(
                    "VALID: record {} (index {}) by agent {}, model {}\n  \
                     log:       {} of AuditLog {} (operator {}, owner {})\n  \
                     anchored:  at size {} (root {}), {}\n  \
                     made at:   {} (the agent's own claim; the anchor bounds it)\n{}",
                    verified.leaf_hash,
                    verified.index,
                    verified.agent,
                    verified.model,
                    verified.log_id,
                    verified.audit_log,
                    verified.operator,
                    verified.log_owner,
                    verified.checkpoint_size,
                    verified.checkpoint_root,
                    match (verified.anchor_block, verified.anchored_at) {
                        (Some(block), Some(time)) =>
                            format!("in block {block} at {}", iso8601(time)),
                        _ => "in a block the RPC would not search for".to_owned(),
                    },
                    iso8601(verified.timestamp_ms / 1000),
                    contents.join("\n")
                ),
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            out.result(
                &json!({ "valid": false, "error": e.to_string() }),
                &format!("INVALID: {e}"),
            );
            Ok(ExitCode::from(2))
        }
    }
}

/// The log a deployment's server anchors to, as its `GET /v1/checkpoints/latest` says.
async fn deployment_log(server: &str) -> anyhow::Result<TrustedLog> {
    let url = format!("{}/v1/checkpoints/latest", server.trim_end_matches('/'));
    let latest: serde_json::Value = reqwest::get(&url)
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| format!("asking {url} for the deployment's log"))?
        .json()
        .await
        .with_context(|| format!("reading {url}"))?;
    let anchor = &latest["anchor"];
    match (
        anchor["audit_log"].as_str().map(str::parse::<Address>),
        anchor["log_id"]
            .as_str()
            .map(str::parse::<chaperone_core::B256>),
    ) {
        (Some(Ok(audit_log)), Some(Ok(log_id))) => Ok(TrustedLog { audit_log, log_id }),
        _ => bail!("{url} names no anchored log yet: pass --audit-log and --log-id"),
    }
}

/// `chaperone export --server URL [--what …] [--agent ADDRESS] [--format …] [--out FILE]`:
/// follows the cursor through every page.
pub(crate) async fn export(args: ExportArgs, out: Output) -> anyhow::Result<ExitCode> {
    let ExportArgs {
        server,
        what,
        agent,
        format,
        out: file,
    } = args;
    let path = match (what.as_str(), agent) {
        ("records", Some(agent)) => format!("/v1/agents/{agent}/records"),
        ("records", None) => bail!("--what records needs --agent ADDRESS"),
        _ => format!("/v1/{what}"),
    };
    let token = bearer_token()?;
    let client = reqwest::Client::new();
    let (mut text, mut items, mut cursor, mut pages) =
        (String::new(), Vec::new(), None::<String>, 0);
    loop {
        let mut url = format!(
            "{}{path}?format={format}&limit=1000",
            server.trim_end_matches('/')
        );
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let response = client
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .with_context(|| format!("{url} does not answer (is the server running?)"))?;
        let status = response.status();
        let next = response
            .headers()
            .get("x-next-cursor")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.text().await?;
        if !status.is_success() {
            bail!("{status}: {body}");
        }
        pages += 1;
        cursor = match format.as_str() {
            "json" => {
                let page: serde_json::Value = serde_json::from_str(&body)?;
                items.extend(page["items"].as_array().cloned().unwrap_or_default());
                page["next_cursor"].as_str().map(str::to_owned)
            }
            "csv" if pages > 1 => {
                // Every page repeats the header line; keep the first.
                text.push_str(body.split_once('\n').map_or("", |(_, rows)| rows));
                next
            }
            _ => {
                text.push_str(&body);
                next
            }
        };
        if cursor.is_none() {
            break;
        }
        out.step(&format!("page {pages} done"));
    }
    if format == "json" {
        text = serde_json::to_string_pretty(&json!({ "items": items }))?;
    }
    match file {
        Some(file) => {
            std::fs::write(&file, &text).with_context(|| format!("writing {}", file.display()))?;
            out.result(
                &json!({ "file": file, "pages": pages, "bytes": text.len() }),
                &format!(
                    "wrote {} ({pages} pages, {} bytes)",
                    file.display(),
                    text.len()
                ),
            );
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

//! An agent that logs its model calls and pays within its policy, against `chaperone up`.
//!
//! ```text
//! make up                                   # in one terminal: the devnet
//! cargo run -p chaperone-cli --example agent # in another
//! ```
//!
//! It reads `.chaperone/devnet.json` (or `--devnet FILE`), keeps its outbox and disclosure
//! store in `.chaperone/agent.db` (the content in `.chaperone/agent.db-content`), and:
//! 1. logs `--calls N` model calls (default 100; `--pace-ms MS` between them), committing to
//!    each prompt and answer (the content never leaves this process);
//! 2. pays: 0.01 ETH (co-signed and executed), 0.5 ETH (denied: over the per-payment cap),
//!    0.07 ETH (waits for a human approver), 50 DEMO tokens (executed), and signs an x402-style
//!    EIP-3009 authorization that the wallet's EIP-1271 accepts (skip with `--no-pay`);
//!    With `--approval-wait SECS` (`make agent` gives 600) it then waits that long for a human
//!    to approve the 0.07 ETH in the console (or with `curl`), and executes it;
//!    With `--x402-url URL` it also buys from an x402-paid API (`--example paid_api`) inside a
//!    recorded model call: the call's record commits to the payment, and the co-sign decision
//!    names the call's leaf hash (with `--counterfactual`, from the devnet's second wallet,
//!    which does not exist yet: the payment deploys it, ERC-6492);
//! 3. discloses its first record to `.chaperone/disclosure.json` once its checkpoint is
//!    anchored, for `chaperone verify`.
//!
//! `--json` prints one summary line for scripts (the end-to-end tests read it).

use std::{path::PathBuf, time::Duration};

use alloy::{
    network::EthereumWallet, providers::ProviderBuilder, signers::local::PrivateKeySigner,
    sol_types::SolCall,
};
use anyhow::Context;
use chaperone_chain::{AgentWallet, TestToken};
use chaperone_sdk::{
    Address, CommitmentKind, DevnetInfo, Error, Payment, Recorder, RecorderConfig, Secp256k1Signer,
    TokenDomain, U256, Wallet, WalletConfig, X402Client, X402Payment,
};
use serde_json::json;

const MILLI_ETHER: u64 = 1_000_000_000_000_000;

struct Options {
    devnet: PathBuf,
    calls: u64,
    pace: Duration,
    pay: bool,
    approval_wait: Duration,
    x402_url: Option<String>,
    counterfactual: bool,
    json: bool,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        devnet: PathBuf::from(".chaperone/devnet.json"),
        calls: 100,
        pace: Duration::ZERO,
        pay: true,
        approval_wait: Duration::ZERO,
        x402_url: None,
        counterfactual: false,
        json: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--devnet" => options.devnet = value()?.into(),
            "--calls" => options.calls = value()?.parse().context("--calls takes a number")?,
            "--pace-ms" => {
                options.pace =
                    Duration::from_millis(value()?.parse().context("--pace-ms takes ms")?)
            }
            "--no-pay" => options.pay = false,
            "--approval-wait" => {
                options.approval_wait =
                    Duration::from_secs(value()?.parse().context("--approval-wait takes seconds")?)
            }
            "--x402-url" => options.x402_url = Some(value()?),
            "--counterfactual" => options.counterfactual = true,
            "--json" => options.json = true,
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    Ok(options)
}

/// Stands in for a model: the agent's real app would call its LLM here.
fn model_answer(prompt: &str) -> String {
    format!("(answer to `{prompt}`)")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = options()?;
    let devnet = DevnetInfo::read(&options.devnet)?;
    let data_dir = options.devnet.parent().unwrap_or(std::path::Path::new("."));
    let say = |text: String| {
        if !options.json {
            println!("{text}");
        }
    };
    let key = Secp256k1Signer::from_bytes(&devnet.agent_key)?;

    // 1. Log model calls. `record` returns as soon as the record is queued; batching,
    //    signing, the durable outbox and delivery happen in the background.
    let recorder = Recorder::open(
        RecorderConfig::new(&devnet.server_url, data_dir.join("agent.db")),
        key.clone(),
    )
    .await?;
    let mut first = None;
    for i in 0..options.calls {
        let prompt = format!("task {i}: summarise the invoice and decide whether to pay it");
        let answer = model_answer(&prompt);
        let metadata = json!({ "gen_ai.usage.input_tokens": 42, "gen_ai.usage.output_tokens": 7 });
        let recorded = recorder
            .record(
                "demo-model-v1",
                prompt.as_bytes(),
                answer.as_bytes(),
                Some(metadata.to_string().as_bytes()),
            )
            .await?;
        first.get_or_insert(recorded);
        if !options.pace.is_zero() {
            tokio::time::sleep(options.pace).await;
        }
    }
    say(format!("logged {} model calls; delivering…", options.calls));
    // Outages are the outbox's business: this waits (retrying) until every record has a receipt.
    tokio::time::timeout(Duration::from_secs(120), recorder.sync())
        .await
        .context("records were not delivered within 2 minutes")??;
    let progress = recorder.progress();
    say(format!(
        "delivered: {} records have receipts",
        progress.delivered
    ));

    // 2. Pay within the policy.
    let mut payments = serde_json::Map::new();
    if options.pay {
        let wallet = Wallet::connect(
            WalletConfig::new(&devnet.server_url, &devnet.rpc_url, devnet.wallet),
            key.clone(),
        )
        .await?;
        let vendor = Address::repeat_byte(0x42);
        let attempts = [
            (
                "small_native",
                Payment {
                    token: None,
                    to: vendor,
                    amount: U256::from(10 * MILLI_ETHER),
                },
            ),
            (
                "over_cap_native",
                Payment {
                    token: None,
                    to: vendor,
                    amount: U256::from(500 * MILLI_ETHER),
                },
            ),
            (
                "needs_approval_native",
                Payment {
                    token: None,
                    to: vendor,
                    amount: U256::from(70 * MILLI_ETHER),
                },
            ),
            (
                "token",
                Payment {
                    token: Some(devnet.token),
                    to: vendor,
                    amount: U256::from(50_000_000u64),
                },
            ),
        ];
        let mut waiting = Vec::new();
        for (name, payment) in attempts {
            let outcome = match wallet.pay(payment).await {
                Ok(executed) => {
                    say(format!(
                        "{name}: executed in {} (gas {})",
                        executed.tx_hash, executed.gas_used
                    ));
                    json!({ "outcome": "executed", "tx_hash": executed.tx_hash })
                }
                Err(Error::Denied {
                    reasons,
                    reasons_text,
                    ..
                }) => {
                    say(format!(
                        "{name}: denied by policy: {}",
                        reasons_text.join("; ")
                    ));
                    json!({ "outcome": "denied", "reasons": reasons, "reasons_text": reasons_text })
                }
                Err(Error::Pending(pending)) => {
                    say(format!(
                        "{name}: waiting for a human; approve it in the console at {}/approvals \
                         (log in with the admin token), or with\n  curl -X POST -H 'Authorization: Bearer {}' {}/v1/admin/approvals/{}/approve",
                        devnet.server_url,
                        devnet.admin_token,
                        devnet.server_url,
                        pending.request_id
                    ));
                    let request_id = pending.request_id;
                    waiting.push((name, *pending));
                    json!({ "outcome": "pending", "request_id": request_id })
                }
                Err(e) => return Err(e.into()),
            };
            payments.insert(name.into(), outcome);
        }
        if !options.approval_wait.is_zero() {
            for (name, pending) in waiting {
                say(format!(
                    "{name}: waiting up to {} s for the approval…",
                    options.approval_wait.as_secs()
                ));
                let outcome = match wallet
                    .wait_for_approval(pending, options.approval_wait)
                    .await
                {
                    Ok(executed) => {
                        say(format!(
                            "{name}: approved and executed in {}",
                            executed.tx_hash
                        ));
                        json!({ "outcome": "executed", "tx_hash": executed.tx_hash })
                    }
                    Err(Error::Denied { .. }) => {
                        say(format!("{name}: the approver denied it"));
                        json!({ "outcome": "denied" })
                    }
                    Err(Error::Expired) => {
                        say(format!("{name}: nobody approved it in time"));
                        json!({ "outcome": "expired" })
                    }
                    Err(e) => return Err(e.into()),
                };
                payments.insert(name.into(), outcome);
            }
        }

        // x402: a signed EIP-3009 authorization, valid through the wallet's EIP-1271.
        let provider = ProviderBuilder::new().connect_http(devnet.rpc_url.parse()?);
        let name = TestToken::new(devnet.token, &provider)
            .name()
            .call()
            .await?;
        let authorization = wallet
            .sign_payment_authorization(
                TokenDomain {
                    name,
                    version: "1".into(),
                    chain_id: devnet.chain_id,
                    verifying_contract: devnet.token,
                },
                vendor,
                U256::from(10_000_000u64),
                Duration::from_secs(300),
            )
            .await?;
        let magic = AgentWallet::new(devnet.wallet, &provider)
            .isValidSignature(authorization.hash, authorization.signature.clone())
            .call()
            .await?;
        let accepted = magic.0 == AgentWallet::isValidSignatureCall::SELECTOR;
        // The facilitator's part (here the agent's key pays the gas): submit the authorization
        // to the token, which checks it through the wallet's EIP-1271 and moves the tokens.
        let facilitator = ProviderBuilder::new()
            .wallet(EthereumWallet::from(PrivateKeySigner::from_bytes(
                &devnet.agent_key,
            )?))
            .connect_http(devnet.rpc_url.parse()?);
        let token = TestToken::new(devnet.token, &facilitator);
        let m = &authorization.message;
        let settle = token.transferWithAuthorization(
            m.from,
            m.to,
            m.value,
            m.validAfter,
            m.validBefore,
            m.nonce,
            authorization.signature.clone(),
        );
        settle.call().await?;
        let receipt = settle.send().await?.get_receipt().await?;
        // The token marks the nonce used: the same payment header replayed is refused.
        let replay_refused = settle.call().await.is_err();
        say(format!(
            "x402 authorization of 10 DEMO: EIP-1271 {}, paid in {}, replay {}",
            if accepted { "accepts it" } else { "REJECTS it" },
            receipt.transaction_hash,
            if replay_refused {
                "refused"
            } else {
                "ACCEPTED"
            }
        ));
        payments.insert(
            "x402_authorization".into(),
            json!({
                "eip1271_valid": accepted,
                "tx_hash": receipt.transaction_hash,
                "paid": receipt.status(),
                "replay_refused": replay_refused,
            }),
        );
    }

    // x402: a model call that needs a paid API. The agent pays within its policy (a denial
    // reaches nobody), and the call's record commits to what it paid.
    let mut disclose = first.as_ref().map(|f| f.leaf_hash);
    let mut disclose_kinds = vec![CommitmentKind::Input, CommitmentKind::Output];
    if let Some(url) = &options.x402_url {
        let mut config = WalletConfig::new(&devnet.server_url, &devnet.rpc_url, devnet.wallet);
        if options.counterfactual {
            let counterfactual = devnet
                .counterfactual_wallet
                .clone()
                .context("the devnet has no counterfactual wallet (a current `up` makes one)")?;
            config.wallet = counterfactual.address;
            config.counterfactual = Some(counterfactual.deployment);
        }
        let wallet = Wallet::connect(config, key.clone()).await?;
        let prompt = "What is the weather in Lisbon? Buy the forecast if it is paid.";
        let outcome = match X402Client::new(wallet.clone()).get(url).await {
            Ok(bought) => {
                let status = bought.response.status().as_u16();
                let forecast = bought.response.text().await.unwrap_or_default();
                let payments: Vec<X402Payment> = bought.payment.into_iter().collect();
                let recorded = recorder
                    .record(
                        "demo-model-v1",
                        prompt.as_bytes(),
                        format!("The forecast: {forecast}").as_bytes(),
                        Some(&X402Payment::record_metadata(&payments)),
                    )
                    .await?;
                // The policy service binds a payment only to a call it has logged.
                recorder.receipt(&recorded).await?;
                for payment in &payments {
                    wallet
                        .bind_to_call(payment.request_id, recorded.leaf_hash)
                        .await?;
                }
                disclose = Some(recorded.leaf_hash);
                disclose_kinds.push(CommitmentKind::Metadata);
                let paid = payments.first();
                say(format!(
                    "x402: bought {url} ({status}): {forecast}; paid {} in {}",
                    paid.map(|p| p.amount.to_string()).unwrap_or_default(),
                    paid.and_then(|p| p.settlement.as_ref())
                        .and_then(|s| s.transaction)
                        .map(|t| t.to_string())
                        .unwrap_or_else(|| "no settlement reported".into())
                ));
                json!({ "outcome": "paid", "status": status, "payment": paid, "leaf_hash": recorded.leaf_hash })
            }
            Err(Error::Unreachable { detail, .. }) => {
                say(format!(
                    "x402: no paid API at {url} ({detail}); start it with `make paid-api`"
                ));
                json!({ "outcome": "unreachable" })
            }
            Err(Error::Denied {
                reasons,
                reasons_text,
                ..
            }) => {
                say(format!(
                    "x402: {url} denied by policy: {}",
                    reasons_text.join("; ")
                ));
                json!({ "outcome": "denied", "reasons": reasons, "reasons_text": reasons_text })
            }
            // What the wallet itself could never pay (over its per-authorization maximum, no
            // budget, frozen): refused before any decision.
            Err(Error::Refused { code, message, .. }) => {
                say(format!("x402: {url} refused: {message}"));
                json!({ "outcome": "refused", "code": code, "message": message })
            }
            Err(e) => return Err(e.into()),
        };
        payments.insert("x402_paid_api".into(), outcome);
    }
    recorder.flush().await?;

    // 3. Disclose the first record (or the paid call) once its checkpoint is anchored.
    let disclosure_file = data_dir.join("disclosure.json");
    if let Some(leaf_hash) = disclose {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let disclosure = loop {
            match recorder.disclose(leaf_hash, &disclose_kinds).await {
                Ok(d) if d.anchor.is_some() => break d,
                Ok(_) | Err(Error::Refused { .. }) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(500)).await
                }
                Ok(_) => {
                    anyhow::bail!("the first record's checkpoint was not anchored within a minute")
                }
                Err(e) => return Err(e.into()),
            }
        };
        disclosure.write(&disclosure_file)?;
        say(format!(
            "disclosed record {} to {}; verify it with\n  {} verify {} --rpc-url {} --server {}",
            leaf_hash,
            disclosure_file.display(),
            chaperone_sdk::chaperone_command(),
            disclosure_file.display(),
            devnet.rpc_url,
            devnet.server_url
        ));
    }
    if options.json {
        println!(
            "{}",
            json!({
                "agent": recorder.agent(),
                "recorded": options.calls,
                "delivered": progress.delivered,
                "first_leaf_hash": first.as_ref().map(|f| f.leaf_hash),
                "disclosed_leaf_hash": disclose,
                "payments": payments,
                "disclosure": disclose.map(|_| disclosure_file),
            })
        );
    }
    recorder.shutdown().await?;
    Ok(())
}

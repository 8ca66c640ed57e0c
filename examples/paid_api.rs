//! A small x402-paid API for the demo and the tests: `GET /weather` costs 0.01 of the devnet's
//! USDC-like token, paid with x402 through the facilitator `chaperone up` runs (x402-rs's). The
//! paywall is x402-rs's axum middleware (`x402-axum`); this file only prices the route.
//!
//! ```text
//! make up                                        # the devnet, with the facilitator
//! cargo run -p chaperone-cli --example paid_api  # this API, on 127.0.0.1:8403
//! cargo run -p chaperone-cli --example agent     # buys from it (among other things)
//! ```
//!
//! It offers EIP-3009 first and Permit2 second (`--method` offers one of them only), and
//! settles before it answers. `GET /stats` (free) counts the requests that arrived carrying a
//! payment header and the ones answered with content, so a test can see that a payment the
//! policy denied never reached the merchant.

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use alloy::{primitives::U256, providers::ProviderBuilder};
use anyhow::Context;
use axum::{Json, Router, extract::Request, middleware::Next, routing::get};
use chaperone_chain::TestToken;
use chaperone_sdk::{Address, DevnetInfo};
use clap::{Parser, ValueEnum};
use serde_json::json;
use x402_axum::X402Middleware;
use x402_chain_eip155::{
    V2Eip155Exact,
    chain::{AssetTransferMethod, Eip155ChainReference, Eip155TokenDeployment},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Method {
    /// EIP-3009 first, then Permit2.
    Both,
    /// EIP-3009 `transferWithAuthorization` only.
    Eip3009,
    /// Permit2 through the x402 proxy only.
    Permit2,
}

/// An x402-paid weather API on the devnet.
#[derive(Debug, Parser)]
struct Options {
    /// The devnet file `chaperone up` wrote.
    #[arg(long, default_value = ".chaperone/devnet.json")]
    devnet: PathBuf,
    /// The port to listen on (127.0.0.1).
    #[arg(long, default_value_t = 8403)]
    port: u16,
    /// The merchant's address (Anvil's dev account 9 by default).
    #[arg(long, default_value = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720")]
    pay_to: Address,
    /// The price in the token's base units (10000 = 0.01 with 6 decimals).
    #[arg(long, default_value_t = 10_000)]
    price: u64,
    /// Which x402 payment methods to offer.
    #[arg(long, value_enum, default_value_t = Method::Both)]
    method: Method,
}

#[derive(Default)]
struct Stats {
    payment_headers: AtomicU64,
    served: AtomicU64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let devnet = DevnetInfo::read(&options.devnet)?;
    let facilitator = devnet
        .facilitator_url
        .clone()
        .context("the devnet has no x402 facilitator (restart it with a current `chaperone up`)")?;
    // The token's EIP-712 domain, as x402 puts it in the requirement's `extra`.
    let provider = ProviderBuilder::new().connect_http(devnet.rpc_url.parse()?);
    let domain = TestToken::new(devnet.token, &provider)
        .eip712Domain()
        .call()
        .await
        .context("reading the token's EIP-712 domain")?;
    let token = |transfer_method| Eip155TokenDeployment {
        chain_reference: Eip155ChainReference::new(devnet.chain_id),
        address: devnet.token,
        decimals: 6,
        transfer_method,
    };
    let eip3009 = token(AssetTransferMethod::Eip3009 {
        name: domain.name.clone(),
        version: domain.version.clone(),
    });
    let permit2 = token(AssetTransferMethod::Permit2 {
        name: domain.name,
        version: domain.version,
    });
    let price = |deployment: &Eip155TokenDeployment| {
        V2Eip155Exact::price_tag(options.pay_to, deployment.amount(options.price)).with_timeout(120)
    };
    let base = format!("http://127.0.0.1:{}", options.port);
    let x402 = X402Middleware::try_new(&facilitator)
        .map_err(|e| anyhow::anyhow!("facilitator {facilitator}: {e}"))?
        .with_base_url(base.parse()?)
        .settle_before_execution();
    let paywall = match options.method {
        Method::Both => x402
            .with_price_tag(price(&eip3009))
            .with_price_tag(price(&permit2)),
        Method::Eip3009 => x402.with_price_tag(price(&eip3009)),
        Method::Permit2 => x402.with_price_tag(price(&permit2)),
    }
    .with_description("Today's weather in Lisbon".into());

    let stats = Arc::new(Stats::default());
    let (seen, served) = (Arc::clone(&stats), Arc::clone(&stats));
    let app = Router::new()
        .route(
            "/weather",
            get(move || async move {
                served.served.fetch_add(1, Ordering::Relaxed);
                Json(json!({ "city": "Lisbon", "forecast": "sunny", "temperature_c": 21 }))
            })
            .layer(paywall),
        )
        .route(
            "/stats",
            get(move || async move {
                Json(json!({
                    "payment_headers": stats.payment_headers.load(Ordering::Relaxed),
                    "served": stats.served.load(Ordering::Relaxed),
                }))
            }),
        )
        .layer(axum::middleware::from_fn(
            move |request: Request, next: Next| {
                let seen = Arc::clone(&seen);
                async move {
                    let headers = request.headers();
                    if headers.contains_key("payment-signature")
                        || headers.contains_key("x-payment")
                    {
                        seen.payment_headers.fetch_add(1, Ordering::Relaxed);
                    }
                    next.run(request).await
                }
            },
        ));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port))
        .await
        .with_context(|| format!("port {} is taken (use --port)", options.port))?;
    println!(
        "paid API on {base}/weather: {} base units of {} to {} (facilitator {facilitator})",
        U256::from(options.price),
        devnet.token,
        options.pay_to
    );
    axum::serve(listener, app).await?;
    Ok(())
}

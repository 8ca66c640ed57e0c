//! A paid MCP tool server (x402 over MCP), for the MCP gateway to pay: `weather` costs 0.01 of
//! the devnet's demo token per call, `gold` costs more than the demo policy allows, `stats`
//! is free and says how many payments the server has seen and settled.
//!
//! `cargo run -p chaperone-cli --example paid_mcp_tool -- --devnet .chaperone/devnet.json`
//! serves MCP on stdio, so a client starts it: `chaperone mcp --config mcp.toml -- PATH`.
//!
//! A call without payment is answered as x402's MCP transport says: a tool result with
//! `isError` whose `structuredContent` (and first text block) is the `PaymentRequired` (x402
//! v2, the "exact" scheme with EIP-3009 on the devnet's token). A call with
//! `_meta["x402/payment"]` is verified and settled by the devnet's facilitator (x402-rs's,
//! which `chaperone up` runs), and its result carries the facilitator's answer in
//! `_meta["x402/payment-response"]`.

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use alloy::providers::ProviderBuilder;
use anyhow::Context;
use chaperone_chain::TestToken;
use chaperone_sdk::{Address, DevnetInfo};
use clap::Parser;
use rmcp::{
    RoleServer, ServerHandler, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorData,
        InitializeResult, ListToolsResult, MetaObject, PaginatedRequestParams, ServerCapabilities,
        ServerConfig, Tool,
    },
    service::RequestContext,
};
use serde_json::{Value, json};
use x402_axum::facilitator_client::FacilitatorClient;
use x402_chain_eip155::{
    V2Eip155Exact,
    chain::{AssetTransferMethod, Eip155ChainReference, Eip155TokenDeployment},
};
use x402_types::proto::{self, v2};

#[derive(Debug, Parser)]
struct Options {
    /// The devnet file `chaperone up` wrote.
    #[arg(long, default_value = ".chaperone/devnet.json")]
    devnet: PathBuf,
    /// Who is paid.
    #[arg(long, default_value = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720")]
    pay_to: Address,
    /// `weather`'s price in base units (6 decimals: 10,000 is 0.01).
    #[arg(long, default_value_t = 10_000)]
    price: u64,
    /// `gold`'s price in base units (default 1,000,000 tokens: over the demo policy's cap).
    #[arg(long, default_value_t = 1_000_000_000_000)]
    gold_price: u64,
}

struct PaidTools {
    facilitator: FacilitatorClient,
    weather: v2::PaymentRequirements,
    gold: v2::PaymentRequirements,
    payments_seen: AtomicU64,
    settled: AtomicU64,
}

fn tool(name: &'static str, description: &'static str) -> Tool {
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}}});
    Tool::new(
        name,
        description,
        Arc::new(schema.as_object().cloned().unwrap_or_default()),
    )
}

impl PaidTools {
    fn payment_required(
        &self,
        name: &str,
        requirements: &v2::PaymentRequirements,
    ) -> CallToolResult {
        let required = json!({
            "x402Version": 2,
            "error": "payment required",
            "resource": {
                "url": format!("mcp://paid-mcp-tool/{name}"),
                "description": format!("the `{name}` tool"),
                "mimeType": "application/json",
            },
            "accepts": [requirements],
        });
        let mut result = CallToolResult::error(vec![ContentBlock::text(required.to_string())]);
        result.structured_content = Some(required);
        result
    }

    /// Verifies and settles `payment` for `requirements`; the facilitator's settlement.
    async fn settle(
        &self,
        payment: &Value,
        requirements: &v2::PaymentRequirements,
    ) -> Result<Value, String> {
        let payload: v2::PaymentPayload<v2::PaymentRequirements, Value> =
            serde_json::from_value(payment.clone())
                .map_err(|e| format!("not an x402 payment: {e}"))?;
        if payload.accepted != *requirements {
            return Err("the payment accepts other requirements than this tool's".into());
        }
        let request = v2::VerifyRequest {
            x402_version: v2::X402Version2,
            payment_payload: payload,
            payment_requirements: requirements.clone(),
        };
        let raw = serde_json::value::to_raw_value(&request).map_err(|e| e.to_string())?;
        let request = proto::VerifyRequest::from(raw);
        let verified = self
            .facilitator
            .verify(&request)
            .await
            .map_err(|e| format!("facilitator: {e}"))?;
        if verified.0.get("isValid") != Some(&Value::Bool(true)) {
            return Err(format!(
                "the facilitator refused the payment: {}",
                verified.0
            ));
        }
        let settled = self
            .facilitator
            .settle(&request)
            .await
            .map_err(|e| format!("facilitator: {e}"))?;
        if settled.0.get("success") != Some(&Value::Bool(true)) {
            return Err(format!("the payment did not settle: {}", settled.0));
        }
        self.settled.fetch_add(1, Ordering::Relaxed);
        Ok(settled.0)
    }
}

impl ServerHandler for PaidTools {
    fn get_info(&self) -> ServerConfig {
        InitializeResult::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(vec![
            tool(
                "weather",
                "Today's weather (0.01 demo token per call, x402)",
            ),
            tool("gold", "A golden forecast (expensive, x402)"),
            tool("stats", "Payments seen and settled (free)"),
        ]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let requirements = match request.name.as_ref() {
            "weather" => &self.weather,
            "gold" => &self.gold,
            "stats" => {
                let stats = json!({
                    "payments_seen": self.payments_seen.load(Ordering::Relaxed),
                    "settled": self.settled.load(Ordering::Relaxed),
                });
                let mut result =
                    CallToolResult::success(vec![ContentBlock::text(stats.to_string())]);
                result.structured_content = Some(stats);
                return Ok(result.into());
            }
            other => {
                return Err(ErrorData::invalid_params(
                    format!("no tool `{other}`"),
                    None,
                ));
            }
        };
        let Some(payment) = context.meta.0.0.get("x402/payment") else {
            return Ok(self.payment_required(&request.name, requirements).into());
        };
        self.payments_seen.fetch_add(1, Ordering::Relaxed);
        match self.settle(payment, requirements).await {
            Ok(settlement) => {
                let forecast =
                    json!({ "city": "Lisbon", "forecast": "sunny", "temperature_c": 21 });
                let mut result =
                    CallToolResult::success(vec![ContentBlock::text(forecast.to_string())]);
                let mut meta = MetaObject::new();
                meta.0.insert("x402/payment-response".into(), settlement);
                result.meta = Some(meta);
                Ok(result.into())
            }
            Err(reason) => {
                let mut result = self.payment_required(&request.name, requirements);
                if let Some(Value::Object(required)) = &mut result.structured_content {
                    required.insert("error".into(), reason.into());
                }
                Ok(result.into())
            }
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let devnet = DevnetInfo::read(&options.devnet)?;
    let facilitator_url = devnet
        .facilitator_url
        .clone()
        .context("the devnet has no x402 facilitator (restart it with a current `chaperone up`)")?;
    let facilitator = FacilitatorClient::try_from(facilitator_url.as_str())
        .map_err(|e| anyhow::anyhow!("facilitator {facilitator_url}: {e}"))?;
    let provider = ProviderBuilder::new().connect_http(devnet.rpc_url.parse()?);
    let domain = TestToken::new(devnet.token, &provider)
        .eip712Domain()
        .call()
        .await
        .context("reading the token's EIP-712 domain")?;
    let token = Eip155TokenDeployment {
        chain_reference: Eip155ChainReference::new(devnet.chain_id),
        address: devnet.token,
        decimals: 6,
        transfer_method: AssetTransferMethod::Eip3009 {
            name: domain.name,
            version: domain.version,
        },
    };
    let requirements = |price: u64| {
        V2Eip155Exact::price_tag(options.pay_to, token.amount(price))
            .with_timeout(120)
            .requirements
    };
    let tools = PaidTools {
        facilitator,
        weather: requirements(options.price),
        gold: requirements(options.gold_price),
        payments_seen: AtomicU64::new(0),
        settled: AtomicU64::new(0),
    };
    let running = tools.serve(rmcp::transport::stdio()).await?;
    running.waiting().await?;
    Ok(())
}

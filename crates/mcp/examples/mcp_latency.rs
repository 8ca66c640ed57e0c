//! Load generator: the latency a tool call gains by going through the gateway, over stdio.
//!
//! `cargo run --release -p chaperone-mcp --example mcp_latency -- [--calls N] [--rate R] [--samples S]`
//!
//! One binary plays three parts. With no part named, it starts itself twice as a stdio MCP
//! server: once as the upstream alone (`echo-server`, an rmcp server with one `echo` tool), once
//! as the gateway (`gateway`, the same upstream behind `chaperone_mcp`'s gateway: policy
//! `allow = "*"`, every call recorded by the SDK's `Recorder`), and calls `echo` on both at
//! the same rate in the same run, alternating, each call timed by the client. The recorder
//! persists records to its outbox in the background; no Chaperone server is running, so the
//! gateway is told not to wait for receipts (`receipt_timeout_ms = 0`) and what is measured
//! is the gateway's own work per call: the policy, two salted commitments, the record's leaf
//! hash and staging, plus the extra stdio hop. The gateway's resident memory is sampled as the
//! calls go on.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use chaperone_mcp::{CallRecorder, GatewayConfig, GatewayState};
use chaperone_sdk::{Recorder, RecorderConfig, Secp256k1Signer};
use rmcp::{
    RoleServer, ServerHandler, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorData,
        InitializeResult, ListToolsResult, PaginatedRequestParams, ServerCapabilities,
        ServerConfig, Tool,
    },
    service::RequestContext,
    transport::TokioChildProcess,
};

/// The upstream: one `echo` tool.
struct Echo;

impl ServerHandler for Echo {
    fn get_info(&self) -> ServerConfig {
        InitializeResult::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let schema =
            serde_json::json!({"type": "object", "properties": {"message": {"type": "string"}}});
        let tool = Tool::new(
            "echo",
            "Echoes its message",
            Arc::new(schema.as_object().unwrap().clone()),
        );
        Ok(ListToolsResult::with_all_items(vec![tool]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let message = request
            .arguments
            .and_then(|a| a.get("message").and_then(|m| m.as_str().map(str::to_owned)))
            .unwrap_or_default();
        Ok(CallToolResult::success(vec![ContentBlock::text(message)]).into())
    }
}

fn private_folder(name: &str) -> PathBuf {
    let folder = std::env::temp_dir().join(format!("chaperone_{name}_{}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    folder
}

async fn run_gateway() {
    let me = std::env::current_exe().unwrap();
    let folder = private_folder("mcp_latency_gateway");
    let config = GatewayConfig::from_toml(&format!(
        "receipt_timeout_ms = 0\n[policy]\nallow = \"*\"\n[[upstream]]\nname = \"echo\"\ncommand = {:?}\nargs = [\"echo-server\"]\n",
        me.display().to_string()
    ))
    .unwrap();
    let mut recorder_config = RecorderConfig::new("http://127.0.0.1:9", folder.join("mcp.db"));
    recorder_config.max_undelivered = u64::MAX;
    recorder_config.linger = chaperone_mcp::RECORD_LINGER;
    recorder_config.retry = (Duration::from_secs(60), Duration::from_secs(60));
    let recorder = Arc::new(
        Recorder::open(recorder_config, Secp256k1Signer::random().unwrap())
            .await
            .unwrap(),
    );
    let state =
        GatewayState::new(config, CallRecorder::new(recorder, Duration::ZERO), None).unwrap();
    chaperone_mcp::serve_stdio(state).await.unwrap();
    std::fs::remove_dir_all(&folder).ok();
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn measure(calls: usize, rate: u64, samples: usize) {
    let me = std::env::current_exe().unwrap();
    let spawn = |part: &str| {
        let mut cmd = tokio::process::Command::new(&me);
        cmd.arg(part);
        TokioChildProcess::builder(cmd).spawn().unwrap().0
    };
    let direct = ().serve(spawn("echo-server")).await.unwrap();
    let gateway_process = spawn("gateway");
    let gateway_pid = gateway_process.id().unwrap();
    let gateway = ().serve(gateway_process).await.unwrap();
    let params = CallToolRequestParams::new("echo").with_arguments(
        serde_json::json!({"message": "hello"})
            .as_object()
            .unwrap()
            .clone(),
    );
    // Warm up both paths.
    for _ in 0..200 {
        direct.peer().call_tool(params.clone()).await.unwrap();
        gateway.peer().call_tool(params.clone()).await.unwrap();
    }
    let mut times = (Vec::with_capacity(calls), Vec::with_capacity(calls));
    let mut memory = vec![(0usize, rss_kib(gateway_pid))];
    let period = Duration::from_nanos(1_000_000_000 / rate);
    let mut tick = tokio::time::interval(period);
    let started = Instant::now();
    for i in 0..calls {
        tick.tick().await;
        // Alternate which path goes first, so neither always gets the warmer cache.
        let (first, second) = if i % 2 == 0 {
            (&direct, &gateway)
        } else {
            (&gateway, &direct)
        };
        let t0 = Instant::now();
        first.peer().call_tool(params.clone()).await.unwrap();
        let t1 = Instant::now();
        second.peer().call_tool(params.clone()).await.unwrap();
        let t2 = Instant::now();
        let (d, g) = if i % 2 == 0 {
            (t1 - t0, t2 - t1)
        } else {
            (t2 - t1, t1 - t0)
        };
        times.0.push(d);
        times.1.push(g);
        if (i + 1) % (calls / samples.max(1)).max(1) == 0 {
            memory.push((i + 1, rss_kib(gateway_pid)));
            // As it goes too: a long run stopped early still shows its samples.
            eprintln!(
                "{} calls, {:.0} s: gateway RSS {:.1} MiB",
                i + 1,
                started.elapsed().as_secs_f64(),
                memory.last().unwrap().1 as f64 / 1024.0
            );
        }
    }
    let elapsed = started.elapsed();
    times.0.sort();
    times.1.sort();
    println!(
        "{calls} calls each way at {:.0} calls/s per path ({:.1} s)",
        calls as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!("| path | p50 | p99 | max |");
    println!("| --- | --- | --- | --- |");
    for (name, sorted) in [("direct", &times.0), ("through the gateway", &times.1)] {
        println!(
            "| {name} | {:.0} µs | {:.0} µs | {:.0} µs |",
            percentile(sorted, 0.50).as_secs_f64() * 1e6,
            percentile(sorted, 0.99).as_secs_f64() * 1e6,
            sorted.last().unwrap().as_secs_f64() * 1e6,
        );
    }
    let added = |p: f64| {
        (percentile(&times.1, p).as_secs_f64() - percentile(&times.0, p).as_secs_f64()) * 1e6
    };
    println!(
        "added by the gateway: p50 {:.0} µs, p99 {:.0} µs",
        added(0.50),
        added(0.99)
    );
    let memory: Vec<String> = memory
        .iter()
        .map(|(n, kib)| format!("{n}: {:.1} MiB", *kib as f64 / 1024.0))
        .collect();
    println!(
        "gateway resident memory after N calls: {}",
        memory.join(", ")
    );
    direct.cancel().await.ok();
    gateway.cancel().await.ok();
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("echo-server") => {
            let running = Echo.serve(rmcp::transport::stdio()).await.unwrap();
            running.waiting().await.ok();
        }
        Some("gateway") => run_gateway().await,
        _ => {
            let flag = |name: &str, default: u64| {
                args.iter()
                    .position(|a| a == name)
                    .and_then(|i| args.get(i + 1)?.parse().ok())
                    .unwrap_or(default)
            };
            // RSS samples over the run (a long run wants more than ten to show a trend).
            measure(
                flag("--calls", 20_000) as usize,
                flag("--rate", 1_000),
                flag("--samples", 10) as usize,
            )
            .await;
        }
    }
}

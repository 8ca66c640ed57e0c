//! x402 end to end: `chaperone up` (with x402-rs's facilitator), the example paid API (x402-rs's
//! axum paywall) and the example agent (the SDK's `X402Client`), as processes.

use std::{
    io::{Read, Write},
    net::TcpStream,
    process::{Child, Stdio},
    time::Duration,
};

use chaperone_testkit::{free_port, temp_dir};
use serde_json::Value;

use crate::{
    chaperone,
    devnet::{Ports, up},
    example, example_agent, interrupt, run_json,
};

/// A paid API on a free port, killed when dropped.
struct PaidApi {
    child: Child,
    port: u16,
}

impl PaidApi {
    fn start(devnet_file: &std::path::Path, extra: &[&str]) -> Self {
        let port = free_port();
        let mut child = example("paid_api")
            .arg("--devnet")
            .arg(devnet_file)
            .args(["--port", &port.to_string()])
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Self { child, port };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        child.kill().ok();
        child.wait().ok();
        panic!("the paid API did not listen on {port} within 10 s");
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/weather", self.port)
    }

    /// `(payment headers received, requests served)`.
    fn stats(&self) -> (u64, u64) {
        let (_, body) = get(self.port, "/stats", None);
        let stats: Value = serde_json::from_str(&body).unwrap();
        (
            stats["payment_headers"].as_u64().unwrap(),
            stats["served"].as_u64().unwrap(),
        )
    }
}

impl Drop for PaidApi {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// A plain HTTP/1.1 GET (no client library between the test and the wire): status and body.
fn get(port: u16, path: &str, header: Option<(&str, &str)>) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let extra = header.map_or(String::new(), |(name, value)| {
        format!("{name}: {value}\r\n")
    });
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn buy(devnet_file: &std::path::Path, url: &str) -> Value {
    let (code, summary) = run_json(example_agent().arg("--devnet").arg(devnet_file).args([
        "--calls",
        "0",
        "--no-pay",
        "--json",
        "--x402-url",
        url,
    ]));
    assert_eq!(code, 0, "{summary}");
    summary
}

#[test]
fn the_agent_buys_from_a_paid_api_within_its_policy() {
    let dir = temp_dir("x402");
    let (devnet, info) = up(&dir, Ports::free());
    let devnet_file = dir.join("devnet.json");
    assert!(
        info["facilitator_url"].is_string(),
        "`up` runs a facilitator: {info}"
    );

    // EIP-3009: bought, settled, and bound to the model call it was bought in.
    let api = PaidApi::start(&devnet_file, &["--method", "eip3009"]);
    let summary = buy(&devnet_file, &api.url());
    let bought = &summary["payments"]["x402_paid_api"];
    assert_eq!(bought["outcome"], "paid", "{summary}");
    assert_eq!(bought["status"], 200);
    let payment = &bought["payment"];
    assert_eq!(payment["method"], "eip3009");
    assert_eq!(payment["amount"], "0x2710", "0.01 of a 6-decimal token");
    assert_eq!(payment["settlement"]["success"], true, "{payment}");
    assert_eq!(
        payment["settlement"]["payer"]
            .as_str()
            .unwrap()
            .to_lowercase(),
        info["wallet"].as_str().unwrap().to_lowercase()
    );
    assert_eq!(api.stats(), (1, 1));

    // The same payment header again: the token has marked its nonce used, so the
    // facilitator's simulation fails and the merchant asks for payment again.
    let header = payment["payload"].as_str().unwrap();
    let (status, _) = get(api.port, "/weather", Some(("Payment-Signature", header)));
    assert_eq!(status, 402, "a replayed payment is refused");
    assert_eq!(api.stats(), (2, 1), "served once");

    // The decision names the call; the spend is settled.
    let token = info["admin_token"].as_str().unwrap();
    let server = info["server_url"].as_str().unwrap();
    let decisions = admin_get(server, token, "/v1/decisions?limit=1000");
    let decision = decisions["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["request_id"] == payment["request_id"])
        .unwrap_or_else(|| panic!("no decision {}", payment["request_id"]));
    assert_eq!(decision["outcome"], "approved");
    assert_eq!(decision["call_leaf_hash"], bought["leaf_hash"]);
    // The indexer settles it when it sees the token's `AuthorizationUsed`.
    let demo_token = info["token"].as_str().unwrap().to_lowercase();
    let token_spend = || {
        let spend = admin_get(server, token, "/v1/spend");
        spend["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["token"].as_str().unwrap_or_default().to_lowercase() == demo_token)
            .cloned()
            .unwrap_or_else(|| panic!("no spend of the token: {spend}"))
    };
    let mut row = token_spend();
    for _ in 0..100 {
        if row["settled"] == "10000" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        row = token_spend();
    }
    assert_eq!(row["settled"], "10000", "settled: {row}");
    assert_eq!(row["reserved"], "0");

    // An auditor verifies the call's disclosure: what the agent read, answered and paid.
    let rpc_url = info["rpc_url"].as_str().unwrap();
    let disclosure = summary["disclosure"].as_str().unwrap();
    let (code, verdict) = run_json(
        chaperone()
            .args(["verify", disclosure, "--rpc-url", rpc_url, "--json"])
            .args(["--server", info["server_url"].as_str().unwrap()]),
    );
    assert_eq!(code, 0, "{verdict}");
    assert_eq!(verdict["verified"]["leaf_hash"], bought["leaf_hash"]);
    assert_eq!(
        verdict["verified"]["disclosed"],
        serde_json::json!(["input", "output", "metadata"])
    );
    let paid = &verdict["payments"][0];
    assert_eq!(paid["settled_on_chain"], true, "{verdict}");
    assert_eq!(paid["payment"]["request_id"], payment["request_id"]);

    // Permit2, through the x402 proxy: bought the same way, under the same budget.
    let permit2 = PaidApi::start(&devnet_file, &["--method", "permit2"]);
    let summary = buy(&devnet_file, &permit2.url());
    let bought = &summary["payments"]["x402_paid_api"];
    assert_eq!(bought["outcome"], "paid", "{summary}");
    assert_eq!(bought["payment"]["method"], "permit2");
    assert_eq!(bought["payment"]["settlement"]["success"], true);
    assert_eq!(permit2.stats(), (1, 1));

    // Over what one authorization of the wallet may move (200 of the token against its
    // budget's 100): refused before any decision, and the merchant never sees a payment header.
    let dear = PaidApi::start(&devnet_file, &["--price", "200000000"]);
    let summary = buy(&devnet_file, &dear.url());
    let refused = &summary["payments"]["x402_paid_api"];
    assert_eq!(refused["outcome"], "refused", "{summary}");
    assert_eq!(refused["code"], "over_max_value", "{refused}");
    assert_eq!(
        dear.stats(),
        (0, 0),
        "no payment header reached the merchant"
    );

    drop((api, permit2, dear));
    interrupt(devnet);
    std::fs::remove_dir_all(&dir).ok();
}

fn admin_get(server: &str, token: &str, path: &str) -> Value {
    let port: u16 = server.rsplit(':').next().unwrap().parse().unwrap();
    let bearer = format!("Bearer {token}");
    let (_, body) = get(port, path, Some(("Authorization", &bearer)));
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// A JSON-RPC call over plain HTTP/1.1: the `result`.
fn rpc(url: &str, method: &str, params: Value) -> Value {
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let body = serde_json::json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params })
        .to_string();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (_, body) = response.split_once("\r\n\r\n").unwrap();
    serde_json::from_str::<Value>(body).unwrap()["result"].clone()
}

/// ERC-6492: the devnet's second wallet exists only as a predicted address holding tokens.
/// Its first x402 payment carries the factory call; x402-rs's facilitator deploys it and pays
/// in one transaction, and the next payment uses the deployed wallet.
#[test]
fn an_undeployed_wallet_is_deployed_by_its_first_payment() {
    let dir = temp_dir("x402_6492");
    let (devnet, info) = up(&dir, Ports::free());
    let devnet_file = dir.join("devnet.json");
    let rpc_url = info["rpc_url"].as_str().unwrap();
    let wallet = info["counterfactual_wallet"]["address"].as_str().unwrap();
    let code = || {
        rpc(
            rpc_url,
            "eth_getCode",
            serde_json::json!([wallet, "latest"]),
        )
    };
    assert_eq!(code(), "0x", "not deployed by `up`");

    let api = PaidApi::start(&devnet_file, &["--method", "eip3009"]);
    let buy_from_it = || {
        let (status, summary) = run_json(example_agent().arg("--devnet").arg(&devnet_file).args([
            "--calls",
            "0",
            "--no-pay",
            "--counterfactual",
            "--json",
            "--x402-url",
            &api.url(),
        ]));
        assert_eq!(status, 0, "{summary}");
        summary["payments"]["x402_paid_api"].clone()
    };
    let first = buy_from_it();
    assert_eq!(first["outcome"], "paid", "{first}");
    let settlement = &first["payment"]["settlement"];
    assert_eq!(settlement["success"], true, "{first}");
    assert_eq!(
        settlement["payer"].as_str().unwrap().to_lowercase(),
        wallet.to_lowercase()
    );
    assert_ne!(code(), "0x", "the first payment deployed the wallet");
    let second = buy_from_it();
    assert_eq!(second["outcome"], "paid", "{second}");
    assert_eq!(api.stats(), (2, 2));

    drop(api);
    interrupt(devnet);
    std::fs::remove_dir_all(&dir).ok();
}

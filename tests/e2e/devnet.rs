use std::{
    path::Path,
    process::{Child, Stdio},
    time::Duration,
};

use chaperone_testkit::{free_port, temp_dir};
use serde_json::Value;

use crate::{chaperone, example_agent, first_json_line, interrupt, run_json};

/// The ports of one devnet: the server's, Anvil's and the x402 facilitator's.
#[derive(Clone, Copy)]
pub(crate) struct Ports {
    pub(crate) server: u16,
    pub(crate) anvil: u16,
    pub(crate) facilitator: u16,
}

impl Ports {
    pub(crate) fn free() -> Self {
        Self {
            server: free_port(),
            anvil: free_port(),
            facilitator: free_port(),
        }
    }
}

pub(crate) fn up(dir: &Path, ports: Ports) -> (Child, Value) {
    let mut child = chaperone()
        .args(["up", "--json", "--data-dir"])
        .arg(dir)
        .args([
            "--port",
            &ports.server.to_string(),
            "--anvil-port",
            &ports.anvil.to_string(),
            "--facilitator-port",
            &ports.facilitator.to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let info = first_json_line(&mut child);
    assert!(info.get("error").is_none(), "chaperone up failed: {info}");
    (child, info)
}

/// Every sequence number the server logged for the agent, through all pages.
fn logged_sequences(info: &Value) -> Vec<u64> {
    let server = info["server_url"].as_str().unwrap();
    let agent = info["agent"].as_str().unwrap();
    let token = info["admin_token"].as_str().unwrap();
    let output = chaperone()
        .args([
            "export", "--server", server, "--what", "records", "--agent", agent,
        ])
        .args(["--format", "jsonl"])
        .env("CHAPERONE_ADMIN_TOKEN", token)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["sequence"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[test]
fn devnet_agent_outage_payments_and_verified_disclosure() {
    let dir = temp_dir("devnet");
    let ports = Ports::free();
    let (devnet, info) = up(&dir, ports);
    let devnet_file = dir.join("devnet.json");
    assert!(devnet_file.exists());

    // The agent logs 100 calls, 20 ms apart; the devnet goes away under it and comes back.
    let agent = example_agent()
        .arg("--devnet")
        .arg(&devnet_file)
        .args(["--calls", "100", "--pace-ms", "20", "--no-pay", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(600));
    interrupt(devnet);
    std::thread::sleep(Duration::from_millis(1_000));
    let (devnet, again) = up(&dir, ports);
    assert_eq!(again, info, "a second `up` reuses the data directory");
    let output = agent.wait_with_output().unwrap();
    assert!(output.status.success(), "the agent failed");
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["recorded"], 100);
    assert_eq!(summary["delivered"], 100);
    assert_eq!(
        logged_sequences(&info),
        (0..100).collect::<Vec<_>>(),
        "every record logged exactly once, in order, across the restart"
    );

    // Payments inside and outside the policy, then a disclosure of a new record.
    let (code, summary) = run_json(
        example_agent()
            .arg("--devnet")
            .arg(&devnet_file)
            .args(["--calls", "5", "--json"]),
    );
    assert_eq!(code, 0, "{summary}");
    let payments = &summary["payments"];
    assert_eq!(
        payments["small_native"]["outcome"], "executed",
        "{payments}"
    );
    assert_eq!(payments["token"]["outcome"], "executed", "{payments}");
    assert_eq!(
        payments["over_cap_native"]["outcome"], "denied",
        "{payments}"
    );
    let reasons = payments["over_cap_native"]["reasons"].to_string();
    assert!(reasons.contains("per_transaction_cap"), "{reasons}");
    assert_eq!(
        payments["needs_approval_native"]["outcome"], "pending",
        "{payments}"
    );
    assert_eq!(payments["x402_authorization"]["eip1271_valid"], true);
    assert_eq!(logged_sequences(&info).len(), 105);

    // An auditor verifies the disclosed record against the chain …
    let disclosure = summary["disclosure"].as_str().unwrap().to_owned();
    let rpc_url = info["rpc_url"].as_str().unwrap();
    let (code, verdict) = run_json(
        chaperone()
            .args(["verify", &disclosure, "--rpc-url", rpc_url, "--json"])
            .args([
                "--audit-log",
                info["audit_log"].as_str().unwrap(),
                "--log-id",
                info["log_id"].as_str().unwrap(),
            ]),
    );
    assert_eq!(code, 0, "{verdict}");
    assert_eq!(verdict["verified"]["log_id"], info["log_id"]);
    assert!(
        verdict["verified"]["anchored_at"].as_u64().is_some(),
        "{verdict}"
    );
    // Without a log to trust, verify refuses to start (exit 1, the flag named).
    let untrusting = chaperone()
        .args(["verify", &disclosure, "--rpc-url", rpc_url])
        .output()
        .unwrap();
    assert_eq!(
        untrusting.status.code(),
        Some(1),
        "verify with no log to trust"
    );
    assert_eq!(verdict["valid"], true);
    assert_eq!(verdict["verified"]["leaf_hash"], summary["first_leaf_hash"]);
    assert_eq!(
        verdict["verified"]["disclosed"],
        serde_json::json!(["input", "output"])
    );

    // … and a doctored one fails.
    let mut doctored: Value =
        serde_json::from_str(&std::fs::read_to_string(&disclosure).unwrap()).unwrap();
    doctored["disclosed"][0]["content"] = Value::String("0x666f72676564".into());
    let forged = dir.join("forged.json");
    std::fs::write(&forged, doctored.to_string()).unwrap();
    let (code, verdict) = run_json(
        chaperone()
            .arg("verify")
            .arg(&forged)
            .args(["--rpc-url", rpc_url, "--json", "--server"])
            .arg(info["server_url"].as_str().unwrap()),
    );
    assert_eq!(code, 2);
    assert_eq!(verdict["valid"], false);

    // The policy dry run agrees with the service.
    let status = chaperone()
        .arg("policy")
        .arg("test")
        .arg(info["policy_file"].as_str().unwrap())
        .args(["--to", "0x4242424242424242424242424242424242424242"])
        .args(["--amount", "500000000000000000"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(
        status.code(),
        Some(2),
        "0.5 ETH is over the demo policy's cap"
    );
    let (code, dry_run) = run_json(
        chaperone()
            .arg("policy")
            .arg("test")
            .arg(info["policy_file"].as_str().unwrap())
            .args(["--to", "0x4242424242424242424242424242424242424242"])
            .args(["--amount", "20000000000000000", "--json"]),
    );
    assert_eq!(
        (code, &dry_run["outcome"]),
        (0, &serde_json::json!("approved")),
        "0.02 ETH is within the demo policy: {dry_run}"
    );

    // Who may append: the demo agent (with its wallet); an admin registers another and
    // unregisters it again, through the CLI.
    let server = info["server_url"].as_str().unwrap();
    let admin = |args: &[&str]| {
        run_json(
            chaperone()
                .args(["agent"])
                .args(args)
                .args(["--server", server, "--json"])
                .env(
                    "CHAPERONE_ADMIN_TOKEN",
                    info["admin_token"].as_str().unwrap(),
                ),
        )
    };
    let other = "0x1111111111111111111111111111111111111111";
    assert_eq!(admin(&["register", other]).0, 0);
    let (code, list) = admin(&["list"]);
    assert_eq!(code, 0);
    let listed: Vec<&str> = list["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["address"].as_str().unwrap())
        .collect();
    let demo = info["agent"].as_str().unwrap();
    assert!(
        listed.iter().any(|a| a.eq_ignore_ascii_case(demo)),
        "{list}"
    );
    assert!(
        listed.iter().any(|a| a.eq_ignore_ascii_case(other)),
        "{list}"
    );
    assert_eq!(admin(&["unregister", other]).0, 0);

    // An admin issues an auditor a token, and revokes it: the API refuses it at once.
    let tokens = |args: &[&str]| {
        run_json(
            chaperone()
                .args(["token"])
                .args(args)
                .args(["--server", server, "--json"])
                .env(
                    "CHAPERONE_ADMIN_TOKEN",
                    info["admin_token"].as_str().unwrap(),
                ),
        )
    };
    let (code, issued) = tokens(&["issue", "carol auditor", "--role", "auditor"]);
    assert_eq!(code, 0, "{issued}");
    let auditor = issued["token"].as_str().unwrap().to_owned();
    let decisions = |token: &str| {
        chaperone()
            .args([
                "export",
                "--server",
                server,
                "--what",
                "decisions",
                "--format",
                "jsonl",
            ])
            .env("CHAPERONE_ADMIN_TOKEN", token)
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(decisions(&auditor), "the issued token works");
    assert_eq!(tokens(&["revoke", "carol auditor"]).0, 0);
    assert!(!decisions(&auditor), "a revoked token still works");
    let (_, list) = tokens(&["list"]);
    assert!(list.to_string().contains("carol auditor"), "{list}");
    assert!(
        !list.to_string().contains(&auditor),
        "a listing shows a token"
    );

    // The agent itself crashes (SIGKILL) mid-run; started again, it delivers everything its
    // outbox held, and the log has every persisted record once, with no gap.
    let mut crashing = example_agent()
        .arg("--devnet")
        .arg(&devnet_file)
        .args(["--calls", "1000", "--pace-ms", "5", "--no-pay", "--json"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1_500));
    crashing.kill().unwrap();
    crashing.wait().unwrap();
    let (code, summary) = run_json(
        example_agent()
            .arg("--devnet")
            .arg(&devnet_file)
            .args(["--calls", "0", "--no-pay", "--json"]),
    );
    assert_eq!(code, 0, "{summary}");
    let delivered = summary["delivered"].as_u64().unwrap();
    assert!(
        delivered > 105 && delivered < 1_105,
        "the crashed run had persisted part of its records: {delivered}"
    );
    assert_eq!(
        logged_sequences(&info),
        (0..delivered).collect::<Vec<_>>(),
        "after the crash every persisted record is logged exactly once"
    );

    interrupt(devnet);
    std::fs::remove_dir_all(&dir).ok();
}

/// `chaperone up` killed with SIGKILL leaves its Anvil running on the port; the next `up` of the
/// same data directory stops it (it recorded the pid) and comes back with the same devnet.
#[test]
fn up_recovers_from_a_killed_up() {
    let dir = temp_dir("killed_up");
    let ports = Ports::free();
    let (mut first, info) = up(&dir, ports);
    let pid: u32 = std::fs::read_to_string(dir.join("anvil.pid"))
        .expect("up records its Anvil's pid")
        .trim()
        .parse()
        .unwrap();
    // If this test fails, the orphan must not outlive it (it would hold the port and the
    // test's output pipe).
    struct KillOnDrop(u32);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = std::process::Command::new("kill")
                .arg(self.0.to_string())
                .status();
        }
    }
    let _orphan = KillOnDrop(pid);
    // The user raises the demo policy's version and installs it on the demo wallet only.
    let policy_file = info["policy_file"].as_str().unwrap();
    let raised =
        std::fs::read_to_string(policy_file)
            .unwrap()
            .replacen("version = 1", "version = 2", 1);
    std::fs::write(policy_file, raised).unwrap();
    let policy = |args: &[&str]| {
        run_json(
            chaperone()
                .arg("policy")
                .args(args)
                .args(["--server", info["server_url"].as_str().unwrap(), "--json"])
                .env(
                    "CHAPERONE_ADMIN_TOKEN",
                    info["admin_token"].as_str().unwrap(),
                ),
        )
    };
    let wallet = info["wallet"].as_str().unwrap();
    let x402_wallet = info["counterfactual_wallet"]["address"].as_str().unwrap();
    assert_eq!(policy(&["set", "--wallet", wallet, policy_file]).0, 0);
    // Let Anvil write its state (every 5 s), then kill `up` with no chance to clean up.
    std::thread::sleep(Duration::from_secs(6));
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "the orphaned Anvil still runs"
    );
    let (again, info_again) = up(&dir, ports);
    assert_eq!(info_again, info, "the same devnet came back");
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the orphan was stopped"
    );
    // The restart left each wallet the policy it had: it did not install version 2 on the
    // wallet the user left alone.
    let version = |wallet: &str| policy(&["show", "--wallet", wallet]).1["version"].clone();
    assert_eq!(version(wallet), 2);
    assert_eq!(
        version(x402_wallet),
        1,
        "up re-applied policy.toml to the x402 wallet"
    );
    interrupt(again);
}

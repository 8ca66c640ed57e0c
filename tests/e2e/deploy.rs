use alloy::signers::local::PrivateKeySigner;
use chaperone_chain::deterministic_addresses;
use chaperone_core::B256;
use chaperone_testkit::{devnet, free_port, postgres_database, temp_dir};

use crate::{chaperone, run_json};

/// Anvil's first dev account (public knowledge).
const ANVIL_KEY_0: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

#[test]
fn deploy_is_deterministic_and_idempotent() {
    let devnet = devnet();
    let deploy = |salt: &str| {
        run_json(
            chaperone()
                .args([
                    "deploy",
                    "--json",
                    "--rpc-url",
                    &devnet.rpc_url(),
                    "--salt",
                    salt,
                ])
                .args(["--operator", "0x4242424242424242424242424242424242424242"])
                .env("CHAPERONE_DEPLOYER_KEY", ANVIL_KEY_0),
        )
    };
    let zero = format!("{}", B256::ZERO);
    let (code, first) = deploy(&zero);
    assert_eq!(code, 0, "{first}");
    let (audit_log, factory) = deterministic_addresses(B256::ZERO);
    assert_eq!(first["audit_log"], audit_log.to_string().to_lowercase());
    assert_eq!(first["wallet_factory"], factory.to_string().to_lowercase());
    let (code, second) = deploy(&zero);
    assert_eq!(code, 0);
    assert_eq!(
        second["audit_log"], first["audit_log"],
        "same salt, same addresses"
    );
    assert_ne!(
        second["log_id"], first["log_id"],
        "each run creates a new log"
    );
    let (_, other) = deploy(&format!("{}", B256::repeat_byte(1)));
    assert_ne!(other["audit_log"], first["audit_log"]);

    // Without a key it says which variable to set.
    let output = chaperone()
        .args(["deploy", "--rpc-url", &devnet.rpc_url()])
        .env_remove("CHAPERONE_DEPLOYER_KEY")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("CHAPERONE_DEPLOYER_KEY"));
}

/// A fresh PostgreSQL database when `CHAPERONE_TEST_PG_URL` is set, else an SQLite file.
async fn database(dir: &std::path::Path) -> String {
    match postgres_database("chaperone_e2e").await {
        Some(url) => url,
        None => format!("sqlite:{}?mode=rwc", dir.join("chaperone.db").display()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_runs_from_the_example_production_config() {
    let devnet = devnet();
    let operator = devnet.signer(1);
    let (code, deployed) = run_json(
        chaperone()
            .args(["deploy", "--json", "--rpc-url", &devnet.rpc_url()])
            .args(["--operator", &operator.address().to_string()])
            .env("CHAPERONE_DEPLOYER_KEY", ANVIL_KEY_0),
    );
    assert_eq!(code, 0, "{deployed}");
    let dir = temp_dir("serve");
    PrivateKeySigner::encrypt_keystore(
        &dir,
        &mut rand::thread_rng(),
        B256::repeat_byte(7),
        "keystore password",
        Some("cosigner.json"),
    )
    .unwrap();
    // The shipped example, with this machine's database, chain, contracts and keystore.
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/chaperone.example.toml"),
    )
    .unwrap();
    let port = free_port();
    let mut config = example_config::Config::parse(&example);
    config.set("database", &database(&dir).await);
    config.set("rpc_url", &devnet.rpc_url());
    config.set("listen", &format!("127.0.0.1:{port}"));
    config.set("chain_id", &devnet.chain_id().to_string());
    config.set("address", deployed["audit_log"].as_str().unwrap());
    config.set("log_id", deployed["log_id"].as_str().unwrap());
    config.set("keystore", "cosigner.json");
    let file = dir.join("chaperone.toml");
    std::fs::write(&file, config.text()).unwrap();

    let child = chaperone()
        .args(["serve", "--config"])
        .arg(&file)
        .env("CHAPERONE_COSIGNER_KEYSTORE_PASSWORD", "keystore password")
        .env("CHAPERONE_OPERATOR_KEY", format!("{}", operator.to_bytes()))
        .env("CHAPERONE_ADMIN_TOKEN", "serve-test-admin")
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut healthy = false;
    for _ in 0..150 {
        if client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            healthy = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // The admin token from the environment works (and a wrong one does not).
    let status = |token: &'static str| {
        let request = client
            .get(format!("{base}/v1/decisions"))
            .bearer_auth(token);
        async move {
            request
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    };
    let (good, bad) = (status("serve-test-admin").await, status("wrong").await);
    crate::interrupt(child);
    assert!(healthy, "chaperone serve did not answer /healthz");
    assert_eq!((good, bad), (200, 401));
}

/// Line-based edits of `key = "value"` in a TOML file (enough for the example config).
mod example_config {
    pub struct Config(Vec<String>);

    impl Config {
        pub fn parse(text: &str) -> Self {
            Self(text.lines().map(str::to_owned).collect())
        }

        /// Replaces the first `key = …` line's value (quoted unless it is a number).
        pub fn set(&mut self, key: &str, value: &str) {
            let line = self
                .0
                .iter_mut()
                .find(|l| l.split('=').next().is_some_and(|k| k.trim() == key))
                .unwrap_or_else(|| panic!("the example config has no `{key}`"));
            *line = if value.parse::<u64>().is_ok() {
                format!("{key} = {value}")
            } else {
                format!("{key} = \"{value}\"")
            };
        }

        pub fn text(&self) -> String {
            self.0.join("\n")
        }
    }
}

#[test]
fn the_systemd_unit_is_valid() {
    let unit = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/chaperone.service"),
    )
    .unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/chaperone serve --config "));
    // Point it at the binary just built (systemd checks that ExecStart is executable).
    let unit = unit.replace("/usr/local/bin/chaperone", env!("CARGO_BIN_EXE_chaperone"));
    let file = temp_dir("unit").join("chaperone.service");
    std::fs::write(&file, unit).unwrap();
    let output = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&file)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "systemd-analyze is needed to check deploy/chaperone.service ({e}): install systemd"
            )
        });
    let complaints = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && complaints.trim().is_empty(),
        "systemd-analyze verify: {complaints}"
    );
}

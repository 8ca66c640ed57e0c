//! The SDK against a real Chaperone server (in process, on a real socket, SQLite): batching,
//! retry through an outage, backpressure, exactly-once redelivery, disclosure and forgetting.
#![allow(missing_docs, unreachable_pub, clippy::unwrap_used)]

mod client;
mod disclosure;
mod evidence;
mod files;
mod recorder;
mod wallet;
mod x402;

use std::{path::PathBuf, time::Duration};

use chaperone_core::{Address, Secp256k1Signer};
use chaperone_sdk::RecorderConfig;
use chaperone_server::{CheckpointConfig, RunningService, ServiceConfig, ServiceKeys, start};
use chaperone_testkit::private_file;

pub const ADMIN: &str = "sdk-test-admin";

/// A running server and what it takes to stop it.
pub struct Server {
    pub url: String,
    pub database: PathBuf,
    pub service: RunningService,
    stop: tokio::sync::oneshot::Sender<()>,
    pub operator: Secp256k1Signer,
}

impl Server {
    /// A server where `agents` may append to the log.
    pub async fn start(port: u16, database: Option<PathBuf>, agents: &[Address]) -> Self {
        Self::start_with(
            port,
            database,
            Secp256k1Signer::random().unwrap(),
            |config| config.agents = agents.to_vec(),
        )
        .await
    }

    /// A server with `cosigner` as co-signer and operator, and the configuration adjusted.
    pub async fn start_with(
        port: u16,
        database: Option<PathBuf>,
        operator: Secp256k1Signer,
        adjust: impl FnOnce(&mut ServiceConfig),
    ) -> Self {
        let database = database.unwrap_or_else(|| private_file("server"));
        let mut config = ServiceConfig {
            database: format!("sqlite:{}?mode=rwc", database.display()),
            chain_id: 31337,
            listen: format!("127.0.0.1:{port}"),
            rpc_url: None,
            confirmations: 0,
            start_block: 0,
            audit_log: None,
            checkpoints: CheckpointConfig {
                interval_secs: 1,
                max_records: 10_000,
            },
            cosigner: None,
            operator: None,
            admin_token_env: None,
            wallets: vec![],
            agents: vec![],
            webhook: None,
        };
        adjust(&mut config);
        let keys = ServiceKeys {
            cosigner: operator.clone(),
            operator: operator.clone(),
            admin_token: Some(ADMIN.into()),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let service = start(&config, keys, async {
            stopped.await.ok();
        })
        .await
        .unwrap();
        Self {
            url: format!("http://{}", service.local_addr),
            database,
            service,
            stop,
            operator,
        }
    }

    pub async fn stop(self) {
        self.stop.send(()).unwrap();
        self.service.task.await.unwrap().unwrap();
    }

    /// The sequence numbers the server logged for `agent`, in log order.
    pub async fn sequences(&self, agent: Address) -> Vec<u64> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("{}/v1/agents/{agent}/records?limit=1000", self.url);
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let page: serde_json::Value = reqwest::Client::new()
                .get(url)
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            for item in page["items"].as_array().unwrap() {
                out.push(item["sequence"].as_u64().unwrap());
            }
            cursor = page["next_cursor"].as_str().map(str::to_owned);
            if cursor.is_none() {
                return out;
            }
        }
    }
}

pub fn config(url: &str, data_file: &std::path::Path) -> RecorderConfig {
    let mut config = RecorderConfig::new(url, data_file);
    config.retry = (Duration::from_millis(50), Duration::from_millis(200));
    config
}

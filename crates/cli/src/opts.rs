//! The flag groups several commands share, as foundry's `opts/ethereum.rs` has them: a server
//! and the bearer token to call it with, a chain's RPC URL, the key that sends transactions.
//! Clap reads each from its flag or else its environment variable (`env =`), so `--help` names
//! the variable and no command reads one by hand. Secrets are `hide_env_values` (`--help`
//! never prints them) and [`Secret`]s (nor does a `{:?}` of the arguments). Prefer the
//! variables for secrets: a command line is visible to the machine's other users (`ps`).

use alloy::signers::local::PrivateKeySigner;
use anyhow::Context;
use chaperone_api::Client;
use chaperone_core::B256;
use clap::Args;

/// What to tell someone who gave no bearer token (the same words for every command).
const NO_TOKEN: &str = "set CHAPERONE_ADMIN_TOKEN (or CHAPERONE_AUDITOR_TOKEN for export) to a \
                        bearer token of the server";

/// A secret from the command line or the environment: its `Debug` does not show it.
#[derive(Clone)]
pub(crate) struct Secret(String);

impl Secret {
    /// The secret itself.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(text: String) -> Self {
        Self(text)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A server an admin calls (`agent register`, `token issue`, `policy set`…): its URL and an
/// admin's bearer token.
#[derive(Debug, Args)]
pub(crate) struct AdminServer {
    /// The server's URL.
    #[arg(long, env = "CHAPERONE_SERVER_URL")]
    pub(crate) server: String,
    /// An admin's bearer token (prefer the variable: other users see command lines).
    #[arg(
        long,
        env = "CHAPERONE_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub(crate) admin_token: Option<Secret>,
}

impl AdminServer {
    /// A client of the server that sends the admin's token.
    pub(crate) fn client(&self) -> anyhow::Result<Client> {
        let token = self.admin_token.as_ref().context(NO_TOKEN)?;
        Ok(Client::new(&self.server).with_token(token.expose()))
    }
}

/// A server an auditor reads (`export`, `agent list`): its URL and an admin's or an
/// auditor's bearer token (the admin's when both are set).
#[derive(Debug, Args)]
pub(crate) struct ReaderServer {
    /// The server's URL.
    #[arg(long, env = "CHAPERONE_SERVER_URL")]
    pub(crate) server: String,
    /// An admin's bearer token (prefer the variable: other users see command lines).
    #[arg(
        long,
        env = "CHAPERONE_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub(crate) admin_token: Option<Secret>,
    /// Or an auditor's (prefer the variable: other users see command lines).
    #[arg(
        long,
        env = "CHAPERONE_AUDITOR_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub(crate) auditor_token: Option<Secret>,
}

impl ReaderServer {
    /// A client of the server that sends the admin's token, or else the auditor's.
    pub(crate) fn client(&self) -> anyhow::Result<Client> {
        let token = self
            .admin_token
            .as_ref()
            .or(self.auditor_token.as_ref())
            .context(NO_TOKEN)?;
        Ok(Client::new(&self.server).with_token(token.expose()))
    }
}

/// A chain's JSON-RPC endpoint. Its variable's value is hidden from `--help` too: providers
/// put their API key in the URL, so messages show it as [`redact_url`] does. (`up --rpc-url`
/// and `verify --rpc-url` have no variable: one left in the environment would silently put the
/// devnet on another chain, or check a disclosure against a chain the auditor did not name.)
#[derive(Args)]
pub(crate) struct Rpc {
    /// The chain's JSON-RPC URL.
    #[arg(long, env = "CHAPERONE_RPC_URL", hide_env_values = true)]
    pub(crate) rpc_url: String,
}

impl std::fmt::Debug for Rpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rpc")
            .field("rpc_url", &redact_url(&self.rpc_url))
            .finish()
    }
}

/// `url` as messages show it: its scheme, host and port, never its user, path or query (where
/// providers put API keys): `https://eth-mainnet.example/…`.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "the RPC URL".to_owned();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    let hidden = rest.len() > authority.len() + 1 || authority.contains('@');
    format!("{scheme}://{host}{}", if hidden { "/…" } else { "" })
}

/// The account that sends transactions (`deploy`, `wallet create`, `up` on another chain).
#[derive(Debug, Args)]
pub(crate) struct Sender {
    /// The sending account's private key, hex (prefer the variable: other users see
    /// command lines).
    #[arg(
        long,
        env = "CHAPERONE_DEPLOYER_KEY",
        hide_env_values = true,
        value_name = "HEX"
    )]
    pub(crate) deployer_key: Option<Secret>,
}

impl Sender {
    /// Whether a key was given.
    pub(crate) fn is_set(&self) -> bool {
        self.deployer_key.is_some()
    }

    /// The sending account's key, or which variable to set.
    pub(crate) fn signer(&self) -> anyhow::Result<PrivateKeySigner> {
        let key = self
            .deployer_key
            .as_ref()
            .context("the key variable CHAPERONE_DEPLOYER_KEY is not set")
            .and_then(|hex| {
                hex.expose()
                    .trim()
                    .parse::<B256>()
                    .context("CHAPERONE_DEPLOYER_KEY is not 32 bytes of hex")
            })
            .and_then(|bytes| Ok(PrivateKeySigner::from_bytes(&bytes)?))
            .context("set CHAPERONE_DEPLOYER_KEY to the sending account's private key (hex)")?;
        Ok(key)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_rpc_url_is_shown_without_its_key() {
        for (url, shown) in [
            ("https://eth.example/v2/SECRETKEY", "https://eth.example/…"),
            ("https://user:SECRET@eth.example", "https://eth.example/…"),
            ("https://eth.example/?key=SECRET", "https://eth.example/…"),
            ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
            ("http://127.0.0.1:8545/", "http://127.0.0.1:8545"),
            ("SECRET-not-a-url", "the RPC URL"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
        let rpc = Rpc {
            rpc_url: "https://eth.example/v2/SECRETKEY".into(),
        };
        assert!(!format!("{rpc:?}").contains("SECRET"));
    }

    #[test]
    fn a_secret_is_not_debug_printed() {
        let sender = Sender {
            deployer_key: Some(Secret::from("0xabc".to_owned())),
        };
        assert!(!format!("{sender:?}").contains("abc"));
    }

    #[test]
    fn a_missing_or_bad_key_names_its_variable() {
        for key in [None, Some("0xzz"), Some(&"00".repeat(32)[..])] {
            let sender = Sender {
                deployer_key: key.map(|k| Secret::from(k.to_owned())),
            };
            let message = format!("{:#}", sender.signer().unwrap_err());
            assert!(message.contains("CHAPERONE_DEPLOYER_KEY"), "{message}");
            assert!(
                !message.contains("0xzz"),
                "the key is not echoed: {message}"
            );
        }
        let sender = Sender {
            deployer_key: Some(Secret::from(format!(" 0x{} \n", "01".repeat(32)))),
        };
        assert!(sender.signer().is_ok());
    }
}

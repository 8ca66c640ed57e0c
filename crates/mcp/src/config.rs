//! The gateway's TOML configuration (`chaperone mcp --config mcp.toml`): the upstream MCP
//! servers, the tool policy, where records go. The agent's key is the CLI's business (a
//! keystore or an environment variable, never the file), so it is not here.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use serde::Deserialize;

use crate::{Error, Result, policy::ToolPolicy};

/// The separator between an upstream's name and a tool's when several upstreams are served.
pub const NAMESPACE_SEPARATOR: &str = "__";

/// Everything the gateway needs besides the agent key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// The Chaperone server the records go to (default: the devnet's).
    #[serde(default)]
    pub server_url: Option<String>,
    /// The recorder's local file (outbox and disclosure store); created if missing
    /// (default: `.chaperone/mcp.db`, or the demo agent's `.chaperone/agent.db` when the gateway
    /// records as the devnet's demo agent).
    #[serde(default)]
    pub data_file: Option<PathBuf>,
    /// How long a tool call waits for its record's receipt before answering without it
    /// (the leaf hash is always there; 0 never waits). Milliseconds.
    #[serde(default = "default_receipt_timeout_ms")]
    pub receipt_timeout_ms: u64,
    /// The MCP servers behind the gateway. `chaperone mcp -- COMMAND…` adds one named by
    /// the command.
    #[serde(default, rename = "upstream")]
    pub upstreams: Vec<UpstreamConfig>,
    /// The tool policy: default deny.
    #[serde(default)]
    pub policy: ToolPolicy,
    /// Pay x402 tools from this wallet (`[wallet]`; absent: requests for payment reach the
    /// agent as the upstream sent them).
    #[serde(default)]
    pub wallet: Option<WalletSection>,
    /// How `--http` admits callers (`[http]`).
    #[serde(default)]
    pub http: HttpSection,
}

/// The `[http]` table: the `--http` endpoint's access rules. The token itself is never in the
/// file: it is read from the environment variable named here.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// The environment variable holding the bearer token (default `CHAPERONE_MCP_TOKEN`).
    #[serde(default)]
    pub token_env: Option<String>,
    /// Browser origins allowed to call (`scheme://host[:port]`); none by default.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// The most live sessions (default 32).
    #[serde(default)]
    pub max_sessions: Option<usize>,
}

impl HttpSection {
    /// The access rules, with the token read from the environment.
    pub fn access(&self) -> crate::HttpAccess {
        let name = self.token_env.as_deref().unwrap_or("CHAPERONE_MCP_TOKEN");
        crate::HttpAccess {
            token: std::env::var(name).ok().filter(|t| !t.is_empty()),
            allowed_origins: self.allowed_origins.clone(),
            max_sessions: self.max_sessions.unwrap_or(crate::DEFAULT_MAX_SESSIONS),
        }
    }
}

/// The `[wallet]` table: the `AgentWallet` whose agent is the gateway's key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalletSection {
    /// The wallet's address (default: the devnet's demo wallet).
    #[serde(default)]
    pub address: Option<String>,
    /// The chain's JSON-RPC URL (default: the devnet's).
    #[serde(default)]
    pub rpc_url: Option<String>,
}

fn default_receipt_timeout_ms() -> u64 {
    5_000
}

/// One upstream MCP server: a command the gateway starts (stdio) or a Streamable HTTP URL.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Its name: in the records' model id (`mcp:<name>/<tool>`), in the policy, and as the
    /// tools' prefix (`<name>__<tool>`) when there are several upstreams.
    pub name: String,
    /// The command to start (stdio).
    #[serde(default)]
    pub command: Option<String>,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Variables added to its environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Or: its Streamable HTTP endpoint.
    #[serde(default)]
    pub url: Option<String>,
}

/// How an upstream is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamTransport {
    /// A child process speaking MCP on its stdin and stdout.
    Stdio {
        /// The program.
        command: String,
        /// Its arguments.
        args: Vec<String>,
        /// Added environment.
        env: BTreeMap<String, String>,
    },
    /// A Streamable HTTP endpoint.
    Http {
        /// The URL.
        url: String,
    },
}

impl UpstreamConfig {
    /// The transport, once checked that exactly one of `command` and `url` is given.
    pub fn transport(&self) -> Result<UpstreamTransport> {
        match (&self.command, &self.url) {
            (Some(command), None) => Ok(UpstreamTransport::Stdio {
                command: command.clone(),
                args: self.args.clone(),
                env: self.env.clone(),
            }),
            (None, Some(url)) if self.args.is_empty() && self.env.is_empty() => {
                Ok(UpstreamTransport::Http { url: url.clone() })
            }
            (None, Some(_)) => Err(Error::Config(format!(
                "upstream `{}`: `args` and `env` are for a command, not a url",
                self.name
            ))),
            _ => Err(Error::Config(format!(
                "upstream `{}` needs exactly one of `command` and `url`",
                self.name
            ))),
        }
    }
}

impl GatewayConfig {
    /// Parses the TOML text of a configuration file.
    pub fn from_toml(text: &str) -> Result<Self> {
        Self::from_table(toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?)
    }

    /// Reads the configuration from a parsed TOML table (what is left of the file once the
    /// caller took its own keys, such as the agent key's source).
    pub fn from_table(table: toml::Table) -> Result<Self> {
        let config: Self = table
            .try_into()
            .map_err(|e: toml::de::Error| Error::Config(e.to_string()))?;
        config.policy.check()?;
        Ok(config)
    }

    /// An empty configuration: no upstream, default-deny policy, devnet defaults.
    pub fn empty() -> Self {
        Self {
            server_url: None,
            data_file: None,
            receipt_timeout_ms: default_receipt_timeout_ms(),
            upstreams: Vec::new(),
            policy: ToolPolicy::default(),
            wallet: None,
            http: HttpSection::default(),
        }
    }

    /// Adds an upstream started from a command line (`chaperone mcp -- COMMAND ARGS…`), named
    /// after the program's file name unless `name` is given.
    pub fn add_command(&mut self, name: Option<String>, command: Vec<String>) -> Result<()> {
        let mut words = command.into_iter();
        let program = words
            .next()
            .ok_or_else(|| Error::Config("the upstream command is empty".into()))?;
        let name = name.unwrap_or_else(|| {
            std::path::Path::new(&program)
                .file_name()
                .map_or_else(|| program.clone(), |n| n.to_string_lossy().into_owned())
        });
        self.upstreams.push(UpstreamConfig {
            name,
            command: Some(program),
            args: words.collect(),
            env: BTreeMap::new(),
            url: None,
        });
        Ok(())
    }

    /// Checks the upstreams: at least one, each with one transport, names unique, free of
    /// the namespace separator and not ending in `_`, so a namespaced name splits one way
    /// only (`a_` beside `a` would make `a___x` both `a_`'s `x` and `a`'s `_x`).
    pub fn check(&self) -> Result<()> {
        if self.upstreams.is_empty() {
            return Err(Error::Config(
                "no upstream: add an [[upstream]] or give a command after `--`".into(),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for upstream in &self.upstreams {
            upstream.transport()?;
            let name = &upstream.name;
            if name.is_empty()
                || name.contains(NAMESPACE_SEPARATOR)
                || name.contains('/')
                || name.ends_with('_')
                || !seen.insert(name.clone())
            {
                return Err(Error::Config(format!(
                    "upstream name `{name}` must be unique, non-empty, without `/` or `{NAMESPACE_SEPARATOR}`, and not end in `_`"
                )));
            }
        }
        Ok(())
    }

    /// How long a call waits for its receipt.
    pub fn receipt_timeout(&self) -> Duration {
        Duration::from_millis(self.receipt_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_configuration_parses() {
        let config = GatewayConfig::from_toml(include_str!("../../../examples/mcp.toml"))
            .expect("examples/mcp.toml parses");
        assert_eq!(config.policy.rules.len(), 4);
        assert!(config.upstreams.is_empty());
    }

    #[test]
    fn upstreams_are_checked() {
        let mut config = GatewayConfig::empty();
        assert!(config.check().is_err(), "no upstream");
        config
            .add_command(None, vec!["/usr/bin/npx".into(), "server".into()])
            .expect("a command");
        assert_eq!(config.upstreams[0].name, "npx");
        config.check().expect("one upstream");
        config
            .add_command(Some("npx".into()), vec!["other".into()])
            .expect("a command");
        assert!(config.check().is_err(), "a duplicate name");
        let bad = GatewayConfig::from_toml("[[upstream]]\nname = \"a__b\"\nurl = \"http://x\"\n")
            .expect("parses");
        assert!(bad.check().is_err(), "the namespace separator in a name");
        // `a_` and `a` would both serve `a___x` (`a_` + `__` + `x`, `a` + `__` + `_x`).
        let trailing = GatewayConfig::from_toml(
            "[[upstream]]\nname = \"a\"\nurl = \"http://x\"\n[[upstream]]\nname = \"a_\"\nurl = \"http://y\"\n",
        )
        .expect("parses");
        assert!(trailing.check().is_err(), "a name ending in `_`");
        let both = GatewayConfig::from_toml(
            "[[upstream]]\nname = \"a\"\nurl = \"http://x\"\ncommand = \"y\"\n",
        )
        .expect("parses");
        assert!(both.check().is_err(), "a command and a url");
        assert!(
            GatewayConfig::from_toml("surprise = 1").is_err(),
            "unknown keys"
        );
    }
}

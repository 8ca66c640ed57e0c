//! `chaperone agent register|unregister|list`: who may append to a server's log.

use std::process::ExitCode;

use chaperone_api::admin::AgentRegistration;
use chaperone_core::{Address, readable::iso8601};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::{
    Output,
    opts::{AdminServer, ReaderServer},
};

#[derive(Debug, Subcommand)]
pub(crate) enum AgentCommand {
    /// Allow an agent to append to the log (a wallet's agent is registered with its wallet).
    Register(AgentRegisterArgs),
    /// Stop an agent appending to the log (its records stay).
    Unregister(AgentArgs),
    /// List the registered agents.
    List(AgentListArgs),
}

#[derive(Debug, Args)]
pub(crate) struct AgentArgs {
    #[command(flatten)]
    pub(crate) server: AdminServer,
    /// The agent's address (its record-signing key's).
    pub(crate) agent: Address,
}

#[derive(Debug, Args)]
pub(crate) struct AgentRegisterArgs {
    #[command(flatten)]
    pub(crate) agent: AgentArgs,
    /// What people call it ("support bot"), shown in the console and `agent list`; registering
    /// again with another label relabels it.
    #[arg(long)]
    pub(crate) label: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct AgentListArgs {
    #[command(flatten)]
    pub(crate) server: ReaderServer,
}

/// Runs one `agent` subcommand.
pub(crate) async fn run(command: AgentCommand, out: Output) -> anyhow::Result<ExitCode> {
    match command {
        AgentCommand::Register(AgentRegisterArgs {
            agent: AgentArgs { server, agent },
            label,
        }) => {
            server
                .client()?
                .register_agent(agent, label.as_deref())
                .await?;
            out.result(
                &json!({ "registered": agent }),
                &format!("agent {agent} may append to the log"),
            )?;
        }
        AgentCommand::Unregister(AgentArgs { server, agent }) => {
            server.client()?.unregister_agent(agent).await?;
            out.result(
                &json!({ "unregistered": agent }),
                &format!("agent {agent} may no longer append to the log"),
            )?;
        }
        AgentCommand::List(AgentListArgs { server }) => {
            let list = server.client()?.registered_agents().await?;
            let lines: Vec<String> = list.agents.iter().map(line).collect();
            out.result(&list, &lines.join("\n"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One agent of the list, its address as the API writes it (lower case), its label and when it
/// last logged a record.
fn line(agent: &AgentRegistration) -> String {
    let mut line = format!("{:#x}", agent.address);
    if !agent.label.is_empty() {
        line.push_str(&format!("  \"{}\"", agent.label.escape_debug()));
    }
    line.push_str(&format!("  registered by {}", agent.registered_by));
    match agent.last_record_ms {
        Some(ms) => line.push_str(&format!("  last record {}", iso8601(ms / 1000))),
        None => line.push_str("  no record yet"),
    }
    line
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_line_shows_the_address_as_the_api_writes_it() {
        let agent = AgentRegistration {
            address: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
                .parse()
                .unwrap(),
            registered_at: 1,
            registered_by: "with its wallet".into(),
            label: String::new(),
            last_record_ms: None,
            last_decision_at: None,
        };
        let wire = serde_json::to_value(&agent).unwrap();
        assert_eq!(
            line(&agent),
            format!(
                "{}  registered by with its wallet  no record yet",
                wire["address"].as_str().unwrap()
            )
        );
        // A label is the admin's text: a terminal control sequence in it is shown escaped.
        let labelled = AgentRegistration {
            label: "bot\u{1b}[2J".into(),
            last_record_ms: Some(1_700_000_000_000),
            ..agent
        };
        let text = line(&labelled);
        assert!(text.contains("\"bot\\u{1b}[2J\""), "{text}");
        assert!(text.ends_with("last record 2023-11-14T22:13:20Z"), "{text}");
    }
}

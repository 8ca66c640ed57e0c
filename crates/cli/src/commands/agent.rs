//! `chaperone agent register|unregister|list`: who may append to a server's log.

use std::process::ExitCode;

use chaperone_api::admin::AgentRegistration;
use chaperone_core::Address;
use clap::{Args, Subcommand};
use serde_json::json;

use crate::{
    Output,
    opts::{AdminServer, ReaderServer},
};

#[derive(Debug, Subcommand)]
pub(crate) enum AgentCommand {
    /// Allow an agent to append to the log (a wallet's agent is registered with its wallet).
    Register(AgentArgs),
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
pub(crate) struct AgentListArgs {
    #[command(flatten)]
    pub(crate) server: ReaderServer,
}

/// Runs one `agent` subcommand.
pub(crate) async fn run(command: AgentCommand, out: Output) -> anyhow::Result<ExitCode> {
    match command {
        AgentCommand::Register(AgentArgs { server, agent }) => {
            server.client()?.register_agent(agent).await?;
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

/// One agent of the list, its address as the API writes it (lower case).
fn line(agent: &AgentRegistration) -> String {
    format!(
        "{:#x}  registered by {}",
        agent.address, agent.registered_by
    )
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
        };
        let wire = serde_json::to_value(&agent).unwrap();
        assert_eq!(
            line(&agent),
            format!(
                "{}  registered by with its wallet",
                wire["address"].as_str().unwrap()
            )
        );
    }
}

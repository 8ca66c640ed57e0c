//! `chaperone agent register|unregister|list`: who may append to a server's log.

use std::process::ExitCode;

use serde_json::json;

use crate::{
    Output,
    args::{AgentCommand, ServerAgent, ServerOnly},
    commands::admin_call,
};

/// Runs one `agent` subcommand.
pub(crate) async fn agent(command: AgentCommand, out: Output) -> anyhow::Result<ExitCode> {
    match command {
        AgentCommand::Register(ServerAgent { server, agent }) => {
            admin_call(
                reqwest::Method::POST,
                format!("{}/v1/admin/agents", server.trim_end_matches('/')),
                Some(json!({ "address": agent }).to_string()),
            )
            .await?;
            out.result(
                &json!({ "registered": agent }),
                &format!("agent {agent} may append to the log"),
            );
        }
        AgentCommand::Unregister(ServerAgent { server, agent }) => {
            admin_call(
                reqwest::Method::DELETE,
                format!("{}/v1/admin/agents/{agent}", server.trim_end_matches('/')),
                None,
            )
            .await?;
            out.result(
                &json!({ "unregistered": agent }),
                &format!("agent {agent} may no longer append to the log"),
            );
        }
        AgentCommand::List(ServerOnly { server }) => {
            let list = admin_call(
                reqwest::Method::GET,
                format!("{}/v1/admin/agents", server.trim_end_matches('/')),
                None,
            )
            .await?;
            let lines: Vec<String> = list["agents"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| {
                    format!(
                        "{}  registered by {}",
                        a["address"].as_str().unwrap_or_default(),
                        a["registered_by"].as_str().unwrap_or_default()
                    )
                })
                .collect();
            out.result(&list, &lines.join("\n"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

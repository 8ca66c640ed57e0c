//! `chaperone token issue|revoke|list`: a server's bearer tokens.

use std::process::ExitCode;

use serde_json::json;

use crate::{
    Output,
    args::{ServerOnly, TokenCommand, TokenIssueArgs, TokenNameArgs},
    commands::{admin_call, path_segment},
};

/// Runs one `token` subcommand.
pub(crate) async fn token(command: TokenCommand, out: Output) -> anyhow::Result<ExitCode> {
    match command {
        TokenCommand::Issue(TokenIssueArgs { server, name, role }) => {
            let issued = admin_call(
                reqwest::Method::POST,
                format!("{}/v1/admin/tokens", server.trim_end_matches('/')),
                Some(json!({ "name": name, "role": role }).to_string()),
            )
            .await?;
            let token = issued["token"].as_str().unwrap_or_default().to_owned();
            out.result(
                &issued,
                &format!("{name} ({role}): {token}\n(shown once: only its hash is stored)"),
            );
        }
        TokenCommand::Revoke(TokenNameArgs { server, name }) => {
            let revoked = admin_call(
                reqwest::Method::DELETE,
                format!(
                    "{}/v1/admin/tokens/{}",
                    server.trim_end_matches('/'),
                    path_segment(&name)
                ),
                None,
            )
            .await?;
            out.result(&revoked, &format!("{name}'s token is revoked"));
        }
        TokenCommand::List(ServerOnly { server }) => {
            let list = admin_call(
                reqwest::Method::GET,
                format!("{}/v1/admin/tokens", server.trim_end_matches('/')),
                None,
            )
            .await?;
            let lines: Vec<String> = list["tokens"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| {
                    format!(
                        "{}  {}{}",
                        t["name"].as_str().unwrap_or_default(),
                        t["role"].as_str().unwrap_or_default(),
                        if t["revoked_at"].is_null() {
                            ""
                        } else {
                            "  (revoked)"
                        }
                    )
                })
                .collect();
            out.result(&list, &lines.join("\n"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

//! `chaperone token create|revoke|list`: a server's named bearer tokens (`issue` is an alias
//! of `create`).

use std::process::ExitCode;

use chaperone_api::admin::NewToken;
use clap::{Args, Subcommand};

use crate::{Output, opts::AdminServer};

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Create a named token with a role; it is printed once (only its hash is stored).
    #[command(alias = "issue")]
    Create(TokenIssueArgs),
    /// Revoke the live token of a name: the API and its console sessions refuse it at once.
    Revoke(TokenNameArgs),
    /// List every token's name, role and dates (never the tokens).
    List(TokenListArgs),
}

#[derive(Debug, Args)]
pub(crate) struct TokenIssueArgs {
    #[command(flatten)]
    pub(crate) server: AdminServer,
    /// Who will hold it (recorded with what they do), e.g. treasury-desk. Stored trimmed and in
    /// lower case; ASCII only, without `,` or `;`; one live token per name.
    #[arg(
        value_name = "NAME",
        required_unless_present = "name_flag",
        conflicts_with = "name_flag"
    )]
    pub(crate) name: Option<String>,
    /// The same, as a flag: `--name treasury-desk`.
    #[arg(long = "name", id = "name_flag", value_name = "NAME")]
    pub(crate) name_flag: Option<String>,
    /// What it may do.
    #[arg(long, value_parser = ["admin", "approver", "auditor"])]
    pub(crate) role: String,
}

#[derive(Debug, Args)]
pub(crate) struct TokenNameArgs {
    #[command(flatten)]
    pub(crate) server: AdminServer,
    /// The token's name.
    pub(crate) name: String,
}

#[derive(Debug, Args)]
pub(crate) struct TokenListArgs {
    #[command(flatten)]
    pub(crate) server: AdminServer,
}

/// Runs one `token` subcommand.
pub(crate) async fn run(command: TokenCommand, out: Output) -> anyhow::Result<ExitCode> {
    match command {
        TokenCommand::Create(TokenIssueArgs {
            server,
            name,
            name_flag,
            role,
        }) => {
            let name = name.or(name_flag).unwrap_or_default();
            let issued = server
                .client()?
                .issue_token(&NewToken {
                    name,
                    role: role.clone(),
                })
                .await?;
            out.result(
                &issued,
                &format!(
                    "{} ({role}): {}\n(shown once: only its hash is stored)",
                    issued.name, issued.token
                ),
            )?;
        }
        TokenCommand::Revoke(TokenNameArgs { server, name }) => {
            let revoked = server.client()?.revoke_token(&name).await?;
            out.result(&revoked, &format!("{name}'s token is revoked"))?;
        }
        TokenCommand::List(TokenListArgs { server }) => {
            let list = server.client()?.tokens().await?;
            let lines: Vec<String> = list
                .tokens
                .iter()
                .map(|t| {
                    format!(
                        "{}  {}  by {}{}",
                        t.name,
                        t.role,
                        t.created_by.as_deref().unwrap_or("configuration"),
                        if t.revoked_at.is_none() {
                            ""
                        } else {
                            "  (revoked)"
                        }
                    )
                })
                .collect();
            out.result(&list, &lines.join("\n"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

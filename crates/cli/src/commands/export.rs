//! `chaperone export --server URL [--what …] [--agent ADDRESS] [--format …] [--out FILE]`:
//! a list of the compliance API, following the cursor through every page.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context;
use chaperone_api::{
    Client, Format,
    compliance::{AgentRow, DecisionView, MAX_LIMIT, RecordRow, SpendRow},
};
use chaperone_core::Address;
use clap::{Args, ValueEnum};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::json;

use crate::{Output, opts::ReaderServer};

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    pub(crate) server: ReaderServer,
    /// What to export.
    #[arg(long, value_enum, default_value_t = What::Decisions)]
    pub(crate) what: What,
    /// The agent whose records to export (with --what records).
    #[arg(long, required_if_eq("what", "records"))]
    pub(crate) agent: Option<Address>,
    /// The output format.
    #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
    pub(crate) format: ExportFormat,
    /// Write to this file instead of standard output.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
}

/// The lists of the compliance API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum What {
    Records,
    Decisions,
    Spend,
    Agents,
}

/// How the rows are written: `json` is one document of every page's rows (`{"items": […]}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ExportFormat {
    Jsonl,
    Csv,
    Json,
}

/// Writes every page to `--out` or standard output.
pub(crate) async fn run(args: ExportArgs, out: Output) -> anyhow::Result<ExitCode> {
    let ExportArgs {
        server,
        what,
        agent,
        format,
        out: file,
    } = args;
    let path = match (what, agent) {
        (What::Records, Some(agent)) => format!("/v1/agents/{agent}/records"),
        (What::Records, None) => anyhow::bail!("--what records needs --agent ADDRESS"),
        (What::Decisions, _) => "/v1/decisions".to_owned(),
        (What::Spend, _) => "/v1/spend".to_owned(),
        (What::Agents, _) => "/v1/agents".to_owned(),
    };
    let client = server.client()?;
    // JSON pages are read as the list's rows and written again as one document; the other
    // formats are passed through as the server wrote them.
    let (text, pages) = match (format, what) {
        (ExportFormat::Json, What::Records) => json_pages::<RecordRow>(&client, &path, out).await?,
        (ExportFormat::Json, What::Decisions) => {
            json_pages::<DecisionView>(&client, &path, out).await?
        }
        (ExportFormat::Json, What::Spend) => json_pages::<SpendRow>(&client, &path, out).await?,
        (ExportFormat::Json, What::Agents) => json_pages::<AgentRow>(&client, &path, out).await?,
        (ExportFormat::Jsonl, _) => text_pages(&client, &path, Format::JsonLines, out).await?,
        (ExportFormat::Csv, _) => text_pages(&client, &path, Format::Csv, out).await?,
    };
    match file {
        Some(file) => {
            std::fs::write(&file, &text).with_context(|| format!("writing {}", file.display()))?;
            out.result(
                &json!({ "file": file, "pages": pages, "bytes": text.len() }),
                &format!(
                    "wrote {} ({pages} pages, {} bytes)",
                    file.display(),
                    text.len()
                ),
            )?;
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The query of one page: the largest the server gives, from `cursor`.
fn query(cursor: Option<&str>) -> Vec<(&'static str, String)> {
    let mut params = vec![("limit", MAX_LIMIT.to_string())];
    if let Some(cursor) = cursor {
        params.push(("cursor", cursor.to_owned()));
    }
    params
}

/// Every page of the list at `path` as JSON lines or CSV (its header line once), and how many
/// pages there were.
async fn text_pages(
    client: &Client,
    path: &str,
    format: Format,
    out: Output,
) -> anyhow::Result<(String, u32)> {
    let (mut text, mut cursor, mut pages) = (String::new(), None::<String>, 0);
    loop {
        let page = client
            .export(path, format, &query(cursor.as_deref()))
            .await?;
        pages += 1;
        if format == Format::Csv && pages > 1 {
            // Every page repeats the header line; keep the first.
            text.push_str(page.body.split_once('\n').map_or("", |(_, rows)| rows));
        } else {
            text.push_str(&page.body);
        }
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
        out.step(&format!("page {pages} done"));
    }
    Ok((text, pages))
}

/// Every page of the list at `path` as one pretty JSON document `{"items": […]}` of its rows
/// (`T`), and how many pages there were.
async fn json_pages<T: DeserializeOwned + Serialize>(
    client: &Client,
    path: &str,
    out: Output,
) -> anyhow::Result<(String, u32)> {
    let (mut items, mut cursor, mut pages) = (Vec::<T>::new(), None::<String>, 0);
    loop {
        let page = client.page::<T>(path, &query(cursor.as_deref())).await?;
        pages += 1;
        items.extend(page.items);
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
        out.step(&format!("page {pages} done"));
    }
    // Through a `Value`, so each row's keys are sorted as they always were.
    let document = json!({ "items": items });
    Ok((serde_json::to_string_pretty(&document)?, pages))
}

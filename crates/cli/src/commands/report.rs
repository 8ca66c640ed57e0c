//! `chaperone report --server URL [--from DATE] [--to DATE] [--agent ADDRESS]… [--wallet
//! ADDRESS]… [--html FILE] [--bundle FILE]`: the evidence pack of a period for an auditor —
//! the human-readable report (one self-contained HTML file, printable to PDF from a browser)
//! and the machine-checkable bundle that `chaperone verify --bundle` checks against the chain.

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context, bail};
use chaperone_api::evidence::EvidenceQuery;
use chaperone_core::Address;
use clap::Args;
use serde_json::json;

use crate::{Output, opts::ReaderServer};

#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    #[command(flatten)]
    pub(crate) server: ReaderServer,
    /// The period's start: a date (YYYY-MM-DD, UTC midnight) or Unix seconds. Default: 30
    /// days before --to.
    #[arg(long, value_parser = parse_time)]
    pub(crate) from: Option<u64>,
    /// The period's end (exclusive): a date (YYYY-MM-DD) or Unix seconds. Default: now.
    #[arg(long, value_parser = parse_time)]
    pub(crate) to: Option<u64>,
    /// Only this agent's records (repeat for more). Default: every agent.
    #[arg(long = "agent", value_name = "ADDRESS")]
    pub(crate) agents: Vec<Address>,
    /// Only this wallet's decisions and their records (repeat for more).
    #[arg(long = "wallet", value_name = "ADDRESS")]
    pub(crate) wallets: Vec<Address>,
    /// Write the HTML report here (default: evidence-report.html when --bundle is not given).
    #[arg(long, value_name = "FILE")]
    pub(crate) html: Option<PathBuf>,
    /// Write the machine-checkable bundle (JSON) here.
    #[arg(long, value_name = "FILE")]
    pub(crate) bundle: Option<PathBuf>,
}

/// `YYYY-MM-DD` (UTC midnight) or Unix seconds.
pub(crate) fn parse_time(text: &str) -> Result<u64, String> {
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(seconds);
    }
    let parts: Vec<&str> = text.split('-').collect();
    let parsed = match parts.as_slice() {
        [y, m, d] if y.len() == 4 && m.len() == 2 && d.len() == 2 => y
            .parse::<i64>()
            .ok()
            .zip(m.parse::<u32>().ok())
            .zip(d.parse::<u32>().ok()),
        _ => None,
    };
    let Some(((year, month), day)) =
        parsed.filter(|((_, m), d)| (1..=12).contains(m) && (1..=31).contains(d))
    else {
        return Err(format!(
            "`{text}` is neither a date (YYYY-MM-DD) nor Unix seconds"
        ));
    };
    // Howard Hinnant's days-from-civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(month) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400).map_err(|_| format!("`{text}` is before 1970"))
}

fn list(addresses: &[Address]) -> Option<String> {
    (!addresses.is_empty()).then(|| {
        addresses
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    })
}

pub(crate) async fn run(args: ReportArgs, out: Output) -> anyhow::Result<ExitCode> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let to = args.to.unwrap_or(now);
    let from = args.from.unwrap_or(to.saturating_sub(30 * 86_400));
    if from >= to {
        bail!("--from must be before --to");
    }
    let query = EvidenceQuery {
        from,
        to,
        agents: list(&args.agents),
        wallets: list(&args.wallets),
    };
    let html = match (&args.html, &args.bundle) {
        (None, None) => Some(PathBuf::from("evidence-report.html")),
        (html, _) => html.clone(),
    };
    let client = args.server.client()?;
    let mut written = Vec::new();
    if let Some(file) = &html {
        let page = client
            .evidence_report(&query)
            .await
            .context("asking the server for the report")?;
        std::fs::write(file, &page).with_context(|| format!("writing {}", file.display()))?;
        written.push(json!({ "report": file, "bytes": page.len() }));
    }
    let mut summary = String::new();
    if let Some(file) = &args.bundle {
        let bundle = client
            .evidence_bundle(&query)
            .await
            .context("asking the server for the bundle")?;
        let text = serde_json::to_string_pretty(&bundle)?;
        std::fs::write(file, &text).with_context(|| format!("writing {}", file.display()))?;
        summary = format!(
            " ({} records, {} checkpoints, {} decisions{})",
            bundle.records.len(),
            bundle.checkpoints.len(),
            bundle.decisions.len(),
            if bundle.unanchored_records > 0 {
                format!(
                    "; {} records not anchored yet were left out",
                    bundle.unanchored_records
                )
            } else {
                String::new()
            }
        );
        written.push(json!({
            "bundle": file,
            "records": bundle.records.len(),
            "checkpoints": bundle.checkpoints.len(),
            "decisions": bundle.decisions.len(),
            "unanchored_records": bundle.unanchored_records,
        }));
    }
    let names: Vec<String> = html
        .iter()
        .chain(args.bundle.iter())
        .map(|p| p.display().to_string())
        .collect();
    out.result(
        &json!({ "from": from, "to": to, "written": written }),
        &format!("wrote {}{summary}", names.join(" and ")),
    )?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn times_are_dates_or_seconds() {
        assert_eq!(parse_time("1700000000"), Ok(1_700_000_000));
        assert_eq!(parse_time("1970-01-01"), Ok(0));
        assert_eq!(parse_time("2024-03-01"), Ok(1_709_251_200));
        assert!(parse_time("2024-13-01").is_err());
        assert!(parse_time("yesterday").is_err());
    }
}

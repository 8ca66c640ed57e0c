//! The process's log lines: for people or for a log pipeline.

/// How log lines are written: for people (`text`) or for a log pipeline (`json`, one object per
/// line, with the request's span fields such as `request_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!("--log-format takes text or json, not `{other}`")),
        }
    }
}

/// Installs the process's log subscriber (stderr), at most `level`.
pub fn init_logging(format: LogFormat, level: tracing::Level) {
    init_logging_capped(format, level, &[]);
}

/// [`init_logging`], with some targets held to a lower level whatever `level` is: a library
/// that logs the messages it carries at debug level (rmcp logs every MCP message, tool
/// arguments and results included) must not put raw content in the log with `--verbose`.
pub fn init_logging_capped(
    format: LogFormat,
    level: tracing::Level,
    caps: &[(&str, tracing::Level)],
) {
    use tracing_subscriber::{filter::Targets, layer::SubscriberExt, util::SubscriberInitExt};
    let targets = caps.iter().fold(
        Targets::new().with_default(level),
        |targets, (target, cap)| targets.with_target(*target, (*cap).min(level)),
    );
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.finish().with(targets).try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .finish()
            .with(targets)
            .try_init(),
    };
}

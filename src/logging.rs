//! Logging: a filter (`--log`, else `[log] filter`, else `RUST_LOG`, else the default), text or
//! JSON lines (`--log-format`, else `[log] format`), colour only on a terminal.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command};
use crate::common::{DEFAULT_LOG, QUIET_HICKORY};
use crate::config::LogFormat;

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("invalid log filter {filter:?}: {reason}; write e.g. \"info\" or \"beacon=debug,info\"")]
pub struct LogError {
    filter: String,
    reason: String,
}

/// The filter and format `cli` asks for. A configuration that does not load is reported later,
/// by the command itself.
pub fn settings(cli: &Cli) -> (String, LogFormat) {
    let (mut filter, mut format) = (None, None);
    if let Command::Agent(args) = &cli.command {
        let config = crate::commands::load_config(args).ok();
        filter = args
            .log
            .clone()
            .or_else(|| config.as_ref().map(|c| c.log.filter.clone()));
        format = args
            .log_format
            .or_else(|| config.as_ref().map(|c| c.log.format));
    }
    let filter = filter
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| DEFAULT_LOG.to_string());
    (filter, format.unwrap_or_default())
}

/// Parses `filter`, adding the directives that keep hickory quiet unless it is named.
pub fn parse_filter(filter: &str) -> Result<EnvFilter, LogError> {
    // hickory-server logs two lines per query at info: keep it quiet unless asked for by name.
    let full = match filter.contains("hickory") {
        true => filter.to_string(),
        false => format!("{filter},{QUIET_HICKORY}"),
    };
    EnvFilter::try_new(&full).map_err(|e| LogError {
        filter: filter.to_string(),
        reason: e.to_string(),
    })
}

/// Installs the global subscriber: lines to stderr, coloured only when stderr is a terminal.
pub fn init(filter: &str, format: LogFormat) -> Result<(), LogError> {
    let filter = parse_filter(filter)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
    Ok(())
}

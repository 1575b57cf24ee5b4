//! The `beacon` binary: parse arguments, set up logging, run.

use std::process::ExitCode;

use beacon::cli::{Cli, Command};
use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("beacon: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(beacon::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("beacon: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--log`, else the config's `[log] filter`, else `RUST_LOG`, else the default. A config that
/// does not load is reported later, by the command itself.
fn init_tracing(cli: &Cli) {
    let from_config = match &cli.command {
        Command::Agent(args) => args
            .log
            .clone()
            .or_else(|| beacon::load_config(args).ok().map(|c| c.log.filter)),
        _ => None,
    };
    let filter = from_config
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| beacon::DEFAULT_LOG.to_string());
    // hickory-server logs two lines per query at info: keep it quiet unless asked for by name.
    let filter = match filter.contains("hickory") {
        true => filter,
        false => format!("{filter},{}", beacon::QUIET_HICKORY),
    };
    let filter =
        EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new(beacon::DEFAULT_LOG));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

//! The `beacon` agent: configuration, wiring, catalog sources, HTTP API and CLI.
//!
//! The binary in `main.rs` only parses arguments and calls [`run`]; everything else lives here
//! so that integration tests can start agents in-process.

#![warn(missing_docs)]

pub mod agent;
pub mod api;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod demo;
pub mod fake_master;
pub mod metrics;
pub mod node_origin;
pub mod operator;
pub mod origins;
pub mod published;
pub mod registrations;
pub mod source;
pub mod tls;
pub mod vips;

use std::path::Path;

use cli::{AgentArgs, Cli, Command, FakeMasterArgs, TlsCommand};
use config::Config;

/// Any error, boxed, for the top of the call stack.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Directives that keep hickory's per-query lines out of the log; added to any filter that does
/// not name hickory itself.
pub const QUIET_HICKORY: &str = "hickory_server=warn,hickory_proto=warn,hickory_net=warn";

/// The default log filter: informative, but not a line per query.
pub const DEFAULT_LOG: &str = "info,hickory_server=warn,hickory_proto=warn,hickory_net=warn";

/// Runs a parsed command line to completion.
pub async fn run(cli: Cli) -> Result<(), BoxError> {
    match cli.command {
        Command::Agent(args) => run_agent(&args).await,
        Command::Demo(args) => demo::run(&args).await,
        Command::FakeMaster(args) => run_fake_master(&args).await,
        Command::Services(args) => operator::services(&args).await,
        Command::Members(args) => operator::members(&args).await,
        Command::Vips(args) => operator::vips(&args).await,
        Command::Tls(TlsCommand::Ca(args)) => {
            let cert = tls::create_ca(&args.dir, args.days)?;
            println!("created the cluster CA: {}", cert.display());
            Ok(())
        }
        Command::Tls(TlsCommand::Node { name, args }) => {
            let cert = tls::issue_node(&args.dir, &name, args.days)?;
            println!("issued {}", cert.display());
            Ok(())
        }
    }
}

/// Loads the configuration an `agent` command names.
pub fn load_config(args: &AgentArgs) -> Result<Config, BoxError> {
    let config = match (&args.config, &args.mesos_dns_config) {
        (Some(toml), _) => Config::from_toml_file(toml)?,
        (None, Some(json)) => Config::from_mesos_dns_json_file(json)?,
        (None, None) => {
            return Err("give --config FILE.toml or --mesos-dns-config FILE.json".into());
        }
    };
    Ok(config)
}

async fn run_agent(args: &AgentArgs) -> Result<(), BoxError> {
    let config = load_config(args)?;
    let agent = agent::Agent::start(config).await?;
    shutdown_signal().await;
    tracing::info!("shutting down");
    agent.stop().await;
    Ok(())
}

/// Serves a state file, re-reading it when it changes so that tests and benchmarks can change
/// what the "master" reports (rewrite the file, rename it into place).
async fn run_fake_master(args: &FakeMasterArgs) -> Result<(), BoxError> {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut seen = modified(&args.state);
    let master = fake_master::FakeMaster::start(args.listen, read(&args.state)?).await?;
    println!(
        "fake master serving {} on http://{}/master/state",
        args.state.display(),
        master.addr()
    );
    let watch = async {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let now = modified(&args.state);
            if now != seen {
                seen = now;
                match read(&args.state) {
                    Ok(body) => master.set_body(body),
                    Err(error) => tracing::warn!(%error, "keeping the previous state"),
                }
            }
        }
    };
    tokio::select! {
        _ = shutdown_signal() => {}
        _ = watch => {}
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>, BoxError> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()).into())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

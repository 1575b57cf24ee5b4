//! The subcommands: `agent` runs [`crate::agent::Agent`] until a signal; the rest are here.

pub mod dataplane;
pub mod demo;
pub mod fake_master;
pub mod operator;
pub mod tls;
pub mod token;

use crate::agent::Agent;
use crate::cli::{AgentArgs, Cli, Command, DataplaneCommand, TlsCommand, TokenCommand};
use crate::common::{BoxError, shutdown_signal};
use crate::config::Config;

/// Runs a parsed command line to completion.
pub async fn run(cli: Cli) -> Result<(), BoxError> {
    match cli.command {
        Command::Agent(args) => run_agent(&args).await,
        Command::Demo(args) => demo::run(&args).await,
        Command::FakeMaster(args) => fake_master::run(&args).await,
        Command::Services(args) => operator::services(&args).await,
        Command::Members(args) => operator::members(&args).await,
        Command::Vips(args) => operator::vips(&args).await,
        Command::Tls(TlsCommand::Ca(args)) => {
            let cert = tls::create_ca(&args.dir, args.days.unwrap_or(crate::cli::CA_DAYS))?;
            println!("created the cluster CA: {}", cert.display());
            Ok(())
        }
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "beacon", &mut script);
            // A closed pipe (`| head`) is not an error worth a message.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), &script);
            Ok(())
        }
        Command::Dataplane(DataplaneCommand::Remove { config }) => {
            dataplane::remove(config.as_deref())
        }
        Command::Token(TokenCommand::New(args)) => {
            token::run(&args);
            Ok(())
        }
        Command::Tls(TlsCommand::Node { name, role, args }) => {
            let poller = role == Some(crate::cli::NodeRole::MasterPoller);
            let cert = tls::issue_node_with_role(
                &args.dir,
                &name,
                args.days.unwrap_or(crate::cli::NODE_DAYS),
                poller,
            )?;
            println!("issued {}", cert.display());
            Ok(())
        }
    }
}

/// Loads the configuration an `agent` command names.
pub fn load_config(args: &AgentArgs) -> Result<Config, BoxError> {
    let mut config = match (&args.config, &args.mesos_dns_config) {
        (Some(toml), _) => Config::from_toml_file(toml)?,
        (None, Some(json)) => Config::from_mesos_dns_json_file(json)?,
        (None, None) => {
            return Err("give --config FILE.toml or --mesos-dns-config FILE.json".into());
        }
    };
    if let Some(tokens) = &args.tokens {
        config.api.add_tokens_file(tokens)?;
    }
    Ok(config)
}

async fn run_agent(args: &AgentArgs) -> Result<(), BoxError> {
    let config = load_config(args)?;
    let agent = Agent::start(config).await?;
    shutdown_signal().await;
    tracing::info!("shutting down");
    agent.stop().await;
    Ok(())
}

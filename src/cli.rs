//! Command-line arguments, as typed: validation happens when the configuration is loaded.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Beacon: service discovery and east-west load balancing for Mesos clusters.
#[derive(Debug, Parser)]
#[command(
    name = "beacon",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("BEACON_GIT_REV"), ")"),
    propagate_version = true
)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node agent: DNS server, HTTP API and catalog sources.
    Agent(AgentArgs),
    /// Run a local demo cluster on loopback: a fake Mesos master, agents and sample backends.
    Demo(DemoArgs),
    /// Serve a Mesos state document as a fake master on loopback (for tests and benchmarks).
    FakeMaster(FakeMasterArgs),
    /// List the services a running agent answers for (from its `/v1/axfr`).
    Services(QueryArgs),
    /// List the cluster's members as a running agent sees them (from its `/v1/nodes`).
    Members(QueryArgs),
    /// List the VIPs a running agent balances, with backends and counters (from its `/v1/vips`).
    Vips(QueryArgs),
    /// Make the cluster's certificates.
    #[command(subcommand)]
    Tls(TlsCommand),
    /// Make write tokens for the HTTP API.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage the VIP data plane, which outlives the agent (pinned in bpffs).
    #[command(subcommand)]
    Dataplane(DataplaneCommand),
    /// Print a shell completion script (e.g. `beacon completions bash > /etc/bash_completion.d/beacon`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// `beacon token`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a new token's secret (once) and the `[[api.tokens]]` stanza for the agent's file.
    New(TokenNewArgs),
}

/// `beacon dataplane`.
#[derive(Debug, Subcommand)]
pub enum DataplaneCommand {
    /// Detach the VIP data plane and remove its pinned maps and links (`[vip] bpffs_dir`): VIPs
    /// are no longer balanced on this node until an agent starts again. Stop the agent first.
    Remove {
        /// The agent's configuration file, for its `[vip] bpffs_dir` (default:
        /// /sys/fs/bpf/beacon).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

/// `beacon token new`: the token's name and scope.
#[derive(Debug, Args)]
pub struct TokenNewArgs {
    /// The token's name (in logs, errors, and as the owner of its registrations).
    #[arg(long)]
    pub name: String,
    /// A framework it may register into (repeat for more; `*` for any).
    #[arg(long)]
    pub framework: Vec<String>,
    /// A network its registrations' addresses must fall in (repeat for more).
    #[arg(long, value_name = "CIDR")]
    pub backend_cidr: Vec<ipnet::IpNet>,
    /// Allow named VIPs (`VIP_0=/web:80`).
    #[arg(long)]
    pub vips: bool,
    /// A network its IP VIPs must fall in (also within the agent's `[vip] ip_vip_ranges`).
    #[arg(long, value_name = "CIDR")]
    pub ip_vip_cidr: Vec<ipnet::IpNet>,
    /// Registrations it may hold on one node.
    #[arg(long, default_value_t = 100)]
    pub max_registrations: usize,
}

/// Where to find a running agent's HTTP API.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The agent's HTTP API: a URL, or host:port for http://host:port.
    #[arg(long, default_value = "http://127.0.0.1:8123")]
    pub api: String,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `beacon tls`.
#[derive(Debug, Subcommand)]
pub enum TlsCommand {
    /// Create a cluster CA: `ca.pem` and `ca-key.pem` in the directory.
    Ca(TlsArgs),
    /// Issue a node certificate from the CA in the directory: `<name>.pem` and `<name>-key.pem`.
    Node {
        /// The node's name, which peers verify (a lower-case DNS label).
        #[arg(long)]
        name: String,
        /// `master-poller`: the node may publish the Mesos master's state (the shared
        /// `mesos-master` origin); peers refuse it from a node without this role.
        #[arg(long)]
        role: Option<NodeRole>,
        /// Directory and validity.
        #[command(flatten)]
        args: TlsArgs,
    },
}

/// A right recorded in a node certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NodeRole {
    /// May poll the Mesos master and publish its state.
    MasterPoller,
}

/// A node certificate's default validity in days.
pub const NODE_DAYS: u32 = 365;
/// The CA's default validity in days.
pub const CA_DAYS: u32 = 3650;

/// Where certificates live and how long they last.
#[derive(Debug, Args)]
pub struct TlsArgs {
    /// Directory of the CA and node files.
    #[arg(long, default_value = "beacon-tls")]
    pub dir: PathBuf,
    /// Validity in days (default: 365 for a node, so a lost key expires within a year;
    /// 3650 for the CA, which signs nothing but node certificates and stays offline).
    #[arg(long)]
    pub days: Option<u32>,
}

/// `beacon agent`: one of `--config` and `--mesos-dns-config` is required.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("configuration").required(true).args(["config", "mesos_dns_config"])))]
pub struct AgentArgs {
    /// Beacon's native TOML configuration.
    #[arg(long, value_name = "FILE.toml")]
    pub config: Option<PathBuf>,
    /// A Mesos-DNS config.json, used unchanged: Beacon replaces that Mesos-DNS.
    #[arg(long, value_name = "FILE.json")]
    pub mesos_dns_config: Option<PathBuf>,
    /// A file of `[[api.tokens]]` stanzas (as `beacon token new` prints them) to add to the
    /// configuration's: how an agent run with `--mesos-dns-config` takes writes.
    #[arg(long, value_name = "FILE.toml")]
    pub tokens: Option<PathBuf>,
    /// Log filter (tracing EnvFilter syntax), overriding the configuration and RUST_LOG.
    #[arg(long, value_name = "FILTER")]
    pub log: Option<String>,
    /// Log line format, overriding the configuration's `[log] format`.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub log_format: Option<crate::config::LogFormat>,
}

/// `beacon demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Number of agents.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub nodes: u16,
    /// Print one JSON object per node once everything is ready, instead of instructions.
    #[arg(long)]
    pub json: bool,
}

/// `beacon fake-master`.
#[derive(Debug, Args)]
pub struct FakeMasterArgs {
    /// The state document to serve (a Mesos `/master/state` body).
    #[arg(long, value_name = "FILE.json")]
    pub state: PathBuf,
    /// Where to listen; keep it on loopback.
    #[arg(long, default_value = "127.0.0.1:15050")]
    pub listen: SocketAddr,
    /// Answer 404 at /api/v1, as a master before Mesos 1.1 (no event stream: agents poll).
    #[arg(long)]
    pub no_v1: bool,
    /// Seconds between heartbeats on the event streams.
    #[arg(long, default_value_t = 15, value_name = "SECS")]
    pub heartbeat_secs: u64,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}

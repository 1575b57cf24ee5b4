//! Agent wiring: builds every part from the configuration, starts them, and stops them together.
//!
//! Data flows one way: sources (the master poller, the local agent poller, registrations) put
//! fragments into the origins (directly, or through gossip in a cluster), the publisher derives
//! records and a zone from their union and swaps them in, and the DNS server and HTTP API read
//! whatever is current.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use beacon_dns::forward::{ForwardConfig, Forwarder};
use beacon_dns::handler::{DnsHandler, HandlerSettings};
use beacon_dns::metrics::DnsMetrics;
use beacon_dns::server::{DnsServer, ListenConfig};
use hickory_proto::rr::{LowerName, Name};
use prometheus::Registry;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::api::{self, ApiState};
use crate::cluster::Sink;
use crate::config::Config;
use crate::metrics::SourceMetrics;
use crate::node_origin::NodeOrigin;
use crate::origins::{MESOS_MASTER, Origins};
use crate::published::{Current, Publisher, ns_addresses};
use crate::registrations::Registrations;
use crate::source::agent::AgentPoller;
use crate::source::master::MasterPoller;
use crate::source::{ClientError, FetchError};
use crate::vips::Vips;

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// Occurs when a listener cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Occurs when a configured address or name does not parse.
    #[error("invalid {key} {value:?}: {reason}")]
    Config {
        /// The configuration key.
        key: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// Occurs when `vip.data_plane = "on"` and the data plane cannot start.
    #[error("cannot start the VIP data plane, which vip.data_plane = \"on\" requires ({0})")]
    DataPlane(String),
    /// Occurs when the master client cannot be built.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Occurs when metrics cannot be registered (a programming error).
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// A running agent.
pub struct Agent {
    /// Where DNS is served, when `DnsOn`.
    pub dns_addr: Option<SocketAddr>,
    /// Where the HTTP API is served, when `HttpOn`.
    pub http_addr: Option<SocketAddr>,
    /// Where gossip is served, in a cluster.
    pub gossip_addr: Option<SocketAddr>,
    /// Whether the eBPF VIP data plane runs (VIP names are published only then).
    pub vip_data_plane: bool,
    current: Current,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    dns: Option<DnsServer>,
}

impl Agent {
    /// Starts every part configured. Sockets are open when this returns; DNS answers SERVFAIL
    /// for the domain until the first catalog load.
    pub async fn start(config: Config) -> Result<Self, AgentError> {
        let m = &config.mesos_dns;
        if !m.zk.is_empty() && !m.masters.is_empty() {
            tracing::warn!("zk is set but Beacon reads masters directly: using the masters list");
        }
        let registry = Registry::new();
        let dns_metrics = DnsMetrics::new(&registry)?;
        let current = Current::default();
        let vips = Arc::new(Vips::start(&config.vip).map_err(AgentError::DataPlane)?);
        let publisher = Publisher::new(&config, ns_addresses(&m.listener), vips.clone());
        let required = match m.masters.is_empty() {
            true => Vec::new(),
            false => vec![MESOS_MASTER.to_string()],
        };
        let origins = Arc::new(Origins::new(required, publisher.clone(), current.clone()));
        let gossip = crate::cluster::start(&config, origins.clone(), &registry)
            .await
            .map_err(|reason| AgentError::Config {
                key: "cluster",
                value: config.cluster.listen.clone(),
                reason,
            })?;
        let sink = match &gossip {
            Some((g, _)) => Sink::Cluster(g.clone(), tokio::runtime::Handle::current()),
            None => Sink::Local(origins.clone()),
        };
        let node = Arc::new(NodeOrigin::new(config.node.name.clone(), sink.clone()));
        let registrations = Arc::new(Registrations::new(node.clone(), &config.node.state_dir));
        restore(registrations.clone(), node.clone()).await;
        let mut pollers = Vec::new();
        if !m.masters.is_empty() {
            pollers.push(Refresh {
                source: Source::Master(MasterPoller::new(m)?, sink.clone()),
                current: current.clone(),
                metrics: SourceMetrics::new(&registry, "beacon_catalog", "Mesos master")?,
                dns_metrics: dns_metrics.clone(),
                period: Duration::from_secs(m.refresh_seconds.max(1)),
            });
        }
        let agent = &config.mesos_agent;
        if !agent.address.is_empty() {
            pollers.push(Refresh {
                source: Source::Agent(AgentPoller::new(m, &agent.address)?, node.clone()),
                current: current.clone(),
                metrics: SourceMetrics::new(&registry, "beacon_mesos_agent", "Mesos agent")?,
                dns_metrics: dns_metrics.clone(),
                period: Duration::from_secs(agent.refresh_seconds.max(1)),
            });
        }
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();

        let dns = match m.dns_on {
            true => Some(start_dns(&config, &current, dns_metrics.clone())?),
            false => None,
        };
        let http_addr = match m.http_on {
            true => {
                let addr = listen_addr("HTTPListener", &m.http_listener, m.http_port)?;
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| AgentError::Bind {
                        addr: addr.to_string(),
                        source,
                    })?;
                let local = listener.local_addr().map_err(|source| AgentError::Bind {
                    addr: addr.to_string(),
                    source,
                })?;
                let state = ApiState::new(
                    Arc::new(config.clone()),
                    current.clone(),
                    registry,
                    publisher.clone(),
                    registrations,
                    gossip.clone(),
                );
                tasks.spawn(api::serve(listener, state, shutdown.clone()));
                Some(local)
            }
            false => None,
        };
        for poller in pollers {
            tasks.spawn(poller.run(shutdown.clone()));
        }
        let vip_on = vips.is_on();
        if vip_on {
            let every = Duration::from_secs(config.vip.reconcile_secs.max(1));
            tasks.spawn(reconcile(vips, every, shutdown.clone()));
        }
        let dns_addr = dns.as_ref().map(DnsServer::local_addr);
        tracing::info!(dns = ?dns_addr, http = ?http_addr, domain = %m.domain, "beacon agent started");
        Ok(Self {
            dns_addr,
            http_addr,
            gossip_addr: gossip.as_ref().map(|(_, addr)| *addr),
            vip_data_plane: vip_on,
            current,
            shutdown,
            tasks,
            dns,
        })
    }

    /// Whether the first catalog has been loaded.
    pub fn is_ready(&self) -> bool {
        self.current.is_ready()
    }

    /// Stops every part and waits for them.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(dns) = self.dns.take() {
            dns.shutdown().await;
        }
        while self.tasks.join_next().await.is_some() {}
    }
}

fn start_dns(
    config: &Config,
    current: &Current,
    metrics: DnsMetrics,
) -> Result<DnsServer, AgentError> {
    let m = &config.mesos_dns;
    let origin = Name::from_ascii(format!("{}.", m.domain)).map_err(|e| AgentError::Config {
        key: "Domain",
        value: m.domain.clone(),
        reason: e.to_string(),
    })?;
    let forwarder = Forwarder::new(forward_config(config)?);
    let settings = HandlerSettings {
        recurse_on: m.recurse_on,
        set_truncate_bit: m.set_truncate_bit,
        edns_max_payload: config.dns.edns_max_payload,
    };
    let handler = DnsHandler::new(
        LowerName::new(&origin),
        current.zone.clone(),
        forwarder,
        settings,
        metrics,
    );
    let addr = listen_addr("Listener", &m.listener, m.port)?;
    let listen = ListenConfig {
        addr,
        udp_sockets: config.dns.udp_sockets,
        tcp_idle_timeout: Duration::from_secs(config.dns.tcp_idle_timeout_secs.max(1)),
    };
    DnsServer::start(handler, &listen).map_err(|source| AgentError::Bind {
        addr: addr.to_string(),
        source,
    })
}

fn forward_config(config: &Config) -> Result<ForwardConfig, AgentError> {
    let m = &config.mesos_dns;
    let resolvers = match (m.resolvers.is_empty(), m.external_on) {
        (true, true) => system_resolvers(),
        _ => parse_resolvers("Resolvers", &m.resolvers)?,
    };
    let mut zones = Vec::new();
    for (zone, list) in &m.zone_resolvers {
        let name = Name::from_ascii(format!("{}.", zone.trim_end_matches('.'))).map_err(|e| {
            AgentError::Config {
                key: "ZoneResolvers",
                value: zone.clone(),
                reason: e.to_string(),
            }
        })?;
        zones.push((
            LowerName::new(&name),
            parse_resolvers("ZoneResolvers", list)?,
        ));
    }
    Ok(ForwardConfig {
        resolvers,
        zones,
        timeout: Duration::from_secs(m.timeout.max(1)),
        enabled: m.external_on,
        max_inflight: config.dns.max_inflight_forwards,
    })
}

fn parse_resolvers(key: &'static str, list: &[String]) -> Result<Vec<SocketAddr>, AgentError> {
    list.iter()
        .map(|r| {
            r.parse::<SocketAddr>()
                .or_else(|_| r.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map_err(|e| AgentError::Config {
                    key,
                    value: r.clone(),
                    reason: e.to_string(),
                })
        })
        .collect()
}

/// Nameservers of /etc/resolv.conf other than this host's own addresses (Mesos-DNS does the
/// same when `Resolvers` is empty, so that it does not forward to itself).
fn system_resolvers() -> Vec<SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let local: Vec<IpAddr> = if_addrs::get_if_addrs()
        .map(|ifs| ifs.iter().map(|i| i.ip()).collect())
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| l.strip_prefix("nameserver"))
        .filter_map(|ip| ip.trim().parse::<IpAddr>().ok())
        .filter(|ip| !ip.is_loopback() && !local.contains(ip))
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

fn listen_addr(key: &'static str, host: &str, port: u16) -> Result<SocketAddr, AgentError> {
    let ip: IpAddr = host
        .parse()
        .map_err(|e: std::net::AddrParseError| AgentError::Config {
            key,
            value: host.to_string(),
            reason: e.to_string(),
        })?;
    Ok(SocketAddr::new(ip, port))
}

/// Loads the registrations a previous run saved; with none, publishes the node's empty
/// fragment, so that a node with no other source is ready and known to the cluster.
async fn restore(registrations: Arc<Registrations>, node: Arc<NodeOrigin>) {
    let restored = tokio::task::spawn_blocking(move || match registrations.load() {
        Ok(0) => node.publish().map(|()| 0),
        other => other,
    });
    match restored.await {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => tracing::info!(
            registrations = n,
            "registrations restored from the state directory"
        ),
        Ok(Err(error)) => tracing::warn!(%error, "could not restore saved registrations"),
        Err(error) => tracing::warn!(%error, "restoring registrations panicked"),
    }
}

/// Repairs the VIP maps every `every`, as dcos-net did every 30 s.
async fn reconcile(vips: Arc<Vips>, every: Duration, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let vips = vips.clone();
        let _ = tokio::task::spawn_blocking(move || vips.reconcile()).await;
    }
}

/// Where a poll loop reads and what it writes.
#[derive(Clone)]
enum Source {
    /// The Mesos master's state: the shared `mesos-master` origin.
    Master(MasterPoller, Sink),
    /// The local agent's state: the tasks part of this node's origin.
    Agent(AgentPoller, Arc<NodeOrigin>),
}

impl Source {
    fn name(&self) -> &'static str {
        match self {
            Self::Master(..) => "mesos master",
            Self::Agent(..) => "mesos agent",
        }
    }

    async fn fetch(&self) -> Result<beacon_catalog::Catalog, FetchError> {
        match self {
            Self::Master(poller, _) => poller.fetch().await,
            Self::Agent(poller, _) => poller.fetch().await,
        }
    }

    /// Blocking: generation takes a while with tens of thousands of tasks.
    fn publish(&self, catalog: beacon_catalog::Catalog) -> Result<(), String> {
        match self {
            Self::Master(_, sink) => sink.set(MESOS_MASTER, catalog),
            Self::Agent(_, node) => node.set_agent_tasks(catalog),
        }
    }
}

/// A poll loop: poll, publish, sleep.
struct Refresh {
    source: Source,
    current: Current,
    metrics: SourceMetrics,
    dns_metrics: DnsMetrics,
    period: Duration,
}

impl Refresh {
    /// Polls every `period`; after a failure, retries sooner (1 s, doubling up to `period`), so
    /// that a master that was down at start-up does not leave DNS unready for a whole period.
    async fn run(self, shutdown: CancellationToken) {
        let mut retry = RETRY_FIRST;
        loop {
            let wait = match self.once().await {
                true => {
                    retry = RETRY_FIRST;
                    self.period
                }
                false => {
                    let wait = retry.min(self.period);
                    retry = retry.saturating_mul(2);
                    wait
                }
            };
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Publishes `catalog` as the source's (locally, or to the cluster), off the async threads:
    /// with tens of thousands of tasks it takes a noticeable fraction of a second.
    async fn publish(&self, catalog: beacon_catalog::Catalog) -> Result<usize, String> {
        let (source, tasks) = (self.source.clone(), catalog.task_count());
        match tokio::task::spawn_blocking(move || source.publish(catalog)).await {
            Ok(Ok(())) => Ok(tasks),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(format!("publishing panicked: {e}")),
        }
    }

    /// One poll; whether it succeeded.
    async fn once(&self) -> bool {
        let start = Instant::now();
        let first = !self.current.is_ready();
        let result = match self.source.fetch().await {
            Ok(catalog) => self.publish(catalog).await,
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(tasks) => {
                let elapsed = start.elapsed();
                self.metrics.refreshes.inc();
                self.metrics.refresh_seconds.observe(elapsed.as_secs_f64());
                self.metrics.tasks.set(tasks as i64);
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                self.metrics.last_success.set(now as i64);
                let records = self.current.published.load().as_ref().map_or(0, |p| {
                    let [a, aaaa, srv] = p.records.counts();
                    self.dns_metrics.set_records(a, aaaa, srv);
                    a + aaaa + srv
                });
                let ms = elapsed.as_millis() as u64;
                let source = self.source.name();
                if first && self.current.is_ready() {
                    tracing::info!(source, tasks, records, ms, "first catalog loaded; serving");
                } else {
                    tracing::debug!(source, tasks, records, ms, "catalog refreshed");
                }
            }
            Err(error) => {
                self.metrics.failures.inc();
                let source = self.source.name();
                tracing::warn!(source, %error, "poll failed; still serving the last good state");
                return false;
            }
        }
        true
    }
}

/// The first retry after a failed poll.
const RETRY_FIRST: Duration = Duration::from_secs(1);

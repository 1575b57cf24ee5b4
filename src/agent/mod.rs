//! Agent wiring: builds every part from the configuration, starts them, and stops them together.
//!
//! Data flows one way: sources (the master poller, the local Mesos agent poller, registrations)
//! put fragments into the origins (directly, or through gossip in a cluster), the publisher
//! derives records, a zone and VIPs from their union and swaps them in, and the DNS server and
//! HTTP API read whatever is current. [`setup`] builds the pipeline and the poll loops,
//! [`polling`] runs them, [`dns`] starts the DNS server.
//!
//! The agent owns every task it starts and ends them in an order that loses nothing: first what
//! writes (the API, the pollers, the VIP repair), then gossip, which tells the cluster the node
//! is leaving, then DNS, which answered until the end.

mod activation;
pub mod dns;
mod error;
pub mod polling;
pub mod recovery;
pub mod setup;
pub mod streaming;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use beacon_dns::metrics::DnsMetrics;
use beacon_dns::server::DnsServer;
use prometheus::Registry;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::api::{self, ApiState};
use crate::cluster::Cluster;
use crate::config::Config;
use crate::publish::{Current, Vips};
pub use error::AgentError;
use setup::Pipeline;

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
    /// Ends the tasks that write: the API, the pollers, the VIP repair.
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    cluster: Option<Cluster>,
    dns: Option<DnsServer>,
}

impl Agent {
    /// Starts every part configured. Sockets are open when this returns; DNS answers SERVFAIL
    /// for the domain until the first catalog load.
    pub async fn start(config: Config) -> Result<Self, AgentError> {
        let endpoints = config.endpoints()?;
        let registry = Registry::new();
        let dns_metrics = DnsMetrics::new(&registry)?;
        let mut pipeline = Pipeline::build(&config, &endpoints, &registry).await?;
        let (pollers, detector) = pipeline.pollers(&config, &registry, &dns_metrics)?;
        let dns = match endpoints.dns {
            Some(addr) => Some(dns::start(
                &config,
                &endpoints,
                addr,
                &pipeline.current,
                dns_metrics,
            )?),
            None => None,
        };
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let http_addr = match endpoints.http {
            Some(addr) => {
                let (listener, local) = bind_http(addr).await?;
                let state = api_state(config.clone(), &pipeline, registry);
                tasks.spawn(api::serve(listener, state, shutdown.clone()));
                Some(local)
            }
            None => None,
        };
        if let Some(recovery) = pipeline.recovery.take() {
            tasks.spawn(recovery.run(shutdown.clone()));
        }
        for poller in pollers {
            tasks.spawn(poller.run(shutdown.clone()));
        }
        if let Some(detector) = detector {
            tasks.spawn(detector.run(shutdown.clone()));
        }
        let vip_on = pipeline.vips.is_on();
        if vip_on {
            let (vips, every) = (pipeline.vips.clone(), config.vip.reconcile);
            tasks.spawn(reconcile(vips, every, shutdown.clone()));
        }
        let dns_addr = dns.as_ref().map(DnsServer::local_addr);
        let cluster = pipeline.cluster.take();
        log_started(dns_addr, http_addr, &config);
        Ok(Self {
            dns_addr,
            http_addr,
            gossip_addr: cluster.as_ref().map(|c| c.addr),
            vip_data_plane: vip_on,
            current: pipeline.current,
            shutdown,
            tasks,
            cluster,
            dns,
        })
    }

    /// Whether the first catalog has been loaded.
    pub fn is_ready(&self) -> bool {
        self.current.is_ready()
    }

    /// Stops every part and returns when all of them have ended: first the API, the pollers
    /// and the VIP repair; then gossip, after telling the cluster this node is leaving; DNS
    /// last.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
        if let Some(cluster) = self.cluster.take() {
            cluster.leave().await;
        }
        if let Some(dns) = self.dns.take() {
            dns.shutdown().await;
        }
    }
}

fn log_started(dns: Option<SocketAddr>, http: Option<SocketAddr>, config: &Config) {
    let show = |a: Option<SocketAddr>| a.map_or_else(|| "off".to_string(), |a| a.to_string());
    tracing::info!(
        dns = %show(dns),
        http = %show(http),
        domain = %config.mesos_dns.domain,
        "beacon agent started"
    );
}

async fn bind_http(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), AgentError> {
    let bind = |source| AgentError::Bind { addr, source };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(bind)?;
    let local = listener.local_addr().map_err(bind)?;
    Ok((listener, local))
}

fn api_state(config: Config, pipeline: &Pipeline, registry: Registry) -> ApiState {
    let gossip = (pipeline.cluster.as_ref()).map(|c| (c.gossip.clone(), c.addr));
    ApiState::new(
        Arc::new(config),
        pipeline.current.clone(),
        registry,
        pipeline.publisher.clone(),
        pipeline.registrations.clone(),
        gossip,
    )
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

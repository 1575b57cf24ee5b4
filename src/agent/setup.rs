//! Building the parts: the publishing pipeline (with gossip in a cluster) and the poll loops.

use std::sync::Arc;

use beacon_dns::metrics::DnsMetrics;
use prometheus::Registry;

use super::error::AgentError;
use super::polling::{Refresh, Source};
use crate::cluster::Cluster;
use crate::config::zk::ZkUrl;
use crate::config::{Config, ConfigError, Endpoints};
use crate::metrics::SourceMetrics;
use crate::publish::fence::Fence;
use crate::publish::published::ns_addresses;
use crate::publish::{
    Current, MESOS_MASTER, NodeOrigin, Origins, Publisher, Registrations, Sink, Vips,
};
use crate::source::master::MasterPoller;
use crate::source::mesos_agent::MesosAgentPoller;
use crate::source::zk::ZkDetector;

/// The publishing pipeline of one agent, from the registrations to what is served.
pub struct Pipeline {
    /// What DNS and the API serve.
    pub current: Current,
    /// The VIP side.
    pub vips: Arc<Vips>,
    /// Records, zone and VIPs from catalogs.
    pub publisher: Publisher,
    /// Gossip, in a cluster.
    pub cluster: Option<Cluster>,
    /// Where the master's state goes: the origins, or gossip.
    pub sink: Arc<dyn Sink>,
    /// This node's own origin.
    pub node: Arc<NodeOrigin>,
    /// This node's registrations.
    pub registrations: Arc<Registrations>,
}

impl Pipeline {
    /// Builds the pipeline for `config`: starts the VIP data plane and, in a cluster, gossip;
    /// then restores the registrations a previous run saved.
    pub async fn build(
        config: &Config,
        endpoints: &Endpoints,
        registry: &Registry,
    ) -> Result<Self, AgentError> {
        let current = Current::default();
        let vips = Arc::new(Vips::start(&config.vip, Fence::new(config, endpoints))?);
        let ns_ips = ns_addresses(&config.mesos_dns.listener);
        let publisher = Publisher::new(config, ns_ips, vips.clone());
        let required = match has_master(config) {
            false => Vec::new(),
            true => vec![MESOS_MASTER.to_string()],
        };
        let origins = Arc::new(Origins::new(required, publisher.clone(), current.clone()));
        let cluster = match config.cluster.listen {
            Some(listen) => Some(Cluster::start(config, listen, origins.clone(), registry).await?),
            None => None,
        };
        let sink: Arc<dyn Sink> = match &cluster {
            Some(cluster) => cluster.sink(),
            None => origins,
        };
        let node = Arc::new(NodeOrigin::new(config.node.name.clone(), sink.clone()));
        let registrations = Arc::new(Registrations::new(node.clone(), &config.node.state_dir));
        restore(registrations.clone(), node.clone()).await;
        Ok(Self {
            current,
            vips,
            publisher,
            cluster,
            sink,
            node,
            registrations,
        })
    }

    /// The poll loops `config` asks for (the Mesos master, the local Mesos agent), and the
    /// ZooKeeper detector that tells the master's loop where to poll, with `zk`.
    pub fn pollers(
        &self,
        config: &Config,
        registry: &Registry,
        dns_metrics: &DnsMetrics,
    ) -> Result<(Vec<Refresh>, Option<ZkDetector>), AgentError> {
        let m = &config.mesos_dns;
        let refresh = |source, prefix, what, period| -> Result<Refresh, AgentError> {
            Ok(Refresh {
                source,
                current: self.current.clone(),
                metrics: SourceMetrics::new(registry, prefix, what)?,
                dns_metrics: dns_metrics.clone(),
                period,
                wake: None,
            })
        };
        let mut pollers = Vec::new();
        let (mut poller, mut detector, mut wake) = (MasterPoller::new(m)?, None, None);
        if !m.zk.is_empty() {
            let url = ZkUrl::parse(&m.zk).map_err(|reason| ConfigError::InvalidZk {
                value: m.zk.clone(),
                reason,
            })?;
            let (zk, detected) = ZkDetector::new(url, m.zk_detection_timeout, registry)?;
            (poller, detector) = (poller.with_detected(detected.clone()), Some(zk));
            wake = Some(detected);
        }
        if has_master(config) {
            let source = Source::Master(poller, self.sink.clone());
            let period = std::time::Duration::from_secs(m.refresh_seconds.max(1));
            let mut master = refresh(source, "beacon_catalog", "Mesos master", period)?;
            master.wake = wake;
            pollers.push(master);
        }
        let agent = &config.mesos_agent;
        if !agent.address.is_empty() {
            let poller = MesosAgentPoller::new(m, &agent.address)?;
            let source = Source::MesosAgent(poller, self.node.clone());
            let (prefix, what) = ("beacon_mesos_agent", "Mesos agent");
            pollers.push(refresh(source, prefix, what, agent.refresh)?);
        }
        Ok((pollers, detector))
    }
}

/// Whether the Mesos master is a source: listed, or found through ZooKeeper.
fn has_master(config: &Config) -> bool {
    !config.mesos_dns.masters.is_empty() || !config.mesos_dns.zk.is_empty()
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

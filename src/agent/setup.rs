//! Building the parts: the publishing pipeline (with gossip in a cluster) and the poll loops.

use std::sync::Arc;

use beacon_dns::metrics::DnsMetrics;
use prometheus::Registry;

use super::error::AgentError;
use super::polling::{Follow, Refresh, Source};
use super::recovery::Recovery;
use crate::cluster::Cluster;
use crate::config::zk::ZkUrl;
use crate::config::{Config, ConfigError, Endpoints};
use crate::metrics::SourceMetrics;
use crate::metrics::StreamMetrics;
use crate::publish::fence::Fence;
use crate::publish::last_known::LastKnown;
use crate::publish::published::ns_addresses;
use crate::publish::registrations::Loaded;
use crate::publish::{
    Current, MESOS_MASTER, NodeOrigin, Origins, Publisher, Registrations, Sink, Vips,
};
use crate::source::master::MasterPoller;
use crate::source::mesos_agent::MesosAgentPoller;
use crate::source::stream::MasterStream;
use crate::source::zk::{MastersRx, ZkDetector};
use std::time::Duration;

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
    /// Recovering the registrations from the cluster, when the saved file was unreadable: a
    /// task for the agent to run (writes wait until it ends).
    pub recovery: Option<Recovery>,
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
        if cluster.is_none() && has_master(config) {
            restore_last_known(config, &sink, &current).await;
        }
        let gossip = cluster.as_ref().map(|c| c.gossip.clone());
        let recovery = restore(registrations.clone(), node.clone(), gossip).await;
        Ok(Self {
            current,
            vips,
            publisher,
            cluster,
            sink,
            node,
            registrations,
            recovery,
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
        let refresh = |source, prefix, what, period| -> Result<Refresh, AgentError> {
            Ok(Refresh {
                source,
                current: self.current.clone(),
                metrics: SourceMetrics::new(registry, prefix, what)?,
                dns_metrics: dns_metrics.clone(),
                period,
                wake: None,
                follow: None,
            })
        };
        let (mut pollers, mut detector) = (Vec::new(), None);
        if has_master(config) {
            let (poller, zk) = self.master_source(config, registry)?;
            let period = Duration::from_secs(config.mesos_dns.refresh_seconds.max(1));
            let mut master = refresh(poller, "beacon_catalog", "Mesos master", period)?;
            let Source::Master(poller, ..) = &mut master.source else {
                unreachable!("master_source returns the master's source")
            };
            *poller = poller.clone().count_bytes(master.metrics.bytes.clone());
            if config.mesos_master.events {
                let stream = MasterStream::new(&config.mesos_dns, poller.clone())?;
                master.follow = Some(Follow {
                    stream: stream.count_bytes(master.metrics.bytes.clone()),
                    metrics: StreamMetrics::new(registry)?,
                });
            }
            master.wake = zk.as_ref().map(|(_, wake)| wake.clone());
            detector = zk.map(|(detector, _)| detector);
            let restored = (self.current.last_known).load(std::sync::atomic::Ordering::Relaxed);
            if restored != 0 {
                master.metrics.last_success.set(restored as i64);
            }
            pollers.push(master);
        }
        let agent = &config.mesos_agent;
        if !agent.address.is_empty() {
            let poller = MesosAgentPoller::new(&config.mesos_dns, &agent.address)?;
            let source = Source::MesosAgent(poller, self.node.clone());
            let (prefix, what) = ("beacon_mesos_agent", "Mesos agent");
            pollers.push(refresh(source, prefix, what, agent.refresh)?);
        }
        Ok((pollers, detector))
    }

    /// The Mesos master's source, and with `zk` the detector that names the masters.
    fn master_source(
        &self,
        config: &Config,
        registry: &Registry,
    ) -> Result<(Source, Option<(ZkDetector, MastersRx)>), AgentError> {
        let m = &config.mesos_dns;
        let (mut poller, mut zk) = (MasterPoller::new(m)?, None);
        if !m.zk.is_empty() {
            let url = ZkUrl::parse(&m.zk).map_err(|reason| ConfigError::InvalidZk {
                value: m.zk.clone(),
                reason,
            })?;
            let (detector, detected) = ZkDetector::new(url, m.zk_detection_timeout, registry)?;
            poller = poller.with_detected(detected.clone());
            zk = Some((detector, detected));
        }
        let last_known = LastKnown::new(&config.node.state_dir).map(Arc::new);
        Ok((Source::Master(poller, self.sink.clone(), last_known), zk))
    }
}

/// Whether the Mesos master is a source: listed, or found through ZooKeeper.
fn has_master(config: &Config) -> bool {
    !config.mesos_dns.masters.is_empty() || !config.mesos_dns.zk.is_empty()
}

/// Serves the last-known master state kept in the state directory, if there is one, until a
/// master answers: a restart during a master outage then answers at once instead of SERVFAIL.
/// (In a cluster the other nodes hold the master's state: this node gets it from them.)
async fn restore_last_known(config: &Config, sink: &Arc<dyn Sink>, current: &Current) {
    let Some(last_known) = LastKnown::new(&config.node.state_dir) else {
        return;
    };
    let sink = sink.clone();
    let restored = tokio::task::spawn_blocking(move || {
        let (catalog, stamp) = last_known.load()?;
        sink.set(MESOS_MASTER, catalog).ok().map(|()| stamp)
    });
    if let Ok(Some(stamp)) = restored.await {
        let age = (crate::common::wall_millis() / 1000).saturating_sub(stamp);
        (current.last_known).store(stamp.max(1), std::sync::atomic::Ordering::Relaxed);
        tracing::warn!(
            age_secs = age,
            "serving the last-known Mesos master state until a master answers"
        );
    }
}

/// Loads the registrations a previous run saved; with none, publishes the node's empty
/// fragment, so that a node with no other source is ready and known to the cluster. An
/// unreadable file is set aside; in a cluster the registrations are then recovered from the
/// cluster's copy of this node's origin (the returned task), and writes wait for it.
async fn restore(
    registrations: Arc<Registrations>,
    node: Arc<NodeOrigin>,
    gossip: Option<beacon_gossip::net::Gossip>,
) -> Option<Recovery> {
    let loading = registrations.clone();
    let loaded = tokio::task::spawn_blocking(move || loading.load()).await;
    let publish_empty = || async {
        let _ = tokio::task::spawn_blocking(move || node.publish()).await;
    };
    match loaded {
        Ok(Ok(Loaded::Saved(0))) => publish_empty().await,
        Ok(Ok(Loaded::Saved(n))) => {
            tracing::info!(
                registrations = n,
                "registrations restored from the state directory"
            );
        }
        Ok(Ok(Loaded::SetAside(aside))) => {
            let aside = aside.display().to_string();
            let Some(gossip) = gossip else {
                tracing::error!(%aside, "registrations.json was unreadable and is set aside; no cluster holds a copy: starting with no registrations");
                publish_empty().await;
                return None;
            };
            tracing::error!(%aside, "registrations.json was unreadable and is set aside; recovering this node's registrations from the cluster's copy before taking writes");
            registrations.hold_writes();
            return Some(Recovery::new(registrations, gossip));
        }
        Ok(Err(error)) => tracing::warn!(%error, "could not restore saved registrations"),
        Err(error) => tracing::warn!(%error, "restoring registrations panicked"),
    }
    None
}

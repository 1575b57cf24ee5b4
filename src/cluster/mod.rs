//! The agent in a cluster: its sources' fragments go out through gossip, and every node's
//! fragments come back from the replicated store into the origins. With a cluster, the store is
//! the one path: a source → gossip → origins → records and zone, on every node alike.
//!
//! [`codec`] is how a fragment travels, [`replicate`] brings the store back into the origins,
//! [`lag`] measures how long that took from the writer's clock, [`credentials`] reads the TLS
//! files and keeps gossip in step with them (revocation, rotation), [`saved`] keeps the store
//! in the state directory so that a restart during a cluster outage serves what it held.

pub mod codec;
pub mod credentials;
pub mod lag;
pub mod replicate;
pub mod saved;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use beacon_catalog::Catalog;
use beacon_gossip::net::{Gossip, Transport, TransportError, X509Keys, spawn};
use beacon_gossip::{MemberState, Node, NodeConfig, NodeId, cluster_id};
use prometheus::IntGauge;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::common::wall_millis;
use crate::config::Config;
use crate::publish::{Origins, PublishError, Sink};
use credentials::{CredentialsError, TlsFiles};
use replicate::Applied;

/// Why gossip could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// Occurs when a certificate, key or deny-list file is missing or unreadable.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// Occurs when the QUIC endpoint cannot be set up (address in use, bad certificate).
    #[error("cannot start gossip on [cluster] listen: {0}")]
    Transport(#[from] TransportError),
    /// Occurs when the bound address cannot be read back.
    #[error("cannot read the gossip address: {0}")]
    Address(#[from] std::io::Error),
    /// Occurs when the lag histogram cannot be registered (a programming error).
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// A running gossip node and the replication loop that feeds the origins from it.
pub struct Cluster {
    /// The gossip handle, for the API and metrics.
    pub gossip: Gossip,
    /// Where gossip listens.
    pub addr: SocketAddr,
    /// The gossip driver and the replication loop.
    tasks: JoinSet<()>,
    /// Reloads the TLS files; it holds a gossip handle, so it is stopped before leaving.
    watcher: JoinHandle<()>,
    applied: watch::Receiver<Applied>,
    /// Keeps the store in the state directory; cancelled (after a last save) before leaving.
    saver: Option<(CancellationToken, JoinHandle<()>)>,
}

impl Cluster {
    /// Starts gossip for `config`'s `[cluster]` (which must have `listen`), joining through the
    /// seeds. The convergence-lag histogram goes into `registry`.
    pub async fn start(
        config: &Config,
        listen: SocketAddr,
        origins: Arc<Origins>,
        registry: &prometheus::Registry,
    ) -> Result<Self, ClusterError> {
        let (cluster, name) = (&config.cluster, &config.node.name);
        let files = TlsFiles::new(&cluster.tls_dir, name);
        let loaded = files.load()?;
        let creds = &loaded.credentials;
        // The node key seals what this node writes; the CA checks every writer's certificate.
        let keys = Arc::new(X509Keys::new(creds)?);
        let (transport, incoming) = Transport::bind(listen, creds)?;
        // The deny list holds from the first handshake.
        transport.reload(creds, loaded.revoked.clone())?;
        let addr = transport.local_addr()?;
        let node_config = NodeConfig {
            cluster: cluster_id(&cluster.name),
            withdraw_after: cluster.withdraw_after,
            max_clock_skew: cluster.max_clock_skew,
            ..NodeConfig::default()
        };
        let id = NodeId::new(name, addr, wall_millis());
        let mut node = Node::new(node_config, id, rand::random(), Instant::now(), keys);
        node.set_revoked(Instant::now(), loaded.revoked.clone());
        let age = saved::age_gauge(registry)?;
        let store_file = saved::StoreFile::new(&config.node.state_dir).map(Arc::new);
        if let Some(file) = &store_file {
            node = saved::restore(file.clone(), node, &age).await;
        }
        let (gossip, events, driver) = spawn(node, transport, incoming);
        let saver = store_file.map(|file| {
            let stop = CancellationToken::new();
            let run = saved::run(file, gossip.clone(), age, stop.clone());
            (stop, tokio::spawn(run))
        });
        let expiry = IntGauge::new(
            "beacon_tls_certificate_expiry_days",
            "Whole days left on this node's certificate; renew it before 0",
        )?;
        registry.register(Box::new(expiry.clone()))?;
        credentials::set_expiry(&expiry, creds);
        let watcher = tokio::spawn(credentials::watch(files, gossip.clone(), expiry));
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let _ = driver.await;
        });
        for seed in &cluster.seeds {
            // Only fails once the node has stopped, which it has not.
            let _ = gossip.join(NodeId::new(&seed.name, seed.addr, 0)).await;
        }
        let lag = lag::Lag::new(registry, name)?;
        let (applied_tx, applied) = watch::channel(Applied::new());
        let replication = replicate::run(gossip.clone(), events, origins, lag, applied_tx);
        tasks.spawn(replication);
        tracing::info!(%addr, node = %name, cluster = %cluster.name, "gossip started");
        Ok(Self {
            gossip,
            addr,
            tasks,
            watcher,
            applied,
            saver,
        })
    }

    /// Where this node's sources publish: out through gossip, returning once this node serves
    /// what was published.
    pub fn sink(&self) -> Arc<dyn Sink> {
        Arc::new(ClusterSink {
            gossip: self.gossip.clone(),
            runtime: tokio::runtime::Handle::current(),
            applied: self.applied.clone(),
        })
    }

    /// Tells the cluster this node is leaving and waits for the driver and the replication
    /// loop to end.
    pub async fn leave(mut self) {
        self.watcher.abort();
        if let Some((stop, saver)) = self.saver.take() {
            stop.cancel();
            let _ = saver.await;
        }
        if self.gossip.leave().await.is_err() {
            tracing::debug!("gossip had already stopped");
        }
        while self.tasks.join_next().await.is_some() {}
        tracing::info!("left the cluster");
    }
}

/// The members, for `/v1/nodes`.
pub async fn members(gossip: &Gossip) -> Vec<MemberState> {
    gossip.members().await.unwrap_or_default()
}

/// Publishes through gossip; see [`Cluster::sink`].
struct ClusterSink {
    gossip: Gossip,
    runtime: tokio::runtime::Handle,
    applied: watch::Receiver<Applied>,
}

/// How long a write waits to be served here before the sink gives up waiting (it is in the
/// store and spreading by then; only this node's answers lag).
const SERVED_WITHIN: Duration = Duration::from_secs(10);

impl Sink for ClusterSink {
    fn set(&self, origin: &str, fragment: Catalog) -> Result<(), PublishError> {
        let payload = codec::encode(&fragment).map_err(|e| PublishError::Encode(e.to_string()))?;
        let origin = codec::to_gossip(origin);
        self.runtime.block_on(async {
            let version = (self.gossip.publish(origin.clone(), payload).await)
                .map_err(|_| PublishError::GossipStopped)?;
            let mut applied = self.applied.clone();
            let served = applied.wait_for(|a| a.get(&origin).is_some_and(|v| *v >= version));
            match tokio::time::timeout(SERVED_WITHIN, served).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(_)) => Err(PublishError::GossipStopped),
                Err(_) => {
                    tracing::warn!(?origin, "a published change is not served here yet");
                    Ok(())
                }
            }
        })
    }
}

//! Why the agent could not start.

use std::net::SocketAddr;

use crate::cluster::ClusterError;
use crate::config::ConfigError;
use crate::source::ClientError;

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// Occurs when a listener cannot be bound.
    #[error("cannot listen on {addr}: {source}; is another server using it?")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Occurs when a configured address or name does not parse.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Occurs when `vip.data_plane = "on"` and the data plane cannot start (the message says
    /// why and what to do).
    #[error("cannot start the VIP data plane, which vip.data_plane = \"on\" requires ({0})")]
    DataPlane(#[from] beacon_vip_lb::DataPlaneError),
    /// Occurs when gossip cannot start.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// Occurs when the Mesos HTTP client cannot be built.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Occurs when metrics cannot be registered (a programming error).
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

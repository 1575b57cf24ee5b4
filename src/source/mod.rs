//! Task sources: where the catalog comes from. The Mesos master's state (one shared origin,
//! however many nodes poll it) and the local Mesos agent's state (this node's own tasks).

pub mod http;
pub mod master;
pub mod mesos_agent;
pub mod stream;
pub mod zk;

use std::net::{IpAddr, SocketAddr};

use beacon_catalog::Catalog;
use beacon_catalog::mesos::StateError;

pub use http::ClientError;

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// Occurs when a master cannot be reached or answers with an HTTP error.
    #[error("GET {url}: {reason}")]
    Http {
        /// The URL asked.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// Occurs when a master's state document is rejected.
    #[error("state from {url}: {source}")]
    State {
        /// The URL asked.
        url: String,
        /// Why the document was rejected.
        source: StateError,
    },
    /// Occurs when a hostname in the state does not resolve.
    #[error("cannot resolve {host:?} named in the state: {reason}")]
    Resolve {
        /// The hostname.
        host: String,
        /// The resolver's error.
        reason: String,
    },
    /// Occurs when no master is known: ZooKeeper names none yet and no `masters` are listed.
    #[error(
        "no mesos master known yet: zookeeper names none (check that the masters run and \
         register under the zk path), and masters lists no fallback"
    )]
    NoMasterKnown,
    /// Occurs when every master failed; holds each master's error.
    #[error("no master answered: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    AllFailed(Vec<Self>),
}

/// Resolves every hostname the catalog names. A pid host that does not resolve fails the poll,
/// as in Mesos-DNS; a framework hostname that does not resolve only loses its records.
pub(crate) async fn resolve_hostnames(catalog: &mut Catalog) -> Result<(), FetchError> {
    let fw_hosts: Vec<String> = catalog
        .frameworks
        .iter()
        .filter(|f| f.pid.is_none())
        .map(|f| f.hostname.clone())
        .collect();
    let mut lost = Vec::new();
    for host in catalog.hostnames() {
        let lookup = tokio::net::lookup_host((host.clone(), 0)).await;
        match lookup {
            Ok(addrs) => {
                let mut ips: Vec<IpAddr> = addrs.map(|a: SocketAddr| a.ip()).collect();
                ips.dedup();
                catalog.host_ips.insert(host, ips);
            }
            Err(e) if fw_hosts.contains(&host) => lost.push((host, e)),
            Err(e) => {
                return Err(FetchError::Resolve {
                    host,
                    reason: e.to_string(),
                });
            }
        }
    }
    for (host, error) in lost {
        tracing::debug!(%host, %error, "framework hostname does not resolve");
    }
    Ok(())
}

//! The JSON shapes that a master's `/master/state` (v0) and its v1 operator API write alike: a
//! task's statuses (with their container's network infos), its DiscoveryInfo, and labels. One
//! reading of each, so that a task read from the event stream equals the task read from the
//! state document by construction. `default` everywhere: Mesos omits empty fields freely.

use serde::Deserialize;

use crate::model::{Discovery, DiscoveryPort, Label, NetworkInfo, Status};

/// A task status.
#[derive(Deserialize)]
pub(crate) struct RawStatus {
    #[serde(default)]
    state: String,
    #[serde(default)]
    timestamp: f64,
    #[serde(default, deserialize_with = "labels_either")]
    labels: Vec<Label>,
    #[serde(default)]
    container_status: RawContainerStatus,
    healthy: Option<bool>,
}

#[derive(Deserialize, Default)]
struct RawContainerStatus {
    #[serde(default)]
    network_infos: Vec<RawNetworkInfo>,
}

#[derive(Deserialize)]
struct RawNetworkInfo {
    #[serde(default)]
    ip_addresses: Vec<RawIpAddress>,
    /// Mesos 0.25's single address.
    ip_address: Option<String>,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct RawIpAddress {
    #[serde(default)]
    ip_address: String,
}

/// A DiscoveryInfo.
#[derive(Deserialize)]
pub(crate) struct RawDiscovery {
    #[serde(default)]
    name: String,
    #[serde(default)]
    ports: RawDiscoveryPorts,
    #[serde(default)]
    labels: RawLabels,
}

#[derive(Deserialize, Default)]
struct RawDiscoveryPorts {
    #[serde(default)]
    ports: Vec<RawDiscoveryPort>,
}

#[derive(Deserialize)]
struct RawDiscoveryPort {
    #[serde(default)]
    number: u64,
    #[serde(default)]
    protocol: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    labels: RawLabels,
}

/// Labels as `{"labels": [...]}`.
#[derive(Deserialize, Default)]
pub(crate) struct RawLabels {
    #[serde(default)]
    pub(crate) labels: Vec<Label>,
}

impl From<RawStatus> for Status {
    fn from(s: RawStatus) -> Self {
        Self {
            state: s.state,
            timestamp: s.timestamp,
            labels: s.labels,
            network_infos: (s.container_status.network_infos.into_iter())
                .map(|n| NetworkInfo {
                    ip_addresses: n.ip_addresses.into_iter().map(|a| a.ip_address).collect(),
                    ip_address: n.ip_address,
                    name: n.name,
                })
                .collect(),
            healthy: s.healthy,
        }
    }
}

impl From<RawDiscovery> for Discovery {
    /// Ports above 65535 are left out.
    fn from(d: RawDiscovery) -> Self {
        let ports = d.ports.ports.into_iter().filter_map(|p| {
            Some(DiscoveryPort {
                number: u16::try_from(p.number).ok()?,
                protocol: p.protocol,
                name: p.name,
                labels: p.labels.labels,
            })
        });
        Self {
            name: d.name,
            ports: ports.collect(),
            labels: d.labels.labels,
        }
    }
}

/// Mesos writes labels as a bare list in places (v0 statuses) and as `{"labels": [...]}`
/// elsewhere; accept both.
pub(crate) fn labels_either<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<Label>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        List(Vec<Label>),
        Wrapped(RawLabels),
    }
    Ok(match Option::<Either>::deserialize(d)? {
        Some(Either::List(l)) => l,
        Some(Either::Wrapped(w)) => w.labels,
        None => Vec::new(),
    })
}

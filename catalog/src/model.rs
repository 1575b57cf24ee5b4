//! The catalog's types: a typed, validated view of a Mesos master's state.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// A snapshot of everything Beacon knows about the cluster's workloads.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    /// The leading master's pid (`master@ip:port`), when the state names one.
    pub leader: Option<Pid>,
    /// The leader string exactly as reported, for records that Mesos-DNS derives from it.
    pub leader_raw: String,
    /// Mesos agents ("slaves").
    pub agents: Vec<Agent>,
    /// Frameworks with their tasks, in the order the master reported them.
    pub frameworks: Vec<Framework>,
    /// Addresses of every hostname that appears in a pid or framework hostname, filled by the
    /// source after resolving them; a name absent here did not resolve.
    pub host_ips: BTreeMap<String, Vec<IpAddr>>,
    /// The masters a detector (ZooKeeper) named when this state was fetched, `host:port`, leader
    /// first: they make `master` and `masterN` in place of the configured list, and travel with
    /// the state so that every node names the same masters. Empty: the configured list applies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masters: Vec<String>,
}

impl Catalog {
    /// The agent with this id, if the master reports it.
    pub fn agent(&self, id: &str) -> Option<&Agent> {
        self.agents.iter().find(|a| a.id == id)
    }

    /// The addresses of `host`: the literal itself when it is an IP, else what resolution found.
    pub fn ips_of(&self, host: &str) -> Vec<IpAddr> {
        match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => self.host_ips.get(host).cloned().unwrap_or_default(),
        }
    }

    /// Every hostname (not an IP literal) that records may need resolved.
    pub fn hostnames(&self) -> Vec<String> {
        let pids = self.agents.iter().filter_map(|a| a.pid.as_ref());
        let fw_pids = self.frameworks.iter().filter_map(|f| f.pid.as_ref());
        let mut names: Vec<String> = pids
            .chain(fw_pids)
            .chain(self.leader.as_ref())
            .map(|p| p.host.clone())
            .chain(
                self.frameworks
                    .iter()
                    .filter(|f| f.pid.is_none())
                    .map(|f| f.hostname.clone()),
            )
            .filter(|h| !h.is_empty() && h.parse::<IpAddr>().is_err())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The union of several catalogs (the sources' fragments): frameworks side by side (Mesos-DNS
    /// merges records of equal names, not frameworks), agents, resolved names and tasks (by
    /// framework name and task id) deduplicated, the first leader found.
    pub fn merge<'a>(parts: impl IntoIterator<Item = &'a Self>) -> Self {
        let mut out = Self::default();
        let mut seen: HashMap<String, HashSet<String>> = HashMap::new();
        let mut parts = parts.into_iter().peekable();
        while let Some(part) = parts.next() {
            let more_parts = parts.peek().is_some();
            if out.leader.is_none() && part.leader.is_some() {
                out.leader.clone_from(&part.leader);
                out.leader_raw.clone_from(&part.leader_raw);
            }
            if out.masters.is_empty() {
                out.masters.clone_from(&part.masters);
            }
            for agent in &part.agents {
                if out.agent(&agent.id).is_none() {
                    out.agents.push(agent.clone());
                }
            }
            // A task two sources both report (the master and an agent's poller) counts once.
            // The first source with tasks needs no check, and often is the only one.
            for framework in &part.frameworks {
                let mut framework = framework.clone();
                let ids = seen.entry(framework.name.clone()).or_default();
                if !ids.is_empty() {
                    framework.tasks.retain(|t| !ids.contains(&t.id));
                }
                if more_parts {
                    ids.extend(framework.tasks.iter().map(|t| t.id.clone()));
                }
                out.frameworks.push(framework);
            }
            out.host_ips
                .extend(part.host_ips.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        out
    }

    /// Number of tasks across all frameworks.
    pub fn task_count(&self) -> usize {
        self.frameworks.iter().map(|f| f.tasks.len()).sum()
    }
}

/// A libprocess pid, `id@host:port`, such as `slave(1)@10.0.0.1:5051`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pid {
    /// The process id before `@`.
    pub id: String,
    /// An IP literal (IPv6 without brackets) or a hostname.
    pub host: String,
    /// The port after the last `:`.
    pub port: u16,
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}@[{}]:{}", self.id, self.host, self.port)
        } else {
            write!(f, "{}@{}:{}", self.id, self.host, self.port)
        }
    }
}

/// A Mesos agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    /// Agent id, such as `20140803-194712-3041283216-5050-2116-3`.
    pub id: String,
    /// Reported hostname. Mesos-DNS does not use it; the pid host is what names resolve to.
    pub hostname: String,
    /// The agent's pid.
    pub pid: Option<Pid>,
}

/// A framework (scheduler) and its tasks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Framework {
    /// Name as registered, unsanitised.
    pub name: String,
    /// Scheduler pid, when the master reports one.
    pub pid: Option<Pid>,
    /// Scheduler hostname, used when there is no pid.
    pub hostname: String,
    /// Tasks, in reported order, whatever their state.
    pub tasks: Vec<Task>,
}

/// A task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Task id.
    pub id: String,
    /// Task name, unsanitised.
    pub name: String,
    /// The agent it runs on.
    pub agent_id: String,
    /// Current state, such as `TASK_RUNNING`.
    pub state: String,
    /// Status updates, in reported order.
    pub statuses: Vec<Status>,
    /// Port resources, as ranges.
    pub ports: Vec<PortRange>,
    /// DiscoveryInfo, when the task declares it.
    pub discovery: Option<Discovery>,
    /// Task labels.
    pub labels: Vec<Label>,
    /// Addresses declared by a registration (not a Mesos task): when non-empty they are the
    /// task's addresses whatever `IPSources` says, and the task needs no known agent.
    pub ips: Vec<IpAddr>,
}

impl Task {
    /// Whether the task stands for a registration (made through Beacon's API, with its
    /// addresses declared) rather than a Mesos task: names and VIPs a Mesos task has belong to
    /// Mesos, and registrations may not add to them.
    pub fn is_registration(&self) -> bool {
        !self.ips.is_empty()
    }

    /// Whether the task is running, the only state Mesos-DNS names.
    pub fn is_running(&self) -> bool {
        self.state == "TASK_RUNNING"
    }

    /// The `TASK_RUNNING` status with the highest timestamp: the one whose labels and network
    /// infos Mesos-DNS reads (the first of equal timestamps wins).
    pub fn latest_running_status(&self) -> Option<&Status> {
        let mut best: Option<&Status> = None;
        for s in self.statuses.iter().filter(|s| s.state == "TASK_RUNNING") {
            if best.is_none_or(|b| s.timestamp > b.timestamp) {
                best = Some(s);
            }
        }
        best
    }

    /// Whether the task's latest health check result (the newest status that carries one)
    /// failed. A task without a health check is never unhealthy.
    pub fn is_unhealthy(&self) -> bool {
        let mut latest: Option<&Status> = None;
        for s in self.statuses.iter().filter(|s| s.healthy.is_some()) {
            if latest.is_none_or(|l| s.timestamp >= l.timestamp) {
                latest = Some(s);
            }
        }
        latest.is_some_and(|s| s.healthy == Some(false))
    }

    /// Every port of every port range, in order.
    pub fn expanded_ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.ports.iter().flat_map(|r| r.begin..=r.end)
    }
}

/// A task status update.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// State reported by this update.
    pub state: String,
    /// Seconds since the epoch.
    pub timestamp: f64,
    /// Labels, such as `Docker.NetworkSettings.IPAddress`.
    pub labels: Vec<Label>,
    /// The container's networks.
    pub network_infos: Vec<NetworkInfo>,
    /// The task's health check result, when it has one.
    #[serde(default)]
    pub healthy: Option<bool>,
}

/// One container network of a status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInfo {
    /// `ip_addresses[].ip_address`, unparsed: bad values are skipped when names are made.
    pub ip_addresses: Vec<String>,
    /// The Mesos 0.25 single `ip_address` field.
    pub ip_address: Option<String>,
    /// Network name.
    pub name: String,
}

/// An inclusive range of ports, from a Mesos `ports` resource such as `[31000-31002]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRange {
    /// First port.
    pub begin: u16,
    /// Last port, inclusive.
    pub end: u16,
}

/// A task's DiscoveryInfo.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovery {
    /// Service name; when non-empty it replaces the task name in DNS.
    pub name: String,
    /// Declared ports.
    pub ports: Vec<DiscoveryPort>,
    /// DiscoveryInfo labels.
    pub labels: Vec<Label>,
}

/// A DiscoveryInfo port.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryPort {
    /// Port number.
    pub number: u16,
    /// Protocol, such as `tcp`; empty means both tcp and udp.
    pub protocol: String,
    /// Port name, such as `http`.
    pub name: String,
    /// Port labels, such as `VIP_0=/web:80`.
    pub labels: Vec<Label>,
}

/// A key/value label.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Label {
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
}

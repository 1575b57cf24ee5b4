//! Mesos-DNS record generation (`research/mesos-dns.md` §3): catalog in, A/AAAA/SRV sets out.
//!
//! Every name is fully qualified, lower-case (but for one legacy quirk, §3.4) and ends in `.`.
//! Each (name, type) holds a set of values in insertion order; inserting a value twice is a
//! no-op, which is how tasks sharing a name merge. Generation is pure: hostnames must already be
//! resolved into [`Catalog::host_ips`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use beacon_catalog::{Catalog, Framework, Task};
use indexmap::{IndexMap, IndexSet};
use sha1::{Digest, Sha1};

use crate::labels::LabelSpec;

/// Where a task's addresses come from, tried in the configured order (`IPSources`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpSource {
    /// The agent's address.
    Host,
    /// The `Docker.NetworkSettings.IPAddress` status label.
    Docker,
    /// The `MesosContainerizer.NetworkSettings.IPAddress` status label.
    Mesos,
    /// The status's container network infos.
    Netinfo,
}

impl IpSource {
    /// Parses a Mesos-DNS `IPSources` entry.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "host" => Self::Host,
            "docker" => Self::Docker,
            "mesos" => Self::Mesos,
            "netinfo" => Self::Netinfo,
            _ => return None,
        })
    }
}

/// What the generator needs to know beyond the catalog.
#[derive(Clone, Debug)]
pub struct GeneratorConfig {
    /// The domain, lower-case, without trailing dot (`mesos`).
    pub domain: String,
    /// Label rules.
    pub spec: LabelSpec,
    /// Task address sources, in priority order.
    pub ip_sources: Vec<IpSource>,
    /// Configured masters, `host:port`, in configured order; a catalog's own `masters` (from
    /// ZooKeeper) replace them.
    pub masters: Vec<String>,
    /// The server's own name (`SOAMname`, fully qualified) and the addresses it gets.
    pub ns_name: String,
    /// Addresses for `ns_name`, derived from the DNS listener.
    pub ns_ips: Vec<IpAddr>,
    /// Whether to record which task inserted which record ([`RecordSet::enumeration`]): only
    /// `/v1/enumerate` needs it, and it doubles the set's memory.
    pub enumerate: bool,
    /// Leaves out tasks whose latest health check failed (`[dns] healthy_only`; Mesos-DNS
    /// names them, and so does Beacon by default).
    pub healthy_only: bool,
}

/// An SRV value: target and port. Priority and weight come from the serving configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Srv {
    /// Fully qualified target name.
    pub target: String,
    /// Port.
    pub port: u16,
}

impl fmt::Display for Srv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.target, self.port)
    }
}

/// Names to values, per record type, in insertion order.
pub type RecordMap<V> = IndexMap<String, IndexSet<V>>;

/// Everything generated from one catalog.
#[derive(Clone, Debug, Default)]
pub struct RecordSet {
    /// A records.
    pub a: RecordMap<Ipv4Addr>,
    /// AAAA records.
    pub aaaa: RecordMap<Ipv6Addr>,
    /// SRV records.
    pub srv: RecordMap<Srv>,
    /// Per framework and task, the records each task inserted first (`/v1/enumerate`); the
    /// records only when [`GeneratorConfig::enumerate`] is set.
    pub enumeration: Vec<EnumFramework>,
}

/// A framework as `/v1/enumerate` lists it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EnumFramework {
    /// The framework's raw name.
    pub name: String,
    /// Its running tasks on known agents.
    pub tasks: Vec<EnumTask>,
}

/// A task as `/v1/enumerate` lists it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EnumTask {
    /// Raw task name.
    pub name: String,
    /// Task id.
    pub id: String,
    /// Records this task inserted first: (name, value, type).
    pub records: Vec<EnumRecord>,
}

/// One record of an [`EnumTask`].
#[derive(Clone, Debug, PartialEq)]
pub struct EnumRecord {
    /// Owner name.
    pub name: String,
    /// Value: an address or `target:port`.
    pub host: String,
    /// `A`, `AAAA` or `SRV`.
    pub rtype: &'static str,
}

impl RecordSet {
    /// Number of A, AAAA and SRV values.
    pub fn counts(&self) -> [usize; 3] {
        fn values<V>(m: &RecordMap<V>) -> usize {
            m.values().map(IndexSet::len).sum()
        }
        [values(&self.a), values(&self.aaaa), values(&self.srv)]
    }

    /// Total number of values across all names and types.
    pub fn len(&self) -> usize {
        self.counts().iter().sum()
    }

    /// Whether no record was generated.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds every record of `other` that this set lacks, in `other`'s order: the records of a
    /// catalog made of several sources, from each source's own records (the agent keeps those
    /// per source, so that a change in one does not regenerate the others).
    pub fn union(&mut self, other: &Self) {
        fn add<V: std::hash::Hash + Eq + Clone>(into: &mut RecordMap<V>, from: &RecordMap<V>) {
            for (name, values) in from {
                match into.get_mut(name) {
                    Some(set) => set.extend(values.iter().cloned()),
                    None => {
                        into.insert(name.clone(), values.clone());
                    }
                }
            }
        }
        add(&mut self.a, &other.a);
        add(&mut self.aaaa, &other.aaaa);
        add(&mut self.srv, &other.srv);
    }

    fn insert_ip(&mut self, name: &str, ip: IpAddr, log: Option<&mut Vec<EnumRecord>>) {
        let added = match ip {
            IpAddr::V4(v4) => insert(&mut self.a, name, v4),
            IpAddr::V6(v6) => insert(&mut self.aaaa, name, v6),
        };
        if let (true, Some(log)) = (added, log) {
            let rtype = if ip.is_ipv4() { "A" } else { "AAAA" };
            log.push(EnumRecord {
                name: name.to_string(),
                host: ip.to_string(),
                rtype,
            });
        }
    }

    fn insert_srv(&mut self, name: &str, srv: Srv, log: Option<&mut Vec<EnumRecord>>) -> bool {
        let host = log.is_some().then(|| srv.to_string());
        let added = insert(&mut self.srv, name, srv);
        if let (true, Some(log), Some(host)) = (added, log, host) {
            log.push(EnumRecord {
                name: name.to_string(),
                host,
                rtype: "SRV",
            });
        }
        added
    }
}

fn insert<V: std::hash::Hash + Eq>(map: &mut RecordMap<V>, name: &str, value: V) -> bool {
    match map.get_mut(name) {
        Some(set) => set.insert(value),
        None => map
            .insert(name.to_string(), IndexSet::from([value]))
            .is_none(),
    }
}

/// Generates every Mesos-DNS record for `catalog`, in Mesos-DNS's insertion order: frameworks,
/// agents, the server's own name, masters, then tasks.
pub fn generate(catalog: &Catalog, config: &GeneratorConfig) -> RecordSet {
    let mut generator = Generator {
        rs: RecordSet::default(),
        catalog,
        config,
        tail: format!(".{}.", config.domain),
    };
    generator.frameworks();
    generator.agents();
    for &ip in &config.ns_ips {
        generator.rs.insert_ip(&config.ns_name, ip, None);
    }
    generator.masters();
    generator.tasks();
    generator.rs
}

struct Generator<'a> {
    rs: RecordSet,
    catalog: &'a Catalog,
    config: &'a GeneratorConfig,
    /// `.{domain}.`
    tail: String,
}

impl Generator<'_> {
    /// `{fw}.D.` for every framework with an address, and `_framework._tcp.{fw}.D.` when its pid
    /// gives a port (§3.6).
    fn frameworks(&mut self) {
        for fw in &self.catalog.frameworks {
            let name = format!("{}{}", self.config.spec.domain_frag(&fw.name), self.tail);
            let (host, port) = match &fw.pid {
                Some(pid) => (pid.host.as_str(), Some(pid.port)),
                None => (fw.hostname.as_str(), None),
            };
            let ips = self.catalog.ips_of(host);
            for &ip in &ips {
                self.rs.insert_ip(&name, ip, None);
            }
            if let (false, Some(port)) = (ips.is_empty(), port) {
                let srv = Srv {
                    target: name.clone(),
                    port,
                };
                self.rs
                    .insert_srv(&format!("_framework._tcp.{name}"), srv, None);
            }
        }
    }

    /// `slave.D.` with every agent address and `_slave._tcp.D.` per distinct pid port (§3.7).
    fn agents(&mut self) {
        let name = format!("slave{}", self.tail);
        for agent in &self.catalog.agents {
            let Some(pid) = &agent.pid else { continue };
            for ip in self.catalog.ips_of(&pid.host) {
                self.rs.insert_ip(&name, ip, None);
            }
            let srv = Srv {
                target: name.clone(),
                port: pid.port,
            };
            self.rs
                .insert_srv(&format!("_slave._tcp{}", self.tail), srv, None);
        }
    }

    /// `leader`, `master`, `masterN` and `_leader._{tcp,udp}` (§3.8). A leader or master that is
    /// not an address and did not resolve is skipped (Mesos-DNS crashed on it).
    fn masters(&mut self) {
        let Some((_, leader_addr)) = self.catalog.leader_raw.split_once('@') else {
            return;
        };
        let Some((leader_host, leader_port)) = split_host_port(leader_addr) else {
            return;
        };
        let Ok(leader_port) = leader_port.parse::<u16>() else {
            return;
        };
        let Some(leader_ip) = self.first_ip(leader_host) else {
            return;
        };
        let tail = self.tail.clone();
        self.rs.insert_ip(&format!("leader{tail}"), leader_ip, None);
        let master = format!("master{tail}");
        self.rs.insert_ip(&master, leader_ip, None);
        let target = format!("leader{tail}");
        for proto in ["tcp", "udp"] {
            let srv = Srv {
                target: target.clone(),
                port: leader_port,
            };
            self.rs
                .insert_srv(&format!("_leader._{proto}{tail}"), srv, None);
        }

        let mut leader_has_index = false;
        let mut idx = 0;
        let (catalog, config) = (self.catalog, self.config);
        let masters = match catalog.masters.is_empty() {
            true => &config.masters,
            false => &catalog.masters,
        };
        for m in masters {
            let Some((host, _)) = split_host_port(m) else {
                continue;
            };
            let Some(ip) = self.first_ip(host) else {
                continue;
            };
            let is_leader = m == leader_addr;
            if !is_leader {
                let added = match ip {
                    IpAddr::V4(v4) => insert(&mut self.rs.a, &master, v4),
                    IpAddr::V6(v6) => insert(&mut self.rs.aaaa, &master, v6),
                };
                if !added {
                    continue;
                }
            } else if leader_has_index {
                continue;
            }
            self.rs.insert_ip(&format!("master{idx}{tail}"), ip, None);
            leader_has_index |= is_leader;
            idx += 1;
        }
        if !leader_has_index {
            self.rs
                .insert_ip(&format!("master{idx}{tail}"), leader_ip, None);
        }
    }

    fn first_ip(&self, host: &str) -> Option<IpAddr> {
        self.catalog.ips_of(host).first().copied()
    }

    fn tasks(&mut self) {
        let enumerate = self.config.enumerate;
        let mut enumeration = Vec::with_capacity(self.catalog.frameworks.len());
        for fw in &self.catalog.frameworks {
            let mut efw = EnumFramework {
                name: fw.name.clone(),
                tasks: Vec::new(),
            };
            let healthy_only = self.config.healthy_only;
            let served = |t: &&Task| t.is_running() && !(healthy_only && t.is_unhealthy());
            for task in fw.tasks.iter().filter(served) {
                // A Mesos task needs a known agent (Mesos-DNS skips the others); a registration
                // brings its own addresses and has no agent.
                let agent_ips = match self.catalog.agent(&task.agent_id) {
                    Some(agent) => agent
                        .pid
                        .as_ref()
                        .map(|p| self.catalog.ips_of(&p.host))
                        .unwrap_or_default(),
                    None if !task.ips.is_empty() => Vec::new(),
                    None => continue,
                };
                let mut etask = EnumTask {
                    name: task.name.clone(),
                    id: task.id.clone(),
                    records: Vec::new(),
                };
                let mut ctx = TaskContext {
                    fw,
                    task,
                    name: self.config.spec.label(&task.name),
                    hash: hash_string(&task.id),
                    agent_tail: agent_id_tail(&task.agent_id),
                    task_ips: task_ips(task, &self.config.ip_sources, &agent_ips),
                    agent_ips,
                };
                match task.discovery.as_ref().filter(|d| !d.name.is_empty()) {
                    Some(d) => {
                        // Mesos-DNS runs the DiscoveryInfo pass twice, first with the raw name
                        // ("LEGACY TODO: REMOVE"), then sanitised (§3.4). Both are kept so that
                        // clients of the dotted legacy names go on working.
                        ctx.name = d.name.clone();
                        self.task_records(&ctx, enumerate.then_some(&mut etask.records));
                        ctx.name = self.config.spec.label(&d.name);
                        self.task_records(&ctx, enumerate.then_some(&mut etask.records));
                    }
                    None => self.task_records(&ctx, enumerate.then_some(&mut etask.records)),
                }
                efw.tasks.push(etask);
            }
            enumeration.push(efw);
        }
        self.rs.enumeration = enumeration;
    }

    /// One naming pass for a task (§3.3, §3.4).
    fn task_records(&mut self, ctx: &TaskContext<'_>, mut log: Option<&mut Vec<EnumRecord>>) {
        let fw = self.config.spec.domain_frag(&ctx.fw.name);
        let tail = &self.tail;
        let canonical = format!("{}-{}-{}.{fw}", ctx.name, ctx.hash, ctx.agent_tail);
        let short = format!("{}.{fw}", ctx.name);
        for (name, ips) in [
            (format!("{short}{tail}"), &ctx.task_ips),
            (format!("{canonical}{tail}"), &ctx.task_ips),
            (format!("{short}.slave{tail}"), &ctx.agent_ips),
            (format!("{canonical}.slave{tail}"), &ctx.agent_ips),
        ] {
            for &ip in ips {
                self.rs.insert_ip(&name, ip, log.as_deref_mut());
            }
        }

        let discovery = ctx.task.discovery.as_ref().filter(|d| !d.name.is_empty());
        let slave_target = format!("{canonical}.slave{tail}");
        let subdomains: &[&str] = if discovery.is_some() {
            &["slave"]
        } else {
            &["slave", ""]
        };
        for port in ctx.task.expanded_ports() {
            for sub in subdomains {
                for proto in ["tcp", "udp"] {
                    let sub = if sub.is_empty() {
                        String::new()
                    } else {
                        format!(".{sub}")
                    };
                    let name = format!("_{}._{proto}.{fw}{sub}{tail}", ctx.name);
                    let srv = Srv {
                        target: slave_target.clone(),
                        port,
                    };
                    self.rs.insert_srv(&name, srv, log.as_deref_mut());
                }
            }
        }

        let Some(discovery) = discovery else { return };
        let target = format!("{canonical}{tail}");
        for port in &discovery.ports {
            let protos = match port.protocol.as_str() {
                "" => vec!["tcp".to_string(), "udp".to_string()],
                p => vec![self.config.spec.label(p)],
            };
            let names: Vec<String> = protos
                .iter()
                .map(|proto| format!("_{}._{proto}.{fw}", ctx.name))
                .collect();
            let port_name = self.config.spec.label(&port.name);
            let named = names.iter().map(|n| format!("_{port_name}.{n}"));
            let all: Vec<String> = if port_name.is_empty() {
                names.clone()
            } else {
                names.iter().cloned().chain(named).collect()
            };
            for name in all {
                let srv = Srv {
                    target: target.clone(),
                    port: port.number,
                };
                self.rs
                    .insert_srv(&format!("{name}{tail}"), srv, log.as_deref_mut());
            }
        }
    }
}

struct TaskContext<'a> {
    fw: &'a Framework,
    task: &'a Task,
    /// The name used for this pass: sanitised task name, or a DiscoveryInfo name.
    name: String,
    hash: String,
    agent_tail: String,
    task_ips: Vec<IpAddr>,
    agent_ips: Vec<IpAddr>,
}

/// `zbase32(sha1(id))[..5]`, the hash in canonical task names.
pub fn hash_string(id: &str) -> String {
    const ALPHABET: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";
    let digest = Sha1::digest(id.as_bytes());
    // The first 25 bits, five at a time, most significant first.
    let bits = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    (0..5)
        .map(|i| ALPHABET[((bits >> (27 - 5 * i)) & 0x1f) as usize] as char)
        .collect()
}

/// The last `-`-separated field of an agent id, lower-cased: `…-S3` gives `s3`.
pub fn agent_id_tail(id: &str) -> String {
    id.rsplit('-').next().unwrap_or(id).to_lowercase()
}

/// A task's addresses: a registration's own, else all parseable addresses of the first source
/// that has any (§3.5).
pub fn task_ips(task: &Task, sources: &[IpSource], agent_ips: &[IpAddr]) -> Vec<IpAddr> {
    if !task.ips.is_empty() {
        return task.ips.clone();
    }
    let status = task.latest_running_status();
    let label_ips = |key: &str| -> Vec<IpAddr> {
        status
            .map(|s| {
                s.labels
                    .iter()
                    .filter(|l| l.key == key)
                    .filter_map(|l| l.value.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    for source in sources {
        let ips: Vec<IpAddr> = match source {
            IpSource::Host => agent_ips.to_vec(),
            IpSource::Docker => label_ips("Docker.NetworkSettings.IPAddress"),
            IpSource::Mesos => label_ips("MesosContainerizer.NetworkSettings.IPAddress"),
            IpSource::Netinfo => status
                .map(|s| {
                    s.network_infos
                        .iter()
                        .flat_map(|n| {
                            if n.ip_addresses.is_empty() {
                                n.ip_address.iter().cloned().collect::<Vec<_>>()
                            } else {
                                n.ip_addresses.clone()
                            }
                        })
                        .filter_map(|ip| ip.parse().ok())
                        .collect()
                })
                .unwrap_or_default(),
        };
        if !ips.is_empty() {
            return ips;
        }
    }
    Vec::new()
}

/// Splits `host:port` or `[v6]:port`.
fn split_host_port(addr: &str) -> Option<(&str, &str)> {
    let (host, port) = addr.rsplit_once(':')?;
    let host = match host.strip_prefix('[') {
        Some(h) => h.strip_suffix(']')?,
        None if host.contains(':') => return None,
        None => host,
    };
    (!host.is_empty()).then_some((host, port))
}

#[cfg(test)]
mod tests;

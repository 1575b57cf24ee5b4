//! VIPs (DC/OS "Minuteman" virtual IPs): which ones the catalog declares and which backends each
//! has, as one sorted table. Pure: no I/O, no clock.
//!
//! [`extract`] reads the declarations described under [Labels](#labels)
//! from every running task and returns a [`VipTable`]: for each [`VipKey`] (protocol, named or IP
//! address, port) the sorted, deduplicated [`Backend`]s, plus a [`VipWarning`] for each label it
//! had to skip. [`NamedAddresses`] gives named VIPs their 11.0.0.0/8 and fd01:c::/64 addresses;
//! [`withdraw_unreachable`] drops backends on nodes gossip says are unreachable.
//!
//! # Labels
//!
//! - DiscoveryInfo port labels whose key starts with `VIP` or `vip`: `/name:port` or `name:port`
//!   (named VIP), `ip:port`, `v6addr:port` or `[v6addr]:port` (IP VIP). Several on one port
//!   merge. The port's `protocol` (`tcp`, `udp`, or empty for both) is the VIP's.
//! - Task labels `VIP_PORT<n>=tcp://<vip>:<port>` or `udp://…`: the task's `n`th port resource.
//! - `network-scope=host` on a port: its number is a host port.
//!
//! # Backends
//!
//! As dcos-net's `dcos_l4lb_mesos_poller` chose them (`research/dcos-net.md` §2.2):
//! - a host port (`network-scope=host`, or a `VIP_PORT` label) is reached at the **agent's
//!   address** (the host of its pid): one backend per address family the agent has;
//! - a container port (the default) is reached at **each of the task's own addresses**: those of
//!   the latest status's `network_infos`, the container IPs under bridge or CNI networking and the
//!   agent's IP under host networking, as Mesos reports them.
//! - a registration (`PUT /v1/registrations`) is reached at its declared addresses.
//!
//! dcos-net rewrote a host port to the container address on the task's own agent (the "hairpin"
//! fix, §2.2); that is node-local and left to the data plane. Weights: `TASK_RUNNING` is 1,
//! `TASK_KILLING` and a running task whose latest health check failed (`healthy: false`) are 0
//! (drain: no new connections), as in dcos-net; other states have no backends.
//!
//! An IP VIP keeps only backends of its own address family; a named VIP keeps both, and DNS
//! gives it an A record for IPv4 backends and an AAAA record for IPv6 ones.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::model::{Catalog, Label, Task};

mod address;
mod declaration;
mod naming;
mod reachability;

pub use address::{NAMED_V4_POOL, NAMED_V6_POOL, NamedAddresses, in_named_pool};
pub use declaration::Protocol;
pub use naming::{L4LB_ZONE, VipName, domain_frag, label};
pub use reachability::{withdraw_on_nodes, withdraw_unreachable};

use declaration::{Target, is_host_scope, is_vip_key, parse_task_label, parse_value};

/// A VIP: where clients connect.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VipKey {
    /// TCP or UDP.
    pub protocol: Protocol,
    /// A name (given an address by [`NamedAddresses`]) or a literal address.
    pub address: VipAddress,
    /// The port clients connect to; independent of the backends' ports.
    pub port: u16,
}

impl VipKey {
    /// How the API and metrics name a VIP, as dcos-net's `/v1/vips` does:
    /// `<name>.<framework>.l4lb.thisdcos.directory:<port>` or `<ip>:<port>`.
    pub fn display_name(&self) -> String {
        match &self.address {
            VipAddress::Named(name) => {
                let fqdn = name.fqdn_in(L4LB_ZONE);
                format!("{}:{}", fqdn.trim_end_matches('.'), self.port)
            }
            VipAddress::Ip(ip) => std::net::SocketAddr::new(*ip, self.port).to_string(),
        }
    }
}

/// The address part of a [`VipKey`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum VipAddress {
    /// A named VIP: `<name>.<framework>.l4lb.thisdcos.directory`.
    Named(VipName),
    /// An IP VIP, as declared.
    Ip(IpAddr),
}

/// One backend of a VIP.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Backend {
    /// Address connections go to.
    pub ip: IpAddr,
    /// Port connections go to.
    pub port: u16,
    /// 1 for a running task, 0 for one being killed (drained: no new connections).
    pub weight: u32,
    /// The node that owns the task: the Mesos agent id, or for a registration the id of the
    /// Beacon node that accepted it. [`withdraw_unreachable`] matches on it.
    pub node: String,
    /// The agent's own address, when the agent is known (not for registrations): what dcos-net
    /// keyed node reachability on.
    pub agent_ip: Option<IpAddr>,
}

/// Every VIP the catalog declares, with its backends, and what was skipped.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VipTable {
    /// VIPs in key order; each backend list sorted by address, port and node, without
    /// duplicates, never empty.
    pub vips: BTreeMap<VipKey, Vec<Backend>>,
    /// One entry per skipped label or backend, in catalog order.
    pub warnings: Vec<VipWarning>,
    /// The VIPs registrations declare (none of them a Mesos task's), each with the node whose
    /// registrations declare it: they come after Mesos VIPs when the kernel's tables are full.
    #[serde(default)]
    pub registered: BTreeMap<VipKey, String>,
}

impl VipTable {
    /// The distinct names of named VIPs, sorted.
    pub fn names(&self) -> Vec<&VipName> {
        let names: BTreeSet<&VipName> = self
            .vips
            .keys()
            .filter_map(|k| match &k.address {
                VipAddress::Named(n) => Some(n),
                VipAddress::Ip(_) => None,
            })
            .collect();
        names.into_iter().collect()
    }

    /// Addresses for every named VIP, avoiding the IP VIPs declared inside the named pools.
    pub fn named_addresses(&self) -> NamedAddresses {
        let reserved = self.vips.keys().filter_map(|k| match k.address {
            VipAddress::Ip(ip) => Some(ip),
            VipAddress::Named(_) => None,
        });
        NamedAddresses::allocate(self.names(), reserved)
    }
}

/// A label or backend [`extract`] skipped, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipWarning {
    /// The task's framework, raw.
    pub framework: String,
    /// The task's id.
    pub task_id: String,
    /// The label at fault.
    pub label: Label,
    /// What is wrong.
    pub problem: VipProblem,
}

impl fmt::Display for VipWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "task {:?} of framework {:?}, label {}={:?}: {}",
            self.task_id, self.framework, self.label.key, self.label.value, self.problem
        )
    }
}

/// Why a VIP label, or a backend it asks for, was skipped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum VipProblem {
    /// Occurs when the value has no `:` before a port.
    #[error("no ':<port>' after the VIP; write /name:port or ip:port")]
    MissingPort,
    /// Occurs when the VIP port is not a number from 1 to 65535.
    #[error("VIP port {0:?} is not a number from 1 to 65535")]
    Port(String),
    /// Occurs when a bracketed address is not IPv6.
    #[error("{0:?} is not an IPv6 address in brackets")]
    Address(String),
    /// Occurs when a name normalises to nothing, or to a name too long for DNS.
    #[error(
        "VIP name {0:?} makes no DNS name: use letters, digits, '-' and '/', \
         at most 63 per label and about 200 with the framework name"
    )]
    Name(String),
    /// Occurs when the port's protocol is not TCP or UDP.
    #[error("port protocol {0:?} is neither tcp nor udp")]
    Protocol(String),
    /// Occurs when the discovery port's number is 0.
    #[error("the discovery port's number is 0; give the port its number")]
    PortZero,
    /// Occurs when a `VIP_PORT` key's suffix is not a number.
    #[error("VIP_PORT index {0:?} is not a number; write VIP_PORT0, VIP_PORT1, …")]
    PortIndex(String),
    /// Occurs when a `VIP_PORT` value does not start with `tcp://` or `udp://`.
    #[error("{0:?} does not start with tcp:// or udp://")]
    Scheme(String),
    /// Occurs when `VIP_PORT<n>` names a port resource the task does not have.
    #[error("VIP_PORT{index} names port resource {index} but the task has {count} ports")]
    NoSuchPort {
        /// The index asked for.
        index: usize,
        /// How many ports the task's resources give.
        count: usize,
    },
    /// Occurs when a container port's task reports no address of its own.
    #[error(
        "the task reports no address of its own (no network_infos); \
         if the port number is a host port, label the port network-scope=host"
    )]
    NoTaskAddress,
    /// Occurs when a host port's agent is unknown or its host did not resolve.
    #[error("host port on agent {0:?}, whose address is unknown")]
    NoAgentAddress(String),
    /// Occurs when an IP VIP lies in a named-VIP pool: those addresses belong to named VIPs'
    /// hashes, and an IP VIP there could take one over, so it is skipped.
    #[error(
        "IP VIP {0} lies in the named-VIP ranges 11.0.0.0/8 and fd01:c::/64, which belong to \
         named VIPs; use an RFC 1918 or other private address"
    )]
    InNamedPool(IpAddr),
    /// Occurs when an IP VIP is a loopback, unspecified or multicast address: balancing it would
    /// capture this host's own traffic.
    #[error("IP VIP {0} is a loopback, unspecified or multicast address; use a private address")]
    Reserved(IpAddr),
    /// Occurs when a registration declares a VIP that a Mesos task declares: the VIP belongs to
    /// Mesos, and a registration cannot add backends to it.
    #[error("VIP {0} is declared by a Mesos task; a registration cannot join it")]
    OwnedByMesos(String),
    /// Occurs when an IP VIP is an address of the cluster's own infrastructure (a member, a
    /// Mesos master or agent, a DNS upstream, or the host): balancing it would capture that
    /// traffic, the agent's own included.
    #[error(
        "IP VIP {0} is an address of the cluster's own infrastructure (a member, a Mesos master \
         or agent, a DNS upstream, or this host); use a dedicated address"
    )]
    Fenced(IpAddr),
    /// Occurs when one node's registrations declare more VIPs than `[vip] max_registered_vips`.
    #[error("node {0}'s registrations declare more than {1} VIPs ([vip] max_registered_vips)")]
    OverQuota(String, usize),
}

/// Reads every VIP declaration of the catalog's running and killing tasks.
pub fn extract(catalog: &Catalog) -> VipTable {
    let agents: HashMap<&str, Vec<IpAddr>> = catalog
        .agents
        .iter()
        .filter_map(|a| Some((a.id.as_str(), a.pid.as_ref()?)))
        .map(|(id, pid)| (id, one_per_family(catalog.ips_of(&pid.host))))
        .collect();
    let mut out = Extraction::default();
    // Mesos tasks first: the VIPs they declare belong to Mesos, and registrations (second) may
    // not add backends to them, on every node alike.
    for registrations in [false, true] {
        if registrations {
            out.owned_by_mesos = out.vips.keys().map(|k| k.address.clone()).collect();
        }
        let tasks = (catalog.frameworks.iter())
            .flat_map(|f| f.tasks.iter().map(move |t| (f, t)))
            .filter(|(_, t)| t.is_registration() == registrations);
        for (framework, task) in tasks {
            let weight = match task.state.as_str() {
                "TASK_RUNNING" if task.is_unhealthy() => 0,
                "TASK_RUNNING" => 1,
                "TASK_KILLING" => 0,
                _ => continue,
            };
            let agent_ips = agents.get(task.agent_id.as_str());
            let ctx = TaskContext {
                framework: &framework.name,
                task,
                weight,
                agent_ips: agent_ips.map_or(&[], Vec::as_slice),
            };
            out.task(&ctx);
        }
    }
    let mut vips = out.vips;
    vips.retain(|_, backends| {
        backends.sort();
        backends.dedup();
        !backends.is_empty()
    });
    let mut registered = out.registered;
    registered.retain(|key, _| vips.contains_key(key));
    VipTable {
        vips,
        warnings: out.warnings,
        registered,
    }
}

/// Where a port's number is open.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// On the agent's address.
    Host,
    /// On the task's own addresses.
    Container,
}

/// One VIP a label declares for one protocol, and the task port behind it.
struct Declared {
    protocol: Protocol,
    target: Target,
    vip_port: u16,
    scope: Scope,
    backend_port: u16,
}

struct TaskContext<'c> {
    framework: &'c str,
    task: &'c Task,
    weight: u32,
    agent_ips: &'c [IpAddr],
}

impl TaskContext<'_> {
    /// The addresses a port of `scope` is reached at.
    fn addresses(&self, scope: Scope) -> Result<Vec<IpAddr>, VipProblem> {
        if !self.task.ips.is_empty() {
            // A registration: its declared addresses, whatever the scope.
            return Ok(self.task.ips.clone());
        }
        let found = match scope {
            Scope::Host => self.agent_ips.to_vec(),
            Scope::Container => task_ips(self.task),
        };
        match (found.is_empty(), scope) {
            (false, _) => Ok(found),
            (true, Scope::Host) => Err(VipProblem::NoAgentAddress(self.task.agent_id.clone())),
            (true, Scope::Container) => Err(VipProblem::NoTaskAddress),
        }
    }
}

#[derive(Default)]
struct Extraction {
    vips: BTreeMap<VipKey, Vec<Backend>>,
    warnings: Vec<VipWarning>,
    /// VIP addresses Mesos tasks declare (filled before registrations are read).
    owned_by_mesos: BTreeSet<VipAddress>,
    registered: BTreeMap<VipKey, String>,
}

impl Extraction {
    fn task(&mut self, ctx: &TaskContext<'_>) {
        let ports = ctx.task.discovery.iter().flat_map(|d| &d.ports);
        for port in ports {
            let labels = port.labels.iter().filter(|l| is_vip_key(&l.key));
            let scope = match is_host_scope(&port.labels) {
                true => Scope::Host,
                false => Scope::Container,
            };
            for label in labels {
                let declared = Protocol::of_port(&port.protocol).and_then(|protocols| {
                    if port.number == 0 {
                        return Err(VipProblem::PortZero);
                    }
                    let (target, vip_port) = parse_value(&label.value)?;
                    Ok((protocols, target, vip_port))
                });
                match declared {
                    Ok((protocols, target, vip_port)) => {
                        for &protocol in protocols {
                            let declared = Declared {
                                protocol,
                                target: target.clone(),
                                vip_port,
                                scope,
                                backend_port: port.number,
                            };
                            self.add(ctx, label, declared);
                        }
                    }
                    Err(problem) => self.warn(ctx, label, problem),
                }
            }
        }
        for label in &ctx.task.labels {
            let declared = parse_task_label(label).map(|parsed| {
                let (index, protocol, target, vip_port) = parsed?;
                let count = ctx.task.expanded_ports().count();
                match ctx.task.expanded_ports().nth(index) {
                    Some(host_port) => Ok(Declared {
                        protocol,
                        target,
                        vip_port,
                        scope: Scope::Host,
                        backend_port: host_port,
                    }),
                    None => Err(VipProblem::NoSuchPort { index, count }),
                }
            });
            match declared {
                None => {}
                Some(Ok(declared)) => self.add(ctx, label, declared),
                Some(Err(problem)) => self.warn(ctx, label, problem),
            }
        }
    }

    fn add(&mut self, ctx: &TaskContext<'_>, label: &Label, declared: Declared) {
        let Declared {
            protocol,
            target,
            vip_port,
            scope,
            backend_port,
        } = declared;
        let address = match target {
            Target::Named(raw) => match VipName::new(&raw, ctx.framework) {
                Some(name) => VipAddress::Named(name),
                None => return self.warn(ctx, label, VipProblem::Name(raw)),
            },
            Target::Ip(ip) => match fenced(ip) {
                Some(problem) => {
                    // Once per label: the UDP twin of an empty-protocol port says nothing new.
                    if protocol == Protocol::Tcp {
                        self.warn(ctx, label, problem);
                    }
                    return;
                }
                None => VipAddress::Ip(ip),
            },
        };
        if ctx.task.is_registration() && self.owned_by_mesos.contains(&address) {
            let shown = match &address {
                VipAddress::Named(name) => format!("/{}", name.name()),
                VipAddress::Ip(ip) => ip.to_string(),
            };
            return self.warn(ctx, label, VipProblem::OwnedByMesos(shown));
        }
        let ips = match ctx.addresses(scope) {
            Ok(ips) => ips,
            Err(problem) => return self.warn(ctx, label, problem),
        };
        let agent_ip = ctx.agent_ips.first().copied();
        let family = match &address {
            VipAddress::Ip(vip) => Some(vip.is_ipv4()),
            VipAddress::Named(_) => None,
        };
        let backends = ips
            .into_iter()
            .filter(|ip| family.is_none_or(|v4| ip.is_ipv4() == v4))
            .map(|ip| Backend {
                ip,
                port: backend_port,
                weight: ctx.weight,
                node: ctx.task.agent_id.clone(),
                agent_ip,
            });
        let key = VipKey {
            protocol,
            address,
            port: vip_port,
        };
        if ctx.task.is_registration() {
            let node = ctx.task.agent_id.clone();
            self.registered.entry(key.clone()).or_insert(node);
        }
        self.vips.entry(key).or_default().extend(backends);
    }

    fn warn(&mut self, ctx: &TaskContext<'_>, label: &Label, problem: VipProblem) {
        self.warnings.push(VipWarning {
            framework: ctx.framework.to_string(),
            task_id: ctx.task.id.clone(),
            label: label.clone(),
            problem,
        });
    }
}

/// Why an IP VIP on `ip` is refused whatever its source, if it is.
fn fenced(ip: IpAddr) -> Option<VipProblem> {
    if in_named_pool(ip) {
        return Some(VipProblem::InNamedPool(ip));
    }
    (ip.is_loopback() || ip.is_unspecified() || ip.is_multicast())
        .then_some(VipProblem::Reserved(ip))
}

/// The task's own addresses: those of its latest running status's container networks (or, for a
/// task being killed, of its latest status), in order, without duplicates.
fn task_ips(task: &Task) -> Vec<IpAddr> {
    let status = task.latest_running_status().or_else(|| {
        task.statuses
            .iter()
            .reduce(|a, b| if b.timestamp > a.timestamp { b } else { a })
    });
    let mut ips = Vec::new();
    let infos = status.iter().flat_map(|s| &s.network_infos);
    for info in infos {
        let texts = info.ip_addresses.iter().chain(&info.ip_address);
        for ip in texts.filter_map(|t| t.parse::<IpAddr>().ok()) {
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        }
    }
    ips
}

/// The first IPv4 and the first IPv6 address of a host: one backend per family, so that a
/// multi-homed agent does not weigh more than a single-homed one.
fn one_per_family(ips: Vec<IpAddr>) -> Vec<IpAddr> {
    let v4 = ips.iter().find(|ip| ip.is_ipv4());
    let v6 = ips.iter().find(|ip| ip.is_ipv6());
    v4.into_iter().chain(v6).copied().collect()
}

#[cfg(test)]
mod tests;

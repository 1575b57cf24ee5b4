//! The VIP side of publishing. Every catalog that is published goes through two steps:
//! [`Vips::prepare`] derives the VIP table, withdraws backends on nodes gossip declares down
//! (failing open when every backend of a VIP is) and plans the data plane's maps, naming the
//! VIPs that stay; [`Vips::apply`] brings the maps in step and names the VIPs now programmed.
//! The publisher swaps a zone in after each step, so a name never resolves before connections
//! to its address are balanced (the race dcos-net fixed in DCOS_OSS-4939), and a VIP being
//! removed leaves DNS before its maps.
//!
//! Without a data plane (off, not root, no BPF) the table is still derived, for `/v1/vips`, but
//! no VIP name is published.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use beacon_catalog::Catalog;
use beacon_catalog::registration::{Registration, fragment};
use beacon_catalog::vip::{NamedAddresses, VipAddress, VipKey, VipProblem, VipTable, extract};
use beacon_dns::l4lb::{PublishedVip, published_vips};

use super::fence::Fence;
use crate::common::lock;
use crate::config::{DataPlaneMode, VipSettings, XdpMode};

/// Packet counters of a VIP or a backend, summed over CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    /// Packets (XDP) or connections and datagrams (socket LB) balanced.
    pub packets: u64,
    /// Bytes of those packets.
    pub bytes: u64,
    /// New flows (XDP) or sockets (socket LB) given a backend.
    pub new_flows: u64,
    /// Packets or connects that found no usable backend.
    pub misses: u64,
}

/// Counters of one VIP and of each of its backends by address.
pub type VipCounters = (Counters, BTreeMap<std::net::SocketAddr, Counters>);

/// What the VIP side last derived, for the API.
#[derive(Debug, Default)]
pub struct VipState {
    /// Every VIP the catalog declares, with its backends (before withdrawal).
    pub table: VipTable,
    /// Named VIPs' addresses.
    pub addresses: NamedAddresses,
    /// VIPs whose maps are in place.
    pub programmed: BTreeSet<VipKey>,
    /// Nodes (gossip names and their Mesos agent ids) whose backends are withdrawn.
    pub unreachable: BTreeSet<String>,
}

/// The VIP table, the data plane, and the nodes gossip declares down.
pub struct Vips {
    plane: Option<Mutex<beacon_vip_lb::DataPlane>>,
    down: Mutex<BTreeSet<String>>,
    fence: Mutex<Fence>,
    state: ArcSwap<VipState>,
}

impl std::fmt::Debug for Vips {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vips")
            .field("data_plane", &self.plane.is_some())
            .finish_non_exhaustive()
    }
}

impl Vips {
    /// Starts the data plane as `settings` say. `auto` turns it off, with one log line saying
    /// why, when it cannot run; `on` makes that an error.
    pub fn start(
        settings: &VipSettings,
        fence: Fence,
    ) -> Result<Self, beacon_vip_lb::DataPlaneError> {
        let plane = match settings.data_plane {
            DataPlaneMode::Off => None,
            mode => match beacon_vip_lb::DataPlane::start(&plane_config(settings)) {
                // The data plane logs where it attached.
                Ok(plane) => Some(Mutex::new(plane)),
                // Its start errors read "VIP data plane off: <why>; <what to do>".
                Err(error) if mode == DataPlaneMode::On => return Err(error),
                Err(error) => {
                    tracing::warn!("{error}; DNS publishes no VIP names");
                    None
                }
            },
        };
        Ok(Self::with_plane(plane, fence))
    }

    /// Without a data plane (and no fence but the catalog's own).
    pub fn off() -> Self {
        Self::with_plane(None, Fence::default())
    }

    fn with_plane(plane: Option<Mutex<beacon_vip_lb::DataPlane>>, fence: Fence) -> Self {
        Self {
            plane,
            down: Mutex::new(BTreeSet::new()),
            fence: Mutex::new(fence),
            state: ArcSwap::from_pointee(VipState::default()),
        }
    }

    /// Records a member's gossip address: no VIP may take it.
    pub fn member_address(&self, member: &str, ip: std::net::IpAddr) {
        lock(&self.fence).member(member, ip);
    }

    /// Why the VIPs `reg` declares may not be added by `node`, if they may not: a label that
    /// makes no VIP, a fenced address, or more VIPs than the node's quota.
    pub fn check_registration(&self, node: &str, reg: &Registration) -> Result<(), VipRefusal> {
        let regs = BTreeMap::from([(String::new(), reg.clone())]);
        let new = extract(&fragment(node, &regs));
        if let Some(warning) = new.warnings.first() {
            let fenced = matches!(
                warning.problem,
                VipProblem::Reserved(_) | VipProblem::InNamedPool(_)
            );
            let message = format!("{}: {}", warning.label.value, warning.problem);
            return Err(match fenced {
                true => VipRefusal::Fenced(message),
                false => VipRefusal::Label(message),
            });
        }
        let fence = lock(&self.fence);
        for key in new.vips.keys() {
            if let VipAddress::Ip(ip) = key.address
                && let Some(what) = fence.refuses(ip)
            {
                let message = format!("IP VIP {ip} is the address of {what}; use a dedicated one");
                return Err(VipRefusal::Fenced(message));
            }
        }
        let state = self.state();
        let held = (state.table.registered.iter())
            .filter(|(key, n)| *n == node && !new.vips.contains_key(*key))
            .count();
        let want = held + new.vips.len();
        if want > fence.quota() {
            let quota = fence.quota();
            return Err(VipRefusal::Quota(format!(
                "this node's registrations would declare {want} VIPs, over [vip] max_registered_vips = {quota}"
            )));
        }
        Ok(())
    }

    /// Whether the data plane runs.
    pub fn is_on(&self) -> bool {
        self.plane.is_some()
    }

    /// Step one: derives the VIPs of `catalog` and plans the maps. With a data plane the plan
    /// holds it locked until [`Vips::apply`], so no other change comes between the two steps.
    /// `owners` maps Mesos agent ids to the gossip node that polls them. Blocking.
    pub fn prepare(&self, catalog: &Catalog, owners: &BTreeMap<String, String>) -> VipPlan<'_> {
        let mut table = extract(catalog);
        let mut fence = lock(&self.fence);
        fence.masters_of(catalog);
        fence.apply(&mut table);
        drop(fence);
        let addresses = table.named_addresses();
        let unreachable = self.unreachable(owners);
        let programming = self.plane.as_ref().map(|plane| {
            let plane = lock(plane);
            let (kernel, programmed) = (beacon_vip_lb::Limits::KERNEL, plane.programmed());
            let desired = beacon_vip_lb::desired_in_order(
                &table,
                &addresses,
                &unreachable,
                kernel,
                &programmed,
            );
            let staying = programmed;
            let staying = staying.intersection(&desired.keys()).cloned().collect();
            let staying = published_vips(&only(&table, &staying), &addresses);
            Programming {
                plane,
                desired,
                staying,
            }
        });
        VipPlan {
            table,
            addresses,
            unreachable,
            programming,
        }
    }

    /// Step two: applies `plan` to the maps and returns the named VIPs DNS may now publish
    /// (none without a data plane). Blocking.
    pub fn apply(&self, plan: VipPlan<'_>) -> Vec<PublishedVip> {
        let programmed = match plan.programming {
            Some(Programming {
                mut plane, desired, ..
            }) => {
                if let Err(error) = plane.apply(&desired) {
                    tracing::warn!(%error, "could not program every VIP");
                }
                plane.programmed()
            }
            None => BTreeSet::new(),
        };
        let names = published_vips(&only(&plan.table, &programmed), &plan.addresses);
        self.state.store(Arc::new(VipState {
            table: plan.table,
            addresses: plan.addresses,
            programmed,
            unreachable: plan.unreachable,
        }));
        names
    }

    /// Records that gossip declared `node` down (or up again); whether that changed anything.
    pub fn set_down(&self, node: &str, down: bool) -> bool {
        let mut set = lock(&self.down);
        match down {
            true => set.insert(node.to_string()),
            false => set.remove(node),
        }
    }

    /// What was last derived.
    pub fn state(&self) -> Arc<VipState> {
        self.state.load_full()
    }

    /// Counters per VIP and backend; empty without a data plane. Blocking (reads the maps).
    pub fn stats(&self) -> BTreeMap<VipKey, VipCounters> {
        let Some(plane) = &self.plane else {
            return BTreeMap::new();
        };
        let mut out = BTreeMap::new();
        for stats in lock(plane).stats() {
            add_stats(&mut out, stats);
        }
        out
    }

    /// The data plane's global counters by name (XDP verdicts, flood-guarded flows, tc and
    /// socket translations, refused connects in the VIP ranges); empty while it is off.
    pub fn global_counters(&self) -> Vec<(&'static str, u64)> {
        match &self.plane {
            Some(plane) => lock(plane).global_counters(),
            None => Vec::new(),
        }
    }

    /// Repairs drift between the maps and the last programmed state. Blocking.
    pub fn reconcile(&self) {
        let Some(plane) = &self.plane else { return };
        match lock(plane).reconcile() {
            Ok(report) => tracing::debug!(?report, "VIP maps reconciled"),
            Err(error) => tracing::warn!(%error, "VIP reconcile failed"),
        }
    }

    fn unreachable(&self, owners: &BTreeMap<String, String>) -> BTreeSet<String> {
        let down = lock(&self.down).clone();
        let agents = owners
            .iter()
            .filter(|(_, node)| down.contains(*node))
            .map(|(agent, _)| agent.clone());
        agents.chain(down.iter().cloned()).collect()
    }
}

/// Why a registration's VIPs are refused (each with what to tell the client).
#[derive(Debug)]
pub enum VipRefusal {
    /// A label makes no VIP (its syntax, its port).
    Label(String),
    /// An address no VIP may have.
    Fenced(String),
    /// The node's registrations would declare too many VIPs.
    Quota(String),
}

/// What [`Vips::prepare`] derived, for [`Vips::apply`].
pub struct VipPlan<'a> {
    table: VipTable,
    addresses: NamedAddresses,
    unreachable: BTreeSet<String>,
    /// With a data plane: the plane, locked, what it should hold, and the names that stay.
    programming: Option<Programming<'a>>,
}

struct Programming<'a> {
    plane: MutexGuard<'a, beacon_vip_lb::DataPlane>,
    desired: beacon_vip_lb::Desired,
    staying: Vec<PublishedVip>,
}

impl VipPlan<'_> {
    /// The named VIPs that are programmed now and stay programmed: what DNS may name while
    /// the maps change. `None` without a data plane (DNS names no VIP then).
    pub fn staying(&self) -> Option<&[PublishedVip]> {
        self.programming.as_ref().map(|p| p.staying.as_slice())
    }
}

/// The VIPs of `table` that are in `keys`.
fn only(table: &VipTable, keys: &BTreeSet<VipKey>) -> VipTable {
    VipTable {
        vips: (table.vips.iter())
            .filter(|(k, _)| keys.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        warnings: Vec::new(),
        registered: Default::default(),
    }
}

/// Sums a kernel VIP's counters (a named VIP has one per address family) into `into`.
fn add_stats(into: &mut BTreeMap<VipKey, VipCounters>, stats: beacon_vip_lb::VipStats) {
    let (vip, backends) = into.entry(stats.key).or_default();
    vip.add(&stats.counters);
    for b in stats.backends {
        backends.entry(b.addr).or_default().add(&b.counters);
    }
}

impl Counters {
    fn add(&mut self, c: &beacon_vip_lb::Counters) {
        self.packets += c.packets;
        self.bytes += c.bytes;
        self.new_flows += c.new_flows;
        self.misses += c.misses;
    }
}

fn plane_config(settings: &VipSettings) -> beacon_vip_lb::DataPlaneConfig {
    let defaults = beacon_vip_lb::DataPlaneConfig::default();
    beacon_vip_lb::DataPlaneConfig {
        cgroup: match settings.cgroup.as_os_str().is_empty() {
            true => defaults.cgroup.clone(),
            false => settings.cgroup.clone(),
        },
        xdp_interfaces: settings.xdp_interfaces.clone(),
        xdp_mode: match settings.xdp_mode {
            XdpMode::Native => beacon_vip_lb::XdpModeSetting::Native,
            XdpMode::Generic => beacon_vip_lb::XdpModeSetting::Generic,
            XdpMode::Auto => beacon_vip_lb::XdpModeSetting::Auto,
        },
        reconcile_interval: settings.reconcile,
        bpffs_dir: (!settings.bpffs_dir.as_os_str().is_empty()).then(|| settings.bpffs_dir.clone()),
        flow_table_size: settings.flow_table_size,
        new_flow_rate_limit: settings.new_flow_rate_limit,
        ..defaults
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use beacon_catalog::registration::{Registration, fragment};

    use super::*;

    fn catalog() -> Catalog {
        let body = br#"{"name": "api", "framework": "shop", "ips": ["10.9.0.8"],
            "ports": [{"number": 8080, "protocol": "tcp", "labels": {"VIP_0": "/api:80"}}]}"#;
        let regs = BTreeMap::from([("api-1".to_string(), Registration::parse(body).unwrap())]);
        let mut all = fragment("n5", &regs);
        // A Mesos agent that n5 polls: its tasks' backends are n5's too.
        all.agents.push(beacon_catalog::Agent {
            id: "agent-5".into(),
            hostname: "10.0.0.5".into(),
            pid: None,
        });
        all
    }

    #[test]
    fn a_node_going_down_withdraws_its_backends_at_once_and_coming_back_restores_them() {
        let vips = Vips::off();
        let owners = BTreeMap::from([("agent-5".to_string(), "n5".to_string())]);
        let published = vips.apply(vips.prepare(&catalog(), &owners));
        assert!(published.is_empty(), "no data plane, no names");
        assert!(vips.state().unreachable.is_empty());
        assert_eq!(vips.state().table.vips.len(), 1);

        assert!(vips.set_down("n5", true));
        assert!(!vips.set_down("n5", true), "already down");
        vips.apply(vips.prepare(&catalog(), &owners));
        let state = vips.state();
        assert!(state.unreachable.contains("n5"));
        assert!(
            state.unreachable.contains("agent-5"),
            "{:?}",
            state.unreachable
        );

        assert!(vips.set_down("n5", false));
        vips.apply(vips.prepare(&catalog(), &owners));
        assert!(vips.state().unreachable.is_empty());
    }
}

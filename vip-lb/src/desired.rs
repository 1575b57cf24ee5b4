//! What the data plane should hold, computed from the catalog without touching BPF.
//!
//! [`desired`] turns the catalog's [`VipTable`] into the VIPs the kernel sees: one per
//! (protocol, address, port). A named VIP becomes its 11.0.0.0/8 address when it has IPv4
//! backends and its fd01:c::/64 address when it has IPv6 ones (`research/dcos-net.md` §1.4), each
//! with only the backends of its family; an IP VIP keeps the backends of its own family. Then, per
//! kernel VIP:
//!
//! - backends on unreachable nodes are withdrawn, failing open when that would leave none
//!   ([`withdraw_on_nodes`], dcos-net's rule, §2.3). Fail-open is decided per address family, so a
//!   name whose IPv6 backends all sit on unreachable nodes still answers on its IPv6 address;
//! - a backend listed twice (same address and port) counts once, with its highest weight;
//! - a Maglev table of [`abi::RING_SIZE`] slots is built from the weights ([`MaglevTable`]);
//!   weight-0 backends (draining) are kept, so that they keep their flows, but take no slot.
//!
//! The BPF maps are fixed-size: at most [`abi::MAX_VIPS`] kernel VIPs and `MAX_BACKENDS - 1`
//! backend ids (one per backend of each VIP). Catalog VIPs are taken in key order; one that does
//! not fit whole (all of its address families and backends) is skipped with a [`Skipped`] entry,
//! so the same catalog always programs the same VIPs.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use beacon_catalog::vip::{
    Backend, NamedAddresses, Protocol, VipAddress, VipKey, VipTable, withdraw_on_nodes,
};
use beacon_ebpf::abi;

use crate::maglev::{MaglevBackend, MaglevError, MaglevTable};

/// The kernel's identity of a VIP: what a `beacon_vips` key holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VipId {
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The VIP's address and port.
    pub addr: SocketAddr,
}

/// The data plane's desired content: every kernel VIP with its backends and ring.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Desired {
    vips: BTreeMap<VipId, DesiredVip>,
    skipped: Vec<Skipped>,
}

/// One kernel VIP to program.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredVip {
    /// The catalog VIP it comes from.
    pub key: VipKey,
    /// Where clients connect.
    pub id: VipId,
    /// Its backends, sorted by address and port (the Maglev canonical order), one per address.
    pub backends: Vec<DesiredBackend>,
    /// For each ring slot, an index into `backends`: [`abi::RING_SIZE`] entries, or none when no
    /// backend has a weight (the VIP then refuses new connections).
    pub ring: Vec<u32>,
}

/// One backend of a [`DesiredVip`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DesiredBackend {
    /// Where connections go.
    pub addr: SocketAddr,
    /// Relative share of new connections; 0 drains (keeps its flows, takes no new ones).
    pub weight: u32,
    /// The node it runs on (`Backend::node`).
    pub node: String,
}

/// A catalog VIP that is not programmed, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// The catalog VIP.
    pub key: VipKey,
    /// Why.
    pub reason: SkipReason,
}

/// Why a catalog VIP is not programmed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SkipReason {
    /// Occurs when a named VIP has no address in the named pools for a family it has backends of.
    #[error("the name has no {family} address in the named-VIP pool")]
    NoAddress {
        /// `IPv4` or `IPv6`.
        family: &'static str,
    },
    /// Occurs when another catalog VIP already holds the same protocol, address and port.
    #[error("{addr} is already the address of VIP {other:?}")]
    AddressTaken {
        /// The address both want.
        addr: SocketAddr,
        /// The VIP that has it.
        other: VipKey,
    },
    /// Occurs when an IP VIP has no backend of its own address family.
    #[error("no backend of the VIP's address family")]
    NoBackends,
    /// Occurs when the VIP table is full.
    #[error("more than {limit} VIP addresses and ports; the BPF map holds no more")]
    TooManyVips {
        /// The map's capacity.
        limit: u32,
    },
    /// Occurs when the backend table is full.
    #[error("more than {limit} backends over all VIPs; the BPF map holds no more")]
    TooManyBackends {
        /// The map's capacity.
        limit: u32,
    },
    /// Occurs when the Maglev table cannot be built (more weighted backends than ring slots).
    #[error("{0}")]
    Maglev(MaglevError),
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "VIP {} not programmed: {}",
            describe(&self.key),
            self.reason
        )
    }
}

/// Capacity of the data plane's maps: the kernel's, or smaller ones in tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// VIP slots (`beacon_vips` entries and ring rows).
    pub max_vips: u32,
    /// Usable backend ids, `1..=max_backends` (id 0 means "no backend").
    pub max_backends: u32,
    /// Ring slots per VIP (prime).
    pub ring_size: u32,
    /// Slots of XDP's VIP index `beacon_vip_slots` (a power of two).
    pub vip_slots: u32,
}

impl Limits {
    /// The sizes compiled into the BPF object ([`abi`]).
    pub const KERNEL: Self = Self {
        max_vips: abi::MAX_VIPS,
        max_backends: abi::MAX_BACKENDS - 1,
        ring_size: abi::RING_SIZE,
        vip_slots: abi::VIP_SLOTS,
    };
}

impl Desired {
    /// The kernel VIPs, by identity.
    pub fn vips(&self) -> &BTreeMap<VipId, DesiredVip> {
        &self.vips
    }

    /// Catalog VIPs left out, in key order.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// The catalog VIPs this state programs (each with all of its addresses).
    pub fn keys(&self) -> BTreeSet<VipKey> {
        self.vips.values().map(|v| v.key.clone()).collect()
    }
}

/// The desired data plane for `table`: named VIPs at their `addrs`, backends on
/// `unreachable_nodes` withdrawn (fail open), Maglev rings of [`abi::RING_SIZE`], within the
/// kernel's map sizes. See the module documentation.
pub fn desired(
    table: &VipTable,
    addrs: &NamedAddresses,
    unreachable_nodes: &BTreeSet<String>,
) -> Desired {
    desired_with_limits(table, addrs, unreachable_nodes, Limits::KERNEL)
}

/// [`desired`] with other map sizes (tests use small ones).
pub fn desired_with_limits(
    table: &VipTable,
    addrs: &NamedAddresses,
    unreachable_nodes: &BTreeSet<String>,
    limits: Limits,
) -> Desired {
    desired_in_order(table, addrs, unreachable_nodes, limits, &BTreeSet::new())
}

/// [`desired`] when the kernel's tables cannot hold every VIP: they fill with the VIPs in
/// `keep` first (those programmed now: a newcomer never evicts one), then Mesos VIPs, then the
/// VIPs registrations declare (`table.registered`), each group in key order.
pub fn desired_in_order(
    table: &VipTable,
    addrs: &NamedAddresses,
    unreachable_nodes: &BTreeSet<String>,
    limits: Limits,
    keep: &BTreeSet<VipKey>,
) -> Desired {
    let rank = |key: &VipKey| match (keep.contains(key), table.registered.contains_key(key)) {
        (true, _) => 0,
        (false, false) => 1,
        (false, true) => 2,
    };
    let mut order: Vec<(&VipKey, &Vec<Backend>)> = table.vips.iter().collect();
    order.sort_by_key(|(key, _)| rank(key));
    let mut out = Desired::default();
    let (mut vips_left, mut backends_left) = (limits.max_vips, limits.max_backends);
    for (key, backends) in order {
        let parts = match parts(key, backends, addrs, unreachable_nodes, limits.ring_size) {
            Ok(parts) => parts,
            Err(reason) => {
                out.skip(key, reason);
                continue;
            }
        };
        if let Some((addr, other)) = parts
            .iter()
            .find_map(|p| out.vips.get(&p.id).map(|o| (p.id.addr, o.key.clone())))
        {
            out.skip(key, SkipReason::AddressTaken { addr, other });
            continue;
        }
        let need_vips = parts.len() as u32;
        let need_backends: usize = parts.iter().map(|p| p.backends.len()).sum();
        if need_vips > vips_left {
            out.skip(
                key,
                SkipReason::TooManyVips {
                    limit: limits.max_vips,
                },
            );
            continue;
        }
        if need_backends > backends_left as usize {
            out.skip(
                key,
                SkipReason::TooManyBackends {
                    limit: limits.max_backends,
                },
            );
            continue;
        }
        vips_left -= need_vips;
        // need_backends <= backends_left, a u32.
        backends_left -= need_backends as u32;
        for part in parts {
            out.vips.insert(part.id, part);
        }
    }
    out
}

impl Desired {
    fn skip(&mut self, key: &VipKey, reason: SkipReason) {
        self.skipped.push(Skipped {
            key: key.clone(),
            reason,
        });
    }
}

/// The kernel VIPs of one catalog VIP: one per address family it has backends of.
fn parts(
    key: &VipKey,
    backends: &[Backend],
    addrs: &NamedAddresses,
    unreachable: &BTreeSet<String>,
    ring_size: u32,
) -> Result<Vec<DesiredVip>, SkipReason> {
    let mut out = Vec::new();
    for v4 in [true, false] {
        let family: Vec<Backend> = backends
            .iter()
            .filter(|b| b.ip.is_ipv4() == v4)
            .cloned()
            .collect();
        if family.is_empty() {
            continue;
        }
        let ip: IpAddr = match &key.address {
            VipAddress::Ip(ip) if ip.is_ipv4() == v4 => *ip,
            VipAddress::Ip(_) => continue,
            VipAddress::Named(name) => {
                let (a4, a6) = addrs.get(name);
                let ip = if v4 {
                    a4.map(IpAddr::V4)
                } else {
                    a6.map(IpAddr::V6)
                };
                ip.ok_or(SkipReason::NoAddress {
                    family: if v4 { "IPv4" } else { "IPv6" },
                })?
            }
        };
        let id = VipId {
            protocol: key.protocol,
            addr: SocketAddr::new(ip, key.port),
        };
        let kept = canonical(withdraw_on_nodes(&family, unreachable));
        let table = MaglevTable::build(
            &kept
                .iter()
                .map(|b| MaglevBackend {
                    addr: b.addr,
                    weight: b.weight,
                })
                .collect::<Vec<_>>(),
            ring_size,
        )
        .map_err(SkipReason::Maglev)?;
        debug_assert!(
            table
                .backends()
                .iter()
                .map(|b| b.addr)
                .eq(kept.iter().map(|b| b.addr)),
            "canonical() orders backends as MaglevTable does"
        );
        out.push(DesiredVip {
            key: key.clone(),
            id,
            backends: kept,
            ring: table.slots().to_vec(),
        });
    }
    if out.is_empty() {
        return Err(SkipReason::NoBackends);
    }
    Ok(out)
}

/// Sorted by address and port, one entry per address with its highest weight: the order
/// [`MaglevTable::backends`] uses, so ring indices point into this list.
fn canonical(backends: Vec<Backend>) -> Vec<DesiredBackend> {
    let mut list: Vec<DesiredBackend> = backends
        .into_iter()
        .map(|b| DesiredBackend {
            addr: SocketAddr::new(b.ip, b.port),
            weight: b.weight,
            node: b.node,
        })
        .collect();
    list.sort_by(|a, b| {
        a.addr
            .cmp(&b.addr)
            .then(b.weight.cmp(&a.weight))
            .then(a.node.cmp(&b.node))
    });
    list.dedup_by_key(|b| b.addr);
    list
}

/// A catalog VIP as users know it: `tcp://web.marathon:80` or `udp://10.1.2.3:53`.
pub(crate) fn describe(key: &VipKey) -> String {
    let proto = match key.protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    };
    match &key.address {
        VipAddress::Named(name) => format!("{proto}://{}:{}", name.canonical(), key.port),
        VipAddress::Ip(ip) => format!("{proto}://{}", SocketAddr::new(*ip, key.port)),
    }
}

#[cfg(test)]
mod tests;

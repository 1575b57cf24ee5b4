//! The l4lb zones: DNS names of named VIPs, `<name>.<framework>.l4lb.thisdcos.directory`, with A
//! (11.0.0.0/8) and AAAA (fd01:c::/64) records (`research/dcos-net.md` §1.2).
//!
//! The same names answer under three aliases, as dcos-net's `dcos_dns_router` rewrote them:
//! `*.l4lb.thisdcos.global`, `*.dclb.thisdcos.directory` and `*.dclb.thisdcos.global`. Answers are
//! owned by the name as asked. Each of the four is a zone of its own here, with its own SOA and
//! NS at its apex.
//!
//! Beacon is authoritative for all four whatever it knows: a name absent from the list the agent
//! passed is NXDOMAIN, with the SOA in AUTHORITY, never forwarded. The list holds only VIPs the
//! data plane has programmed (a name must not resolve before its address routes, the lesson of
//! DCOS_OSS-4939), so with the data plane off every name is NXDOMAIN: that is the truth (no
//! connection to such an address would reach a backend), it costs the client no upstream
//! timeout, and it leaks no internal name to the upstream resolvers (`thisdcos.directory` is a
//! public domain, so an upstream could even answer with an address outside the cluster).
//! The names in between (`<framework>.l4lb.thisdcos.directory`, the apex) exist without records:
//! NODATA, so an RFC 8020 resolver does not deny the VIPs below them.
//!
//! The agent feeds it in this order: `beacon_catalog::vip::extract` the catalog's VIPs;
//! allocate addresses over **all** of them (`VipTable::named_addresses`, so an address never
//! depends on what is programmed yet); program the data plane; then build
//! `zone.with_vips(&published_vips(&programmed, &addresses))`, where `programmed` is the table
//! cut down to the keys the data plane accepted, and swap the new zone in.
//!
//! TTLs are dcos-net's: 5 s on records, and a negative-caching TTL of 1 s (the SOA minimum), so a
//! VIP that appears resolves within a second at clients that asked for it too early.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use beacon_catalog::vip::{L4LB_ZONE, NamedAddresses, VipAddress, VipName, VipTable};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, NS, SOA};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

use crate::answer::Answer;

/// The zones named VIPs answer under: the canonical one first, then its aliases.
pub const L4LB_ZONES: [&str; 4] = [
    "l4lb.thisdcos.directory.",
    "l4lb.thisdcos.global.",
    "dclb.thisdcos.directory.",
    "dclb.thisdcos.global.",
];

/// TTL of VIP records (dcos-net's `DCOS_DNS_TTL`).
pub const L4LB_TTL: u32 = 5;

/// SOA minimum of the l4lb zones, hence their negative-caching TTL (RFC 2308 §5).
pub const L4LB_NEGATIVE_TTL: u32 = 1;

/// A named VIP to publish: the data plane serves it at these addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedVip {
    /// The VIP's name.
    pub name: VipName,
    /// Its IPv4 address, when it has IPv4 backends programmed (an A record).
    pub v4: Option<Ipv4Addr>,
    /// Its IPv6 address, when it has IPv6 backends programmed (an AAAA record).
    pub v6: Option<Ipv6Addr>,
}

/// The named VIPs of `table` to publish, with their `addresses`: an A record when some backend of
/// the name (any protocol or port) is IPv4, an AAAA record when some backend is IPv6, as dcos-net
/// split them (`research/dcos-net.md` §1.4). Pass a table holding only the VIPs the data plane
/// has programmed. Sorted by name.
pub fn published_vips(table: &VipTable, addresses: &NamedAddresses) -> Vec<PublishedVip> {
    let mut out: BTreeMap<&VipName, PublishedVip> = BTreeMap::new();
    for (key, backends) in &table.vips {
        let VipAddress::Named(name) = &key.address else {
            continue;
        };
        let (v4, v6) = addresses.get(name);
        let entry = out.entry(name).or_insert_with(|| PublishedVip {
            name: name.clone(),
            v4: None,
            v6: None,
        });
        if backends.iter().any(|b| b.ip.is_ipv4()) {
            entry.v4 = entry.v4.or(v4);
        }
        if backends.iter().any(|b| b.ip.is_ipv6()) {
            entry.v6 = entry.v6.or(v6);
        }
    }
    out.into_values().collect()
}

/// The SOA fields the l4lb zones share with the Mesos domain.
#[derive(Clone, Debug)]
pub(crate) struct L4lbSoa {
    pub(crate) mname: Name,
    pub(crate) rname: Name,
    pub(crate) serial: u32,
    pub(crate) refresh: i32,
    pub(crate) retry: i32,
    pub(crate) expire: i32,
}

/// The apexes, parsed once.
static APEXES: LazyLock<Vec<LowerName>> = LazyLock::new(|| {
    L4LB_ZONES
        .iter()
        .map(|z| LowerName::new(&Name::from_ascii(z).expect("the l4lb zone names are valid")))
        .collect()
});

/// Whether `name` is at or under one of the l4lb zones.
pub fn covers(name: &LowerName) -> bool {
    apex_of(name).is_some()
}

fn apex_of(name: &LowerName) -> Option<&'static LowerName> {
    APEXES.iter().find(|apex| apex.zone_of(name))
}

/// The records of one name under the canonical zone.
#[derive(Clone, Copy, Debug, Default)]
struct Node {
    a: Option<Ipv4Addr>,
    aaaa: Option<Ipv6Addr>,
}

/// The l4lb zones' answers, built once per published VIP list.
#[derive(Debug)]
pub(crate) struct L4lb {
    /// Names under the canonical apex, with empty nodes for the apex and the names between it
    /// and each VIP.
    nodes: HashMap<LowerName, Node>,
    soa: SOA,
    ns_target: Name,
}

impl L4lb {
    /// The zones for `vips`. A VIP whose name does not parse (impossible for a [`VipName`]) or
    /// that has no address is left out.
    pub(crate) fn new(vips: &[PublishedVip], soa: L4lbSoa) -> Self {
        let canonical = &APEXES[0];
        let mut nodes: HashMap<LowerName, Node> = HashMap::new();
        nodes.insert(canonical.clone(), Node::default());
        for vip in vips.iter().filter(|v| v.v4.is_some() || v.v6.is_some()) {
            let Ok(name) = Name::from_ascii(vip.name.fqdn_in(L4LB_ZONE)) else {
                continue;
            };
            let name = LowerName::new(&name);
            let mut parent = name.base_name();
            while parent != *canonical && canonical.zone_of(&parent) {
                nodes.entry(parent.clone()).or_default();
                parent = parent.base_name();
            }
            let node = nodes.entry(name).or_default();
            node.a = node.a.or(vip.v4);
            node.aaaa = node.aaaa.or(vip.v6);
        }
        Self {
            nodes,
            soa: SOA::new(
                soa.mname.clone(),
                soa.rname,
                soa.serial,
                soa.refresh,
                soa.retry,
                soa.expire,
                L4LB_NEGATIVE_TTL,
            ),
            ns_target: soa.mname,
        }
    }

    /// Answers `qtype` for `qname`, which [`covers`] must accept (else: REFUSED).
    pub(crate) fn answer<'z>(&self, qname: &Name, qtype: RecordType) -> Answer<'z> {
        let mut out = Answer::default();
        let lower = LowerName::new(qname);
        let Some(apex) = apex_of(&lower) else {
            out.rcode = ResponseCode::Refused;
            return out;
        };
        let is_apex = lower == *apex;
        let node = canonical(&lower, apex).and_then(|key| self.nodes.get(&key).copied());
        let record = |rdata| Cow::Owned(Record::from_rdata(qname.clone(), L4LB_TTL, rdata));
        if let Some(node) = node {
            if matches!(qtype, RecordType::A | RecordType::ANY) {
                out.answers.extend(node.a.map(|ip| record(RData::A(A(ip)))));
            }
            if matches!(qtype, RecordType::AAAA | RecordType::ANY) {
                out.answers
                    .extend(node.aaaa.map(|ip| record(RData::AAAA(AAAA(ip)))));
            }
        }
        if is_apex && matches!(qtype, RecordType::SOA | RecordType::ANY) {
            out.answers.push(Cow::Owned(self.soa_record(apex)));
        }
        if is_apex && matches!(qtype, RecordType::NS | RecordType::ANY) {
            out.answers.push(Cow::Owned(self.ns_record(apex)));
        }
        if out.answers.is_empty() {
            // RFC 2308 §2.1 and §2.2: NXDOMAIN or NODATA, with the zone's SOA for caching.
            if node.is_none() {
                out.rcode = ResponseCode::NXDomain;
            }
            out.authority.push(Cow::Owned(self.soa_record(apex)));
        }
        out
    }

    fn soa_record(&self, apex: &Name) -> Record {
        Record::from_rdata(apex.clone(), L4LB_TTL, RData::SOA(self.soa.clone()))
    }

    fn ns_record(&self, apex: &Name) -> Record {
        Record::from_rdata(
            apex.clone(),
            L4LB_TTL,
            RData::NS(NS(self.ns_target.clone())),
        )
    }
}

/// `name`, under `apex`, moved to the canonical apex; `None` when the result is not a valid name
/// (too long: then it cannot be a VIP either).
fn canonical(name: &LowerName, apex: &LowerName) -> Option<LowerName> {
    let canonical = &APEXES[0];
    if apex == canonical {
        return Some(name.clone());
    }
    let relative = usize::from(name.num_labels() - apex.num_labels());
    let labels = Name::from_labels(name.iter().take(relative)).ok()?;
    let moved = labels.append_name(canonical).ok()?;
    Some(LowerName::new(&moved))
}

#[cfg(test)]
mod tests;

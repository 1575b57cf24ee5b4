//! The authoritative zone: Mesos-DNS answers for names under the domain
//! (`research/mesos-dns.md` §4.2), decided without any I/O.
//!
//! A [`Zone`] is built once per catalog refresh from a [`RecordSet`] and never changes; the server
//! swaps a new one in whole. Records are made up front so a query only looks a name up, shuffles
//! and clones what must carry the question's exact spelling.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, NS, PTR, SOA, SRV};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use rand::Rng;
use rand::seq::SliceRandom;

use crate::records::RecordSet;

/// How the zone answers: the Mesos-DNS settings it reads plus Beacon's fixes.
#[derive(Clone, Debug)]
pub struct ZoneConfig {
    /// The domain, without trailing dot (`mesos`).
    pub domain: String,
    /// TTL of every record, and the SOA minimum (Mesos-DNS ignores `SOAMinttl`).
    pub ttl: u32,
    /// SRV weight (`SRVRecordDefaultWeight`); priority is always 0.
    pub srv_weight: u16,
    /// SOA MNAME and NS target, fully qualified.
    pub soa_mname: String,
    /// SOA RNAME, fully qualified.
    pub soa_rname: String,
    /// SOA refresh.
    pub soa_refresh: u32,
    /// SOA retry.
    pub soa_retry: u32,
    /// SOA expire.
    pub soa_expire: u32,
    /// SOA serial: the time of the refresh that built the zone, as Mesos-DNS does.
    pub serial: u32,
    /// Answer NOERROR/NODATA rather than NXDOMAIN for the apex and empty non-terminals. Mesos-DNS
    /// says NXDOMAIN, which lets an RFC 8020 resolver deny every name below.
    pub apex_nodata: bool,
    /// Answer PTR queries for task and agent addresses.
    pub ptr_records: bool,
}

/// One answer, before encoding: rcode and the three sections.
#[derive(Debug, Default)]
pub struct Answer<'z> {
    /// Response code.
    pub rcode: ResponseCode,
    /// ANSWER section.
    pub answers: Vec<Cow<'z, Record>>,
    /// AUTHORITY section.
    pub authority: Vec<Cow<'z, Record>>,
    /// ADDITIONAL section (without OPT).
    pub additionals: Vec<Cow<'z, Record>>,
}

/// The records of one owner name.
#[derive(Debug, Default)]
struct Node {
    a: Vec<Record>,
    aaaa: Vec<Record>,
    /// SRV records with the stored owner; answers re-own them to the question's spelling.
    srv: Vec<Record>,
    ptr: Vec<Record>,
    /// Distinct SRV targets, for the additional section.
    targets: Vec<LowerName>,
}

impl Node {
    /// Whether Mesos-DNS considers the name to exist: it has an A, AAAA or SRV value.
    fn has_data(&self) -> bool {
        !(self.a.is_empty() && self.aaaa.is_empty() && self.srv.is_empty())
    }
}

/// An immutable, query-ready zone.
#[derive(Debug)]
pub struct Zone {
    config: ZoneConfig,
    origin: LowerName,
    nodes: HashMap<LowerName, Node>,
    soa: SOA,
    ns_target: Name,
    /// Names generated that cannot be served: not valid DNS names (a label over 63 octets) or
    /// spelled with upper case, which Mesos-DNS stores but can never match.
    skipped: usize,
}

impl Zone {
    /// Indexes `records` for serving.
    pub fn new(records: &RecordSet, config: ZoneConfig) -> Result<Self, ZoneError> {
        let origin = parse_name(&format!("{}.", config.domain))?;
        let mname = parse_name(&config.soa_mname)?;
        let rname = parse_name(&config.soa_rname)?;
        let ttl = config.ttl;
        let soa = SOA::new(
            mname.clone(),
            rname,
            config.serial,
            clamp_i32(config.soa_refresh),
            clamp_i32(config.soa_retry),
            clamp_i32(config.soa_expire),
            ttl,
        );
        let mut zone = Self {
            origin: LowerName::new(&origin),
            nodes: HashMap::new(),
            soa,
            ns_target: mname,
            skipped: 0,
            config,
        };
        for (name, ips) in &records.a {
            zone.add(name, |n, node| {
                node.a.extend(
                    ips.iter()
                        .map(|ip| Record::from_rdata(n.clone(), ttl, RData::A(A(*ip)))),
                )
            });
        }
        for (name, ips) in &records.aaaa {
            zone.add(name, |n, node| {
                node.aaaa.extend(
                    ips.iter()
                        .map(|ip| Record::from_rdata(n.clone(), ttl, RData::AAAA(AAAA(*ip)))),
                )
            });
        }
        let weight = zone.config.srv_weight;
        for (name, srvs) in &records.srv {
            zone.add(name, |n, node| {
                for srv in srvs {
                    // A target that is not a valid name cannot be answered; Mesos-DNS would send
                    // it and fail to pack the message.
                    let Ok(target) = Name::from_ascii(&srv.target) else {
                        continue;
                    };
                    let rdata = SRV::new(0, weight, srv.port, target.clone());
                    node.srv
                        .push(Record::from_rdata(n.clone(), ttl, RData::SRV(rdata)));
                    let target = LowerName::new(&target);
                    if !node.targets.contains(&target) {
                        node.targets.push(target);
                    }
                }
            });
        }
        if zone.config.ptr_records {
            zone.add_ptrs(records);
        }
        if zone.config.apex_nodata {
            zone.add_empty_non_terminals();
        }
        Ok(zone)
    }

    /// Number of generated names that could not be served (see [`Zone`]).
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// The zone's origin, such as `mesos.`.
    pub fn origin(&self) -> &LowerName {
        &self.origin
    }

    /// Whether `name` is at or under the origin, or is a reverse name this zone answers.
    pub fn contains(&self, name: &LowerName) -> bool {
        self.origin.zone_of(name)
            || (self.config.ptr_records && self.nodes.get(name).is_some_and(|n| !n.ptr.is_empty()))
    }

    /// Answers `qtype` for `qname`, spelled as the client sent it.
    pub fn answer<'z>(&'z self, qname: &Name, qtype: RecordType, rng: &mut impl Rng) -> Answer<'z> {
        let key = normalise(qname);
        let node = self.nodes.get(&key);
        let mut out = Answer::default();
        let is_apex = key == self.origin;
        match qtype {
            RecordType::A => push_shuffled(&mut out.answers, node.map(|n| &n.a[..]), rng),
            RecordType::AAAA => push_shuffled(&mut out.answers, node.map(|n| &n.aaaa[..]), rng),
            RecordType::SRV => self.srv_answer(&mut out, node, qname, rng),
            RecordType::PTR => push_shuffled(&mut out.answers, node.map(|n| &n.ptr[..]), rng),
            RecordType::SOA if is_apex => {
                out.answers.push(Cow::Owned(self.soa_record(qname)));
                out.authority.push(Cow::Owned(self.ns_record(qname)));
            }
            RecordType::NS if is_apex => out.answers.push(Cow::Owned(self.ns_record(qname))),
            RecordType::SOA => out.authority.push(Cow::Owned(self.soa_record(qname))),
            RecordType::NS => out.authority.push(Cow::Owned(self.ns_record(qname))),
            RecordType::ANY => {
                self.srv_answer(&mut out, node, qname, rng);
                push_shuffled(&mut out.answers, node.map(|n| &n.a[..]), rng);
                push_shuffled(&mut out.answers, node.map(|n| &n.aaaa[..]), rng);
                out.answers.shuffle(rng);
                out.authority.push(Cow::Owned(self.ns_record(qname)));
                out.authority.push(Cow::Owned(self.soa_record(qname)));
            }
            _ => {}
        }
        if out.answers.is_empty() {
            self.empty(&mut out, node, qname, qtype, is_apex);
        }
        out
    }

    /// Mesos-DNS's `handleEmpty`: NOERROR for SOA, NS and SRV; otherwise NXDOMAIN unless the name
    /// has data (NODATA), with the SOA appended to AUTHORITY.
    fn empty(
        &self,
        out: &mut Answer<'_>,
        node: Option<&Node>,
        qname: &Name,
        qtype: RecordType,
        is_apex: bool,
    ) {
        if matches!(qtype, RecordType::SOA | RecordType::NS | RecordType::SRV) {
            return;
        }
        let exists = match node {
            Some(n) => n.has_data() || self.config.apex_nodata || !n.ptr.is_empty(),
            None => is_apex && self.config.apex_nodata,
        };
        if !exists {
            out.rcode = ResponseCode::NXDomain;
        }
        out.authority.push(Cow::Owned(self.soa_record(qname)));
    }

    fn srv_answer<'z>(
        &'z self,
        out: &mut Answer<'z>,
        node: Option<&'z Node>,
        qname: &Name,
        rng: &mut impl Rng,
    ) {
        let Some(node) = node else { return };
        let start = out.answers.len();
        out.answers.extend(node.srv.iter().map(|r| {
            let mut r = r.clone();
            r.name = qname.clone();
            Cow::Owned(r)
        }));
        out.answers[start..].shuffle(rng);
        // One A and one AAAA per distinct target, chosen at random (Mesos-DNS took the "first"
        // value of a Go map, which is random too).
        for target in &node.targets {
            if let Some(t) = self.nodes.get(target) {
                for set in [&t.a, &t.aaaa] {
                    if !set.is_empty() {
                        out.additionals
                            .push(Cow::Borrowed(&set[rng.random_range(0..set.len())]));
                    }
                }
            }
        }
    }

    fn soa_record(&self, owner: &Name) -> Record {
        Record::from_rdata(owner.clone(), self.config.ttl, RData::SOA(self.soa.clone()))
    }

    fn ns_record(&self, owner: &Name) -> Record {
        Record::from_rdata(
            owner.clone(),
            self.config.ttl,
            RData::NS(NS(self.ns_target.clone())),
        )
    }

    fn add(&mut self, name: &str, fill: impl FnOnce(&Name, &mut Node)) {
        // Mesos-DNS lower-cases every query, so upper-case names (the raw DiscoveryInfo pass) are
        // unreachable there; they stay unreachable here.
        let parsed = match name.bytes().any(|b| b.is_ascii_uppercase()) {
            true => None,
            false => Name::from_ascii(name).ok(),
        };
        let Some(parsed) = parsed else {
            self.skipped += 1;
            return;
        };
        let node = self.nodes.entry(LowerName::new(&parsed)).or_default();
        fill(&parsed, node);
    }

    /// PTR records for every A and AAAA value under the domain, pointing back at the names that
    /// hold it. Only names that are single addresses' owners are useful, but Mesos-DNS gives no
    /// "primary" name, so every owner is listed (a resolver picks one).
    fn add_ptrs(&mut self, records: &RecordSet) {
        let ttl = self.config.ttl;
        let v4 = records
            .a
            .iter()
            .flat_map(|(n, ips)| ips.iter().map(move |ip| (n, IpAddr::V4(*ip))));
        let v6 = records
            .aaaa
            .iter()
            .flat_map(|(n, ips)| ips.iter().map(move |ip| (n, IpAddr::V6(*ip))));
        let pairs: Vec<(String, IpAddr)> = v4.chain(v6).map(|(n, ip)| (n.clone(), ip)).collect();
        for (name, ip) in pairs {
            let Ok(target) = Name::from_ascii(&name) else {
                continue;
            };
            if name.bytes().any(|b| b.is_ascii_uppercase()) {
                continue;
            }
            let reverse = LowerName::new(&Name::from(ip));
            let node = self.nodes.entry(reverse.clone()).or_default();
            let record = Record::from_rdata(reverse.into(), ttl, RData::PTR(PTR(target)));
            if !node.ptr.contains(&record) {
                node.ptr.push(record);
            }
        }
    }

    /// Adds an empty node for the apex and every empty non-terminal under it, so that they
    /// answer NODATA.
    fn add_empty_non_terminals(&mut self) {
        let mut missing = Vec::new();
        for name in self.nodes.keys() {
            let mut parent = name.base_name();
            while self.origin.zone_of(&parent) && !self.nodes.contains_key(&parent) {
                missing.push(parent.clone());
                if parent == self.origin {
                    break;
                }
                parent = parent.base_name();
            }
        }
        missing.push(self.origin.clone());
        for name in missing {
            self.nodes.entry(name).or_default();
        }
    }
}

/// Why a zone could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ZoneError {
    /// Occurs when the domain or an SOA name is not a valid DNS name.
    #[error("invalid DNS name {name:?}: {reason}")]
    BadName {
        /// The name as configured.
        name: String,
        /// Why it does not parse.
        reason: String,
    },
}

fn parse_name(name: &str) -> Result<Name, ZoneError> {
    Name::from_ascii(name).map_err(|e| ZoneError::BadName {
        name: name.to_string(),
        reason: e.to_string(),
    })
}

/// Mesos-DNS's lookup key: the question lower-cased with every `.*` removed ("cleanWild").
fn normalise(qname: &Name) -> LowerName {
    let lower = LowerName::new(qname);
    if !qname.iter().any(|label| label.contains(&b'*')) {
        return lower;
    }
    let text = lower.to_string().replace(".*", "");
    Name::from_ascii(&text)
        .map(|n| LowerName::new(&n))
        .unwrap_or(lower)
}

fn push_shuffled<'z>(
    out: &mut Vec<Cow<'z, Record>>,
    records: Option<&'z [Record]>,
    rng: &mut impl Rng,
) {
    let Some(records) = records else { return };
    let start = out.len();
    out.extend(records.iter().map(Cow::Borrowed));
    out[start..].shuffle(rng);
}

fn clamp_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests;

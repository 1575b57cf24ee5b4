//! The authoritative zone: Mesos-DNS answers for names under the domain
//! (`research/mesos-dns.md` §4.2), decided without any I/O.
//!
//! A [`Zone`] is built once per catalog refresh from a [`RecordSet`] and never changes; the server
//! swaps a new one in whole. Records are made up front so a query only looks a name up, shuffles
//! and clones what must carry the question's exact spelling.
//!
//! A zone has two parts: the Mesos part, built whole, and the registrations overlay
//! (`zone/overlay.rs`), which a registration change updates a few shards at a time
//! ([`Zone::with_registered`]) while the Mesos part is shared, so that a write costs the same
//! with thousands of registrations as with one.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, NS, PTR, SOA, SRV};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use rand::Rng;
use rand::seq::SliceRandom;

pub use crate::answer::Answer;
use crate::l4lb::{self, L4lb, L4lbSoa, PublishedVip};
use crate::records::RecordSet;
use node::{Found, Node};
use overlay::{Entry, Overlay};

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

impl ZoneConfig {
    /// Mesos-DNS's defaults (`records/config.go` `NewConfig`, `research/mesos-dns.md` §5):
    /// domain `mesos`, TTL 60, SRV weight 1, SOA `ns1.mesos.` / `root.ns1.mesos.` with refresh
    /// 60, retry 600 and expire 86400, serial 0; and none of Beacon's fixes (NXDOMAIN at the
    /// apex, no PTR), so a zone built from it answers as Mesos-DNS does.
    pub fn mesos_dns() -> Self {
        Self {
            domain: "mesos".to_owned(),
            ttl: 60,
            srv_weight: 1,
            soa_mname: "ns1.mesos.".to_owned(),
            soa_rname: "root.ns1.mesos.".to_owned(),
            soa_refresh: 60,
            soa_retry: 600,
            soa_expire: 86400,
            serial: 0,
            apex_nodata: false,
            ptr_records: false,
        }
    }
}

/// An immutable, query-ready zone: the Mesos domain, its reverse names, and the l4lb zones of
/// named VIPs ([`l4lb`]).
///
/// The Mesos part is shared between zones that differ only in their VIPs
/// ([`with_vips`](Self::with_vips)), so publishing a new VIP list does not rebuild it.
#[derive(Debug)]
pub struct Zone {
    config: ZoneConfig,
    origin: LowerName,
    nodes: Arc<HashMap<LowerName, Node>>,
    /// SRV and PTR targets, each stored once.
    targets: Arc<Vec<LowerName>>,
    /// Names registrations add, answered before `nodes` ([`with_registered`](Self::with_registered)).
    overlay: Overlay,
    l4lb: L4lb,
    soa: SOA,
    ns_target: Name,
    /// Names generated that cannot be served: not valid DNS names (a label over 63 octets) or
    /// spelled with upper case, which Mesos-DNS stores but can never match.
    skipped: usize,
    /// Unique to this zone: what caches of its answers are keyed by. (The address of a zone
    /// is not: a new zone may be allocated where the one it replaced was.)
    generation: u64,
}

/// The next [`Zone::generation`]; 0 is never given, so it can stand for "no zone".
fn next_generation() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Zone {
    /// Indexes `records` for serving, with no named VIP published (every l4lb name is NXDOMAIN
    /// until [`with_vips`](Self::with_vips)).
    pub fn new(records: &RecordSet, config: ZoneConfig) -> Result<Self, ZoneError> {
        let origin = parse_name(&format!("{}.", config.domain))?;
        let mname = parse_name(&config.soa_mname)?;
        let rname = parse_name(&config.soa_rname)?;
        let soa = SOA::new(
            mname.clone(),
            rname,
            config.serial,
            clamp_i32(config.soa_refresh),
            clamp_i32(config.soa_retry),
            clamp_i32(config.soa_expire),
            config.ttl,
        );
        let l4lb = L4lb::new(&[], l4lb_soa(&config, &soa.mname, &soa.rname));
        let mut zone = Self {
            origin: LowerName::new(&origin),
            nodes: Arc::new(HashMap::with_capacity(records.a.len() + records.srv.len())),
            targets: Arc::new(Vec::new()),
            overlay: Overlay::default(),
            l4lb,
            soa,
            ns_target: mname,
            skipped: 0,
            generation: next_generation(),
            config,
        };
        let mut interned: HashMap<&str, u32> = HashMap::new();
        for (name, ips) in &records.a {
            zone.add(name, |node| node.a.extend(ips.iter().copied()));
        }
        for (name, ips) in &records.aaaa {
            zone.add(name, |node| node.aaaa.extend(ips.iter().copied()));
        }
        for (name, srvs) in &records.srv {
            let mut values = Vec::with_capacity(srvs.len());
            for srv in srvs {
                // A target that is not a valid name cannot be answered; Mesos-DNS would send it
                // and fail to pack the message.
                if let Some(t) = zone.intern(&mut interned, &srv.target) {
                    values.push((srv.port, t));
                }
            }
            zone.add(name, |node| node.srv.extend(values));
        }
        if zone.config.ptr_records {
            zone.add_ptrs(records, &mut interned);
        }
        if zone.config.apex_nodata {
            zone.add_empty_non_terminals();
        }
        Ok(zone)
    }

    /// This zone with `vips` as the named VIPs of the l4lb zones, in place of any before. Pass
    /// only VIPs the data plane has programmed: a name must not resolve before its address
    /// routes. The Mesos part is shared, not copied.
    pub fn with_vips(&self, vips: &[PublishedVip]) -> Self {
        let soa = l4lb_soa(&self.config, &self.soa.mname, &self.soa.rname);
        Self {
            config: self.config.clone(),
            origin: self.origin.clone(),
            nodes: self.nodes.clone(),
            targets: self.targets.clone(),
            overlay: self.overlay.clone(),
            l4lb: L4lb::new(vips, soa),
            soa: self.soa.clone(),
            ns_target: self.ns_target.clone(),
            skipped: self.skipped,
            generation: next_generation(),
        }
    }

    /// The node of `key`: the registrations overlay's, else the Mesos part's, else an empty
    /// non-terminal above overlay names. With no registration the overlay costs one branch.
    fn find(&self, key: &LowerName) -> Option<Found<'_>> {
        if !self.overlay.is_empty()
            && let Some(found) = self.overlay.get(key)
        {
            return Some(found);
        }
        if let Some((owner, node)) = self.nodes.get_key_value(key) {
            let targets = &self.targets;
            return Some(Found {
                owner,
                node,
                targets,
            });
        }
        let owner = self.overlay.empty_non_terminal(key)?;
        static EMPTY: Node = Node::EMPTY;
        Some(Found {
            owner,
            node: &EMPTY,
            targets: &[],
        })
    }

    /// This zone with `records` as the registrations' records of each of `names` (a name
    /// `records` lacks has none left), at SOA `serial`, with no named VIP published (as
    /// [`new`](Self::new)). The Mesos part is shared; the overlay copies only the shards these
    /// names touch, so a registration change costs the same with thousands of registrations.
    /// A name the Mesos part also holds answers with both parts' records, as building the zone
    /// from their union would. PTR names are not in the overlay: with `ptr_records` the caller
    /// builds the zone whole.
    pub fn with_registered<'n>(
        &self,
        serial: u32,
        names: impl IntoIterator<Item = &'n str>,
        records: &RecordSet,
    ) -> Self {
        let mut overlay = self.overlay.clone();
        let ents = self.config.apex_nodata.then_some(&self.origin);
        for name in names {
            if name.bytes().any(|b| b.is_ascii_uppercase()) {
                continue;
            }
            let Ok(parsed) = Name::from_ascii(name) else {
                continue;
            };
            let key = LowerName::new(&parsed);
            let entry = self.entry(&key, name, records);
            overlay.set(key, entry, ents);
        }
        let config = ZoneConfig {
            serial,
            ..self.config.clone()
        };
        let soa = SOA::new(
            self.soa.mname.clone(),
            self.soa.rname.clone(),
            serial,
            self.soa.refresh,
            self.soa.retry,
            self.soa.expire,
            self.soa.minimum,
        );
        Self {
            origin: self.origin.clone(),
            nodes: self.nodes.clone(),
            targets: self.targets.clone(),
            overlay,
            l4lb: L4lb::new(&[], l4lb_soa(&config, &soa.mname, &soa.rname)),
            soa,
            ns_target: self.ns_target.clone(),
            skipped: self.skipped,
            generation: next_generation(),
            config,
        }
    }

    /// The overlay entry of `name` (`key` parsed): its records in `records`, after those the
    /// Mesos part holds for it, as the union would list them.
    fn entry(&self, key: &LowerName, name: &str, records: &RecordSet) -> Entry {
        let mut entry = Entry::default();
        let base = self.nodes.get(key).filter(|n| n.has_data());
        let Some(srv) = records.srv.get(name) else {
            let (a, aaaa) = (records.a.get(name), records.aaaa.get(name));
            if a.is_none() && aaaa.is_none() {
                return entry;
            }
            return self.addresses_into(entry, base, a, aaaa);
        };
        if let Some(base) = base {
            let targets = base
                .srv
                .iter()
                .map(|&(p, t)| (p, self.targets[t as usize].clone()));
            entry.srv.extend(targets);
        }
        for srv in srv {
            if let Ok(target) = Name::from_ascii(&srv.target) {
                let value = (srv.port, LowerName::new(&target));
                if !entry.srv.contains(&value) {
                    entry.srv.push(value);
                }
            }
        }
        self.addresses_into(entry, base, records.a.get(name), records.aaaa.get(name))
    }

    fn addresses_into(
        &self,
        mut entry: Entry,
        base: Option<&Node>,
        a: Option<&indexmap::IndexSet<Ipv4Addr>>,
        aaaa: Option<&indexmap::IndexSet<Ipv6Addr>>,
    ) -> Entry {
        if let Some(base) = base {
            entry.a.extend(&base.a);
            entry.aaaa.extend(&base.aaaa);
        }
        for ip in a.into_iter().flatten() {
            if !entry.a.contains(ip) {
                entry.a.push(*ip);
            }
        }
        for ip in aaaa.into_iter().flatten() {
            if !entry.aaaa.contains(ip) {
                entry.aaaa.push(*ip);
            }
        }
        entry
    }

    /// This zone's identity, unique in the process and never 0.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Number of generated names that could not be served (see [`Zone`]).
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// Whether `name` is at or under the origin or an l4lb zone, or is a reverse name this zone
    /// answers.
    pub fn contains(&self, name: &LowerName) -> bool {
        self.origin.zone_of(name)
            || l4lb::covers(name)
            || (self.config.ptr_records && self.nodes.get(name).is_some_and(|n| !n.ptr.is_empty()))
    }

    /// Answers `qtype` for `qname`, spelled as the client sent it.
    pub fn answer(&self, qname: &Name, qtype: RecordType, rng: &mut impl Rng) -> Answer<'_> {
        self.answer_within(qname, qtype, rng, usize::MAX)
    }

    /// Answers as [`answer`](Self::answer) does, with at most `cap` answer records: a uniform
    /// random sample of a bigger RRset, in random order, which is what the first `cap` records
    /// of Mesos-DNS's full shuffle would be. The caller passes the most records its size limit
    /// could hold ([`crate::response::max_answers`]), so the sample is always truncated further
    /// and the reply still has TC set; the point is that a name with 100,000 addresses costs
    /// `cap` records per query, not 100,000.
    pub fn answer_within(
        &self,
        qname: &Name,
        qtype: RecordType,
        rng: &mut impl Rng,
        cap: usize,
    ) -> Answer<'_> {
        let key = normalise(qname);
        if l4lb::covers(&key) {
            return self.l4lb.answer(qname, qtype);
        }
        let found = self.find(&key);
        let node = found.map(|f| f.node);
        let mut out = Answer::default();
        let is_apex = key == self.origin;
        match (qtype, found) {
            (RecordType::A, Some(f)) => {
                self.push_addresses(&mut out.answers, f.owner, (&f.node.a, &[]), rng, cap)
            }
            (RecordType::AAAA, Some(f)) => {
                self.push_addresses(&mut out.answers, f.owner, (&[], &f.node.aaaa), rng, cap)
            }
            (RecordType::SRV, _) => self.srv_answer(&mut out, found, qname, rng, cap),
            (RecordType::PTR, Some(f)) => self.push_ptrs(&mut out.answers, f, rng, cap),
            (RecordType::SOA, _) if is_apex => {
                out.answers.push(Cow::Owned(self.soa_record(qname)));
                out.authority.push(Cow::Owned(self.ns_record(qname)));
            }
            (RecordType::NS, _) if is_apex => out.answers.push(Cow::Owned(self.ns_record(qname))),
            (RecordType::SOA, _) => out.authority.push(Cow::Owned(self.soa_record(qname))),
            (RecordType::NS, _) => out.authority.push(Cow::Owned(self.ns_record(qname))),
            (RecordType::ANY, _) => {
                self.srv_answer(&mut out, found, qname, rng, cap);
                if let Some(f) = found {
                    let addresses = (&f.node.a[..], &f.node.aaaa[..]);
                    self.push_addresses(&mut out.answers, f.owner, addresses, rng, cap);
                }
                out.answers.shuffle(rng);
                if out.answers.len() > cap {
                    // Each part is a uniform sample of its own, so the first `cap` of their
                    // shuffled union are a uniform sample of the whole; the additionals of the
                    // SRV part would be dropped with the cut anyway.
                    out.answers.truncate(cap);
                    out.additionals.clear();
                }
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

    /// A and AAAA records owned by the stored (lower-case, cleaned) name, shuffled; at most
    /// `cap` of them ([`pick`]).
    fn push_addresses(
        &self,
        out: &mut Vec<Cow<'_, Record>>,
        owner: &LowerName,
        (v4, v6): (&[Ipv4Addr], &[Ipv6Addr]),
        rng: &mut impl Rng,
        cap: usize,
    ) {
        let ttl = self.config.ttl;
        let owner: &Name = owner;
        out.extend(pick(v4.len() + v6.len(), cap, rng).into_iter().map(|i| {
            let rdata = match v4.get(i) {
                Some(ip) => RData::A(A(*ip)),
                None => RData::AAAA(AAAA(v6[i - v4.len()])),
            };
            Cow::Owned(Record::from_rdata(owner.clone(), ttl, rdata))
        }));
    }

    fn push_ptrs(
        &self,
        out: &mut Vec<Cow<'_, Record>>,
        found: Found<'_>,
        rng: &mut impl Rng,
        cap: usize,
    ) {
        let (owner, node): (&Name, _) = (found.owner, found.node);
        out.extend(pick(node.ptr.len(), cap, rng).into_iter().map(|i| {
            let target: &Name = &found.targets[node.ptr[i] as usize];
            Cow::Owned(Record::from_rdata(
                owner.clone(),
                self.config.ttl,
                RData::PTR(PTR(target.clone())),
            ))
        }));
    }

    /// SRV records owned by the question as spelled, shuffled, and one A and one AAAA per
    /// distinct target, chosen at random (Mesos-DNS took the "first" value of a Go map, which is
    /// random too). Past `cap` records the reply is truncated, which drops every additional
    /// record: they are not made at all then.
    fn srv_answer(
        &self,
        out: &mut Answer<'_>,
        found: Option<Found<'_>>,
        qname: &Name,
        rng: &mut impl Rng,
        cap: usize,
    ) {
        let Some(Found { node, targets, .. }) = found else {
            return;
        };
        let (ttl, weight) = (self.config.ttl, self.config.srv_weight);
        out.answers
            .extend(pick(node.srv.len(), cap, rng).into_iter().map(|i| {
                let (port, t) = node.srv[i];
                let target: &Name = &targets[t as usize];
                let rdata = SRV::new(0, weight, port, target.clone());
                Cow::Owned(Record::from_rdata(qname.clone(), ttl, RData::SRV(rdata)))
            }));
        if node.srv.len() > cap {
            return;
        }
        for t in node.targets() {
            let target = &targets[t as usize];
            if let Some(Found { node: tn, .. }) = self.find(target) {
                let owner: &Name = target;
                if !tn.a.is_empty() {
                    let ip = tn.a[rng.random_range(0..tn.a.len())];
                    out.additionals.push(Cow::Owned(Record::from_rdata(
                        owner.clone(),
                        ttl,
                        RData::A(A(ip)),
                    )));
                }
                if !tn.aaaa.is_empty() {
                    let ip = tn.aaaa[rng.random_range(0..tn.aaaa.len())];
                    out.additionals.push(Cow::Owned(Record::from_rdata(
                        owner.clone(),
                        ttl,
                        RData::AAAA(AAAA(ip)),
                    )));
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

    /// The node of `name`, created if needed; `None` (and counted) when the name cannot be
    /// served. Mesos-DNS lower-cases every query, so upper-case names (the raw DiscoveryInfo
    /// pass) are unreachable there; they stay unreachable here.
    fn add(&mut self, name: &str, fill: impl FnOnce(&mut Node)) {
        let parsed = match name.bytes().any(|b| b.is_ascii_uppercase()) {
            true => None,
            false => Name::from_ascii(name).ok(),
        };
        match parsed {
            Some(parsed) => fill(
                Arc::make_mut(&mut self.nodes)
                    .entry(LowerName::new(&parsed))
                    .or_default(),
            ),
            None => self.skipped += 1,
        }
    }

    /// The index of `name` in the target table, adding it once.
    fn intern<'r>(&mut self, interned: &mut HashMap<&'r str, u32>, name: &'r str) -> Option<u32> {
        if let Some(&i) = interned.get(name) {
            return Some(i);
        }
        let parsed = Name::from_ascii(name).ok()?;
        let i = u32::try_from(self.targets.len()).ok()?;
        Arc::make_mut(&mut self.targets).push(LowerName::new(&parsed));
        interned.insert(name, i);
        Some(i)
    }

    /// PTR records for every A and AAAA value under the domain, pointing back at the names that
    /// hold it. Mesos-DNS gives no "primary" name, so every owner is listed (a resolver picks
    /// one).
    fn add_ptrs<'r>(&mut self, records: &'r RecordSet, interned: &mut HashMap<&'r str, u32>) {
        let v4 = records
            .a
            .iter()
            .flat_map(|(n, ips)| ips.iter().map(move |ip| (n, IpAddr::V4(*ip))));
        let v6 = records
            .aaaa
            .iter()
            .flat_map(|(n, ips)| ips.iter().map(move |ip| (n, IpAddr::V6(*ip))));
        for (name, ip) in v4.chain(v6) {
            if name.bytes().any(|b| b.is_ascii_uppercase()) {
                continue;
            }
            let Some(t) = self.intern(interned, name) else {
                continue;
            };
            let node = Arc::make_mut(&mut self.nodes)
                .entry(LowerName::new(&Name::from(ip)))
                .or_default();
            if !node.ptr.contains(&t) {
                node.ptr.push(t);
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
        let nodes = Arc::make_mut(&mut self.nodes);
        for name in missing {
            nodes.entry(name).or_default();
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

/// Which of `n` values to answer with, in random order: all of them shuffled (as Mesos-DNS
/// does) when `n <= cap`, else a uniform sample of `cap`, in O(`cap`) rather than O(`n`).
fn pick(n: usize, cap: usize, rng: &mut impl Rng) -> Vec<usize> {
    if n <= cap {
        let mut all: Vec<usize> = (0..n).collect();
        all.shuffle(rng);
        return all;
    }
    rand::seq::index::sample(rng, n, cap).into_vec()
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

/// The SOA of the l4lb zones: the Mesos domain's server names, serial and timers.
fn l4lb_soa(config: &ZoneConfig, mname: &Name, rname: &Name) -> L4lbSoa {
    L4lbSoa {
        mname: mname.clone(),
        rname: rname.clone(),
        serial: config.serial,
        refresh: clamp_i32(config.soa_refresh),
        retry: clamp_i32(config.soa_retry),
        expire: clamp_i32(config.soa_expire),
    }
}

fn clamp_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

mod node;
mod overlay;

#[cfg(test)]
mod tests;

//! What the agent currently serves: one catalog and everything derived from it, swapped whole.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;
use beacon_catalog::Catalog;
use beacon_catalog::registration::Registration;
use beacon_dns::handler::SharedZone;
use beacon_dns::labels::LabelSpec;
use beacon_dns::records::{GeneratorConfig, IpSource, RecordSet, generate};
use beacon_dns::zone::{Zone, ZoneConfig, ZoneError};

use super::owners::{Conflict, Generated, Owners, RegisteredRecords, record_names};
use super::{Fragments, Vips};
use crate::common::{lock, wall_millis};
use crate::config::Config;

/// One generation of served data.
#[derive(Debug)]
pub struct Published {
    /// The catalog it was built from.
    pub catalog: Catalog,
    /// The Mesos-DNS records.
    pub records: Arc<RecordSet>,
    /// SOA serial: the unix time of the refresh, as Mesos-DNS sets it.
    pub serial: u32,
}

/// The current generation, readable without waiting by the DNS server and the HTTP API.
#[derive(Clone, Default)]
pub struct Current {
    /// Records and catalog, for the HTTP API.
    pub published: Arc<ArcSwapOption<Published>>,
    /// The zone, for the DNS server.
    pub zone: SharedZone,
    /// When the Mesos master served the state in use, in unix seconds, while it is the
    /// last-known state restored at start (0 once a master answered).
    pub last_known: Arc<std::sync::atomic::AtomicU64>,
}

impl Current {
    /// Whether a first catalog has been loaded.
    pub fn is_ready(&self) -> bool {
        self.published.load().is_some()
    }
}

/// Turns catalogs into published generations for one configuration.
#[derive(Clone, Debug)]
pub struct Publisher {
    generator: GeneratorConfig,
    zone: ZoneConfig,
    vips: Arc<Vips>,
    /// Each source's records, with the fragment they were generated from.
    by_origin: Arc<Mutex<ByOrigin>>,
}

impl Publisher {
    /// A publisher for `config`, whose DNS server answers as `ns_ips` (see [`ns_addresses`]),
    /// programming VIPs through `vips`.
    pub fn new(config: &Config, ns_ips: Vec<IpAddr>, vips: Arc<Vips>) -> Self {
        let m = &config.mesos_dns;
        let generator = GeneratorConfig {
            domain: m.domain.clone(),
            spec: if m.enforce_rfc952 {
                LabelSpec::Rfc952
            } else {
                LabelSpec::Rfc1123
            },
            ip_sources: m
                .ip_sources
                .iter()
                .filter_map(|s| IpSource::parse(s))
                .collect(),
            masters: m.masters.clone(),
            ns_name: m.soa_mname.clone(),
            ns_ips,
            enumerate: false,
            healthy_only: config.dns.healthy_only,
        };
        let zone = ZoneConfig {
            domain: m.domain.clone(),
            ttl: m.ttl,
            srv_weight: m.srv_record_default_weight,
            soa_mname: m.soa_mname.clone(),
            soa_rname: m.soa_rname.clone(),
            soa_refresh: m.soa_refresh,
            soa_retry: m.soa_retry,
            soa_expire: m.soa_expire,
            serial: 0,
            apex_nodata: config.dns.apex_nodata,
            ptr_records: config.dns.ptr_records,
        };
        Self {
            generator,
            zone,
            vips,
            by_origin: Arc::default(),
        }
    }

    /// The VIP side.
    pub fn vips(&self) -> &Arc<Vips> {
        &self.vips
    }

    /// Which task made which record (`/v1/enumerate`): generated again on demand, since keeping
    /// it with every generation would double the records' memory.
    pub fn enumeration(&self, catalog: &Catalog) -> Vec<beacon_dns::records::EnumFramework> {
        let config = GeneratorConfig {
            enumerate: true,
            ..self.generator.clone()
        };
        generate(catalog, &config).enumeration
    }

    /// Builds a generation from the sources' `fragments` and makes it current. VIPs are
    /// programmed before the zone naming them is swapped in; `owners` maps Mesos agent ids to
    /// gossip nodes.
    pub fn publish(
        &self,
        current: &Current,
        fragments: &Fragments,
        owners: &BTreeMap<String, String>,
    ) -> Result<Arc<Published>, ZoneError> {
        let serial = (wall_millis() / 1000) as u32;
        let catalog = Catalog::merge(fragments.values().map(|f| f.as_ref()));
        let (records, zone) = self.generation(fragments, &catalog, serial)?;
        // VIP before DNS: a VIP being removed leaves DNS before its maps do, and a new one is
        // named only once its maps are in place.
        let plan = self.vips.prepare(&catalog, owners);
        if let Some(staying) = plan.staying() {
            current.zone.store(Some(Arc::new(zone.with_vips(staying))));
        }
        let programmed = self.vips.apply(plan);
        let zone = zone.with_vips(&programmed);
        if zone.skipped() > 0 {
            tracing::debug!(
                names = zone.skipped(),
                "generated names that DNS cannot serve (upper case or over-long labels)"
            );
        }
        let published = Arc::new(Published {
            catalog,
            records,
            serial,
        });
        current.zone.store(Some(Arc::new(zone)));
        current.published.store(Some(published.clone()));
        Ok(published)
    }
}

impl Publisher {
    /// The records of `catalog`, the union of `fragments`, with names owned as [`owners`]
    /// says, and the zone answering them at `serial` (before VIPs). With one source of Mesos
    /// tasks alone they are generated from it directly (a Mesos-DNS replacement's records, in
    /// Mesos-DNS's order). Otherwise each origin's records are kept, its Mesos tasks' and each
    /// of its registrations' apart, and only what changed is generated again: in a cluster one
    /// change would otherwise regenerate every node's tasks on every node, and one PUT every
    /// registration. Records are sets per name, so the union is what generating the merged
    /// catalog gives, in another order, less what registrations may not add.
    fn generation(
        &self,
        fragments: &Fragments,
        catalog: &Catalog,
        serial: u32,
    ) -> Result<(Arc<RecordSet>, Arc<Zone>), ZoneError> {
        let config = ZoneConfig {
            serial,
            ..self.zone.clone()
        };
        let mut state = lock(&self.by_origin);
        let sources: Vec<_> = fragments.iter().filter(|(_, f)| !is_empty(f)).collect();
        if let [(origin, fragment)] = sources[..]
            && !has_registrations(fragment)
        {
            let records = Arc::new(generate(catalog, &self.generator));
            *state = ByOrigin {
                owners: Arc::new(Owners::single(origin, records.clone(), catalog)),
                ..ByOrigin::default()
            };
            let zone = Arc::new(Zone::new(&records, config)?);
            return Ok((records, zone));
        }
        let before: Vec<_> = (state.generated.values())
            .flat_map(|g| g.registered.iter().cloned())
            .collect();
        let mut kept = BTreeMap::new();
        for (origin, fragment) in sources {
            let generated = match state.generated.remove(origin) {
                Some(g) if Arc::ptr_eq(&g.from, fragment) => g,
                previous => Generated::new(fragment.clone(), &self.generator, previous.as_ref()),
            };
            kept.insert(origin.clone(), generated);
        }
        let same_owners = state.owners.same_as(&kept);
        if !same_owners {
            state.owners = Arc::new(Owners::new(&kept));
        }
        let mut registered = RecordSet::default();
        for r in kept.values().flat_map(|g| &g.registered) {
            state.owners.add_unowned(&mut registered, &r.records);
        }
        // A clone of the first Mesos part is a copy of its tables, cheaper than inserting its
        // names one by one.
        let mut mesos = kept.values().map(|g| &g.mesos);
        let mut all = mesos.next().map(|m| (**m).clone()).unwrap_or_default();
        mesos.for_each(|part| all.union(part));
        let zone = if config.ptr_records {
            // PTR names are not in the overlay (`Zone::with_registered`): built whole.
            all.union(&registered);
            Zone::new(&all, config)?
        } else {
            let zone = match (&state.zone, same_owners) {
                (Some(last), true) => {
                    let touched = touched(&before, &kept);
                    last.with_registered(serial, touched.iter().map(String::as_str), &registered)
                }
                _ => Zone::new(&all, config)?.with_registered(
                    serial,
                    record_names(&registered),
                    &registered,
                ),
            };
            all.union(&registered);
            zone
        };
        let zone = Arc::new(zone);
        state.generated = kept;
        state.zone = Some(zone.clone());
        Ok((Arc::new(all), zone))
    }

    /// The records [`generation`](Self::generation) gives, for the tests.
    #[cfg(test)]
    fn records(&self, fragments: &Fragments, catalog: &Catalog) -> Arc<RecordSet> {
        self.generation(fragments, catalog, 0).unwrap().0
    }

    /// Refuses a registration that would add to a name or VIP a Mesos source owns (the rule in
    /// [`owners`]), naming the owner.
    pub fn check_owners(&self, reg: &Registration) -> Result<(), Conflict> {
        let owners = lock(&self.by_origin).owners.clone();
        owners.check(reg, &self.generator)
    }
}

/// Each origin's records, and who owns what across them.
#[derive(Debug, Default)]
struct ByOrigin {
    generated: BTreeMap<String, Generated>,
    owners: Arc<Owners>,
    /// The last zone built from several origins, before VIPs: its Mesos part (the Mesos
    /// records of every origin) and its overlay (the registrations' records those owners
    /// leave), which the next change of registrations alone updates rather than rebuilds.
    zone: Option<Arc<Zone>>,
}

/// The names of the registrations' records that differ between `before` and `after`'s
/// registrations: a registration whose records are the same `Arc` is unchanged.
fn touched(
    before: &[Arc<RegisteredRecords>],
    after: &BTreeMap<String, Generated>,
) -> BTreeSet<String> {
    let after: Vec<_> = after.values().flat_map(|g| &g.registered).collect();
    let old: HashSet<_> = before.iter().map(Arc::as_ptr).collect();
    let new: HashSet<_> = after.iter().map(|r| Arc::as_ptr(r)).collect();
    let gone = before.iter().filter(|r| !new.contains(&Arc::as_ptr(r)));
    let came = after.into_iter().filter(|r| !old.contains(&Arc::as_ptr(r)));
    (gone.chain(came))
        .flat_map(|r| record_names(&r.records))
        .map(str::to_string)
        .collect()
}

/// Whether a fragment holds registrations.
fn has_registrations(fragment: &Catalog) -> bool {
    (fragment.frameworks.iter()).any(|f| f.tasks.iter().any(|t| t.is_registration()))
}

/// Whether a fragment holds nothing to generate records from (a node with no registrations and
/// no agent tasks yet).
fn is_empty(fragment: &Catalog) -> bool {
    fragment.leader.is_none() && fragment.agents.is_empty() && fragment.frameworks.is_empty()
}

/// The addresses of the server's own name (`SOAMname`), from the DNS listener as Mesos-DNS
/// derives them (§3.9): a specific address is itself; the wildcard means every non-loopback
/// interface address.
pub fn ns_addresses(listener: &str) -> Vec<IpAddr> {
    match listener.parse::<IpAddr>() {
        Ok(ip) if !ip.is_unspecified() => vec![ip],
        Ok(_) => if_addrs::get_if_addrs()
            .map(|ifs| {
                ifs.into_iter()
                    .filter(|i| !i.is_loopback())
                    .map(|i| i.ip())
                    .collect()
            })
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use beacon_catalog::registration::{Registration, fragment};
    use hickory_proto::rr::RecordType;

    use super::*;

    /// Every (name, value) of a record set, as text, whatever the order.
    fn flat(r: &RecordSet) -> BTreeSet<String> {
        let a =
            r.a.iter()
                .flat_map(|(n, v)| v.iter().map(move |ip| format!("{n} A {ip}")));
        let aaaa =
            (r.aaaa.iter()).flat_map(|(n, v)| v.iter().map(move |ip| format!("{n} AAAA {ip}")));
        let srv = (r.srv.iter()).flat_map(|(n, v)| v.iter().map(move |s| format!("{n} SRV {s:?}")));
        a.chain(aaaa).chain(srv).collect()
    }

    /// A zone's answer to `name` as sorted text (rcode and answers, whatever the shuffle).
    fn answers(zone: &Zone, name: &str, qtype: RecordType) -> String {
        use rand::SeedableRng;
        let qname = hickory_proto::rr::Name::from_ascii(name).unwrap();
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let answer = zone.answer(&qname, qtype, &mut rng);
        let mut records: Vec<String> = answer.answers.iter().map(|r| r.to_string()).collect();
        records.sort();
        format!("{} {records:?}", answer.rcode)
    }

    #[test]
    fn per_source_records_are_the_merged_catalogs_and_follow_changes() {
        let state = std::fs::read(crate::config::conformance_dir().join("fake.json")).unwrap();
        let master = Arc::new(beacon_catalog::mesos::parse_state(&state).unwrap());
        let reg = |ip: &str| {
            let body = format!(r#"{{"name": "web", "framework": "shop", "ips": ["{ip}"]}}"#);
            let regs = BTreeMap::from([(
                "w".to_string(),
                Registration::parse(body.as_bytes()).unwrap(),
            )]);
            Arc::new(fragment("n1", &regs))
        };
        let publisher = Publisher::new(&Config::default(), Vec::new(), Arc::new(Vips::off()));
        for ip in ["10.0.0.1", "10.0.0.2"] {
            let fragments = BTreeMap::from([
                ("mesos-master".to_string(), master.clone()),
                ("node/n1".to_string(), reg(ip)),
            ]);
            let merged = Catalog::merge(fragments.values().map(|f| f.as_ref()));
            let whole = generate(&merged, &publisher.generator);
            let parts = publisher.records(&fragments, &merged);
            assert_eq!(flat(&parts), flat(&whole));
            assert!(flat(&parts).contains(&format!("web.shop.mesos. A {ip}")));
        }
    }

    /// The attack: a node (misconfigured, compromised, or through its API) publishes a
    /// registration under a name the Mesos master serves, to take a share of its clients.
    /// Every node drops those records when it builds its zone; the API refuses it up front.
    #[test]
    fn registrations_never_add_to_names_mesos_serves() {
        let state = std::fs::read(crate::config::conformance_dir().join("fake.json")).unwrap();
        let master = Arc::new(beacon_catalog::mesos::parse_state(&state).unwrap());
        let body = br#"{"name": "nginx", "framework": "marathon", "ips": ["10.66.0.1"]}"#;
        let evil = Registration::parse(body).unwrap();
        let regs = BTreeMap::from([("evil".to_string(), evil.clone())]);
        let body = br#"{"name": "own", "framework": "marathon", "ips": ["10.66.0.2"]}"#;
        let own = Registration::parse(body).unwrap();
        let regs_own = BTreeMap::from([("own".to_string(), own.clone())]);
        let fragments = BTreeMap::from([
            ("mesos-master".to_string(), master.clone()),
            ("node/n1".to_string(), Arc::new(fragment("n1", &regs))),
            ("node/n2".to_string(), Arc::new(fragment("n2", &regs_own))),
        ]);
        let publisher = Publisher::new(&Config::default(), Vec::new(), Arc::new(Vips::off()));
        let merged = Catalog::merge(fragments.values().map(|f| f.as_ref()));
        let records = flat(&publisher.records(&fragments, &merged));
        assert!(
            records
                .iter()
                .any(|r| r.starts_with("nginx.marathon.mesos. A "))
        );
        // Only names of its own are left to it (the task's canonical name, unique to it).
        let taken = |r: &&String| r.contains("10.66.0.1") || r.contains("-n1.marathon.mesos.\"");
        let mesos_names = ["nginx.marathon.mesos.", "_nginx._tcp.marathon.mesos."];
        assert!(
            !(records.iter().filter(taken)).any(|r| mesos_names.iter().any(|n| r.starts_with(n))),
            "{records:?}"
        );
        assert!(!records.contains("nginx.marathon.mesos. A 10.66.0.1"));
        assert!(records.contains("own.marathon.mesos. A 10.66.0.2"));
        let conflict = publisher.check_owners(&evil).unwrap_err();
        assert_eq!(conflict.owner, "mesos-master");
        assert!(
            conflict.to_string().contains("nginx.marathon.mesos."),
            "{conflict}"
        );
        assert!(publisher.check_owners(&own).is_ok());
    }

    /// Records generated a registration at a time (each origin's last generation reused) are
    /// those of generating every origin afresh, through puts, replacements, deletes, names two
    /// registrations share, names Mesos owns, and a change of the Mesos state under them.
    #[test]
    fn incremental_records_are_a_full_rebuilds() {
        let state = std::fs::read(crate::config::conformance_dir().join("fake.json")).unwrap();
        let master = Arc::new(beacon_catalog::mesos::parse_state(&state).unwrap());
        let mut smaller = (*master).clone();
        smaller.frameworks.truncate(1);
        let smaller = Arc::new(smaller);
        let reg = |name: &str, fw: &str, ip: &str| {
            let body = format!(
                r#"{{"name": "{name}", "framework": "{fw}", "ips": ["{ip}"],
                "ports": [{{"number": 80, "protocol": "tcp", "name": "http"}}]}}"#
            );
            Registration::parse(body.as_bytes()).unwrap()
        };
        let mut regs = BTreeMap::new();
        // (id, what it becomes (none: deleted), whether the Mesos state shrank under it)
        let steps = [
            ("a", Some(("web", "shop", "10.0.0.1")), false),
            ("b", Some(("web", "shop", "10.0.0.2")), false),
            ("c", Some(("nginx", "marathon", "10.6.0.1")), false),
            ("d", Some(("own", "marathon", "10.6.0.2")), false),
            ("a", Some(("web", "shop", "10.0.0.3")), false),
            ("b", None, false),
            ("e", Some(("web", "shop", "10.0.0.3")), true),
            ("a", None, true),
            ("c", None, false),
        ];
        let publisher = Publisher::new(&Config::default(), Vec::new(), Arc::new(Vips::off()));
        for (i, (id, becomes, small)) in steps.into_iter().enumerate() {
            match becomes {
                Some((name, fw, ip)) => regs.insert(id.to_string(), reg(name, fw, ip)),
                None => regs.remove(id),
            };
            let mesos = if small { &smaller } else { &master };
            let fragments = BTreeMap::from([
                ("mesos-master".to_string(), mesos.clone()),
                ("node/n1".to_string(), Arc::new(fragment("n1", &regs))),
            ]);
            let merged = Catalog::merge(fragments.values().map(|f| f.as_ref()));
            let fresh = Publisher::new(&Config::default(), Vec::new(), Arc::new(Vips::off()));
            let (incremental, zone) = publisher.generation(&fragments, &merged, 1).unwrap();
            let (full, whole) = fresh.generation(&fragments, &merged, 1).unwrap();
            assert_eq!(flat(&incremental), flat(&full), "step {i}");
            assert_eq!(incremental.counts(), full.counts(), "step {i}");
            let asked = [
                "web.shop.mesos.",
                "_web._tcp.shop.mesos.",
                "shop.mesos.",
                "own.marathon.mesos.",
                "nginx.marathon.mesos.",
                "_nginx._tcp.marathon.mesos.",
            ];
            for name in asked {
                for qtype in [RecordType::A, RecordType::SRV] {
                    let (x, y) = (answers(&zone, name, qtype), answers(&whole, name, qtype));
                    assert_eq!(x, y, "step {i}: {name} {qtype}");
                }
            }
        }
    }

    /// A write regenerates the one registration it changed: the others' records, the Mesos
    /// part and the owners are the previous generation's, not copies.
    #[test]
    fn a_write_generates_only_the_registration_it_changed() {
        let state = std::fs::read(crate::config::conformance_dir().join("fake.json")).unwrap();
        let master = Arc::new(beacon_catalog::mesos::parse_state(&state).unwrap());
        let reg = |ip: &str| {
            let body = format!(r#"{{"name": "web", "framework": "shop", "ips": ["{ip}"]}}"#);
            Registration::parse(body.as_bytes()).unwrap()
        };
        let publisher = Publisher::new(&Config::default(), Vec::new(), Arc::new(Vips::off()));
        let mut regs: BTreeMap<String, Registration> = (0..5)
            .map(|i| (format!("r{i}"), reg(&format!("10.0.0.{i}"))))
            .collect();
        let publish = |regs: &BTreeMap<String, Registration>| {
            let fragments = BTreeMap::from([
                ("mesos-master".to_string(), master.clone()),
                ("node/n1".to_string(), Arc::new(fragment("n1", regs))),
            ]);
            let merged = Catalog::merge(fragments.values().map(|f| f.as_ref()));
            publisher.records(&fragments, &merged);
            let state = lock(&publisher.by_origin);
            let node = &state.generated["node/n1"];
            (
                node.registered.clone(),
                node.mesos.clone(),
                state.owners.clone(),
            )
        };
        let (before, mesos, owners) = publish(&regs);
        regs.insert("r2".into(), reg("10.0.9.9"));
        let (after, mesos_after, owners_after) = publish(&regs);
        let same: Vec<bool> = (before.iter().zip(&after))
            .map(|(b, a)| Arc::ptr_eq(b, a))
            .collect();
        assert_eq!(same, [true, true, false, true, true]);
        assert!(Arc::ptr_eq(&mesos, &mesos_after) && Arc::ptr_eq(&owners, &owners_after));
    }

    #[test]
    fn the_api_check_knows_the_owners_when_the_master_is_the_only_source() {
        let state = std::fs::read(crate::config::conformance_dir().join("fake.json")).unwrap();
        let master = Arc::new(beacon_catalog::mesos::parse_state(&state).unwrap());
        let fragments = BTreeMap::from([("mesos-master".to_string(), master.clone())]);
        let publisher = Publisher::new(&Config::default(), Vec::new(), Arc::new(Vips::off()));
        publisher.records(&fragments, &master);
        let body = br#"{"name": "nginx", "framework": "marathon", "ips": ["10.66.0.1"]}"#;
        let conflict = publisher.check_owners(&Registration::parse(body).unwrap());
        assert_eq!(conflict.unwrap_err().owner, "mesos-master");
    }
}

//! Names have owners. The rule every node applies alike when it builds its records from all
//! origins (so a misconfigured or compromised node cannot take a name on anyone else's zone):
//!
//! - A DNS name that any Mesos source produces (the Mesos master's state, or the tasks a node's
//!   Mesos agent runs) belongs to Mesos: records that registrations would add to it are dropped.
//! - A VIP (a named VIP's name in its framework, or an IP VIP's address) that a Mesos task
//!   declares belongs to Mesos: registrations cannot add backends to it (`catalog::vip`).
//! - Names and VIPs no Mesos source produces are open to registrations, of any node.
//!
//! The write API applies the same rule up front ([`Owners::check`]), answering 409 with the
//! owner, so what it accepts is what every node serves.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use beacon_catalog::registration::{Registration, fragment};
use beacon_catalog::vip::{VipAddress, extract};
use beacon_catalog::{Catalog, Framework};
use beacon_dns::records::{GeneratorConfig, RecordSet, generate};

/// The records of one origin's fragment, split by who produced them.
#[derive(Debug)]
pub struct Generated {
    /// The fragment they were generated from.
    pub from: Arc<Catalog>,
    /// Records of its Mesos tasks (and, for the master's origin, of the leader and masters).
    pub mesos: Arc<RecordSet>,
    /// Records of its registrations, before ownership is applied.
    pub registered: Arc<RecordSet>,
    /// The VIP addresses its Mesos tasks declare.
    pub mesos_vips: Arc<HashSet<VipAddress>>,
}

impl Generated {
    /// Generates the records of `fragment`, its Mesos tasks and its registrations apart.
    pub fn new(fragment: Arc<Catalog>, config: &GeneratorConfig) -> Self {
        let (mesos, registered) = split(&fragment);
        let mesos_vips = extract(&mesos)
            .vips
            .into_keys()
            .map(|k| k.address)
            .collect();
        Self {
            mesos: Arc::new(generate(&mesos, config)),
            registered: Arc::new(generate(&registered, config)),
            mesos_vips: Arc::new(mesos_vips),
            from: fragment,
        }
    }
}

/// The fragment's Mesos part and its registrations' part.
fn split(fragment: &Catalog) -> (Catalog, Catalog) {
    let mut mesos = fragment.clone();
    let mut registered = Catalog::default();
    for framework in &mut mesos.frameworks {
        let (regs, tasks) = std::mem::take(&mut framework.tasks)
            .into_iter()
            .partition::<Vec<_>, _>(|t| t.is_registration());
        framework.tasks = tasks;
        if !regs.is_empty() {
            registered.frameworks.push(Framework {
                tasks: regs,
                ..framework.clone()
            });
        }
    }
    mesos.frameworks.retain(|f| !f.tasks.is_empty());
    (mesos, registered)
}

/// What Mesos sources own across all origins, and which origin produced each part.
#[derive(Debug, Default)]
pub struct Owners {
    /// The origins' Mesos records, by origin.
    parts: BTreeMap<String, (Arc<RecordSet>, Arc<HashSet<VipAddress>>)>,
    names: HashSet<String>,
}

impl Owners {
    /// The owners of `generated` (by origin).
    pub fn new(generated: &BTreeMap<String, Generated>) -> Self {
        let mut names = HashSet::new();
        let mut parts = BTreeMap::new();
        for (origin, g) in generated {
            names.extend(record_names(&g.mesos).map(str::to_string));
            parts.insert(origin.clone(), (g.mesos.clone(), g.mesos_vips.clone()));
        }
        Self { parts, names }
    }

    /// The owners when `origin` is the only source and has only Mesos tasks: it owns all of
    /// its `records` and the VIPs its `catalog` declares.
    pub fn single(origin: &str, records: Arc<RecordSet>, catalog: &Catalog) -> Self {
        let vips = extract(catalog)
            .vips
            .into_keys()
            .map(|k| k.address)
            .collect();
        let parts = BTreeMap::from([(origin.to_string(), (records, Arc::new(vips)))]);
        // `names` serves only to filter registrations, and there are none.
        Self {
            parts,
            names: HashSet::new(),
        }
    }

    /// Whether these owners were built from the same Mesos records as `generated` holds.
    pub fn same_as(&self, generated: &BTreeMap<String, Generated>) -> bool {
        self.parts.len() == generated.len()
            && (self.parts.iter().zip(generated))
                .all(|((o1, (m, _)), (o2, g))| o1 == o2 && Arc::ptr_eq(m, &g.mesos))
    }

    /// Adds to `into` the records of `registered` whose names Mesos does not own.
    pub fn add_unowned(&self, into: &mut RecordSet, registered: &RecordSet) {
        let keep = |name: &str| !self.names.contains(name);
        let mut open = RecordSet::default();
        copy_where(&mut open.a, &registered.a, keep);
        copy_where(&mut open.aaaa, &registered.aaaa, keep);
        copy_where(&mut open.srv, &registered.srv, keep);
        into.union(&open);
    }

    /// The first name or VIP of `reg` that a Mesos source owns, and the origin owning it.
    pub fn check(&self, reg: &Registration, config: &GeneratorConfig) -> Result<(), Conflict> {
        let regs = BTreeMap::from([(String::new(), reg.clone())]);
        let catalog = fragment("check", &regs);
        let records = generate(&catalog, config);
        // Names every generation has (the masters', the name server's) are nobody's to take.
        let common = generate(&Catalog::default(), config);
        for name in record_names(&records).filter(|n| !has_name(&common, n)) {
            if let Some(origin) = self.owner(|(records, _)| has_name(records, name)) {
                return Err(Conflict::name(name, origin));
            }
        }
        for key in extract(&catalog).vips.into_keys() {
            if let Some(origin) = self.owner(|(_, vips)| vips.contains(&key.address)) {
                return Err(Conflict::vip(&key.address, origin));
            }
        }
        Ok(())
    }

    fn owner(
        &self,
        has: impl Fn(&(Arc<RecordSet>, Arc<HashSet<VipAddress>>)) -> bool,
    ) -> Option<&str> {
        (self.parts.iter()).find_map(|(origin, part)| has(part).then_some(origin.as_str()))
    }
}

/// A registration that would add to what Mesos owns.
#[derive(Debug, thiserror::Error)]
#[error("{what} is served by {owner}; register under another name or framework")]
pub struct Conflict {
    /// The name or VIP.
    pub what: String,
    /// The origin that owns it: `mesos-master` or `node/<name>` (its Mesos agent's tasks).
    pub owner: String,
}

impl Conflict {
    fn name(name: &str, owner: &str) -> Self {
        Self {
            what: format!("name {name}"),
            owner: owner.to_string(),
        }
    }

    fn vip(address: &VipAddress, owner: &str) -> Self {
        let what = match address {
            VipAddress::Named(name) => {
                format!("VIP /{} in framework {}", name.name(), name.framework())
            }
            VipAddress::Ip(ip) => format!("VIP address {ip}"),
        };
        Self {
            what,
            owner: owner.to_string(),
        }
    }
}

fn record_names(records: &RecordSet) -> impl Iterator<Item = &str> {
    let a = records.a.keys();
    let aaaa = records.aaaa.keys();
    a.chain(aaaa).chain(records.srv.keys()).map(String::as_str)
}

fn has_name(records: &RecordSet, name: &str) -> bool {
    records.a.contains_key(name)
        || records.aaaa.contains_key(name)
        || records.srv.contains_key(name)
}

fn copy_where<V: Clone>(
    into: &mut beacon_dns::records::RecordMap<V>,
    from: &beacon_dns::records::RecordMap<V>,
    keep: impl Fn(&str) -> bool,
) {
    for (name, values) in from.iter().filter(|(name, _)| keep(name)) {
        into.insert(name.clone(), values.clone());
    }
}

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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use beacon_catalog::registration::{Registration, fragment};
use beacon_catalog::vip::{VipAddress, extract};
use beacon_catalog::{Catalog, Framework, Task};
use beacon_dns::records::{GeneratorConfig, RecordSet, generate};

/// The records of one origin's fragment, split by who produced them.
#[derive(Debug)]
pub struct Generated {
    /// The fragment they were generated from.
    pub from: Arc<Catalog>,
    /// Records of its Mesos tasks (and, for the master's origin, of the leader and masters).
    pub mesos: Arc<RecordSet>,
    /// Records of each registration, in the fragment's order, before ownership is applied.
    pub registered: Vec<Arc<RegisteredRecords>>,
    /// The VIP addresses its Mesos tasks declare.
    pub mesos_vips: Arc<HashSet<VipAddress>>,
    /// The fragment less its registrations, to tell whether the next fragment changed it.
    mesos_part: Arc<Catalog>,
}

/// One registration's records, with the task and framework they were generated from.
#[derive(Debug)]
pub struct RegisteredRecords {
    framework: Framework,
    task: Task,
    /// What generating its framework with this task alone gives.
    pub records: RecordSet,
}

impl Generated {
    /// Generates the records of `fragment`, its Mesos tasks and its registrations apart,
    /// reusing what `previous` (the same origin's last generation) already generated: a node's
    /// fragment changes one registration at a time, and the records of each registration depend
    /// only on it and the configuration, so a write generates one registration's records.
    pub fn new(fragment: Arc<Catalog>, config: &GeneratorConfig, previous: Option<&Self>) -> Self {
        let (mesos, registered) = split(&fragment);
        let (mesos_part, mesos_records, mesos_vips) = match previous {
            Some(p) if *p.mesos_part == mesos => {
                (p.mesos_part.clone(), p.mesos.clone(), p.mesos_vips.clone())
            }
            _ => {
                let vips = extract(&mesos).vips.into_keys().map(|k| k.address);
                let records = Arc::new(generate(&mesos, config));
                (Arc::new(mesos), records, Arc::new(vips.collect()))
            }
        };
        let mut known: HashMap<(&str, &str), &Arc<RegisteredRecords>> = HashMap::new();
        for r in previous.iter().flat_map(|p| &p.registered) {
            known.insert((&r.framework.name, &r.task.id), r);
        }
        let registered = registered
            .into_iter()
            .map(
                |(framework, task)| match known.get(&(&framework.name, &task.id)) {
                    Some(r) if r.task == *task && same_framework(&r.framework, framework) => {
                        Arc::clone(r)
                    }
                    _ => Arc::new(RegisteredRecords::new(framework, task, config)),
                },
            )
            .collect();
        Self {
            mesos: mesos_records,
            registered,
            mesos_vips,
            mesos_part,
            from: fragment,
        }
    }
}

impl RegisteredRecords {
    fn new(framework: &Framework, task: &Task, config: &GeneratorConfig) -> Self {
        let alone = Catalog {
            frameworks: vec![with_tasks(framework, vec![task.clone()])],
            ..Catalog::default()
        };
        let framework = with_tasks(framework, Vec::new());
        Self {
            records: generate(&alone, config),
            framework,
            task: task.clone(),
        }
    }
}

/// Whether two frameworks are the same but for their tasks.
fn same_framework(a: &Framework, b: &Framework) -> bool {
    a.name == b.name && a.pid == b.pid && a.hostname == b.hostname
}

/// `framework` with `tasks` in place of its own (not cloned only to be dropped: a node's
/// framework of registrations holds thousands).
fn with_tasks(framework: &Framework, tasks: Vec<Task>) -> Framework {
    Framework {
        name: framework.name.clone(),
        pid: framework.pid.clone(),
        hostname: framework.hostname.clone(),
        tasks,
    }
}

/// The fragment's Mesos part, and its registrations with their frameworks, in order.
fn split(fragment: &Catalog) -> (Catalog, Vec<(&Framework, &Task)>) {
    let mut mesos = Catalog {
        leader: fragment.leader.clone(),
        leader_raw: fragment.leader_raw.clone(),
        agents: fragment.agents.clone(),
        frameworks: Vec::new(),
        host_ips: fragment.host_ips.clone(),
        masters: fragment.masters.clone(),
    };
    let mut registered = Vec::new();
    for framework in &fragment.frameworks {
        let (regs, tasks): (Vec<&Task>, Vec<&Task>) =
            framework.tasks.iter().partition(|t| t.is_registration());
        registered.extend(regs.into_iter().map(|t| (framework, t)));
        if !tasks.is_empty() {
            mesos
                .frameworks
                .push(with_tasks(framework, tasks.into_iter().cloned().collect()));
        }
    }
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
        copy_where(&mut into.a, &registered.a, keep);
        copy_where(&mut into.aaaa, &registered.aaaa, keep);
        copy_where(&mut into.srv, &registered.srv, keep);
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

/// Every name `records` has a record for (a name may come once per record type).
pub fn record_names(records: &RecordSet) -> impl Iterator<Item = &str> {
    let a = records.a.keys();
    let aaaa = records.aaaa.keys();
    a.chain(aaaa).chain(records.srv.keys()).map(String::as_str)
}

fn has_name(records: &RecordSet, name: &str) -> bool {
    records.a.contains_key(name)
        || records.aaaa.contains_key(name)
        || records.srv.contains_key(name)
}

fn copy_where<V: Clone + std::hash::Hash + Eq>(
    into: &mut beacon_dns::records::RecordMap<V>,
    from: &beacon_dns::records::RecordMap<V>,
    keep: impl Fn(&str) -> bool,
) {
    for (name, values) in from.iter().filter(|(name, _)| keep(name)) {
        match into.get_mut(name) {
            Some(set) => set.extend(values.iter().cloned()),
            None => {
                into.insert(name.clone(), values.clone());
            }
        }
    }
}

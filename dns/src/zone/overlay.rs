//! A zone's registrations overlay: the names registrations add, kept apart from the Mesos part so
//! that a registration change copies a few small shards instead of rebuilding the zone. The
//! zone answers a name from the overlay first, then from its Mesos part; the overlay's empty
//! non-terminals come last, so a Mesos name is never hidden by one.
//!
//! Shards are picked by a hash of the name and shared between zones (`Arc`): a change copies
//! the shards of the names it touches and of their parents, a few hundredths of the overlay.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use hickory_proto::rr::LowerName;

use super::node::{Found, Node};

/// Shards of an overlay in use: with 4,000 registrations (some 16,000 names), about 60 names
/// each, so copying one costs microseconds.
const SHARDS: usize = 256;

/// The names registrations add, in shards (see the module doc).
#[derive(Clone, Debug, Default)]
pub(crate) struct Overlay {
    /// Empty until a first name is set, so a zone without registrations costs no lookup.
    shards: Vec<Arc<Shard>>,
}

#[derive(Clone, Debug, Default)]
struct Shard {
    nodes: HashMap<LowerName, Node>,
    /// The SRV targets of `nodes`, with garbage from replaced nodes until the next compaction.
    targets: Vec<LowerName>,
    /// Targets `nodes` refer to: the table is compacted once it holds twice that.
    live: usize,
    /// Names above overlay names, up to the origin, with how many overlay names lie below each:
    /// the empty non-terminals the overlay adds.
    below: HashMap<LowerName, u32>,
}

/// The complete records of one overlay name: what the zone's full rebuild would hold.
#[derive(Debug, Default)]
pub(crate) struct Entry {
    pub(crate) a: Vec<Ipv4Addr>,
    pub(crate) aaaa: Vec<Ipv6Addr>,
    pub(crate) srv: Vec<(u16, LowerName)>,
}

impl Entry {
    fn is_empty(&self) -> bool {
        self.a.is_empty() && self.aaaa.is_empty() && self.srv.is_empty()
    }
}

fn shard_of(name: &LowerName) -> usize {
    (BuildHasherDefault::<DefaultHasher>::default().hash_one(name) % SHARDS as u64) as usize
}

impl Overlay {
    /// Whether no name was ever set: the zone then skips the overlay.
    pub(crate) fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }

    /// The node of `name`, if the overlay holds records for it.
    pub(crate) fn get(&self, name: &LowerName) -> Option<Found<'_>> {
        let shard = self.shards.get(shard_of(name))?;
        let (owner, node) = shard.nodes.get_key_value(name)?;
        Some(Found {
            owner,
            node,
            targets: &shard.targets,
        })
    }

    /// The stored spelling of `name` if overlay names lie below it (an empty non-terminal).
    pub(crate) fn empty_non_terminal(&self, name: &LowerName) -> Option<&LowerName> {
        let shard = self.shards.get(shard_of(name))?;
        shard.below.get_key_value(name).map(|(k, _)| k)
    }

    /// Sets `name`'s records to `entry` (an empty one removes the name). With `origin`, the
    /// empty non-terminals between the name and the origin follow (`apex_nodata`).
    pub(crate) fn set(&mut self, name: LowerName, entry: Entry, origin: Option<&LowerName>) {
        if self.shards.is_empty() {
            self.shards = (0..SHARDS).map(|_| Arc::default()).collect();
        }
        let shard = Arc::make_mut(&mut self.shards[shard_of(&name)]);
        let had = match entry.is_empty() {
            true => shard.remove(&name),
            false => shard.insert(name.clone(), entry),
        };
        let has = shard.nodes.contains_key(&name);
        if let (Some(origin), true) = (origin, had != has) {
            self.count_below(&name, origin, has);
        }
    }

    /// Counts `name` in (or out of) each of its parents up to `origin`.
    fn count_below(&mut self, name: &LowerName, origin: &LowerName, added: bool) {
        let mut parent = name.base_name();
        while origin.zone_of(&parent) {
            let below = &mut Arc::make_mut(&mut self.shards[shard_of(&parent)]).below;
            match (added, below.get_mut(&parent)) {
                (true, Some(n)) => *n += 1,
                (true, None) => drop(below.insert(parent.clone(), 1)),
                (false, Some(n)) if *n > 1 => *n -= 1,
                (false, _) => drop(below.remove(&parent)),
            }
            if parent == *origin {
                break;
            }
            parent = parent.base_name();
        }
    }
}

impl Shard {
    /// Replaces `name`'s node; whether it had one.
    fn insert(&mut self, name: LowerName, entry: Entry) -> bool {
        let had = self.remove(&name);
        let first = u32::try_from(self.targets.len()).unwrap_or(u32::MAX);
        let mut srv = Vec::with_capacity(entry.srv.len());
        for (i, (port, target)) in entry.srv.into_iter().enumerate() {
            srv.push((port, first.saturating_add(i as u32)));
            self.targets.push(target);
        }
        self.live += srv.len();
        let node = Node {
            a: entry.a,
            aaaa: entry.aaaa,
            srv,
            ptr: Vec::new(),
        };
        self.nodes.insert(name, node);
        if self.targets.len() > 2 * self.live + 64 {
            self.compact();
        }
        had
    }

    /// Removes `name`'s node; whether it had one.
    fn remove(&mut self, name: &LowerName) -> bool {
        let Some(old) = self.nodes.remove(name) else {
            return false;
        };
        self.live -= old.srv.len();
        true
    }

    /// Drops the targets no node refers to any more.
    fn compact(&mut self) {
        let old = std::mem::take(&mut self.targets);
        for node in self.nodes.values_mut() {
            for (_, t) in &mut node.srv {
                let i = u32::try_from(self.targets.len()).unwrap_or(u32::MAX);
                self.targets.push(old[*t as usize].clone());
                *t = i;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::rr::Name;

    use super::*;

    fn name(s: &str) -> LowerName {
        LowerName::new(&Name::from_ascii(s).unwrap())
    }

    #[test]
    fn names_come_and_go_with_their_empty_non_terminals_and_targets_stay_right() {
        let origin = name("mesos.");
        let mut overlay = Overlay::default();
        let srv = |t: &str| Entry {
            srv: vec![(80, name(t))],
            ..Entry::default()
        };
        for round in 0..200 {
            overlay.set(
                name("_w._tcp.shop.mesos."),
                srv(&format!("t{round}.shop.mesos.")),
                Some(&origin),
            );
        }
        overlay.set(
            name("_v._tcp.shop.mesos."),
            srv("v.shop.mesos."),
            Some(&origin),
        );
        let found = overlay.get(&name("_w._tcp.shop.mesos.")).unwrap();
        let target = &found.targets[found.node.srv[0].1 as usize];
        assert_eq!(*target, name("t199.shop.mesos."));
        let shard = &overlay.shards[shard_of(&name("_w._tcp.shop.mesos."))];
        assert!(shard.targets.len() <= 2 * shard.live + 64);
        assert!(
            overlay
                .empty_non_terminal(&name("_tcp.shop.mesos."))
                .is_some()
        );
        overlay.set(name("_w._tcp.shop.mesos."), Entry::default(), Some(&origin));
        assert!(overlay.get(&name("_w._tcp.shop.mesos.")).is_none());
        assert!(overlay.empty_non_terminal(&name("shop.mesos.")).is_some());
        overlay.set(name("_v._tcp.shop.mesos."), Entry::default(), Some(&origin));
        for gone in ["_tcp.shop.mesos.", "shop.mesos.", "mesos."] {
            assert!(overlay.empty_non_terminal(&name(gone)).is_none(), "{gone}");
        }
    }
}

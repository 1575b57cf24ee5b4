//! Which node names have a live member, and since when a name has had none: what withdrawal
//! of a dead node's records is decided from.
//!
//! Members are identities (name, address, bump), and a node's store origin is its name, so the
//! node layer needs "is any life of this name alive?". A name without a live member starts its
//! grace period when its member goes down, or when records of a name we have never seen alive
//! arrive (for instance by sync from a peer that still holds them).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::core::identity::NodeId;
use crate::core::membership::Event;

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Presence {
    live: HashMap<SocketAddr, NodeId>,
    names: HashMap<String, usize>,
    absent_since: HashMap<String, Instant>,
}

impl Presence {
    /// Follow a membership event. Returns the name that is alive again, if any, so its records
    /// can be restored.
    pub(crate) fn on_event(&mut self, now: Instant, event: &Event) -> Option<String> {
        match event {
            Event::MemberUp(id) => {
                self.set(id, true);
                Some(id.name().to_owned())
            }
            Event::MemberDown(id) | Event::MemberLeft(id) => {
                if self.live.get(&id.addr()) == Some(id) {
                    self.set(id, false);
                }
                if !self.is_live(id.name()) {
                    self.absent_since.entry(id.name().to_owned()).or_insert(now);
                }
                None
            }
            Event::MemberRenamed { old, new } if self.live.get(&old.addr()) == Some(old) => {
                self.set(old, false);
                self.set(new, true);
                Some(new.name().to_owned())
            }
            _ => None,
        }
    }

    /// Whether some member called `name` is alive.
    pub(crate) fn is_live(&self, name: &str) -> bool {
        self.names.get(name).copied().unwrap_or(0) > 0
    }

    /// Records of `name` arrived: if no member of that name is alive, start its grace period.
    pub(crate) fn records_seen(&mut self, now: Instant, name: &str) {
        if !self.is_live(name) && !self.absent_since.contains_key(name) {
            self.absent_since.insert(name.to_owned(), now);
        }
    }

    /// Names absent for at least `grace`.
    pub(crate) fn absent_for(&self, now: Instant, grace: Duration) -> Vec<String> {
        self.absent_since
            .iter()
            .filter(|(_, since)| now.saturating_duration_since(**since) >= grace)
            .map(|(name, _)| name.clone())
            .collect()
    }

    fn set(&mut self, id: &NodeId, live: bool) {
        if live {
            if let Some(previous) = self.live.insert(id.addr(), id.clone()) {
                self.count(previous.name(), false);
            }
            self.count(id.name(), true);
            self.absent_since.remove(id.name());
        } else if self.live.remove(&id.addr()).is_some() {
            self.count(id.name(), false);
        }
    }

    fn count(&mut self, name: &str, up: bool) {
        let count = self.names.entry(name.to_owned()).or_default();
        if up {
            *count += 1;
        } else {
            *count = count.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_life_replaces_the_old() {
        let now = Instant::now();
        let addr = "127.0.0.1:1".parse().unwrap();
        let (old, new) = (NodeId::new("a", addr, 1), NodeId::new("a", addr, 2));
        let mut p = Presence::default();
        p.on_event(now, &Event::MemberUp(old.clone()));
        assert!(p.is_live("a"));
        p.on_event(now, &Event::MemberDown(old.clone()));
        assert!(!p.is_live("a"));
        assert_eq!(p.absent_for(now, Duration::ZERO), vec!["a".to_owned()]);
        p.on_event(now, &Event::MemberUp(new.clone()));
        assert!(p.is_live("a"));
        assert!(p.absent_for(now, Duration::ZERO).is_empty());
        p.on_event(now, &Event::MemberRenamed { old: new, new: old });
        assert!(p.is_live("a"));
    }
}

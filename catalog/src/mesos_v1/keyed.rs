//! An arrival-ordered collection looked up by id.
//!
//! Events name frameworks, agents and tasks by id, while the catalog lists them in a stable
//! order; this keeps both. An id may hold several entries: v0 documents can repeat a task
//! (Mesos-DNS's own fixture does), and a snapshot is taken as the master gives it.

use std::collections::{BTreeMap, HashMap};

#[derive(Clone, Debug)]
pub(super) struct Keyed<T> {
    /// Entries by arrival number: iteration order is arrival order.
    entries: BTreeMap<u64, T>,
    /// The arrival numbers of each id's entries, oldest first.
    index: HashMap<String, Vec<u64>>,
    next: u64,
}

impl<T> Default for Keyed<T> {
    fn default() -> Self {
        Self {
            entries: BTreeMap::new(),
            index: HashMap::new(),
            next: 0,
        }
    }
}

impl<T> Keyed<T> {
    /// Appends an entry, even when the id already has some.
    pub(super) fn push(&mut self, id: String, value: T) {
        self.entries.insert(self.next, value);
        self.index.entry(id).or_default().push(self.next);
        self.next += 1;
    }

    /// The first entry of `id`.
    pub(super) fn first_mut(&mut self, id: &str) -> Option<&mut T> {
        let seq = *self.index.get(id)?.first()?;
        self.entries.get_mut(&seq)
    }

    /// Calls `f` on every entry of `id`; false when there is none.
    pub(super) fn for_each_mut(&mut self, id: &str, mut f: impl FnMut(&mut T)) -> bool {
        let Some(seqs) = self.index.get(id) else {
            return false;
        };
        for seq in seqs {
            if let Some(value) = self.entries.get_mut(seq) {
                f(value);
            }
        }
        true
    }

    /// Removes every entry of `id`; false when there was none.
    pub(super) fn remove(&mut self, id: &str) -> bool {
        let Some(seqs) = self.index.remove(id) else {
            return false;
        };
        for seq in seqs {
            self.entries.remove(&seq);
        }
        true
    }

    /// Entries in arrival order.
    pub(super) fn values(&self) -> impl Iterator<Item = &T> {
        self.entries.values()
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

impl<T: Clone> Keyed<T> {
    /// Replaces every entry of `id` in place, or appends one.
    pub(super) fn upsert(&mut self, id: String, value: T) {
        if !self.for_each_mut(&id, |v| *v = value.clone()) {
            self.push(id, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_arrival_order_through_updates_and_removals() {
        let mut k = Keyed::default();
        for (id, v) in [("a", 1), ("b", 2), ("a", 3), ("c", 4)] {
            k.push(id.to_string(), v);
        }
        k.upsert("b".into(), 20);
        k.upsert("d".into(), 5);
        assert!(k.for_each_mut("a", |v| *v += 100));
        assert!(k.remove("c"));
        assert!(!k.remove("c"));
        assert_eq!(k.values().copied().collect::<Vec<_>>(), [101, 20, 103, 5]);
        assert_eq!(k.first_mut("a").copied(), Some(101));
        assert_eq!(k.len(), 4);
    }
}

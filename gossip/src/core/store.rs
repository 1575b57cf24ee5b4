//! The replicated per-origin store: for every origin, the newest payload anyone has published.
//!
//! An origin is one writer's view of some records: a node's own registrations and tasks
//! ([`Origin::Node`]), or a source several nodes poll, such as the Mesos master
//! ([`Origin::Shared`]). The payload is opaque here; the agent serialises its records into it.
//!
//! Merge is "highest [`Version`] per origin wins", which is commutative, associative and
//! idempotent, so replicas converge whatever order deltas, notices and syncs arrive in (tested
//! below with proptest). This is the CRDT-free scheme from research/gossip-dns.md §1.5: each origin
//! has one logical writer, so there is nothing to merge inside a payload. dcos-net's Lashup instead
//! multicast one whole riak_dt map for every VIP (research/dcos-net.md §3.1); here a change costs
//! one origin's payload.
//!
//! * Deletion is a newer version with an empty payload (a tombstone). Tombstones are kept for
//!   [`StoreConfig::tombstone_ttl`] and then forgotten; a replica partitioned away for longer than
//!   that could bring the deleted payload back through sync, so the TTL must exceed the longest
//!   partition we expect to heal.
//! * Withdrawal hides an origin without changing its version: the node layer withdraws a node's
//!   origin once membership has declared that node down for longer than a grace period (dcos-net
//!   never removed the records of dead agents, §3.1) and restores it when the node comes back.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::core::seal::Seal;

/// Who writes a payload.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Origin {
    /// The records a node owns (its registrations, its own tasks); named after the node. Withdrawn
    /// when the node is declared down for longer than the grace period.
    Node(String),
    /// Records several nodes may publish, e.g. a Mesos master's state polled by many agents. Never
    /// withdrawn by membership: any of its writers may still be alive.
    Shared(String),
}

/// A totally ordered version: a millisecond stamp, then a content hash as the tie-break.
///
/// Equal content gives an equal hash, so two writers of a shared origin that publish the same
/// records at the same stamp agree; different content at the same stamp is ordered by hash, the
/// same way on every node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Version {
    /// Milliseconds on the writer's wall clock, forced above the previous stamp of the origin.
    pub stamp: u64,
    /// [`content_hash`] of the payload.
    pub hash: u64,
}

/// One origin's visible state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The version of `payload`.
    pub version: Version,
    /// The origin's records, as the agent serialised them; empty for a tombstone.
    pub payload: Bytes,
}

/// Store tuning.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// How long a tombstone (an empty payload) is kept before it is forgotten. Default 24 h, the
    /// same horizon foca keeps down members for.
    pub tombstone_ttl: Duration,
}

/// What changed in the store, for the agent to rebuild its catalog view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreEvent {
    /// The origin has a new visible payload (possibly empty: its records were deleted), or came
    /// back after a withdrawal.
    OriginChanged(Origin),
    /// The origin's records are hidden: its node is gone.
    OriginWithdrawn(Origin),
}

/// The outcome of [`Store::apply`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The version was newer than ours and is now stored.
    New,
    /// We already had this version or a newer one.
    Stale,
    /// The payload does not hash to the version's hash: dropped.
    BadHash,
}

/// The replicated store. See the module docs.
#[derive(Debug)]
pub struct Store {
    config: StoreConfig,
    entries: BTreeMap<Origin, Entry>,
    withdrawn: BTreeSet<Origin>,
    events: VecDeque<StoreEvent>,
    /// Counts every change to what would be saved (versions, seals, withdrawals, forgotten
    /// tombstones), so the agent can tell whether the saved copy is stale.
    changes: u64,
}

#[derive(Debug)]
struct Entry {
    version: Version,
    payload: Bytes,
    /// Local time this version arrived, for tombstone expiry.
    since: Instant,
    /// The writer's signature, passed along to whoever we send this version to.
    seal: Option<Seal>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            tombstone_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

impl Version {
    /// The version of `payload` written at `stamp`.
    pub fn of(stamp: u64, payload: &[u8]) -> Self {
        Self {
            stamp,
            hash: content_hash(payload),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:016x}", self.stamp, self.hash)
    }
}

impl Origin {
    /// The origin's name, without its kind.
    pub fn name(&self) -> &str {
        match self {
            Self::Node(name) | Self::Shared(name) => name,
        }
    }
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Node(name) => write!(f, "node:{name}"),
            Self::Shared(name) => write!(f, "shared:{name}"),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl Store {
    /// An empty store.
    pub fn new(config: StoreConfig) -> Self {
        Self {
            config,
            entries: BTreeMap::new(),
            withdrawn: BTreeSet::new(),
            events: VecDeque::new(),
            changes: 0,
        }
    }

    /// Publish `payload` as the origin's new state, as its writer.
    ///
    /// The stamp is `max(wall_millis, previous stamp + 1)`, so a writer never goes backwards even
    /// if its clock does, as long as it has seen its previous version (after a restart, through
    /// sync; the node layer re-publishes above any newer version of its own origin it learns of).
    /// Publishing the payload the origin already has is a no-op that returns the current version,
    /// so shared-origin writers polling the same source do not churn.
    pub fn write(
        &mut self,
        now: Instant,
        wall_millis: u64,
        origin: Origin,
        payload: Bytes,
    ) -> Version {
        let previous = self.entries.get(&origin);
        if let Some(entry) = previous
            && entry.payload == payload
        {
            return entry.version;
        }
        // Saturating: a stored stamp is never more than the allowed skew ahead of the wall clock
        // (the node layer refuses the rest), but no stamp may make this overflow.
        let stamp = previous.map_or(wall_millis, |e| {
            wall_millis.max(e.version.stamp.saturating_add(1))
        });
        let version = Version::of(stamp, &payload);
        self.apply(now, origin, version, payload);
        version
    }

    /// Attach the writer's seal to the version we hold of `origin`, if it is still `version`.
    pub fn set_seal(&mut self, origin: &Origin, version: Version, seal: Seal) {
        if let Some(entry) = self.entries.get_mut(origin)
            && entry.version == version
        {
            entry.seal = Some(seal);
            self.changes += 1;
        }
    }

    /// Merge a version learned from a peer (or written locally): kept only if newer.
    pub fn apply(
        &mut self,
        now: Instant,
        origin: Origin,
        version: Version,
        payload: Bytes,
    ) -> Applied {
        self.apply_sealed(now, origin, version, payload, None)
    }

    /// [`Store::apply`] for a version with its writer's seal, which is kept to pass along. The
    /// caller has checked the seal.
    pub fn apply_sealed(
        &mut self,
        now: Instant,
        origin: Origin,
        version: Version,
        payload: Bytes,
        seal: Option<Seal>,
    ) -> Applied {
        if content_hash(&payload) != version.hash {
            return Applied::BadHash;
        }
        if self
            .entries
            .get(&origin)
            .is_some_and(|e| e.version >= version)
        {
            return Applied::Stale;
        }
        let entry = Entry {
            version,
            payload,
            since: now,
            seal,
        };
        if !self.withdrawn.contains(&origin) {
            self.events
                .push_back(StoreEvent::OriginChanged(origin.clone()));
        }
        self.entries.insert(origin, entry);
        self.changes += 1;
        Applied::New
    }

    /// The newest version we hold for `origin`, withdrawn or not.
    pub fn version(&self, origin: &Origin) -> Option<Version> {
        self.entries.get(origin).map(|e| e.version)
    }

    /// The origin's record, unless it is withdrawn or deleted.
    pub fn get(&self, origin: &Origin) -> Option<Record> {
        if self.withdrawn.contains(origin) {
            return None;
        }
        let entry = self.entries.get(origin)?;
        (!entry.payload.is_empty()).then(|| Record {
            version: entry.version,
            payload: entry.payload.clone(),
        })
    }

    /// Every visible record: not withdrawn, not deleted. Ordered by origin.
    pub fn visible(&self) -> impl Iterator<Item = (&Origin, Record)> {
        self.entries
            .iter()
            .filter(|(origin, e)| !e.payload.is_empty() && !self.withdrawn.contains(*origin))
            .map(|(origin, e)| {
                let record = Record {
                    version: e.version,
                    payload: e.payload.clone(),
                };
                (origin, record)
            })
    }

    /// Every origin we hold a version of (withdrawn and tombstones included), ordered by origin.
    /// This is what sync compares.
    pub fn digest(&self) -> impl Iterator<Item = (&Origin, Version)> {
        self.entries.iter().map(|(o, e)| (o, e.version))
    }

    /// The stored payload and version, whatever its visibility, to send to a peer.
    pub(crate) fn raw(&self, origin: &Origin) -> Option<(Version, Bytes)> {
        self.entries
            .get(origin)
            .map(|e| (e.version, e.payload.clone()))
    }

    /// The writer's seal on the version we hold of `origin`.
    pub(crate) fn seal(&self, origin: &Origin) -> Option<&Seal> {
        self.entries.get(origin).and_then(|e| e.seal.as_ref())
    }

    /// Hide an origin's records (its node is gone). Returns whether anything changed.
    pub fn withdraw(&mut self, origin: &Origin) -> bool {
        if !self.withdrawn.insert(origin.clone()) {
            return false;
        }
        self.changes += 1;
        if self
            .entries
            .get(origin)
            .is_some_and(|e| !e.payload.is_empty())
        {
            self.events
                .push_back(StoreEvent::OriginWithdrawn(origin.clone()));
        }
        true
    }

    /// Show a withdrawn origin again (its node is back). Returns whether anything changed.
    pub fn restore(&mut self, origin: &Origin) -> bool {
        if !self.withdrawn.remove(origin) {
            return false;
        }
        self.changes += 1;
        if self.entries.contains_key(origin) {
            self.events
                .push_back(StoreEvent::OriginChanged(origin.clone()));
        }
        true
    }

    /// Whether the origin is currently withdrawn.
    pub fn is_withdrawn(&self, origin: &Origin) -> bool {
        self.withdrawn.contains(origin)
    }

    /// Forget tombstones older than the TTL.
    pub fn collect_garbage(&mut self, now: Instant) {
        let ttl = self.config.tombstone_ttl;
        let before = self.entries.len();
        self.entries
            .retain(|_, e| !e.payload.is_empty() || now.saturating_duration_since(e.since) < ttl);
        self.changes += (before - self.entries.len()) as u64;
    }

    /// How many changes the store has seen: it differs from an earlier reading exactly when
    /// something a saved copy holds has changed since.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// Every origin held (withdrawn and tombstones included) with its version, payload, seal
    /// and whether it is withdrawn: what a saved copy holds.
    pub(crate) fn saved(
        &self,
    ) -> impl Iterator<Item = (&Origin, Version, &Bytes, Option<&Seal>, bool)> {
        self.entries.iter().map(|(origin, e)| {
            let withdrawn = self.withdrawn.contains(origin);
            (origin, e.version, &e.payload, e.seal.as_ref(), withdrawn)
        })
    }

    /// The next change for the agent, oldest first.
    pub fn poll_event(&mut self) -> Option<StoreEvent> {
        self.events.pop_front()
    }

    /// Number of origins held, tombstones and withdrawn ones included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the store holds no origin at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Approximate heap bytes held: payloads, origin names and per-entry overhead. For the
    /// benchmark's footprint figure and a metric.
    pub fn approx_bytes(&self) -> usize {
        // A BTreeMap entry costs about its key and value plus a share of a node (~11 per node).
        let per_entry = size_of::<Origin>() + size_of::<Entry>() + 16;
        self.entries
            .iter()
            .map(|(o, e)| per_entry + o.name().len() + e.payload.len())
            .sum()
    }
}

/// FNV-1a, 64 bit: stable across builds and platforms (std's hashers are not), and fast. It only
/// orders versions and catches corruption: the writer's seal signs the payload itself, so a
/// collision buys an attacker nothing.
pub fn content_hash(payload: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in payload {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn node(name: &str) -> Origin {
        Origin::Node(name.to_owned())
    }

    #[test]
    fn writer_never_goes_backwards() {
        let now = Instant::now();
        let mut store = Store::new(StoreConfig::default());
        let v1 = store.write(now, 1000, node("a"), Bytes::from_static(b"x"));
        // The clock went back: the stamp still moves forward.
        let v2 = store.write(now, 10, node("a"), Bytes::from_static(b"y"));
        assert!(v2 > v1);
        assert_eq!(v2.stamp, 1001);
        // Same content: no new version.
        assert_eq!(
            store.write(now, 5000, node("a"), Bytes::from_static(b"y")),
            v2
        );
    }

    #[test]
    fn delete_is_a_tombstone_then_forgotten() {
        let now = Instant::now();
        let mut store = Store::new(StoreConfig {
            tombstone_ttl: Duration::from_secs(10),
        });
        store.write(now, 1, node("a"), Bytes::from_static(b"x"));
        store.write(now, 2, node("a"), Bytes::new());
        assert!(store.get(&node("a")).is_none());
        assert_eq!(store.len(), 1);
        store.collect_garbage(now + Duration::from_secs(11));
        assert!(store.is_empty());
    }

    #[test]
    fn withdraw_hides_and_restore_shows() {
        let now = Instant::now();
        let mut store = Store::new(StoreConfig::default());
        store.write(now, 1, node("a"), Bytes::from_static(b"x"));
        while store.poll_event().is_some() {}
        assert!(store.withdraw(&node("a")));
        assert_eq!(
            store.poll_event(),
            Some(StoreEvent::OriginWithdrawn(node("a")))
        );
        assert!(store.get(&node("a")).is_none());
        // Newer versions of a withdrawn origin are stored but stay hidden.
        let v = Version::of(2, b"y");
        assert_eq!(
            store.apply(now, node("a"), v, Bytes::from_static(b"y")),
            Applied::New
        );
        assert!(store.get(&node("a")).is_none());
        assert!(store.restore(&node("a")));
        assert_eq!(store.get(&node("a")).unwrap().version, v);
    }

    #[test]
    fn a_stamp_at_the_end_of_time_does_not_overflow() {
        let now = Instant::now();
        let mut store = Store::new(StoreConfig::default());
        let max = Version::of(u64::MAX, b"");
        store.apply(now, node("a"), max, Bytes::new());
        // The node layer refuses such a stamp from a peer; here only: no panic, no wrap.
        let v = store.write(now, 10, node("a"), Bytes::from_static(b"x"));
        assert_eq!(v.stamp, u64::MAX);
    }

    #[test]
    fn bad_hash_is_rejected() {
        let mut store = Store::new(StoreConfig::default());
        let v = Version::of(1, b"x");
        let got = store.apply(Instant::now(), node("a"), v, Bytes::from_static(b"z"));
        assert_eq!(got, Applied::BadHash);
    }

    type Write = (u8, u64, Vec<u8>);

    fn contents(store: &Store) -> Vec<(Origin, Version, Bytes)> {
        store
            .digest()
            .map(|(o, v)| (o.clone(), v, store.raw(o).unwrap().1))
            .collect()
    }

    fn apply_all(writes: &[Write]) -> Store {
        let now = Instant::now();
        let mut store = Store::new(StoreConfig::default());
        for (origin, stamp, payload) in writes {
            let version = Version::of(*stamp, payload);
            let origin = Origin::Shared(format!("o{}", origin % 4));
            store.apply(now, origin, version, Bytes::from(payload.clone()));
        }
        store
    }

    proptest! {
        /// Any order, any duplication: the same final state (highest version per origin).
        #[test]
        fn merge_is_order_independent_and_idempotent(
            writes in proptest::collection::vec(
                (any::<u8>(), 0u64..8, proptest::collection::vec(any::<u8>(), 0..4)),
                0..40,
            ),
            seed in any::<u64>(),
        ) {
            let forward = apply_all(&writes);
            let mut shuffled = writes.clone();
            // A cheap deterministic shuffle from the seed.
            let mut state = seed | 1;
            for i in (1..shuffled.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                shuffled.swap(i, (state % (i as u64 + 1)) as usize);
            }
            shuffled.extend(writes.iter().cloned());
            let backward = apply_all(&shuffled);
            prop_assert_eq!(contents(&forward), contents(&backward));
        }
    }
}

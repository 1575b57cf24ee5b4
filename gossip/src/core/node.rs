//! A cluster node: membership, the replicated store, broadcasts and sync, behind one sans-IO API.
//!
//! The transport (QUIC) drives a [`Node`] like a quinn-proto connection: it passes datagrams to
//! [`Node::handle_datagram`], calls [`Node::handle_timeout`] when [`Node::poll_timeout`] says so,
//! and sends whatever [`Node::poll_transmit`] yields. Sync needs a reliable stream:
//! [`Node::poll_sync`] names a peer and the request to send on a new bi-directional stream; the
//! responder answers with [`Node::handle_sync_request`], the requester applies the answer with
//! [`Node::handle_sync_response`], which may return a push for the responder's
//! [`Node::handle_sync_push`]. The agent publishes its records with [`Node::publish`] and rebuilds
//! its catalog from [`Node::records`] when [`Node::poll_event`] reports an origin change.
//!
//! Every version is sealed by its writer and checked by every receiver ([`crate::core::trust`]):
//! give the node its [`Keys`] at [`Node::new`] and the wall clock with [`Node::set_wall_clock`].
//!
//! Withdrawal: when membership has no live member with a node's name for
//! [`NodeConfig::withdraw_after`], that node's origin is hidden; it comes back as soon as a member
//! with that name is up again.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use foca::Member;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use crate::core::broadcast::{Handler, Shared, encode_certificate, encode_item, lock};
use crate::core::identity::NodeId;
use crate::core::membership::{
    Event, Liveness, MemberState, Membership, MembershipConfig, Transmit,
};
use crate::core::presence::Presence;
use crate::core::saved::{Restored, Restoring, SavedRecord, Snapshot};
use crate::core::store::{Origin, Record, Store, StoreConfig, StoreEvent, Version};
use crate::core::sync::{self, NO_VERSION, SyncKind};
use crate::core::trust::{Keys, Rejections, Trust};
use crate::error::Error;
use crate::wire::{self, SignedRecord, SyncBody, SyncRequest, SyncResponse};

/// Node tuning; the default is tuned for a LAN cluster of up to a few thousand nodes.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The cluster id carried by every message; messages for another cluster are refused.
    /// Derive it from a cluster name with [`cluster_id`].
    pub cluster: u64,
    /// SWIM tuning.
    pub membership: MembershipConfig,
    /// Store tuning.
    pub store: StoreConfig,
    /// Payloads up to this size are broadcast whole; larger ones as a version notice that peers
    /// answer with a pull. Default 768 bytes, which leaves room for the SWIM header and updates in
    /// a 1178-byte datagram.
    pub inline_payload_limit: usize,
    /// How often pending broadcasts are pushed to a few members beyond piggybacking. Default 50 ms.
    pub broadcast_interval: Duration,
    /// How often we re-announce the versions of the origins we write. Default 5 s (foca's example).
    pub heartbeat_interval: Duration,
    /// The periodic full sync interval at up to 32 nodes; scaled up with log2 N above. Default 10 s.
    pub sync_interval: Duration,
    /// How long a sync may stay unanswered before we try that peer again. Default 10 s.
    pub sync_timeout: Duration,
    /// Full syncs and pulls in flight at once. Default 4.
    pub max_syncs_in_flight: usize,
    /// The grace period before a down node's records are withdrawn. Default 30 s.
    pub withdraw_after: Duration,
    /// How far ahead of our wall clock a peer's stamp may be; a version stamped later is
    /// refused, so nobody can lock an origin by stamping it in the far future. Default 60 s.
    pub max_clock_skew: Duration,
    /// How often we try a full sync with a random member we believe down. After a partition
    /// heals, this is how the two sides find each other again (each tells the other it was
    /// declared down; both rejoin under new identities). foca's own announce to down members
    /// does the same every 65 s. Default 15 s.
    pub reconnect_interval: Duration,
}

/// A sync to start: open a bi-directional stream to `to` and send `request`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct SyncOpen {
    /// The peer.
    pub to: NodeId,
    /// What kind of exchange it is (for metrics and logs).
    pub kind: SyncKind,
    /// The bytes of the request.
    pub request: Vec<u8>,
}

/// Counters for metrics.
#[derive(Debug, Clone, Default)]
pub struct NodeStats {
    /// Syncs started, by kind: full, pull, suspect.
    pub syncs: [u64; 3],
    /// Records that arrived by sync and were new.
    pub records_from_sync: u64,
    /// Records refused because the payload did not match its version.
    pub rejected_records: u64,
}

/// One node of the cluster. See the module docs.
pub struct Node {
    config: NodeConfig,
    membership: Membership,
    shared: Arc<Mutex<Shared>>,
    rng: Xoshiro256PlusPlus,
    events: VecDeque<Event>,
    own: BTreeMap<Origin, Bytes>,
    next_heartbeat: Instant,
    next_broadcast: Option<Instant>,
    next_sync: Instant,
    next_reconnect: Instant,
    next_maintenance: Instant,
    next_gc: Instant,
    syncs: VecDeque<SyncOpen>,
    /// Full syncs and pulls we started: peer → (since, kind).
    in_flight: HashMap<SocketAddr, (Instant, SyncKind)>,
    /// Origins being pulled, from which peer, since when.
    pulling: HashMap<Origin, (SocketAddr, Instant)>,
    /// Pulls that could not start (the origin already being pulled, or the peer busy), retried
    /// after every input until they start or our version catches up. Without this a version
    /// notice that arrives during a pull is lost until the next heartbeat or sync: seconds.
    deferred: HashMap<Origin, (NodeId, Version)>,
    last_hint: HashMap<SocketAddr, Instant>,
    presence: Presence,
    stats: NodeStats,
    /// Set by [`Node::restore`] until a peer has synced with us.
    restoring: Option<Restoring>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            cluster: 0,
            membership: MembershipConfig::default(),
            store: StoreConfig::default(),
            inline_payload_limit: 768,
            broadcast_interval: Duration::from_millis(50),
            heartbeat_interval: Duration::from_secs(5),
            sync_interval: Duration::from_secs(10),
            sync_timeout: Duration::from_secs(10),
            max_syncs_in_flight: 4,
            withdraw_after: Duration::from_secs(30),
            reconnect_interval: Duration::from_secs(15),
            max_clock_skew: Duration::from_secs(60),
        }
    }
}

/// A cluster id from a cluster name (FNV-1a of the name; stable across builds).
pub fn cluster_id(name: &str) -> u64 {
    crate::core::store::content_hash(name.as_bytes())
}

impl Node {
    /// A node with identity `id`, alone until [`Node::join`]. `seed` seeds every random choice;
    /// `keys` sign what it writes and check what others wrote. Its certificate is broadcast
    /// once, so peers can check its seals.
    pub fn new(
        config: NodeConfig,
        id: NodeId,
        seed: u64,
        now: Instant,
        keys: Arc<dyn Keys>,
    ) -> Self {
        let skew = u64::try_from(config.max_clock_skew.as_millis()).unwrap_or(u64::MAX);
        let trust = Trust::new(keys, config.cluster, skew, now);
        let shared = Arc::new(Mutex::new(Shared {
            store: Store::new(config.store.clone()),
            trust,
            now,
            pulls: Vec::new(),
            behind: Vec::new(),
        }));
        let membership = Membership::new(
            id,
            config.membership.clone(),
            config.cluster,
            seed,
            Handler::new(shared.clone()),
        );
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
        let next_heartbeat = now + jitter(&mut rng, config.heartbeat_interval);
        let next_sync = now + jitter(&mut rng, config.sync_interval);
        let next_reconnect = now + jitter(&mut rng, config.reconnect_interval);
        Self {
            membership,
            shared,
            rng,
            events: VecDeque::new(),
            own: BTreeMap::new(),
            next_heartbeat,
            next_broadcast: None,
            next_sync,
            next_reconnect,
            next_maintenance: now + Duration::from_secs(1),
            next_gc: now + Duration::from_secs(60),
            syncs: VecDeque::new(),
            in_flight: HashMap::new(),
            pulling: HashMap::new(),
            deferred: HashMap::new(),
            last_hint: HashMap::new(),
            presence: Presence::default(),
            stats: NodeStats::default(),
            restoring: None,
            config,
        }
    }

    /// Tell the node the wall clock (milliseconds since the Unix epoch) at `now`; it
    /// extrapolates from there, to refuse stamps too far ahead of it. Call it at start and now
    /// and then (the driver does on every timer), so clock adjustments are followed.
    pub fn set_wall_clock(&mut self, now: Instant, wall_millis: u64) {
        lock(&self.shared).trust.set_wall_clock(now, wall_millis);
    }

    /// Replace the node's deny list: every member named in `names` is declared down here, its
    /// origin withdrawn at once (as a dead node's is after the grace period), its certificates'
    /// seals refused, and it is kept down if it comes back. A name taken off the list is served
    /// again as soon as a member of that name is up. Our own name is ignored: a node never
    /// refuses itself.
    pub fn set_revoked(&mut self, now: Instant, names: BTreeSet<String>) {
        self.set_now(now);
        let own = self.id().name().to_owned();
        let names: BTreeSet<String> = names.into_iter().filter(|n| *n != own).collect();
        {
            let mut shared = lock(&self.shared);
            for name in shared
                .trust
                .revoked()
                .difference(&names)
                .cloned()
                .collect::<Vec<_>>()
            {
                if self.presence.is_live(&name) {
                    shared.store.restore(&Origin::Node(name));
                }
            }
            for name in &names {
                shared.store.withdraw(&Origin::Node(name.clone()));
            }
            shared.trust.set_revoked(names.clone());
        }
        let down = (self.membership.members())
            .filter(|m| names.contains(m.name()))
            .cloned()
            .collect();
        self.membership.declare_down(now, down);
        self.after(now);
    }

    /// Sign with `keys` from now on: a rotated certificate and key. A new certificate is
    /// broadcast, so peers can check the new seals without asking for it.
    pub fn set_keys(&mut self, now: Instant, keys: Arc<dyn Keys>) {
        self.set_now(now);
        if lock(&self.shared).trust.set_keys(now, keys) {
            self.announce_certificate();
        }
        self.after(now);
    }

    /// Versions this node refused, by reason.
    pub fn rejections(&self) -> Rejections {
        lock(&self.shared).trust.rejections.clone()
    }

    /// Our current identity.
    pub fn id(&self) -> &NodeId {
        self.membership.id()
    }

    /// Ask `seed` to let us in. For a seed known only by address use [`NodeId::seed`].
    pub fn join(&mut self, now: Instant, seed: NodeId) {
        self.set_now(now);
        self.membership.announce(now, seed);
        self.after(now);
    }

    /// Learn `members` as alive without broadcasting them: for restoring a member list saved
    /// before a restart (probing corrects anything stale within seconds), and for seeding large
    /// simulated clusters.
    pub fn restore_members(&mut self, now: Instant, members: Vec<NodeId>) {
        self.set_now(now);
        let members = members.into_iter().map(Member::alive).collect();
        self.membership.restore_members(now, members);
        self.announce_certificate();
        self.after(now);
    }

    /// Leave the cluster gracefully.
    pub fn leave(&mut self, now: Instant) {
        self.set_now(now);
        self.membership.leave(now);
        self.after(now);
    }

    /// Publish `payload` as `origin`'s records and start spreading it. `wall_millis` is the wall
    /// clock in milliseconds since the Unix epoch (see [`Store::write`] for why).
    pub fn publish(
        &mut self,
        now: Instant,
        wall_millis: u64,
        origin: Origin,
        payload: Bytes,
    ) -> Version {
        self.set_now(now);
        let (version, seal) = {
            let mut shared = lock(&self.shared);
            let shared = &mut *shared;
            let version = shared
                .store
                .write(now, wall_millis, origin.clone(), payload.clone());
            let seal = match shared.store.seal(&origin) {
                Some(seal) => seal.clone(),
                None => {
                    let seal = shared.trust.seal(&origin, version, &payload);
                    shared.store.set_seal(&origin, version, seal.clone());
                    seal
                }
            };
            (version, seal)
        };
        let inline = payload.len() <= self.config.inline_payload_limit;
        let item = encode_item(&origin, version, inline.then_some((&payload, &seal)));
        self.membership.add_broadcast(&item);
        self.own.insert(origin, payload);
        self.after(now);
        version
    }

    /// Delete `origin`'s records: publish an empty payload (a tombstone).
    pub fn delete(&mut self, now: Instant, wall_millis: u64, origin: Origin) -> Version {
        self.publish(now, wall_millis, origin, Bytes::new())
    }

    /// The visible record of `origin`.
    pub fn record(&self, origin: &Origin) -> Option<Record> {
        lock(&self.shared).store.get(origin)
    }

    /// The version we hold for `origin`, visible or not.
    pub fn version(&self, origin: &Origin) -> Option<Version> {
        lock(&self.shared).store.version(origin)
    }

    /// Every visible record, ordered by origin: what the agent builds its catalog from.
    pub fn records(&self) -> Vec<(Origin, Record)> {
        let shared = lock(&self.shared);
        shared
            .store
            .visible()
            .map(|(o, r)| (o.clone(), r))
            .collect()
    }

    /// Approximate heap bytes held by the store.
    pub fn store_bytes(&self) -> usize {
        lock(&self.shared).store.approx_bytes()
    }

    /// How many changes the store has seen; a saved copy taken at an equal count is current.
    pub fn store_changes(&self) -> u64 {
        lock(&self.shared).store.changes()
    }

    /// A copy of the store to keep on disk, taken at `wall_millis` (or, while only a restored
    /// copy is served, stamped as old as that copy): every origin's version,
    /// payload, seal and withdrawal, and the certificates of the seals. Cheap: payloads are
    /// shared, not copied; encoding it ([`Snapshot::encode`]) is the caller's work.
    pub fn snapshot(&self, wall_millis: u64) -> Snapshot {
        let shared = lock(&self.shared);
        let mut certs = BTreeSet::new();
        let records = (shared.store.saved())
            .map(|(origin, version, payload, seal, withdrawn)| {
                certs.extend(seal.map(|s| s.cert));
                SavedRecord {
                    origin: origin.clone(),
                    version,
                    payload: payload.clone(),
                    seal: seal.cloned(),
                    withdrawn,
                }
            })
            .collect();
        let certs = (certs.iter())
            .filter_map(|id| shared.trust.certificate(id))
            .collect();
        // While we only know what we restored, the copy is as old as that view of the cluster.
        let saved_at = self.restoring.as_ref().map_or(wall_millis, |r| r.saved_at);
        Snapshot {
            saved_at,
            cluster: self.config.cluster,
            records,
            certs,
        }
    }

    /// Takes back a copy saved by [`Node::snapshot`] in an earlier life, before joining, with
    /// `wall_millis` the wall clock now. Every entry is checked as a peer's record would be
    /// and merged the same way (highest version wins); see [`crate::core::saved`]. Call
    /// [`Node::set_revoked`] first, so the deny list holds for it too.
    ///
    /// The restored records are served at once. Until a peer has synced with us,
    /// [`Node::restored_at`] says when they were saved, and the restored nodes' records are not
    /// withdrawn for their absence: alone, we cannot tell a dead node from our own isolation.
    pub fn restore(&mut self, now: Instant, wall_millis: u64, snapshot: Snapshot) -> Restored {
        self.set_now(now);
        let saved_at = snapshot.saved_at;
        if snapshot.cluster != self.config.cluster {
            let refused = snapshot.records.len();
            return Restored {
                kept: 0,
                refused,
                saved_at,
            };
        }
        let own = self.id().name().to_owned();
        let (withdrawn, records): (BTreeSet<Origin>, Vec<SignedRecord>) = {
            let mut withdrawn = BTreeSet::new();
            let records = (snapshot.records.into_iter())
                .map(|r| {
                    if r.withdrawn {
                        withdrawn.insert(r.origin.clone());
                    }
                    SignedRecord {
                        origin: r.origin,
                        version: r.version,
                        payload: r.payload,
                        seal: r.seal,
                    }
                })
                .collect();
            (withdrawn, records)
        };
        let (new, refused) = {
            let mut shared = lock(&self.shared);
            let shared = &mut *shared;
            shared.trust.set_wall_clock(now, wall_millis);
            let (store, trust) = (&mut shared.store, &mut shared.trust);
            let (new, refused) = sync::apply_records(store, trust, now, records, &snapshot.certs);
            for record in new.iter().filter(|r| withdrawn.contains(&r.origin)) {
                shared.store.withdraw(&record.origin);
            }
            while let Some(event) = shared.store.poll_event() {
                self.events.push_back(match event {
                    StoreEvent::OriginChanged(o) => Event::OriginChanged(o),
                    StoreEvent::OriginWithdrawn(o) => Event::OriginWithdrawn(o),
                });
            }
            (new, refused)
        };
        let names = (new.iter())
            .filter(|r| !withdrawn.contains(&r.origin))
            .filter_map(|r| match &r.origin {
                Origin::Node(name) if *name != own => Some(name.clone()),
                _ => None,
            })
            .collect();
        if !new.is_empty() {
            self.restoring = Some(Restoring { saved_at, names });
        }
        self.after(now);
        Restored {
            kept: new.len(),
            refused,
            saved_at,
        }
    }

    /// While the node serves what [`Node::restore`] brought back and no peer has synced with
    /// it yet: when that copy was saved (ms since the Unix epoch).
    pub fn restored_at(&self) -> Option<u64> {
        self.restoring.as_ref().map(|r| r.saved_at)
    }

    /// A peer has synced with us: what we serve is no longer only what we restored, and the
    /// restored nodes that are not alive start their grace period.
    fn heard_from_peer(&mut self, now: Instant) {
        if let Some(restoring) = self.restoring.take() {
            for name in restoring.names {
                self.presence.records_seen(now, &name);
            }
        }
    }

    /// The live members, ourselves excluded.
    pub fn members(&self) -> Vec<NodeId> {
        self.membership.members().cloned().collect()
    }

    /// Every member we know, down ones included, for `/v1/nodes`.
    pub fn member_states(&self) -> Vec<MemberState> {
        self.membership.member_states()
    }

    /// The local health score (0 = healthy): see [`crate::core::health`].
    pub fn local_health(&self) -> u8 {
        self.membership.local_health()
    }

    /// Counters.
    pub fn stats(&self) -> &NodeStats {
        &self.stats
    }

    /// Handle one datagram.
    pub fn handle_datagram(&mut self, now: Instant, bytes: &[u8]) -> Result<(), Error> {
        self.set_now(now);
        let result = self.membership.handle_datagram(now, bytes);
        self.after(now);
        result
    }

    /// Fire the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.set_now(now);
        self.membership.handle_timeout(now);
        if self.next_broadcast.is_some_and(|at| at <= now) {
            self.membership.broadcast(now);
            self.next_broadcast = None;
        }
        if self.next_heartbeat <= now {
            self.next_heartbeat = now + jitter(&mut self.rng, self.config.heartbeat_interval);
            let versions: Vec<_> = {
                let shared = lock(&self.shared);
                self.own
                    .keys()
                    .filter_map(|o| shared.store.version(o).map(|v| (o.clone(), v)))
                    .collect()
            };
            for (origin, version) in versions {
                self.membership
                    .add_broadcast(&encode_item(&origin, version, None));
            }
        }
        if self.next_sync <= now {
            let n = self.membership.num_members() + 1;
            let interval = sync::sync_interval(self.config.sync_interval, n);
            self.next_sync = now + jitter(&mut self.rng, interval);
            if let Some(peer) = self.random_member() {
                self.start_full_sync(now, peer);
            }
        }
        if self.next_reconnect <= now {
            self.next_reconnect = now + jitter(&mut self.rng, self.config.reconnect_interval);
            let down: Vec<NodeId> = self
                .membership
                .member_states()
                .into_iter()
                .filter(|m| m.state == Liveness::Down)
                .map(|m| m.id)
                .collect();
            if !down.is_empty() {
                let pick = down[self.rng.random_range(0..down.len())].clone();
                self.start_full_sync(now, pick);
            }
        }
        if self.next_maintenance <= now {
            self.next_maintenance = now + Duration::from_secs(1);
            self.maintain(now);
        }
        if self.next_gc <= now {
            self.next_gc = now + Duration::from_secs(60);
            lock(&self.shared).store.collect_garbage(now);
        }
        self.after(now);
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.membership.poll_transmit()
    }

    /// When [`Node::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let own = [
            Some(self.next_heartbeat),
            self.next_broadcast,
            Some(self.next_sync),
            Some(self.next_reconnect),
            Some(self.next_maintenance),
            Some(self.next_gc),
        ];
        own.into_iter()
            .chain([self.membership.poll_timeout()])
            .flatten()
            .min()
    }

    /// The next event for the agent.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next sync to start.
    pub fn poll_sync(&mut self) -> Option<SyncOpen> {
        self.syncs.pop_front()
    }

    /// Answer a sync request that arrived on a stream.
    pub fn handle_sync_request(&mut self, now: Instant, bytes: &[u8]) -> Result<Vec<u8>, Error> {
        self.set_now(now);
        let SyncBody::Request(request) = wire::decode_sync(self.config.cluster, bytes)? else {
            return Err(Error::UnexpectedSyncMessage { wanted: "request" });
        };
        let members = match request.kind {
            SyncKind::Full => {
                let (for_them, for_us) = self.membership.diff_members(&request.members);
                self.membership.apply_members(now, for_us);
                for_them
            }
            SyncKind::Pull => Vec::new(),
            SyncKind::Suspect => {
                // Applying the suspicion makes foca refute it: our incarnation goes up.
                self.membership.apply_members(now, request.members.clone());
                vec![self.membership.own_member()]
            }
        };
        let response = {
            let shared = lock(&self.shared);
            let (records, wanted) = sync::answer(&shared.store, &request);
            // A full digest with nothing newer than ours: we are as current as that peer.
            let current = request.kind == SyncKind::Full && wanted.is_empty();
            let known = (request.kind == SyncKind::Full).then_some(&request.certs[..]);
            let certs = sync::certificates_for(&shared.trust, &records, known);
            let response = SyncResponse {
                records,
                wanted,
                members,
                certs,
            };
            (response, current)
        };
        let (response, current) = response;
        if current {
            self.heard_from_peer(now);
        }
        self.after(now);
        Ok(wire::encode_sync(
            self.config.cluster,
            SyncBody::Response(response),
        ))
    }

    /// Apply the answer to a sync we started with `from`. Returns the push to send back on the
    /// same stream, if the peer wants records from us.
    pub fn handle_sync_response(
        &mut self,
        now: Instant,
        from: &NodeId,
        bytes: &[u8],
    ) -> Result<Option<Vec<u8>>, Error> {
        self.set_now(now);
        let kind = self.sync_ended(from);
        let SyncBody::Response(response) = wire::decode_sync(self.config.cluster, bytes)? else {
            return Err(Error::UnexpectedSyncMessage { wanted: "response" });
        };
        self.membership.apply_members(now, response.members.clone());
        let push = (!response.wanted.is_empty()).then(|| {
            let shared = lock(&self.shared);
            sync::push_for(&shared.store, &shared.trust, &response)
        });
        let new = self.apply_sync_records(now, response.records, &response.certs);
        if kind == Some(SyncKind::Full) {
            self.heard_from_peer(now);
        }
        if kind == Some(SyncKind::Pull) {
            // A pull answers a notice: we now hold the data, so we spread it (whole if small,
            // else as our own notice, which we can serve). This keeps large payloads epidemic.
            for record in new {
                let inline = record.payload.len() <= self.config.inline_payload_limit;
                let whole = record.seal.as_ref().filter(|_| inline);
                let item = encode_item(
                    &record.origin,
                    record.version,
                    whole.map(|seal| (&record.payload, seal)),
                );
                self.membership.add_broadcast(&item);
            }
        }
        self.after(now);
        Ok(push.map(|p| wire::encode_sync(self.config.cluster, SyncBody::Push(p))))
    }

    /// Apply the push that ends a sync we answered.
    pub fn handle_sync_push(&mut self, now: Instant, bytes: &[u8]) -> Result<(), Error> {
        self.set_now(now);
        let SyncBody::Push(push) = wire::decode_sync(self.config.cluster, bytes)? else {
            return Err(Error::UnexpectedSyncMessage { wanted: "push" });
        };
        self.apply_sync_records(now, push.records, &push.certs);
        self.heard_from_peer(now);
        self.after(now);
        Ok(())
    }

    /// The transport could not complete a sync with `peer` (unreachable, stream reset).
    pub fn handle_sync_failed(&mut self, peer: &NodeId) {
        let _ = self.sync_ended(peer);
    }

    /// Forget a sync with `peer`; returns its kind if we started one.
    fn sync_ended(&mut self, peer: &NodeId) -> Option<SyncKind> {
        let addr = peer.addr();
        self.pulling.retain(|_, (from, _)| *from != addr);
        self.in_flight.remove(&addr).map(|(_, kind)| kind)
    }

    fn set_now(&self, now: Instant) {
        lock(&self.shared).now = now;
    }

    fn apply_sync_records(
        &mut self,
        now: Instant,
        records: Vec<SignedRecord>,
        certs: &[Bytes],
    ) -> Vec<SignedRecord> {
        let (new, bad) = {
            let mut shared = lock(&self.shared);
            let shared = &mut *shared;
            sync::apply_records(&mut shared.store, &mut shared.trust, now, records, certs)
        };
        self.stats.records_from_sync += new.len() as u64;
        self.stats.rejected_records += bad as u64;
        new
    }

    /// Bookkeeping after every entry point: membership events, store events, pulls and hints.
    fn after(&mut self, now: Instant) {
        loop {
            let mut revoked = Vec::new();
            while let Some(event) = self.membership.poll_event() {
                revoked.extend(self.revoked_member(&event));
                self.on_member_event(now, &event);
                self.events.push_back(event);
            }
            if revoked.is_empty() {
                break;
            }
            self.membership.declare_down(now, revoked);
        }
        while let Some(suspect) = self.membership.poll_suspected() {
            self.start_suspect_sync(suspect);
        }
        let (store_events, pulls, behind) = {
            let mut shared = lock(&self.shared);
            let mut events = Vec::new();
            while let Some(e) = shared.store.poll_event() {
                events.push(e);
            }
            (
                events,
                std::mem::take(&mut shared.pulls),
                std::mem::take(&mut shared.behind),
            )
        };
        for event in store_events {
            self.on_store_event(now, event);
        }
        self.start_pulls(now, pulls);
        for peer in behind {
            let recent = self
                .last_hint
                .get(&peer.addr())
                .is_some_and(|t| now < *t + self.config.heartbeat_interval);
            if !recent {
                self.last_hint.insert(peer.addr(), now);
                self.start_full_sync(now, peer);
            }
        }
        if self.next_broadcast.is_none() && self.membership.has_broadcasts() {
            self.next_broadcast = Some(now + self.config.broadcast_interval);
        }
    }

    /// A revoked node's member that came up (it rejoined, or a peer that has not revoked it
    /// yet told us about it): it must be declared down again.
    fn revoked_member(&self, event: &Event) -> Option<NodeId> {
        let (Event::MemberUp(id) | Event::MemberRenamed { new: id, .. }) = event else {
            return None;
        };
        lock(&self.shared)
            .trust
            .is_revoked(id.name())
            .then(|| id.clone())
    }

    fn on_member_event(&mut self, now: Instant, event: &Event) {
        if let Some(name) = self.presence.on_event(now, event) {
            let mut shared = lock(&self.shared);
            if !shared.trust.is_revoked(&name) {
                shared.store.restore(&Origin::Node(name));
            }
        }
        if *event == Event::Joined {
            self.announce_certificate();
            if let Some(peer) = self.random_member() {
                self.start_full_sync(now, peer);
            }
        }
    }

    fn on_store_event(&mut self, now: Instant, event: StoreEvent) {
        if let StoreEvent::OriginChanged(origin @ Origin::Node(name)) = &event {
            if name == self.id().name() {
                self.defend_own(now, origin);
            } else {
                self.presence.records_seen(now, name);
            }
        }
        self.events.push_back(match event {
            StoreEvent::OriginChanged(o) => Event::OriginChanged(o),
            StoreEvent::OriginWithdrawn(o) => Event::OriginWithdrawn(o),
        });
    }

    /// A newer version of our own node origin arrived that is not what we published (a previous
    /// life of this node, with a clock ahead of ours): publish ours again above it, so our
    /// versions never go backwards.
    fn defend_own(&mut self, now: Instant, origin: &Origin) {
        let Some(ours) = self.own.get(origin).cloned() else {
            return;
        };
        let stored = lock(&self.shared).store.raw(origin);
        if stored.is_some_and(|(_, payload)| payload != ours) {
            self.publish(now, 0, origin.clone(), ours);
        }
    }

    /// Broadcast our certificate, so peers can check our seals without asking for it. Done on
    /// joining (a broadcast queued before that does not get out in time).
    fn announce_certificate(&mut self) {
        let (_, certificate) = lock(&self.shared).trust.own_certificate();
        self.membership
            .add_broadcast(&encode_certificate(&certificate));
    }

    fn maintain(&mut self, now: Instant) {
        let grace = self.config.withdraw_after;
        let due = self.presence.absent_for(now, grace);
        {
            let mut shared = lock(&self.shared);
            for name in due {
                shared.store.withdraw(&Origin::Node(name));
            }
        }
        let timeout = self.config.sync_timeout;
        self.in_flight
            .retain(|_, (since, _)| now < *since + timeout);
        self.pulling.retain(|_, (_, since)| now < *since + timeout);
        self.last_hint.retain(|_, since| now < *since + timeout);
    }

    fn random_member(&mut self) -> Option<NodeId> {
        let n = self.membership.num_members();
        if n == 0 {
            return None;
        }
        let pick = self.rng.random_range(0..n);
        self.membership.members().nth(pick).cloned()
    }

    fn can_start(&self, peer: &NodeId) -> bool {
        !self.in_flight.contains_key(&peer.addr())
            && self.in_flight.len() < self.config.max_syncs_in_flight
    }

    fn start_full_sync(&mut self, now: Instant, peer: NodeId) {
        if !self.can_start(&peer) {
            return;
        }
        let (digest, certs) = {
            let shared = lock(&self.shared);
            (sync::full_digest(&shared.store), shared.trust.known())
        };
        let request = SyncRequest {
            from: self.id().clone(),
            kind: SyncKind::Full,
            digest,
            certs,
            members: self.membership.membership_state(),
        };
        self.queue_sync(now, peer, request);
    }

    fn start_pulls(&mut self, now: Instant, pulls: Vec<(NodeId, Origin, Version)>) {
        let deferred = self.deferred.drain().map(|(o, (peer, v))| (peer, o, v));
        let pulls: Vec<_> = deferred.chain(pulls).collect();
        // Per peer: origin, the version we have, the version announced.
        let mut by_peer: BTreeMap<NodeId, Vec<(Origin, Version, Version)>> = BTreeMap::new();
        for (peer, origin, version) in pulls {
            let ours = lock(&self.shared).store.version(&origin);
            if ours >= Some(version) {
                continue;
            }
            if self.pulling.contains_key(&origin) {
                self.defer(peer, origin, version);
                continue;
            }
            let wanted = by_peer.entry(peer).or_default();
            match wanted.iter_mut().find(|(o, _, _)| *o == origin) {
                Some((_, _, v)) => *v = (*v).max(version),
                None => wanted.push((origin, ours.unwrap_or(NO_VERSION), version)),
            }
        }
        for (peer, wanted) in by_peer {
            if !self.can_start(&peer) {
                for (origin, _, version) in wanted {
                    self.defer(peer.clone(), origin, version);
                }
                continue;
            }
            for (origin, _, _) in &wanted {
                self.pulling.insert(origin.clone(), (peer.addr(), now));
            }
            let request = SyncRequest {
                from: self.id().clone(),
                kind: SyncKind::Pull,
                digest: wanted.into_iter().map(|(o, ours, _)| (o, ours)).collect(),
                certs: Vec::new(),
                members: Vec::new(),
            };
            self.queue_sync(now, peer, request);
        }
    }

    /// Remembers a pull of `origin` at `version` from `peer` for later, keeping the newest.
    fn defer(&mut self, peer: NodeId, origin: Origin, version: Version) {
        match self.deferred.get(&origin) {
            Some((_, v)) if *v >= version => {}
            _ => {
                self.deferred.insert(origin, (peer, version));
            }
        }
    }

    fn start_suspect_sync(&mut self, suspect: Member<NodeId>) {
        let request = SyncRequest {
            from: self.id().clone(),
            kind: SyncKind::Suspect,
            digest: Vec::new(),
            certs: Vec::new(),
            members: vec![suspect.clone()],
        };
        self.stats.syncs[2] += 1;
        self.syncs.push_back(SyncOpen {
            to: suspect.id().clone(),
            kind: SyncKind::Suspect,
            request: wire::encode_sync(self.config.cluster, SyncBody::Request(request)),
        });
    }

    fn queue_sync(&mut self, now: Instant, peer: NodeId, request: SyncRequest) {
        let kind = request.kind;
        self.stats.syncs[usize::from(kind == SyncKind::Pull)] += 1;
        self.in_flight.insert(peer.addr(), (now, kind));
        self.syncs.push_back(SyncOpen {
            to: peer,
            kind,
            request: wire::encode_sync(self.config.cluster, SyncBody::Request(request)),
        });
    }
}

/// `interval` ± 25 %, so periodic work does not synchronise across nodes.
fn jitter(rng: &mut Xoshiro256PlusPlus, interval: Duration) -> Duration {
    interval.mul_f64(rng.random_range(0.75..1.25))
}

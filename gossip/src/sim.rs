//! A deterministic discrete-event simulator of a cluster of [`Node`]s.
//!
//! Modelled on quinn-proto's test `Pair` and corrosion's plum-foca `tests/sim.rs`: a virtual
//! clock, one event queue, and a network with per-message latency, datagram loss, partitions and
//! node kill/restart. Sync streams are reliable messages: they see latency, plus a retransmission
//! delay when the loss rate would have dropped one of their packets, but never loss. Every random
//! choice comes from one seeded generator, and node seeds derive from it, so the same seed and the
//! same calls give the same run, event for event.
//!
//! Every node signs what it writes and checks what it receives, with real ECDSA P-256 keys and
//! certificates faked by [`SimCa`] (a name, a role and a public key under a simulated CA's real
//! signature), so the simulator exercises the same seals and checks as the agent's X.509 ones.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair};

use crate::core::identity::NodeId;
use crate::core::membership::Event;
use crate::core::node::{Node, NodeConfig};
use crate::core::store::{Origin, Version};
use crate::core::trust::{Keys, Writer};

/// Simulation settings.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Seeds everything.
    pub seed: u64,
    /// One-way latency of a message is uniform in `[min, max]`. Default 0.2–2 ms.
    pub latency: (Duration, Duration),
    /// Probability a datagram is lost. Default 0.
    pub loss: f64,
    /// Extra delay of a stream message per retransmission round (QUIC's probe timeout with a
    /// known RTT). Default 30 ms.
    pub retransmit_delay: Duration,
    /// How long a sync to a dead or unreachable peer takes to fail. Default 1 s.
    pub connect_timeout: Duration,
    /// Nodes `0..master_pollers` have certificates with the master-poller role. Default 1.
    pub master_pollers: usize,
    /// Configuration of every node.
    pub node: NodeConfig,
}

/// The simulated cluster CA: it certifies a node's name, role and public key with a real
/// ECDSA P-256 signature. A certificate is `role (1) | name length (1) | name | public key (65)
/// | CA signature (64)`.
pub struct SimCa {
    key: EcdsaKeyPair,
    rng: SystemRandom,
}

/// A simulated node's key and certificate, checked against its [`SimCa`].
pub struct SimKeys {
    ca: Arc<SimCa>,
    key: EcdsaKeyPair,
    certificate: Vec<u8>,
}

/// Traffic counters.
#[derive(Clone, Debug, Default)]
pub struct SimStats {
    /// Datagrams sent (lost ones included).
    pub datagrams: u64,
    /// Bytes of datagrams sent.
    pub datagram_bytes: u64,
    /// Datagrams lost or dropped by a partition or a dead receiver.
    pub dropped: u64,
    /// Sync messages sent.
    pub stream_messages: u64,
    /// Bytes of sync messages sent.
    pub stream_bytes: u64,
}

/// Called for every event a node emits: (time, node index, event).
pub type Recorder = Box<dyn FnMut(Instant, usize, &Event)>;

/// The simulated cluster.
pub struct Sim {
    config: SimConfig,
    base: Instant,
    now: Instant,
    rng: Xoshiro256PlusPlus,
    slots: Vec<Slot>,
    by_addr: HashMap<SocketAddr, usize>,
    queue: BinaryHeap<Reverse<Queued>>,
    seq: u64,
    stats: SimStats,
    recorder: Option<Recorder>,
    ca: Arc<SimCa>,
}

struct Slot {
    node: Option<Node>,
    keys: Arc<SimKeys>,
    addr: SocketAddr,
    group: u32,
    lives: u64,
    clock_skew_ms: i64,
    wake: Option<Instant>,
}

struct Queued {
    at: Instant,
    seq: u64,
    what: Delivery,
}

enum Delivery {
    Wake(usize),
    Datagram {
        to: usize,
        bytes: Vec<u8>,
    },
    Request {
        from: usize,
        to: usize,
        bytes: Vec<u8>,
    },
    Response {
        to: usize,
        from: usize,
        from_id: NodeId,
        bytes: Vec<u8>,
    },
    Push {
        to: usize,
        bytes: Vec<u8>,
    },
    Failed {
        to: usize,
        peer: NodeId,
    },
}

/// Wall-clock milliseconds at the start of every simulation.
const WALL_EPOCH_MS: u64 = 1_700_000_000_000;

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            latency: (Duration::from_micros(200), Duration::from_millis(2)),
            loss: 0.0,
            retransmit_delay: Duration::from_millis(30),
            connect_timeout: Duration::from_secs(1),
            master_pollers: 1,
            node: NodeConfig::default(),
        }
    }
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Queued {}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Queued {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

impl Sim {
    /// An empty cluster.
    pub fn new(config: SimConfig) -> Self {
        let now = Instant::now();
        Self {
            rng: Xoshiro256PlusPlus::seed_from_u64(config.seed),
            config,
            base: now,
            now,
            slots: Vec::new(),
            by_addr: HashMap::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            stats: SimStats::default(),
            recorder: None,
            ca: Arc::new(SimCa::new()),
        }
    }

    /// Call `recorder` for every event any node emits from now on.
    pub fn set_recorder(&mut self, recorder: Recorder) {
        self.recorder = Some(recorder);
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.base
    }

    /// Traffic so far.
    pub fn stats(&self) -> &SimStats {
        &self.stats
    }

    /// Change the datagram loss rate.
    pub fn set_loss(&mut self, loss: f64) {
        self.config.loss = loss;
    }

    /// Number of node slots (dead ones included).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there is no node at all.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The node in slot `i`, if it is running.
    pub fn node(&self, i: usize) -> Option<&Node> {
        self.slots.get(i).and_then(|s| s.node.as_ref())
    }

    /// Indices of the running nodes.
    pub fn alive(&self) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|i| self.slots[*i].node.is_some())
            .collect()
    }

    /// The name node `i` has: `n{i}`.
    pub fn name(i: usize) -> String {
        format!("n{i}")
    }

    /// Start a new node and have it join through a random running node. Returns its index.
    pub fn add_node(&mut self) -> usize {
        let i = self.push_slot();
        self.start(i);
        i
    }

    /// A slot for a new node, not started; returns its index.
    fn push_slot(&mut self) -> usize {
        let i = self.slots.len();
        let addr = Self::addr(i);
        let keys = Arc::new(
            self.ca
                .issue(&Self::name(i), i < self.config.master_pollers),
        );
        self.slots.push(Slot {
            node: None,
            keys,
            addr,
            group: 0,
            lives: 0,
            clock_skew_ms: 0,
            wake: None,
        });
        self.by_addr.insert(addr, i);
        i
    }

    /// Add `n` nodes, one every `every`.
    pub fn add_nodes(&mut self, n: usize, every: Duration) {
        for _ in 0..n {
            self.add_node();
            self.run_for(every);
        }
    }

    /// Add `n` nodes that already know each other (each learns the others' identities without
    /// any gossip), as a cluster restored from saved member lists would. foca keeps members in a
    /// list it scans linearly, so building a large cluster by joins costs O(N³) to simulate; this
    /// costs O(N²).
    pub fn add_known_nodes(&mut self, n: usize) {
        let first = self.slots.len();
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            let i = self.push_slot();
            let addr = self.slots[i].addr;
            self.slots[i].lives = 1;
            let bump = self.wall_ms(i);
            ids.push(NodeId::new(&Self::name(i), addr, bump));
        }
        for (k, id) in ids.iter().enumerate() {
            let i = first + k;
            let seed = self.node_seed(i);
            let keys = self.slots[i].keys.clone();
            let mut node = Node::new(self.config.node.clone(), id.clone(), seed, self.now, keys);
            node.set_wall_clock(self.now, self.wall_ms(i));
            let others: Vec<NodeId> = ids.iter().filter(|o| *o != id).cloned().collect();
            node.restore_members(self.now, others);
            self.slots[i].node = Some(node);
            self.flush(i);
        }
    }

    /// Stop node `i` dead: no goodbye, its in-flight messages are lost.
    pub fn kill(&mut self, i: usize) {
        self.slots[i].node = None;
        self.slots[i].wake = None;
    }

    /// Start node `i` again with a new life (a larger bump), empty store, joining through a
    /// random running node. `clock_skew_ms` shifts its wall clock (negative: behind).
    pub fn restart(&mut self, i: usize, clock_skew_ms: i64) {
        self.kill(i);
        self.slots[i].clock_skew_ms = clock_skew_ms;
        self.start(i);
    }

    /// Split the cluster: nodes in different groups cannot reach each other. Nodes not listed
    /// are in group 0 with the first list.
    pub fn partition(&mut self, groups: &[&[usize]]) {
        for slot in &mut self.slots {
            slot.group = 0;
        }
        for (g, members) in groups.iter().enumerate() {
            for i in *members {
                self.slots[*i].group = g as u32;
            }
        }
    }

    /// Remove every partition.
    pub fn heal(&mut self) {
        for slot in &mut self.slots {
            slot.group = 0;
        }
    }

    /// Put node `revoked`'s name on the deny list of every other running node (the simulated
    /// network has no TLS, so this tests the core's side alone: the revoked node still reaches
    /// its peers).
    pub fn revoke(&mut self, revoked: usize) {
        let (now, names) = (self.now, std::iter::once(Self::name(revoked)).collect());
        for i in self.alive().into_iter().filter(|i| *i != revoked) {
            if let Some(node) = self.slots[i].node.as_mut() {
                node.set_revoked(now, BTreeSet::clone(&names));
            }
            self.flush(i);
        }
    }

    /// The wall clock of node `i`, in milliseconds since the Unix epoch.
    pub fn wall_ms(&self, i: usize) -> u64 {
        let ms = WALL_EPOCH_MS + self.elapsed().as_millis() as u64;
        ms.saturating_add_signed(self.slots[i].clock_skew_ms)
    }

    /// Publish `payload` as `origin` on node `i`.
    pub fn publish(&mut self, i: usize, origin: Origin, payload: impl Into<Bytes>) -> Version {
        let wall = self.wall_ms(i);
        self.publish_at(i, wall, origin, payload)
    }

    /// Publish as node `i` with its wall clock reading `wall_ms`: how a node with a wrong (or
    /// lying) clock writes.
    pub fn publish_at(
        &mut self,
        i: usize,
        wall_ms: u64,
        origin: Origin,
        payload: impl Into<Bytes>,
    ) -> Version {
        let (now, wall) = (self.now, wall_ms);
        let node = self.slots[i]
            .node
            .as_mut()
            .expect("publish on a running node");
        let version = node.publish(now, wall, origin, payload.into());
        self.flush(i);
        version
    }

    /// How many running nodes hold `origin` at `version` or newer.
    pub fn holding(&self, origin: &Origin, version: Version) -> usize {
        self.slots
            .iter()
            .filter_map(|s| s.node.as_ref())
            .filter(|n| n.version(origin).is_some_and(|v| v >= version))
            .count()
    }

    /// Advance virtual time by `d`, delivering everything due.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    /// Advance virtual time to `until`.
    pub fn run_until(&mut self, until: Instant) {
        while let Some(Reverse(next)) = self.queue.peek() {
            if next.at > until {
                break;
            }
            let Some(Reverse(next)) = self.queue.pop() else {
                break;
            };
            self.now = self.now.max(next.at);
            self.deliver(next.at, next.what);
        }
        self.now = self.now.max(until);
    }

    /// Run until `done` holds (checked every `step`) or `limit` has passed; returns whether it
    /// held.
    pub fn run_while_not(
        &mut self,
        limit: Duration,
        step: Duration,
        mut done: impl FnMut(&Self) -> bool,
    ) -> bool {
        let deadline = self.now + limit;
        while self.now < deadline {
            if done(self) {
                return true;
            }
            self.run_for(step);
        }
        done(self)
    }

    fn addr(i: usize) -> SocketAddr {
        let octets = (i as u32 + 1).to_be_bytes();
        SocketAddr::V4(SocketAddrV4::new(
            Ipv4Addr::new(10, octets[1], octets[2], octets[3]),
            7000,
        ))
    }

    fn node_seed(&self, i: usize) -> u64 {
        self.config.seed
            ^ (i as u64).wrapping_mul(0x2545_f491_4f6c_dd1d)
            ^ self.slots[i].lives << 48
    }

    fn start(&mut self, i: usize) {
        self.slots[i].lives += 1;
        let seed = self.node_seed(i);
        // The bump is the wall clock at start, so a restarted node's identity is always newer.
        let bump = self.wall_ms(i).max(self.slots[i].lives);
        let id = NodeId::new(&Self::name(i), self.slots[i].addr, bump);
        let keys = self.slots[i].keys.clone();
        let mut node = Node::new(self.config.node.clone(), id, seed, self.now, keys);
        node.set_wall_clock(self.now, self.wall_ms(i));
        let seeds: Vec<usize> = self.alive();
        if !seeds.is_empty() {
            let pick = seeds[self.rng.random_range(0..seeds.len())];
            node.join(self.now, NodeId::seed(self.slots[pick].addr));
        }
        self.slots[i].node = Some(node);
        self.flush(i);
    }

    fn deliver(&mut self, at: Instant, what: Delivery) {
        let now = self.now;
        match what {
            Delivery::Wake(i) => {
                if self.slots[i].wake != Some(at) {
                    return;
                }
                self.slots[i].wake = None;
                if let Some(node) = self.slots[i].node.as_mut() {
                    node.handle_timeout(now);
                    self.flush(i);
                }
            }
            Delivery::Datagram { to, bytes } => {
                if let Some(node) = self.slots[to].node.as_mut() {
                    let _ = node.handle_datagram(now, &bytes);
                    self.flush(to);
                } else {
                    self.stats.dropped += 1;
                }
            }
            Delivery::Request { from, to, bytes } => {
                let answer = self.slots[to]
                    .node
                    .as_mut()
                    .map(|n| n.handle_sync_request(now, &bytes));
                match answer {
                    Some(Ok(response)) if self.reachable(to, from) => {
                        let to_id = self.slots[to].node.as_ref().map(|n| n.id().clone());
                        self.flush(to);
                        let delay = self.stream_delay(response.len());
                        self.stats.stream_messages += 1;
                        self.stats.stream_bytes += response.len() as u64;
                        if let Some(to_id) = to_id {
                            self.push(
                                now + delay,
                                Delivery::Response {
                                    to: from,
                                    from: to,
                                    from_id: to_id,
                                    bytes: response,
                                },
                            );
                        }
                    }
                    _ => {
                        if self.slots[to].node.is_some() {
                            self.flush(to);
                        }
                        let timeout = self.config.connect_timeout;
                        self.push(
                            now + timeout,
                            Delivery::Failed {
                                to: from,
                                peer: from_id_of(&self.slots[to]),
                            },
                        );
                    }
                }
            }
            Delivery::Response {
                to,
                from,
                from_id,
                bytes,
            } => {
                let Some(node) = self.slots[to].node.as_mut() else {
                    return;
                };
                let push = node.handle_sync_response(now, &from_id, &bytes);
                self.flush(to);
                if let Ok(Some(push)) = push
                    && self.reachable(to, from)
                {
                    let delay = self.stream_delay(push.len());
                    self.stats.stream_messages += 1;
                    self.stats.stream_bytes += push.len() as u64;
                    self.push(
                        now + delay,
                        Delivery::Push {
                            to: from,
                            bytes: push,
                        },
                    );
                }
            }
            Delivery::Push { to, bytes } => {
                if let Some(node) = self.slots[to].node.as_mut() {
                    let _ = node.handle_sync_push(now, &bytes);
                    self.flush(to);
                }
            }
            Delivery::Failed { to, peer } => {
                if let Some(node) = self.slots[to].node.as_mut() {
                    node.handle_sync_failed(&peer);
                    self.flush(to);
                }
            }
        }
    }

    /// Move node `i`'s output onto the network and re-arm its wake-up.
    fn flush(&mut self, i: usize) {
        let now = self.now;
        let Some(node) = self.slots[i].node.as_mut() else {
            return;
        };
        let mut transmits = Vec::new();
        while let Some(t) = node.poll_transmit() {
            transmits.push(t);
        }
        let mut syncs = Vec::new();
        while let Some(s) = node.poll_sync() {
            syncs.push(s);
        }
        let mut events = Vec::new();
        while let Some(e) = node.poll_event() {
            events.push(e);
        }
        let wake = node.poll_timeout();
        if let Some(recorder) = self.recorder.as_mut() {
            for e in &events {
                recorder(now, i, e);
            }
        }
        for t in transmits {
            self.stats.datagrams += 1;
            self.stats.datagram_bytes += t.bytes.len() as u64;
            let Some(&to) = self.by_addr.get(&t.to.addr()) else {
                self.stats.dropped += 1;
                continue;
            };
            let lost = self.config.loss > 0.0 && self.rng.random_bool(self.config.loss);
            if lost || !self.reachable(i, to) {
                self.stats.dropped += 1;
                continue;
            }
            let delay = self.latency();
            self.push(now + delay, Delivery::Datagram { to, bytes: t.bytes });
        }
        for s in syncs {
            match self.by_addr.get(&s.to.addr()).copied() {
                Some(to) if self.reachable(i, to) && self.slots[to].node.is_some() => {
                    // Counted only when the connection would succeed: QUIC sends stream data
                    // after the handshake, so a dial to a dead peer costs a few small packets.
                    self.stats.stream_messages += 1;
                    self.stats.stream_bytes += s.request.len() as u64;
                    let delay = self.stream_delay(s.request.len());
                    self.push(
                        now + delay,
                        Delivery::Request {
                            from: i,
                            to,
                            bytes: s.request,
                        },
                    );
                }
                _ => {
                    let timeout = self.config.connect_timeout;
                    self.push(now + timeout, Delivery::Failed { to: i, peer: s.to });
                }
            }
        }
        if let Some(wake) = wake
            && self.slots[i].wake.is_none_or(|w| wake < w)
        {
            let wake = wake.max(now);
            self.slots[i].wake = Some(wake);
            self.push(wake, Delivery::Wake(i));
        }
    }

    fn reachable(&self, a: usize, b: usize) -> bool {
        self.slots[a].group == self.slots[b].group
    }

    fn latency(&mut self) -> Duration {
        let (min, max) = self.config.latency;
        if max <= min {
            return min;
        }
        min + (max - min).mul_f64(self.rng.random_range(0.0..1.0))
    }

    /// Latency plus a retransmission round for every time the loss rate hits one of the
    /// message's packets.
    fn stream_delay(&mut self, len: usize) -> Duration {
        let mut delay = self.latency();
        if self.config.loss > 0.0 {
            let packets = len.div_ceil(1200).max(1) as i32;
            let hit = (1.0 - (1.0 - self.config.loss).powi(packets)).min(0.9);
            let mut rounds = 0;
            while rounds < 10 && self.rng.random_bool(hit) {
                rounds += 1;
                delay += self.config.retransmit_delay;
            }
        }
        delay
    }

    fn push(&mut self, at: Instant, what: Delivery) {
        self.seq += 1;
        self.queue.push(Reverse(Queued {
            at,
            seq: self.seq,
            what,
        }));
    }
}

fn from_id_of(slot: &Slot) -> NodeId {
    slot.node
        .as_ref()
        .map_or_else(|| NodeId::seed(slot.addr), |n| n.id().clone())
}

impl Default for SimCa {
    fn default() -> Self {
        Self::new()
    }
}

impl SimCa {
    /// A new CA with a fresh key.
    pub fn new() -> Self {
        let rng = SystemRandom::new();
        Self {
            key: new_key(&rng),
            rng,
        }
    }

    /// A certificate and key for node `name`, with the master-poller role or not.
    pub fn issue(self: &Arc<Self>, name: &str, master_poller: bool) -> SimKeys {
        let key = new_key(&self.rng);
        let mut certificate = vec![u8::from(master_poller), name.len() as u8];
        certificate.extend_from_slice(name.as_bytes());
        certificate.extend_from_slice(key.public_key().as_ref());
        let signature = self.sign(&certificate);
        certificate.extend_from_slice(&signature);
        SimKeys {
            ca: self.clone(),
            key,
            certificate,
        }
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.key
            .sign(&self.rng, message)
            .map_or_else(|_| Vec::new(), |s| s.as_ref().to_vec())
    }
}

impl Keys for SimKeys {
    fn certificate(&self) -> &[u8] {
        &self.certificate
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.key
            .sign(&self.ca.rng, message)
            .map_or_else(|_| Vec::new(), |s| s.as_ref().to_vec())
    }

    fn admit(&self, certificate: &[u8], _unix_secs: u64) -> Result<Writer, String> {
        let bad = || "not a simulated certificate".to_owned();
        let len = usize::from(*certificate.get(1).ok_or_else(bad)?);
        if certificate.len() != 2 + len + 65 + 64 {
            return Err(bad());
        }
        let (body, ca_signature) = certificate.split_at(2 + len + 65);
        let ca = signature::UnparsedPublicKey::new(
            &signature::ECDSA_P256_SHA256_FIXED,
            self.ca.key.public_key().as_ref(),
        );
        ca.verify(body, ca_signature)
            .map_err(|_| "not signed by the simulated CA".to_owned())?;
        let name = std::str::from_utf8(&body[2..2 + len]).map_err(|_| bad())?;
        Ok(Writer {
            names: vec![name.to_owned()],
            master_poller: body[0] == 1,
            public_key: body[2 + len..].to_vec(),
        })
    }
}

fn new_key(rng: &SystemRandom) -> EcdsaKeyPair {
    let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    EcdsaKeyPair::generate_pkcs8(alg, rng)
        .and_then(|pkcs8| {
            EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), rng).map_err(|_| ring::error::Unspecified)
        })
        .expect("ring generates and reads back a P-256 key")
}

//! SWIM membership: foca, driven sans-IO in the quinn-proto style.
//!
//! [`Membership`] owns a `Foca` and a runtime that collects foca's effects into queues: packets
//! to send ([`Membership::poll_transmit`]), timers (a min-heap by deadline, foca's `Timer`
//! ordering for ties, as foca's own example does after per-timer sleeps broke ordering) and
//! notifications ([`Membership::poll_event`]). The caller feeds datagrams and the clock in.
//!
//! Tuning (see [`MembershipConfig`]): foca's `Config::new_lan(n)` is the base, with a shorter probe
//! period, faster gossip and a suspicion timeout that scales with log10(N); it is re-tuned
//! when the cluster size moves by more than 10 %. Packets are capped at 1178 bytes, the QUIC datagram budget
//! (corrosion's default), less our envelope. Local health ([`crate::core::health`]) scales the
//! probe and suspicion timers of a node that finds itself slow.
//!
//! Two things foca leaves out are added here: when one of our probes fails, the suspect is queued
//! for a direct warning over a reliable stream (see `core::sync`, "Suspect" exchanges), and a
//! suspicion timer is dropped if the suspicion was refuted meanwhile, because foca 2.0.0 would
//! otherwise send the member `TurnUndead` anyway and force a healthy node to rejoin under a new
//! identity (seen in the simulator as a rename storm at 5 % loss).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::num::{NonZeroU8, NonZeroU32, NonZeroUsize};
use std::time::{Duration, Instant};

use foca::{
    Foca, Header, Member, Message, OwnedNotification, PeriodicParams, PostcardCodec, Runtime,
    State, Timer,
};
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

use crate::core::broadcast::Handler;
use crate::core::health::{LocalHealth, Outcome};
use crate::core::identity::NodeId;
use crate::core::store::Origin;
use crate::error::Error;
use crate::wire;

/// How soon after the word that a member is down its own datagram still counts as its leave
/// (see `Membership::heard_from_down`): a leave's datagrams all go out within a second.
const LEAVE_AFTER_DOWN: Duration = Duration::from_secs(2);

/// Membership tuning. The default is tuned for a LAN with sub-millisecond to few-millisecond
/// round trips, to detect a dead node in about 3 s at 1,000 nodes (see the simulator benchmark).
#[derive(Clone, Debug)]
pub struct MembershipConfig {
    /// How often a node probes one member. Default 500 ms (memberlist LAN: 1 s).
    pub probe_period: Duration,
    /// How long a direct probe waits before asking others to probe indirectly. Default 200 ms.
    pub probe_rtt: Duration,
    /// Suspicion timeout per decade of cluster size: a suspect is declared down after
    /// `suspicion × max(1, log10 N)`. Default 400 ms (1.2 s at N = 1,000). Short, because a
    /// suspect hears of the suspicion at once over a reliable stream and refutes it (see
    /// `core::sync`), and local health stretches it on a node that is itself in trouble.
    pub suspicion: Duration,
    /// How often foca gossips pending updates, and to how many members. Default 100 ms × 3.
    pub gossip_interval: Duration,
    /// Members per gossip round. Default 3.
    pub gossip_fanout: usize,
    /// Each update or broadcast is sent `ceil(transmissions × log10(N + 1))` times (memberlist's
    /// retransmit multiplier). Default 5.
    pub transmissions: f64,
    /// The largest datagram we send. Default 1178, the QUIC datagram budget on a 1280 path.
    pub max_datagram: usize,
    /// How long a down member is remembered. Default 24 h (foca's default).
    pub remove_down_after: Duration,
    /// The ceiling of the local health score. Default 8 (memberlist's AwarenessMaxMultiplier).
    pub max_local_health: u8,
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Transmit {
    /// The destination.
    pub to: NodeId,
    /// The bytes, one datagram.
    pub bytes: Vec<u8>,
}

/// What happened, for the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A member joined or came back.
    MemberUp(NodeId),
    /// A member was declared down.
    MemberDown(NodeId),
    /// A member said it is leaving (a graceful stop): down, but not failed.
    MemberLeft(NodeId),
    /// A member's identity was replaced by a newer one (it restarted or rejoined).
    MemberRenamed {
        /// The identity that is gone.
        old: NodeId,
        /// The identity that replaced it.
        new: NodeId,
    },
    /// We are part of a cluster (someone answered us).
    Joined,
    /// We know no live member any more.
    Idle,
    /// The cluster declared us down and we could not rejoin.
    Defunct,
    /// The cluster declared us down; we rejoined under a newer identity.
    Rejoined(NodeId),
    /// An origin has new visible records (possibly none: deleted), or they came back.
    OriginChanged(Origin),
    /// An origin's records are hidden: its node is gone.
    OriginWithdrawn(Origin),
}

/// Liveness of a member, for `/v1/nodes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Answering probes.
    Up,
    /// Missed a probe; will be declared down unless it refutes.
    Suspect,
    /// Declared down.
    Down,
    /// Left gracefully: it told us it was going.
    Left,
}

/// One member as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberState {
    /// The member's identity.
    pub id: NodeId,
    /// Up, suspect or down.
    pub state: Liveness,
    /// SWIM incarnation: how many times it refuted a suspicion in this life.
    pub incarnation: u16,
    /// When we last received a datagram from it.
    pub last_seen: Option<Instant>,
}

type Swim = Foca<NodeId, PostcardCodec, Xoshiro256PlusPlus, Handler>;

/// The SWIM membership of one node. See the module docs.
pub struct Membership {
    foca: Swim,
    config: MembershipConfig,
    cluster: u64,
    effects: Effects,
    timers: BinaryHeap<Reverse<Scheduled>>,
    timer_seq: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    /// Members a probe of ours just failed on (foca suspects them now): the node tells them
    /// directly over a reliable stream, Lifeguard's "buddy system".
    suspected: VecDeque<Member<NodeId>>,
    health: LocalHealth,
    last_seen: HashMap<SocketAddr, Instant>,
    /// Members that told us themselves that they were going (foca's `leave_cluster`): the
    /// only way a member's "down" update comes from the member itself.
    left: HashSet<NodeId>,
    /// When we heard second-hand that a member is down (see `heard_from_down`).
    down_heard: HashMap<NodeId, Instant>,
    tuned_for: usize,
    swim_errors: u64,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Scheduled {
    at: Instant,
    timer: Timer<NodeId>,
    seq: u64,
}

/// Collects foca's effects until the membership drains them.
#[derive(Default)]
struct Effects {
    sends: Vec<(NodeId, Vec<u8>)>,
    timers: Vec<(Timer<NodeId>, Duration)>,
    notes: Vec<OwnedNotification<NodeId>>,
}

impl Runtime<NodeId> for Effects {
    fn notify(&mut self, notification: foca::Notification<'_, NodeId>) {
        self.notes.push(notification.to_owned());
    }

    fn send_to(&mut self, to: NodeId, data: &[u8]) {
        self.sends.push((to, data.to_vec()));
    }

    fn submit_after(&mut self, event: Timer<NodeId>, after: Duration) {
        self.timers.push((event, after));
    }
}

impl Default for MembershipConfig {
    fn default() -> Self {
        Self {
            probe_period: Duration::from_millis(500),
            probe_rtt: Duration::from_millis(200),
            suspicion: Duration::from_millis(400),
            gossip_interval: Duration::from_millis(100),
            gossip_fanout: 3,
            transmissions: 5.0,
            max_datagram: 1178,
            remove_down_after: Duration::from_secs(24 * 3600),
            max_local_health: 8,
        }
    }
}

impl MembershipConfig {
    /// foca's configuration for a cluster of `n` nodes.
    pub(crate) fn foca_config(&self, n: usize) -> foca::Config {
        let size = NonZeroU32::new(u32::try_from(n).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN);
        let decades = (n as f64).log10().max(1.0);
        let max_tx = (self.transmissions * ((n + 1) as f64).log10()).ceil();
        let mut config = foca::Config::new_lan(size);
        config.probe_period = self.probe_period;
        config.probe_rtt = self.probe_rtt;
        config.suspect_to_down_after = self.suspicion.mul_f64(decades);
        config.max_transmissions =
            NonZeroU8::new(max_tx.clamp(3.0, 255.0) as u8).unwrap_or(NonZeroU8::MIN);
        config.max_packet_size =
            NonZeroUsize::new(self.max_datagram.saturating_sub(wire::DATAGRAM_OVERHEAD))
                .unwrap_or(NonZeroUsize::MIN);
        config.remove_down_after = Some(self.remove_down_after);
        config.periodic_gossip = Some(PeriodicParams {
            frequency: self.gossip_interval,
            num_members: NonZeroUsize::new(self.gossip_fanout).unwrap_or(NonZeroUsize::MIN),
        });
        config
    }
}

impl Membership {
    /// A node that is not in any cluster yet; [`Membership::announce`] joins one.
    pub(crate) fn new(
        id: NodeId,
        config: MembershipConfig,
        cluster: u64,
        seed: u64,
        handler: Handler,
    ) -> Self {
        let rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let foca =
            Foca::with_custom_broadcast(id, config.foca_config(1), rng, PostcardCodec, handler);
        let max_health = config.max_local_health;
        Self {
            foca,
            config,
            cluster,
            effects: Effects::default(),
            timers: BinaryHeap::new(),
            timer_seq: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            suspected: VecDeque::new(),
            health: LocalHealth::new(max_health),
            last_seen: HashMap::new(),
            left: HashSet::new(),
            down_heard: HashMap::new(),
            tuned_for: 1,
            swim_errors: 0,
        }
    }

    /// Our current identity (it changes when we rejoin after being declared down).
    pub fn id(&self) -> &NodeId {
        self.foca.identity()
    }

    /// Handle one datagram from a peer.
    pub fn handle_datagram(&mut self, now: Instant, bytes: &[u8]) -> Result<(), Error> {
        let swim = wire::decode_datagram(self.cluster, bytes)?;
        let mut sender = None;
        if let Ok((header, _)) = postcard::take_from_bytes::<Header<NodeId>>(swim)
            && header.dst.addr() == self.id().addr()
        {
            self.last_seen.insert(header.src.addr(), now);
            sender = Some(header.src.clone());
            match header.message {
                Message::Ack(n) => self.health.ack(header.src.addr(), n),
                Message::ForwardedAck { probe_number, .. } => {
                    self.health.forwarded_ack(probe_number)
                }
                _ => {}
            }
        }
        let result = self.foca.handle_data(swim, &mut self.effects);
        self.drain_from(now, sender.as_ref());
        if let Some(sender) = sender {
            self.heard_from_down(now, sender);
        }
        result.map_err(|e| {
            self.swim_errors += 1;
            Error::Swim(e)
        })
    }

    /// Fire every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let tolerance = (self.config.probe_rtt / 2).max(Duration::from_millis(50));
        while let Some(Reverse(next)) = self.timers.peek() {
            if next.at > now {
                break;
            }
            let Some(Reverse(Scheduled { at, timer, .. })) = self.timers.pop() else {
                break;
            };
            if matches!(timer, Timer::ProbeRandomMember(_)) {
                self.health
                    .timer_late(now.saturating_duration_since(at), tolerance);
            }
            if let Timer::ChangeSuspectToDown {
                member_id,
                incarnation,
                ..
            } = &timer
                && !self.still_suspect(member_id, *incarnation)
            {
                // foca 2.0.0 sends `TurnUndead` to the member when this timer fires even if the
                // suspicion was refuted meanwhile (its incarnation check only guards the state
                // change), which makes a healthy member drop its identity and rejoin. Only let
                // the timer through while the suspicion stands.
                continue;
            }
            // Errors here are foca's bookkeeping (a probe cycle cut short by a membership change,
            // a probe timer while disconnected): the next timer carries on.
            if self.foca.handle_timer(timer, &mut self.effects).is_err() {
                self.swim_errors += 1;
            }
            self.drain(now);
        }
    }

    /// Ask `to` to let us into its cluster. For a seed known only by address, pass
    /// [`NodeId::seed`].
    pub fn announce(&mut self, now: Instant, to: NodeId) {
        if self.foca.announce(to, &mut self.effects).is_err() {
            self.swim_errors += 1;
        }
        self.drain(now);
    }

    /// Leave the cluster: tell every live member we are going, so that each of them hears it
    /// from us and shows us as left rather than failed. The node is defunct afterwards.
    pub fn leave(&mut self, now: Instant) {
        let mut config = self.config.foca_config(self.tuned_for);
        // foca's leave gossips to `num_indirect_probes` members: make that everyone.
        config.num_indirect_probes =
            NonZeroUsize::new(self.foca.num_members()).unwrap_or(NonZeroUsize::MIN);
        if self.foca.set_config(config).is_err()
            || self.foca.leave_cluster(&mut self.effects).is_err()
        {
            self.swim_errors += 1;
        }
        self.drain(now);
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// When [`Membership::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse(s)| s.at)
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The live members (up or suspect), ourselves excluded.
    pub fn members(&self) -> impl Iterator<Item = &NodeId> {
        self.foca.iter_members().map(Member::id)
    }

    /// How many live members we know, ourselves excluded.
    pub fn num_members(&self) -> usize {
        self.foca.num_members()
    }

    /// A member we were told is down that talks to us itself, soon after and without coming
    /// back up, is leaving: its own leave arrived after another member's word of it, which only
    /// says down. (A member wrongly declared down comes back up under a new identity instead.)
    fn heard_from_down(&mut self, now: Instant, sender: NodeId) {
        let Some(&heard) = self.down_heard.get(&sender) else {
            return;
        };
        let down = (self.foca.iter_membership_state())
            .any(|m| m.id() == &sender && m.state() == State::Down);
        if down
            && now.saturating_duration_since(heard) <= LEAVE_AFTER_DOWN
            && !self.left.contains(&sender)
        {
            self.down_heard.remove(&sender);
            self.left.insert(sender.clone());
            self.events.push_back(Event::MemberLeft(sender));
        }
    }

    /// Every member we know, down ones included, for `/v1/nodes`.
    pub fn member_states(&self) -> Vec<MemberState> {
        self.foca
            .iter_membership_state()
            .map(|m| MemberState {
                id: m.id().clone(),
                state: match m.state() {
                    State::Alive => Liveness::Up,
                    State::Suspect => Liveness::Suspect,
                    State::Down if self.left.contains(m.id()) => Liveness::Left,
                    State::Down => Liveness::Down,
                },
                incarnation: m.incarnation(),
                last_seen: self.last_seen.get(&m.id().addr()).copied(),
            })
            .collect()
    }

    /// The local health score, 0..=max: how much slower than configured we probe and accuse.
    pub fn local_health(&self) -> u8 {
        self.health.score()
    }

    /// How many packets or timers foca refused (malformed packets, stale probe cycles).
    pub fn swim_errors(&self) -> u64 {
        self.swim_errors
    }

    /// Our whole membership view, ourselves included, for a sync peer.
    pub(crate) fn membership_state(&self) -> Vec<Member<NodeId>> {
        let mut members: Vec<_> = self.foca.iter_membership_state().cloned().collect();
        members.push(self.own_member());
        members
    }

    /// Ourselves as a member record at our current incarnation.
    pub(crate) fn own_member(&self) -> Member<NodeId> {
        Member::new(
            self.id().clone(),
            self.health.current_incarnation(),
            State::Alive,
        )
    }

    /// The member records of ours that differ from `theirs` (or that they lack), and the records
    /// of theirs that differ from ours: what each side should apply.
    pub(crate) fn diff_members(
        &self,
        theirs: &[Member<NodeId>],
    ) -> (Vec<Member<NodeId>>, Vec<Member<NodeId>>) {
        let ours = self.membership_state();
        let index: HashMap<SocketAddr, &Member<NodeId>> =
            theirs.iter().map(|m| (m.id().addr(), m)).collect();
        let own: HashMap<SocketAddr, &Member<NodeId>> =
            ours.iter().map(|m| (m.id().addr(), m)).collect();
        let for_them = ours
            .iter()
            .filter(|m| index.get(&m.id().addr()) != Some(m))
            .cloned()
            .collect();
        let for_us = theirs
            .iter()
            .filter(|m| own.get(&m.id().addr()) != Some(m))
            .cloned()
            .collect();
        (for_them, for_us)
    }

    /// Apply member records learnt by sync.
    pub(crate) fn apply_members(&mut self, now: Instant, members: Vec<Member<NodeId>>) {
        if members.is_empty() {
            return;
        }
        if self
            .foca
            .apply_many(members.into_iter(), true, &mut self.effects)
            .is_err()
        {
            self.swim_errors += 1;
        }
        self.drain(now);
    }

    /// Declare `members` down here without gossiping it: revoked nodes, which every node drops
    /// from its own deny list (telling the revoked node would only make it rejoin under a new
    /// identity).
    pub(crate) fn declare_down(&mut self, now: Instant, members: Vec<NodeId>) {
        if members.is_empty() {
            return;
        }
        let downs = members.into_iter().map(Member::down);
        if self
            .foca
            .apply_many(downs, false, &mut self.effects)
            .is_err()
        {
            self.swim_errors += 1;
        }
        self.drain(now);
    }

    /// Learn members without telling anyone: restoring a saved view (foca suggests snapshotting
    /// `iter_membership_state` before a restart) or seeding a large simulated cluster.
    pub(crate) fn restore_members(&mut self, now: Instant, members: Vec<Member<NodeId>>) {
        if self
            .foca
            .apply_many(members.into_iter(), false, &mut self.effects)
            .is_err()
        {
            self.swim_errors += 1;
        }
        self.drain(now);
    }

    /// Queue a custom broadcast (an encoded item).
    pub(crate) fn add_broadcast(&mut self, item: &[u8]) {
        if self.foca.add_broadcast(item).is_err() {
            self.swim_errors += 1;
        }
    }

    /// Send pending custom broadcasts to a few members now, beyond piggybacking.
    pub(crate) fn broadcast(&mut self, now: Instant) {
        if self.foca.custom_broadcast_backlog() == 0 {
            return;
        }
        if self.foca.broadcast(&mut self.effects).is_err() {
            self.swim_errors += 1;
        }
        self.drain(now);
    }

    /// Whether custom broadcasts are waiting to be sent.
    pub(crate) fn has_broadcasts(&self) -> bool {
        self.foca.custom_broadcast_backlog() > 0
    }

    /// A member our probe just failed on, to warn directly.
    pub(crate) fn poll_suspected(&mut self) -> Option<Member<NodeId>> {
        self.suspected.pop_front()
    }

    /// Whether `id` is still suspect at `incarnation` (the suspicion was not refuted).
    fn still_suspect(&self, id: &NodeId, incarnation: u16) -> bool {
        self.foca
            .iter_membership_state()
            .any(|m| m.id() == id && m.incarnation() == incarnation && m.state() == State::Suspect)
    }

    /// Move foca's effects into our queues.
    fn drain(&mut self, now: Instant) {
        self.drain_from(now, None);
    }

    /// [`Self::drain`] after a datagram from `sender`: a member that `sender` itself declares
    /// down has left.
    fn drain_from(&mut self, now: Instant, sender: Option<&NodeId>) {
        // Timers first: they are scaled by the local health from before this call, so the probe
        // failure noticed while sending below does not stretch its own suspicion timeout.
        for (timer, after) in std::mem::take(&mut self.effects.timers) {
            let after = match timer {
                Timer::ProbeRandomMember(_)
                | Timer::SendIndirectProbe { .. }
                | Timer::ChangeSuspectToDown { .. } => self.health.scale(after),
                _ => after,
            };
            self.timer_seq += 1;
            self.timers.push(Reverse(Scheduled {
                at: now + after,
                timer,
                seq: self.timer_seq,
            }));
        }
        for (to, swim) in std::mem::take(&mut self.effects.sends) {
            self.watch_outgoing(&swim);
            let bytes = wire::encode_datagram(self.cluster, &swim);
            self.transmits.push_back(Transmit { to, bytes });
        }
        let mut resize = false;
        for note in std::mem::take(&mut self.effects.notes) {
            let event = match note {
                OwnedNotification::MemberUp(id) => {
                    resize = true;
                    Event::MemberUp(id)
                }
                OwnedNotification::MemberDown(id) if Some(&id) == sender => {
                    resize = true;
                    self.left.insert(id.clone());
                    Event::MemberLeft(id)
                }
                OwnedNotification::MemberDown(id) => {
                    resize = true;
                    self.down_heard.insert(id.clone(), now);
                    Event::MemberDown(id)
                }
                OwnedNotification::Rename(old, new) => Event::MemberRenamed { old, new },
                OwnedNotification::Active => Event::Joined,
                OwnedNotification::Idle => Event::Idle,
                OwnedNotification::Defunct => Event::Defunct,
                OwnedNotification::Rejoin(id) => {
                    self.health.identity_changed();
                    Event::Rejoined(id)
                }
            };
            self.events.push_back(event);
        }
        if resize {
            let known: HashSet<&NodeId> =
                self.foca.iter_membership_state().map(Member::id).collect();
            self.left.retain(|id| known.contains(id));
            self.down_heard.retain(|id, _| known.contains(id));
            self.retune();
        }
    }

    /// Watch our own SWIM packets for local health (see `health`).
    fn watch_outgoing(&mut self, swim: &[u8]) {
        let Ok((header, _)) = postcard::take_from_bytes::<Header<NodeId>>(swim) else {
            return;
        };
        self.health.incarnation(header.src_incarnation);
        if let Message::Ping(n) = header.message
            && let Some(Outcome::Failed(target)) = self.health.ping_sent(header.dst.addr(), n)
            && let Some(member) = self
                .foca
                .iter_membership_state()
                .find(|m| m.id().addr() == target && m.state() == State::Suspect)
        {
            self.suspected.push_back(member.clone());
        }
    }

    /// Re-tune foca for the cluster size when it has moved by more than 10 %.
    fn retune(&mut self) {
        let n = self.foca.num_members() + 1;
        if n.abs_diff(self.tuned_for) * 10 <= self.tuned_for && n > 1 {
            return;
        }
        self.tuned_for = n;
        if self.foca.set_config(self.config.foca_config(n)).is_err() {
            self.swim_errors += 1;
        }
    }
}

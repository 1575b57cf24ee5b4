//! The programmed state, and the map writes that move it to a [`Desired`] state or repair it:
//! pure, no BPF, no clock (callers pass `now`).
//!
//! [`State`] is the model of what the maps hold (or should hold): for each kernel VIP its ring
//! row (`index`), its backends with their ids, and the ring as backend ids; plus which ids and
//! rows are free. [`State::plan`] diffs it against a [`Desired`] and returns the [`Op`]s to run,
//! in order, updating the model as it goes; [`State::repair`] compares the model with what was
//! read back from the kernel ([`Snapshot`]) and returns the writes that undo any drift.
//!
//! # Rules
//!
//! - **Stable slots.** A kernel VIP keeps its ring row, and a backend of a VIP its id, for as long
//!   as they exist, so pinned flows and sockets keep working. Ids are per (VIP, backend): one
//!   backend address behind two VIPs has two ids, so it can be drained or removed in one of them.
//! - **Diff, never refill.** Only VIPs whose backend list changed are touched, and only the ring
//!   slots whose backend changed are written (Maglev moves few).
//! - **Order.** A new VIP's backends are written first, then its ring, then its `beacon_vips`
//!   entry, so it becomes visible complete. A change writes new and changed backends, then the
//!   ring, then marks the backends that left [`abi::BACKEND_F_REMOVED`] once no slot names them.
//!   A removal runs in reverse: `beacon_vips` entry, ring row, backends. Removals come first, then
//!   changes (those that free ids first), then additions, so capacity freed is capacity reused.
//! - **Removal.** A removed backend stays in the map marked `REMOVED` for a grace period: XDP moves
//!   its flows to another backend on their next packet, and the UDP iterator ([`Op::DestroyUdp`],
//!   planned after any such mark) destroys connected UDP sockets pinned to it. After the grace
//!   period its entry is zeroed and the id is free again. When ids run out, the oldest
//!   quarantined ones are reused early: every reuse bumps the id's generation, so nothing pinned
//!   to the old backend follows the id to the new one. Ring rows of removed VIPs are zeroed at
//!   once and rejoin the free list after the same grace period.
//! - **Drain.** Weight 0 sets [`abi::BACKEND_F_DRAIN`] and takes the backend out of the ring; it
//!   keeps its flows and sockets.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use beacon_catalog::vip::{Protocol, VipKey};
use beacon_ebpf::abi;

use crate::desired::{Desired, DesiredBackend, DesiredVip, Limits, VipId};

/// One write to the data plane, in the order a plan lists them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Write `beacon_backends[id]`.
    Backend {
        /// Backend id.
        id: u32,
        /// The entry.
        entry: abi::Backend,
    },
    /// Write ring slots of VIP row `index`: `(slot, backend id)` pairs (0 empties a slot).
    Ring {
        /// The VIP's ring row.
        index: u32,
        /// Slots to write.
        slots: Vec<(u32, u32)>,
    },
    /// Insert or overwrite a `beacon_vips` entry.
    Vip {
        /// The key.
        key: abi::VipKey,
        /// Its row.
        info: abi::VipInfo,
    },
    /// Write slot `slot` of XDP's VIP index `beacon_vip_slots`.
    VipSlot {
        /// The slot.
        slot: u32,
        /// Its content.
        entry: abi::VipSlot,
    },
    /// Delete a `beacon_vips` entry.
    DeleteVip {
        /// The key.
        key: abi::VipKey,
    },
    /// Zero the VIP counters of row `index` (a row given to a new VIP).
    ResetVipStats {
        /// The row.
        index: u32,
    },
    /// Zero the counters of backend `id` (an id given to a new backend).
    ResetBackendStats {
        /// The id.
        id: u32,
    },
    /// Everything of this VIP is written: it may be published.
    Programmed(VipId),
    /// Run the UDP destroy iterator once (after backends were marked removed).
    DestroyUdp,
}

/// A list of writes and what they amount to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// The writes, in order.
    pub ops: Vec<Op>,
    /// What the writes change.
    pub changes: Changes,
}

/// What a plan changes, counted (and, summed over plans, what an apply or reconcile did).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Kernel VIPs added.
    pub vips_added: u32,
    /// Kernel VIPs whose backends changed.
    pub vips_changed: u32,
    /// Kernel VIPs removed.
    pub vips_removed: u32,
    /// Backends added (to new or existing VIPs).
    pub backends_added: u32,
    /// Backends marked removed.
    pub backends_removed: u32,
    /// Backends whose weight changed (drained or back).
    pub backends_reweighted: u32,
    /// Ring slots written.
    pub ring_slots: u32,
    /// Quarantined backend ids freed.
    pub ids_freed: u32,
    /// Entries rewritten because the kernel did not hold what was programmed (repair only).
    pub repairs: u32,
    /// VIPs that could not be given a row or ids this time (retried on the next plan).
    pub deferred: Vec<VipKey>,
}

impl Changes {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Self) {
        self.vips_added += other.vips_added;
        self.vips_changed += other.vips_changed;
        self.vips_removed += other.vips_removed;
        self.backends_added += other.backends_added;
        self.backends_removed += other.backends_removed;
        self.backends_reweighted += other.backends_reweighted;
        self.ring_slots += other.ring_slots;
        self.ids_freed += other.ids_freed;
        self.repairs += other.repairs;
        self.deferred.extend(other.deferred.iter().cloned());
    }
}

/// What was read back from the kernel maps, for [`State::repair`].
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Every `beacon_vips` entry.
    pub vips: HashMap<abi::VipKey, abi::VipInfo>,
    /// `beacon_backends`, indexed by id (`0..=max_backends`).
    pub backends: Vec<abi::Backend>,
    /// Ring rows, for the rows the model uses.
    pub rings: HashMap<u32, Vec<u32>>,
    /// `beacon_vip_slots`, every slot.
    pub slots: Vec<abi::VipSlot>,
}

/// The model of the maps.
#[derive(Clone, Debug)]
pub struct State {
    limits: Limits,
    vips: BTreeMap<VipId, VipSlot>,
    free_rows: BTreeSet<u32>,
    row_quarantine: VecDeque<(u32, Instant)>,
    free_ids: BTreeSet<u32>,
    quarantine: VecDeque<(u32, Instant)>,
    /// What `beacon_backends[id]` should hold, for every id.
    entries: Vec<abi::Backend>,
    /// Last generation given to each id.
    generations: Vec<u32>,
    /// What `beacon_vip_slots[slot]` should hold, for every slot.
    slots: Vec<abi::VipSlot>,
    /// The slot each kernel VIP occupies (none: overflowed to the hash map).
    slot_of: HashMap<VipId, u32>,
    /// Ids of adopted maps in no VIP's ring (drained backends, or a write cut short), by
    /// address: the next plan gives each to a backend of that address or marks it removed.
    orphans: BTreeMap<SocketAddr, Vec<u32>>,
}

/// A programmed kernel VIP.
#[derive(Clone, Debug)]
pub struct VipSlot {
    /// The catalog VIP.
    pub key: VipKey,
    /// Ring row and stats slot.
    pub index: u32,
    /// Backends in canonical order, with their ids.
    pub backends: Vec<(DesiredBackend, u32)>,
    /// Backend id of each slot; empty means all zero.
    ring: Vec<u32>,
    /// Every entry written (false while a first write is incomplete).
    complete: bool,
}

impl State {
    /// An empty model: empty maps, every row and id free.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            vips: BTreeMap::new(),
            free_rows: (0..limits.max_vips).collect(),
            row_quarantine: VecDeque::new(),
            free_ids: (1..=limits.max_backends).collect(),
            quarantine: VecDeque::new(),
            entries: vec![abi::Backend::default(); limits.max_backends as usize + 1],
            generations: vec![0; limits.max_backends as usize + 1],
            slots: vec![abi::VipSlot::default(); limits.vip_slots as usize],
            slot_of: HashMap::new(),
            orphans: BTreeMap::new(),
        }
    }

    /// Intended content of every `beacon_vip_slots` slot.
    pub fn slot_entries(&self) -> &[abi::VipSlot] {
        &self.slots
    }

    /// The programmed kernel VIPs.
    pub fn vips(&self) -> &BTreeMap<VipId, VipSlot> {
        &self.vips
    }

    /// Whether every write of `vip` has succeeded.
    pub fn is_complete(&self, vip: &VipId) -> bool {
        self.vips.get(vip).is_some_and(|s| s.complete)
    }

    /// Records that [`Op::Programmed`] was reached.
    pub fn mark_complete(&mut self, vip: &VipId) {
        if let Some(slot) = self.vips.get_mut(vip) {
            slot.complete = true;
        }
    }

    /// Catalog VIPs all of whose kernel VIPs are complete.
    pub fn programmed(&self) -> BTreeSet<VipKey> {
        let mut keys: BTreeMap<&VipKey, bool> = BTreeMap::new();
        for slot in self.vips.values() {
            *keys.entry(&slot.key).or_insert(true) &= slot.complete;
        }
        keys.into_iter()
            .filter(|(_, complete)| *complete)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Ids in use or quarantined, with their intended entries.
    pub fn entries(&self) -> &[abi::Backend] {
        &self.entries
    }

    /// The ring of a VIP as backend ids (`ring_size` entries, zeros when empty).
    pub fn ring_ids(&self, vip: &VipId) -> Option<Vec<u32>> {
        let slot = self.vips.get(vip)?;
        Some(self.full_ring(&slot.ring))
    }

    /// Moves the model to `desired` and returns the writes that do it. `grace` is how long a
    /// removed backend id (or ring row) stays quarantined.
    pub fn plan(&mut self, desired: &Desired, now: Instant, grace: Duration) -> Plan {
        let mut plan = Plan::default();
        let gone: Vec<VipId> = self
            .vips
            .keys()
            .filter(|id| !desired.vips().contains_key(id))
            .copied()
            .collect();
        for id in gone {
            self.remove_vip(&id, now, &mut plan);
        }
        // Changes that free ids first, so growing VIPs find them.
        let mut changed: Vec<(i64, &DesiredVip)> = desired
            .vips()
            .values()
            .filter_map(|d| {
                let slot = self.vips.get(&d.id)?;
                let same = slot.key == d.key
                    && slot.backends.len() == d.backends.len()
                    && slot
                        .backends
                        .iter()
                        .zip(&d.backends)
                        .all(|((a, _), b)| a == b);
                (!same).then(|| {
                    let net = d.backends.len() as i64 - slot.backends.len() as i64;
                    (net, d)
                })
            })
            .collect();
        changed.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.id.cmp(&b.1.id)));
        for (_, d) in changed {
            self.update_vip(d, now, &mut plan);
        }
        for d in desired.vips().values() {
            if !self.vips.contains_key(&d.id) {
                self.add_vip(d, &mut plan);
            }
        }
        self.release_orphans(now, &mut plan);
        self.expire(now, grace, &mut plan);
        if plan.changes.backends_removed > 0 {
            plan.ops.push(Op::DestroyUdp);
        }
        plan
    }

    /// The writes that make the kernel hold the model again, given what it holds (`snap`), plus
    /// the quarantine expiries due. Every rewritten entry counts as a repair.
    pub fn repair(&mut self, snap: &Snapshot, now: Instant, grace: Duration) -> Plan {
        let mut plan = Plan::default();
        let expected: HashMap<abi::VipKey, abi::VipInfo> = self
            .vips
            .iter()
            .map(|(id, slot)| (kernel_key(id), vip_info(slot.index)))
            .collect();
        for key in snap.vips.keys() {
            if !expected.contains_key(key) {
                plan.ops.push(Op::DeleteVip { key: *key });
                plan.changes.repairs += 1;
            }
        }
        let mut unpinned = false;
        for (id, want) in self.entries.iter().enumerate().skip(1) {
            if snap.backends.get(id) != Some(want) {
                plan.ops.push(Op::Backend {
                    // id <= max_backends, a u32.
                    id: id as u32,
                    entry: *want,
                });
                plan.changes.repairs += 1;
                unpinned |= want.flags & abi::BACKEND_F_REMOVED != 0;
            }
        }
        for slot in self.vips.values() {
            let want = self.full_ring(&slot.ring);
            let have = snap.rings.get(&slot.index);
            let slots: Vec<(u32, u32)> = want
                .iter()
                .enumerate()
                .filter(|(i, id)| have.and_then(|h| h.get(*i)) != Some(*id))
                .map(|(i, id)| (i as u32, *id))
                .collect();
            if !slots.is_empty() {
                plan.changes.ring_slots += slots.len() as u32;
                plan.changes.repairs += 1;
                plan.ops.push(Op::Ring {
                    index: slot.index,
                    slots,
                });
            }
        }
        for (id, slot) in &self.vips {
            let key = kernel_key(id);
            let info = vip_info(slot.index);
            if snap.vips.get(&key) != Some(&info) {
                plan.ops.push(Op::Vip { key, info });
                plan.changes.repairs += 1;
            }
        }
        for (i, want) in self.slots.iter().enumerate() {
            if snap.slots.get(i) != Some(want) {
                // i < vip_slots, a u32. An empty version first: a lookup never sees half of
                // the real entry.
                let slot = i as u32;
                if want.key.family != 0 {
                    let mut empty = *want;
                    empty.key.family = 0;
                    plan.ops.push(Op::VipSlot { slot, entry: empty });
                }
                plan.ops.push(Op::VipSlot { slot, entry: *want });
                plan.changes.repairs += 1;
            }
        }
        for id in self.vips.keys() {
            plan.ops.push(Op::Programmed(*id));
        }
        self.expire(now, grace, &mut plan);
        if unpinned {
            plan.ops.push(Op::DestroyUdp);
        }
        plan
    }

    fn remove_vip(&mut self, id: &VipId, now: Instant, plan: &mut Plan) {
        let Some(slot) = self.vips.remove(id) else {
            return;
        };
        plan.changes.vips_removed += 1;
        if let Some(at) = self.slot_of.remove(id) {
            // XDP stops matching it from here (family 0 never matches).
            let entry = &mut self.slots[at as usize];
            entry.key.family = 0;
            plan.ops.push(Op::VipSlot {
                slot: at,
                entry: *entry,
            });
        }
        plan.ops.push(Op::DeleteVip {
            key: kernel_key(id),
        });
        let slots: Vec<(u32, u32)> = slot
            .ring
            .iter()
            .enumerate()
            .filter(|(_, id)| **id != 0)
            .map(|(i, _)| (i as u32, 0))
            .collect();
        if !slots.is_empty() {
            plan.changes.ring_slots += slots.len() as u32;
            plan.ops.push(Op::Ring {
                index: slot.index,
                slots,
            });
        }
        for (_, bid) in &slot.backends {
            self.mark_removed(*bid, now, plan);
        }
        self.row_quarantine.push_back((slot.index, now));
    }

    fn update_vip(&mut self, d: &DesiredVip, now: Instant, plan: &mut Plan) {
        let Some(slot) = self.vips.get(&d.id).cloned() else {
            return;
        };
        let old: BTreeMap<SocketAddr, (&DesiredBackend, u32)> = slot
            .backends
            .iter()
            .map(|(b, id)| (b.addr, (b, *id)))
            .collect();
        let added: Vec<&DesiredBackend> = d
            .backends
            .iter()
            .filter(|b| !old.contains_key(&b.addr))
            .collect();
        let Some(new_ids) = self.ids_for(&added) else {
            plan.changes.deferred.push(d.key.clone());
            return;
        };
        let mut new_ids = new_ids.into_iter();
        let mut backends = Vec::with_capacity(d.backends.len());
        let mut writes = Vec::new();
        for b in &d.backends {
            match old.get(&b.addr) {
                Some((was, id)) => {
                    if was.weight != b.weight {
                        plan.changes.backends_reweighted += 1;
                        writes.push((*id, b));
                    }
                    backends.push((b.clone(), *id));
                }
                None => {
                    // ids_for returned one id per added backend, in order.
                    let (id, fresh) = new_ids.next().unwrap_or_default();
                    plan.changes.backends_added += 1;
                    if fresh {
                        plan.ops.push(Op::ResetBackendStats { id });
                    }
                    writes.push((id, b));
                    backends.push((b.clone(), id));
                }
            }
        }
        let left: Vec<u32> = old
            .iter()
            .filter(|(addr, _)| !d.backends.iter().any(|b| b.addr == **addr))
            .map(|(_, (_, id))| *id)
            .collect();
        for (id, b) in writes {
            let entry = self.backend_entry(id, b);
            plan.ops.push(Op::Backend { id, entry });
        }
        let ring = ring_ids(d, &backends);
        let index = slot.index;
        let old_ring = self.full_ring(&slot.ring);
        let new_full = self.full_ring(&ring);
        let slots: Vec<(u32, u32)> = old_ring
            .iter()
            .zip(&new_full)
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .map(|(i, (_, b))| (i as u32, *b))
            .collect();
        if !slots.is_empty() {
            plan.changes.ring_slots += slots.len() as u32;
            plan.ops.push(Op::Ring { index, slots });
        }
        for id in left {
            self.mark_removed(id, now, plan);
        }
        plan.changes.vips_changed += 1;
        if let Some(slot) = self.vips.get_mut(&d.id) {
            slot.key = d.key.clone();
            slot.backends = backends;
            slot.ring = ring;
        }
    }

    fn add_vip(&mut self, d: &DesiredVip, plan: &mut Plan) {
        let Some(index) = self.take_row() else {
            plan.changes.deferred.push(d.key.clone());
            return;
        };
        let Some(ids) = self.ids_for(&d.backends.iter().collect::<Vec<_>>()) else {
            self.free_rows.insert(index);
            plan.changes.deferred.push(d.key.clone());
            return;
        };
        plan.changes.vips_added += 1;
        plan.ops.push(Op::ResetVipStats { index });
        let mut backends = Vec::with_capacity(d.backends.len());
        for (b, (id, fresh)) in d.backends.iter().zip(ids) {
            plan.changes.backends_added += 1;
            if fresh {
                plan.ops.push(Op::ResetBackendStats { id });
            }
            let entry = self.backend_entry(id, b);
            plan.ops.push(Op::Backend { id, entry });
            backends.push((b.clone(), id));
        }
        let ring = ring_ids(d, &backends);
        let slots: Vec<(u32, u32)> = ring
            .iter()
            .enumerate()
            .map(|(i, id)| (i as u32, *id))
            .collect();
        if !slots.is_empty() {
            plan.changes.ring_slots += slots.len() as u32;
            plan.ops.push(Op::Ring { index, slots });
        }
        plan.ops.push(Op::Vip {
            key: kernel_key(&d.id),
            info: vip_info(index),
        });
        self.place_slot(d.id, index, plan);
        plan.ops.push(Op::Programmed(d.id));
        self.vips.insert(
            d.id,
            VipSlot {
                key: d.key.clone(),
                index,
                backends,
                ring,
                complete: false,
            },
        );
    }

    /// Puts a new VIP into XDP's slot index: the first free candidate slot, written empty
    /// (family 0) then whole; or, with every candidate taken, the overflow mark on the first
    /// candidate (XDP then asks `beacon_vips`).
    fn place_slot(&mut self, id: VipId, index: u32, plan: &mut Plan) {
        let key = kernel_key(&id);
        let n = self.limits.vip_slots;
        let h = abi::vip_slot_hash(&key);
        let candidates: Vec<u32> = (0..abi::VIP_SLOT_PROBES)
            .map(|i| h.wrapping_add(i) & (n - 1))
            .collect();
        let taken: BTreeSet<u32> = self.slot_of.values().copied().collect();
        match candidates.iter().find(|c| !taken.contains(c)) {
            Some(&at) => {
                let entry = &mut self.slots[at as usize];
                let overflow = entry.overflow;
                let mut empty = abi::VipSlot {
                    key,
                    info: vip_info(index),
                    overflow,
                };
                empty.key.family = 0;
                plan.ops.push(Op::VipSlot {
                    slot: at,
                    entry: empty,
                });
                *entry = abi::VipSlot {
                    key,
                    info: vip_info(index),
                    overflow,
                };
                plan.ops.push(Op::VipSlot {
                    slot: at,
                    entry: *entry,
                });
                self.slot_of.insert(id, at);
            }
            None => {
                let first = candidates[0];
                let entry = &mut self.slots[first as usize];
                if entry.overflow == 0 {
                    entry.overflow = 1;
                    plan.ops.push(Op::VipSlot {
                        slot: first,
                        entry: *entry,
                    });
                }
            }
        }
    }

    /// The entry of id `id` for backend `b`: its address, drain flag and the id's generation.
    fn backend_entry(&mut self, id: u32, b: &DesiredBackend) -> abi::Backend {
        let flags = if b.weight == 0 {
            abi::BACKEND_F_DRAIN
        } else {
            0
        };
        let entry = abi::Backend::new(b.addr, flags, self.generations[id as usize]);
        self.entries[id as usize] = entry;
        entry
    }

    fn mark_removed(&mut self, id: u32, now: Instant, plan: &mut Plan) {
        let entry = &mut self.entries[id as usize];
        entry.flags |= abi::BACKEND_F_REMOVED;
        plan.ops.push(Op::Backend { id, entry: *entry });
        plan.changes.backends_removed += 1;
        self.quarantine.push_back((id, now));
    }

    /// An id for each of `backends`, in order, with whether it is new (`false`: an orphan of
    /// adopted maps with the backend's address, kept with its generation and counters); `None`
    /// (and nothing taken) if there are not enough.
    fn ids_for(&mut self, backends: &[&DesiredBackend]) -> Option<Vec<(u32, bool)>> {
        let mut claimed: Vec<Option<u32>> = Vec::with_capacity(backends.len());
        for b in backends {
            let id = self.orphans.get_mut(&b.addr).and_then(Vec::pop);
            claimed.push(id);
        }
        let needed = claimed.iter().filter(|c| c.is_none()).count();
        let Some(fresh) = self.take_ids(needed) else {
            for (b, id) in backends.iter().zip(claimed) {
                if let Some(id) = id {
                    self.orphans.entry(b.addr).or_default().push(id);
                }
            }
            return None;
        };
        let mut fresh = fresh.into_iter();
        Some(
            claimed
                .into_iter()
                .map(|c| match c {
                    Some(id) => (id, false),
                    // take_ids returned exactly `needed` ids.
                    None => (fresh.next().unwrap_or_default(), true),
                })
                .collect(),
        )
    }

    /// Marks removed every orphan no backend claimed in this plan.
    fn release_orphans(&mut self, now: Instant, plan: &mut Plan) {
        let orphans = std::mem::take(&mut self.orphans);
        for id in orphans.into_values().flatten() {
            self.mark_removed(id, now, plan);
        }
    }

    /// `n` free ids (lowest first), each with a new generation, reusing the oldest quarantined
    /// ones if needed; `None` (and nothing taken) if there are not enough.
    fn take_ids(&mut self, n: usize) -> Option<Vec<u32>> {
        if self.free_ids.len() + self.quarantine.len() < n {
            return None;
        }
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            let id = match self.free_ids.pop_first() {
                Some(id) => id,
                None => self.quarantine.pop_front()?.0,
            };
            let generation = &mut self.generations[id as usize];
            *generation = generation.wrapping_add(1).max(1);
            ids.push(id);
        }
        Some(ids)
    }

    /// A free ring row (lowest first), reusing the oldest quarantined row if needed.
    fn take_row(&mut self) -> Option<u32> {
        self.free_rows
            .pop_first()
            .or_else(|| self.row_quarantine.pop_front().map(|(row, _)| row))
    }

    /// Frees quarantined ids and rows older than `grace`; zeroes the ids' entries.
    fn expire(&mut self, now: Instant, grace: Duration, plan: &mut Plan) {
        while let Some(&(id, since)) = self.quarantine.front() {
            if now.saturating_duration_since(since) < grace {
                break;
            }
            self.quarantine.pop_front();
            self.entries[id as usize] = abi::Backend::default();
            plan.ops.push(Op::Backend {
                id,
                entry: abi::Backend::default(),
            });
            plan.changes.ids_freed += 1;
            self.free_ids.insert(id);
        }
        while let Some(&(row, since)) = self.row_quarantine.front() {
            if now.saturating_duration_since(since) < grace {
                break;
            }
            self.row_quarantine.pop_front();
            self.free_rows.insert(row);
        }
    }

    fn full_ring(&self, ring: &[u32]) -> Vec<u32> {
        if ring.is_empty() {
            vec![0; self.limits.ring_size as usize]
        } else {
            ring.to_vec()
        }
    }
}

/// The ring of `d` as backend ids, given each backend's id (same order as `d.backends`).
fn ring_ids(d: &DesiredVip, backends: &[(DesiredBackend, u32)]) -> Vec<u32> {
    d.ring
        .iter()
        .map(|&i| backends.get(i as usize).map_or(0, |(_, id)| *id))
        .collect()
}

/// The `beacon_vips` key of a kernel VIP.
pub fn kernel_key(id: &VipId) -> abi::VipKey {
    abi::VipKey::new(id.addr, proto_number(id.protocol))
}

/// `IPPROTO_TCP` or `IPPROTO_UDP`.
pub fn proto_number(protocol: Protocol) -> u8 {
    match protocol {
        Protocol::Tcp => abi::PROTO_TCP,
        Protocol::Udp => abi::PROTO_UDP,
    }
}

fn vip_info(index: u32) -> abi::VipInfo {
    abi::VipInfo { index, flags: 0 }
}

mod adopt;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use beacon_catalog::vip::{Backend, NamedAddresses, VipAddress, VipTable};

use super::*;
use crate::desired::desired_with_limits;

const LIMITS: Limits = Limits {
    max_vips: 4,
    max_backends: 8,
    ring_size: 13,
    vip_slots: 16,
};
const GRACE: Duration = Duration::from_secs(10);

fn be(addr: &str, weight: u32) -> Backend {
    let sa: SocketAddr = addr.parse().unwrap();
    Backend {
        ip: sa.ip(),
        port: sa.port(),
        weight,
        node: "n".into(),
        agent_ip: None,
    }
}

fn key(vip: &str) -> VipKey {
    let sa: SocketAddr = vip.parse().unwrap();
    VipKey {
        protocol: Protocol::Tcp,
        address: VipAddress::Ip(sa.ip()),
        port: sa.port(),
    }
}

fn vid(vip: &str) -> VipId {
    VipId {
        protocol: Protocol::Tcp,
        addr: vip.parse().unwrap(),
    }
}

fn want(vips: &[(&str, Vec<Backend>)]) -> Desired {
    let table = VipTable {
        vips: vips.iter().map(|(v, b)| (key(v), b.clone())).collect(),
        warnings: Vec::new(),
        registered: Default::default(),
    };
    desired_with_limits(&table, &NamedAddresses::default(), &BTreeSet::new(), LIMITS)
}

/// Applies a plan to a simulated kernel, as the executor would.
#[derive(Default)]
struct Kernel {
    vips: HashMap<abi::VipKey, abi::VipInfo>,
    backends: BTreeMap<u32, abi::Backend>,
    rings: HashMap<u32, Vec<u32>>,
    slots: BTreeMap<u32, abi::VipSlot>,
    destroys: u32,
}

impl Kernel {
    fn run(&mut self, state: &mut State, plan: &Plan) {
        for op in &plan.ops {
            match op {
                Op::Backend { id, entry } => {
                    self.backends.insert(*id, *entry);
                }
                Op::Ring { index, slots } => {
                    let row = self
                        .rings
                        .entry(*index)
                        .or_insert_with(|| vec![0; LIMITS.ring_size as usize]);
                    for (slot, id) in slots {
                        row[*slot as usize] = *id;
                    }
                }
                Op::Vip { key, info } => {
                    self.vips.insert(*key, *info);
                }
                Op::DeleteVip { key } => {
                    self.vips.remove(key);
                }
                Op::VipSlot { slot, entry } => {
                    self.slots.insert(*slot, *entry);
                }
                Op::Programmed(vip) => state.mark_complete(vip),
                Op::DestroyUdp => self.destroys += 1,
                Op::ResetVipStats { .. } | Op::ResetBackendStats { .. } => {}
            }
        }
    }

    fn snapshot(&self) -> Snapshot {
        let mut backends = vec![abi::Backend::default(); LIMITS.max_backends as usize + 1];
        for (id, b) in &self.backends {
            backends[*id as usize] = *b;
        }
        let mut slots = vec![abi::VipSlot::default(); LIMITS.vip_slots as usize];
        for (i, e) in &self.slots {
            slots[*i as usize] = *e;
        }
        Snapshot {
            vips: self.vips.clone(),
            backends,
            rings: self.rings.clone(),
            slots,
        }
    }

    /// The backend addresses a VIP's ring names, as the data plane would see them (looking the
    /// VIP up in the slots first, as XDP does).
    fn ring_addrs(&self, vip: &str) -> BTreeSet<SocketAddr> {
        let key = kernel_key(&vid(vip));
        let info = self.vips[&key];
        let in_slot = self.slots.values().any(|s| s.key == key && s.info == info);
        assert!(
            in_slot,
            "{vip} is in beacon_vips but not in beacon_vip_slots"
        );
        self.rings[&info.index]
            .iter()
            .filter(|id| **id != 0)
            .map(|id| self.backends[id])
            .filter(|b| b.flags == 0)
            .map(|b| b.socket_addr())
            .collect()
    }
}

fn three() -> Vec<Backend> {
    vec![
        be("10.0.0.1:80", 1),
        be("10.0.0.2:80", 1),
        be("10.0.0.3:80", 1),
    ]
}

#[test]
fn a_new_vip_is_written_backends_then_ring_then_entry() {
    let mut s = State::new(LIMITS);
    let now = Instant::now();
    let plan = s.plan(&want(&[("10.9.0.1:80", three())]), now, GRACE);
    let kinds: Vec<&str> = plan
        .ops
        .iter()
        .map(|op| match op {
            Op::Backend { .. } => "backend",
            Op::Ring { .. } => "ring",
            Op::Vip { .. } => "vip",
            Op::VipSlot { entry, .. } if entry.key.family == 0 => "empty-slot",
            Op::VipSlot { .. } => "slot",
            Op::Programmed(_) => "programmed",
            Op::ResetVipStats { .. } | Op::ResetBackendStats { .. } => "reset",
            Op::DeleteVip { .. } | Op::DestroyUdp => "other",
        })
        .filter(|k| *k != "reset")
        .collect();
    assert_eq!(
        kinds,
        [
            "backend",
            "backend",
            "backend",
            "ring",
            "vip",
            "empty-slot",
            "slot",
            "programmed"
        ]
    );
    assert_eq!(plan.changes.vips_added, 1);
    assert_eq!(plan.changes.ring_slots, 13);
    assert!(s.programmed().is_empty(), "not before the executor ran it");
    let mut k = Kernel::default();
    k.run(&mut s, &plan);
    assert_eq!(s.programmed(), [key("10.9.0.1:80")].into());
    assert_eq!(k.ring_addrs("10.9.0.1:80").len(), 3);

    // The same desired state again: nothing to do.
    let again = s.plan(&want(&[("10.9.0.1:80", three())]), now, GRACE);
    assert!(again.ops.is_empty(), "{again:?}");
}

#[test]
fn ids_and_rows_are_stable_and_only_changed_slots_are_written() {
    let mut s = State::new(LIMITS);
    let mut k = Kernel::default();
    let t0 = Instant::now();
    let p = s.plan(
        &want(&[("10.9.0.1:80", three()), ("10.9.0.2:80", three())]),
        t0,
        GRACE,
    );
    k.run(&mut s, &p);
    let ids_before: Vec<(SocketAddr, u32)> = s.vips()[&vid("10.9.0.2:80")]
        .backends
        .iter()
        .map(|(b, id)| (b.addr, *id))
        .collect();
    let row_before = s.vips()[&vid("10.9.0.2:80")].index;
    let ring_before = s.ring_ids(&vid("10.9.0.2:80")).unwrap();

    // Remove 10.0.0.2 from the second VIP only.
    let two = vec![be("10.0.0.1:80", 1), be("10.0.0.3:80", 1)];
    let p = s.plan(
        &want(&[("10.9.0.1:80", three()), ("10.9.0.2:80", two)]),
        t0,
        GRACE,
    );
    assert_eq!((p.changes.vips_changed, p.changes.backends_removed), (1, 1));
    let removed_id = ids_before[1].1;
    // The ring is written before the removed backend is marked, then the iterator runs.
    let ring_at = p
        .ops
        .iter()
        .position(|op| matches!(op, Op::Ring { .. }))
        .unwrap();
    let mark_at = p
        .ops
        .iter()
        .position(|op| matches!(op, Op::Backend { id, entry } if *id == removed_id && entry.flags & abi::BACKEND_F_REMOVED != 0))
        .unwrap();
    assert!(ring_at < mark_at);
    assert_eq!(p.ops.last(), Some(&Op::DestroyUdp));
    // Only the slots whose backend changed were written: the removed backend's, and the few
    // others Maglev moves.
    let moved = ring_before.iter().filter(|id| **id == removed_id).count() as u32;
    let ring_after = s.ring_ids(&vid("10.9.0.2:80")).unwrap();
    let differ = ring_before
        .iter()
        .zip(&ring_after)
        .filter(|(a, b)| a != b)
        .count() as u32;
    assert_eq!(p.changes.ring_slots, differ);
    assert!(moved <= differ && differ < LIMITS.ring_size);
    k.run(&mut s, &p);
    let after = &s.vips()[&vid("10.9.0.2:80")];
    assert_eq!(after.index, row_before);
    let ids_after: Vec<(SocketAddr, u32)> =
        after.backends.iter().map(|(b, id)| (b.addr, *id)).collect();
    assert_eq!(ids_after, [ids_before[0], ids_before[2]]);
    assert_eq!(
        k.ring_addrs("10.9.0.2:80"),
        [
            "10.0.0.1:80".parse().unwrap(),
            "10.0.0.3:80".parse().unwrap()
        ]
        .into()
    );
    assert_eq!(k.ring_addrs("10.9.0.1:80").len(), 3, "other VIP untouched");
    assert_eq!(
        k.backends[&removed_id].flags,
        abi::BACKEND_F_REMOVED,
        "still there, marked"
    );

    // Within the grace period the id stays quarantined; after it, it is zeroed and freed.
    let same = want(&[
        ("10.9.0.1:80", three()),
        (
            "10.9.0.2:80",
            vec![be("10.0.0.1:80", 1), be("10.0.0.3:80", 1)],
        ),
    ]);
    assert!(s.plan(&same, t0 + GRACE / 2, GRACE).ops.is_empty());
    let p = s.plan(&same, t0 + GRACE, GRACE);
    assert_eq!(p.changes.ids_freed, 1);
    assert_eq!(
        p.ops,
        [Op::Backend {
            id: removed_id,
            entry: abi::Backend::default()
        }]
    );
}

#[test]
fn drain_sets_the_flag_and_leaves_the_ring() {
    let mut s = State::new(LIMITS);
    let mut k = Kernel::default();
    let t0 = Instant::now();
    let p = s.plan(&want(&[("10.9.0.1:80", three())]), t0, GRACE);
    k.run(&mut s, &p);
    let drained = vec![
        be("10.0.0.1:80", 1),
        be("10.0.0.2:80", 0),
        be("10.0.0.3:80", 1),
    ];
    let p = s.plan(&want(&[("10.9.0.1:80", drained)]), t0, GRACE);
    assert_eq!(
        (p.changes.backends_reweighted, p.changes.backends_removed),
        (1, 0)
    );
    assert!(
        !p.ops.contains(&Op::DestroyUdp),
        "drained keeps its sockets"
    );
    k.run(&mut s, &p);
    let id = s.vips()[&vid("10.9.0.1:80")].backends[1].1;
    assert_eq!(k.backends[&id].flags, abi::BACKEND_F_DRAIN);
    assert!(!k.rings[&0].contains(&id));
    // Back to weight 1: the flag is cleared before the ring names it again.
    let p = s.plan(&want(&[("10.9.0.1:80", three())]), t0, GRACE);
    let clear_at = p
        .ops
        .iter()
        .position(|op| matches!(op, Op::Backend { id: i, entry } if *i == id && entry.flags == 0))
        .unwrap();
    let ring_at = p
        .ops
        .iter()
        .position(|op| matches!(op, Op::Ring { .. }))
        .unwrap();
    assert!(clear_at < ring_at);
    k.run(&mut s, &p);
    assert!(k.rings[&0].contains(&id));
}

#[test]
fn removal_runs_in_reverse_and_frees_capacity() {
    let mut s = State::new(LIMITS);
    let mut k = Kernel::default();
    let t0 = Instant::now();
    let p = s.plan(&want(&[("10.9.0.1:80", three())]), t0, GRACE);
    k.run(&mut s, &p);
    let p = s.plan(&want(&[]), t0, GRACE);
    assert!(matches!(p.ops[0], Op::VipSlot { entry, .. } if entry.key.family == 0));
    assert!(matches!(p.ops[1], Op::DeleteVip { .. }));
    assert!(matches!(p.ops[2], Op::Ring { .. }));
    assert_eq!(p.changes.backends_removed, 3);
    k.run(&mut s, &p);
    assert!(k.vips.is_empty());
    assert!(k.rings[&0].iter().all(|id| *id == 0));
    assert!(s.programmed().is_empty());

    // Capacity: 8 ids, 3 quarantined. A VIP with 8 backends reuses them early, with new
    // generations.
    let eight: Vec<Backend> = (1..=8).map(|i| be(&format!("10.0.1.{i}:80"), 1)).collect();
    let old_gen: Vec<u32> = (1..=3).map(|id| k.backends[&id].generation).collect();
    let p = s.plan(&want(&[("10.9.0.5:80", eight)]), t0, GRACE);
    assert!(p.changes.deferred.is_empty());
    k.run(&mut s, &p);
    assert_eq!(s.programmed(), [key("10.9.0.5:80")].into());
    for id in 1..=3u32 {
        assert!(k.backends[&id].generation > old_gen[id as usize - 1]);
        assert_eq!(k.backends[&id].flags, 0);
    }
}

#[test]
fn vip_rows_run_out_and_are_retried() {
    let mut s = State::new(Limits {
        max_vips: 1,
        ..LIMITS
    });
    // desired() would skip the second VIP; a hand-made Desired beyond capacity is deferred.
    let d = desired_with_limits(
        &VipTable {
            vips: [(key("10.9.0.1:80"), three()), (key("10.9.0.2:80"), three())]
                .into_iter()
                .collect(),
            warnings: Vec::new(),
            registered: Default::default(),
        },
        &NamedAddresses::default(),
        &BTreeSet::new(),
        LIMITS,
    );
    let p = s.plan(&d, Instant::now(), GRACE);
    assert_eq!(p.changes.vips_added, 1);
    assert_eq!(p.changes.deferred, [key("10.9.0.2:80")]);
}

#[test]
fn repair_rewrites_what_drifted_and_counts_it() {
    let mut s = State::new(LIMITS);
    let mut k = Kernel::default();
    let t0 = Instant::now();
    let p = s.plan(
        &want(&[("10.9.0.1:80", three()), ("10.9.0.2:80", three())]),
        t0,
        GRACE,
    );
    k.run(&mut s, &p);
    let clean = s.repair(&k.snapshot(), t0, GRACE);
    assert_eq!(clean.changes.repairs, 0);

    // Someone deletes a VIP entry, zeroes a ring slot, corrupts a backend, adds a stray VIP.
    k.vips.remove(&kernel_key(&vid("10.9.0.1:80")));
    k.rings.get_mut(&1).unwrap()[5] = 0;
    k.backends.get_mut(&2).unwrap().port = 9;
    k.vips.insert(
        kernel_key(&vid("10.9.9.9:80")),
        abi::VipInfo { index: 3, flags: 0 },
    );
    let slot = *k.slots.keys().next().unwrap();
    k.slots.get_mut(&slot).unwrap().info.index = 3;
    let p = s.repair(&k.snapshot(), t0, GRACE);
    assert_eq!(p.changes.repairs, 5);
    assert_eq!(p.changes.ring_slots, 1);
    k.run(&mut s, &p);
    assert_eq!(s.repair(&k.snapshot(), t0, GRACE).changes.repairs, 0);
    assert_eq!(k.vips.len(), 2);
    assert_eq!(k.ring_addrs("10.9.0.1:80").len(), 3);
}

#[test]
fn an_incomplete_vip_is_not_programmed_until_repaired() {
    let mut s = State::new(LIMITS);
    let mut k = Kernel::default();
    let t0 = Instant::now();
    let p = s.plan(&want(&[("10.9.0.1:80", three())]), t0, GRACE);
    // The executor failed before the VIP entry: only the backends were written.
    let partial = Plan {
        ops: p
            .ops
            .iter()
            .filter(|op| matches!(op, Op::Backend { .. }))
            .cloned()
            .collect(),
        ..Plan::default()
    };
    k.run(&mut s, &partial);
    assert!(s.programmed().is_empty());
    let p = s.repair(&k.snapshot(), t0, GRACE);
    assert_eq!(
        p.changes.repairs, 3,
        "the ring row, the VIP entry and its slot"
    );
    k.run(&mut s, &p);
    assert_eq!(s.programmed(), [key("10.9.0.1:80")].into());
}

#[test]
fn full_slot_candidates_overflow_to_the_hash_map() {
    // Four slots, four probes: every VIP's candidates are all four slots; the fifth overflows.
    let limits = Limits {
        max_vips: 8,
        vip_slots: 4,
        ..LIMITS
    };
    let table = VipTable {
        vips: (1..=5)
            .map(|i| (key(&format!("10.9.0.{i}:80")), vec![be("10.0.0.1:80", 1)]))
            .collect(),
        warnings: Vec::new(),
        registered: Default::default(),
    };
    let d = desired_with_limits(&table, &NamedAddresses::default(), &BTreeSet::new(), limits);
    let mut s = State::new(limits);
    let p = s.plan(&d, Instant::now(), GRACE);
    assert_eq!(p.changes.vips_added, 5);
    let marks = p
        .ops
        .iter()
        .filter(|op| matches!(op, Op::VipSlot { entry, .. } if entry.overflow == 1))
        .count();
    assert_eq!(
        marks, 1,
        "one overflow mark, on the fifth VIP's first candidate"
    );
    let used = s
        .slot_entries()
        .iter()
        .filter(|e| e.key.family != 0)
        .count();
    assert_eq!(used, 4);
}

/// Ops that change what the data plane does (everything but counter resets and markers).
fn writes(plan: &Plan) -> Vec<&Op> {
    plan.ops
        .iter()
        .filter(|op| {
            !matches!(
                op,
                Op::Programmed(_) | Op::ResetVipStats { .. } | Op::ResetBackendStats { .. }
            )
        })
        .collect()
}

/// Maps a previous agent left: two VIPs, one with a drained backend, and a backend of a third
/// VIP removed moments ago (still quarantined).
fn left_behind(t0: Instant) -> (Kernel, Desired) {
    let mut s = State::new(LIMITS);
    let mut k = Kernel::default();
    let drained = vec![be("10.0.0.1:80", 1), be("10.0.0.2:80", 0)];
    let before = want(&[
        ("10.9.0.1:80", three()),
        ("10.9.0.2:80", drained.clone()),
        (
            "10.9.0.3:80",
            vec![be("10.0.0.7:80", 1), be("10.0.0.8:80", 1)],
        ),
    ]);
    let p = s.plan(&before, t0, GRACE);
    k.run(&mut s, &p);
    let now = want(&[
        ("10.9.0.1:80", three()),
        ("10.9.0.2:80", drained),
        ("10.9.0.3:80", vec![be("10.0.0.7:80", 1)]),
    ]);
    let p = s.plan(&now, t0, GRACE);
    k.run(&mut s, &p);
    (k, now)
}

#[test]
fn adopted_maps_need_no_repair_and_the_same_catalog_writes_nothing() {
    let t0 = Instant::now();
    let (mut k, desired) = left_behind(t0);
    let before = k.snapshot();
    let mut s = State::adopt(LIMITS, &before, t0, 1_000);
    assert_eq!(s.vips().len(), 3);
    assert!(s.vips().values().all(|v| v.complete));
    let repair = s.repair(&before, t0, GRACE);
    assert_eq!(repair.changes.repairs, 0, "{repair:?}");

    let p = s.plan(&desired, t0, GRACE);
    // Weights are not in the maps: a backend entry may be written again, identical.
    for op in writes(&p) {
        match op {
            Op::Backend { id, entry } => assert_eq!(k.backends[id], *entry, "{op:?}"),
            other => panic!("the same catalog wrote {other:?}"),
        }
    }
    assert_eq!((p.changes.ring_slots, p.changes.backends_removed), (0, 0));
    k.run(&mut s, &p);
    let after = k.snapshot();
    assert_eq!(after.vips, before.vips);
    assert_eq!(after.rings, before.rings);
    assert_eq!(after.backends, before.backends);
    assert_eq!(after.slots, before.slots);
    let keys: BTreeSet<VipKey> = ["10.9.0.1:80", "10.9.0.2:80", "10.9.0.3:80"]
        .map(key)
        .into();
    assert_eq!(s.programmed(), keys);
    // The drained backend kept its id: it is no orphan.
    let drained = &s.vips()[&vid("10.9.0.2:80")].backends;
    assert_eq!(drained.len(), 2);
    assert!(drained.iter().any(|(b, _)| b.weight == 0));
}

#[test]
fn adopted_maps_move_to_a_changed_catalog_by_diff() {
    let t0 = Instant::now();
    let (mut k, _) = left_behind(t0);
    let mut s = State::adopt(LIMITS, &k.snapshot(), t0, 1_000);
    let ids_before: BTreeMap<SocketAddr, u32> = s.vips()[&vid("10.9.0.1:80")]
        .backends
        .iter()
        .map(|(b, id)| (b.addr, *id))
        .collect();
    // 10.9.0.2 (and its drained backend) is gone; 10.9.0.1 loses a backend; a VIP is new.
    let changed = want(&[
        (
            "10.9.0.1:80",
            vec![be("10.0.0.1:80", 1), be("10.0.0.2:80", 1)],
        ),
        ("10.9.0.3:80", vec![be("10.0.0.7:80", 1)]),
        ("10.9.0.4:80", vec![be("10.0.0.9:80", 1)]),
    ]);
    let row = s.vips()[&vid("10.9.0.1:80")].index;
    let p = s.plan(&changed, t0, GRACE);
    assert_eq!(p.changes.vips_removed, 1);
    assert_eq!(p.changes.vips_added, 1);
    let moved: usize = (p.ops.iter())
        .filter_map(|op| match op {
            Op::Ring { index, slots } if *index == row => Some(slots.len()),
            _ => None,
        })
        .sum();
    assert!(
        moved > 0 && moved < LIMITS.ring_size as usize / 2,
        "{moved} slots moved"
    );
    k.run(&mut s, &p);
    assert_eq!(
        k.ring_addrs("10.9.0.1:80"),
        ["10.0.0.1:80", "10.0.0.2:80"]
            .map(|a| a.parse().unwrap())
            .into()
    );
    for (b, id) in &s.vips()[&vid("10.9.0.1:80")].backends {
        assert_eq!(ids_before[&b.addr], *id, "a kept backend keeps its id");
    }
    assert_eq!(k.ring_addrs("10.9.0.4:80").len(), 1);
    assert!(!k.vips.contains_key(&kernel_key(&vid("10.9.0.2:80"))));
    // A fresh id's generation starts above the epoch: nothing pinned before the restart
    // matches it.
    let (_, new_id) = s.vips()[&vid("10.9.0.4:80")].backends[0];
    assert!(k.backends[&new_id].generation > 1_000);
    assert_eq!(s.repair(&k.snapshot(), t0, GRACE).changes.repairs, 0);
}

#[test]
fn an_orphan_is_claimed_by_its_address_or_marked_removed() {
    let t0 = Instant::now();
    let (mut k, _) = left_behind(t0);
    // A crash between writing a new backend and the ring that names it.
    let orphan = abi::Backend::new("10.0.0.5:80".parse().unwrap(), 0, 3);
    k.backends.insert(8, orphan);
    let mut s = State::adopt(LIMITS, &k.snapshot(), t0, 1_000);
    let p = s.plan(
        &want(&[
            ("10.9.0.1:80", three()),
            ("10.9.0.5:80", vec![be("10.0.0.5:80", 1)]),
        ]),
        t0,
        GRACE,
    );
    k.run(&mut s, &p);
    assert_eq!(s.vips()[&vid("10.9.0.5:80")].backends[0].1, 8);
    assert_eq!(k.backends[&8].generation, 3, "claimed with its generation");

    k.backends
        .insert(7, abi::Backend::new("10.0.0.6:80".parse().unwrap(), 0, 2));
    let mut s = State::adopt(LIMITS, &k.snapshot(), t0, 1_000);
    let p = s.plan(&want(&[("10.9.0.1:80", three())]), t0, GRACE);
    k.run(&mut s, &p);
    assert_ne!(k.backends[&7].flags & abi::BACKEND_F_REMOVED, 0);
}

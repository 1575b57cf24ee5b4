//! Adopting maps that a previous agent left pinned: the model rebuilt from what the kernel
//! holds, so that the first plan diffs the catalog against the maps (writing only what differs)
//! instead of starting from empty maps.
//!
//! The maps do not say everything the model knows, so adoption fills in the rest:
//!
//! - **Which VIP a backend id belongs to**: the VIP whose ring row names it. Ids that no ring
//!   names (drained backends, or writes a crash cut short) become orphans, claimed by the next
//!   plan for a backend of the same address or else marked removed.
//! - **Catalog keys and weights**: unknown. An adopted VIP carries its literal address as its key
//!   and weight 1 (0 when drained), so the first plan treats it as changed: it rebuilds the ring
//!   from the catalog and writes only the slots that differ (none when nothing changed).
//! - **Generations of free ids**: zeroed entries keep none, so free ids restart at `epoch` (the
//!   caller passes the clock's seconds), far above what an earlier run can have reached: a flow
//!   still pinned to an id freed before the restart cannot match the id's next backend.
//! - **Quarantine**: ids marked removed are quarantined from `now`; rows no VIP uses are free.

use std::collections::BTreeSet;
use std::time::Instant;

use beacon_catalog::vip::{Protocol, VipAddress, VipKey};
use beacon_ebpf::abi;

use super::{DesiredBackend, Limits, Snapshot, State, VipId, VipSlot, vip_info};

impl State {
    /// The model of maps that hold `snap` (read back whole: every VIP, backend and slot, and the
    /// ring row of each VIP). Entries that make no sense (a row out of range or used twice, an
    /// unknown protocol) stay out of the model, so the next repair rewrites or deletes them.
    pub fn adopt(limits: Limits, snap: &Snapshot, now: Instant, epoch: u32) -> Self {
        let mut state = Self::new(limits);
        for (id, entry) in snap.backends.iter().enumerate().skip(1) {
            if id > limits.max_backends as usize {
                break;
            }
            state.entries[id] = *entry;
            state.generations[id] = match entry.family {
                0 => epoch,
                _ => entry.generation,
            };
        }
        let owned = state.adopt_vips(snap);
        state.adopt_ids(&owned, now);
        state.adopt_slots(snap);
        state
    }

    /// Adds each `beacon_vips` entry with its ring row and the live backends the row names;
    /// returns the ids they own.
    fn adopt_vips(&mut self, snap: &Snapshot) -> BTreeSet<u32> {
        let mut owned = BTreeSet::new();
        let mut keys: Vec<_> = snap.vips.iter().collect();
        keys.sort_by_key(|(_, info)| info.index);
        for (key, info) in keys {
            let Some(id) = vip_id(key) else { continue };
            if info.flags != 0 || !self.free_rows.remove(&info.index) {
                continue;
            }
            let row = snap.rings.get(&info.index).cloned().unwrap_or_default();
            let mut backends = Vec::new();
            for &bid in &row {
                let live = (self.entries.get(bid as usize))
                    .is_some_and(|e| e.family != 0 && e.flags & abi::BACKEND_F_REMOVED == 0);
                if bid != 0 && live && owned.insert(bid) {
                    backends.push((adopted_backend(&self.entries[bid as usize]), bid));
                }
            }
            backends.sort_by_key(|b| b.0.addr);
            let ring = match row.iter().all(|&b| b == 0) {
                true => Vec::new(),
                false => row,
            };
            let slot = VipSlot {
                key: literal_key(&id),
                index: info.index,
                backends,
                ring,
                complete: true,
            };
            self.vips.insert(id, slot);
        }
        owned
    }

    /// Sorts every id that no adopted VIP owns: free (zeroed), quarantined (marked removed) or
    /// orphaned (anything else).
    fn adopt_ids(&mut self, owned: &BTreeSet<u32>, now: Instant) {
        for id in 1..=self.limits.max_backends {
            let entry = self.entries[id as usize];
            if owned.contains(&id) {
                self.free_ids.remove(&id);
            } else if entry.family == 0 {
                continue;
            } else if entry.flags & abi::BACKEND_F_REMOVED != 0 {
                self.free_ids.remove(&id);
                self.quarantine.push_back((id, now));
            } else {
                self.free_ids.remove(&id);
                let addr = entry.socket_addr();
                self.orphans.entry(addr).or_default().push(id);
            }
        }
    }

    /// Takes XDP's VIP index as it is; a slot naming a VIP the model does not hold (or with
    /// another row) is modelled empty, so the next repair clears it.
    fn adopt_slots(&mut self, snap: &Snapshot) {
        for (i, have) in snap.slots.iter().enumerate().take(self.slots.len()) {
            let mut want = *have;
            if have.key.family != 0 {
                let held = vip_id(&have.key)
                    .and_then(|id| Some((id, self.vips.get(&id)?.index)))
                    .filter(|(id, index)| {
                        have.info == vip_info(*index) && !self.slot_of.contains_key(id)
                    });
                match held {
                    // i < vip_slots, a u32.
                    Some((id, _)) => _ = self.slot_of.insert(id, i as u32),
                    None => want.key.family = 0,
                }
            }
            self.slots[i] = want;
        }
    }
}

/// The kernel VIP a `beacon_vips` key stands for; `None` for an unknown protocol or family.
fn vip_id(key: &abi::VipKey) -> Option<VipId> {
    let protocol = match key.proto {
        abi::PROTO_TCP => Protocol::Tcp,
        abi::PROTO_UDP => Protocol::Udp,
        _ => return None,
    };
    if key.family != abi::AF_INET && key.family != abi::AF_INET6 {
        return None;
    }
    let ip = abi::addr_from_bytes(key.addr, key.family);
    let addr = std::net::SocketAddr::new(ip, u16::from_be(key.port));
    Some(VipId { protocol, addr })
}

/// The stand-in catalog key of an adopted VIP until a plan names it: its literal address.
fn literal_key(id: &VipId) -> VipKey {
    VipKey {
        protocol: id.protocol,
        address: VipAddress::Ip(id.addr.ip()),
        port: id.addr.port(),
    }
}

/// What an adopted backend entry says of its backend: its address, and weight 0 if drained.
fn adopted_backend(entry: &abi::Backend) -> DesiredBackend {
    DesiredBackend {
        addr: entry.socket_addr(),
        weight: u32::from(entry.flags & abi::BACKEND_F_DRAIN == 0),
        node: String::new(),
    }
}

//! The map I/O: executing a plan's writes, reading the maps back, reading counters.
//!
//! Ring rows are written and read with `BPF_MAP_UPDATE_BATCH` / `BPF_MAP_LOOKUP_BATCH` (one
//! syscall per row instead of 4,093; aya 0.14 has no batch calls, so they are made here on the
//! map's fd). Everything else goes through aya's typed maps.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use aya::Ebpf;
use aya::maps::{Array, HashMap, IterableMap, MapData, MapError, PerCpuArray, PerCpuValues};
use beacon_ebpf::abi;

use crate::desired::Limits;
use crate::error::DataPlaneError;
use crate::plan::{Op, Snapshot, State};
use crate::stats::Counters;

/// The maps userspace writes and reads, taken out of the loaded object.
pub(crate) struct Maps {
    vips: HashMap<MapData, abi::VipKey, abi::VipInfo>,
    backends: Array<MapData, abi::Backend>,
    rings: MapData,
    slots: Array<MapData, abi::VipSlot>,
    vip_stats: PerCpuArray<MapData, abi::LbCounters>,
    backend_stats: PerCpuArray<MapData, abi::LbCounters>,
    stats: PerCpuArray<MapData, u64>,
}

impl Maps {
    /// Takes the maps out of `bpf` (programs already loaded keep using them).
    pub(crate) fn take(bpf: &mut Ebpf) -> Result<Self, DataPlaneError> {
        let mut take = |name: &'static str| {
            bpf.take_map(name).ok_or(DataPlaneError::Map {
                map: name,
                op: "find",
                detail: "not in the BPF object".into(),
            })
        };
        let typed = |name: &'static str| move |e: MapError| map_error(name, "open", &e);
        let aya::maps::Map::Array(rings) = take(abi::maps::RINGS)? else {
            return Err(DataPlaneError::Map {
                map: abi::maps::RINGS,
                op: "open",
                detail: "not an array".into(),
            });
        };
        Ok(Self {
            vips: HashMap::try_from(take(abi::maps::VIPS)?).map_err(typed(abi::maps::VIPS))?,
            backends: Array::try_from(take(abi::maps::BACKENDS)?)
                .map_err(typed(abi::maps::BACKENDS))?,
            rings,
            slots: Array::try_from(take(abi::maps::VIP_SLOTS)?)
                .map_err(typed(abi::maps::VIP_SLOTS))?,
            vip_stats: PerCpuArray::try_from(take(abi::maps::VIP_STATS)?)
                .map_err(typed(abi::maps::VIP_STATS))?,
            backend_stats: PerCpuArray::try_from(take(abi::maps::BACKEND_STATS)?)
                .map_err(typed(abi::maps::BACKEND_STATS))?,
            stats: PerCpuArray::try_from(take(abi::maps::STATS)?)
                .map_err(typed(abi::maps::STATS))?,
        })
    }

    /// Runs one map write. [`Op::Programmed`] and [`Op::DestroyUdp`] are not map writes and
    /// are ignored here.
    pub(crate) fn execute(&mut self, op: &Op) -> Result<(), DataPlaneError> {
        match op {
            Op::Backend { id, entry } => self
                .backends
                .set(*id, entry, 0)
                .map_err(|e| map_error(abi::maps::BACKENDS, "update", &e)),
            Op::Ring { index, slots } => {
                let keys: Vec<u32> = slots
                    .iter()
                    .map(|(slot, _)| abi::ring_index(*index, *slot))
                    .collect();
                let values: Vec<u32> = slots.iter().map(|(_, id)| *id).collect();
                update_batch(self.rings.fd().as_fd(), &keys, &values)
                    .map_err(|e| io_error(abi::maps::RINGS, "update batch", &e))
            }
            Op::Vip { key, info } => self
                .vips
                .insert(key, info, 0)
                .map_err(|e| map_error(abi::maps::VIPS, "update", &e)),
            Op::VipSlot { slot, entry } => self
                .slots
                .set(*slot, entry, 0)
                .map_err(|e| map_error(abi::maps::VIP_SLOTS, "update", &e)),
            Op::DeleteVip { key } => match self.vips.remove(key) {
                Ok(()) | Err(MapError::KeyNotFound) => Ok(()),
                Err(e) => Err(map_error(abi::maps::VIPS, "delete", &e)),
            },
            Op::ResetVipStats { index } => reset(&mut self.vip_stats, *index)
                .map_err(|e| map_error(abi::maps::VIP_STATS, "reset", &e)),
            Op::ResetBackendStats { id } => reset(&mut self.backend_stats, *id)
                .map_err(|e| map_error(abi::maps::BACKEND_STATS, "reset", &e)),
            Op::Programmed(_) | Op::DestroyUdp => Ok(()),
        }
    }

    /// Reads back everything [`State::repair`] compares: all VIP entries, all backend entries,
    /// and the ring rows the model uses.
    pub(crate) fn snapshot(&self, state: &State) -> Result<Snapshot, DataPlaneError> {
        let mut snap = Snapshot::default();
        for entry in self.vips.iter() {
            let (k, v) = entry.map_err(|e| map_error(abi::maps::VIPS, "read", &e))?;
            snap.vips.insert(k, v);
        }
        let count = state.entries().len() as u32;
        snap.backends = lookup_batch(self.backends_fd(), 0, count)
            .map_err(|e| io_error(abi::maps::BACKENDS, "lookup batch", &e))?;
        snap.slots = lookup_batch(
            self.slots.map().fd().as_fd(),
            0,
            state.slot_entries().len() as u32,
        )
        .map_err(|e| io_error(abi::maps::VIP_SLOTS, "lookup batch", &e))?;
        for slot in state.vips().values() {
            let row = lookup_batch(
                self.rings.fd().as_fd(),
                abi::ring_index(slot.index, 0),
                abi::RING_SIZE,
            )
            .map_err(|e| io_error(abi::maps::RINGS, "lookup batch", &e))?;
            snap.rings.insert(slot.index, row);
        }
        Ok(snap)
    }

    /// Reads back everything [`State::adopt`] needs: every VIP entry with its ring row, every
    /// backend entry, every slot of XDP's VIP index.
    pub(crate) fn snapshot_all(&self, limits: Limits) -> Result<Snapshot, DataPlaneError> {
        let mut snap = Snapshot::default();
        for entry in self.vips.iter() {
            let (k, v) = entry.map_err(|e| map_error(abi::maps::VIPS, "read", &e))?;
            snap.vips.insert(k, v);
        }
        snap.backends = lookup_batch(self.backends_fd(), 0, limits.max_backends + 1)
            .map_err(|e| io_error(abi::maps::BACKENDS, "lookup batch", &e))?;
        snap.slots = lookup_batch(self.slots.map().fd().as_fd(), 0, limits.vip_slots)
            .map_err(|e| io_error(abi::maps::VIP_SLOTS, "lookup batch", &e))?;
        for info in snap.vips.values() {
            if info.index >= limits.max_vips || snap.rings.contains_key(&info.index) {
                continue;
            }
            let first = abi::ring_index(info.index, 0);
            let row = lookup_batch(self.rings.fd().as_fd(), first, limits.ring_size)
                .map_err(|e| io_error(abi::maps::RINGS, "lookup batch", &e))?;
            snap.rings.insert(info.index, row);
        }
        Ok(snap)
    }

    /// A VIP row's counters.
    pub(crate) fn vip_counters(&self, index: u32) -> Result<Counters, MapError> {
        Ok(Counters::sum(self.vip_stats.get(&index, 0)?.iter()))
    }

    /// A backend id's counters.
    pub(crate) fn backend_counters(&self, id: u32) -> Result<Counters, MapError> {
        Ok(Counters::sum(self.backend_stats.get(&id, 0)?.iter()))
    }

    /// A global counter.
    pub(crate) fn stat(&self, stat: abi::Stat) -> Result<u64, MapError> {
        Ok(self.stats.get(&(stat as u32), 0)?.iter().sum())
    }

    /// The kernel id of a map, by name (tests open it to tamper with it).
    pub(crate) fn id(&self, name: &str) -> Option<u32> {
        let data: &MapData = match name {
            abi::maps::VIPS => self.vips.map(),
            abi::maps::BACKENDS => self.backends.map(),
            abi::maps::RINGS => &self.rings,
            abi::maps::VIP_SLOTS => self.slots.map(),
            _ => return None,
        };
        data.info().ok().map(|i| i.id())
    }

    fn backends_fd(&self) -> BorrowedFd<'_> {
        self.backends.map().fd().as_fd()
    }
}

fn reset(map: &mut PerCpuArray<MapData, abi::LbCounters>, index: u32) -> Result<(), MapError> {
    let cpus = aya::util::nr_cpus().map_err(|(_, e)| MapError::IoError(e))?;
    let zero = PerCpuValues::try_from(vec![abi::LbCounters::default(); cpus])?;
    map.set(index, zero, 0)
}

pub(crate) fn map_error(map: &'static str, op: &'static str, e: &MapError) -> DataPlaneError {
    let detail = match e {
        MapError::SyscallError(s) => s.io_error.to_string(),
        other => other.to_string(),
    };
    DataPlaneError::Map { map, op, detail }
}

fn io_error(map: &'static str, op: &'static str, e: &io::Error) -> DataPlaneError {
    DataPlaneError::Map {
        map,
        op,
        detail: e.to_string(),
    }
}

/// `union bpf_attr`'s `batch` member (`BPF_MAP_*_BATCH`).
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;

fn bpf_batch(cmd: libc::c_long, attr: &mut BatchAttr) -> io::Result<()> {
    // SAFETY: `attr` is a valid `bpf_attr` prefix of the size passed; the pointers in it are
    // set by the callers to buffers that outlive the call and are as large as `count` says.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut BatchAttr,
            size_of::<BatchAttr>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Writes `values[i]` at `keys[i]` of an array map whose values are `V`s.
fn update_batch<V: Copy>(fd: BorrowedFd<'_>, keys: &[u32], values: &[V]) -> io::Result<()> {
    assert_eq!(keys.len(), values.len());
    let mut done = 0usize;
    while done < keys.len() {
        let rest = keys.len() - done;
        let mut attr = BatchAttr {
            keys: keys[done..].as_ptr() as u64,
            values: values[done..].as_ptr() as u64,
            count: u32::try_from(rest).unwrap_or(u32::MAX),
            map_fd: fd.as_raw_fd() as u32,
            ..BatchAttr::default()
        };
        bpf_batch(BPF_MAP_UPDATE_BATCH, &mut attr)?;
        if attr.count == 0 {
            return Err(io::Error::other("batch update made no progress"));
        }
        done += attr.count as usize;
    }
    Ok(())
}

/// Reads entries `first..first + count` of an array map whose values are `V`s.
fn lookup_batch<V: Copy + Default>(
    fd: BorrowedFd<'_>,
    first: u32,
    count: u32,
) -> io::Result<Vec<V>> {
    let mut values = vec![V::default(); count as usize];
    let mut keys = vec![0u32; count as usize];
    let mut got = 0usize;
    while got < count as usize {
        // The kernel continues after `in_batch` (the previous key); none means "from key 0".
        let next = first + got as u32;
        let prev = next.wrapping_sub(1);
        let mut out_batch = 0u32;
        let mut attr = BatchAttr {
            in_batch: if next == 0 {
                0
            } else {
                &prev as *const u32 as u64
            },
            out_batch: &mut out_batch as *mut u32 as u64,
            keys: keys[got..].as_mut_ptr() as u64,
            values: values[got..].as_mut_ptr() as u64,
            count: count - got as u32,
            map_fd: fd.as_raw_fd() as u32,
            ..BatchAttr::default()
        };
        let end = match bpf_batch(BPF_MAP_LOOKUP_BATCH, &mut attr) {
            Ok(()) => false,
            // The end of the array: `count` says how many were copied.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => true,
            Err(e) => return Err(e),
        };
        got += attr.count as usize;
        if end || attr.count == 0 {
            break;
        }
    }
    if got < count as usize {
        return Err(io::Error::other(format!(
            "batch lookup returned {got} of {count} entries"
        )));
    }
    Ok(values)
}

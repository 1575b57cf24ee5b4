//! The data plane in bpffs: where its maps and links are pinned so that they outlive the agent,
//! whether a starting agent may adopt what it finds there, and removing it all.
//!
//! Layout under the configured directory (`/sys/fs/bpf/beacon` for the agent):
//!
//! ```text
//! maps/<map name>            every map of abi::maps::PINNED (beacon_abi holds the layout version)
//! maps-next/<map name>       during an upgrade to another layout: the new maps, until promoted
//! links/<program>@cgroup     the socket-LB programs' cgroup links
//! links/<program>@<iface>    XDP and tcx links ('.' in an interface name becomes '_')
//! ```
//!
//! A pinned link keeps its program attached, and the program keeps the maps, after every file
//! descriptor is closed: a stop of any kind leaves balancing running with the last maps. Only
//! [`remove`] (or unpinning by hand) detaches. Pinned maps are adopted when their layout version
//! ([`abi::MAPS_ABI_VERSION`] in `maps/beacon_abi`) and their shapes (type, key and value size,
//! entries, flags) match this build's object as configured (`flow_table_size` sets the entries
//! of the flow tables, so changing it is a layout change). Otherwise (an upgrade that changes
//! the layout, or a new table size) the
//! new object gets new maps in `maps-next`, the old programs keep serving from the old maps, and
//! once the catalog is programmed in the new maps every pinned link switches to its new program
//! (`BPF_LINK_UPDATE`, one link after the other) and `maps-next` becomes `maps`
//! ([`Pins::promote`]).

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use aya::maps::{Array, Map, MapData, MapInfo};
use beacon_ebpf::abi;
use tracing::{info, warn};

use crate::error::DataPlaneError;
use crate::syscall;

/// Where `/sys/fs/bpf` is mounted when it is not yet (`mount -t bpf bpf /sys/fs/bpf`).
const BPFFS_ROOT: &str = "/sys/fs/bpf";
/// Where the maps of another layout go during an upgrade (bpffs names may not hold a '.').
const MAPS_NEXT: &str = "maps-next";
/// `BPF_FS_MAGIC` from `<linux/magic.h>`.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// The data plane's pin directory, locked (`flock`) for as long as this value lives: one agent
/// at a time runs a pinned data plane, and [`remove`] refuses while one does.
#[derive(Debug)]
pub(crate) struct Pins {
    dir: PathBuf,
    /// Loading into `maps-next` (an upgrade to another layout) rather than `maps`.
    next: bool,
    _lock: Option<fs::File>,
}

/// What a start found pinned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// Nothing: a first start, or after `beacon dataplane remove`.
    Nothing,
    /// Maps of this layout: adopt them.
    Adoptable,
    /// Maps of another layout: load beside them, switch over once the catalog is in.
    Upgrade,
}

/// What [`remove`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Removed {
    /// Links detached and unpinned.
    pub links: usize,
    /// Maps unpinned.
    pub maps: usize,
}

impl Pins {
    /// Makes sure `dir` is on a bpf file system (mounting one at `/sys/fs/bpf` when `dir` is
    /// under it and nothing is mounted there), creates its subdirectories, and checks what is
    /// pinned against the object's maps with the configured `sizes` (map name, max_entries): a
    /// size change is a layout change.
    pub(crate) fn prepare(
        dir: &Path,
        sizes: &[(&str, u32)],
    ) -> Result<(Self, Found), DataPlaneError> {
        ensure_bpffs(dir)?;
        fs::create_dir_all(dir).map_err(|e| pin_error(dir, &e))?;
        let mut pins = Self {
            dir: dir.to_path_buf(),
            next: false,
            _lock: Some(lock(dir)?),
        };
        for sub in [pins.maps_dir(), pins.links_dir()] {
            fs::create_dir_all(&sub).map_err(|e| pin_error(&sub, &e))?;
        }
        let found = match pins.check_layout(sizes) {
            Ok(false) => Found::Nothing,
            Ok(true) => Found::Adoptable,
            Err(why) => {
                warn!(
                    dir = %dir.display(),
                    "VIP data plane: the pinned maps have another layout ({why}): new maps beside \
                     them; the old ones serve until the catalog is in the new ones, then every \
                     link switches over"
                );
                let next = pins.dir.join(MAPS_NEXT);
                for path in list(&next) {
                    fs::remove_file(&path).map_err(|e| pin_error(&path, &e))?;
                }
                fs::create_dir_all(&next).map_err(|e| pin_error(&next, &e))?;
                pins.next = true;
                Found::Upgrade
            }
        };
        Ok((pins, found))
    }

    /// The directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where map `name` of the object being loaded is pinned (`maps-next` during an upgrade).
    pub(crate) fn map_path(&self, name: &str) -> PathBuf {
        match self.next {
            true => self.dir.join(MAPS_NEXT).join(name),
            false => self.maps_dir().join(name),
        }
    }

    /// Ends an upgrade, once every link runs the new programs: the old maps are unpinned (the
    /// kernel frees them) and `maps-next` becomes `maps`.
    pub(crate) fn promote(&mut self) -> Result<(), DataPlaneError> {
        let maps = self.maps_dir();
        for path in list(&maps) {
            fs::remove_file(&path).map_err(|e| pin_error(&path, &e))?;
        }
        fs::remove_dir(&maps).map_err(|e| pin_error(&maps, &e))?;
        fs::rename(self.dir.join(MAPS_NEXT), &maps).map_err(|e| pin_error(&maps, &e))?;
        self.next = false;
        Ok(())
    }

    /// Where the link of `program` on `target` (`cgroup` or an interface) is pinned.
    pub(crate) fn link_path(&self, program: &str, target: &str) -> PathBuf {
        // bpffs refuses names with a '.' (reserved by the kernel).
        let target = target.replace('.', "_");
        self.links_dir().join(format!("{program}@{target}"))
    }

    /// The pinned links, by path.
    pub(crate) fn links(&self) -> Vec<PathBuf> {
        list(&self.links_dir())
    }

    /// Records the layout version of the maps (after they are pinned and the programs attached).
    pub(crate) fn write_version(&self, abi_map: Map) -> Result<(), DataPlaneError> {
        let path = self.map_path(abi::maps::ABI);
        let mut array: Array<MapData, u32> =
            Array::try_from(abi_map).map_err(|e| pin_error(&path, &e))?;
        array
            .set(0, abi::MAPS_ABI_VERSION, 0)
            .map_err(|e| pin_error(&path, &e))
    }

    fn maps_dir(&self) -> PathBuf {
        self.dir.join("maps")
    }

    fn links_dir(&self) -> PathBuf {
        self.dir.join("links")
    }

    /// Whether maps are pinned (`Ok(false)`: none), and if so whether this build, with these
    /// map `sizes`, may adopt them (`Err`: why not).
    fn check_layout(&self, sizes: &[(&str, u32)]) -> Result<bool, String> {
        let pinned = list(&self.maps_dir());
        if pinned.is_empty() {
            return Ok(false);
        }
        let version = self.read_version()?;
        if version != abi::MAPS_ABI_VERSION {
            return Err(format!(
                "they have layout version {version}, this agent uses {}",
                abi::MAPS_ABI_VERSION
            ));
        }
        let object = aya_obj::Object::parse(beacon_ebpf::OBJECT)
            .map_err(|e| format!("parsing the BPF object: {e}"))?;
        for path in pinned {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let Some(want) = object.maps.get(name) else {
                return Err(format!("{name} is not a map of this agent"));
            };
            let have = MapInfo::from_pin(&path).map_err(|e| format!("{name}: {e}"))?;
            let size = sizes.iter().find(|(n, _)| *n == name).map(|(_, s)| *s);
            same_shape(name, want, size, &have)?;
        }
        Ok(true)
    }

    fn read_version(&self) -> Result<u32, String> {
        let path = self.map_path(abi::maps::ABI);
        let data = MapData::from_pin(&path).map_err(|e| format!("no layout version ({e})"))?;
        let array: Array<MapData, u32> =
            Array::try_from(Map::Array(data)).map_err(|e| format!("{}: {e}", abi::maps::ABI))?;
        array
            .get(&0, 0)
            .map_err(|e| format!("reading the layout version: {e}"))
    }
}

/// Detaches and unpins everything under `dir` that a data plane pinned, and removes the
/// directories. Nothing pinned (or no `dir`) is not an error; a data plane running on `dir` (an
/// agent) is: stop it first.
pub fn remove(dir: &Path) -> Result<Removed, DataPlaneError> {
    let lock = match fs::File::open(dir) {
        Ok(_) => Some(lock(dir)?),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(pin_error(dir, &e)),
    };
    let pins = Pins {
        dir: dir.to_path_buf(),
        next: false,
        _lock: lock,
    };
    remove_unlocked(&pins)
}

/// [`remove`], with the lock held by the caller.
fn remove_unlocked(pins: &Pins) -> Result<Removed, DataPlaneError> {
    let mut removed = Removed::default();
    for path in pins.links() {
        detach_pinned(&path)?;
        removed.links += 1;
    }
    let next = pins.dir.join(MAPS_NEXT);
    for path in list(&pins.maps_dir()).into_iter().chain(list(&next)) {
        fs::remove_file(&path).map_err(|e| pin_error(&path, &e))?;
        removed.maps += 1;
    }
    for sub in [pins.links_dir(), pins.maps_dir(), next, pins.dir.clone()] {
        match fs::remove_dir(&sub) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(pin_error(&sub, &e)),
            _ => {}
        }
    }
    if removed != Removed::default() {
        let dir = pins.dir.display();
        info!(%dir, links = removed.links, maps = removed.maps, "VIP data plane removed");
    }
    Ok(removed)
}

/// An exclusive `flock` on the directory `dir`, held until the file is closed. Tried for up to
/// a second: a child forked while an earlier holder had it open keeps the lock until it execs.
fn lock(dir: &Path) -> Result<fs::File, DataPlaneError> {
    let file = fs::File::open(dir).map_err(|e| pin_error(dir, &e))?;
    for _ in 0..50 {
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(file);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(pin_error(dir, &e));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let busy = "another process runs the data plane pinned here (an agent with the same bpffs_dir)";
    Err(pin_error(dir, &busy))
}

/// Detaches the link pinned at `path` (even if other processes hold it) and unpins it.
pub(crate) fn detach_pinned(path: &Path) -> Result<(), DataPlaneError> {
    let link = syscall::obj_get(path).map_err(|e| pin_error(path, &e))?;
    if let Err(e) = syscall::link_detach(link.as_fd()) {
        // A link whose target is gone (a deleted interface) is detached already.
        if e.raw_os_error() != Some(libc::ENOLINK) {
            return Err(pin_error(path, &e));
        }
    }
    fs::remove_file(path).map_err(|e| pin_error(path, &e))
}

/// The files of `dir`, sorted; none if it does not exist.
fn list(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// Whether the pinned map `have` is the object's map `want`, loaded with `size` entries if
/// given (the loader's override) or the object's.
fn same_shape(
    name: &str,
    want: &aya_obj::Map,
    size: Option<u32>,
    have: &MapInfo,
) -> Result<(), String> {
    let have_type = have.map_type().map(|t| t as u32).unwrap_or(u32::MAX);
    let entries = size.unwrap_or_else(|| want.max_entries());
    let want_shape = (
        want.map_type(),
        want.key_size(),
        want.value_size(),
        kernel_entries(want.map_type(), want.map_flags(), entries, possible_cpus()),
        want.map_flags(),
    );
    let have_shape = (
        have_type,
        have.key_size(),
        have.value_size(),
        have.max_entries(),
        have.map_flags(),
    );
    if want_shape != have_shape {
        return Err(format!(
            "{name} is (type, key, value, entries, flags) {have_shape:?}, this agent's is \
             {want_shape:?}"
        ));
    }
    Ok(())
}

/// `BPF_F_NO_COMMON_LRU`: an LRU hash with one LRU list per CPU.
const BPF_F_NO_COMMON_LRU: u32 = 1 << 1;

/// The `max_entries` the kernel gives a map asked for `entries`: a hash with per-CPU LRU lists
/// gets a multiple of the possible CPUs (rounded up, or down on overflow), so that every CPU's
/// list has the same share (`htab_map_alloc()`).
fn kernel_entries(map_type: u32, flags: u32, entries: u32, cpus: u32) -> u32 {
    let lru = map_type == aya_obj::generated::bpf_map_type::BPF_MAP_TYPE_LRU_HASH as u32
        || map_type == aya_obj::generated::bpf_map_type::BPF_MAP_TYPE_LRU_PERCPU_HASH as u32;
    if !lru || flags & BPF_F_NO_COMMON_LRU == 0 || cpus <= 1 {
        return entries;
    }
    match entries.checked_next_multiple_of(cpus) {
        Some(up) => up,
        None => entries - entries % cpus,
    }
}

fn possible_cpus() -> u32 {
    aya::util::nr_cpus().map_or(1, |n| n as u32)
}

/// Mounts bpffs at `/sys/fs/bpf` if `dir` is under it and it is not mounted; then `dir` (or
/// its nearest existing ancestor) must be on bpffs.
fn ensure_bpffs(dir: &Path) -> Result<(), DataPlaneError> {
    let root = Path::new(BPFFS_ROOT);
    if dir.starts_with(root) && !is_bpffs(root) {
        mount_bpffs(root).map_err(|e| pin_error(root, &e))?;
        info!(path = BPFFS_ROOT, "mounted a bpf file system");
    }
    let existing = dir.ancestors().find(|p| p.exists()).unwrap_or(dir);
    if !is_bpffs(existing) {
        return Err(DataPlaneError::NoBpffs(dir.to_path_buf()));
    }
    Ok(())
}

fn is_bpffs(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statfs reads a NUL-terminated path and writes into a zeroed struct we own.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type as i64 == BPF_FS_MAGIC
    }
}

fn mount_bpffs(at: &Path) -> io::Result<()> {
    fs::create_dir_all(at)?;
    let target = CString::new(at.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: every pointer is a NUL-terminated string that outlives the call; no data.
    let rc = unsafe {
        libc::mount(
            c"bpf".as_ptr(),
            target.as_ptr(),
            c"bpf".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    match rc {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

pub(crate) fn pin_error(path: &Path, e: &dyn std::fmt::Display) -> DataPlaneError {
    DataPlaneError::Pin {
        path: path.to_path_buf(),
        detail: crate::error::first_line(e),
    }
}

#[cfg(test)]
mod tests {
    use aya_obj::generated::bpf_map_type::{BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_LRU_HASH};

    use super::*;

    #[test]
    fn per_cpu_lru_sizes_round_to_a_multiple_of_the_cpus() {
        let lru = BPF_MAP_TYPE_LRU_HASH as u32;
        assert_eq!(kernel_entries(lru, BPF_F_NO_COMMON_LRU, 65536, 2), 65536);
        assert_eq!(kernel_entries(lru, BPF_F_NO_COMMON_LRU, 65536, 3), 65538);
        assert_eq!(kernel_entries(lru, BPF_F_NO_COMMON_LRU, 1000, 7), 1001);
        assert_eq!(
            kernel_entries(lru, BPF_F_NO_COMMON_LRU, u32::MAX, 2),
            u32::MAX - 1
        );
        // A common LRU list, or another type: as asked.
        assert_eq!(kernel_entries(lru, 0, 1000, 7), 1000);
        assert_eq!(kernel_entries(BPF_MAP_TYPE_ARRAY as u32, 0, 1000, 7), 1000);
    }
}

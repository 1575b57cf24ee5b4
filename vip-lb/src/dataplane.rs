//! Loading and attaching the BPF programs, and driving the maps from plans.
//!
//! [`DataPlane::start`] loads `beacon-ebpf`'s object (with the `bpf_sock_destroy` kfunc patched
//! in for the UDP iterator when the kernel has it), attaches the socket-LB programs to a cgroup v2
//! directory and, on each configured interface, XDP ingress (`beacon_xdp_lb`) and tc egress
//! (`beacon_tc_revnat`). Links belong to the loaded object: dropping the [`DataPlane`] detaches
//! everything and frees the maps.
//!
//! The maps start empty. [`DataPlane::apply`] plans against the model of what is programmed
//! ([`crate::plan`]) and runs the plan; [`DataPlane::reconcile`] reads the maps back and repairs
//! drift (dcos-net's 30 s reconcile, `research/dcos-net.md` §2.5). DNS must publish only
//! [`DataPlane::programmed`] VIPs: "program the data path before DNS publishes" (DCOS_OSS-4939).

use std::collections::BTreeSet;
use std::error::Error;
use std::ffi::CString;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use aya::programs::{
    CgroupAttachMode, CgroupSockAddr, Iter, SchedClassifier, TcAttachType, Xdp, XdpMode,
};
use aya::{Btf, Ebpf};
use beacon_catalog::vip::VipKey;
use beacon_ebpf::abi;
use tracing::{debug, info, warn};

use crate::desired::{Desired, Limits, Skipped};
use crate::error::{DataPlaneError, first_line, load_error};
use crate::maps::Maps;
use crate::plan::{Changes, Op, Plan, State};
use crate::stats::{BackendStats, Counters, GLOBAL, VipStats};

/// How to attach XDP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum XdpModeSetting {
    /// Native when the driver supports it, generic otherwise (the kernel decides).
    #[default]
    Auto,
    /// Native (driver) mode only; attaching fails where the driver has no XDP support.
    Native,
    /// Generic (skb) mode: works on any interface, slower.
    Generic,
}

/// Where and how to run the data plane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataPlaneConfig {
    /// The cgroup v2 directory whose processes get socket LB (normally the root of the cgroup2
    /// mount). Default: the first cgroup2 mount in `/proc/self/mountinfo`
    /// (`/sys/fs/cgroup` on systemd hosts, `/sys/fs/cgroup/unified` on hybrid ones); empty when
    /// none is mounted, which [`DataPlane::start`] reports.
    pub cgroup: PathBuf,
    /// Interfaces that get XDP ingress translation and tc egress reverse translation: where
    /// packets from clients that do not go through socket LB (other hosts, containers with their
    /// own network namespace) arrive. Default: none (socket LB only).
    pub xdp_interfaces: Vec<String>,
    /// XDP attach mode. Default: auto.
    pub xdp_mode: XdpModeSetting,
    /// How often the agent should call [`DataPlane::reconcile`]. Default: 30 s, like dcos-net.
    pub reconcile_interval: Duration,
    /// How long a removed backend's id stays marked removed before it is freed (its flows move
    /// and its connected UDP sockets are destroyed meanwhile). Default: 10 s.
    pub removal_grace: Duration,
    /// Attach the socket-LB programs to `cgroup`. Default: true.
    pub socket_lb: bool,
}

impl Default for DataPlaneConfig {
    fn default() -> Self {
        Self {
            cgroup: detect_cgroup2().unwrap_or_default(),
            xdp_interfaces: Vec::new(),
            xdp_mode: XdpModeSetting::Auto,
            reconcile_interval: Duration::from_secs(30),
            removal_grace: Duration::from_secs(10),
            socket_lb: true,
        }
    }
}

/// What one [`DataPlane::apply`] or [`DataPlane::reconcile`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// What the plans run changed.
    pub changes: Changes,
    /// Connected UDP sockets destroyed because their backend was removed.
    pub udp_sockets_destroyed: u64,
    /// Catalog VIPs left out (map limits, missing addresses), from the desired state.
    pub skipped: Vec<Skipped>,
    /// Catalog VIPs that found no free row or ids this time; retried by the next call.
    pub deferred: Vec<VipKey>,
    /// Map writes made.
    pub writes: u32,
    /// Wall time taken.
    pub elapsed: Duration,
}

impl ApplyReport {
    /// Whether anything was written.
    pub fn changed(&self) -> bool {
        self.writes > 0
    }

    fn add(&mut self, plan: &Plan) {
        self.changes.add(&plan.changes);
    }
}

/// The running data plane: the loaded object with its links, the maps, and the model of what
/// they hold. Not thread-safe by itself: one owner calls `apply`/`reconcile` (blocking
/// syscalls; from async code use `spawn_blocking` or a dedicated thread).
pub struct DataPlane {
    maps: Maps,
    state: State,
    last: Option<Desired>,
    last_skipped: Vec<Skipped>,
    grace: Duration,
    udp_destroy: bool,
    xdp_interfaces: Vec<String>,
    cgroup: Option<PathBuf>,
    // Last: dropping the object detaches every link and unloads the programs.
    bpf: Ebpf,
}

impl fmt::Debug for DataPlane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataPlane")
            .field("cgroup", &self.cgroup)
            .field("xdp_interfaces", &self.xdp_interfaces)
            .field("vips", &self.state.vips().len())
            .field("udp_destroy", &self.udp_destroy)
            .finish()
    }
}

impl DataPlane {
    /// Loads the programs and attaches them as `config` says. The maps start empty.
    pub fn start(config: &DataPlaneConfig) -> Result<Self, DataPlaneError> {
        if config.socket_lb {
            if config.cgroup.as_os_str().is_empty() {
                return Err(DataPlaneError::NoCgroup2);
            }
            if !is_cgroup2(&config.cgroup) {
                return Err(DataPlaneError::CgroupMissing(config.cgroup.clone()));
            }
        }
        for name in &config.xdp_interfaces {
            if if_index(name).is_none() {
                return Err(DataPlaneError::InterfaceMissing(name.clone()));
            }
        }
        let (mut bpf, udp_destroy) = load_object()?;
        if config.socket_lb {
            let cgroup = File::open(&config.cgroup)
                .map_err(|_| DataPlaneError::CgroupMissing(config.cgroup.clone()))?;
            for name in abi::programs::SOCK_LB {
                let prog: &mut CgroupSockAddr = program(&mut bpf, name)?;
                prog.load().map_err(|e| load_error(name, &e))?;
                prog.attach(&cgroup, CgroupAttachMode::Single)
                    .map_err(|e| DataPlaneError::Attach {
                        program: name,
                        target: config.cgroup.display().to_string(),
                        detail: first_line(&e),
                        hint: "check that the path is a cgroup v2 directory",
                    })?;
            }
        }
        if !config.xdp_interfaces.is_empty() {
            attach_packet_path(&mut bpf, config)?;
        }
        let udp_destroy = udp_destroy && load_iterator(&mut bpf);
        let maps = Maps::take(&mut bpf)?;
        info!(
            cgroup = %config.cgroup.display(),
            socket_lb = config.socket_lb,
            xdp = ?config.xdp_interfaces,
            mode = ?config.xdp_mode,
            udp_destroy,
            "VIP data plane on"
        );
        Ok(Self {
            maps,
            state: State::new(Limits::KERNEL),
            last: None,
            last_skipped: Vec::new(),
            grace: config.removal_grace,
            udp_destroy,
            xdp_interfaces: config.xdp_interfaces.clone(),
            cgroup: config.socket_lb.then(|| config.cgroup.clone()),
            bpf,
        })
    }

    /// Moves the maps to `desired` by diffing it against what is programmed (never flushing).
    ///
    /// On error the maps may be half-way; call [`reconcile`](Self::reconcile), which repairs
    /// them. VIPs whose writes did not all succeed stay out of [`programmed`](Self::programmed).
    pub fn apply(&mut self, desired: &Desired) -> Result<ApplyReport, DataPlaneError> {
        let started = Instant::now();
        self.log_skipped(desired.skipped());
        let plan = self.state.plan(desired, started, self.grace);
        self.last = Some(desired.clone());
        let mut report = ApplyReport {
            skipped: desired.skipped().to_vec(),
            ..ApplyReport::default()
        };
        self.run(&plan, &mut report)?;
        report.elapsed = started.elapsed();
        if report.changed() {
            debug!(?report, "VIP data plane applied");
        }
        Ok(report)
    }

    /// Reads the maps back and rewrites whatever differs from the last desired state (counted
    /// in [`ApplyReport::repairs`]); also retries deferred VIPs and frees removed backend ids
    /// whose grace period has passed. Call it every
    /// [`reconcile_interval`](DataPlaneConfig::reconcile_interval).
    pub fn reconcile(&mut self) -> Result<ApplyReport, DataPlaneError> {
        let started = Instant::now();
        let mut report = ApplyReport::default();
        if let Some(last) = self.last.take() {
            let plan = self.state.plan(&last, started, self.grace);
            report.skipped = last.skipped().to_vec();
            self.last = Some(last);
            self.run(&plan, &mut report)?;
        }
        let snap = self.maps.snapshot(&self.state)?;
        let plan = self.state.repair(&snap, Instant::now(), self.grace);
        self.run(&plan, &mut report)?;
        report.elapsed = started.elapsed();
        if report.changes.repairs > 0 {
            warn!(
                repairs = report.changes.repairs,
                ring_slots = report.changes.ring_slots,
                "VIP data plane: repaired map entries that drifted"
            );
        }
        Ok(report)
    }

    /// The catalog VIPs whose maps are completely in place (every address family): the ones DNS
    /// may publish.
    pub fn programmed(&self) -> BTreeSet<VipKey> {
        self.state.programmed()
    }

    /// Counters of every programmed kernel VIP and its backends, summed over CPUs.
    pub fn stats(&self) -> Vec<VipStats> {
        let read = |r: Result<Counters, aya::maps::MapError>| {
            r.unwrap_or_else(|e| {
                debug!(error = %e, "VIP data plane: reading counters");
                Counters::default()
            })
        };
        self.state
            .vips()
            .iter()
            .map(|(id, slot)| VipStats {
                key: slot.key.clone(),
                address: id.addr,
                protocol: id.protocol,
                counters: read(self.maps.vip_counters(slot.index)),
                backends: slot
                    .backends
                    .iter()
                    .map(|(b, bid)| BackendStats {
                        addr: b.addr,
                        weight: b.weight,
                        node: b.node.clone(),
                        counters: read(self.maps.backend_counters(*bid)),
                    })
                    .collect(),
            })
            .collect()
    }

    /// The data plane's global counters (`beacon_stats`), by name: XDP verdicts, tc reverse
    /// translations, socket translations, destroyed UDP sockets.
    pub fn global_counters(&self) -> Vec<(&'static str, u64)> {
        GLOBAL
            .iter()
            .map(|(stat, name)| (*name, self.maps.stat(*stat).unwrap_or(0)))
            .collect()
    }

    /// Whether connected UDP sockets of removed backends are destroyed (kernel ≥ 6.5).
    pub fn destroys_udp_sockets(&self) -> bool {
        self.udp_destroy
    }

    /// The kernel id of one of the maps userspace writes (`beacon_vips`, `beacon_backends`,
    /// `beacon_rings`), for tests and debugging tools that open it with `MapData::from_id`.
    #[doc(hidden)]
    pub fn map_id(&self, name: &str) -> Option<u32> {
        self.maps.id(name)
    }

    /// Runs a plan's operations in order.
    fn run(&mut self, plan: &Plan, report: &mut ApplyReport) -> Result<(), DataPlaneError> {
        report.add(plan);
        for op in &plan.ops {
            match op {
                Op::Programmed(vip) => self.state.mark_complete(vip),
                Op::DestroyUdp => report.udp_sockets_destroyed += self.destroy_udp(),
                other => {
                    self.maps.execute(other)?;
                    report.writes += 1;
                }
            }
        }
        Ok(())
    }

    /// One pass of the UDP destroy iterator; returns how many sockets it destroyed.
    fn destroy_udp(&mut self) -> u64 {
        if !self.udp_destroy {
            return 0;
        }
        let before = self.maps.stat(abi::Stat::SockDestroyed).unwrap_or(0);
        if let Err(e) = run_iterator(&mut self.bpf) {
            warn!(error = %e, "VIP data plane: UDP destroy iterator failed");
            return 0;
        }
        let after = self.maps.stat(abi::Stat::SockDestroyed).unwrap_or(0);
        after.saturating_sub(before)
    }

    fn log_skipped(&mut self, skipped: &[Skipped]) {
        if skipped != self.last_skipped.as_slice() {
            for s in skipped {
                warn!("{s}");
            }
            self.last_skipped = skipped.to_vec();
        }
    }
}

impl FromStr for XdpModeSetting {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "native" | "driver" | "drv" => Ok(Self::Native),
            "generic" | "skb" => Ok(Self::Generic),
            other => Err(format!(
                "unknown XDP mode {other:?}; use auto, native or generic"
            )),
        }
    }
}

impl fmt::Display for XdpModeSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Native => "native",
            Self::Generic => "generic",
        })
    }
}

impl XdpModeSetting {
    fn mode(self) -> XdpMode {
        match self {
            Self::Auto => XdpMode::Default,
            Self::Native => XdpMode::Driver,
            Self::Generic => XdpMode::Skb,
        }
    }
}

/// The first cgroup2 mount point in `/proc/self/mountinfo`, preferring `/sys/fs/cgroup` and
/// `/sys/fs/cgroup/unified`.
pub fn detect_cgroup2() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mounts: Vec<PathBuf> = text
        .lines()
        .filter_map(|line| {
            // "id parent major:minor root mountpoint options... - fstype source superoptions"
            let (left, right) = line.split_once(" - ")?;
            let fstype = right.split_whitespace().next()?;
            let point = left.split_whitespace().nth(4)?;
            (fstype == "cgroup2").then(|| PathBuf::from(point.replace("\\040", " ")))
        })
        .collect();
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .iter()
        .map(PathBuf::from)
        .find(|p| mounts.contains(p))
        .or_else(|| mounts.into_iter().next())
}

/// Whether `path` is a directory on a cgroup2 file system.
pub(crate) fn is_cgroup2(path: &Path) -> bool {
    let Some(c) = path.to_str().and_then(|s| CString::new(s).ok()) else {
        return false;
    };
    // SAFETY: statfs reads a NUL-terminated path and writes into a zeroed struct we own.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type == libc::CGROUP2_SUPER_MAGIC
    }
}

fn if_index(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: if_nametoindex reads a NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (index != 0).then_some(index)
}

/// Loads the object, with the kfunc patched in when the kernel has `bpf_sock_destroy`. Returns
/// whether the UDP iterator can be loaded.
fn load_object() -> Result<(Ebpf, bool), DataPlaneError> {
    match beacon_ebpf::kfunc::object_for_running_kernel() {
        Ok(object) => Ebpf::load(&object)
            .map(|bpf| (bpf, true))
            .map_err(|e| load_error("the BPF object", &e)),
        Err(e) => {
            warn!(
                error = %e,
                "connected UDP sockets of removed backends will not be destroyed (needs kernel 6.5)"
            );
            Ebpf::load(beacon_ebpf::OBJECT)
                .map(|bpf| (bpf, false))
                .map_err(|e| load_error("the BPF object", &e))
        }
    }
}

fn attach_packet_path(bpf: &mut Ebpf, config: &DataPlaneConfig) -> Result<(), DataPlaneError> {
    let xdp: &mut Xdp = program(bpf, abi::programs::XDP_LB)?;
    xdp.load()
        .map_err(|e| load_error(abi::programs::XDP_LB, &e))?;
    for iface in &config.xdp_interfaces {
        xdp.attach(iface, config.xdp_mode.mode())
            .map_err(|e| DataPlaneError::Attach {
                program: abi::programs::XDP_LB,
                target: iface.clone(),
                detail: first_line(&e),
                hint: "try xdp mode generic, or remove the interface from the list",
            })?;
    }
    // tcx (kernel ≥ 6.6) needs no qdisc; older kernels attach through a clsact qdisc.
    let tcx = aya::util::KernelVersion::current()
        .map(|v| v >= aya::util::KernelVersion::new(6, 6, 0))
        .unwrap_or(false);
    let tc: &mut SchedClassifier = program(bpf, abi::programs::TC_REVNAT)?;
    tc.load()
        .map_err(|e| load_error(abi::programs::TC_REVNAT, &e))?;
    for iface in &config.xdp_interfaces {
        if !tcx {
            // Already there is fine.
            let _ = aya::programs::tc::qdisc_add_clsact(iface);
        }
        tc.attach(iface, TcAttachType::Egress)
            .map_err(|e| DataPlaneError::Attach {
                program: abi::programs::TC_REVNAT,
                target: iface.clone(),
                detail: first_line(&e),
                hint: "the interface needs tc (clsact) support",
            })?;
    }
    Ok(())
}

/// Loads the UDP destroy iterator; false (with a warning) if the kernel refuses it.
fn load_iterator(bpf: &mut Ebpf) -> bool {
    let loaded = Btf::from_sys_fs()
        .map_err(|e| e.to_string())
        .and_then(|btf| {
            let iter: &mut Iter =
                program(bpf, abi::programs::UDP_DESTROY).map_err(|e| e.to_string())?;
            iter.load("udp", &btf).map_err(|e| first_line(&e))
        });
    match loaded {
        Ok(()) => true,
        Err(e) => {
            warn!(
                error = %e,
                "connected UDP sockets of removed backends will not be destroyed"
            );
            false
        }
    }
}

fn run_iterator(bpf: &mut Ebpf) -> Result<(), Box<dyn Error>> {
    let iter: &mut Iter = program(bpf, abi::programs::UDP_DESTROY)?;
    let link = iter.attach()?;
    let link = iter.take_link(link)?;
    let mut file = link.into_file()?;
    let mut out = Vec::new();
    file.read_to_end(&mut out)?;
    Ok(())
}

fn program<'a, P>(bpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut P, DataPlaneError>
where
    &'a mut P: TryFrom<&'a mut aya::programs::Program>,
{
    bpf.program_mut(name)
        .and_then(|p| p.try_into().ok())
        .ok_or_else(|| DataPlaneError::NoBpf {
            what: name.to_string(),
            detail: "missing from the BPF object, or of another type".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xdp_modes_parse_and_print() {
        for s in ["auto", "native", "generic"] {
            assert_eq!(s.parse::<XdpModeSetting>().unwrap().to_string(), s);
        }
        assert!("fast".parse::<XdpModeSetting>().is_err());
    }

    #[test]
    fn start_reports_a_missing_interface_or_cgroup_before_loading() {
        let config = DataPlaneConfig {
            cgroup: "/nonexistent-cgroup".into(),
            ..DataPlaneConfig::default()
        };
        assert!(matches!(
            DataPlane::start(&config),
            Err(DataPlaneError::CgroupMissing(_))
        ));
        let config = DataPlaneConfig {
            socket_lb: false,
            xdp_interfaces: vec!["beacon-nosuch0".into()],
            ..DataPlaneConfig::default()
        };
        assert!(matches!(
            DataPlane::start(&config),
            Err(DataPlaneError::InterfaceMissing(_))
        ));
    }

    #[test]
    fn data_plane_is_send() {
        fn send<T: Send>() {}
        send::<DataPlane>();
    }
}

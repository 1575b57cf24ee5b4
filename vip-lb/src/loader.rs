//! Loading `beacon-ebpf`'s object and attaching its programs where the config says: the
//! socket-LB programs on a cgroup v2 directory and, on each configured interface, XDP ingress
//! (`beacon_xdp_lb`) and tc egress (`beacon_tc_revnat`).
//!
//! Without pins the links belong to the loaded object, so whoever holds the [`Ebpf`] decides
//! when everything is detached. With pins ([`Pins`]) the maps are the pinned ones (created and
//! pinned on a first start) and every link is pinned: a link already pinned for the same
//! program and target gets the new program with `BPF_LINK_UPDATE`, atomically, so a restart
//! never detaches anything; only a link whose target changed (another cgroup, an interface
//! recreated) is detached and attached anew, and links the config no longer names are detached.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use aya::programs::links::FdLink;
use aya::programs::{
    CgroupAttachMode, CgroupSockAddr, ProgramFd, SchedClassifier, TcAttachType, Xdp, XdpMode,
};
use aya::{Ebpf, EbpfLoader};
use beacon_ebpf::abi;
use tracing::{debug, warn};

use crate::config::{DataPlaneConfig, XdpModeSetting};
use crate::error::{DataPlaneError, first_line, load_error};
use crate::pins::{self, Pins, pin_error};
use crate::syscall::{self, LinkTarget};

/// A pinned link to switch to a new program later (an upgrade to another map layout): its
/// program must not run before the new maps hold the catalog.
#[derive(Debug)]
pub(crate) struct Pending {
    link: PathBuf,
    prog: ProgramFd,
}

impl Pending {
    /// Switches the link to its new program, atomically.
    pub(crate) fn switch(&self) -> Result<(), DataPlaneError> {
        let link = syscall::obj_get(&self.link).map_err(|e| pin_error(&self.link, &e))?;
        syscall::link_update(link.as_fd(), self.prog.as_fd()).map_err(|e| pin_error(&self.link, &e))
    }
}

/// Where programs go, and what a start with pins does with the links it finds.
struct Attacher<'a> {
    pins: Option<&'a Pins>,
    /// Record existing links in `pending` instead of switching them now.
    defer: bool,
    pending: Vec<Pending>,
}

/// Loads the object (on the pinned maps, with `pins`) and attaches the programs. Returns the
/// object, whether it has the `bpf_sock_destroy` kfunc patched in (which the UDP destroy
/// iterator needs), and, with `defer`, the pinned links left on their old programs. Call
/// [`check`] first.
pub(crate) fn load_and_attach(
    config: &DataPlaneConfig,
    pins: Option<&Pins>,
    defer: bool,
) -> Result<(Ebpf, bool, Vec<Pending>), DataPlaneError> {
    let (mut bpf, sock_destroy) = load_object(config, pins)?;
    if let Some(pins) = pins {
        detach_unwanted(pins, config)?;
    }
    let mut attacher = Attacher {
        pins,
        defer,
        pending: Vec::new(),
    };
    if config.socket_lb {
        attach_socket_lb(&mut bpf, config, &mut attacher)?;
    }
    if !config.xdp_interfaces.is_empty() {
        attach_packet_path(&mut bpf, config, &mut attacher)?;
    }
    Ok((bpf, sock_destroy, attacher.pending))
}

/// The program `name` of the object, as type `P`.
pub(crate) fn program<'a, P>(
    bpf: &'a mut Ebpf,
    name: &'static str,
) -> Result<&'a mut P, DataPlaneError>
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

/// The sizes of the maps whose size is configured, by name: the flow table and its reverse
/// table. The object's own sizes hold for every other map.
pub(crate) fn map_sizes(config: &DataPlaneConfig) -> [(&'static str, u32); 2] {
    [
        (abi::maps::FLOWS, config.flow_table_size),
        (abi::maps::REVNAT, config.flow_table_size),
    ]
}

/// Checks the settings, and that the cgroup and interfaces exist, so that a config mistake is
/// reported before anything loads (or any pin is touched).
pub(crate) fn check(config: &DataPlaneConfig) -> Result<(), DataPlaneError> {
    if config.flow_table_size == 0 {
        return Err(DataPlaneError::Setting {
            setting: "flow_table_size",
            detail: "is 0".into(),
        });
    }
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
    Ok(())
}

/// Whether `path` is a directory on a cgroup2 file system.
fn is_cgroup2(path: &Path) -> bool {
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

/// Loads the object, with the kfunc patched in when the kernel has `bpf_sock_destroy`, on the
/// pinned maps with `pins`, with the configured map sizes and rate guard. Returns whether the
/// UDP iterator can be loaded.
fn load_object(
    config: &DataPlaneConfig,
    pins: Option<&Pins>,
) -> Result<(Ebpf, bool), DataPlaneError> {
    let mut loader = EbpfLoader::new();
    for (name, size) in map_sizes(config) {
        loader.map_max_entries(name, size);
    }
    let limit = config.new_flow_rate_limit;
    loader.override_global(abi::globals::NEW_FLOW_RATE_LIMIT, &limit, true);
    for name in pins.map(|_| abi::maps::PINNED).into_iter().flatten() {
        // Pinned (or, the first time, created and pinned) at the path: shared across agents.
        loader.map_pin_path(name, pins.map(|p| p.map_path(name)).unwrap_or_default());
    }
    match beacon_ebpf::kfunc::object_for_running_kernel() {
        Ok(object) => loader
            .load(&object)
            .map(|bpf| (bpf, true))
            .map_err(|e| load_error("the BPF object", &e)),
        Err(e) => {
            warn!(
                error = %e,
                "connected UDP sockets of removed backends will not be destroyed (needs kernel 6.5)"
            );
            loader
                .load(beacon_ebpf::OBJECT)
                .map(|bpf| (bpf, false))
                .map_err(|e| load_error("the BPF object", &e))
        }
    }
}

fn attach_socket_lb(
    bpf: &mut Ebpf,
    config: &DataPlaneConfig,
    attacher: &mut Attacher<'_>,
) -> Result<(), DataPlaneError> {
    let cgroup = File::open(&config.cgroup)
        .map_err(|_| DataPlaneError::CgroupMissing(config.cgroup.clone()))?;
    let cgroup_id = cgroup
        .metadata()
        .map_err(|_| DataPlaneError::CgroupMissing(config.cgroup.clone()))?
        .ino();
    for name in abi::programs::SOCK_LB {
        let prog: &mut CgroupSockAddr = program(bpf, name)?;
        prog.load().map_err(|e| load_error(name, &e))?;
        let fd = program_fd(prog.fd(), name)?;
        let at = Placement {
            program: name,
            target: "cgroup",
            link: LinkTarget {
                link_type: syscall::LINK_TYPE_CGROUP,
                target: cgroup_id,
            },
            hint: "check that the path is a cgroup v2 directory",
        };
        attacher.place(&at, &fd, |take| {
            let id = prog
                .attach(&cgroup, CgroupAttachMode::Single)
                .map_err(|e| at.attach_error(&config.cgroup.display(), &e))?;
            if !take {
                return Ok(None);
            }
            let link = prog
                .take_link(id)
                .map_err(|e| at.attach_error(&"cgroup", &e))?;
            FdLink::try_from(link)
                .map(Some)
                .map_err(|e| at.attach_error(&"cgroup", &e))
        })?;
    }
    Ok(())
}

fn attach_packet_path(
    bpf: &mut Ebpf,
    config: &DataPlaneConfig,
    attacher: &mut Attacher<'_>,
) -> Result<(), DataPlaneError> {
    let xdp: &mut Xdp = program(bpf, abi::programs::XDP_LB)?;
    xdp.load()
        .map_err(|e| load_error(abi::programs::XDP_LB, &e))?;
    let fd = program_fd(xdp.fd(), abi::programs::XDP_LB)?;
    for iface in &config.xdp_interfaces {
        let at = Placement {
            program: abi::programs::XDP_LB,
            target: iface,
            link: if_target(syscall::LINK_TYPE_XDP, iface),
            hint: "try xdp mode generic, or remove the interface from the list",
        };
        attacher.place(&at, &fd, |take| {
            let id = (xdp.attach(iface, xdp_mode(config.xdp_mode)))
                .map_err(|e| at.attach_error(iface, &e))?;
            if !take {
                return Ok(None);
            }
            let link = xdp.take_link(id).map_err(|e| at.attach_error(iface, &e))?;
            FdLink::try_from(link)
                .map(Some)
                .map_err(|e| at.attach_error(iface, &e))
        })?;
    }
    // tcx (kernel ≥ 6.6) needs no qdisc; older kernels attach through a clsact qdisc (and
    // their tc attachment is no link: it cannot be pinned).
    let tcx = aya::util::KernelVersion::current()
        .map(|v| v >= aya::util::KernelVersion::new(6, 6, 0))
        .unwrap_or(false);
    let tc: &mut SchedClassifier = program(bpf, abi::programs::TC_REVNAT)?;
    tc.load()
        .map_err(|e| load_error(abi::programs::TC_REVNAT, &e))?;
    let fd = program_fd(tc.fd(), abi::programs::TC_REVNAT)?;
    for iface in &config.xdp_interfaces {
        if !tcx {
            // Already there is fine.
            let _ = aya::programs::tc::qdisc_add_clsact(iface);
        }
        let at = Placement {
            program: abi::programs::TC_REVNAT,
            target: iface,
            link: if_target(syscall::LINK_TYPE_TCX, iface),
            hint: "the interface needs tc (clsact) support; pinning needs tcx (kernel 6.6)",
        };
        attacher.place(&at, &fd, |take| {
            let id =
                (tc.attach(iface, TcAttachType::Egress)).map_err(|e| at.attach_error(iface, &e))?;
            if !take {
                return Ok(None);
            }
            let link = tc.take_link(id).map_err(|e| at.attach_error(iface, &e))?;
            FdLink::try_from(link)
                .map(Some)
                .map_err(|e| at.attach_error(iface, &e))
        })?;
    }
    Ok(())
}

/// Where one program goes: for the pin's name, for checking a pinned link, for errors.
struct Placement<'a> {
    program: &'static str,
    target: &'a str,
    link: LinkTarget,
    hint: &'static str,
}

impl Placement<'_> {
    fn attach_error(
        &self,
        target: &dyn std::fmt::Display,
        e: &dyn std::fmt::Display,
    ) -> DataPlaneError {
        DataPlaneError::Attach {
            program: self.program,
            target: target.to_string(),
            detail: first_line(e),
            hint: self.hint,
        }
    }
}

impl Attacher<'_> {
    /// Puts the loaded program `prog` at `at`. `attach(take)` attaches it and, if `take`, takes
    /// the link out of the object. Without pins the object keeps the link (dropping the object
    /// detaches it). With pins the pinned link for `at` gets `prog` atomically (or, deferring,
    /// is recorded to get it later); failing that (or with none), `attach(true)` attaches it
    /// and the link is pinned.
    fn place(
        &mut self,
        at: &Placement<'_>,
        prog: &ProgramFd,
        attach: impl FnOnce(bool) -> Result<Option<FdLink>, DataPlaneError>,
    ) -> Result<(), DataPlaneError> {
        let Some(pins) = self.pins else {
            return attach(false).map(drop);
        };
        let path = pins.link_path(at.program, at.target);
        if path.exists() {
            match take_over(&path, at.link, (!self.defer).then(|| prog.as_fd())) {
                Ok(()) if self.defer => {
                    let prog = program_fd(Ok(prog), at.program)?;
                    self.pending.push(Pending { link: path, prog });
                    return Ok(());
                }
                Ok(()) => {
                    debug!(link = %path.display(), "pinned link now runs this agent's program");
                    return Ok(());
                }
                Err(why) => {
                    warn!(link = %path.display(), "VIP data plane: cannot reuse the pinned link ({why}); attaching anew");
                    pins::detach_pinned(&path)?;
                }
            }
        }
        let link = attach(true)?.ok_or_else(|| pin_error(&path, &"no link to pin"))?;
        link.pin(&path).map_err(|e| pin_error(&path, &e)).map(drop)
    }
}

/// Whether the link pinned at `path` is attached to `want`; if so, and given one, gives it the
/// program `prog`.
fn take_over(path: &Path, want: LinkTarget, prog: Option<BorrowedFd<'_>>) -> Result<(), String> {
    let link = syscall::obj_get(path).map_err(|e| e.to_string())?;
    let have = syscall::link_target(link.as_fd()).map_err(|e| e.to_string())?;
    if have != want {
        return Err(format!(
            "it is attached to {have:?}, the config says {want:?}"
        ));
    }
    match prog {
        Some(prog) => {
            syscall::link_update(link.as_fd(), prog).map_err(|e| format!("link update: {e}"))
        }
        None => Ok(()),
    }
}

/// Detaches pinned links the config no longer names (an interface taken off the list, socket LB
/// turned off), before anything is attached in their place.
fn detach_unwanted(pins: &Pins, config: &DataPlaneConfig) -> Result<(), DataPlaneError> {
    let mut wanted: Vec<PathBuf> = Vec::new();
    if config.socket_lb {
        let sock = abi::programs::SOCK_LB.iter();
        wanted.extend(sock.map(|p| pins.link_path(p, "cgroup")));
    }
    for iface in &config.xdp_interfaces {
        wanted.push(pins.link_path(abi::programs::XDP_LB, iface));
        wanted.push(pins.link_path(abi::programs::TC_REVNAT, iface));
    }
    for path in pins.links() {
        if !wanted.contains(&path) {
            warn!(link = %path.display(), "VIP data plane: detaching a pinned link the config no longer names");
            pins::detach_pinned(&path)?;
        }
    }
    Ok(())
}

fn program_fd(
    fd: Result<&ProgramFd, aya::programs::ProgramError>,
    name: &'static str,
) -> Result<ProgramFd, DataPlaneError> {
    fd.and_then(|fd| fd.try_clone().map_err(Into::into))
        .map_err(|e| load_error(name, &e))
}

fn if_target(link_type: u32, iface: &str) -> LinkTarget {
    LinkTarget {
        link_type,
        target: if_index(iface).map_or(0, u64::from),
    }
}

fn xdp_mode(setting: XdpModeSetting) -> XdpMode {
    match setting {
        XdpModeSetting::Auto => XdpMode::Default,
        XdpModeSetting::Native => XdpMode::Driver,
        XdpModeSetting::Generic => XdpMode::Skb,
    }
}

//! Loading `beacon-ebpf`'s object and attaching its programs where the config says: the
//! socket-LB programs on a cgroup v2 directory and, on each configured interface, XDP ingress
//! (`beacon_xdp_lb`) and tc egress (`beacon_tc_revnat`). Links belong to the loaded object, so
//! whoever holds the [`Ebpf`] decides when everything is detached.

use std::ffi::CString;
use std::fs::File;
use std::path::Path;

use aya::Ebpf;
use aya::programs::{
    CgroupAttachMode, CgroupSockAddr, SchedClassifier, TcAttachType, Xdp, XdpMode,
};
use beacon_ebpf::abi;
use tracing::warn;

use crate::config::{DataPlaneConfig, XdpModeSetting};
use crate::error::{DataPlaneError, first_line, load_error};

/// Checks that the cgroup and interfaces exist (a config mistake is reported before anything
/// loads), loads the object and attaches the programs. Returns the object and whether it has
/// the `bpf_sock_destroy` kfunc patched in, which the UDP destroy iterator needs.
pub(crate) fn load_and_attach(config: &DataPlaneConfig) -> Result<(Ebpf, bool), DataPlaneError> {
    check(config)?;
    let (mut bpf, sock_destroy) = load_object()?;
    if config.socket_lb {
        attach_socket_lb(&mut bpf, config)?;
    }
    if !config.xdp_interfaces.is_empty() {
        attach_packet_path(&mut bpf, config)?;
    }
    Ok((bpf, sock_destroy))
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

fn check(config: &DataPlaneConfig) -> Result<(), DataPlaneError> {
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

fn attach_socket_lb(bpf: &mut Ebpf, config: &DataPlaneConfig) -> Result<(), DataPlaneError> {
    let cgroup = File::open(&config.cgroup)
        .map_err(|_| DataPlaneError::CgroupMissing(config.cgroup.clone()))?;
    for name in abi::programs::SOCK_LB {
        let prog: &mut CgroupSockAddr = program(bpf, name)?;
        prog.load().map_err(|e| load_error(name, &e))?;
        prog.attach(&cgroup, CgroupAttachMode::Single)
            .map_err(|e| DataPlaneError::Attach {
                program: name,
                target: config.cgroup.display().to_string(),
                detail: first_line(&e),
                hint: "check that the path is a cgroup v2 directory",
            })?;
    }
    Ok(())
}

fn attach_packet_path(bpf: &mut Ebpf, config: &DataPlaneConfig) -> Result<(), DataPlaneError> {
    let xdp: &mut Xdp = program(bpf, abi::programs::XDP_LB)?;
    xdp.load()
        .map_err(|e| load_error(abi::programs::XDP_LB, &e))?;
    for iface in &config.xdp_interfaces {
        xdp.attach(iface, xdp_mode(config.xdp_mode))
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

fn xdp_mode(setting: XdpModeSetting) -> XdpMode {
    match setting {
        XdpModeSetting::Auto => XdpMode::Default,
        XdpModeSetting::Native => XdpMode::Driver,
        XdpModeSetting::Generic => XdpMode::Skb,
    }
}

//! The `bpf(2)` link commands aya 0.14 does not offer: opening a pinned object as a plain file
//! descriptor, reading what a link is attached to, replacing a link's program in place
//! (`BPF_LINK_UPDATE`) and detaching a link that others still hold (`BPF_LINK_DETACH`).

use std::ffi::CString;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const BPF_OBJ_GET: libc::c_long = 7;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_LINK_UPDATE: libc::c_long = 29;
const BPF_LINK_DETACH: libc::c_long = 34;

/// `BPF_LINK_TYPE_CGROUP`.
pub(crate) const LINK_TYPE_CGROUP: u32 = 3;
/// `BPF_LINK_TYPE_XDP`.
pub(crate) const LINK_TYPE_XDP: u32 = 6;
/// `BPF_LINK_TYPE_TCX`.
pub(crate) const LINK_TYPE_TCX: u32 = 11;

/// What a link is attached to, from `struct bpf_link_info`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LinkTarget {
    /// `BPF_LINK_TYPE_*`.
    pub(crate) link_type: u32,
    /// The cgroup id (cgroup links) or interface index (XDP and tcx links; 0 once the
    /// interface is gone).
    pub(crate) target: u64,
}

/// Opens the object pinned at `path` (`BPF_OBJ_GET`).
pub(crate) fn obj_get(path: &Path) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // union bpf_attr, obj_pin/obj_get: pathname, bpf_fd, file_flags.
    let mut attr = [0u64; 2];
    attr[0] = c.as_ptr() as u64;
    let fd = bpf(BPF_OBJ_GET, &mut attr)?;
    // SAFETY: BPF_OBJ_GET returned a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What the link `fd` is attached to.
pub(crate) fn link_target(fd: BorrowedFd<'_>) -> io::Result<LinkTarget> {
    // struct bpf_link_info: type, id, prog_id, (pad), then the per-type union at offset 16:
    // cgroup { __u64 cgroup_id; ... }, xdp { __u32 ifindex; }, tcx { __u32 ifindex; ... }.
    let mut info = [0u8; 32];
    // union bpf_attr, info: bpf_fd, info_len, info.
    let mut attr = [0u64; 2];
    attr[0] = fd.as_raw_fd() as u32 as u64 | ((info.len() as u64) << 32);
    attr[1] = info.as_mut_ptr() as u64;
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    let u32_at =
        |at: usize| u32::from_ne_bytes([info[at], info[at + 1], info[at + 2], info[at + 3]]);
    let link_type = u32_at(0);
    let target = match link_type {
        LINK_TYPE_CGROUP => u64::from_ne_bytes(info[16..24].try_into().unwrap_or_default()),
        _ => u64::from(u32_at(16)),
    };
    Ok(LinkTarget { link_type, target })
}

/// Replaces the program of link `link` with `prog` atomically (`BPF_LINK_UPDATE`): no packet or
/// connect sees neither.
pub(crate) fn link_update(link: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> io::Result<()> {
    // union bpf_attr, link_update: link_fd, new_prog_fd, flags, old_prog_fd.
    let mut attr = [0u64; 2];
    attr[0] = link.as_raw_fd() as u32 as u64 | ((prog.as_raw_fd() as u32 as u64) << 32);
    bpf(BPF_LINK_UPDATE, &mut attr).map(drop)
}

/// Detaches link `link` from its target (`BPF_LINK_DETACH`), whoever else holds it.
pub(crate) fn link_detach(link: BorrowedFd<'_>) -> io::Result<()> {
    // union bpf_attr, link_detach: link_fd.
    let mut attr = [0u64; 1];
    attr[0] = link.as_raw_fd() as u32 as u64;
    bpf(BPF_LINK_DETACH, &mut attr).map(drop)
}

fn bpf<const N: usize>(cmd: libc::c_long, attr: &mut [u64; N]) -> io::Result<i32> {
    // SAFETY: `attr` is a `union bpf_attr` prefix of the size passed, laid out as the member
    // the callers name; the pointers in it point to buffers that outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_mut_ptr(),
            (N * size_of::<u64>()) as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as i32)
    }
}

//! The data plane's one error type, and how kernel and loader errors become it. Its own module
//! because the loader, the map I/O and the data plane all return it.

use std::error::Error;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why the data plane could not start or a map operation failed. Each message is one line that
/// says what is wrong and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataPlaneError {
    /// Occurs when the process may not load BPF programs.
    #[error(
        "VIP data plane off: not permitted to load BPF programs ({detail}); run the agent as \
         root, or with CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN and CAP_PERFMON"
    )]
    NotPermitted {
        /// What the kernel said.
        detail: String,
    },
    /// Occurs when the kernel rejects the BPF object or a program in it.
    #[error(
        "VIP data plane off: the kernel cannot load {what} ({detail}); Beacon needs Linux 6.1 or \
         later with BPF, BTF (CONFIG_DEBUG_INFO_BTF) and cgroup v2"
    )]
    NoBpf {
        /// The object or program.
        what: String,
        /// What the kernel or loader said (first line).
        detail: String,
    },
    /// Occurs when no cgroup v2 mount was found and none was configured.
    #[error(
        "VIP data plane off: no cgroup v2 mount found; mount one \
         (mount -t cgroup2 none /sys/fs/cgroup) or configure the data plane's cgroup path"
    )]
    NoCgroup2,
    /// Occurs when the configured cgroup path is missing or not a cgroup v2 directory.
    #[error(
        "VIP data plane off: {0} is not a cgroup v2 directory; configure the path of a cgroup2 \
         mount (such as /sys/fs/cgroup or /sys/fs/cgroup/unified)"
    )]
    CgroupMissing(PathBuf),
    /// Occurs when an XDP interface does not exist.
    #[error(
        "VIP data plane off: network interface {0:?} does not exist; fix the XDP interface list"
    )]
    InterfaceMissing(String),
    /// Occurs when attaching a program fails.
    #[error("VIP data plane off: cannot attach {program} to {target} ({detail}); {hint}")]
    Attach {
        /// The program.
        program: &'static str,
        /// The interface or cgroup.
        target: String,
        /// What the kernel said (first line).
        detail: String,
        /// What to try.
        hint: &'static str,
    },
    /// Occurs when a setting of the [`DataPlaneConfig`](crate::DataPlaneConfig) is out of range.
    #[error("VIP data plane off: {setting} {detail}; fix the data plane's configuration")]
    Setting {
        /// The setting.
        setting: &'static str,
        /// What is wrong with its value.
        detail: String,
    },
    /// Occurs when the pin directory is not on a bpf file system (and none could be mounted).
    #[error(
        "VIP data plane off: {0} is not on a bpf file system; mount one \
         (mount -t bpf bpf /sys/fs/bpf) or configure a pin directory under one"
    )]
    NoBpffs(PathBuf),
    /// Occurs when pinning, adopting or removing the pinned maps and links fails.
    #[error(
        "VIP data plane off: bpffs pin {path}: {detail}; `beacon dataplane remove` clears the \
         pins (and stops balancing until an agent starts)"
    )]
    Pin {
        /// The pin or directory.
        path: PathBuf,
        /// What the kernel said.
        detail: String,
    },
    /// Occurs when reading or writing a map fails (after start).
    #[error("BPF map {map}: {op} failed: {detail}; the next reconcile retries")]
    Map {
        /// The map.
        map: &'static str,
        /// What was tried.
        op: &'static str,
        /// What the kernel said.
        detail: String,
    },
}

/// A failure to load `what`: [`DataPlaneError::NotPermitted`] when it is a matter of
/// privileges (the fix differs), [`DataPlaneError::NoBpf`] otherwise.
pub(crate) fn load_error(what: &str, e: &(dyn Error + 'static)) -> DataPlaneError {
    let detail = first_line(e);
    if permission_denied(e) {
        DataPlaneError::NotPermitted { detail }
    } else {
        DataPlaneError::NoBpf {
            what: what.to_string(),
            detail,
        }
    }
}

/// The first line of an error's message (verifier logs are long), at most 200 characters.
pub(crate) fn first_line(e: &dyn fmt::Display) -> String {
    let text = e.to_string();
    let line = text.lines().next().unwrap_or_default();
    let line = line
        .split(". Verifier output")
        .next()
        .unwrap_or(line)
        .trim();
    line.chars().take(200).collect()
}

/// Whether the error, or one of its sources, is EPERM/EACCES; or we are not root at all.
fn permission_denied(e: &(dyn Error + 'static)) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return true;
    }
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>()
            && matches!(io.raw_os_error(), Some(libc::EPERM | libc::EACCES))
        {
            return true;
        }
        if err.to_string().contains("Operation not permitted") {
            return true;
        }
        cur = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_one_line() {
        let errors = [
            DataPlaneError::NotPermitted {
                detail: "Operation not permitted (os error 1)".into(),
            },
            DataPlaneError::NoCgroup2,
            DataPlaneError::CgroupMissing("/nope".into()),
            DataPlaneError::InterfaceMissing("eth9".into()),
            DataPlaneError::NoBpffs("/tmp/pins".into()),
            DataPlaneError::Pin {
                path: "/sys/fs/bpf/beacon/maps".into(),
                detail: "Permission denied (os error 13)".into(),
            },
        ];
        for e in errors {
            let text = e.to_string();
            assert!(!text.contains('\n'), "{text}");
            assert!(text.starts_with("VIP data plane off: "), "{text}");
        }
    }

    #[test]
    fn first_line_drops_the_verifier_log() {
        let e = io::Error::other(
            "the BPF_PROG_LOAD syscall returned EINVAL. Verifier output: 0: r1\n1: ...",
        );
        assert_eq!(first_line(&e), "the BPF_PROG_LOAD syscall returned EINVAL");
    }
}

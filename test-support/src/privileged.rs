//! Root-only tests: never "ok" without having run.
//!
//! A crate with such tests calls [`build_cfg`] from its build script. Where the build runs as
//! neither root nor under `CI=true`, that sets `cfg(unprivileged)`, and each root-only test
//! carries
//!
//! ```text
//! #[cfg_attr(unprivileged, ignore = "needs root (BPF, network namespaces, cgroups); runs under CI=true")]
//! ```
//!
//! so `cargo test` lists it as ignored, with the reason. Under `CI=true` the attribute is off:
//! the test runs, and [`require_root`], its first line, fails it loudly if not root.

use std::io;

/// The `cfg` a build script sets when root-only tests cannot run.
pub const CFG: &str = "unprivileged";

/// For a build script: sets `cfg(unprivileged)` unless the build runs as root or `CI` is
/// `true`, and asks to be run again when that may change (`CI`, or `sudo` setting `SUDO_UID`).
pub fn build_cfg() {
    println!("cargo:rustc-check-cfg=cfg({CFG})");
    println!("cargo:rerun-if-env-changed=CI");
    println!("cargo:rerun-if-env-changed=SUDO_UID");
    println!("cargo:rerun-if-env-changed=USER");
    if !is_root() && !in_ci() {
        println!("cargo:rustc-cfg={CFG}");
    }
}

/// The runtime backstop of a root-only test (its first line): panics unless the process runs
/// as root. A build made as root or under `CI=true` does not ignore the test, and a run that
/// cannot do what it tests must fail, never pass.
#[track_caller]
pub fn require_root(test: &str) {
    if is_root() {
        return;
    }
    let why = if in_ci() {
        "CI=true, so root-only tests run"
    } else {
        "the build was made as root, so root-only tests are not ignored"
    };
    panic!("{test} needs root (BPF, network namespaces, cgroups) and {why}: run the tests as root");
}

/// Whether this process's effective user is root.
pub fn is_root() -> bool {
    effective_uid().is_ok_and(|uid| uid == 0)
}

/// Whether `CI` is `true`, as CI systems set it.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The effective UID, from `/proc/self/status` (`Uid: real effective saved fs`): no libc, so
/// build scripts can use it.
fn effective_uid() -> io::Result<u32> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|uid| uid.parse().ok())
        .ok_or_else(|| io::Error::other("no effective UID in /proc/self/status"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_uid_is_read() {
        let uid = effective_uid().unwrap();
        let meta = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap());
        assert_eq!(uid, meta);
    }
}

//! Network namespaces that a test creates and removes itself, and a way to run test code
//! inside one (a thread that enters it: sockets opened there belong to it).

use std::os::fd::AsRawFd;
use std::process::Command;

/// Whether tests that need root may run here. With `CI=true` they must: not being root is a
/// failure, not a reason to skip.
pub(crate) fn privileged(test: &str) -> bool {
    let root = unsafe { libc::geteuid() } == 0;
    if !root && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test} needs root (network namespaces) and CI=true: run the tests as root");
    }
    if !root {
        eprintln!("skipping {test}: needs root for network namespaces");
    }
    root
}

/// Runs `ip args...`, panicking with its output on failure.
pub(crate) fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace, deleted on drop (with the veth ends inside it).
pub(crate) struct Netns {
    pub name: String,
}

impl Netns {
    /// Creates `beacon-<tag>-<pid>` with its loopback up.
    pub(crate) fn new(tag: &str) -> Self {
        let name = format!("beacon-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// Runs `ip args...` inside the namespace.
    pub(crate) fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all);
    }

    /// A command that runs `program` inside the namespace (`ip netns exec` execs it, so the
    /// child's PID is the program's).
    pub(crate) fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Runs `f` on a thread inside the namespace.
    pub(crate) fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                let file = std::fs::File::open(&path).unwrap();
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .unwrap()
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Joins `a` and `b` with a veth pair, `a_addr` and `b_addr` (CIDR) on its ends, both up.
pub(crate) fn veth(a: &Netns, a_addr: &str, b: &Netns, b_addr: &str) {
    let (ea, eb) = ("veth-a", "veth-b");
    ip(&[
        "link", "add", ea, "netns", &a.name, "type", "veth", "peer", "name", eb, "netns", &b.name,
    ]);
    a.ip(&["addr", "add", a_addr, "dev", ea]);
    b.ip(&["addr", "add", b_addr, "dev", eb]);
    a.ip(&["link", "set", ea, "up"]);
    b.ip(&["link", "set", eb, "up"]);
}

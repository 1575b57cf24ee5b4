//! Network namespaces a test creates and removes itself, veth pairs between them, and a way to
//! run test code inside one (a thread that enters it: sockets opened there belong to it).
//! Needs root and iproute2.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// A network namespace made with `ip netns add`, its loopback up, deleted when dropped (with
/// the veth ends inside it).
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates the namespace `name` (replacing a stale one of that name). Make names unique
    /// per process with [`tag`].
    pub fn new(name: &str) -> Self {
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        ip(&format!("netns add {name}"));
        let ns = Self {
            name: name.to_owned(),
        };
        ns.ip("link set lo up");
        ns
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its file under `/var/run/netns`, for `setns`.
    pub fn file(&self) -> File {
        let path = format!("/var/run/netns/{}", self.name);
        File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"))
    }

    /// Runs `ip -n <ns> <args>` (arguments separated by spaces, no quoting).
    pub fn ip(&self, args: &str) {
        ip(&format!("-n {} {args}", self.name));
    }

    /// Sets a sysctl (`key=value`) inside the namespace.
    pub fn sysctl(&self, kv: &str) {
        sh(&format!("ip netns exec {} sysctl -qw {kv}", self.name));
    }

    /// A command that runs `program` inside the namespace (`ip netns exec` execs it, so the
    /// child's PID is the program's).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Moves the calling thread into the namespace (network namespaces are per thread; threads
    /// it spawns afterwards start there too).
    pub fn enter(&self) {
        let file = self.file();
        // SAFETY: setns on a namespace fd we hold open; it changes only the calling thread.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "setns {}: {}",
            self.name,
            std::io::Error::last_os_error()
        );
    }

    /// Runs `f` on a new thread inside the namespace and returns its result.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                self.enter();
                f()
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
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

/// Joins `a` and `b` with a veth pair, `a_if` in `a` and `b_if` in `b`, both up.
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) {
    ip(&format!(
        "link add {a_if} netns {} type veth peer name {b_if} netns {}",
        a.name, b.name
    ));
    a.ip(&format!("link set {a_if} up"));
    b.ip(&format!("link set {b_if} up"));
}

/// A short tag unique to this process and call (hex PID and a counter), for names of
/// namespaces, interfaces (at most 15 characters) and cgroups.
pub fn tag() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{:x}{}",
        std::process::id() % 0xffff,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `ip <args>` (arguments separated by spaces, no quoting), panicking with its output on
/// failure.
pub fn ip(args: &str) {
    let out = Command::new("ip")
        .args(args.split_whitespace())
        .output()
        .expect("run ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `cmd` with `sh -c`, panicking with its output on failure.
pub fn sh(cmd: &str) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "{cmd}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

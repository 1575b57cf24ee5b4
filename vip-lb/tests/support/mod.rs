//! Shared support for the privileged end-to-end tests: the root/CI gate, throw-away cgroups and
//! network namespaces (created and deleted by the test), backends that name themselves, and a
//! client process run inside a cgroup.

#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::Duration;

use beacon_catalog::vip::{Backend, Protocol, VipAddress, VipKey, VipName, VipTable};

/// Whether privileged tests can run. Under `CI=true` they must: not being root panics.
/// Elsewhere a non-root run skips with the reason printed.
pub fn privileged(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: CI=true but not root; data plane tests need root (BPF, netns, cgroups)");
    }
    eprintln!("skipping {test}: needs root (CAP_BPF, CAP_NET_ADMIN, cgroup v2)");
    false
}

/// A unique short tag for names (interfaces are limited to 15 characters).
pub fn tag() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{:x}{}",
        std::process::id() % 0xffff,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Runs a command, panicking with its output if it fails.
pub fn sh(cmd: &str) {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// VIP tables

pub fn backend(addr: SocketAddr, weight: u32, node: &str) -> Backend {
    Backend {
        ip: addr.ip(),
        port: addr.port(),
        weight,
        node: node.to_string(),
        agent_ip: None,
    }
}

pub fn named_key(name: &str, protocol: Protocol, port: u16) -> VipKey {
    VipKey {
        protocol,
        address: VipAddress::Named(VipName::new(name, "marathon").unwrap()),
        port,
    }
}

pub fn ip_key(vip: SocketAddr, protocol: Protocol) -> VipKey {
    VipKey {
        protocol,
        address: VipAddress::Ip(vip.ip()),
        port: vip.port(),
    }
}

pub fn table(vips: Vec<(VipKey, Vec<Backend>)>) -> VipTable {
    let mut t = VipTable::default();
    for (k, mut b) in vips {
        b.sort();
        t.vips.insert(k, b);
    }
    t
}

/// The IPv4 address of a named VIP in `table`.
pub fn named_v4(table: &VipTable, key: &VipKey) -> IpAddr {
    let VipAddress::Named(name) = &key.address else {
        panic!("not named")
    };
    IpAddr::V4(table.named_addresses().get(name).0.unwrap())
}

// ---------------------------------------------------------------------------------------------
// Backends

/// A TCP backend: each line it receives on a connection is answered with its name and a
/// newline, until the client closes.
pub fn tcp_backend(addr: SocketAddr, name: &str) -> SocketAddr {
    let l = TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    let local = l.local_addr().unwrap();
    let name = name.to_string();
    thread::spawn(move || {
        for s in l.incoming().flatten() {
            let name = name.clone();
            thread::spawn(move || {
                let mut w = s.try_clone().unwrap();
                for line in BufReader::new(s).lines() {
                    if line.is_err() || w.write_all(format!("{name}\n").as_bytes()).is_err() {
                        break;
                    }
                }
            });
        }
    });
    local
}

/// A UDP backend answering each datagram with its name.
pub fn udp_backend(addr: SocketAddr, name: &str) -> SocketAddr {
    let s = UdpSocket::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    let local = s.local_addr().unwrap();
    let name = name.to_string();
    thread::spawn(move || {
        let mut buf = [0u8; 64];
        while let Ok((_, from)) = s.recv_from(&mut buf) {
            let _ = s.send_to(name.as_bytes(), from);
        }
    });
    local
}

/// A client TCP connection that asks "who" and reads the backend's name.
pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    pub fn open(vip: SocketAddr) -> std::io::Result<Self> {
        let s = TcpStream::connect_timeout(&vip, Duration::from_secs(3))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        Ok(Self {
            writer: s.try_clone()?,
            reader: BufReader::new(s),
        })
    }

    pub fn who(&mut self) -> std::io::Result<String> {
        self.writer.write_all(b"who\n")?;
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(line.trim().to_string())
    }

    pub fn peer(&self) -> SocketAddr {
        self.writer.peer_addr().unwrap()
    }
}

/// Sends one datagram to `vip` from a fresh socket; returns (reply source, reply).
pub fn udp_ask(vip: SocketAddr) -> std::io::Result<(SocketAddr, String)> {
    let bind = if vip.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let s = UdpSocket::bind(bind)?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.send_to(b"who", vip)?;
    let mut buf = [0u8; 64];
    let (n, from) = s.recv_from(&mut buf)?;
    Ok((from, String::from_utf8_lossy(&buf[..n]).into_owned()))
}

// ---------------------------------------------------------------------------------------------
// Network namespaces

/// A network namespace made with `ip netns add`, deleted when dropped.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(name: &str) -> Self {
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        sh(&format!("ip netns add {name}"));
        sh(&format!("ip -n {name} link set lo up"));
        Self {
            name: name.to_string(),
        }
    }

    /// Runs `ip -n <ns> <args>`.
    pub fn ip(&self, args: &str) {
        sh(&format!("ip -n {} {args}", self.name));
    }

    pub fn sysctl(&self, kv: &str) {
        sh(&format!("ip netns exec {} sysctl -qw {kv}", self.name));
    }

    /// Moves the calling thread into this namespace (network namespaces are per thread).
    pub fn enter(&self) {
        let f = File::open(format!("/var/run/netns/{}", self.name)).unwrap();
        // SAFETY: setns on a valid namespace fd; only this thread changes namespace.
        let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(
            r,
            0,
            "setns {}: {}",
            self.name,
            std::io::Error::last_os_error()
        );
    }

    /// Runs `f` on a new thread inside this namespace and returns its result.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{}", self.name);
        thread::spawn(move || {
            let f_ns = File::open(path).unwrap();
            // SAFETY: as in `enter`.
            let r = unsafe { libc::setns(f_ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(r, 0);
            f()
        })
        .join()
        .unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

// ---------------------------------------------------------------------------------------------
// Cgroups and a client process inside one

const CLIENT_ENV: &str = "BEACON_VIP_LB_CLIENT";

/// A cgroup v2 child of the cgroup2 mount, created for one test and removed when dropped,
/// with a private network namespace (loopback only) where its client process and the test's
/// backends run: nothing sent to an untranslated VIP can leave the machine.
pub struct Cgroup {
    pub path: PathBuf,
    pub netns: Netns,
    /// The test that made it: its client process re-runs that test.
    test: &'static str,
}

impl Cgroup {
    /// A cgroup for `test`, the name of the calling test function, which must start with
    /// `if client_asked() { return; }`: its client process is that test, run again.
    pub fn new(test: &'static str, short: &str) -> Self {
        let root = beacon_vip_lb::detect_cgroup2().expect("no cgroup v2 mount");
        let t = tag();
        let path = root.join(format!("beacon-vip-lb-{short}-{t}"));
        fs::create_dir(&path).expect("create test cgroup");
        let netns = Netns::new(&format!("bvl-{short}-{t}"));
        Self { path, netns, test }
    }

    /// A TCP backend inside the cgroup's network namespace.
    pub fn tcp_backend(&self, addr: SocketAddr, name: &str) -> SocketAddr {
        let name = name.to_string();
        self.netns.run(move || tcp_backend(addr, &name))
    }

    /// A UDP backend inside the cgroup's network namespace.
    pub fn udp_backend(&self, addr: SocketAddr, name: &str) -> SocketAddr {
        let name = name.to_string();
        self.netns.run(move || udp_backend(addr, &name))
    }

    /// Re-runs the test that made the cgroup inside it and its network namespace, as a client
    /// (see [`client_asked`]). `script` is a list of `tcp ADDR`, `tcp-hold ADDR`, `again`, `udp ADDR` and
    /// `wait` steps separated by `;`.
    pub fn spawn_client(&self, script: &str) -> Client {
        let procs = CString::new(self.path.join("cgroup.procs").to_str().unwrap()).unwrap();
        let ns = File::open(format!("/var/run/netns/{}", self.netns.name)).unwrap();
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([self.test, "--exact", "--nocapture", "--test-threads=1"])
            .env(CLIENT_ENV, script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        // SAFETY: the closure only calls async-signal-safe functions (open, write, close, setns)
        // on data prepared before fork.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let ok = libc::write(fd, b"0".as_ptr().cast(), 1) == 1;
                libc::close(fd);
                if ok {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        let mut child = cmd.spawn().expect("spawn client in cgroup");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Client { child, stdout }
    }

    /// Runs a client script to the end and returns its results.
    pub fn client(&self, script: &str) -> Vec<(String, String)> {
        let mut c = self.spawn_client(script);
        let r = c.results(None);
        assert!(c.child.wait().unwrap().success(), "client failed");
        r
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        for _ in 0..50 {
            if fs::remove_dir(&self.path).is_ok() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        eprintln!("could not remove {}", self.path.display());
    }
}

/// A client process in a cgroup.
pub struct Client {
    pub child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Client {
    /// `RESULT key value` lines until EOF or `RESULT ready`.
    pub fn results(&mut self, until_ready: Option<()>) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for line in (&mut self.stdout).lines() {
            let line = line.unwrap();
            let Some(at) = line.find("RESULT ") else {
                continue;
            };
            let rest = &line[at + "RESULT ".len()..];
            if rest == "ready" && until_ready.is_some() {
                break;
            }
            let (k, v) = rest.split_once(' ').unwrap_or((rest, ""));
            out.push((k.to_string(), v.to_string()));
        }
        out
    }

    pub fn go(&mut self) {
        self.child
            .stdin
            .as_mut()
            .unwrap()
            .write_all(b"go\n")
            .unwrap();
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether this process is a test's client (started by [`Cgroup::spawn_client`]); if so, runs
/// the script in `BEACON_VIP_LB_CLIENT` first, printing `RESULT <step> <outcome>` lines.
/// Outcomes: `peer=<addr> reply=<name>` or `err=<kind>`.
pub fn client_asked() -> bool {
    let Ok(script) = std::env::var(CLIENT_ENV) else {
        return false;
    };
    run_client(&script);
    true
}

fn run_client(script: &str) {
    let mut held = Vec::new();
    for step in script.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let words: Vec<&str> = step.split_whitespace().collect();
        match words.as_slice() {
            ["tcp", addr] => {
                let r = Conn::open(sa(addr)).and_then(|mut c| {
                    let who = c.who()?;
                    Ok((c.peer(), who))
                });
                report("tcp", r);
            }
            ["tcp-hold", addr] => {
                let r = Conn::open(sa(addr)).and_then(|mut c| {
                    let who = c.who()?;
                    let peer = c.peer();
                    held.push(c);
                    Ok((peer, who))
                });
                report("tcp", r);
            }
            ["again"] => {
                for c in &mut held {
                    let peer = c.peer();
                    report("again", c.who().map(|w| (peer, w)));
                }
            }
            ["udp", addr] => report("udp", udp_ask(sa(addr))),
            ["wait"] => {
                println!("RESULT ready");
                let mut line = String::new();
                std::io::stdin().read_line(&mut line).unwrap();
            }
            other => panic!("unknown client step {other:?}"),
        }
    }
}

fn report(step: &str, r: std::io::Result<(SocketAddr, String)>) {
    match r {
        Ok((peer, reply)) => println!("RESULT {step} peer={peer} reply={reply}"),
        Err(e) => println!("RESULT {step} err={:?}", e.kind()),
    }
}

/// Counts replies by backend name in `results` for steps named `step`.
pub fn replies(results: &[(String, String)], step: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (k, v) in results {
        if k == step
            && let Some(reply) = v.split("reply=").nth(1)
        {
            *out.entry(reply.to_string()).or_default() += 1;
        }
    }
    out
}

/// The distinct peers shown in `results` for steps named `step`.
pub fn peers(results: &[(String, String)], step: &str) -> BTreeSet<String> {
    results
        .iter()
        .filter(|(k, _)| k == step)
        .filter_map(|(_, v)| v.split_whitespace().next())
        .filter_map(|p| p.strip_prefix("peer="))
        .map(str::to_string)
        .collect()
}

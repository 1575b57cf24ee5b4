//! Shared support for the privileged end-to-end tests: VIP tables, backends that name
//! themselves, and a cgroup with a private network namespace where a client process (the test
//! re-run: `beacon_test_support::client`) runs a script of connections.

#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::thread;
use std::time::Duration;

use beacon_catalog::vip::{Backend, Protocol, VipAddress, VipKey, VipName, VipTable};
pub use beacon_test_support::netns::{Netns, tag};
pub use beacon_test_support::privileged::require_root;
use beacon_test_support::{cgroup, client};

pub fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
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
// A cgroup and a client process inside it

/// A cgroup v2 child made for one test, with a private network namespace (loopback only) where
/// its client process and the test's backends run: nothing sent to an untranslated VIP can
/// leave the machine. Both are removed when dropped.
pub struct Cgroup {
    cgroup: cgroup::Cgroup,
    pub netns: Netns,
    /// The test that made it: its client process re-runs that test.
    test: &'static str,
}

impl Cgroup {
    /// A cgroup for `test`, the name of the calling test function, which must start with
    /// `if client_asked() { return; }`: its client process is that test, run again.
    pub fn new(test: &'static str, short: &str) -> Self {
        Self {
            cgroup: cgroup::Cgroup::new(&format!("vip-lb-{short}")),
            netns: Netns::new(&format!("bvl-{short}-{}", tag())),
            test,
        }
    }

    pub fn path(&self) -> &Path {
        self.cgroup.path()
    }

    /// A TCP backend inside the cgroup's network namespace.
    pub fn tcp_backend(&self, addr: SocketAddr, name: &str) -> SocketAddr {
        self.netns.run(|| tcp_backend(addr, name))
    }

    /// A UDP backend inside the cgroup's network namespace.
    pub fn udp_backend(&self, addr: SocketAddr, name: &str) -> SocketAddr {
        self.netns.run(|| udp_backend(addr, name))
    }

    /// Runs a client script to the end inside the cgroup and its network namespace and
    /// returns its results as (step, outcome). `script` is a list of `tcp ADDR`,
    /// `tcp-hold ADDR`, `again`, `udp ADDR` and `wait` steps separated by `;`; outcomes are
    /// `peer=<addr> reply=<name>` or `err=<kind>`.
    pub fn client(&self, script: &str) -> Vec<(String, String)> {
        let c = client::Client::spawn(self.test, script, &self.cgroup, Some(&self.netns));
        c.finish()
            .iter()
            .map(|r| {
                let (k, v) = r.split_once(' ').unwrap_or((r, ""));
                (k.to_string(), v.to_string())
            })
            .collect()
    }
}

/// Whether this process is a test's client (started by [`Cgroup::client`]); if so, runs its
/// script first.
pub fn client_asked() -> bool {
    let Some(script) = client::client_script() else {
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
            ["wait"] => client::wait_for_go(),
            other => panic!("unknown client step {other:?}"),
        }
    }
}

fn report(step: &str, r: std::io::Result<(SocketAddr, String)>) {
    match r {
        Ok((peer, reply)) => client::report(format_args!("{step} peer={peer} reply={reply}")),
        Err(e) => client::report(format_args!("{step} err={:?}", e.kind())),
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

// ---------------------------------------------------------------------------------------------
// Pins

/// A bpffs directory for one test's pins (never the agent's `/sys/fs/bpf/beacon`): whatever is
/// pinned there is detached and removed when dropped, even if the test fails.
pub struct PinDir(std::path::PathBuf);

impl PinDir {
    pub fn new(short: &str) -> Self {
        Self(format!("/sys/fs/bpf/beacon-test-{short}-{}", tag()).into())
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The pinned files under `sub` (`maps` or `links`).
    pub fn files(&self, sub: &str) -> BTreeSet<String> {
        std::fs::read_dir(self.0.join(sub))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl PinDir {
    /// Each pinned link's (link id, program id), by pin name.
    pub fn link_info(&self) -> BTreeMap<String, (u32, u32)> {
        self.files("links")
            .into_iter()
            .map(|f| {
                let pin = aya::programs::links::PinnedLink::from_pin(self.0.join("links").join(&f));
                let info = aya::programs::links::FdLink::from(pin.unwrap())
                    .info()
                    .unwrap();
                (f, (info.id(), info.program_id()))
            })
            .collect()
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        if let Err(e) = beacon_vip_lb::remove_pinned(&self.0) {
            eprintln!("removing {}: {e}", self.0.display());
        }
    }
}

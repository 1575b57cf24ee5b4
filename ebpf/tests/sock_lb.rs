//! Socket LB with real sockets: the cgroup sock_addr programs cannot be test-run, so they are
//! attached to a throw-away cgroup v2 child, a client process (this test binary re-running the
//! same test with `BEACON_SOCK_CLIENT` set, which makes it the client) is started inside it, and backends listen on loopback outside
//! it. The client reports what it sees on stdout (`RESULT key=value` lines).
//!
//! Also tests the UDP iterator that destroys connected UDP sockets of a removed backend.
//! Needs root and cgroup v2 (`/sys/fs/cgroup/unified` or `/sys/fs/cgroup`).

mod support;

use std::{
    collections::BTreeMap,
    ffi::CString,
    fs::{self, File},
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    os::unix::process::CommandExt,
    path::PathBuf,
    process::{Child, ChildStdout, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    thread,
    time::Duration,
};

use aya::{
    Btf, Ebpf,
    programs::{CgroupAttachMode, CgroupSockAddr, Iter},
};
use beacon_ebpf::abi::{self, BACKEND_F_REMOVED, PROTO_TCP, PROTO_UDP, Stat};
use support::{Maps, privileged, sa};

const CLIENT_ENV: &str = "BEACON_SOCK_CLIENT";
/// A backend's real address, for the client's "not a VIP" check.
const PLAIN_ENV: &str = "BEACON_SOCK_PLAIN";

/// A cgroup v2 child created for one test and removed when dropped.
struct Cgroup {
    path: PathBuf,
    /// The test that made it: its client process re-runs that test.
    test: &'static str,
}

impl Cgroup {
    fn new(test: &'static str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let root = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.join("cgroup.procs").exists() && is_cgroup2(p))
            .expect("no cgroup v2 mount at /sys/fs/cgroup/unified or /sys/fs/cgroup");
        let path = root.join(format!(
            "beacon-test-{}-{test}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&path).expect("create test cgroup");
        Self { path, test }
    }

    fn file(&self) -> File {
        File::open(&self.path).unwrap()
    }

    /// Re-runs the test that made the cgroup, inside it, as the client of `scenario` (see
    /// [`client_asked`]).
    fn spawn_client(&self, scenario: &str, env: &[(&str, String)]) -> Client {
        let procs = CString::new(self.path.join("cgroup.procs").to_str().unwrap()).unwrap();
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([self.test, "--exact", "--nocapture", "--test-threads=1"])
            .env(CLIENT_ENV, scenario)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        // SAFETY: the closure only calls async-signal-safe functions (open, write, close) on
        // data prepared before fork.
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // "0" moves the writing process: the child, before it runs the client.
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

fn is_cgroup2(path: &std::path::Path) -> bool {
    // SAFETY: statfs on a NUL-terminated path into a zeroed struct.
    unsafe {
        let c = CString::new(path.to_str().unwrap()).unwrap();
        let mut st: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type == libc::CGROUP2_SUPER_MAGIC
    }
}

/// Loads the object (kfunc calls patched for this kernel) and attaches every socket program.
fn attach(cgroup: &Cgroup) -> Ebpf {
    let object = beacon_ebpf::kfunc::object_for_running_kernel().expect("patch kfuncs");
    let mut bpf = Ebpf::load(&object).expect("load object");
    for name in abi::programs::SOCK_LB {
        let p: &mut CgroupSockAddr = bpf.program_mut(name).unwrap().try_into().unwrap();
        p.load().unwrap_or_else(|e| panic!("load {name}: {e:?}"));
        p.attach(cgroup.file(), CgroupAttachMode::Single)
            .unwrap_or_else(|e| panic!("attach {name}: {e}"));
    }
    bpf
}

/// A backend that answers every TCP connection or UDP datagram with its name.
fn tcp_backend(addr: &str, name: &'static str) -> SocketAddr {
    let l = TcpListener::bind(addr).unwrap();
    let local = l.local_addr().unwrap();
    thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 64];
            let _ = s.read(&mut buf);
            let _ = s.write_all(name.as_bytes());
        }
    });
    local
}

fn udp_backend(addr: &str, name: &'static str) -> SocketAddr {
    let s = UdpSocket::bind(addr).unwrap();
    let local = s.local_addr().unwrap();
    thread::spawn(move || {
        let mut buf = [0u8; 64];
        while let Ok((_, from)) = s.recv_from(&mut buf) {
            let _ = s.send_to(name.as_bytes(), from);
        }
    });
    local
}

/// A client process in the cgroup.
struct Client {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Drop for Client {
    /// A failed test must not leave its client behind (nor keep the cgroup busy).
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads `RESULT k=v` lines until EOF or a line equal to `RESULT {until}`. (The harness
/// prints `test <name> ... ` in front of the first line, hence `find`.)
fn results(client: &mut Client, until: Option<&str>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in (&mut client.stdout).lines() {
        let line = line.unwrap();
        let Some(at) = line.find("RESULT ") else {
            continue;
        };
        let rest = &line[at + "RESULT ".len()..];
        println!("client: {rest}");
        if Some(rest) == until {
            break;
        }
        if let Some((k, v)) = rest.split_once('=') {
            out.insert(k.to_owned(), v.to_owned());
        }
    }
    out
}

#[test]
fn socket_lb_translates_and_shows_the_vip() {
    if client_asked() || !privileged("socket_lb_translates_and_shows_the_vip") {
        return;
    }
    let cgroup = Cgroup::new("socket_lb_translates_and_shows_the_vip");
    let mut bpf = attach(&cgroup);
    let tcp4 = tcp_backend("127.0.0.2:0", "tcp4-a");
    let tcp4b = tcp_backend("127.0.0.4:0", "tcp4-b");
    let udp4 = udp_backend("127.0.0.3:0", "udp4");
    let tcp6 = tcp_backend("[::1]:0", "tcp6");
    let udp6 = udp_backend("[::1]:0", "udp6");
    let mut m = Maps(&mut bpf);
    m.vip(sa("192.0.2.10:80"), PROTO_TCP, 0, 0);
    m.vip(sa("192.0.2.10:53"), PROTO_UDP, 1, 0);
    m.vip(sa("[fd00:100::10]:80"), PROTO_TCP, 2, 0);
    m.vip(sa("[fd00:100::10]:53"), PROTO_UDP, 3, 0);
    m.vip(sa("192.0.2.11:80"), PROTO_TCP, 4, 0); // no backends
    m.vip(sa("192.0.2.12:80"), PROTO_TCP, 5, 0); // two backends
    m.backend(1, tcp4, 0, 1);
    m.backend(2, udp4, 0, 1);
    m.backend(3, tcp6, 0, 1);
    m.backend(4, udp6, 0, 1);
    m.backend(5, tcp4b, 0, 1);
    m.ring(0, &[1]);
    m.ring(1, &[2]);
    m.ring(2, &[3]);
    m.ring(3, &[4]);
    m.ring(5, &[1, 5]);

    let mut client = cgroup.spawn_client("translate", &[(PLAIN_ENV, tcp4.to_string())]);
    let r = results(&mut client, None);
    assert!(client.child.wait().unwrap().success(), "client failed");
    let get = |k: &str| {
        r.get(k)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no {k} in {r:?}"))
    };
    assert_eq!(get("tcp4_peer"), "192.0.2.10:80");
    assert_eq!(get("tcp4_reply"), "tcp4-a");
    assert_eq!(get("udp4_from"), "192.0.2.10:53");
    assert_eq!(get("udp4_reply"), "udp4");
    assert_eq!(get("udp4c_peer"), "192.0.2.10:53");
    assert_eq!(get("udp4c_reply"), "udp4");
    assert_eq!(get("tcp6_peer"), "[fd00:100::10]:80");
    assert_eq!(get("tcp6_reply"), "tcp6");
    assert_eq!(get("udp6_from"), "[fd00:100::10]:53");
    assert_eq!(get("udp6_reply"), "udp6");
    assert_eq!(get("mapped_peer"), "[::ffff:192.0.2.10]:80");
    assert_eq!(get("mapped_reply"), "tcp4-a");
    assert_eq!(get("refused"), "ConnectionRefused");
    assert_eq!(
        get("spread"),
        "tcp4-a,tcp4-b",
        "both backends of a 2-backend VIP serve"
    );
    // Each connect picked the ring slot of its socket cookie, as the Rust model says.
    let m = Maps(&mut bpf);
    for pick in get("picks").split(',') {
        let (cookie, reply) = pick.split_once(':').unwrap();
        let slot = abi::ring_slot(abi::cookie_hash(cookie.parse().unwrap(), 0));
        let id = m.ring_slot(5, slot);
        assert_eq!(
            reply,
            if id == 1 { "tcp4-a" } else { "tcp4-b" },
            "cookie {cookie}"
        );
    }
    assert_eq!(
        get("plain_peer"),
        tcp4.to_string(),
        "non-VIP traffic is left alone"
    );

    let m = Maps(&mut bpf);
    assert_eq!(
        m.stat(Stat::SockXlate),
        26,
        "6 single calls and 20 connects to the 2-backend VIP"
    );
    assert!(
        m.stat(Stat::SockRevnat) >= 6,
        "getpeername and recvfrom shown the VIP"
    );
    assert_eq!(m.stat(Stat::SockNoBackend), 1);
    assert_eq!(m.vip_counters(4).misses, 1);
    assert_eq!(
        m.vip_counters(0).new_flows,
        2,
        "tcp4 and the v4-mapped connect"
    );
    assert_eq!(
        m.vip_counters(1).new_flows,
        2,
        "one unconnected, one connected socket"
    );
}

#[test]
fn udp_iterator_destroys_sockets_of_a_removed_backend() {
    if client_asked() || !privileged("udp_iterator_destroys_sockets_of_a_removed_backend") {
        return;
    }
    let cgroup = Cgroup::new("udp_iterator_destroys_sockets_of_a_removed_backend");
    let mut bpf = attach(&cgroup);
    let udp4 = udp_backend("127.0.0.3:0", "udp4");
    let mut m = Maps(&mut bpf);
    m.vip(sa("192.0.2.10:53"), PROTO_UDP, 1, 0);
    m.backend(2, udp4, 0, 1);
    m.ring(1, &[2]);

    let mut client = cgroup.spawn_client("destroy", &[]);
    let r = results(&mut client, Some("ready"));
    assert_eq!(r.get("before").map(String::as_str), Some("udp4"));

    // A pass while the backend is alive destroys nothing.
    assert_eq!(run_udp_iterator(&mut bpf), 0);
    Maps(&mut bpf).backend_flags(2, BACKEND_F_REMOVED);
    assert_eq!(run_udp_iterator(&mut bpf), 1);
    assert_eq!(
        run_udp_iterator(&mut bpf),
        1,
        "the entry is gone: nothing more to destroy"
    );

    client
        .child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"go\n")
        .unwrap();
    let r = results(&mut client, None);
    assert!(client.child.wait().unwrap().success(), "client failed");
    assert_eq!(
        r.get("after").map(String::as_str),
        Some("ConnectionAborted")
    );
}

/// Runs one pass of the UDP destroy iterator and returns the destroyed-sockets counter.
fn run_udp_iterator(bpf: &mut Ebpf) -> u64 {
    let btf = Btf::from_sys_fs().unwrap();
    let iter: &mut Iter = bpf
        .program_mut(abi::programs::UDP_DESTROY)
        .unwrap()
        .try_into()
        .unwrap();
    if iter.fd().is_err() {
        iter.load("udp", &btf)
            .unwrap_or_else(|e| panic!("load iterator: {e:?}"));
    }
    let link = iter.attach().unwrap();
    let link = iter.take_link(link).unwrap();
    let mut file = link.into_file().unwrap();
    let mut out = Vec::new();
    file.read_to_end(&mut out).unwrap();
    Maps(bpf).stat(Stat::SockDestroyed)
}

/// When this process is a test's client (started by [`Cgroup::spawn_client`] inside the test
/// cgroup): runs the scenario in `BEACON_SOCK_CLIENT`, printing `RESULT` lines, and says so.
fn client_asked() -> bool {
    let Ok(scenario) = std::env::var(CLIENT_ENV) else {
        return false;
    };
    run_client(&scenario);
    true
}

fn run_client(scenario: &str) {
    let t = Some(Duration::from_secs(3));
    let tcp = |vip: &str| {
        let mut s = TcpStream::connect(vip)?;
        s.set_read_timeout(t)?;
        s.write_all(b"hi")?;
        let mut reply = String::new();
        s.read_to_string(&mut reply)?;
        Ok::<_, std::io::Error>((s.peer_addr()?, reply))
    };
    let udp = |bind: &str, vip: &str| {
        let s = UdpSocket::bind(bind).unwrap();
        s.set_read_timeout(t).unwrap();
        s.send_to(b"q", vip).unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = s.recv_from(&mut buf).unwrap();
        (from, String::from_utf8_lossy(&buf[..n]).into_owned())
    };
    match scenario {
        "translate" => {
            let (peer, reply) = tcp("192.0.2.10:80").unwrap();
            println!("RESULT tcp4_peer={peer}\nRESULT tcp4_reply={reply}");
            let (from, reply) = udp("127.0.0.1:0", "192.0.2.10:53");
            println!("RESULT udp4_from={from}\nRESULT udp4_reply={reply}");

            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(t).unwrap();
            s.connect("192.0.2.10:53").unwrap();
            println!("RESULT udp4c_peer={}", s.peer_addr().unwrap());
            s.send(b"q").unwrap();
            let mut buf = [0u8; 64];
            let n = s.recv(&mut buf).unwrap();
            println!("RESULT udp4c_reply={}", String::from_utf8_lossy(&buf[..n]));

            let (peer, reply) = tcp("[fd00:100::10]:80").unwrap();
            println!("RESULT tcp6_peer={peer}\nRESULT tcp6_reply={reply}");
            let (from, reply) = udp("[::1]:0", "[fd00:100::10]:53");
            println!("RESULT udp6_from={from}\nRESULT udp6_reply={reply}");
            let (peer, reply) = tcp("[::ffff:192.0.2.10]:80").unwrap();
            println!("RESULT mapped_peer={peer}\nRESULT mapped_reply={reply}");
            let err = tcp("192.0.2.11:80").unwrap_err();
            println!("RESULT refused={:?}", err.kind());

            let mut seen = std::collections::BTreeSet::new();
            let mut picks = Vec::new();
            for _ in 0..20 {
                let mut c = TcpStream::connect("192.0.2.12:80").unwrap();
                c.set_read_timeout(t).unwrap();
                c.write_all(b"hi").unwrap();
                let mut reply = String::new();
                c.read_to_string(&mut reply).unwrap();
                picks.push(format!("{}:{reply}", socket_cookie(&c)));
                seen.insert(reply);
            }
            println!("RESULT picks={}", picks.join(","));
            println!(
                "RESULT spread={}",
                seen.into_iter().collect::<Vec<_>>().join(",")
            );

            // Straight to a backend address: not a VIP, left alone.
            let (peer, _) = tcp(&std::env::var(PLAIN_ENV).unwrap()).unwrap();
            println!("RESULT plain_peer={peer}");
        }
        "destroy" => {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(t).unwrap();
            s.connect("192.0.2.10:53").unwrap();
            s.send(b"q").unwrap();
            let mut buf = [0u8; 64];
            let n = s.recv(&mut buf).unwrap();
            println!("RESULT before={}", String::from_utf8_lossy(&buf[..n]));
            println!("RESULT ready");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).unwrap();
            match s.recv(&mut buf) {
                Ok(n) => println!("RESULT after=data:{}", String::from_utf8_lossy(&buf[..n])),
                Err(e) => println!("RESULT after={:?}", e.kind()),
            }
        }
        other => panic!("unknown scenario {other}"),
    }
}

/// SO_COOKIE of a socket: the key socket LB hashes.
fn socket_cookie(s: &impl std::os::fd::AsRawFd) -> u64 {
    let mut cookie = 0u64;
    let mut len = size_of::<u64>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cookie`.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0, "SO_COOKIE");
    cookie
}

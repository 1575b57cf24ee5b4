//! Socket LB with real sockets: the cgroup sock_addr programs cannot be test-run, so they are
//! attached to a throw-away cgroup v2 child, a client process (this test binary re-running the
//! same test as the client: `beacon_test_support::client`) is started inside it, and backends
//! listen on loopback outside it. The client reports what it sees (`key=value` results).
//!
//! Also tests the UDP iterator that destroys connected UDP sockets of a removed backend.
//! Needs root and cgroup v2 (`/sys/fs/cgroup/unified` or `/sys/fs/cgroup`).

mod support;

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    thread,
    time::Duration,
};

use aya::{
    Btf, Ebpf,
    programs::{CgroupAttachMode, CgroupSockAddr, Iter},
};
use beacon_ebpf::abi::{self, BACKEND_F_REMOVED, PROTO_TCP, PROTO_UDP, Stat};
use beacon_test_support::cgroup::Cgroup;
use beacon_test_support::client::{Client, client_script, report, wait_for_go};
use beacon_test_support::privileged::require_root;
use support::{Maps, sa};

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

/// The client's `key=value` results.
fn results(lines: Vec<String>) -> BTreeMap<String, String> {
    lines
        .iter()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// In the client: reports `key=value`.
fn result(key: &str, value: impl std::fmt::Display) {
    report(format_args!("{key}={value}"));
}

#[test]
#[cfg_attr(
    unprivileged,
    ignore = "needs root (BPF, network namespaces, cgroups); runs under CI=true"
)]
fn socket_lb_translates_and_shows_the_vip() {
    if let Some(script) = client_script() {
        return run_client(&script);
    }
    require_root("socket_lb_translates_and_shows_the_vip");
    let cgroup = Cgroup::new("sock-lb");
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

    let client = Client::spawn(
        "socket_lb_translates_and_shows_the_vip",
        &format!("translate {tcp4}"),
        &cgroup,
        None,
    );
    let r = results(client.finish());
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
#[cfg_attr(
    unprivileged,
    ignore = "needs root (BPF, network namespaces, cgroups); runs under CI=true"
)]
fn udp_iterator_destroys_sockets_of_a_removed_backend() {
    if let Some(script) = client_script() {
        return run_client(&script);
    }
    require_root("udp_iterator_destroys_sockets_of_a_removed_backend");
    let cgroup = Cgroup::new("sock-lb");
    let mut bpf = attach(&cgroup);
    let udp4 = udp_backend("127.0.0.3:0", "udp4");
    let mut m = Maps(&mut bpf);
    m.vip(sa("192.0.2.10:53"), PROTO_UDP, 1, 0);
    m.backend(2, udp4, 0, 1);
    m.ring(1, &[2]);

    let mut client = Client::spawn(
        "udp_iterator_destroys_sockets_of_a_removed_backend",
        "destroy",
        &cgroup,
        None,
    );
    let r = results(client.results(Some("ready")));
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

    client.go();
    let r = results(client.finish());
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
    let (scenario, plain) = scenario.split_once(' ').unwrap_or((scenario, ""));
    match scenario {
        "translate" => {
            let (peer, reply) = tcp("192.0.2.10:80").unwrap();
            result("tcp4_peer", peer);
            result("tcp4_reply", &reply);
            let (from, reply) = udp("127.0.0.1:0", "192.0.2.10:53");
            result("udp4_from", from);
            result("udp4_reply", &reply);

            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(t).unwrap();
            s.connect("192.0.2.10:53").unwrap();
            result("udp4c_peer", s.peer_addr().unwrap());
            s.send(b"q").unwrap();
            let mut buf = [0u8; 64];
            let n = s.recv(&mut buf).unwrap();
            result("udp4c_reply", String::from_utf8_lossy(&buf[..n]));

            let (peer, reply) = tcp("[fd00:100::10]:80").unwrap();
            result("tcp6_peer", peer);
            result("tcp6_reply", &reply);
            let (from, reply) = udp("[::1]:0", "[fd00:100::10]:53");
            result("udp6_from", from);
            result("udp6_reply", &reply);
            let (peer, reply) = tcp("[::ffff:192.0.2.10]:80").unwrap();
            result("mapped_peer", peer);
            result("mapped_reply", &reply);
            let err = tcp("192.0.2.11:80").unwrap_err();
            result("refused", format_args!("{:?}", err.kind()));

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
            result("picks", picks.join(","));
            println!(
                "RESULT spread={}",
                seen.into_iter().collect::<Vec<_>>().join(",")
            );

            // Straight to a backend address: not a VIP, left alone.
            let (peer, _) = tcp(plain).unwrap();
            result("plain_peer", peer);
        }
        "destroy" => {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(t).unwrap();
            s.connect("192.0.2.10:53").unwrap();
            s.send(b"q").unwrap();
            let mut buf = [0u8; 64];
            let n = s.recv(&mut buf).unwrap();
            result("before", String::from_utf8_lossy(&buf[..n]));
            wait_for_go();
            match s.recv(&mut buf) {
                Ok(n) => result(
                    "after",
                    format_args!("data:{}", String::from_utf8_lossy(&buf[..n])),
                ),
                Err(e) => result("after", format_args!("{:?}", e.kind())),
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

//! The XDP flow table under a SYN flood (issue 10, item 6): a bounded flood of TCP SYNs from
//! spoofed sources to a VIP, with a small flow table, while established connections through the
//! same VIP keep talking. Without the new-flow rate guard the flood evicts their flow entries
//! and, the VIP's backends having changed since they were opened, their next packets go to
//! other backends (the connections break); with the guard they keep their backends.
//!
//! ```text
//!  client ns (raw socket)       node ns (XDP + tc on vn*, no route out)     backend ns
//!  vc* 10.77.1.2 ── vn* 10.77.1.1        vm* 10.77.2.1 ── vb* 10.77.2.11-15 (be1..be5)
//! ```
//!
//! Every namespace and veth is made by the test and deleted at its end. The flood's sources
//! (10.200.0.0/16) have no route anywhere: the backends' SYN-ACKs die in the node namespace.
//! Needs root; under `CI=true` a non-root run fails.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use beacon_catalog::vip::Protocol;
use beacon_test_support::netns::veth;
use beacon_vip_lb::{DataPlane, DataPlaneConfig, desired};
use support::*;

/// SYNs the flood sends, in all.
const FLOOD_PACKETS: u32 = 50_000;
/// The flood stops after this long even if not all are sent.
const FLOOD_TIME: Duration = Duration::from_secs(20);
/// Established connections through the VIP.
const CONNS: usize = 16;
/// The flow table: 512 entries per CPU on two CPUs, far fewer than the flood's flows.
const FLOW_TABLE: u32 = 1024;
/// The guard's rate when on: new flows each CPU saves per second.
const RATE_LIMIT: u32 = 50;

struct Topology {
    client: Netns,
    node: Netns,
    backends: Netns,
    ifname: String,
}

fn topology() -> Topology {
    let t = tag();
    let client = Netns::new(&format!("bvf-c-{t}"));
    let node = Netns::new(&format!("bvf-n-{t}"));
    let backends = Netns::new(&format!("bvf-b-{t}"));
    let (vc, vn) = (format!("vc{t}"), format!("vn{t}"));
    veth(&client, &vc, &node, &vn);
    veth(&backends, &format!("vb{t}"), &node, &format!("vm{t}"));
    client.ip(&format!("addr add 10.77.1.2/24 dev {vc}"));
    client.ip("route add default via 10.77.1.1");
    node.ip(&format!("addr add 10.77.1.1/24 dev {vn}"));
    node.ip(&format!("addr add 10.77.2.1/24 dev vm{t}"));
    node.sysctl("net.ipv4.ip_forward=1");
    for i in 11..=15 {
        backends.ip(&format!("addr add 10.77.2.{i}/24 dev vb{t}"));
    }
    backends.ip("route add default via 10.77.2.1");
    Topology {
        client,
        node,
        backends,
        ifname: vn,
    }
}

/// What one run saw.
#[derive(Debug)]
struct Outcome {
    /// SYNs handed to the raw sockets.
    sent: u64,
    /// How long sending took.
    took: Duration,
    /// Connections that failed or changed backend during the flood.
    broken_during: usize,
    /// Connections that failed or changed backend after it.
    broken_after: usize,
    /// The data plane's global counters after the flood.
    counters: BTreeMap<&'static str, u64>,
}

/// Opens the connections with two backends, moves the VIP to five (established flows keep
/// theirs through the flow table), floods, and checks the connections during and after.
fn run(rate_limit: u32) -> Outcome {
    let topo = topology();
    let mut all = Vec::new();
    for i in 11..=15 {
        let (addr, name) = (format!("10.77.2.{i}:8080"), format!("be{}", i - 10));
        let bound = topo.backends.run(move || tcp_backend(sa(&addr), &name));
        all.push(backend(bound, 1, "n1"));
    }
    let vip = sa("10.77.100.1:80");
    let key = ip_key(vip, Protocol::Tcp);
    let config = DataPlaneConfig {
        socket_lb: false,
        xdp_interfaces: vec![topo.ifname.clone()],
        flow_table_size: FLOW_TABLE,
        new_flow_rate_limit: rate_limit,
        ..DataPlaneConfig::default()
    };
    let mut dp = topo
        .node
        .run(move || DataPlane::start(&config))
        .unwrap_or_else(|e| panic!("{e}"));
    let two = table(vec![(key.clone(), all[..2].to_vec())]);
    dp.apply(&desired(&two, &two.named_addresses(), &BTreeSet::new()))
        .unwrap();
    let mut conns: Vec<(Conn, String)> = topo.client.run(move || {
        (0..CONNS)
            .map(|_| {
                let mut c = Conn::open(vip).unwrap();
                let who = c.who().unwrap();
                (c, who)
            })
            .collect()
    });
    let five = table(vec![(key, all)]);
    dp.apply(&desired(&five, &five.named_addresses(), &BTreeSet::new()))
        .unwrap();
    assert_eq!(broken(&mut conns), 0, "before the flood");

    let done = AtomicBool::new(false);
    let (sent, took, broken_during) = topo.client.run(|| {
        std::thread::scope(|s| {
            let checker = s.spawn(|| {
                let mut seen = BTreeSet::new();
                while !done.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    seen.extend(broken_ones(&mut conns));
                }
                seen.len()
            });
            let started = Instant::now();
            let sent = flood(vip);
            let took = started.elapsed();
            done.store(true, Ordering::Relaxed);
            (sent, took, checker.join().unwrap())
        })
    });
    let broken_after = topo.client.run(|| broken(&mut conns));
    let counters = dp.global_counters().into_iter().collect();
    drop(conns);
    drop(dp);
    Outcome {
        sent,
        took,
        broken_during,
        broken_after,
        counters,
    }
}

/// How many connections fail to answer or answer from another backend than at first.
fn broken(conns: &mut [(Conn, String)]) -> usize {
    broken_ones(conns).len()
}

fn broken_ones(conns: &mut [(Conn, String)]) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, (c, first)) in conns.iter_mut().enumerate() {
        if c.who().ok().as_ref() != Some(first) {
            out.push(i);
        }
    }
    out
}

/// Sends the flood from the calling thread's namespace: one thread per CPU (each kept on its
/// CPU, so every CPU's share of the flow table sees it), each sending its share of
/// [`FLOOD_PACKETS`] SYNs from random 10.200.0.0/16 sources, within [`FLOOD_TIME`]. Returns
/// how many were sent.
fn flood(vip: SocketAddr) -> u64 {
    let SocketAddr::V4(vip) = vip else {
        panic!("IPv4 VIP")
    };
    let cpus = aya::util::nr_cpus().unwrap().clamp(1, 4) as u32;
    let deadline = Instant::now() + FLOOD_TIME;
    std::thread::scope(|s| {
        let senders: Vec<_> = (0..cpus)
            .map(|cpu| {
                s.spawn(move || {
                    stay_on_cpu(cpu);
                    send_syns(vip, FLOOD_PACKETS / cpus, cpu + 1, deadline)
                })
            })
            .collect();
        senders.into_iter().map(|h| h.join().unwrap()).sum()
    })
}

/// Sends up to `count` SYNs to `vip` from pseudo-random sources (seeded by `seed`) on a raw
/// socket, until `deadline`. Returns how many were sent.
fn send_syns(vip: std::net::SocketAddrV4, count: u32, seed: u32, deadline: Instant) -> u64 {
    // SAFETY: socket() returns a new descriptor that the OwnedFd then owns.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
    assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let dst = libc::sockaddr_in {
        sin_family: libc::AF_INET as u16,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(*vip.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    let mut rng = seed.wrapping_mul(0x9e37_79b9) | 1;
    let mut sent = 0;
    for i in 0..count {
        if i % 1024 == 0 && Instant::now() > deadline {
            break;
        }
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        let src = Ipv4Addr::new(10, 200, (rng >> 8) as u8, rng as u8);
        let syn = syn_packet(src, (rng >> 16) as u16 | 1024, vip, rng);
        // SAFETY: buffer and address are valid for the lengths given.
        let rc = unsafe {
            libc::sendto(
                sock.as_raw_fd(),
                syn.as_ptr().cast(),
                syn.len(),
                0,
                (&raw const dst).cast(),
                size_of::<libc::sockaddr_in>() as u32,
            )
        };
        if rc > 0 {
            sent += 1;
        }
    }
    sent
}

/// An IPv4 TCP SYN (no options), checksums included.
fn syn_packet(src: Ipv4Addr, sport: u16, dst: std::net::SocketAddrV4, seq: u32) -> [u8; 40] {
    let mut p = [0u8; 40];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&40u16.to_be_bytes());
    p[6] = 0x40; // DF
    p[8] = 64;
    p[9] = libc::IPPROTO_TCP as u8;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.ip().octets());
    let ip_sum = checksum(&p[..20], 0);
    p[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    let tcp = &mut p[20..];
    tcp[0..2].copy_from_slice(&sport.to_be_bytes());
    tcp[2..4].copy_from_slice(&dst.port().to_be_bytes());
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x02; // SYN
    tcp[14..16].copy_from_slice(&64240u16.to_be_bytes());
    let pseudo = [&src.octets()[..], &dst.ip().octets()[..], &[0, 6, 0, 20]].concat();
    let tcp_sum = checksum(&p[20..], sum16(&pseudo));
    p[36..38].copy_from_slice(&tcp_sum.to_be_bytes());
    p
}

fn sum16(bytes: &[u8]) -> u32 {
    bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

fn checksum(bytes: &[u8], initial: u32) -> u16 {
    let mut sum = initial + sum16(bytes);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn stay_on_cpu(cpu: u32) {
    // SAFETY: a zeroed cpu_set_t is valid; sched_setaffinity(0, ..) affects this thread only.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        libc::sched_setaffinity(0, size_of_val(&set), &set);
    }
}

fn report(what: &str, o: &Outcome) {
    let c = &o.counters;
    println!(
        "{what}: {} SYNs sent in {:?}; xdp_flow_new {}, xdp_flow_unsaved {}, xdp_flow_hit {}; \
         connections broken during the flood {}/{CONNS}, after it {}/{CONNS}",
        o.sent,
        o.took,
        c["xdp_flow_new"],
        c["xdp_flow_unsaved"],
        c["xdp_flow_hit"],
        o.broken_during,
        o.broken_after
    );
}

/// The control run first (guard off: the flood must break established connections, or the
/// test shows nothing), then the guarded run (they must all survive, during and after).
#[test]
#[cfg_attr(
    unprivileged,
    ignore = "needs root (BPF, network namespaces, cgroups); runs under CI=true"
)]
fn syn_flood_leaves_established_flows_alone_only_with_the_rate_guard() {
    require_root("syn_flood_leaves_established_flows_alone_only_with_the_rate_guard");
    let off = run(0);
    report("guard off", &off);
    let on = run(RATE_LIMIT);
    report(&format!("guard on ({RATE_LIMIT}/s per CPU)"), &on);
    assert!(off.sent > u64::from(FLOOD_PACKETS) / 2, "{off:?}");
    assert!(on.sent > u64::from(FLOOD_PACKETS) / 2, "{on:?}");
    assert_eq!(off.counters["xdp_flow_unsaved"], 0, "{off:?}");
    assert!(
        off.broken_during + off.broken_after > 0,
        "without the guard the flood should have evicted established flows: {off:?}"
    );
    assert!(on.counters["xdp_flow_unsaved"] > 0, "{on:?}");
    assert_eq!((on.broken_during, on.broken_after), (0, 0), "{on:?}");
}

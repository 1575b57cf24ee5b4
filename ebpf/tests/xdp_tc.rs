//! BPF_PROG_TEST_RUN tests of the packet path, Katran style: each fixture is an input frame,
//! the expected output frame and verdict; counters are checked afterwards. Expected frames are
//! built from scratch with the translated addresses, so a byte-for-byte match also proves the
//! incremental checksum updates; checksums are verified independently as well.
//!
//! Needs root. Note: `repeat > 1` would run the program again on its own output, so every run
//! here uses repeat 1.

mod support;

use std::net::SocketAddr;

use aya::{
    Ebpf, TestRun, TestRunOptions,
    maps::{Array, MapData},
    programs::{SchedClassifier, Xdp},
};
use beacon_ebpf::abi::{
    self, BACKEND_F_DRAIN, BACKEND_F_REMOVED, PROTO_TCP, PROTO_UDP, Stat, VIP_F_NO_PACKET_LB,
    VipKey, VipSlot,
};
use beacon_test_support::privileged::require_root;
use support::{Maps, Packet, frame_dst, frame_endpoints, load, sa, verify_checksums};

const XDP_PASS: u32 = 2;
const TC_ACT_OK: u32 = 0;

// VIP indices.
const WEB4: u32 = 0; // 10.100.0.1:80/tcp -> backends 1, 2
const DNS4: u32 = 1; // 10.100.0.1:53/udp -> backend 3
const WEB6: u32 = 2; // [fd00:100::1]:80/tcp -> backends 4, 5
const DNS6: u32 = 3; // [fd00:100::1]:53/udp -> backend 6
const EMPTY4: u32 = 4; // 10.100.0.2:80/tcp -> no backends
const SOCKONLY: u32 = 5; // 10.100.0.3:80/tcp, packet LB off

fn setup() -> Ebpf {
    let mut bpf = load();
    let p: &mut Xdp = bpf
        .program_mut(abi::programs::XDP_LB)
        .unwrap()
        .try_into()
        .unwrap();
    p.load().unwrap();
    let p: &mut SchedClassifier = bpf
        .program_mut(abi::programs::TC_REVNAT)
        .unwrap()
        .try_into()
        .unwrap();
    p.load().unwrap();

    let mut m = Maps(&mut bpf);
    m.vip(sa("10.100.0.1:80"), PROTO_TCP, WEB4, 0);
    m.vip(sa("10.100.0.1:53"), PROTO_UDP, DNS4, 0);
    m.vip(sa("[fd00:100::1]:80"), PROTO_TCP, WEB6, 0);
    m.vip(sa("[fd00:100::1]:53"), PROTO_UDP, DNS6, 0);
    m.vip(sa("10.100.0.2:80"), PROTO_TCP, EMPTY4, 0);
    m.vip(sa("10.100.0.3:80"), PROTO_TCP, SOCKONLY, VIP_F_NO_PACKET_LB);
    m.backend(1, sa("10.0.0.1:8080"), 0, 1);
    m.backend(2, sa("10.0.0.2:8081"), 0, 1);
    m.backend(3, sa("10.0.0.3:5353"), 0, 1);
    m.backend(4, sa("[fd00::4]:8080"), 0, 1);
    m.backend(5, sa("[fd00::5]:8081"), 0, 1);
    m.backend(6, sa("[fd00::6]:5353"), 0, 1);
    m.ring(WEB4, &[1, 2]);
    m.ring(DNS4, &[3]);
    m.ring(WEB6, &[4, 5]);
    m.ring(DNS6, &[6]);
    m.ring(SOCKONLY, &[1]);
    bpf
}

fn run_xdp(bpf: &Ebpf, input: &[u8]) -> (u32, Vec<u8>) {
    let p: &Xdp = bpf
        .program(abi::programs::XDP_LB)
        .unwrap()
        .try_into()
        .unwrap();
    run(p, input)
}

fn run_tc(bpf: &Ebpf, input: &[u8]) -> (u32, Vec<u8>) {
    let p: &SchedClassifier = bpf
        .program(abi::programs::TC_REVNAT)
        .unwrap()
        .try_into()
        .unwrap();
    run(p, input)
}

fn run<P>(p: &P, input: &[u8]) -> (u32, Vec<u8>)
where
    P: for<'a> TestRun<Opts<'a> = TestRunOptions<'a>, Result = aya::TestRunResult>,
{
    let mut out = vec![0u8; input.len() + 256];
    let r = p
        .test_run(TestRunOptions {
            data_in: Some(input),
            data_out: Some(&mut out),
            ..TestRunOptions::new()
        })
        .expect("BPF_PROG_TEST_RUN");
    out.truncate(r.data_size_out as usize);
    (r.return_value, out)
}

/// Sends `pkt` through XDP and returns the backend id it went to (from the output's address).
fn forward(bpf: &mut Ebpf, pkt: &Packet) -> SocketAddr {
    let (verdict, out) = run_xdp(bpf, &pkt.build());
    assert_eq!(verdict, XDP_PASS);
    verify_checksums(&out).unwrap();
    frame_dst(&out)
}

fn backend_addr(bpf: &mut Ebpf, id: u32) -> SocketAddr {
    Maps(bpf).backend_get(id).socket_addr()
}

struct Fixture {
    name: &'static str,
    input: Packet,
    /// Where the destination should go: a backend id, or None for "untouched".
    to_backend: Option<u32>,
}

#[test]
#[cfg_attr(
    unprivileged,
    ignore = "needs root (BPF, network namespaces, cgroups); runs under CI=true"
)]
fn fixtures() {
    require_root("fixtures");
    let mut bpf = setup();
    let c4 = "192.168.1.10:40000";
    let c6 = "[fd00:200::10]:40000";
    let mut zero_csum = Packet::udp(c4, "10.100.0.1:53");
    zero_csum.udp_no_csum = true;
    let m = Maps(&mut bpf);
    let pick = |vip: u32, p: &Packet| m.model_pick(vip, &p.flow());
    let web4 = Packet::tcp(c4, "10.100.0.1:80");
    let web6 = Packet::tcp(c6, "[fd00:100::1]:80");
    let fixtures = vec![
        Fixture {
            name: "IPv4 TCP SYN to VIP",
            to_backend: pick(WEB4, &web4),
            input: web4,
        },
        Fixture {
            name: "IPv4 UDP to VIP",
            input: Packet::udp(c4, "10.100.0.1:53"),
            to_backend: Some(3),
        },
        Fixture {
            name: "IPv4 UDP to VIP, no UDP checksum",
            input: zero_csum,
            to_backend: Some(3),
        },
        Fixture {
            name: "IPv6 TCP SYN to VIP",
            to_backend: pick(WEB6, &web6),
            input: web6,
        },
        Fixture {
            name: "IPv6 UDP to VIP",
            input: Packet::udp(c6, "[fd00:100::1]:53"),
            to_backend: Some(6),
        },
        Fixture {
            name: "IPv4 TCP to the VIP address, other port",
            input: Packet::tcp(c4, "10.100.0.1:81"),
            to_backend: None,
        },
        Fixture {
            name: "IPv4 UDP to a TCP VIP's port",
            input: Packet::udp(c4, "10.100.0.1:80"),
            to_backend: None,
        },
        Fixture {
            name: "IPv6 TCP to non-VIP",
            input: Packet::tcp(c6, "[fd00:100::2]:80"),
            to_backend: None,
        },
        Fixture {
            name: "IPv4 TCP to VIP without backends",
            input: Packet::tcp(c4, "10.100.0.2:80"),
            to_backend: None,
        },
        Fixture {
            name: "IPv4 TCP to VIP with packet LB off",
            input: Packet::tcp(c4, "10.100.0.3:80"),
            to_backend: None,
        },
    ];
    assert!(fixtures[0].to_backend.is_some() && fixtures[3].to_backend.is_some());

    for f in &fixtures {
        let input = f.input.build();
        let expected = match f.to_backend {
            Some(id) => f.input.with_dst(backend_addr(&mut bpf, id)).build(),
            None => input.clone(),
        };
        let (verdict, out) = run_xdp(&bpf, &input);
        println!("{:<45} verdict {verdict} -> {}", f.name, frame_dst(&out));
        assert_eq!(verdict, XDP_PASS, "{}", f.name);
        assert_eq!(out, expected, "{}: output frame", f.name);
        verify_checksums(&out).unwrap_or_else(|e| panic!("{}: {e}", f.name));
    }

    // Frames that are not ours pass byte for byte.
    let mut frag = Packet::udp(c4, "10.100.0.1:53").build();
    frag[20] = 0x20; // more fragments
    let mut options = Packet::udp(c4, "10.100.0.1:53").build();
    options[14] = 0x46; // ihl 6
    let mut icmp = Packet::udp(c4, "10.100.0.1:53").build();
    icmp[23] = 1;
    let mut ext6 = Packet::udp(c6, "[fd00:100::1]:53").build();
    ext6[20] = 60; // destination options header
    let mut arp = Packet::udp(c4, "10.100.0.1:53").build();
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    let short = Packet::tcp(c4, "10.100.0.1:80").build()[..40].to_vec();
    for (name, frame) in [
        ("IPv4 fragment", &frag),
        ("IPv4 with options", &options),
        ("ICMP", &icmp),
        ("IPv6 extension header", &ext6),
        ("ARP", &arp),
        ("truncated TCP header", &short),
    ] {
        let (verdict, out) = run_xdp(&bpf, frame);
        println!("{name:<45} verdict {verdict} untouched");
        assert_eq!(verdict, XDP_PASS, "{name}");
        assert_eq!(&out, frame, "{name}");
    }

    // Counters after the fixtures.
    let m = Maps(&mut bpf);
    assert_eq!(m.stat(Stat::XdpPackets), 16);
    assert_eq!(
        m.stat(Stat::XdpFlowNew),
        4,
        "two UDP/IPv4 packets share one flow"
    );
    assert_eq!(m.stat(Stat::XdpFlowHit), 1);
    assert_eq!(m.stat(Stat::XdpNotVip), 4);
    assert_eq!(m.stat(Stat::XdpNoBackend), 1);
    assert_eq!(m.stat(Stat::XdpUnsupported), 3);
    assert_eq!(m.stat(Stat::XdpNotL4), 2);
    assert_eq!(m.stat(Stat::XdpNotIp), 1);
    let dns4 = m.vip_counters(DNS4);
    assert_eq!((dns4.packets, dns4.new_flows, dns4.misses), (2, 1, 0));
    assert_eq!(
        dns4.bytes,
        2 * Packet::udp(c4, "10.100.0.1:53").build().len() as u64
    );
    assert_eq!(m.backend_counters(3).packets, 2);
    assert_eq!(m.backend_counters(6).new_flows, 1);
    assert_eq!(m.vip_counters(EMPTY4).misses, 1);
    assert_eq!(
        m.vip_counters(WEB4).packets + m.vip_counters(WEB6).packets,
        2
    );
}

#[test]
#[cfg_attr(
    unprivileged,
    ignore = "needs root (BPF, network namespaces, cgroups); runs under CI=true"
)]
fn backend_choice_matches_the_model() {
    require_root("backend_choice_matches_the_model");
    let mut bpf = setup();
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..200u16 {
        let (pkt, vip) = if i % 2 == 0 {
            (
                Packet::tcp(
                    &format!("192.168.{}.{}:{}", i % 7, i % 250 + 1, 1024 + i),
                    "10.100.0.1:80",
                ),
                WEB4,
            )
        } else {
            (
                Packet::tcp(
                    &format!("[fd00:200::{i:x}]:{}", 2000 + i),
                    "[fd00:100::1]:80",
                ),
                WEB6,
            )
        };
        let want = Maps(&mut bpf).model_pick(vip, &pkt.flow()).unwrap();
        let want = backend_addr(&mut bpf, want);
        assert_eq!(forward(&mut bpf, &pkt), want, "flow {i}");
        seen.insert(want);
    }
    assert_eq!(seen.len(), 4, "both backends of both VIPs get flows");
}

#[test]
#[cfg_attr(
    unprivileged,
    ignore = "needs root (BPF, network namespaces, cgroups); runs under CI=true"
)]
fn flow_keeps_its_backend_when_the_ring_changes() {
    require_root("flow_keeps_its_backend_when_the_ring_changes");
    let mut bpf = setup();
    let flow = Packet::tcp("192.168.1.10:40000", "10.100.0.1:80");
    let first = forward(&mut bpf, &flow);
    let other = if first == backend_addr(&mut bpf, 1) {
        2
    } else {
        1
    };
    // Userspace rebuilds the ring with only the other backend (say, a new one took over).
    Maps(&mut bpf).ring(WEB4, &[other]);
    for _ in 0..3 {
        assert_eq!(forward(&mut bpf, &flow), first, "existing flow sticks");
    }
    let new_flow = flow.with_src(sa("192.168.1.10:40001"));
    assert_eq!(forward(&mut bpf, &new_flow), backend_addr(&mut bpf, other));
    let m = Maps(&mut bpf);
    assert_eq!(m.stat(Stat::XdpFlowHit), 3);
    assert_eq!(m.stat(Stat::XdpFlowNew), 2);
}

#[test]
#[cfg_attr(
    unprivileged,
    ignore = "needs root (BPF, network namespaces, cgroups); runs under CI=true"
)]
fn drained_backend_keeps_its_flows_and_takes_no_new_ones() {
    require_root("drained_backend_keeps_its_flows_and_takes_no_new_ones");
    let mut bpf = setup();
    // Find an existing flow on backend 1.
    let b1 = backend_addr(&mut bpf, 1);
    let b2 = backend_addr(&mut bpf, 2);
    let pinned = (40000..40100)
        .map(|p| Packet::tcp(&format!("192.168.1.10:{p}"), "10.100.0.1:80"))
        .find(|p| forward(&mut bpf, p) == b1)
        .unwrap();
    let before = Maps(&mut bpf).backend_counters(1).new_flows;
    // Weight 0: flagged, and still in the ring (userspace has not rebuilt it yet).
    Maps(&mut bpf).backend_flags(1, BACKEND_F_DRAIN);
    assert_eq!(
        forward(&mut bpf, &pinned),
        b1,
        "drained backend keeps its flow"
    );
    for p in 41000..41050 {
        let pkt = Packet::tcp(&format!("192.168.1.11:{p}"), "10.100.0.1:80");
        assert_eq!(
            forward(&mut bpf, &pkt),
            b2,
            "new flow {p} avoids the drained backend"
        );
    }
    assert_eq!(Maps(&mut bpf).backend_counters(1).new_flows, before);
    // Both drained: new flows find no backend and pass untouched; the pinned one still works.
    Maps(&mut bpf).backend_flags(2, BACKEND_F_DRAIN);
    let pkt = Packet::tcp("192.168.1.12:42000", "10.100.0.1:80");
    assert_eq!(forward(&mut bpf, &pkt), sa("10.100.0.1:80"));
    assert_eq!(forward(&mut bpf, &pinned), b1);
    assert_eq!(Maps(&mut bpf).vip_counters(WEB4).misses, 1);
}

#[test]
#[cfg_attr(
    unprivileged,
    ignore = "needs root (BPF, network namespaces, cgroups); runs under CI=true"
)]
fn flows_of_a_removed_backend_are_reselected() {
    require_root("flows_of_a_removed_backend_are_reselected");
    let mut bpf = setup();
    let b1 = backend_addr(&mut bpf, 1);
    let b2 = backend_addr(&mut bpf, 2);
    let pinned: Vec<Packet> = (40000..40200)
        .map(|p| Packet::udp(&format!("192.168.1.10:{p}"), "10.100.0.1:80"))
        .map(|p| Packet {
            proto: PROTO_TCP,
            ..p
        })
        .filter(|p| forward(&mut bpf, p) == b1)
        .take(5)
        .collect();
    assert_eq!(pinned.len(), 5);
    Maps(&mut bpf).backend_flags(1, BACKEND_F_REMOVED);
    for p in &pinned {
        assert_eq!(forward(&mut bpf, p), b2, "moved off the removed backend");
    }
    for p in &pinned {
        assert_eq!(forward(&mut bpf, p), b2, "and pinned to the new one");
    }
    let m = Maps(&mut bpf);
    assert_eq!(m.stat(Stat::XdpFlowReselect), 5);
    assert_eq!(m.backend_counters(1).misses, 5);

    // An id reused for another address (generation bumped) moves its flows too.
    let mut m = Maps(&mut bpf);
    m.backend(2, sa("10.0.0.22:9000"), 0, 2);
    m.backend(1, sa("10.0.0.1:8080"), 0, 2);
    m.ring(WEB4, &[1]);
    for p in &pinned {
        assert_eq!(forward(&mut bpf, p), b1);
    }
    assert_eq!(Maps(&mut bpf).stat(Stat::XdpFlowReselect), 10);
}

#[test]
#[cfg_attr(
    unprivileged,
    ignore = "needs root (BPF, network namespaces, cgroups); runs under CI=true"
)]
fn tc_restores_the_vip_as_source_of_replies() {
    require_root("tc_restores_the_vip_as_source_of_replies");
    let mut bpf = setup();
    let mut zero_csum = Packet::udp("192.168.1.10:40001", "10.100.0.1:53");
    zero_csum.udp_no_csum = true;
    let requests = [
        (
            "IPv4 TCP",
            Packet::tcp("192.168.1.10:40000", "10.100.0.1:80"),
        ),
        (
            "IPv4 UDP",
            Packet::udp("192.168.1.10:40000", "10.100.0.1:53"),
        ),
        ("IPv4 UDP, no UDP checksum", zero_csum),
        (
            "IPv6 TCP",
            Packet::tcp("[fd00:200::10]:40000", "[fd00:100::1]:80"),
        ),
        (
            "IPv6 UDP",
            Packet::udp("[fd00:200::10]:40000", "[fd00:100::1]:53"),
        ),
    ];
    for (name, req) in &requests {
        let backend = forward(&mut bpf, req);
        // The backend answers from its own address.
        let reply = req.with_dst(backend).reply();
        let expected = req.reply().build();
        let (verdict, out) = run_tc(&bpf, &reply.build());
        println!(
            "{name:<30} reply {} -> {}",
            reply.src,
            frame_endpoints(&out).0
        );
        assert_eq!(verdict, TC_ACT_OK, "{name}");
        assert_eq!(out, expected, "{name}: reply comes from the VIP");
        verify_checksums(&out).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // Traffic that is no reply of a translated flow passes untouched.
    let stranger = Packet::tcp("10.0.0.1:8080", "192.168.1.99:40000").build();
    let (verdict, out) = run_tc(&bpf, &stranger);
    assert_eq!((verdict, &out), (TC_ACT_OK, &stranger));
    let m = Maps(&mut bpf);
    assert_eq!(m.stat(Stat::TcPackets), 6);
    assert_eq!(m.stat(Stat::TcRevnat), 5);

    // The reply filter: XDP set one bit per backend endpoint it used (4 here, fewer if two
    // collide); with the bits cleared, tc passes a reply without looking it up.
    let mut filter: Array<&mut MapData, u64> =
        Array::try_from(bpf.map_mut(abi::maps::REVNAT_FILTER).unwrap()).unwrap();
    let words = abi::REVNAT_FILTER_BITS / 64;
    assert_eq!(filter.len(), words);
    let set: u32 = (0..words)
        .map(|i| filter.get(&i, 0).unwrap().count_ones())
        .sum();
    assert!((1..=4).contains(&set), "{set} filter bits set");
    for i in 0..words {
        filter.set(i, 0, 0).unwrap();
    }
    let req = &requests[0].1;
    let backend = forward(&mut bpf, req); // an established flow: no new bit
    let reply = req.with_dst(backend).reply().build();
    let (verdict, out) = run_tc(&bpf, &reply);
    assert_eq!(
        (verdict, &out),
        (TC_ACT_OK, &reply),
        "filtered out, untouched"
    );
    assert_eq!(Maps(&mut bpf).stat(Stat::TcRevnat), 5);
}

#[test]
#[cfg_attr(
    unprivileged,
    ignore = "needs root (BPF, network namespaces, cgroups); runs under CI=true"
)]
fn removed_vip_stops_being_translated_established_flows_included() {
    require_root("removed_vip_stops_being_translated_established_flows_included");
    let mut bpf = setup();
    let web4 = Packet::tcp("192.168.1.10:40000", "10.100.0.1:80");
    let web6 = Packet::tcp("[fd00:200::10]:40000", "[fd00:100::1]:80");
    let dns4 = Packet::udp("192.168.1.10:40000", "10.100.0.1:53");
    for p in [&web4, &web6, &dns4] {
        assert_ne!(
            forward(&mut bpf, p),
            p.dst,
            "translated while the VIP exists"
        );
        assert_ne!(forward(&mut bpf, p), p.dst, "and on the flow-table hit");
    }
    Maps(&mut bpf).vip_remove(sa("10.100.0.1:80"), PROTO_TCP);
    Maps(&mut bpf).vip_remove(sa("[fd00:100::1]:80"), PROTO_TCP);
    for p in [&web4, &web6] {
        let input = p.build();
        let (verdict, out) = run_xdp(&bpf, &input);
        assert_eq!(
            (verdict, &out),
            (XDP_PASS, &input),
            "removed VIP passes untouched"
        );
    }
    // The other VIP on the same address is unaffected.
    assert_eq!(forward(&mut bpf, &dns4), backend_addr(&mut bpf, 3));
    // Added again (another index), the flow is translated again.
    Maps(&mut bpf).vip(sa("10.100.0.1:80"), PROTO_TCP, 7, 0);
    Maps(&mut bpf).ring(7, &[2]);
    assert_ne!(forward(&mut bpf, &web4), web4.dst);
}

#[test]
#[cfg_attr(
    unprivileged,
    ignore = "needs root (BPF, network namespaces, cgroups); runs under CI=true"
)]
fn overflowed_vip_is_found_through_the_hash_map() {
    require_root("overflowed_vip_is_found_through_the_hash_map");
    let mut bpf = setup();
    let mut m = Maps(&mut bpf);
    m.vip_overflowed(sa("10.100.0.9:443"), PROTO_TCP, 8, 0);
    m.ring(8, &[1]);
    let pkt = Packet::tcp("192.168.1.10:40000", "10.100.0.9:443");
    assert_eq!(forward(&mut bpf, &pkt), backend_addr(&mut bpf, 1));
    assert_eq!(forward(&mut bpf, &pkt), backend_addr(&mut bpf, 1));
    // Without the overflow mark the slot table alone decides: a VIP only in beacon_vips is
    // invisible to XDP (userspace must write both).
    let mut m = Maps(&mut bpf);
    m.vip_overflowed(sa("10.100.0.9:444"), PROTO_TCP, 9, 0);
    m.ring(9, &[1]);
    let other = Packet::tcp("192.168.1.10:40000", "10.100.0.9:444");
    let first = abi::vip_slot_candidates(&VipKey::new(other.dst, PROTO_TCP))[0];
    let mut slots: Array<&mut MapData, VipSlot> =
        Array::try_from(bpf.map_mut(abi::maps::VIP_SLOTS).unwrap()).unwrap();
    slots.set(first, VipSlot::default(), 0).unwrap();
    let input = other.build();
    let (_, out) = run_xdp(&bpf, &input);
    assert_eq!(out, input);
}

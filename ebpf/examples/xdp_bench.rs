//! ns per packet of `beacon_xdp_lb` via BPF_PROG_TEST_RUN, next to a minimal XDP DNAT
//! baseline (`bpf/bench/dnat_baseline.c`) run interleaved, round by round, so the ratio
//! factors out the machine and its noise.
//!
//! `repeat > 1` runs the program again on its own output, so both programs get "flip-flop"
//! entries: VIP → backend and backend-as-VIP → VIP. After the first two runs every run is a
//! flow-table hit that rewrites the packet (the steady state of an established flow).
//!
//! Run as root: `cargo run --release -p beacon-ebpf --example xdp_bench [repeat] [rounds]`.

use std::{net::SocketAddr, time::Duration};

use aya::{
    Ebpf, Pod, TestRun, TestRunOptions,
    maps::{Array, HashMap, MapData},
    programs::Xdp,
};
use beacon_ebpf::abi::{self, Backend, PROTO_TCP, RING_SIZE, VipInfo, VipKey, VipSlot};

#[repr(C)]
#[derive(Clone, Copy)]
struct BaselineKey {
    addr: [u8; 4],
    port: u16,
    proto: u8,
    pad: u8,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct BaselineTarget {
    addr: [u8; 4],
    port: u16,
    pad: u16,
}

// SAFETY: plain #[repr(C)] integers without implicit padding.
unsafe impl Pod for BaselineKey {}
// SAFETY: as above.
unsafe impl Pod for BaselineTarget {}

fn main() {
    let mut args = std::env::args().skip(1);
    let repeat: u32 = args
        .next()
        .map_or(1_000_000, |a| a.parse().expect("repeat"));
    let rounds: usize = args.next().map_or(7, |a| a.parse().expect("rounds"));
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("xdp_bench needs root (BPF_PROG_TEST_RUN)");
        std::process::exit(2);
    }

    let client4: SocketAddr = "192.168.1.10:40000".parse().unwrap();
    let vip4: SocketAddr = "10.100.0.1:80".parse().unwrap();
    let be4: SocketAddr = "10.0.0.1:8080".parse().unwrap();
    let client6: SocketAddr = "[fd00:200::10]:40000".parse().unwrap();
    let vip6: SocketAddr = "[fd00:100::1]:80".parse().unwrap();
    let be6: SocketAddr = "[fd00::1]:8080".parse().unwrap();

    let mut beacon = Ebpf::load(beacon_ebpf::OBJECT).expect("load beacon object");
    flip_flop(&mut beacon, vip4, be4, 0, 1);
    flip_flop(&mut beacon, vip6, be6, 2, 3);
    let prog: &mut Xdp = beacon
        .program_mut(abi::programs::XDP_LB)
        .unwrap()
        .try_into()
        .unwrap();
    prog.load().unwrap();

    let mut baseline = Ebpf::load(beacon_ebpf::BENCH_BASELINE_OBJECT).expect("load baseline");
    {
        let mut m: HashMap<&mut MapData, BaselineKey, BaselineTarget> =
            HashMap::try_from(baseline.map_mut("baseline_dnat").unwrap()).unwrap();
        for (from, to) in [(vip4, be4), (be4, vip4)] {
            m.insert(baseline_key(from), baseline_target(to), 0)
                .unwrap();
        }
    }
    let base: &mut Xdp = baseline
        .program_mut("baseline_xdp_dnat")
        .unwrap()
        .try_into()
        .unwrap();
    base.load().unwrap();

    let beacon_prog: &Xdp = beacon
        .program(abi::programs::XDP_LB)
        .unwrap()
        .try_into()
        .unwrap();
    let base_prog: &Xdp = baseline
        .program("baseline_xdp_dnat")
        .unwrap()
        .try_into()
        .unwrap();
    let syn4 = tcp_syn(client4, vip4);
    let syn6 = tcp_syn(client6, vip6);
    let not_vip = tcp_syn(client4, "10.100.0.9:80".parse().unwrap());
    // Where the time goes: the test-run harness plus a program that returns at once (an ARP
    // frame through beacon_xdp_lb), and one hash-map lookup that misses (the baseline with a
    // destination it does not know).
    let mut arp = not_vip.clone();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    let unknown = tcp_syn(client4, "10.100.0.9:81".parse().unwrap());
    println!(
        "breakdown: harness + non-IP frame {:.1} ns; baseline with one hash lookup (miss) {:.1} ns",
        ns(beacon_prog, &arp, repeat),
        ns(base_prog, &unknown, repeat)
    );

    println!("repeat {repeat} per run, {rounds} rounds; ns per packet (kernel-reported average)");
    println!(
        "{:>5} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "round", "baseline4", "beacon4", "beacon6", "not-vip4", "ratio4"
    );
    let (mut b, mut v4, mut v6, mut nv) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let base_ns = ns(base_prog, &syn4, repeat);
        let beacon4 = ns(beacon_prog, &syn4, repeat);
        let beacon6 = ns(beacon_prog, &syn6, repeat);
        let miss = ns(beacon_prog, &not_vip, repeat);
        println!(
            "{round:>5} {base_ns:>10.1} {beacon4:>10.1} {beacon6:>10.1} {miss:>10.1} {:>8.2}",
            beacon4 / base_ns
        );
        b.push(base_ns);
        v4.push(beacon4);
        v6.push(beacon6);
        nv.push(miss);
    }
    let (b, v4, v6, nv) = (median(b), median(v4), median(v6), median(nv));
    println!(
        "median {b:>9.1} {v4:>10.1} {v6:>10.1} {nv:>10.1} {:>8.2}",
        v4 / b
    );
    println!(
        "beacon_xdp_lb IPv4 flow hit: {v4:.1} ns/packet ({:.2}x baseline DNAT {b:.1} ns); IPv6 {v6:.1} ns; non-VIP {nv:.1} ns; goal <= 80 ns",
        v4 / b
    );
}

/// VIP `vip` → backend `be`, and `be` as a VIP → `vip` as its backend, so that a packet
/// rewritten by one run is a VIP hit for the next.
fn flip_flop(bpf: &mut Ebpf, vip: SocketAddr, be: SocketAddr, index: u32, id: u32) {
    for (i, (from, to)) in [(vip, be), (be, vip)].into_iter().enumerate() {
        let (index, id) = (index + i as u32, id + i as u32);
        let key = VipKey::new(from, PROTO_TCP);
        let info = VipInfo { index, flags: 0 };
        let mut vips: HashMap<&mut MapData, VipKey, VipInfo> =
            HashMap::try_from(bpf.map_mut(abi::maps::VIPS).unwrap()).unwrap();
        vips.insert(key, info, 0).unwrap();
        // XDP's copy (a fresh map: the first candidate slot is free).
        let mut slots: Array<&mut MapData, VipSlot> =
            Array::try_from(bpf.map_mut(abi::maps::VIP_SLOTS).unwrap()).unwrap();
        let slot = VipSlot {
            key,
            info,
            overflow: 0,
        };
        slots
            .set(abi::vip_slot_candidates(&key)[0], slot, 0)
            .unwrap();
        let mut backends: Array<&mut MapData, Backend> =
            Array::try_from(bpf.map_mut(abi::maps::BACKENDS).unwrap()).unwrap();
        backends.set(id, Backend::new(to, 0, 1), 0).unwrap();
        let mut rings: Array<&mut MapData, u32> =
            Array::try_from(bpf.map_mut(abi::maps::RINGS).unwrap()).unwrap();
        for slot in 0..RING_SIZE {
            rings.set(abi::ring_index(index, slot), id, 0).unwrap();
        }
    }
}

fn ns(prog: &Xdp, frame: &[u8], repeat: u32) -> f64 {
    let mut out = vec![0u8; frame.len() + 256];
    let r = prog
        .test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            repeat,
            ..TestRunOptions::new()
        })
        .expect("BPF_PROG_TEST_RUN");
    assert_eq!(r.return_value, 2, "XDP_PASS");
    duration_ns(r.duration)
}

fn duration_ns(d: Duration) -> f64 {
    d.as_secs_f64() * 1e9
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn baseline_key(a: SocketAddr) -> BaselineKey {
    let SocketAddr::V4(a) = a else { unreachable!() };
    BaselineKey {
        addr: a.ip().octets(),
        port: a.port().to_be(),
        proto: PROTO_TCP,
        pad: 0,
    }
}

fn baseline_target(a: SocketAddr) -> BaselineTarget {
    let SocketAddr::V4(a) = a else { unreachable!() };
    BaselineTarget {
        addr: a.ip().octets(),
        port: a.port().to_be(),
        pad: 0,
    }
}

/// An Ethernet frame with a TCP SYN (no options, no payload). Checksums are left zero: the
/// programs update them incrementally either way, and nothing here checks them.
fn tcp_syn(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01];
    let mut tcp = Vec::new();
    tcp.extend_from_slice(&src.port().to_be_bytes());
    tcp.extend_from_slice(&dst.port().to_be_bytes());
    tcp.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    match (src, dst) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0]);
            f.extend_from_slice(&s.ip().octets());
            f.extend_from_slice(&d.ip().octets());
        }
        (SocketAddr::V6(s), SocketAddr::V6(d)) => {
            f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0, 0, 20, 6, 64]);
            f.extend_from_slice(&s.ip().octets());
            f.extend_from_slice(&d.ip().octets());
        }
        _ => unreachable!(),
    }
    f.extend_from_slice(&tcp);
    f
}

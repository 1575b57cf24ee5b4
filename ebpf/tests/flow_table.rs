//! BPF_PROG_TEST_RUN tests of the XDP flow table under pressure: the new-flow rate guard
//! (Katran's flood mode) and the refresh of a live flow's reverse entry on hits.
//!
//! Needs root. Each test keeps its thread on CPU 0: the LRU lists and the guard's window are
//! per CPU.

mod support;

use std::net::SocketAddr;

use aya::{
    Ebpf, TestRun, TestRunOptions,
    maps::{HashMap, MapData},
    programs::{SchedClassifier, Xdp},
};
use beacon_ebpf::abi::{self, FlowKey, PROTO_TCP, Stat, VipEndpoint};
use beacon_test_support::privileged::require_root;
use support::{Maps, Packet, frame_dst, load_with, sa, stay_on_cpu0, verify_checksums};

const XDP_PASS: u32 = 2;
const TC_ACT_OK: u32 = 0;
/// VIP index of 10.100.0.1:80/tcp, backends 1 and 2.
const WEB: u32 = 0;

fn setup(rate_limit: u32, flow_table: Option<u32>) -> Ebpf {
    let mut bpf = load_with(rate_limit, flow_table);
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
    m.vip(sa("10.100.0.1:80"), PROTO_TCP, WEB, 0);
    m.backend(1, sa("10.0.0.1:8080"), 0, 1);
    m.backend(2, sa("10.0.0.2:8081"), 0, 1);
    m.ring(WEB, &[1, 2]);
    bpf
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

/// Sends `pkt` through XDP; returns where it went.
fn forward(bpf: &Ebpf, pkt: &Packet) -> SocketAddr {
    let p: &Xdp = bpf
        .program(abi::programs::XDP_LB)
        .unwrap()
        .try_into()
        .unwrap();
    let (verdict, out) = run(p, &pkt.build());
    assert_eq!(verdict, XDP_PASS);
    verify_checksums(&out).unwrap();
    frame_dst(&out)
}

/// Sends the backend's reply to `req` (which went to `backend`) through tc; returns whether it
/// came out from the VIP.
fn reply_translated(bpf: &Ebpf, req: &Packet, backend: SocketAddr) -> bool {
    let p: &SchedClassifier = bpf
        .program(abi::programs::TC_REVNAT)
        .unwrap()
        .try_into()
        .unwrap();
    let (verdict, out) = run(p, &req.with_dst(backend).reply().build());
    assert_eq!(verdict, TC_ACT_OK);
    out == req.reply().build()
}

fn flow(i: u32) -> Packet {
    let src = format!(
        "192.168.{}.{}:{}",
        i / 200 % 250,
        i % 200 + 1,
        10000 + i % 50000
    );
    Packet::tcp(&src, "10.100.0.1:80")
}

/// Over the rate, new flows go to the backend the ring picks, are not saved, and their replies
/// are translated all the same (from the overflow reverse table).
#[test]
#[cfg_attr(
    unprivileged,
    ignore = "needs root (BPF, network namespaces, cgroups); runs under CI=true"
)]
fn new_flows_over_the_rate_are_balanced_but_not_saved() {
    require_root("new_flows_over_the_rate_are_balanced_but_not_saved");
    stay_on_cpu0();
    let mut bpf = setup(5, None);
    // 12 new flows in well under a second: 5 saved, 7 over the guard.
    for i in 0..12 {
        let pkt = flow(i);
        let to = forward(&bpf, &pkt);
        let m = Maps(&mut bpf);
        let want = m.model_pick(WEB, &pkt.flow()).unwrap();
        assert_eq!(
            to,
            m.backend_get(want).socket_addr(),
            "flow {i}: the ring's pick"
        );
        assert!(
            reply_translated(&bpf, &pkt, to),
            "flow {i}: reply from the VIP"
        );
    }
    assert_eq!(flow_entries(&bpf), 5);
    assert_eq!(reverse_entries(&bpf, abi::maps::REVNAT), 5);
    assert_eq!(reverse_entries(&bpf, abi::maps::REVNAT_OVERFLOW), 7);
    // An unsaved flow's next packet goes to the same backend (the ring picks again).
    let again = flow(11);
    let first = forward(&bpf, &again);
    assert_eq!(forward(&bpf, &again), first);
    assert_eq!(stats(&mut bpf), (14, 9, 0), "(new, unsaved, hits)");
    // A saved flow's packets are hits, whatever the rate.
    forward(&bpf, &flow(0));
    assert_eq!(stats(&mut bpf), (14, 9, 1), "(new, unsaved, hits)");
    // Without the guard every new flow is saved.
    let mut off = setup(0, None);
    for i in 0..12 {
        forward(&off, &flow(i));
    }
    assert_eq!(flow_entries(&off), 12);
    assert_eq!(stats(&mut off), (12, 0, 0), "(new, unsaved, hits)");
}

/// A long-lived flow whose replies are rare (one every 5 rounds of 48 new flows, in a table of
/// 64 per CPU) while its requests are not (one per round): its forward hits keep its reverse
/// entry from being evicted, so each reply is translated, without the entry ever having to be
/// written again, and the flow keeps its forward entry too.
#[test]
#[cfg_attr(
    unprivileged,
    ignore = "needs root (BPF, network namespaces, cgroups); runs under CI=true"
)]
fn reverse_entry_of_a_live_flow_survives_churn() {
    require_root("reverse_entry_of_a_live_flow_survives_churn");
    stay_on_cpu0();
    let cpus = aya::util::nr_cpus().unwrap() as u32;
    // 64 entries on this CPU; each round 48 new flows.
    let mut bpf = setup(0, Some(64 * cpus));
    let live = Packet::tcp("172.16.0.1:5000", "10.100.0.1:80");
    let backend = forward(&bpf, &live);
    let mut churn = 0;
    for round in 0..20 {
        for _ in 0..48 {
            forward(&bpf, &flow(churn));
            churn += 1;
        }
        // A reply now and then (each reply's lookup refreshes the entry as well).
        if round % 5 == 4 {
            assert!(
                reply_translated(&bpf, &live, backend),
                "round {round}: the live flow's reply lost its reverse entry"
            );
        }
        assert_eq!(forward(&bpf, &live), backend, "round {round}");
    }
    let m = Maps(&mut bpf);
    assert_eq!(m.stat(Stat::XdpFlowHit), 20, "every live packet was a hit");
    assert_eq!(m.stat(Stat::XdpFlowNew), 1 + 20 * 48);
    assert_eq!(m.stat(Stat::XdpRevnatRestored), 0, "never evicted");
    assert!(flow_entries(&bpf) <= 64 * cpus as usize);
}

fn flow_entries(bpf: &Ebpf) -> usize {
    let m: HashMap<&MapData, FlowKey, abi::BackendRef> =
        HashMap::try_from(bpf.map(abi::maps::FLOWS).unwrap()).unwrap();
    m.keys().count()
}

fn reverse_entries(bpf: &Ebpf, map: &str) -> usize {
    let m: HashMap<&MapData, FlowKey, VipEndpoint> =
        HashMap::try_from(bpf.map(map).unwrap()).unwrap();
    m.keys().count()
}

/// (new flows, unsaved new flows, flow hits).
fn stats(bpf: &mut Ebpf) -> (u64, u64, u64) {
    let m = Maps(bpf);
    (
        m.stat(Stat::XdpFlowNew),
        m.stat(Stat::XdpFlowUnsaved),
        m.stat(Stat::XdpFlowHit),
    )
}

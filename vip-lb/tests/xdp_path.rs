//! The packet path end to end: a client namespace sends to VIPs through a "node" namespace that
//! runs `beacon_xdp_lb` on its client-facing veth (and `beacon_tc_revnat` on the same veth's
//! egress) and forwards to backends in two backend namespaces. Every namespace and veth is made
//! by the test and deleted at its end; no traffic leaves them.
//!
//! ```text
//!  client ns               node ns (ip_forward, XDP + tc on vn*)         backend ns 1 / 2
//!  vc* 10.77.1.2 ── vn* 10.77.1.1      vm1* 10.77.2.1 ── vb1* 10.77.2.11-13   (be1..be3, u1)
//!                                      vm2* 10.77.3.1 ── vb2* 10.77.3.14-15   (be4, be5, u4)
//! ```
//!
//! Needs root; under `CI=true` a non-root run fails. `BEACON_TEST_XDP_MODE=native|generic|auto`
//! picks the XDP mode (default auto).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use beacon_catalog::vip::Protocol;
use beacon_test_support::netns::{sh, veth};
use beacon_vip_lb::{DataPlane, DataPlaneConfig, XdpModeSetting, desired};
use support::*;

struct Topology {
    client: Netns,
    node: Netns,
    b1: Netns,
    b2: Netns,
    /// The node's client-facing interface.
    ifname: String,
    /// The suffix of every interface name.
    tag: String,
}

fn topology() -> Topology {
    let t = tag();
    let client = Netns::new(&format!("bvx-c-{t}"));
    let node = Netns::new(&format!("bvx-n-{t}"));
    let b1 = Netns::new(&format!("bvx-b1-{t}"));
    let b2 = Netns::new(&format!("bvx-b2-{t}"));
    let (vc, vn) = (format!("vc{t}"), format!("vn{t}"));
    veth(&client, &vc, &node, &vn);
    veth(&b1, &format!("vb1{t}"), &node, &format!("vm1{t}"));
    veth(&b2, &format!("vb2{t}"), &node, &format!("vm2{t}"));
    client.ip(&format!("addr add 10.77.1.2/24 dev {vc}"));
    client.ip("route add default via 10.77.1.1");
    node.ip(&format!("addr add 10.77.1.1/24 dev {vn}"));
    node.ip(&format!("addr add 10.77.2.1/24 dev vm1{t}"));
    node.ip(&format!("addr add 10.77.3.1/24 dev vm2{t}"));
    node.sysctl("net.ipv4.ip_forward=1");
    for i in 11..=13 {
        b1.ip(&format!("addr add 10.77.2.{i}/24 dev vb1{t}"));
    }
    b1.ip("route add default via 10.77.2.1");
    for i in 14..=15 {
        b2.ip(&format!("addr add 10.77.3.{i}/24 dev vb2{t}"));
    }
    b2.ip("route add default via 10.77.3.1");
    Topology {
        client,
        node,
        b1,
        b2,
        ifname: vn,
        tag: t,
    }
}

fn xdp_mode() -> XdpModeSetting {
    std::env::var("BEACON_TEST_XDP_MODE")
        .ok()
        .map(|m| m.parse().unwrap())
        .unwrap_or_default()
}

#[test]
#[cfg_attr(
    unprivileged,
    ignore = "needs root (BPF, network namespaces, cgroups); runs under CI=true"
)]
fn xdp_balances_named_and_ip_vips_and_keeps_flows_when_a_backend_goes() {
    require_root("xdp_balances_named_and_ip_vips_and_keeps_flows_when_a_backend_goes");
    let topo = topology();
    let mut web_backends = Vec::new();
    for (i, ns) in [
        (11, &topo.b1),
        (12, &topo.b1),
        (13, &topo.b1),
        (14, &topo.b2),
        (15, &topo.b2),
    ] {
        let name = format!("be{}", i - 10);
        let addr = if i <= 13 {
            format!("10.77.2.{i}:8080")
        } else {
            format!("10.77.3.{i}:8080")
        };
        let bound = ns.run(move || tcp_backend(sa(&addr), &name));
        web_backends.push(backend(bound, 1, if i <= 13 { "n1" } else { "n2" }));
    }
    let u1 = topo.b1.run(|| udp_backend(sa("10.77.2.11:5353"), "u1"));
    let u4 = topo.b2.run(|| udp_backend(sa("10.77.3.14:5353"), "u4"));

    let web = named_key("/web", Protocol::Tcp, 80);
    let dns_vip = sa("10.77.100.1:53");
    let dns = ip_key(dns_vip, Protocol::Udp);
    let catalog = |web_backends: &[beacon_catalog::vip::Backend]| {
        table(vec![
            (web.clone(), web_backends.to_vec()),
            (
                dns.clone(),
                vec![backend(u1, 1, "n1"), backend(u4, 1, "n2")],
            ),
        ])
    };
    let t = catalog(&web_backends);
    let vip = SocketAddr::new(named_v4(&t, &web), 80);

    let config = DataPlaneConfig {
        socket_lb: false,
        xdp_interfaces: vec![topo.ifname.clone()],
        xdp_mode: xdp_mode(),
        ..DataPlaneConfig::default()
    };
    let mut dp = topo
        .node
        .run(move || DataPlane::start(&config))
        .unwrap_or_else(|e| panic!("{e}"));
    let report = dp
        .apply(&desired(&t, &t.named_addresses(), &BTreeSet::new()))
        .unwrap();
    assert_eq!(
        (report.changes.vips_added, report.changes.backends_added),
        (2, 7)
    );
    assert_eq!(dp.programmed(), [web.clone(), dns.clone()].into());

    // 60 TCP connections through XDP: all five backends get some.
    let mut conns: Vec<(Conn, String)> = topo.client.run(move || {
        (0..60)
            .map(|i| {
                let mut c = Conn::open(vip).unwrap_or_else(|e| panic!("connect {i} to {vip}: {e}"));
                let who = c.who().unwrap();
                (c, who)
            })
            .collect()
    });
    let mut spread: BTreeMap<String, usize> = BTreeMap::new();
    for (_, who) in &conns {
        *spread.entry(who.clone()).or_default() += 1;
    }
    println!("spread over backends: {spread:?}");
    assert_eq!(spread.len(), 5, "{spread:?}");

    // UDP through XDP: replies come from the VIP (tc reverse NAT).
    let udp: Vec<(SocketAddr, String)> = topo
        .client
        .run(move || (0..10).map(|_| udp_ask(dns_vip).unwrap()).collect());
    assert!(udp.iter().all(|(from, _)| *from == dns_vip), "{udp:?}");
    let names: BTreeSet<&str> = udp.iter().map(|(_, n)| n.as_str()).collect();
    assert!(names.is_subset(&["u1", "u4"].into()), "{names:?}");

    let stats = dp.stats();
    let web_stats = stats.iter().find(|s| s.key == web).unwrap();
    assert_eq!(web_stats.address, vip);
    assert_eq!(web_stats.counters.new_flows, 60);
    assert!(web_stats.counters.packets >= 60 * 3 && web_stats.counters.bytes > 0);
    assert!(web_stats.backends.iter().all(|b| b.counters.new_flows > 0));
    let dns_stats = stats.iter().find(|s| s.key == dns).unwrap();
    assert_eq!(dns_stats.counters.new_flows, 10);

    // Remove be3: established connections to the others keep working on the same backend;
    // only be3's flows move (and break: the new backend has no such connection).
    let gone = web_backends.remove(2);
    let t2 = catalog(&web_backends);
    let report = dp
        .apply(&desired(&t2, &t2.named_addresses(), &BTreeSet::new()))
        .unwrap();
    assert_eq!(
        (report.changes.vips_changed, report.changes.backends_removed),
        (1, 1)
    );
    assert!(
        report.changes.ring_slots > 0 && report.changes.ring_slots < beacon_ebpf::abi::RING_SIZE
    );
    let mut moved = 0;
    for (c, who) in &mut conns {
        let again = c.who();
        if who == "be3" {
            moved += 1;
            assert!(
                again.as_deref().map_or(true, |w| w != "be3"),
                "a flow of the removed backend still reaches it"
            );
        } else {
            assert_eq!(again.as_ref().ok(), Some(&*who), "flow to {who} broke");
        }
    }
    assert_eq!(moved, spread["be3"]);
    let fresh: Vec<String> = topo.client.run(move || {
        (0..20)
            .map(|_| Conn::open(vip).unwrap().who().unwrap())
            .collect()
    });
    assert!(!fresh.iter().any(|w| w == "be3"), "{fresh:?}");
    let globals: BTreeMap<_, _> = dp.global_counters().into_iter().collect();
    assert!(globals["xdp_flow_reselect"] >= moved as u64, "{globals:?}");
    assert!(globals["tc_revnat"] > 0);
    assert!(
        !dp.stats()
            .iter()
            .flat_map(|s| &s.backends)
            .any(|b| b.addr == SocketAddr::new(gone.ip, gone.port))
    );
    drop(conns);
    drop(dp);
}

/// A local sender's frames are CHECKSUM_PARTIAL (veth keeps TX checksum offload on by default):
/// their L4 checksum field holds only the pseudo-header seed, completed later. XDP must update
/// that seed as a seed, or the completed checksum is wrong. Between veths a partial frame is
/// trusted all the way, so a wrong seed would go unnoticed; here the node's interfaces towards
/// the backends and the client have TX checksumming off, so the kernel completes every
/// checksum in software on the way out and the receivers verify it: a wrong one is dropped.
/// The VIP port (80, 53) differs from the backends' (8080, 5353), so ports change too.
#[test]
#[cfg_attr(
    unprivileged,
    ignore = "needs root (BPF, network namespaces, cgroups); runs under CI=true"
)]
fn xdp_translates_checksum_offloaded_frames_from_a_local_sender() {
    require_root("xdp_translates_checksum_offloaded_frames_from_a_local_sender");
    let topo = topology();
    let t = &topo.tag;
    topo.client.run({
        let t = t.clone();
        move || sh(&format!("ethtool -K vc{t} tx on"))
    });
    topo.node.run({
        let t = t.clone();
        move || {
            for dev in [format!("vn{t}"), format!("vm1{t}")] {
                sh(&format!("ethtool -K {dev} tx off"));
            }
        }
    });
    let be = topo.b1.run(|| tcp_backend(sa("10.77.2.11:8080"), "be1"));
    let u1 = topo.b1.run(|| udp_backend(sa("10.77.2.12:5353"), "u1"));
    let web_vip = sa("10.77.100.2:80");
    let dns_vip = sa("10.77.100.3:53");
    let web = ip_key(web_vip, Protocol::Tcp);
    let dns = ip_key(dns_vip, Protocol::Udp);
    let t = table(vec![
        (web.clone(), vec![backend(be, 1, "n1")]),
        (dns.clone(), vec![backend(u1, 1, "n1")]),
    ]);
    let config = DataPlaneConfig {
        socket_lb: false,
        xdp_interfaces: vec![topo.ifname.clone()],
        xdp_mode: xdp_mode(),
        ..DataPlaneConfig::default()
    };
    let mut dp = topo
        .node
        .run(move || DataPlane::start(&config))
        .unwrap_or_else(|e| panic!("{e}"));
    dp.apply(&desired(&t, &t.named_addresses(), &BTreeSet::new()))
        .unwrap();

    // TCP: handshake, small and large segments of odd and even length, both ways.
    let answers: Vec<String> = topo.client.run(move || {
        let mut out = Vec::new();
        for len in [3usize, 4, 1001, 1400] {
            let s = TcpStream::connect_timeout(&web_vip, Duration::from_secs(3))
                .unwrap_or_else(|e| panic!("connect to {web_vip} ({len}): {e}"));
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            let mut w = s.try_clone().unwrap();
            let mut line = "x".repeat(len);
            line.push('\n');
            w.write_all(line.as_bytes()).unwrap();
            let mut reply = String::new();
            BufReader::new(s)
                .read_line(&mut reply)
                .unwrap_or_else(|e| panic!("reply to a {len}-byte line: {e}"));
            out.push(reply.trim().to_string());
        }
        out
    });
    assert_eq!(answers, ["be1"; 4]);
    // UDP: an odd-length datagram ("who"), replies from the VIP.
    let udp: Vec<(SocketAddr, String)> = topo
        .client
        .run(move || (0..5).map(|_| udp_ask(dns_vip).unwrap()).collect());
    assert!(
        udp.iter()
            .all(|(from, who)| *from == dns_vip && who == "u1"),
        "{udp:?}"
    );
    let globals: BTreeMap<_, _> = dp.global_counters().into_iter().collect();
    assert!(globals["xdp_flow_new"] >= 9, "{globals:?}");
    drop(dp);
}

/// The packet path outlives its owner too (issue 10): with a pin directory, XDP and tcx stay
/// attached when the `DataPlane` goes, established flows keep their backend, and a new
/// `DataPlane` takes over the pinned links (same links, its own programs) and adopts the maps,
/// writing nothing for an unchanged catalog.
#[test]
#[cfg_attr(
    unprivileged,
    ignore = "needs root (BPF, network namespaces, cgroups); runs under CI=true"
)]
fn pinned_xdp_keeps_flows_across_a_restart_of_its_owner() {
    require_root("pinned_xdp_keeps_flows_across_a_restart_of_its_owner");
    let topo = topology();
    let pins = PinDir::new("xdp");
    let mut backends = Vec::new();
    for i in 11..=13 {
        let (addr, name) = (format!("10.77.2.{i}:8080"), format!("be{}", i - 10));
        let bound = topo.b1.run(move || tcp_backend(sa(&addr), &name));
        backends.push(backend(bound, 1, "n1"));
    }
    let web = named_key("/web", Protocol::Tcp, 80);
    let t = table(vec![(web.clone(), backends)]);
    let vip = SocketAddr::new(named_v4(&t, &web), 80);
    let want = desired(&t, &t.named_addresses(), &BTreeSet::new());
    let config = DataPlaneConfig {
        socket_lb: false,
        xdp_interfaces: vec![topo.ifname.clone()],
        xdp_mode: xdp_mode(),
        bpffs_dir: Some(pins.path().to_path_buf()),
        ..DataPlaneConfig::default()
    };
    let start = |config: &DataPlaneConfig| {
        let config = config.clone();
        topo.node
            .run(move || DataPlane::start(&config))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let mut first = start(&config);
    first.apply(&want).unwrap();
    let mut conns: Vec<(Conn, String)> = topo.client.run(move || {
        (0..20)
            .map(|_| {
                let mut c = Conn::open(vip).unwrap();
                let who = c.who().unwrap();
                (c, who)
            })
            .collect()
    });
    assert_eq!(pins.files("links").len(), 2, "XDP and tcx links pinned");
    let links = pins.link_info();
    drop(first);

    let same_backend = |conns: &mut Vec<(Conn, String)>| {
        for (c, who) in conns.iter_mut() {
            assert_eq!(
                c.who().ok().as_ref(),
                Some(&*who),
                "a flow lost its backend"
            );
        }
    };
    same_backend(&mut conns);
    let mut second = start(&config);
    assert_eq!(second.kernel_vips(), 1);
    same_backend(&mut conns);
    let after = pins.link_info();
    for (name, (link, prog)) in &links {
        assert_eq!(after[name].0, *link, "{name}: the same link");
        assert_ne!(after[name].1, *prog, "{name}: now runs the new program");
    }
    let report = second.apply(&want).unwrap();
    assert_eq!(report.changes.ring_slots, 0, "{report:?}");
    same_backend(&mut conns);
    let fresh = topo
        .client
        .run(move || Conn::open(vip).unwrap().who().unwrap());
    assert!(fresh.starts_with("be"), "{fresh}");
    drop(conns);
    drop(second);
}

/// Fail closed on the packet path: TCP to an address in 11.0.0.0/8 that is no VIP is dropped at
/// XDP, and counted, instead of being routed on. The node here routes 11.0.0.0/8 to a backend
/// namespace that takes every address in it as its own, so without the drop the connection
/// succeeds (checked first, before the data plane starts). All of it stays in the test's
/// namespaces: none has a route out.
#[test]
#[cfg_attr(
    unprivileged,
    ignore = "needs root (BPF, network namespaces, cgroups); runs under CI=true"
)]
fn xdp_drops_packets_to_named_vip_addresses_that_are_no_vip() {
    require_root("xdp_drops_packets_to_named_vip_addresses_that_are_no_vip");
    let topo = topology();
    topo.b1.ip("route add local 11.0.0.0/8 dev lo");
    topo.node.ip("route add 11.0.0.0/8 via 10.77.2.11");
    topo.b1.run(|| tcp_backend(sa("0.0.0.0:9090"), "stray"));
    let stray = sa("11.0.0.99:9090");
    let reach = |topo: &Topology| topo.client.run(move || Conn::open(stray)?.who());
    assert_eq!(
        reach(&topo).ok().as_deref(),
        Some("stray"),
        "the range is routed"
    );

    let web = named_key("/web", Protocol::Tcp, 80);
    let be = topo.b1.run(|| tcp_backend(sa("10.77.2.12:8080"), "web"));
    let t = table(vec![(web.clone(), vec![backend(be, 1, "n1")])]);
    let vip = SocketAddr::new(named_v4(&t, &web), 80);
    let config = DataPlaneConfig {
        socket_lb: false,
        xdp_interfaces: vec![topo.ifname.clone()],
        xdp_mode: xdp_mode(),
        ..DataPlaneConfig::default()
    };
    let mut dp = topo
        .node
        .run(move || DataPlane::start(&config))
        .unwrap_or_else(|e| panic!("{e}"));
    dp.apply(&desired(&t, &t.named_addresses(), &BTreeSet::new()))
        .unwrap();
    let err = reach(&topo).expect_err("a packet to a non-VIP in the range left the node");
    println!("connect to {stray} with the data plane on: {err}");
    // The VIP in the same range is still balanced, and its other ports are no VIP.
    let who = topo.client.run(move || Conn::open(vip)?.who());
    assert_eq!(who.ok().as_deref(), Some("web"));
    let other_port = SocketAddr::new(vip.ip(), 9090);
    assert!(topo.client.run(move || Conn::open(other_port)).is_err());
    let globals: BTreeMap<_, _> = dp.global_counters().into_iter().collect();
    assert!(globals["xdp_range_dropped"] >= 2, "{globals:?}");
}

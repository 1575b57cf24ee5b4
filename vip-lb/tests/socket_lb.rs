//! Socket LB end to end: a `DataPlane` attached to a throw-away child cgroup (through the
//! configurable cgroup path, never the root), a client process inside it, backends on loopback
//! addresses (127.0.0.x). Client and backends share a throw-away network namespace with only
//! loopback, so a connect the data plane does not translate (11.0.0.0/8 is routed on some hosts)
//! fails instead of leaving the machine. Also the withdrawal of backends on unreachable nodes (fail open) and
//! the repair of maps changed behind the data plane's back.
//!
//! Needs root and cgroup v2; under `CI=true` a non-root run fails.

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;

use aya::maps::{Array, HashMap, MapData};
use beacon_catalog::vip::{Protocol, VipTable};
use beacon_ebpf::abi;
use beacon_vip_lb::{DataPlane, DataPlaneConfig, desired};
use support::*;

fn start(cg: &Cgroup) -> DataPlane {
    DataPlane::start(&DataPlaneConfig {
        cgroup: cg.path().to_path_buf(),
        ..DataPlaneConfig::default()
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

fn no_nodes() -> BTreeSet<String> {
    BTreeSet::new()
}

fn tcp_script(vip: SocketAddr, n: usize) -> String {
    vec![format!("tcp {vip}"); n].join(";")
}

#[test]
#[cfg_attr(
    unprivileged,
    ignore = "needs root (BPF, network namespaces, cgroups); runs under CI=true"
)]
fn socket_lb_reaches_loopback_backends_and_shows_the_vip() {
    if client_asked() {
        return;
    }
    require_root("socket_lb_reaches_loopback_backends_and_shows_the_vip");
    let cg = Cgroup::new(
        "socket_lb_reaches_loopback_backends_and_shows_the_vip",
        "sock",
    );
    let mut dp = start(&cg);
    let b1 = cg.tcp_backend(sa("127.0.0.2:0"), "b1");
    let b2 = cg.tcp_backend(sa("127.0.0.3:0"), "b2");
    let u1 = cg.udp_backend(sa("127.0.0.4:0"), "u1");
    let web = named_key("/web", Protocol::Tcp, 80);
    let dns = named_key("/dns", Protocol::Udp, 53);
    let ipvip = sa("10.254.0.1:8080");
    let ipkey = ip_key(ipvip, Protocol::Tcp);
    let t = table(vec![
        (
            web.clone(),
            vec![backend(b1, 1, "n1"), backend(b2, 1, "n2")],
        ),
        (dns.clone(), vec![backend(u1, 1, "n1")]),
        (ipkey.clone(), vec![backend(b2, 1, "n2")]),
    ]);
    let vip = SocketAddr::new(named_v4(&t, &web), 80);
    let dvip = SocketAddr::new(named_v4(&t, &dns), 53);

    assert!(dp.programmed().is_empty());
    let r = cg.client(&format!("tcp {vip}"));
    assert!(r[0].1.starts_with("err="), "not a VIP yet: {r:?}");

    let report = dp
        .apply(&desired(&t, &t.named_addresses(), &no_nodes()))
        .unwrap();
    assert_eq!(report.changes.vips_added, 3);
    assert_eq!(report.changes.backends_added, 4);
    assert_eq!(
        dp.programmed(),
        [web.clone(), dns.clone(), ipkey.clone()].into()
    );

    let script = format!("{};udp {dvip};tcp {ipvip}", tcp_script(vip, 20));
    let r = cg.client(&script);
    println!("{r:?}");
    assert_eq!(
        peers(&r, "tcp"),
        [vip.to_string(), ipvip.to_string()].into()
    );
    let seen = replies(&r, "tcp");
    assert_eq!(seen.get("b1").copied().unwrap_or(0) + seen["b2"], 21);
    assert!(seen.contains_key("b1"), "both backends serve: {seen:?}");
    assert_eq!(
        peers(&r, "udp"),
        [dvip.to_string()].into(),
        "recvfrom shows the VIP"
    );
    assert_eq!(replies(&r, "udp")["u1"], 1);

    let stats = dp.stats();
    let web_stats = stats.iter().find(|s| s.key == web).unwrap();
    assert_eq!(web_stats.address, vip);
    assert_eq!(web_stats.counters.new_flows, 20);
    let per_backend: u64 = web_stats
        .backends
        .iter()
        .map(|b| b.counters.new_flows)
        .sum();
    assert_eq!(per_backend, 20);
    let globals: std::collections::BTreeMap<_, _> = dp.global_counters().into_iter().collect();
    assert!(globals["sock_xlate"] >= 22);

    // Removing the VIPs refuses new connections again; nothing is left in the maps.
    let report = dp.apply(&desired(
        &VipTable::default(),
        &Default::default(),
        &no_nodes(),
    ));
    assert_eq!(report.unwrap().changes.vips_removed, 3);
    assert!(dp.programmed().is_empty());
    let r = cg.client(&format!("tcp {vip}"));
    assert!(r[0].1.starts_with("err="), "{r:?}");
}

#[test]
#[cfg_attr(
    unprivileged,
    ignore = "needs root (BPF, network namespaces, cgroups); runs under CI=true"
)]
fn unreachable_node_is_withdrawn_and_all_unreachable_fails_open() {
    if client_asked() {
        return;
    }
    require_root("unreachable_node_is_withdrawn_and_all_unreachable_fails_open");
    let cg = Cgroup::new(
        "unreachable_node_is_withdrawn_and_all_unreachable_fails_open",
        "reach",
    );
    let mut dp = start(&cg);
    let b1 = cg.tcp_backend(sa("127.0.0.5:0"), "on-n1");
    let b2 = cg.tcp_backend(sa("127.0.0.6:0"), "on-n2");
    let web = named_key("/reach", Protocol::Tcp, 80);
    let t = table(vec![(
        web.clone(),
        vec![backend(b1, 1, "n1"), backend(b2, 1, "n2")],
    )]);
    let vip = SocketAddr::new(named_v4(&t, &web), 80);
    let addrs = t.named_addresses();

    let unreachable: BTreeSet<String> = ["n2".to_string()].into();
    let report = dp.apply(&desired(&t, &addrs, &unreachable)).unwrap();
    assert_eq!(report.changes.backends_added, 1);
    let r = cg.client(&tcp_script(vip, 12));
    assert_eq!(replies(&r, "tcp"), [("on-n1".to_string(), 12)].into());

    // Every backend's node unreachable: fail open, both serve.
    let all: BTreeSet<String> = ["n1".to_string(), "n2".to_string()].into();
    let report = dp.apply(&desired(&t, &addrs, &all)).unwrap();
    assert_eq!(
        (report.changes.backends_added, report.changes.vips_changed),
        (1, 1)
    );
    let r = cg.client(&tcp_script(vip, 24));
    let seen = replies(&r, "tcp");
    assert_eq!(seen.len(), 2, "{seen:?}");

    // n1 unreachable now: its backend is marked removed, the other one takes everything.
    let n1: BTreeSet<String> = ["n1".to_string()].into();
    let report = dp.apply(&desired(&t, &addrs, &n1)).unwrap();
    assert_eq!(report.changes.backends_removed, 1);
    let r = cg.client(&tcp_script(vip, 12));
    assert_eq!(replies(&r, "tcp"), [("on-n2".to_string(), 12)].into());
}

#[test]
#[cfg_attr(
    unprivileged,
    ignore = "needs root (BPF, network namespaces, cgroups); runs under CI=true"
)]
fn reconcile_repairs_maps_changed_behind_its_back() {
    if client_asked() {
        return;
    }
    require_root("reconcile_repairs_maps_changed_behind_its_back");
    let cg = Cgroup::new("reconcile_repairs_maps_changed_behind_its_back", "repair");
    let mut dp = start(&cg);
    let b1 = cg.tcp_backend(sa("127.0.0.7:0"), "r1");
    let b2 = cg.tcp_backend(sa("127.0.0.8:0"), "r2");
    let web = named_key("/repair", Protocol::Tcp, 80);
    let t = table(vec![(
        web.clone(),
        vec![backend(b1, 1, "n1"), backend(b2, 1, "n2")],
    )]);
    let vip = SocketAddr::new(named_v4(&t, &web), 80);
    dp.apply(&desired(&t, &t.named_addresses(), &no_nodes()))
        .unwrap();
    let clean = dp.reconcile().unwrap();
    assert_eq!(clean.changes.repairs, 0, "{clean:?}");
    assert_eq!(cg.client(&tcp_script(vip, 4)).len(), 4);

    // Behind the data plane's back: delete the VIP entry, point a backend at a wrong port, and
    // empty a ring slot.
    let open = |name| {
        aya::maps::Map::from_map_data(MapData::from_id(dp.map_id(name).unwrap()).unwrap()).unwrap()
    };
    let mut vips: HashMap<MapData, abi::VipKey, abi::VipInfo> =
        HashMap::try_from(open(abi::maps::VIPS)).unwrap();
    let key = abi::VipKey::new(vip, abi::PROTO_TCP);
    let info = vips.get(&key, 0).unwrap();
    vips.remove(&key).unwrap();
    let mut backends: Array<MapData, abi::Backend> =
        Array::try_from(open(abi::maps::BACKENDS)).unwrap();
    let id = (1..abi::MAX_BACKENDS)
        .find(|id| backends.get(id, 0).unwrap().socket_addr() == b1)
        .unwrap();
    let mut wrong = backends.get(&id, 0).unwrap();
    wrong.port = 1u16.to_be();
    backends.set(id, wrong, 0).unwrap();
    let mut rings: Array<MapData, u32> = Array::try_from(open(abi::maps::RINGS)).unwrap();
    rings.set(abi::ring_index(info.index, 7), 0, 0).unwrap();

    let r = cg.client(&format!("tcp {vip}"));
    assert!(r[0].1.starts_with("err="), "the VIP is gone: {r:?}");

    let report = dp.reconcile().unwrap();
    assert_eq!(report.changes.repairs, 3, "{report:?}");
    assert_eq!(report.changes.ring_slots, 1);
    assert_eq!(dp.programmed(), [web].into());
    let r = cg.client(&tcp_script(vip, 16));
    let seen = replies(&r, "tcp");
    assert_eq!(seen.values().sum::<usize>(), 16, "{r:?}");
    assert_eq!(dp.reconcile().unwrap().changes.repairs, 0);
}

/// Issue 10, item 2: while the data plane is on, the named-VIP ranges fail closed. A connect
/// (or UDP sendto) to an address in 11.0.0.0/8 or fd01:c::/64 that is no programmed VIP (no
/// VIP there at all, or another port of a VIP's address) is refused on the node with
/// ECONNREFUSED; other addresses are left alone; with the data plane gone the same connect is
/// no longer refused by it (the namespace has no route: unreachable).
#[test]
#[cfg_attr(
    unprivileged,
    ignore = "needs root (BPF, network namespaces, cgroups); runs under CI=true"
)]
fn the_named_vip_ranges_fail_closed() {
    if client_asked() {
        return;
    }
    require_root("the_named_vip_ranges_fail_closed");
    let cg = Cgroup::new("the_named_vip_ranges_fail_closed", "closed");
    let mut dp = start(&cg);
    let b1 = cg.tcp_backend(sa("127.0.0.2:0"), "b1");
    let web = named_key("/web", Protocol::Tcp, 80);
    let t = table(vec![(web.clone(), vec![backend(b1, 1, "n1")])]);
    let vip = SocketAddr::new(named_v4(&t, &web), 80);
    dp.apply(&desired(&t, &t.named_addresses(), &no_nodes()))
        .unwrap();
    let other_port = SocketAddr::new(vip.ip(), 81);
    let script = format!(
        "tcp {vip};tcp 11.1.2.3:80;tcp {other_port};udp 11.1.2.3:53;tcp [fd01:c::1]:80;\
         tcp [::ffff:11.1.2.3]:80;tcp 198.18.0.1:80"
    );
    let r = cg.client(&script);
    println!("{r:?}");
    let outcomes: Vec<&str> = r.iter().map(|(_, v)| v.as_str()).collect();
    assert!(outcomes[0].ends_with("reply=b1"), "{r:?}");
    for refused in &outcomes[1..6] {
        assert_eq!(*refused, "err=ConnectionRefused", "{r:?}");
    }
    assert_eq!(
        outcomes[6], "err=NetworkUnreachable",
        "outside the ranges: left alone"
    );
    let globals: std::collections::BTreeMap<_, _> = dp.global_counters().into_iter().collect();
    assert!(globals["sock_range_refused"] >= 5, "{globals:?}");

    drop(dp);
    let r = cg.client("tcp 11.1.2.3:80");
    assert_eq!(r[0].1, "err=NetworkUnreachable", "{r:?}");
}

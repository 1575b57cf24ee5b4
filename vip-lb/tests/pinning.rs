//! The data plane outlives its owner: with a pin directory, dropping the `DataPlane` (what a
//! stop or `kill -9` of the agent amounts to) leaves the programs attached and the maps full; a
//! new `DataPlane` on the same directory adopts the maps (no write for an unchanged catalog) and
//! takes over the links; `remove_pinned` detaches and removes everything. Maps of another
//! layout version are not adopted: new maps are filled beside them, and the links switch over
//! once they hold the catalog, without a gap.
//!
//! Client and backends run in a throw-away cgroup and a network namespace with only loopback,
//! so a connect to a VIP that is not translated fails there and never leaves the machine. Pins
//! go to a per-test directory under /sys/fs/bpf, removed even if the test fails.
//!
//! Needs root and cgroup v2; under `CI=true` a non-root run fails.

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;

use aya::maps::{Array, Map, MapData};
use beacon_catalog::vip::Protocol;
use beacon_ebpf::abi;
use beacon_vip_lb::{DataPlane, DataPlaneConfig, desired};
use support::*;

fn start(cg: &Cgroup, pins: &PinDir) -> DataPlane {
    DataPlane::start(&DataPlaneConfig {
        cgroup: cg.path().to_path_buf(),
        bpffs_dir: Some(pins.path().to_path_buf()),
        ..DataPlaneConfig::default()
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Whether every connect of `n` to `vip` reached a backend.
fn all_reach(cg: &Cgroup, vip: SocketAddr, n: usize) -> bool {
    let script = vec![format!("tcp {vip}"); n].join(";");
    let r = cg.client(&script);
    r.iter().all(|(_, v)| v.contains("reply=b"))
}

/// While a data plane runs on `pins`, another start and a removal are refused, changing nothing.
fn a_second_owner_is_refused(cg: &Cgroup, pins: &PinDir, vip: SocketAddr) {
    let config = DataPlaneConfig {
        cgroup: cg.path().to_path_buf(),
        bpffs_dir: Some(pins.path().to_path_buf()),
        ..DataPlaneConfig::default()
    };
    let busy = DataPlane::start(&config).unwrap_err().to_string();
    assert!(
        busy.contains("another process runs the data plane"),
        "{busy}"
    );
    let busy = beacon_vip_lb::remove_pinned(pins.path())
        .unwrap_err()
        .to_string();
    assert!(
        busy.contains("another process runs the data plane"),
        "{busy}"
    );
    assert!(
        all_reach(cg, vip, 2),
        "a refused start or removal changes nothing"
    );
}

#[test]
#[cfg_attr(
    unprivileged,
    ignore = "needs root (BPF, network namespaces, cgroups); runs under CI=true"
)]
fn a_pinned_data_plane_outlives_its_owner_is_adopted_and_removed() {
    if client_asked() {
        return;
    }
    require_root("a_pinned_data_plane_outlives_its_owner_is_adopted_and_removed");
    let cg = Cgroup::new(
        "a_pinned_data_plane_outlives_its_owner_is_adopted_and_removed",
        "pin",
    );
    let pins = PinDir::new("pin");
    let b1 = cg.tcp_backend(sa("127.0.0.2:0"), "b1");
    let b2 = cg.tcp_backend(sa("127.0.0.3:0"), "b2");
    let web = named_key("/web", Protocol::Tcp, 80);
    let t = table(vec![(
        web.clone(),
        vec![backend(b1, 1, "n1"), backend(b2, 1, "n2")],
    )]);
    let vip = SocketAddr::new(named_v4(&t, &web), 80);
    let want = desired(&t, &t.named_addresses(), &BTreeSet::new());

    let mut first = start(&cg, &pins);
    first.apply(&want).unwrap();
    assert!(all_reach(&cg, vip, 4));
    let maps: BTreeSet<String> = abi::maps::PINNED.iter().map(|m| m.to_string()).collect();
    assert_eq!(pins.files("maps"), maps);
    assert_eq!(pins.files("links").len(), abi::programs::SOCK_LB.len());
    let links = pins.link_info();
    a_second_owner_is_refused(&cg, &pins, vip);
    drop(first);
    assert!(all_reach(&cg, vip, 4), "the data plane outlives its owner");

    let mut second = start(&cg, &pins);
    assert_eq!(second.kernel_vips(), 1, "the pinned maps are adopted");
    let after = pins.link_info();
    for (name, (link, prog)) in &links {
        assert_eq!(
            after[name].0, *link,
            "{name}: the same link, never detached"
        );
        assert_ne!(after[name].1, *prog, "{name}: now runs the new program");
    }
    assert!(all_reach(&cg, vip, 4));
    let report = second.apply(&want).unwrap();
    println!("{report:?}");
    let c = &report.changes;
    assert_eq!((c.vips_added, c.backends_added, c.ring_slots), (0, 0, 0));
    assert_eq!((c.vips_removed, c.backends_removed), (0, 0));
    assert_eq!(second.programmed(), [web].into());
    assert_eq!(second.reconcile().unwrap().changes.repairs, 0);
    drop(second);

    let removed = beacon_vip_lb::remove_pinned(pins.path()).unwrap();
    assert_eq!((removed.links, removed.maps), (links.len(), maps.len()));
    assert!(!pins.path().exists());
    let loaded: BTreeSet<u32> = aya::programs::loaded_links()
        .filter_map(|l| l.ok().map(|l| l.id()))
        .collect();
    let ids: BTreeSet<u32> = links.values().map(|(link, _)| *link).collect();
    assert!(loaded.is_disjoint(&ids), "links left attached");
    let r = cg.client(&format!("tcp {vip}"));
    assert!(r[0].1.starts_with("err="), "nothing translates: {r:?}");
}

#[test]
#[cfg_attr(
    unprivileged,
    ignore = "needs root (BPF, network namespaces, cgroups); runs under CI=true"
)]
fn maps_of_another_layout_are_upgraded_without_a_gap() {
    if client_asked() {
        return;
    }
    require_root("maps_of_another_layout_are_upgraded_without_a_gap");
    let cg = Cgroup::new("maps_of_another_layout_are_upgraded_without_a_gap", "abi");
    let pins = PinDir::new("abi");
    let b1 = cg.tcp_backend(sa("127.0.0.2:0"), "b1");
    let web = named_key("/web", Protocol::Tcp, 80);
    let t = table(vec![(web.clone(), vec![backend(b1, 1, "n1")])]);
    let vip = SocketAddr::new(named_v4(&t, &web), 80);
    let want = desired(&t, &t.named_addresses(), &BTreeSet::new());
    let mut first = start(&cg, &pins);
    first.apply(&want).unwrap();
    drop(first);
    // What an agent of another layout version left.
    set_version(&pins, abi::MAPS_ABI_VERSION + 1);
    let links = pins.link_info();

    let mut second = start(&cg, &pins);
    assert_eq!(
        second.kernel_vips(),
        0,
        "maps of another layout are not adopted"
    );
    assert_eq!(pins.files("maps-next").len(), abi::maps::PINNED.len());
    assert_eq!(
        pins.link_info(),
        links,
        "the old programs run until the catalog is in"
    );
    assert!(all_reach(&cg, vip, 3), "the old maps serve meanwhile");
    second.apply(&want).unwrap();
    let after = pins.link_info();
    for (name, (link, prog)) in &links {
        assert_eq!(
            after[name].0, *link,
            "{name}: the same link, never detached"
        );
        assert_ne!(after[name].1, *prog, "{name}: switched to the new program");
    }
    assert!(all_reach(&cg, vip, 3), "the new maps serve");
    assert!(!pins.path().join("maps-next").exists());
    assert_eq!(version(&pins), abi::MAPS_ABI_VERSION);
    drop(second);
    assert_eq!(
        start(&cg, &pins).kernel_vips(),
        1,
        "the new maps are adopted next time"
    );
}

fn version(pins: &PinDir) -> u32 {
    let data = MapData::from_pin(pins.path().join("maps").join(abi::maps::ABI)).unwrap();
    let array: Array<MapData, u32> = Array::try_from(Map::Array(data)).unwrap();
    array.get(&0, 0).unwrap()
}

fn set_version(pins: &PinDir, version: u32) {
    let data = MapData::from_pin(pins.path().join("maps").join(abi::maps::ABI)).unwrap();
    let mut array: Array<MapData, u32> = Array::try_from(Map::Array(data)).unwrap();
    array.set(0, version, 0).unwrap();
}

/// The flow table's size is part of the layout: the same size (even one the kernel rounds up to
/// a multiple of the CPUs) is adopted across restarts; another size gets new maps of that size.
#[test]
#[cfg_attr(
    unprivileged,
    ignore = "needs root (BPF, network namespaces, cgroups); runs under CI=true"
)]
fn a_new_flow_table_size_is_a_layout_change() {
    require_root("a_new_flow_table_size_is_a_layout_change");
    let pins = PinDir::new("size");
    let web = ip_key(sa("10.77.200.1:80"), Protocol::Tcp);
    let t = table(vec![(web, vec![backend(sa("10.77.201.1:8080"), 1, "n1")])]);
    let want = desired(&t, &t.named_addresses(), &BTreeSet::new());
    let start = |size: u32| {
        DataPlane::start(&DataPlaneConfig {
            socket_lb: false,
            bpffs_dir: Some(pins.path().to_path_buf()),
            flow_table_size: size,
            ..DataPlaneConfig::default()
        })
        .unwrap_or_else(|e| panic!("{e}"))
    };
    let cpus = aya::util::nr_cpus().unwrap() as u32;
    // Not a multiple of the CPUs where there are several: the kernel rounds it up.
    let odd = 1000 * cpus + u32::from(cpus > 1);
    let mut first = start(odd);
    first.apply(&want).unwrap();
    drop(first);
    let entries = || {
        aya::maps::MapInfo::from_pin(pins.path().join("maps").join(abi::maps::FLOWS))
            .unwrap()
            .max_entries()
    };
    assert_eq!(entries(), odd.next_multiple_of(cpus));
    let second = start(odd);
    assert_eq!(second.kernel_vips(), 1, "the same size is adopted");
    drop(second);
    let mut third = start(2048 * cpus);
    assert_eq!(third.kernel_vips(), 0, "another size is a layout change");
    third.apply(&want).unwrap();
    assert_eq!(entries(), 2048 * cpus);
    drop(third);
}

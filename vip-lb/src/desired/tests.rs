use beacon_catalog::vip::VipName;

use super::*;

fn be(addr: &str, weight: u32, node: &str) -> Backend {
    let sa: SocketAddr = addr.parse().unwrap();
    Backend {
        ip: sa.ip(),
        port: sa.port(),
        weight,
        node: node.to_string(),
        agent_ip: None,
    }
}

fn named(name: &str, protocol: Protocol, port: u16) -> VipKey {
    VipKey {
        protocol,
        address: VipAddress::Named(VipName::new(name, "marathon").unwrap()),
        port,
    }
}

fn ip_vip(ip: &str, protocol: Protocol, port: u16) -> VipKey {
    VipKey {
        protocol,
        address: VipAddress::Ip(ip.parse().unwrap()),
        port,
    }
}

fn table(vips: Vec<(VipKey, Vec<Backend>)>) -> VipTable {
    VipTable {
        vips: vips.into_iter().collect(),
        warnings: Vec::new(),
        registered: Default::default(),
    }
}

fn none() -> BTreeSet<String> {
    BTreeSet::new()
}

#[test]
fn named_vips_get_one_kernel_vip_per_family_with_that_familys_backends() {
    let web = named("/web", Protocol::Tcp, 80);
    let dns = ip_vip("10.1.0.1", Protocol::Udp, 53);
    let t = table(vec![
        (
            web.clone(),
            vec![
                be("10.0.0.1:8080", 1, "a"),
                be("[fd00::1]:8080", 1, "a"),
                be("10.0.0.2:8080", 1, "b"),
            ],
        ),
        (dns.clone(), vec![be("10.0.0.3:5353", 1, "c")]),
    ]);
    let addrs = t.named_addresses();
    let d = desired(&t, &addrs, &none());
    let name = VipName::new("/web", "marathon").unwrap();
    let (v4, v6) = addrs.get(&name);
    let v4 = SocketAddr::new(IpAddr::V4(v4.unwrap()), 80);
    let v6 = SocketAddr::new(IpAddr::V6(v6.unwrap()), 80);
    let ids: Vec<SocketAddr> = d.vips().keys().map(|id| id.addr).collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.contains(&v4) && ids.contains(&v6));
    let w4 = &d.vips()[&VipId {
        protocol: Protocol::Tcp,
        addr: v4,
    }];
    assert_eq!(w4.key, web);
    assert_eq!(
        w4.backends
            .iter()
            .map(|b| b.addr.to_string())
            .collect::<Vec<_>>(),
        ["10.0.0.1:8080", "10.0.0.2:8080"]
    );
    assert_eq!(w4.ring.len(), abi::RING_SIZE as usize);
    let w6 = &d.vips()[&VipId {
        protocol: Protocol::Tcp,
        addr: v6,
    }];
    assert_eq!(w6.backends.len(), 1);
    assert!(w6.ring.iter().all(|&i| i == 0));
    assert!(d.vips().contains_key(&VipId {
        protocol: Protocol::Udp,
        addr: "10.1.0.1:53".parse().unwrap(),
    }));
    assert_eq!(d.keys(), [web, dns].into_iter().collect());
    assert!(d.skipped().is_empty());
}

#[test]
fn ip_vips_keep_their_own_family_only() {
    let k = ip_vip("10.1.0.1", Protocol::Tcp, 80);
    let t = table(vec![(k.clone(), vec![be("[fd00::1]:80", 1, "a")])]);
    let d = desired(&t, &NamedAddresses::default(), &none());
    assert!(d.vips().is_empty());
    assert_eq!(d.skipped()[0].reason, SkipReason::NoBackends);
}

#[test]
fn unreachable_nodes_are_withdrawn_and_all_unreachable_fails_open() {
    let k = ip_vip("10.1.0.1", Protocol::Tcp, 80);
    let backends = vec![be("10.0.0.1:80", 1, "a"), be("10.0.0.2:80", 1, "b")];
    let t = table(vec![(k, backends)]);
    let addrs = NamedAddresses::default();
    let only = |unreachable: &[&str]| {
        let set = unreachable.iter().map(|s| s.to_string()).collect();
        let d = desired(&t, &addrs, &set);
        let vip = d.vips().values().next().unwrap().clone();
        vip.backends
            .iter()
            .map(|b| b.node.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(only(&[]), ["a", "b"]);
    assert_eq!(only(&["b"]), ["a"]);
    assert_eq!(only(&["a", "b"]), ["a", "b"], "fail open");
    assert_eq!(only(&["zzz"]), ["a", "b"]);
}

#[test]
fn fail_open_is_per_family() {
    let web = named("web", Protocol::Tcp, 80);
    let t = table(vec![(
        web,
        vec![be("10.0.0.1:80", 1, "a"), be("[fd00::2]:80", 1, "b")],
    )]);
    let d = desired(&t, &t.named_addresses(), &["b".to_string()].into());
    let v6 = d.vips().values().find(|v| v.id.addr.is_ipv6()).unwrap();
    assert_eq!(v6.backends[0].node, "b", "the only IPv6 backend stays");
}

#[test]
fn weights_and_duplicates() {
    let k = ip_vip("10.1.0.1", Protocol::Tcp, 80);
    let t = table(vec![(
        k,
        vec![
            be("10.0.0.3:80", 0, "c"),
            be("10.0.0.1:80", 1, "a"),
            be("10.0.0.2:80", 1, "b"),
            be("10.0.0.2:80", 0, "b2"),
        ],
    )]);
    let d = desired(&t, &NamedAddresses::default(), &none());
    let vip = d.vips().values().next().unwrap();
    let list: Vec<(String, u32)> = vip
        .backends
        .iter()
        .map(|b| (b.addr.to_string(), b.weight))
        .collect();
    assert_eq!(
        list,
        [
            ("10.0.0.1:80".to_string(), 1),
            ("10.0.0.2:80".to_string(), 1),
            ("10.0.0.3:80".to_string(), 0)
        ]
    );
    assert!(
        vip.ring.iter().all(|&i| i < 2),
        "drained backend has no slot"
    );
    assert!(vip.ring.contains(&0) && vip.ring.contains(&1));
}

#[test]
fn all_drained_means_an_empty_ring() {
    let k = ip_vip("10.1.0.1", Protocol::Tcp, 80);
    let t = table(vec![(k, vec![be("10.0.0.1:80", 0, "a")])]);
    let d = desired(&t, &NamedAddresses::default(), &none());
    let vip = d.vips().values().next().unwrap();
    assert_eq!(vip.backends.len(), 1);
    assert!(vip.ring.is_empty());
}

#[test]
fn limits_skip_whole_vips_deterministically() {
    let limits = Limits {
        max_vips: 3,
        max_backends: 4,
        ring_size: 13,
        vip_slots: 16,
    };
    let n = |i: u8, k: usize| {
        (
            ip_vip(&format!("10.1.0.{i}"), Protocol::Tcp, 80),
            (0..k)
                .map(|j| be(&format!("10.0.{i}.{j}:80"), 1, "a"))
                .collect::<Vec<_>>(),
        )
    };
    // Named: two families, two kernel VIPs.
    let both = (
        named("both", Protocol::Udp, 53),
        vec![be("10.0.9.1:53", 1, "a"), be("[fd00::9]:53", 1, "a")],
    );
    let t = table(vec![n(1, 2), n(2, 3), n(3, 1), both.clone()]);
    let d = desired_with_limits(&t, &t.named_addresses(), &none(), limits);
    let programmed: Vec<String> = d.vips().keys().map(|id| id.addr.to_string()).collect();
    // 10.1.0.1 (2 backends) fits, 10.1.0.2 (3 more) does not, 10.1.0.3 (1) does; the named
    // UDP VIP needs two kernel VIPs where one is left: skipped whole, not half.
    assert_eq!(programmed, ["10.1.0.1:80", "10.1.0.3:80"]);
    let reasons: Vec<&SkipReason> = d.skipped().iter().map(|s| &s.reason).collect();
    assert_eq!(
        reasons,
        [
            &SkipReason::TooManyBackends { limit: 4 },
            &SkipReason::TooManyVips { limit: 3 }
        ]
    );
    // Same input, same answer; and the VIP limit.
    assert_eq!(
        d,
        desired_with_limits(&t, &t.named_addresses(), &none(), limits)
    );
    let limits = Limits {
        max_vips: 2,
        max_backends: 100,
        ring_size: 13,
        vip_slots: 16,
    };
    let d = desired_with_limits(&t, &t.named_addresses(), &none(), limits);
    assert_eq!(d.vips().len(), 2);
    assert_eq!(d.skipped().len(), 2);
    assert!(
        d.skipped()
            .iter()
            .all(|s| s.reason == SkipReason::TooManyVips { limit: 2 })
    );
    assert!(
        d.skipped()[1]
            .to_string()
            .contains("udp://both.marathon:53")
    );
}

#[test]
fn named_address_missing_is_reported() {
    let k = named("web", Protocol::Tcp, 80);
    let t = table(vec![(k, vec![be("10.0.0.1:80", 1, "a")])]);
    let mut addrs = t.named_addresses();
    addrs.v4.clear();
    let d = desired(&t, &addrs, &none());
    assert_eq!(
        d.skipped()[0].reason,
        SkipReason::NoAddress { family: "IPv4" }
    );
}

/// The attack: one registration declaring hundreds of VIP ports fills the kernel's VIP table,
/// and legitimate VIPs lose their programming (and so their DNS names). The table fills with
/// what is programmed now, then Mesos VIPs, then registrations' VIPs: a newcomer never evicts.
#[test]
fn a_full_table_keeps_what_is_programmed_and_mesos_vips_before_registered_ones() {
    let limits = Limits {
        max_vips: 2,
        max_backends: 100,
        ring_size: 13,
        vip_slots: 16,
    };
    let vip = |i: u8| ip_vip(&format!("10.1.0.{i}"), Protocol::Tcp, 80);
    let backends = || vec![be("10.0.0.1:80", 1, "a")];
    // Key order would give 10.1.0.1 and 10.1.0.2: the registered flood first.
    let mut t = table(vec![
        (vip(1), backends()),
        (vip(2), backends()),
        (vip(3), backends()),
        (vip(4), backends()),
    ]);
    t.registered = [(vip(1), "n9".to_string()), (vip(2), "n9".to_string())].into();
    let programmed = BTreeSet::from([vip(4)]);
    let d = desired_in_order(&t, &t.named_addresses(), &none(), limits, &programmed);
    assert_eq!(d.keys(), BTreeSet::from([vip(3), vip(4)]));
    assert!(
        d.skipped()
            .iter()
            .all(|s| s.key == vip(1) || s.key == vip(2))
    );
}

#[test]
fn socket_lb_fails_closed_in_the_ranges_named_vips_get_addresses_from() {
    use beacon_catalog::vip::{NAMED_V4_POOL, NAMED_V6_POOL};
    assert_eq!(abi::NAMED_V4_RANGE, NAMED_V4_POOL);
    assert_eq!(abi::NAMED_V6_RANGE, NAMED_V6_POOL);
}

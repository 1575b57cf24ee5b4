//! The packet path over IPv6: a client namespace reaches a named VIP (its fd01:c::/64 address)
//! and an IPv6 IP VIP through a node namespace running `beacon_xdp_lb` and `beacon_tc_revnat`
//! on its client-facing veth, with backends in a third namespace. Every namespace and veth is
//! made by the test and deleted at its end; the client's only route is to the node, which has
//! no route beyond its own links, so untranslated packets go nowhere.
//!
//! ```text
//!  client ns                node ns (forwarding, XDP + tc on vn*)      backend ns
//!  vc* fd77:1::2 ── vn* fd77:1::1       vm* fd77:2::1 ── vb* fd77:2::11, ::12
//! ```

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use beacon_catalog::vip::{Protocol, VipAddress};
use beacon_test_support::netns::veth;
use beacon_vip_lb::{DataPlane, DataPlaneConfig, desired};
use support::*;

#[test]
#[cfg_attr(
    unprivileged,
    ignore = "needs root (BPF, network namespaces, cgroups); runs under CI=true"
)]
fn xdp_balances_ipv6_named_and_ip_vips() {
    require_root("xdp_balances_ipv6_named_and_ip_vips");
    let t = tag();
    let client = Netns::new(&format!("bv6-c-{t}"));
    let node = Netns::new(&format!("bv6-n-{t}"));
    let back = Netns::new(&format!("bv6-b-{t}"));
    let (vc, vn, vm, vb) = (
        format!("vc{t}"),
        format!("vn{t}"),
        format!("vm{t}"),
        format!("vb{t}"),
    );
    veth(&client, &vc, &node, &vn);
    veth(&back, &vb, &node, &vm);
    // nodad: addresses usable at once, without duplicate address detection's delay.
    client.ip(&format!("-6 addr add fd77:1::2/64 dev {vc} nodad"));
    client.ip("-6 route add default via fd77:1::1");
    node.ip(&format!("-6 addr add fd77:1::1/64 dev {vn} nodad"));
    node.ip(&format!("-6 addr add fd77:2::1/64 dev {vm} nodad"));
    node.sysctl("net.ipv6.conf.all.forwarding=1");
    back.ip(&format!("-6 addr add fd77:2::11/64 dev {vb} nodad"));
    back.ip(&format!("-6 addr add fd77:2::12/64 dev {vb} nodad"));
    back.ip("-6 route add default via fd77:2::1");

    let b1 = back.run(|| tcp_backend(sa("[fd77:2::11]:8080"), "be1"));
    let b2 = back.run(|| tcp_backend(sa("[fd77:2::12]:8080"), "be2"));
    let u1 = back.run(|| udp_backend(sa("[fd77:2::11]:5353"), "u1"));
    let web = named_key("/web6", Protocol::Tcp, 80);
    let dns_vip = sa("[fd77:100::1]:53");
    let dns = ip_key(dns_vip, Protocol::Udp);
    let table = table(vec![
        (
            web.clone(),
            vec![backend(b1, 1, "n1"), backend(b2, 1, "n1")],
        ),
        (dns.clone(), vec![backend(u1, 1, "n1")]),
    ]);
    let VipAddress::Named(name) = &web.address else {
        unreachable!()
    };
    let (v4, v6) = table.named_addresses().get(name);
    assert!(v4.is_some());
    let vip = SocketAddr::new(IpAddr::V6(v6.unwrap()), 80);
    assert!(vip.to_string().starts_with("[fd01:c::"), "{vip}");

    let config = DataPlaneConfig {
        socket_lb: false,
        xdp_interfaces: vec![vn.clone()],
        ..DataPlaneConfig::default()
    };
    let mut dp = node
        .run(move || DataPlane::start(&config))
        .unwrap_or_else(|e| panic!("{e}"));
    dp.apply(&desired(&table, &table.named_addresses(), &BTreeSet::new()))
        .unwrap();
    assert_eq!(dp.programmed(), [web.clone(), dns.clone()].into());

    let whos: Vec<String> = client.run(move || {
        (0..20)
            .map(|i| {
                let mut c = Conn::open(vip).unwrap_or_else(|e| panic!("connect {i} to {vip}: {e}"));
                c.who().unwrap()
            })
            .collect()
    });
    let mut spread: BTreeMap<String, usize> = BTreeMap::new();
    for who in &whos {
        *spread.entry(who.clone()).or_default() += 1;
    }
    assert_eq!(spread.len(), 2, "{spread:?}");

    let udp: Vec<(SocketAddr, String)> =
        client.run(move || (0..5).map(|_| udp_ask(dns_vip).unwrap()).collect());
    assert!(
        udp.iter()
            .all(|(from, who)| *from == dns_vip && who == "u1"),
        "{udp:?}"
    );

    let stats = dp.stats();
    let web_stats = stats
        .iter()
        .find(|s| s.key == web && s.address == vip)
        .unwrap();
    assert_eq!(web_stats.counters.new_flows, 20);
    drop(dp);
}

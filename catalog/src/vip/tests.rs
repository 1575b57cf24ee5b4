use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::{Value, json};

use super::address::assign_for_test;
use super::*;
use crate::mesos::parse_state;
use crate::registration::{Registration, fragment};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn named(name: &str, framework: &str) -> VipAddress {
    VipAddress::Named(VipName::new(name, framework).unwrap())
}

fn key(protocol: Protocol, address: VipAddress, port: u16) -> VipKey {
    VipKey {
        protocol,
        address,
        port,
    }
}

fn labels(pairs: &[(&str, &str)]) -> Value {
    json!({"labels": pairs.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>()})
}

/// A running task on agent `S1` (10.0.0.1) whose container has `task_ip`.
fn task(id: &str, ports: Value, task_labels: &[(&str, &str)]) -> Value {
    json!({"id": id, "name": id, "slave_id": "S1", "state": "TASK_RUNNING",
        "resources": {"ports": "[31000-31001]"},
        "statuses": [{"state": "TASK_RUNNING", "timestamp": 1.0,
            "container_status": {"network_infos": [{"ip_addresses": [
                {"ip_address": "9.0.0.5"}, {"ip_address": "fd00::5"}]}]}}],
        "discovery": {"name": id, "ports": {"ports": ports}},
        "labels": labels(task_labels)})
}

fn port(number: u16, protocol: &str, port_labels: &[(&str, &str)]) -> Value {
    json!({"number": number, "protocol": protocol, "labels": labels(port_labels)})
}

fn catalog(tasks: Vec<Value>) -> Catalog {
    let state = json!({"leader": "master@10.0.0.100:5050",
        "slaves": [{"id": "S1", "hostname": "a1", "pid": "slave(1)@10.0.0.1:5051"}],
        "frameworks": [{"name": "marathon", "tasks": tasks}]});
    parse_state(state.to_string().as_bytes()).unwrap()
}

fn backend(addr: &str, port: u16) -> Backend {
    Backend {
        ip: ip(addr),
        port,
        weight: 1,
        node: "S1".into(),
        agent_ip: Some(ip("10.0.0.1")),
    }
}

// ---------------------------------------------------------------------------------------------
// Names.

#[test]
fn labels_follow_dcos_net() {
    // mesos_state's own test vectors.
    for (input, want) in [
        (
            "fd%gsf---gs7-f$gs--d7fddg-123",
            "fdgsf---gs7-fgs--d7fddg-123",
        ),
        ("4abc123", "4abc123"),
        ("-4abc123", "4abc123"),
        ("89fdgsf---gs7-fgs--d7fddg-", "89fdgsf---gs7-fgs--d7fddg"),
        ("0-0", "0-0"),
        (
            "##fdgsf---gs7-fgs--d7fddg123456789012345678901234567890123456789-",
            "fdgsf---gs7-fgs--d7fddg123456789012345678901234567890123456789",
        ),
        (
            "fd%gsf---gs7-f$gs--d7fddg123456789012345678901234567890123456789-123",
            "fdgsf---gs7-fgs--d7fddg1234567890123456789012345678901234567891",
        ),
        (
            "%%fdgsf---gs7-fgs--d7fddg123456789012345678901234567890123456789---123",
            "fdgsf---gs7-fgs--d7fddg1234567890123456789012345678901234567891",
        ),
    ] {
        assert_eq!(label(input), want, "{input:?}");
    }
    assert_eq!(domain_frag("/mygroup/myapp"), "mygroupmyapp");
    assert_eq!(domain_frag("My_Group.App"), "my-group.app");
    assert_eq!(domain_frag("a.//.b"), "a.b", "empty parts are dropped");
    let name = VipName::new("/MyGroup/my_app", "Marathon").unwrap();
    assert_eq!(
        (name.name(), name.framework()),
        ("mygroupmy-app", "marathon")
    );
    assert_eq!(
        name.fqdn_in(L4LB_ZONE),
        "mygroupmy-app.marathon.l4lb.thisdcos.directory."
    );
    assert!(VipName::new("/", "marathon").is_none());
    assert!(VipName::new("web", "").is_none());
    let long = ["w", "x", "y", "z"].map(|c| c.repeat(63)).join(".");
    assert!(VipName::new(&long, "marathon").is_none(), "over 253 in all");
}

// ---------------------------------------------------------------------------------------------
// Declarations.

#[test]
fn port_label_forms() {
    let c = catalog(vec![task(
        "web",
        json!([
            port(
                8080,
                "tcp",
                &[
                    ("VIP_0", "/web:80"),
                    ("VIP_1", "1.2.3.4:5000"),
                    ("vipx", "/web:80")
                ]
            ),
            port(
                8081,
                "UDP",
                &[("VIP_0", "fd02::1:53"), ("VIPfoo", "[fd02::2]:54")]
            ),
            port(8082, "", &[("VIP_0", "both:7")]),
        ]),
        &[],
    )]);
    let table = extract(&c);
    assert!(table.warnings.is_empty(), "{:?}", table.warnings);
    let keys: Vec<&VipKey> = table.vips.keys().collect();
    let want = [
        key(Protocol::Tcp, named("both", "marathon"), 7),
        key(Protocol::Tcp, named("/web", "marathon"), 80),
        key(Protocol::Tcp, VipAddress::Ip(ip("1.2.3.4")), 5000),
        key(Protocol::Udp, named("both", "marathon"), 7),
        key(Protocol::Udp, VipAddress::Ip(ip("fd02::1")), 53),
        key(Protocol::Udp, VipAddress::Ip(ip("fd02::2")), 54),
    ];
    assert_eq!(keys, want.iter().collect::<Vec<_>>());
    // Container port: the task's own addresses, both families for a named VIP, merged labels
    // counted once.
    assert_eq!(
        table.vips[&want[1]],
        [backend("9.0.0.5", 8080), backend("fd00::5", 8080)]
    );
    // IP VIPs keep their family only.
    assert_eq!(table.vips[&want[2]], [backend("9.0.0.5", 8080)]);
    assert_eq!(table.vips[&want[4]], [backend("fd00::5", 8081)]);
}

#[test]
fn host_scope_and_vip_port_labels_use_the_agent_address() {
    let c = catalog(vec![task(
        "db",
        json!([port(
            31000,
            "tcp",
            &[("network-scope", "host"), ("VIP_0", "/db:5432")]
        )]),
        &[
            ("VIP_PORT1", "udp:///db:9000"),
            ("vip_port0", "tcp://10.9.9.9:80"),
        ],
    )]);
    let table = extract(&c);
    assert!(table.warnings.is_empty(), "{:?}", table.warnings);
    assert_eq!(
        table.vips[&key(Protocol::Tcp, named("db", "marathon"), 5432)],
        [backend("10.0.0.1", 31000)]
    );
    assert_eq!(
        table.vips[&key(Protocol::Udp, named("db", "marathon"), 9000)],
        [backend("10.0.0.1", 31001)]
    );
    assert_eq!(
        table.vips[&key(Protocol::Tcp, VipAddress::Ip(ip("10.9.9.9")), 80)],
        [backend("10.0.0.1", 31000)]
    );
}

#[test]
fn bad_labels_are_skipped_and_reported() {
    let c = catalog(vec![task(
        "bad",
        json!([
            port(
                8080,
                "tcp",
                &[
                    ("VIP_0", "/web"),
                    ("VIP_1", "/web:0"),
                    ("VIP_2", "/web:70000"),
                    ("VIP_3", "/web:http"),
                    ("VIP_4", "[nope]:80"),
                    ("VIP_5", "/:80"),
                    ("VIP_6", "11.1.2.3:80"),
                    ("VIP_7", "/ok:80"),
                ]
            ),
            port(8081, "sctp", &[("VIP_0", "/web:80")]),
            port(0, "tcp", &[("VIP_0", "/web:80")]),
        ]),
        &[
            ("VIP_PORT", "tcp://web:80"),
            ("VIP_PORTx", "tcp://web:80"),
            ("VIP_PORT0", "http://web:80"),
            ("VIP_PORT0", "web:80"),
            ("VIP_PORT7", "tcp://web:80"),
            ("VIP_PORT0", "tcp://web"),
        ],
    )]);
    let table = extract(&c);
    let problems: Vec<&VipProblem> = table.warnings.iter().map(|w| &w.problem).collect();
    assert_eq!(
        problems,
        [
            &VipProblem::MissingPort,
            &VipProblem::Port("0".into()),
            &VipProblem::Port("70000".into()),
            &VipProblem::Port("http".into()),
            &VipProblem::Address("[nope]".into()),
            &VipProblem::Name("/".into()),
            &VipProblem::InNamedPool(ip("11.1.2.3")),
            &VipProblem::Protocol("sctp".into()),
            &VipProblem::PortZero,
            &VipProblem::PortIndex("".into()),
            &VipProblem::PortIndex("x".into()),
            &VipProblem::Scheme("http://web:80".into()),
            &VipProblem::Scheme("web:80".into()),
            &VipProblem::NoSuchPort { index: 7, count: 2 },
            &VipProblem::MissingPort,
        ]
    );
    // The IP VIP in the named pool is skipped (it could take a named VIP's address over); the
    // good label is unaffected.
    assert_eq!(table.vips.len(), 1, "{:?}", table.vips.keys());
    let message = table.warnings[13].to_string();
    assert!(
        message.contains("\"bad\"") && message.contains("VIP_PORT7") && message.contains("2 ports"),
        "{message}"
    );
}

#[test]
fn missing_addresses_are_reported() {
    let mut no_ip = task("noip", json!([port(80, "tcp", &[("VIP_0", "/a:80")])]), &[]);
    no_ip["statuses"] = json!([{"state": "TASK_RUNNING", "timestamp": 1.0}]);
    let mut lost = task("lost", json!([]), &[("VIP_PORT0", "tcp://b:80")]);
    lost["slave_id"] = json!("S9");
    let table = extract(&catalog(vec![no_ip, lost]));
    let problems: Vec<&VipProblem> = table.warnings.iter().map(|w| &w.problem).collect();
    assert_eq!(
        problems,
        [
            &VipProblem::NoTaskAddress,
            &VipProblem::NoAgentAddress("S9".into())
        ]
    );
    assert!(table.vips.is_empty());
}

#[test]
fn states_give_weights() {
    let running = task("a", json!([port(80, "tcp", &[("VIP_0", "/w:80")])]), &[]);
    let mut killing = running.clone();
    killing["id"] = json!("b");
    killing["state"] = json!("TASK_KILLING");
    killing["statuses"][0]["container_status"]["network_infos"][0]["ip_addresses"] =
        json!([{"ip_address": "9.0.0.6"}]);
    let mut staging = running.clone();
    staging["id"] = json!("c");
    staging["state"] = json!("TASK_STAGING");
    let table = extract(&catalog(vec![running, killing, staging]));
    let backends = &table.vips[&key(Protocol::Tcp, named("w", "marathon"), 80)];
    let weights: Vec<(String, u32)> = backends
        .iter()
        .map(|b| (b.ip.to_string(), b.weight))
        .collect();
    assert_eq!(
        weights,
        [
            ("9.0.0.5".into(), 1),
            ("9.0.0.6".into(), 0),
            ("fd00::5".into(), 1)
        ]
    );
}

#[test]
fn a_failing_health_check_drains() {
    let mut sick = task("a", json!([port(80, "tcp", &[("VIP_0", "/w:80")])]), &[]);
    let mut ok = sick["statuses"][0].clone();
    ok["healthy"] = json!(true);
    ok["timestamp"] = json!(1.0);
    let mut failed = ok.clone();
    failed["healthy"] = json!(false);
    failed["timestamp"] = json!(2.0);
    sick["statuses"] = json!([ok.clone(), failed.clone()]);
    let table = extract(&catalog(vec![sick.clone()]));
    let backends = &table.vips[&key(Protocol::Tcp, named("w", "marathon"), 80)];
    assert!(backends.iter().all(|b| b.weight == 0), "{backends:?}");
    // Healthy again later: back to weight 1.
    let mut healed = ok.clone();
    healed["timestamp"] = json!(3.0);
    sick["statuses"] = json!([ok, failed, healed]);
    let table = extract(&catalog(vec![sick]));
    let backends = &table.vips[&key(Protocol::Tcp, named("w", "marathon"), 80)];
    assert!(backends.iter().all(|b| b.weight == 1), "{backends:?}");
}

#[test]
fn registrations_use_their_addresses_and_node() {
    let reg = Registration::parse(
        br#"{"name": "web", "framework": "marathon", "ips": ["10.1.0.5"],
            "ports": [{"number": 8080, "protocol": "tcp", "labels": {"VIP_0": "/web:80"}}]}"#,
    )
    .unwrap();
    let registrations = [("web-1".to_string(), reg)].into_iter().collect();
    let table = extract(&fragment("n2", &registrations));
    assert_eq!(
        table.vips[&key(Protocol::Tcp, named("web", "marathon"), 80)],
        [Backend {
            ip: ip("10.1.0.5"),
            port: 8080,
            weight: 1,
            node: "n2".into(),
            agent_ip: None,
        }]
    );
}

/// The attack: a registration joins a Mesos task's named VIP (and its IP VIP, on another port)
/// to get a share of its connections. Mesos tasks own the VIPs they declare.
#[test]
fn registrations_cannot_join_vips_that_mesos_tasks_declare() {
    let mut mesos = catalog(vec![task(
        "t1",
        json!([port(
            8080,
            "tcp",
            &[("VIP_0", "/web:80"), ("VIP_1", "10.7.0.1:80")]
        )]),
        &[],
    )]);
    let reg = Registration::parse(
        br#"{"name": "evil", "framework": "marathon", "ips": ["10.66.0.1"],
            "ports": [{"number": 8080, "protocol": "tcp",
                       "labels": {"VIP_0": "/web:80", "VIP_1": "10.7.0.1:443", "VIP_2": "/own:80"}}]}"#,
    )
    .unwrap();
    let regs = [("evil".to_string(), reg)].into_iter().collect();
    mesos.frameworks.extend(fragment("n9", &regs).frameworks);
    let table = extract(&mesos);
    let web = &table.vips[&key(Protocol::Tcp, named("web", "marathon"), 80)];
    assert!(web.iter().all(|b| b.node != "n9"), "{web:?}");
    assert!(
        !table.vips.keys().any(|k| k.port == 443),
        "{:?}",
        table.vips.keys()
    );
    let own = &table.vips[&key(Protocol::Tcp, named("own", "marathon"), 80)];
    assert_eq!(own[0].node, "n9", "a VIP of its own is fine");
    let owned: Vec<_> = (table.warnings.iter())
        .filter(|w| matches!(w.problem, VipProblem::OwnedByMesos(_)))
        .collect();
    assert_eq!(owned.len(), 2, "{:?}", table.warnings);
}

/// IP VIPs that would capture this host's own traffic are skipped, from any source.
#[test]
fn loopback_and_unspecified_ip_vips_are_skipped() {
    let c = catalog(vec![task(
        "t1",
        json!([port(
            8080,
            "tcp",
            &[
                ("VIP_0", "127.0.0.1:80"),
                ("VIP_1", "[::1]:80"),
                ("VIP_2", "0.0.0.0:80")
            ]
        )]),
        &[],
    )]);
    let table = extract(&c);
    assert!(table.vips.is_empty(), "{:?}", table.vips.keys());
    assert!(
        table
            .warnings
            .iter()
            .all(|w| matches!(w.problem, VipProblem::Reserved(_)))
    );
}

#[test]
fn the_table_does_not_depend_on_catalog_order() {
    let tasks: Vec<Value> = (0..20)
        .map(|i| {
            let mut t = task(
                &format!("t{i}"),
                json!([port(
                    8000 + i,
                    "tcp",
                    &[("VIP_0", &format!("/svc{}:80", i % 3))]
                )]),
                &[],
            );
            t["statuses"][0]["container_status"]["network_infos"][0]["ip_addresses"] =
                json!([{"ip_address": format!("9.0.1.{i}")}]);
            t
        })
        .collect();
    let forward = extract(&catalog(tasks.clone()));
    let mut reversed = tasks;
    reversed.reverse();
    assert_eq!(forward, extract(&catalog(reversed)));
    assert_eq!(forward.vips.len(), 3);
    assert_eq!(forward.names().len(), 3);
}

// ---------------------------------------------------------------------------------------------
// Addresses.

fn names(list: &[&str]) -> Vec<VipName> {
    list.iter()
        .map(|n| VipName::new(n, "marathon").unwrap())
        .collect()
}

#[test]
fn addresses_are_fixed_vectors() {
    // Pinned: these must never change (every node of every version computes them). Checked
    // against an independent computation (Python's hashlib) of the documented formula.
    let web = VipName::new("/web", "marathon").unwrap();
    let got = NamedAddresses::allocate([&web], []);
    assert_eq!(got.get(&web), (Some(web.home_v4()), Some(web.home_v6())));
    let vectors = [
        (
            "web",
            "marathon",
            "11.165.255.103",
            "fd01:c::75e6:6466:d5fa:b369",
        ),
        (
            "/mygroup/myapp",
            "marathon",
            "11.228.159.185",
            "fd01:c::ca17:57a1:64ec:d67b",
        ),
        (
            "broker",
            "kafka",
            "11.124.26.115",
            "fd01:c::4665:caab:1417:223f",
        ),
    ];
    for (name, framework, v4, v6) in vectors {
        let n = VipName::new(name, framework).unwrap();
        assert_eq!(
            (n.home_v4().to_string(), n.home_v6().to_string()),
            (v4.to_string(), v6.to_string()),
            "{n}"
        );
    }
}

#[test]
fn addresses_avoid_network_and_broadcast_octets() {
    for i in 0..5000 {
        let n = VipName::new(&format!("svc{i}"), "marathon").unwrap();
        let [a, _, _, d] = n.home_v4().octets();
        assert_eq!(a, 11);
        assert!((1..=254).contains(&d), "{n} {}", n.home_v4());
        let iid = u128::from(n.home_v6()) as u64;
        assert!(iid != 0 && iid < u64::MAX - 127);
        assert!(in_named_pool(IpAddr::V6(n.home_v6())));
    }
}

#[test]
fn addresses_do_not_depend_on_order_or_other_names() {
    let all = names(&["a", "b", "c", "d", "e", "f", "g"]);
    let full = NamedAddresses::allocate(&all, []);
    let mut reversed = all.clone();
    reversed.reverse();
    assert_eq!(full, NamedAddresses::allocate(&reversed, []));
    let some = NamedAddresses::allocate(&all[2..4], []);
    for n in &all[2..4] {
        assert_eq!(some.get(n), full.get(n));
        assert_eq!(full.v4[n], n.home_v4());
    }
}

#[test]
fn collisions_resolve_by_probe_count_then_name() {
    // A pool of 4 addresses, with first choices forced to collide: a, b and c all want slot 0;
    // later probes walk upwards.
    let all = names(&["a", "b", "c", "d"]);
    let first = |n: &VipName| match n.name() {
        "d" => 1u32,
        _ => 0,
    };
    let probe = |n: &VipName, k: u32| (first(n) + k) % 4;
    let refs: Vec<&VipName> = all.iter().collect();
    let got = assign_for_test(&refs, &BTreeSet::new(), probe);
    let slots: Vec<u32> = all.iter().map(|n| got[n]).collect();
    // a wins slot 0 (same probe count as b and c, sorts first); d keeps its first choice 1,
    // having reached it in fewer probes than b; b goes on to 2 and beats c there, c takes 3.
    assert_eq!(slots, [0, 2, 3, 1]);
    // Every order gives the same result.
    for rotation in 0..4 {
        let mut order = refs.clone();
        order.rotate_left(rotation);
        assert_eq!(assign_for_test(&order, &BTreeSet::new(), probe), got);
    }
    // Names that collide with nobody do not move when a colliding pair appears.
    let lonely = names(&["x"]);
    let far = |n: &VipName, k: u32| {
        if n.name() == "x" {
            100 + k
        } else {
            probe(n, k)
        }
    };
    let with: Vec<&VipName> = refs.iter().copied().chain(&lonely).collect();
    assert_eq!(
        assign_for_test(&with, &BTreeSet::new(), far)[&lonely[0]],
        100
    );
    assert_eq!(
        assign_for_test(&[&lonely[0]], &BTreeSet::new(), far)[&lonely[0]],
        100
    );
    // Reserved addresses (IP VIPs in the pool) are skipped.
    let reserved: BTreeSet<u32> = [0].into();
    let got = assign_for_test(&refs[..1], &reserved, probe);
    assert_eq!(got[&all[0]], 1);
}

#[test]
fn ip_vips_in_the_pool_are_never_given_to_names() {
    let web = VipName::new("web", "marathon").unwrap();
    let home = web.home_v4();
    let got = NamedAddresses::allocate([&web], [IpAddr::V4(home)]);
    assert_ne!(got.v4[&web], home);
    assert_eq!(got.v6[&web], web.home_v6());
    assert!(in_named_pool(IpAddr::V4(Ipv4Addr::new(11, 255, 255, 254))));
    assert!(!in_named_pool(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))));
    assert!(!in_named_pool(IpAddr::V6(Ipv6Addr::new(
        0xfd01, 0xd, 0, 0, 0, 0, 0, 1
    ))));
}

// ---------------------------------------------------------------------------------------------
// Withdrawal.

#[test]
fn unreachable_nodes_are_withdrawn_but_fail_open() {
    let on = |node: &str, last: u8| Backend {
        ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)),
        port: 80,
        weight: 1,
        node: node.into(),
        agent_ip: None,
    };
    let backends = [on("n1", 1), on("n2", 2), on("n3", 3)];
    let down: BTreeSet<String> = ["n2".to_string()].into();
    assert_eq!(
        withdraw_on_nodes(&backends, &down),
        [on("n1", 1), on("n3", 3)]
    );
    let all_down: BTreeSet<String> = ["n1", "n2", "n3"].map(String::from).into();
    assert_eq!(withdraw_on_nodes(&backends, &all_down), backends);
    assert_eq!(withdraw_on_nodes(&backends, &BTreeSet::new()), backends);
    assert!(withdraw_on_nodes(&[], &all_down).is_empty());
    let by_agent = withdraw_unreachable(&backends, |b| b.ip == ip("10.0.0.1"));
    assert_eq!(by_agent.len(), 2);
}

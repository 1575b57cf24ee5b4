//! A partition between two groups of agents, each group in its own network namespace joined by
//! a veth pair: cut the link, change registrations on both sides, heal it, and every node
//! converges to the union of both sides' changes, with nothing lost.

use std::net::{IpAddr, SocketAddr};
use std::process::Stdio;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::json;

use beacon_test_support::netns::{Netns, tag, veth};
use beacon_test_support::privileged::require_root;

use crate::support::*;

const A_ADDR: &str = "10.213.0.1";
const B_ADDR: &str = "10.213.0.2";

struct Node {
    name: &'static str,
    side: usize,
    dns: SocketAddr,
    http: SocketAddr,
    _proc: Proc,
}

fn start(
    dir: &TempDir,
    ns: &Netns,
    name: &'static str,
    side: usize,
    gossip: SocketAddr,
    seed: SocketAddr,
) -> Node {
    let (dns, http) = (free_port(), free_port());
    let toml = format!(
        "[mesos_dns]\nlistener = \"127.0.0.1\"\nport = {dns}\nhttp_listener = \"127.0.0.1\"\nhttp_port = {http}\n\
         external_on = false\n\
         [node]\nname = \"{name}\"\n\
         [cluster]\nlisten = \"{gossip}\"\nseeds = [\"a1@{seed}\"]\ntls_dir = \"{}\"\nwithdraw_after_secs = 120\n[vip]\ndata_plane = \"off\"\n{}",
        dir.path("tls").display(),
        test_tokens()
    );
    let path = dir.path(&format!("{name}.toml"));
    std::fs::write(&path, toml).unwrap();
    let mut cmd = ns.command(env!("CARGO_BIN_EXE_beacon"));
    cmd.args(["agent", "--config"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    if std::env::var_os("BEACON_TEST_LOG").is_none() {
        cmd.stderr(Stdio::null());
    }
    Node {
        name,
        side,
        dns: ([127, 0, 0, 1], dns).into(),
        http: ([127, 0, 0, 1], http).into(),
        _proc: Proc(cmd.spawn().unwrap()),
    }
}

/// The A records of `name` that `node` answers (empty for NXDOMAIN).
fn answers(sides: &[Netns; 2], node: &Node, name: &str) -> Vec<String> {
    sides[node.side].run(|| {
        let reply = query(node.dns, name, RecordType::A, Ask::UDP);
        match reply.metadata.response_code {
            ResponseCode::NoError => reply.answers.iter().map(show).collect(),
            _ => Vec::new(),
        }
    })
}

/// Names `node` believes up, itself included.
fn up(sides: &[Netns; 2], node: &Node) -> Vec<String> {
    sides[node.side].run(|| {
        let Ok(reply) = http_get(node.http, "/v1/nodes") else {
            return Vec::new();
        };
        let members = reply.json();
        let members = members.as_array().cloned().unwrap_or_default();
        let up = members.iter().filter(|m| m["state"] == "up");
        up.map(|m| m["name"].as_str().unwrap_or_default().to_string())
            .collect()
    })
}

fn register(sides: &[Netns; 2], node: &Node, id: &str, ip: &str) {
    let body = json!({"name": id, "framework": "shop", "ips": [ip]}).to_string();
    let path = format!("/v1/registrations/{id}");
    let reply = sides[node.side].run(|| http_write(node.http, "PUT", &path, body.as_bytes()));
    assert!(
        [200, 201].contains(&reply.unwrap().status),
        "PUT {id} on {}",
        node.name
    );
}

fn delete(sides: &[Netns; 2], node: &Node, id: &str) {
    let path = format!("/v1/registrations/{id}");
    let reply = sides[node.side].run(|| http_write(node.http, "DELETE", &path, b""));
    assert_eq!(reply.unwrap().status, 204, "DELETE {id} on {}", node.name);
}

fn record(id: &str, ip: &str) -> String {
    format!("{id}.shop.mesos. 60 A {ip}")
}

/// Cuts (or heals) the link between the two sides: a blackhole route to the other side's
/// address, so packets are dropped while each side's own traffic flows.
fn cut(sides: &[Netns; 2], on: bool) {
    let verb = if on { "add" } else { "del" };
    sides[0].ip(&format!("route {verb} blackhole {B_ADDR}/32"));
    sides[1].ip(&format!("route {verb} blackhole {A_ADDR}/32"));
}

#[test]
#[cfg_attr(
    unprivileged,
    ignore = "needs root (BPF, network namespaces, cgroups); runs under CI=true"
)]
fn partitioned_sides_converge_to_the_union_after_healing() {
    require_root("partitioned_sides_converge_to_the_union_after_healing");
    let dir = TempDir::new("partition");
    let tls = dir.path("tls");
    let tls = tls.to_str().unwrap();
    let beacon = |args: &[&str]| {
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_beacon"))
            .args(args)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "beacon {args:?}");
    };
    beacon(&["tls", "ca", "--dir", tls]);
    for n in ["a1", "a2", "b1", "b2"] {
        beacon(&[
            "tls",
            "node",
            "--name",
            n,
            "--role",
            "master-poller",
            "--dir",
            tls,
        ]);
    }
    let t = tag();
    let sides = [
        Netns::new(&format!("beacon-pa-{t}")),
        Netns::new(&format!("beacon-pb-{t}")),
    ];
    veth(&sides[0], "veth-a", &sides[1], "veth-b");
    sides[0].ip(&format!("addr add {A_ADDR}/24 dev veth-a"));
    sides[1].ip(&format!("addr add {B_ADDR}/24 dev veth-b"));
    let addr = |ip: &str| SocketAddr::new(ip.parse::<IpAddr>().unwrap(), free_port());
    let seed = addr(A_ADDR);
    let nodes = [
        start(&dir, &sides[0], "a1", 0, seed, seed),
        start(&dir, &sides[0], "a2", 0, addr(A_ADDR), seed),
        start(&dir, &sides[1], "b1", 1, addr(B_ADDR), seed),
        start(&dir, &sides[1], "b2", 1, addr(B_ADDR), seed),
    ];
    let (a1, a2, b1, b2) = (&nodes[0], &nodes[1], &nodes[2], &nodes[3]);
    let t0 = std::time::Instant::now();
    wait_until("all four up everywhere", || {
        nodes.iter().all(|n| up(&sides, n).len() == 4)
    });

    register(&sides, a1, "before", "10.9.0.1");
    register(&sides, b1, "moved", "10.9.1.1");
    wait_until("both registrations everywhere", || {
        nodes.iter().all(|n| {
            answers(&sides, n, "before.shop.mesos.") == [record("before", "10.9.0.1")]
                && answers(&sides, n, "moved.shop.mesos.") == [record("moved", "10.9.1.1")]
        })
    });

    eprintln!("partition test: up and registered {:?}", t0.elapsed());
    cut(&sides, true);
    wait_for(
        "each side sees only itself",
        Duration::from_secs(30),
        || nodes.iter().all(|n| up(&sides, n).len() == 2),
    );
    eprintln!(
        "partition test: cut, sides apart at {:?} {:?}",
        t0.elapsed(),
        up(&sides, a1)
    );
    register(&sides, a2, "west", "10.9.2.1");
    delete(&sides, a1, "before");
    register(&sides, b2, "east", "10.9.3.1");
    register(&sides, b1, "moved", "10.9.1.2");
    wait_until("each side sees its own changes", || {
        answers(&sides, a1, "west.shop.mesos.") == [record("west", "10.9.2.1")]
            && answers(&sides, a2, "before.shop.mesos.").is_empty()
            && answers(&sides, b1, "east.shop.mesos.") == [record("east", "10.9.3.1")]
            && answers(&sides, b2, "moved.shop.mesos.") == [record("moved", "10.9.1.2")]
    });
    // Neither side hears the other's changes, and neither loses the other's older records.
    assert!(answers(&sides, a1, "east.shop.mesos.").is_empty());
    assert_eq!(
        answers(&sides, a2, "moved.shop.mesos."),
        [record("moved", "10.9.1.1")]
    );
    assert!(answers(&sides, b1, "west.shop.mesos.").is_empty());
    assert_eq!(
        answers(&sides, b2, "before.shop.mesos."),
        [record("before", "10.9.0.1")]
    );

    eprintln!("partition test: changes made at {:?}", t0.elapsed());
    cut(&sides, false);
    // Down members are retried every 15 s; give it a few rounds.
    wait_for("every node has the union", Duration::from_secs(60), || {
        nodes.iter().all(|n| {
            answers(&sides, n, "west.shop.mesos.") == [record("west", "10.9.2.1")]
                && answers(&sides, n, "east.shop.mesos.") == [record("east", "10.9.3.1")]
                && answers(&sides, n, "moved.shop.mesos.") == [record("moved", "10.9.1.2")]
                && answers(&sides, n, "before.shop.mesos.").is_empty()
        })
    });
    wait_for(
        "all four up again everywhere",
        Duration::from_secs(60),
        || nodes.iter().all(|n| up(&sides, n).len() == 4),
    );
    eprintln!(
        "partition test: converged after healing at {:?}",
        t0.elapsed()
    );
    drop(nodes);
}

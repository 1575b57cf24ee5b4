//! Revocation and rotation with real agents, each node with its own TLS directory as on
//! separate hosts: a node revoked while running (its name in the others' `revoked` files, read
//! on SIGHUP on one node and on the file's change on the other) is dropped by its peers, its
//! registrations disappear from them at once, it cannot reconnect even after a restart, and its
//! new writes go nowhere; a node whose certificate and key are replaced while it runs picks them
//! up (the expiry metric shows the new certificate) and stays a member whose writes are taken,
//! also by a peer that connects to it afresh.

use std::time::Duration;

use crate::cluster::{Node, beacon, run_node};
use crate::signed::{answers, register, three_agents};
use crate::support::*;

/// The state `node` lists for member `name`, if it lists it.
fn state_of(node: &Node, name: &str) -> Option<String> {
    let members = http_get(node.http, "/v1/nodes").ok()?.json();
    let member = members
        .as_array()?
        .iter()
        .filter(|m| m["name"] == name)
        .find(|m| m["state"] == "up")
        .or_else(|| members.as_array()?.iter().find(|m| m["name"] == name))?;
    Some(member["state"].as_str()?.to_string())
}

fn up_count(node: &Node) -> usize {
    let members = http_get(node.http, "/v1/nodes").unwrap().json();
    members
        .as_array()
        .map_or(0, |m| m.iter().filter(|m| m["state"] == "up").count())
}

fn hangup(node: &Node) {
    let pid = node._proc.0.id() as libc::pid_t;
    // SAFETY: kill has no memory preconditions; the PID is our own child's, not yet reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
}

fn metric(node: &Node, name: &str) -> Option<i64> {
    let metrics = http_get(node.http, "/metrics").ok()?.text();
    let prefix = format!("{name} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
}

#[test]
fn a_node_revoked_while_running_is_dropped_refused_and_withdrawn() {
    let dir = TempDir::new("revoke");
    let state = std::fs::read(conformance("fake-loopback-leader.json")).unwrap();
    let master = FakeMaster::start(&dir, &state);
    let (mut nodes, _) = three_agents(&dir, master.addr);
    register(&nodes[2], "web-3", "web3", "10.9.0.3");
    for node in &nodes {
        wait_until("n3's registration everywhere", || {
            answers(node, "web3.shop.mesos.")
        });
    }

    // n1 is told by SIGHUP, n2 notices the file.
    let list = "# lost its disk; key may be copied\nn3\n";
    std::fs::write(dir.path("tls-n1/revoked"), list).unwrap();
    hangup(&nodes[0]);
    std::fs::write(dir.path("tls-n2/revoked"), list).unwrap();
    for node in &nodes[..2] {
        wait_for("n3 dropped and withdrawn", Duration::from_secs(10), || {
            state_of(node, "n3").is_none_or(|s| s != "up") && !answers(node, "web3.shop.mesos.")
        });
    }
    // It writes on: nobody takes it.
    register(&nodes[2], "web-4", "web4", "10.9.0.4");
    // It restarts, as an attacker with the key would: it cannot get back in.
    let (dns, http) = (nodes[2].dns, nodes[2].http);
    drop(nodes.pop());
    let n3 = run_node(&dir.path("n3.toml"), dns, http);
    std::thread::sleep(Duration::from_secs(5));
    for node in &nodes {
        assert_ne!(state_of(node, "n3").as_deref(), Some("up"));
        for name in ["web3.shop.mesos.", "web4.shop.mesos."] {
            assert!(!answers(node, name), "{name} served after revocation");
        }
        assert_eq!(up_count(node), 2, "n1 and n2 stay members of each other");
    }
    assert_eq!(up_count(&n3), 1, "the revoked node sees nobody");
    assert!(
        answers(&n3, "web4.shop.mesos."),
        "its own writes stay its own"
    );
}

#[test]
fn a_rotated_certificate_keeps_the_node_a_member() {
    let dir = TempDir::new("rotate");
    let state = std::fs::read(conformance("fake-loopback-leader.json")).unwrap();
    let master = FakeMaster::start(&dir, &state);
    let (mut nodes, _) = three_agents(&dir, master.addr);
    let days = |node: &Node| metric(node, "beacon_tls_certificate_expiry_days");
    assert!(
        matches!(days(&nodes[1]), Some(363..=365)),
        "{:?}",
        days(&nodes[1])
    );

    // A new key and certificate for n2 (30 days), from the CA, copied over n2's files.
    let rotate = dir.path("rotate");
    std::fs::create_dir_all(&rotate).unwrap();
    for file in ["ca.pem", "ca-key.pem"] {
        std::fs::copy(dir.path("tls").join(file), rotate.join(file)).unwrap();
    }
    let rotate_dir = rotate.to_str().unwrap();
    beacon(&[
        "tls", "node", "--name", "n2", "--days", "30", "--dir", rotate_dir,
    ]);
    for file in ["n2.pem", "n2-key.pem"] {
        std::fs::copy(rotate.join(file), dir.path("tls-n2").join(file)).unwrap();
    }
    wait_until("n2 uses its new certificate", || {
        matches!(days(&nodes[1]), Some(29..=30))
    });

    // Its new writes are sealed with the new key: everyone takes them.
    register(&nodes[1], "web-2", "web2", "10.9.0.2");
    for node in &nodes {
        wait_until("n2's write everywhere", || {
            answers(node, "web2.shop.mesos.")
        });
    }
    // A peer that connects afresh (n1, restarted) is shown the new certificate, and n2 the
    // peer's: n2 stays a member, and its next write reaches n1.
    let (dns, http) = (nodes[0].dns, nodes[0].http);
    drop(nodes.remove(0));
    nodes.insert(0, run_node(&dir.path("n1.toml"), dns, http));
    wait_until("all three up again", || {
        nodes.iter().all(|n| up_count(n) == 3)
    });
    register(&nodes[1], "web-5", "web5", "10.9.0.5");
    for node in &nodes {
        wait_until("n2's next write everywhere", || {
            answers(node, "web5.shop.mesos.") && answers(node, "web2.shop.mesos.")
        });
    }
}

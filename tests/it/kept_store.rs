//! The gossip store kept in the state directory: a node restarted while every peer and the
//! master are down answers the cluster's last-known records at once (a registration made on
//! another node, the master's names), says in `/readyz` and a metric how old they are, and
//! takes newer data from its peers as soon as they are back.

use hickory_proto::rr::RecordType;
use serde_json::json;

use crate::cluster::{Node, Sources, beacon, run_node, start_node};
use crate::support::*;

fn put(node: &Node, id: &str, ip: &str) -> u16 {
    let body = json!({"name": id, "framework": "shop", "ips": [ip]}).to_string();
    let path = format!("/v1/registrations/{id}");
    http_write(node.http, "PUT", &path, body.as_bytes())
        .unwrap()
        .status
}

fn answers(node: &Node, name: &str) -> bool {
    !query(node.dns, name, RecordType::A, Ask::UDP)
        .answers
        .is_empty()
}

fn readyz(node: &Node) -> String {
    http_get(node.http, "/readyz").map_or_else(|e| e.to_string(), |r| r.text())
}

fn restored_age(node: &Node) -> Option<i64> {
    let metrics = http_get(node.http, "/metrics").ok()?.text();
    let line = (metrics.lines()).find(|l| l.starts_with("beacon_gossip_restored_age_seconds "))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_node_restarted_during_a_cluster_outage_serves_the_kept_store() {
    let dir = TempDir::new("kept-store");
    let tls = dir.path("tls");
    let tls = tls.to_str().unwrap();
    beacon(&["tls", "ca", "--dir", tls]);
    for name in ["n1", "n2"] {
        beacon(&[
            "tls",
            "node",
            "--name",
            name,
            "--role",
            "master-poller",
            "--dir",
            tls,
        ]);
    }
    let master = FakeMaster::start(
        &dir,
        &std::fs::read(conformance("fake-loopback-leader.json")).unwrap(),
    );
    let sources = Sources {
        master: Some(master.addr),
        agent: None,
        tls_dir: "tls",
        refresh_secs: 1,
    };
    let (g1, g2) = (free_port(), free_port());
    let n1 = start_node(&dir, "n1", sources, g1, None);
    let n2 = start_node(&dir, "n2", sources, g2, Some(("n1", g1)));
    assert_eq!(put(&n1, "web", "10.9.0.1"), 201);
    wait_until(
        "n2 answers n1's registration and the master's names",
        || answers(&n2, "web.shop.mesos.") && answers(&n2, "nginx.marathon.mesos."),
    );
    assert!(!readyz(&n2).contains("restored"), "{}", readyz(&n2));
    // Saved at most a second after the change; then the whole cluster and its master crash.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let (dns2, http2) = (n2.dns, n2.http);
    drop((n2, n1, master));

    // n2 alone: no peer, no master. It answers from its kept store as soon as it is ready.
    let n2 = run_node(&dir.path("n2.toml"), dns2, http2);
    assert!(
        answers(&n2, "web.shop.mesos."),
        "n1's registration, restored"
    );
    assert!(
        answers(&n2, "nginx.marathon.mesos."),
        "the master's names, restored"
    );
    let ready = readyz(&n2);
    assert!(
        ready.contains("restored") && ready.contains(" s old"),
        "{ready}"
    );
    assert!(
        restored_age(&n2).is_some_and(|age| age >= 0),
        "the age metric"
    );
    assert!(dir.path("state-n2").join("gossip-store.bin").exists());

    // n1 comes back (seeded with n2 this time) and changes its registrations: n2 follows.
    let n1 = start_node(&dir, "n1", sources, g1, Some(("n2", g2)));
    let deleted = http_write(n1.http, "DELETE", "/v1/registrations/web", b"").unwrap();
    assert_eq!(deleted.status, 204);
    assert_eq!(put(&n1, "api", "10.9.0.2"), 201);
    wait_until("n2 serves n1's change over the restored data", || {
        answers(&n2, "api.shop.mesos.") && !answers(&n2, "web.shop.mesos.")
    });
    wait_until("n2 no longer says it serves a restored store", || {
        !readyz(&n2).contains("restored") && restored_age(&n2) == Some(0)
    });
    assert!(
        answers(&n2, "nginx.marathon.mesos."),
        "the master's names stay"
    );
}

//! Signed origins with real agents: a participant holding a valid certificate from the cluster
//! CA (without the master-poller role) joins the gossip of three agents and forges another
//! node's origin and the Mesos master's, sends a tombstone stamped `u64::MAX` and a version
//! stamped an hour ahead; no agent serves any of it, each counts the refusals in `/metrics`,
//! and the real owners keep writing.
//!
//! The rogue is an in-test gossip node ([`Rogue`]) with the certificate `beacon tls node` made:
//! it speaks the real protocol over QUIC, exactly as a compromised node would.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use beacon::cluster::codec;
use beacon_gossip::net::{Credentials, Gossip, Transport, X509Keys, spawn};
use beacon_gossip::{Node as GossipNode, NodeConfig, NodeId, cluster_id};
use bytes::Bytes;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;

use crate::cluster::{Node, Sources, agent_state, all_up, beacon, start_node};
use crate::support::*;

/// A gossip participant driven by the test, with the credentials of `name` in `tls`.
pub(crate) struct Rogue {
    pub(crate) gossip: Gossip,
    pub(crate) runtime: tokio::runtime::Runtime,
}

impl Rogue {
    pub(crate) fn start(tls: &Path, name: &str, seed: (&str, u16)) -> Self {
        let certs = |file: &str| -> Vec<CertificateDer<'static>> {
            CertificateDer::pem_file_iter(tls.join(file))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let creds = Credentials {
            chain: certs(&format!("{name}.pem")),
            key: PrivateKeyDer::from_pem_file(tls.join(format!("{name}-key.pem"))).unwrap(),
            roots: certs("ca.pem"),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let gossip = runtime.block_on(async {
            let keys = Arc::new(X509Keys::new(&creds).unwrap());
            let (transport, incoming) =
                Transport::bind("127.0.0.1:0".parse().unwrap(), &creds).unwrap();
            let addr = transport.local_addr().unwrap();
            let config = NodeConfig {
                cluster: cluster_id("beacon"),
                ..NodeConfig::default()
            };
            let id = NodeId::new(name, addr, wall_millis());
            let node = GossipNode::new(config, id, 7, Instant::now(), keys);
            let (gossip, mut events, _) = spawn(node, transport, incoming);
            // Nobody reads the rogue's events but this drain.
            tokio::spawn(async move { while events.recv().await.is_some() {} });
            let seed: SocketAddr = ([127, 0, 0, 1], seed.1).into();
            gossip.join(NodeId::new("n1", seed, 0)).await.unwrap();
            gossip
        });
        Self { gossip, runtime }
    }

    /// Publishes `payload` as `origin`, stamped as if the clock read `wall` (ms), or now.
    pub(crate) fn publish(&self, origin: &str, payload: Bytes, wall: Option<u64>) {
        let origin = codec::to_gossip(origin);
        let gossip = &self.gossip;
        self.runtime.block_on(async {
            match wall {
                Some(wall) => gossip.publish_at(origin, payload, wall).await,
                None => gossip.publish(origin, payload).await,
            }
            .unwrap()
        });
    }
}

pub(crate) fn wall_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A fragment as a Mesos agent's state would produce: task `task` at 127.0.0.3.
pub(crate) fn fragment(task: &str) -> Bytes {
    let state = String::from_utf8(agent_state(true))
        .unwrap()
        .replace("agentweb", task);
    let catalog = beacon_catalog::mesos::parse_agent_state(state.as_bytes()).unwrap();
    codec::encode(&catalog).unwrap()
}

/// Whether `node` answers `name` (in `marathon.mesos.` or `shop.mesos.`) with an address.
pub(crate) fn answers(node: &Node, name: &str) -> bool {
    let r = query(node.dns, name, RecordType::A, Ask::UDP);
    r.metadata.response_code == ResponseCode::NoError && !r.answers.is_empty()
}

/// `beacon_gossip_rejected_total{reason}` on `node`.
pub(crate) fn rejected(node: &Node, reason: &str) -> u64 {
    let metrics = http_get(node.http, "/metrics").unwrap().text();
    let prefix = format!("beacon_gossip_rejected_total{{reason=\"{reason}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub(crate) fn register(node: &Node, id: &str, name: &str, ip: &str) {
    let body = json!({"name": name, "framework": "shop", "ips": [ip]});
    let path = format!("/v1/registrations/{id}");
    let put = http_write(node.http, "PUT", &path, body.to_string().as_bytes()).unwrap();
    assert!(put.status == 201 || put.status == 200, "{}", put.text());
}

/// Three agents: n1 polls the master (with the role), n2 and n3 do not. The CA is in `tls`;
/// each node has its own directory, `tls-<name>`, with `ca.pem` and its own files, as on
/// separate hosts.
pub(crate) fn three_agents(dir: &TempDir, master: SocketAddr) -> (Vec<Node>, u16) {
    let tls = dir.path("tls");
    let tls = tls.to_str().unwrap();
    beacon(&["tls", "ca", "--dir", tls]);
    let mut args = vec!["tls", "node", "--name", "n1", "--role", "master-poller"];
    args.extend(["--dir", tls]);
    beacon(&args);
    for n in ["n2", "n3"] {
        beacon(&["tls", "node", "--name", n, "--dir", tls]);
    }
    for n in ["n1", "n2", "n3"] {
        let own = dir.path(&format!("tls-{n}"));
        std::fs::create_dir_all(&own).unwrap();
        for file in [
            "ca.pem".to_string(),
            format!("{n}.pem"),
            format!("{n}-key.pem"),
        ] {
            std::fs::copy(dir.path("tls").join(&file), own.join(&file)).unwrap();
        }
    }
    let tls_dirs = ["tls-n1", "tls-n2", "tls-n3"];
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let nodes: Vec<Node> = ["n1", "n2", "n3"]
        .iter()
        .zip(&ports)
        .enumerate()
        .map(|(i, (n, p))| {
            let sources = Sources {
                master: (i == 0).then_some(master),
                agent: None,
                tls_dir: tls_dirs[i],
                refresh_secs: 1,
            };
            start_node(dir, n, sources, *p, (i > 0).then_some(("n1", ports[0])))
        })
        .collect();
    wait_until("the three agents up", || all_up(&nodes));
    (nodes, ports[0])
}

#[test]
fn a_certificate_holder_cannot_write_what_it_does_not_own() {
    let dir = TempDir::new("signed");
    let state = std::fs::read(conformance("fake-loopback-leader.json")).unwrap();
    let master = FakeMaster::start(&dir, &state);
    let (nodes, seed) = three_agents(&dir, master.addr);
    register(&nodes[1], "web-2", "web2", "10.9.0.2");
    for node in &nodes {
        wait_until("n2's registration and the master's names", || {
            answers(node, "web2.shop.mesos.") && answers(node, "nginx.marathon.mesos.")
        });
    }

    // A valid certificate from the cluster CA, without the master-poller role.
    let tls = dir.path("tls");
    beacon(&[
        "tls",
        "node",
        "--name",
        "rogue",
        "--dir",
        tls.to_str().unwrap(),
    ]);
    let rogue = Rogue::start(&tls, "rogue", ("n1", seed));
    // Its own origin is its own: served everywhere (so it is connected and heard).
    rogue.publish("node/rogue", fragment("roguetask"), None);
    for node in &nodes {
        wait_until("the rogue's own record", || {
            answers(node, "roguetask.marathon.mesos.")
        });
    }

    let hour_ahead = wall_millis() + 3_600_000;
    rogue.publish("node/n1", fragment("forgedn1"), None);
    rogue.publish("mesos-master", fragment("forgedmaster"), None);
    rogue.publish("mesos-master", Bytes::new(), Some(u64::MAX));
    rogue.publish("node/n2", Bytes::new(), Some(u64::MAX));
    rogue.publish("node/rogue", fragment("futuretask"), Some(hour_ahead));
    for node in &nodes {
        wait_until("every forgery refused and counted", || {
            rejected(node, "foreign") >= 2 && rejected(node, "future_stamp") >= 1
        });
    }
    // Watched for long enough for many gossip rounds and syncs: an owner that writes again
    // (n1 defends its origin, the poller republishes the master's) would hide a forgery that
    // was served for a moment, so every node is asked all along.
    let forged = ["forgedn1", "forgedmaster", "futuretask"];
    never_served(&nodes, &forged, Duration::from_secs(5));
    for node in &nodes {
        for forged in ["forgedn1", "forgedmaster", "futuretask"] {
            let name = format!("{forged}.marathon.mesos.");
            assert!(!answers(node, &name), "{name} served");
        }
        assert!(answers(node, "web2.shop.mesos."), "n2's origin deleted");
        assert!(
            answers(node, "nginx.marathon.mesos."),
            "the master's deleted"
        );
        assert!(answers(node, "roguetask.marathon.mesos."));
    }

    // The owners keep writing: n1 and n2 register, the master poller publishes a new state.
    register(&nodes[0], "web-1", "web1", "10.9.0.1");
    register(&nodes[1], "web-3", "web3", "10.9.0.3");
    master.serve(
        &String::from_utf8(state)
            .unwrap()
            .replace("nginx", "ngin2")
            .into_bytes(),
    );
    for node in &nodes {
        wait_until("the owners' new versions everywhere", || {
            answers(node, "web1.shop.mesos.")
                && answers(node, "web3.shop.mesos.")
                && answers(node, "ngin2.marathon.mesos.")
        });
    }
}

/// Asks every node for every `forged` task name until `period` has passed; fails at the first
/// answer.
fn never_served(nodes: &[Node], forged: &[&str], period: Duration) {
    let deadline = Instant::now() + period;
    while Instant::now() < deadline {
        for (i, node) in nodes.iter().enumerate() {
            for task in forged {
                let name = format!("{task}.marathon.mesos.");
                assert!(!answers(node, &name), "n{} served {name}", i + 1);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

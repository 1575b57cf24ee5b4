//! Real QUIC on loopback: nodes of one CA replicate a record; a node with another CA's
//! certificate cannot join, read or inject.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use beacon_gossip::net::{Credentials, Transport, spawn};
use beacon_gossip::{Event, Node, NodeConfig, NodeId, Origin, cluster_id};
use bytes::Bytes;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

struct Ca {
    cert: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

fn ca() -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    Ca {
        cert: cert.der().clone(),
        issuer: Issuer::new(params, key),
    }
}

fn creds(ca: &Ca, name: &str) -> Credentials {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![name.into()])
        .unwrap()
        .signed_by(&key, &ca.issuer)
        .unwrap();
    Credentials {
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        roots: vec![ca.cert.clone()],
    }
}

struct Member {
    id: NodeId,
    gossip: beacon_gossip::net::Gossip,
    events: tokio::sync::mpsc::Receiver<Event>,
}

fn member(ca: &Ca, name: &str, seed: u64) -> Member {
    let (transport, incoming) =
        Transport::bind("127.0.0.1:0".parse().unwrap(), &creds(ca, name)).unwrap();
    let addr: SocketAddr = transport.local_addr().unwrap();
    let id = NodeId::new(name, addr, 1);
    let config = NodeConfig {
        cluster: cluster_id("test"),
        ..NodeConfig::default()
    };
    let node = Node::new(config, id.clone(), seed, Instant::now());
    let (gossip, events) = spawn(node, transport, incoming);
    Member { id, gossip, events }
}

async fn sees(m: &mut Member, origin: &Origin, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let records = m.gossip.records().await.unwrap();
        if records.iter().any(|(o, _)| o == origin) {
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return false,
            _ = m.events.recv() => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_reaches_every_member_and_a_rogue_gets_nothing() {
    let ours = ca();
    let mut a = member(&ours, "a", 1);
    let b = member(&ours, "b", 2);
    let mut c = member(&ours, "c", 3);
    for m in [&b, &c] {
        m.gossip.join(a.id.clone()).await.unwrap();
    }
    let origin = Origin::Node("b".into());
    b.gossip
        .publish(origin.clone(), Bytes::from_static(b"web=10.0.0.5"))
        .await
        .unwrap();
    assert!(
        sees(&mut c, &origin, Duration::from_secs(10)).await,
        "c never saw b's record"
    );
    assert!(
        sees(&mut a, &origin, Duration::from_secs(10)).await,
        "a never saw b's record"
    );

    // Another CA's node, even under a member's name, can neither join nor inject.
    let theirs = ca();
    let mut rogue = member(&theirs, "b", 4);
    rogue.gossip.join(a.id.clone()).await.unwrap();
    let fake = Origin::Node("evil".into());
    rogue
        .gossip
        .publish(fake.clone(), Bytes::from_static(b"web=6.6.6.6"))
        .await
        .unwrap();
    assert!(
        !sees(&mut a, &fake, Duration::from_secs(3)).await,
        "a rogue record was accepted"
    );
    assert!(
        !sees(&mut rogue, &origin, Duration::from_millis(500)).await,
        "the rogue read our records"
    );
    let members = a.gossip.members().await.unwrap();
    assert!(
        members.iter().all(|m| m.id.addr() != rogue.id.addr()),
        "the rogue became a member"
    );
}

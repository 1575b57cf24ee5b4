//! Real QUIC on loopback: the transport carries datagrams and syncs between members of one CA
//! and refuses another CA's peer either way; nodes of one CA replicate a record; a node with
//! another CA's certificate cannot join, read or inject; a member that leaves is shown as left.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use std::sync::Arc;

use beacon_gossip::net::{Credentials, Incoming, Transport, X509Keys, spawn};
use beacon_gossip::{Event, Liveness, Node, NodeConfig, NodeId, Origin, cluster_id};
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
    let creds = creds(ca, name);
    let keys = Arc::new(X509Keys::new(&creds).unwrap());
    let (transport, incoming) = Transport::bind("127.0.0.1:0".parse().unwrap(), &creds).unwrap();
    let addr: SocketAddr = transport.local_addr().unwrap();
    let id = NodeId::new(name, addr, 1);
    let config = NodeConfig {
        cluster: cluster_id("test"),
        ..NodeConfig::default()
    };
    let node = Node::new(config, id.clone(), seed, Instant::now(), keys);
    let (gossip, events, _) = spawn(node, transport, incoming);
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

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[tokio::test]
async fn datagrams_and_syncs_between_members_of_one_ca() {
    let ca = ca();
    let (a, _a_rx) = Transport::bind(loopback(), &creds(&ca, "a")).unwrap();
    let (b, mut b_rx) = Transport::bind(loopback(), &creds(&ca, "b")).unwrap();
    let b_addr = b.local_addr().unwrap();
    a.send_datagram(b_addr, "b", Bytes::from_static(b"ping"))
        .await
        .unwrap();
    let Some(Incoming::Datagram { bytes, .. }) = b_rx.recv().await else {
        panic!()
    };
    assert_eq!(&bytes[..], b"ping");
    let big = Bytes::from(vec![7u8; 3 << 20]);
    let sync = tokio::spawn({
        let a = a.clone();
        let big = big.clone();
        async move { a.sync(b_addr, "b", big).await }
    });
    let Some(Incoming::Sync { request, reply, .. }) = b_rx.recv().await else {
        panic!()
    };
    assert_eq!(request.len(), 3 << 20);
    reply.send(Bytes::from_static(b"pong")).unwrap();
    assert_eq!(&sync.await.unwrap().unwrap()[..], b"pong");
    // The certificate must name the node we meant.
    assert!(
        a.send_datagram(b_addr, "c", Bytes::from_static(b"x"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_peer_from_another_ca_cannot_connect_either_way() {
    let (ours, theirs) = (ca(), ca());
    let (a, mut a_rx) = Transport::bind(loopback(), &creds(&ours, "a")).unwrap();
    let (rogue, mut rogue_rx) = Transport::bind(loopback(), &creds(&theirs, "a")).unwrap();
    let a_addr = a.local_addr().unwrap();
    let rogue_addr = rogue.local_addr().unwrap();
    assert!(
        rogue
            .send_datagram(a_addr, "a", Bytes::from_static(b"inject"))
            .await
            .is_err()
    );
    assert!(
        a.send_datagram(rogue_addr, "a", Bytes::from_static(b"leak"))
            .await
            .is_err()
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(300), a_rx.recv())
            .await
            .is_err()
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rogue_rx.recv())
            .await
            .is_err()
    );
}

/// A member that leaves tells every live member itself: each of them lists it as left (not
/// down, which means failed), and the leaving node's driver ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_leaves_is_shown_left_by_every_peer() {
    let ca = ca();
    let names = ["a", "b", "c", "d", "e"];
    let members: Vec<Member> = (0..names.len())
        .map(|i| member(&ca, names[i], i as u64 + 10))
        .collect();
    for m in &members[1..] {
        m.gossip.join(members[0].id.clone()).await.unwrap();
    }
    let all_up = async {
        loop {
            let mut up = 0;
            for m in &members {
                let states = m.gossip.members().await.unwrap();
                up += states.iter().filter(|s| s.state == Liveness::Up).count();
            }
            if up == names.len() * (names.len() - 1) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), all_up)
        .await
        .expect("every member sees the four others up");

    let leaving = &members[2];
    leaving.gossip.leave().await.unwrap();
    assert!(leaving.gossip.members().await.is_err(), "its driver ended");
    let state_of_c = |states: Vec<beacon_gossip::MemberState>| {
        (states.into_iter())
            .find(|s| s.id == leaving.id)
            .map(|s| s.state)
    };
    let all_left = async {
        loop {
            let mut left = 0;
            for m in members.iter().filter(|m| m.id != leaving.id) {
                let states = m.gossip.members().await.unwrap();
                left += usize::from(state_of_c(states) == Some(Liveness::Left));
            }
            if left == names.len() - 1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(1), all_left)
        .await
        .is_err()
    {
        let mut seen = Vec::new();
        for m in members.iter().filter(|m| m.id != leaving.id) {
            seen.push(state_of_c(m.gossip.members().await.unwrap()));
        }
        panic!("every peer shows c as left within a second; they show {seen:?}");
    }
}

//! Forwarding of names outside the domain: replies pass through verbatim over the client's
//! transport, `ZoneResolvers` pick the upstream by zone, and a dead upstream means SERVFAIL.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use serde_json::json;

use crate::support::*;

/// A stub upstream on loopback answering every A query with `answer`, over UDP and TCP.
struct Upstream {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Upstream {
    fn start(answer: Ipv4Addr) -> Self {
        let port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let stop = Arc::new(AtomicBool::new(false));
        let udp = UdpSocket::bind(addr).unwrap();
        udp.set_read_timeout(Some(std::time::Duration::from_millis(100)))
            .unwrap();
        let tcp = TcpListener::bind(addr).unwrap();
        tcp.set_nonblocking(true).unwrap();
        let s = stop.clone();
        std::thread::spawn(move || {
            let mut buf = [0; 4096];
            while !s.load(Ordering::Relaxed) {
                if let Ok((n, src)) = udp.recv_from(&mut buf) {
                    let _ = udp.send_to(&reply(&buf[..n], answer), src);
                }
                if let Ok((mut conn, _)) = tcp.accept() {
                    conn.set_nonblocking(false).unwrap();
                    let mut len = [0; 2];
                    if conn.read_exact(&mut len).is_ok() {
                        let mut q = vec![0; u16::from_be_bytes(len) as usize];
                        if conn.read_exact(&mut q).is_ok() {
                            let r = reply(&q, answer);
                            let mut out = (r.len() as u16).to_be_bytes().to_vec();
                            out.extend_from_slice(&r);
                            let _ = conn.write_all(&out);
                        }
                    }
                }
            }
        });
        Self { addr, stop }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn reply(query: &[u8], answer: Ipv4Addr) -> Vec<u8> {
    let q = Message::from_vec(query).unwrap();
    let mut r = Message::new(q.metadata.id, MessageType::Response, q.metadata.op_code);
    r.metadata.recursion_desired = q.metadata.recursion_desired;
    r.metadata.recursion_available = true;
    r.add_query(q.queries[0].clone());
    r.add_answer(Record::from_rdata(
        q.queries[0].name().clone(),
        42,
        RData::A(A(answer)),
    ));
    r.to_vec().unwrap()
}

#[test]
fn external_names_are_forwarded_verbatim_and_by_zone() {
    let default = Upstream::start(Ipv4Addr::new(192, 0, 2, 1));
    let corp = Upstream::start(Ipv4Addr::new(192, 0, 2, 2));
    let dead = free_port();
    let dir = TempDir::new("forward");
    let master = FakeMaster::start(
        &dir,
        &std::fs::read(conformance("fake-loopback-leader.json")).unwrap(),
    );
    let config = json!({
        "resolvers": [format!("127.0.0.1:{dead}"), default.addr.to_string()],
        "zoneResolvers": {"corp.example": [corp.addr.to_string()]},
        "timeout": 1,
    });
    let agent = Agent::start(&dir, config, master.addr);
    for ask in [Ask::UDP, Ask::TCP] {
        let r = query(agent.dns, "www.example.com.", RecordType::A, ask);
        assert_eq!(r.metadata.response_code, ResponseCode::NoError, "{ask:?}");
        assert!(r.metadata.recursion_available && !r.metadata.authoritative);
        assert_eq!(
            r.answers.iter().map(show).collect::<Vec<_>>(),
            vec!["www.example.com. 42 A 192.0.2.1"]
        );
        let r = query(agent.dns, "host.corp.example.", RecordType::A, ask);
        assert_eq!(
            r.answers.iter().map(show).collect::<Vec<_>>(),
            vec!["host.corp.example. 42 A 192.0.2.2"]
        );
    }
    // In-domain names never leave the agent.
    let r = query(agent.dns, "leader.mesos.", RecordType::A, Ask::UDP);
    assert!(r.metadata.authoritative);
}

#[test]
fn refused_when_external_is_off() {
    let dir = TempDir::new("noexternal");
    let master = FakeMaster::start(
        &dir,
        &std::fs::read(conformance("fake-loopback-leader.json")).unwrap(),
    );
    let agent = Agent::start(&dir, json!({"externalOn": false}), master.addr);
    let r = query(agent.dns, "www.example.com.", RecordType::A, Ask::UDP);
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
}

//! Bad input never costs answers: garbage state keeps the last good catalog, malformed and
//! oversized packets leave the server answering, and a server without a catalog says SERVFAIL,
//! never NXDOMAIN.

use std::net::UdpSocket;

use hickory_proto::op::{OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, RecordType};
use serde_json::json;

use crate::support::*;

fn fast_config() -> serde_json::Value {
    json!({"refreshSeconds": 1, "resolvers": ["127.0.0.1:9"], "timeout": 1})
}

fn leader_a(agent: &Agent) -> Vec<String> {
    let reply = query(agent.dns, "leader.mesos.", RecordType::A, Ask::UDP);
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    reply.answers.iter().map(show).collect()
}

fn failures(agent: &Agent) -> u64 {
    let text = http_get(agent.http, "/metrics").unwrap().text();
    let line = text
        .lines()
        .find(|l| l.starts_with("beacon_catalog_refresh_failures_total "))
        .unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn garbage_state_keeps_the_old_answers() {
    let dir = TempDir::new("garbage");
    let good = std::fs::read(conformance("fake-loopback-leader.json")).unwrap();
    // A master without the v1 API, so that the agent polls its state (a streaming master
    // sends events, never a state document; bad events are the decoder's tests).
    let master = FakeMaster::start_with(&dir, &good, &["--no-v1"]);
    let agent = Agent::start(&dir, fast_config(), master.addr);
    let before = leader_a(&agent);
    assert_eq!(before, vec!["leader.mesos. 60 A 127.0.0.1".to_string()]);
    let srv_before = query(
        agent.dns,
        "_liquor-store._tcp.marathon.mesos.",
        RecordType::SRV,
        Ask::TCP,
    )
    .answers
    .len();

    let bad_pid =
        String::from_utf8(good.clone())
            .unwrap()
            .replacen("scheduler(1)@1.2.3.11:25501", "", 1);
    let garbage: Vec<Vec<u8>> = vec![
        b"{not json".to_vec(),
        b"\x00\xff\xfe garbage".to_vec(),
        b"[]".to_vec(),
        b"{}".to_vec(),
        bad_pid.into_bytes(),
        br#"{"leader": "master@127.0.0.1:15050", "frameworks": {"not": "a list"}}"#.to_vec(),
    ];
    for body in garbage {
        let seen = failures(&agent);
        master.serve(&body);
        wait_until("a failed refresh", || failures(&agent) > seen);
        assert_eq!(
            leader_a(&agent),
            before,
            "after serving {:?}",
            String::from_utf8_lossy(&body)
        );
        let srv = query(
            agent.dns,
            "_liquor-store._tcp.marathon.mesos.",
            RecordType::SRV,
            Ask::TCP,
        );
        assert_eq!(srv.answers.len(), srv_before);
        assert_eq!(http_get(agent.http, "/readyz").unwrap().status, 200);
    }
}

#[test]
fn servfail_not_nxdomain_before_the_first_load() {
    let dir = TempDir::new("unready");
    let master = FakeMaster::start(&dir, b"{not json");
    let agent = Agent::start_unready(&dir, fast_config(), master.addr);
    let reply = query(agent.dns, "leader.mesos.", RecordType::A, Ask::UDP);
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(http_get(agent.http, "/readyz").unwrap().status, 503);
}

#[test]
fn malformed_and_oversized_packets_leave_the_server_answering() {
    let dir = TempDir::new("packets");
    let master = FakeMaster::start(
        &dir,
        &std::fs::read(conformance("fake-loopback-leader.json")).unwrap(),
    );
    let agent = Agent::start(&dir, fast_config(), master.addr);
    let valid = query_message("leader.mesos.", RecordType::A, Ask::UDP)
        .to_vec()
        .unwrap();
    let mut bad: Vec<Vec<u8>> = vec![
        vec![],
        vec![0],
        vec![0xff; 11],
        // Header claiming 5 questions and 65535 answers, nothing after it.
        vec![0x12, 0x34, 0x01, 0x00, 0x00, 0x05, 0xff, 0xff, 0, 0, 0, 0],
        // A question whose name is a compression pointer to itself.
        vec![
            0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1,
        ],
        // A label longer than the packet.
        vec![
            0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 63, b'a', b'b',
        ],
        vec![0xa5; 65_000],
    ];
    let mut truncated = valid.clone();
    truncated.truncate(valid.len() - 3);
    bad.push(truncated);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for packet in &bad {
        let _ = socket.send_to(packet, agent.dns);
        // Over TCP too, including a length prefix that promises more than is sent.
        let mut framed = (packet.len().min(65535) as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&packet[..packet.len().min(65535)]);
        let _ = exchange_raw_tcp(agent.dns, &framed);
    }
    let _ = exchange_raw_tcp(agent.dns, &[0xff, 0xff, 1, 2, 3]);
    assert_eq!(
        leader_a(&agent),
        vec!["leader.mesos. 60 A 127.0.0.1".to_string()]
    );
    let tcp = query(agent.dns, "leader.mesos.", RecordType::A, Ask::TCP);
    assert_eq!(tcp.answers.len(), 1);
}

fn exchange_raw_tcp(server: std::net::SocketAddr, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(server)?;
    s.set_read_timeout(Some(std::time::Duration::from_millis(300)))?;
    s.write_all(bytes)?;
    s.shutdown(std::net::Shutdown::Write)?;
    let mut sink = Vec::new();
    let _ = s.read_to_end(&mut sink);
    Ok(())
}

#[test]
fn header_fixes_notimp_refused_and_edns() {
    let dir = TempDir::new("header");
    let master = FakeMaster::start(
        &dir,
        &std::fs::read(conformance("fake-loopback-leader.json")).unwrap(),
    );
    let agent = Agent::start(&dir, fast_config(), master.addr);

    let mut status = query_message("leader.mesos.", RecordType::A, Ask::UDP);
    status.metadata.op_code = OpCode::Status;
    let reply = hickory_proto::op::Message::from_vec(
        &exchange(agent.dns, &status.to_vec().unwrap(), Transport::Udp).unwrap(),
    )
    .unwrap();
    assert_eq!(reply.metadata.response_code, ResponseCode::NotImp);

    let mut chaos = query_message("leader.mesos.", RecordType::A, Ask::UDP);
    chaos.queries[0].set_query_class(DNSClass::CH);
    let reply = hickory_proto::op::Message::from_vec(
        &exchange(agent.dns, &chaos.to_vec().unwrap(), Transport::Udp).unwrap(),
    )
    .unwrap();
    assert_eq!(reply.metadata.response_code, ResponseCode::Refused);

    // The client's EDNS size is echoed, capped at 1232.
    let big = query(
        agent.dns,
        "leader.mesos.",
        RecordType::A,
        Ask {
            transport: Transport::Udp,
            edns: Some(4096),
            rd: true,
        },
    );
    assert_eq!(big.edns.as_ref().map(|e| e.max_payload()), Some(1232));
    let none = query(agent.dns, "leader.mesos.", RecordType::A, Ask::UDP);
    assert!(none.edns.is_none());

    // Outside the domain with a dead upstream: SERVFAIL, not authoritative.
    let external = query(agent.dns, "example.com.", RecordType::A, Ask::UDP);
    assert_eq!(external.metadata.response_code, ResponseCode::ServFail);
    assert!(!external.metadata.authoritative);
}

/// A master that is not the leader names the leader; Beacon re-fetches from the leader's
/// address on the same port, as Mesos-DNS does.
#[test]
fn follows_the_leader_named_by_a_standby_master() {
    let dir = TempDir::new("leader");
    let port = free_port();
    let full = std::fs::read(conformance("fake-loopback-leader.json")).unwrap();
    let mut leader_state: serde_json::Value = serde_json::from_slice(&full).unwrap();
    leader_state["leader"] = format!("master@127.0.0.2:{port}").into();
    let standby_state =
        json!({"leader": format!("master@127.0.0.2:{port}"), "frameworks": [], "slaves": []});
    let _standby = FakeMaster::start_on(
        &dir,
        standby_state.to_string().as_bytes(),
        ([127, 0, 0, 1], port).into(),
    );
    let leader = FakeMaster::start_on(
        &dir,
        leader_state.to_string().as_bytes(),
        ([127, 0, 0, 2], port).into(),
    );
    let agent = Agent::start(&dir, fast_config(), ([127, 0, 0, 1], port).into());
    let reply = query(agent.dns, "leader.mesos.", RecordType::A, Ask::UDP);
    assert_eq!(
        reply.answers.iter().map(show).collect::<Vec<_>>(),
        vec!["leader.mesos. 60 A 127.0.0.2"]
    );
    let srv = query(
        agent.dns,
        "_liquor-store._tcp.marathon.mesos.",
        RecordType::SRV,
        Ask::TCP,
    );
    assert_eq!(srv.answers.len(), 4, "tasks come from the leader's state");
    drop(leader);
}

/// Answers repeated over UDP (served from the per-thread answer cache) still change when the
/// state does, and still come in varying orders.
#[test]
fn repeated_answers_follow_state_changes_and_keep_shuffling() {
    let dir = TempDir::new("cache");
    let good = std::fs::read(conformance("fake-loopback-leader.json")).unwrap();
    let master = FakeMaster::start(&dir, &good);
    let agent = Agent::start(&dir, fast_config(), master.addr);
    let srv = "_liquor-store._tcp.marathon.mesos.";
    let mut firsts = std::collections::BTreeSet::new();
    // Each thread's cache keeps 4 orders and refreshes one every 32 hits: 1,000 queries draw
    // about 35 orders per thread, so a record never first would be a (3/4)^35 fluke.
    for _ in 0..1000 {
        let reply = query(agent.dns, srv, RecordType::SRV, Ask::UDP);
        assert_eq!(reply.answers.len(), 4);
        firsts.insert(show(&reply.answers[0]));
    }
    assert_eq!(
        firsts.len(),
        4,
        "every record comes first sometimes: {firsts:?}"
    );

    let mut state: serde_json::Value = serde_json::from_slice(&good).unwrap();
    state["frameworks"]
        .as_array_mut()
        .unwrap()
        .retain(|f| f["name"] != "marathon");
    master.serve(state.to_string().as_bytes());
    wait_until("the marathon tasks disappear from DNS", || {
        query(
            agent.dns,
            "liquor-store.marathon.mesos.",
            RecordType::A,
            Ask::UDP,
        )
        .metadata
        .response_code
            == ResponseCode::NXDomain
    });
    assert!(
        query(agent.dns, srv, RecordType::SRV, Ask::UDP)
            .answers
            .is_empty()
    );
}

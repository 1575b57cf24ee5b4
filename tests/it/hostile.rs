//! DNS attacks against the real agent: a pile of idle TCP connections, and forwarding asked by
//! a client that is not on the node's networks.

use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::process::Stdio;
use std::time::Duration;

use beacon_test_support::netns::{Netns, tag, veth};
use beacon_test_support::privileged::require_root;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use serde_json::json;

use crate::support::*;

fn a_records(dns: SocketAddr, name: &str) -> Vec<String> {
    let reply = query(dns, name, RecordType::A, Ask::UDP);
    reply.answers.iter().map(show).collect()
}

/// A TCP query from 127.0.0.2, another client than the one holding the idle connections.
fn tcp_query_from_another_client(dns: SocketAddr, name: &str) -> std::io::Result<Message> {
    use std::io::{Read, Write};
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::from(([127, 0, 0, 2], 0)).into())?;
    socket.connect_timeout(&dns.into(), Duration::from_secs(2))?;
    let mut stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let msg = query_message(name, RecordType::A, Ask::TCP)
        .to_vec()
        .unwrap();
    let mut out = (msg.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&msg);
    stream.write_all(&out)?;
    let mut len = [0; 2];
    stream.read_exact(&mut len)?;
    let mut buf = vec![0; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf)?;
    Ok(Message::from_vec(&buf).unwrap())
}

/// 400 idle DNS-over-TCP connections, held open (reopened when closed), against an agent allowed 256 descriptors (a constrained
/// node; the caps bound the agent's use whatever its limit): the master poll still works (a
/// task renamed on the master is answered under its new name) and another client's TCP query
/// is answered. Today's agent took every connection, ran out of descriptors and its poll
/// failed.
#[test]
fn idle_tcp_connections_leave_the_agent_working() {
    let dir = TempDir::new("idletcp");
    let good = std::fs::read(conformance("fake-loopback-leader.json")).unwrap();
    let master = FakeMaster::start(&dir, &good);
    let config = json!({"refreshSeconds": 1, "resolvers": ["127.0.0.1:9"], "timeout": 1});
    let agent = Agent::start(&dir, config, master.addr);
    let status = std::process::Command::new("prlimit")
        .args(["--pid", &agent.pid().to_string(), "--nofile=256:256"])
        .status()
        .unwrap();
    assert!(status.success(), "prlimit");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attacker = hold_idle_connections(agent.dns, 400, stop.clone());
    let renamed = String::from_utf8(good)
        .unwrap()
        .replace("liquor.store", "fresh.store");
    master.serve(renamed.as_bytes());
    wait_until("the renamed task is answered", || {
        !a_records(agent.dns, "fresh-store.marathon.mesos.").is_empty()
    });
    let reply = tcp_query_from_another_client(agent.dns, "fresh-store.marathon.mesos.")
        .expect("another client's TCP query is answered");
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(!reply.answers.is_empty());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    attacker.join().unwrap();
}

/// Keeps `count` idle connections to `dns` open, as an attacker would: every one the server
/// closes is opened again, until `stop`.
fn hold_idle_connections(
    dns: SocketAddr,
    count: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut idle: Vec<TcpStream> = Vec::new();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            idle.retain(|s| {
                s.set_nonblocking(true).unwrap();
                !matches!(s.peek(&mut [0; 1]), Ok(0))
            });
            while idle.len() < count {
                match TcpStream::connect_timeout(&dns, Duration::from_millis(500)) {
                    Ok(s) => idle.push(s),
                    Err(_) => break,
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    })
}

/// A stub upstream answering every A query with 192.0.2.1, on a socket it is given.
fn serve_upstream(socket: UdpSocket) {
    std::thread::spawn(move || {
        let mut buf = [0; 4096];
        while let Ok((n, src)) = socket.recv_from(&mut buf) {
            let q = Message::from_vec(&buf[..n]).unwrap();
            let mut r = Message::new(q.metadata.id, MessageType::Response, q.metadata.op_code);
            r.add_query(q.queries[0].clone());
            let owner = q.queries[0].name().clone();
            r.add_answer(Record::from_rdata(
                owner,
                42,
                RData::A(A::new(192, 0, 2, 1)),
            ));
            let _ = socket.send_to(&r.to_vec().unwrap(), src);
        }
    });
}

/// [`query`] from the namespace's own address (the shared client binds 127.0.0.1 for UDP).
fn from_anywhere(server: SocketAddr, name: &str, qtype: RecordType, ask: Ask) -> Message {
    if ask.transport == Transport::Tcp {
        return query(server, name, qtype, ask);
    }
    let msg = query_message(name, qtype, ask);
    let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    socket.send_to(&msg.to_vec().unwrap(), server).unwrap();
    let mut buf = vec![0; 65535];
    let n = socket.recv(&mut buf).unwrap();
    let reply = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(reply.metadata.id, msg.metadata.id);
    reply
}

/// Spawns `beacon` with `args` inside `ns`.
fn spawn_in(ns: &Netns, args: &[&str]) -> Proc {
    let mut cmd = ns.command(env!("CARGO_BIN_EXE_beacon"));
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null());
    if std::env::var_os("BEACON_TEST_LOG").is_none() {
        cmd.stderr(Stdio::null());
    }
    Proc(cmd.spawn().unwrap())
}

const AGENT_ADDR: &str = "198.51.100.1";
const CLIENT_ADDR: &str = "203.0.113.2";

/// The agent, its fake master and its upstream run in one namespace; a client in another, on
/// an address outside every network the agent allows by default (not even its interfaces'),
/// asks it over a veth pair. It gets REFUSED for a name outside the domain and an answer for a
/// name inside; a local client still has the outside name forwarded. Today's agent forwarded
/// for anyone.
#[test]
#[cfg_attr(
    unprivileged,
    ignore = "needs root (network namespaces); runs under CI=true"
)]
fn forwarding_is_refused_to_clients_outside_forward_allow() {
    require_root("forwarding_is_refused_to_clients_outside_forward_allow");
    let t = tag();
    let (server, client) = (
        Netns::new(&format!("beacon-fs-{t}")),
        Netns::new(&format!("beacon-fc-{t}")),
    );
    veth(&server, "veth-s", &client, "veth-c");
    server.ip(&format!("addr add {AGENT_ADDR}/32 dev veth-s"));
    server.ip(&format!("route add {CLIENT_ADDR}/32 dev veth-s"));
    client.ip(&format!("addr add {CLIENT_ADDR}/32 dev veth-c"));
    client.ip(&format!("route add {AGENT_ADDR}/32 dev veth-c"));

    let dir = TempDir::new("forwardallow");
    let state = dir.path("state.json");
    std::fs::copy(conformance("fake-loopback-leader.json"), &state).unwrap();
    let (master_port, dns_port, http_port) = (free_port(), free_port(), free_port());
    let master: SocketAddr = ([127, 0, 0, 1], master_port).into();
    let state = state.to_str().unwrap().to_owned();
    let _master = spawn_in(
        &server,
        &[
            "fake-master",
            "--state",
            &state,
            "--listen",
            &master.to_string(),
        ],
    );
    let upstream = server.run(|| UdpSocket::bind("127.0.0.1:0").unwrap());
    let upstream_addr = upstream.local_addr().unwrap();
    serve_upstream(upstream);
    let toml = format!(
        "[mesos_dns]\nmasters = [\"{master}\"]\nlistener = \"0.0.0.0\"\nport = {dns_port}\n\
         http_listener = \"127.0.0.1\"\nhttp_port = {http_port}\nresolvers = [\"{upstream_addr}\"]\n\
         timeout = 1\n[vip]\ndata_plane = \"off\"\n"
    );
    let config = dir.path("agent.toml");
    std::fs::write(&config, toml).unwrap();
    let _agent = spawn_in(&server, &["agent", "--config", config.to_str().unwrap()]);
    let local: SocketAddr = ([127, 0, 0, 1], dns_port).into();
    wait_until("the agent answers its domain", || {
        server.run(|| {
            http_get(([127, 0, 0, 1], http_port).into(), "/readyz").is_ok_and(|r| r.status == 200)
        })
    });
    let local_reply = server.run(|| a_records(local, "www.example.com."));
    assert_eq!(local_reply, vec!["www.example.com. 42 A 192.0.2.1"]);

    let remote = SocketAddr::new(AGENT_ADDR.parse::<IpAddr>().unwrap(), dns_port);
    for ask in [Ask::UDP, Ask::TCP] {
        let query = |server, name, qtype, ask| from_anywhere(server, name, qtype, ask);
        let outside = client.run(|| query(remote, "www.example.com.", RecordType::A, ask));
        assert_eq!(
            outside.metadata.response_code,
            ResponseCode::Refused,
            "{ask:?}"
        );
        assert!(outside.answers.is_empty());
        let inside = client.run(|| query(remote, "leader.mesos.", RecordType::A, ask));
        assert_eq!(
            inside.metadata.response_code,
            ResponseCode::NoError,
            "{ask:?}"
        );
        assert_eq!(
            inside.answers.iter().map(show).collect::<Vec<_>>(),
            vec!["leader.mesos. 60 A 127.0.0.1"]
        );
    }
}

//! Attacks on the DNS server, tried as an attacker would, against real sockets on loopback:
//! a name with 100,000 addresses, a pile of idle TCP connections, and spoofed upstream replies.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use beacon_dns::forward::{ForwardConfig, Forwarded, Forwarder};
use beacon_dns::handler::{DnsHandler, HandlerSettings, SharedZone};
use beacon_dns::metrics::DnsMetrics;
use beacon_dns::records::RecordSet;
use beacon_dns::server::{DnsServer, ListenConfig, TcpLimits};
use beacon_dns::zone::{Zone, ZoneConfig};
use beacon_test_support::dns::{Ask, query, query_message};
use hickory_proto::op::{Message, MessageType, Query};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use indexmap::IndexSet;

const BIG: &str = "big.marathon.mesos.";

fn big_zone(n: u32) -> Zone {
    let mut records = RecordSet::default();
    let ips: IndexSet<Ipv4Addr> = (0..n).map(|i| Ipv4Addr::from(0x0a00_0000 + i)).collect();
    records.a.insert(BIG.into(), ips);
    Zone::new(&records, ZoneConfig::mesos_dns()).unwrap()
}

fn forwarder(resolvers: Vec<SocketAddr>, allow_all: bool) -> Forwarder {
    Forwarder::new(ForwardConfig {
        resolvers,
        zones: Vec::new(),
        timeout: Duration::from_millis(1500),
        enabled: true,
        max_inflight: 8,
        allow: if allow_all {
            vec!["0.0.0.0/0".parse().unwrap()]
        } else {
            Vec::new()
        },
    })
}

/// A server on 127.0.0.1 with one UDP socket (one answer cache), and its metrics registry. Its
/// upstream never answers, and no client may have names forwarded.
fn start(zone: Zone, tcp: TcpLimits) -> (DnsServer, prometheus::Registry) {
    let registry = prometheus::Registry::new();
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let upstream = silent.local_addr().unwrap();
    std::mem::forget(silent);
    let shared: SharedZone = Arc::new(ArcSwapOption::new(Some(Arc::new(zone))));
    let handler = DnsHandler::new(
        LowerName::new(&Name::from_ascii("mesos.").unwrap()),
        shared,
        forwarder(vec![upstream], false),
        HandlerSettings {
            recurse_on: true,
            set_truncate_bit: true,
            edns_max_payload: 1232,
        },
        DnsMetrics::new(&registry).unwrap(),
    );
    let listen = ListenConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        udp_sockets: 1,
        tcp,
        inherited: Default::default(),
    };
    (DnsServer::start(handler, &listen).unwrap(), registry)
}

const LIMITS: TcpLimits = TcpLimits {
    max_connections: 64,
    max_per_client: 8,
    idle_timeout: Duration::from_secs(30),
    query_timeout: Duration::from_secs(30),
};

fn counter(registry: &prometheus::Registry, name: &str, label: (&str, &str)) -> u64 {
    let family = registry.gather();
    let Some(f) = family.iter().find(|f| f.name() == name) else {
        return 0;
    };
    f.get_metric()
        .iter()
        .filter(|m| {
            m.get_label()
                .iter()
                .any(|l| l.name() == label.0 && l.value() == label.1)
        })
        .map(|m| m.get_counter().get_value() as u64)
        .sum()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn check_big_reply(reply: &Message, limit: usize) {
    assert!(reply.metadata.truncation, "TC must be set");
    assert!(!reply.answers.is_empty());
    assert!(reply.to_vec().unwrap().len() <= limit);
    for r in &reply.answers {
        let RData::A(a) = &r.data else {
            panic!("not an A: {r}")
        };
        assert!(
            u32::from(a.0) - 0x0a00_0000 < 100_000,
            "{a:?} was never registered"
        );
    }
}

/// One name with 100,000 addresses: the first UDP query of a shape builds the (truncated)
/// reply, every later one of the same shape is an answer-cache hit. Today's code never caches a
/// truncated reply, so every query rebuilt and re-encoded it.
#[test]
fn a_hundred_thousand_addresses_cost_a_cache_hit() {
    let rt = runtime();
    let (server, registry) = rt.block_on(async { start(big_zone(100_000), LIMITS) });
    let addr = server.local_addr();
    for (edns, limit) in [(None, 512), (Some(1232), 1232)] {
        let ask = Ask { edns, ..Ask::UDP };
        for _ in 0..10 {
            check_big_reply(&query(addr, BIG, RecordType::A, ask), limit);
        }
    }
    let hits = counter(
        &registry,
        "beacon_dns_answer_cache_total",
        ("result", "hit"),
    );
    let misses = counter(
        &registry,
        "beacon_dns_answer_cache_total",
        ("result", "miss"),
    );
    assert_eq!(
        (hits, misses),
        (18, 2),
        "one miss per query shape, then hits"
    );
    // TCP has no answer cache, but its work is bounded too: a sample, cut to 64 KiB.
    let reply = query(addr, BIG, RecordType::A, Ask::TCP);
    check_big_reply(&reply, 65535);
    rt.block_on(server.shutdown());
}

/// 400 idle connections from one client: past its cap they are closed at once, so the server
/// holds a bounded number of descriptors, and another client is still answered.
#[test]
fn idle_tcp_connections_are_capped() {
    let rt = runtime();
    let (server, registry) = rt.block_on(async { start(big_zone(3), LIMITS) });
    let addr = server.local_addr();
    let idle: Vec<TcpStream> = (0..400)
        .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok())
        .collect();
    // The connections past the cap are closed by the server: reading them ends at once.
    let mut closed = 0;
    for mut s in idle.iter().skip(LIMITS.max_per_client) {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        if matches!(s.read(&mut [0; 1]), Ok(0) | Err(_)) {
            closed += 1;
        }
    }
    assert_eq!(closed, 400 - LIMITS.max_per_client);
    let refused = counter(
        &registry,
        "beacon_dns_tcp_refused_total",
        ("cap", "per_client"),
    );
    assert_eq!(refused as usize, 400 - LIMITS.max_per_client);
    // Another client (127.0.0.2 is loopback too) gets its answer.
    let other = from_other_client(addr);
    assert_eq!(other.answers.len(), 3);
    drop(idle);
    rt.block_on(server.shutdown());
}

fn from_other_client(server: SocketAddr) -> Message {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 2], 0)).into())
        .unwrap();
    socket.connect(&server.into()).unwrap();
    let mut stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let msg = query_message(BIG, RecordType::A, Ask::TCP)
        .to_vec()
        .unwrap();
    let mut out = (msg.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&msg);
    std::io::Write::write_all(&mut stream, &out).unwrap();
    let mut len = [0; 2];
    stream.read_exact(&mut len).unwrap();
    let mut buf = vec![0; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).unwrap();
    Message::from_vec(&buf).unwrap()
}

/// A fake upstream on loopback that, for each query, first sends three forgeries (from another
/// port, with a wrong id, with another question), then the real reply from its own port.
fn spoofing_upstream() -> (SocketAddr, std::thread::JoinHandle<()>) {
    let upstream = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = upstream.local_addr().unwrap();
    let thread = std::thread::spawn(move || {
        let mut buf = [0; 512];
        let (n, client) = upstream.recv_from(&mut buf).unwrap();
        let query = Message::from_vec(&buf[..n]).unwrap();
        let reply = |id: u16, name: &str, ip: [u8; 4]| {
            let mut m = Message::new(id, MessageType::Response, query.metadata.op_code);
            m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
            let owner = Name::from_ascii(name).unwrap();
            m.add_answer(Record::from_rdata(
                owner,
                60,
                RData::A(Ipv4Addr::from(ip).into()),
            ));
            m.to_vec().unwrap()
        };
        let (id, asked) = (query.metadata.id, query.queries[0].name().to_string());
        let other_port = UdpSocket::bind("127.0.0.1:0").unwrap();
        other_port
            .send_to(&reply(id, &asked, [6, 6, 6, 1]), client)
            .unwrap();
        let forged = [
            reply(id.wrapping_add(1), &asked, [6, 6, 6, 2]),
            reply(id, "evil.example.", [6, 6, 6, 3]),
            reply(id, &asked, [192, 0, 2, 1]),
        ];
        for bytes in forged {
            upstream.send_to(&bytes, client).unwrap();
        }
    });
    (addr, thread)
}

/// Forged upstream replies (wrong port, wrong id, wrong question) are ignored and counted, and
/// the real one, arriving after them, is the answer. Today's code gave up on the first reply
/// with a wrong id, and took a reply to another question.
#[test]
fn spoofed_upstream_replies_are_ignored() {
    let rt = runtime();
    let (upstream, thread) = spoofing_upstream();
    let registry = prometheus::Registry::new();
    let metrics = DnsMetrics::new(&registry).unwrap();
    let fwd = forwarder(vec![upstream], true);
    let raw = query_message("www.example.", RecordType::A, Ask::UDP)
        .to_vec()
        .unwrap();
    let name = LowerName::new(&Name::from_ascii("www.example.").unwrap());
    let got = rt.block_on(fwd.forward(&name, &raw, false, &metrics));
    thread.join().unwrap();
    let Forwarded::Reply(reply) = got else {
        panic!("no reply: {got:?}")
    };
    assert_eq!(reply.answers.len(), 1);
    assert_eq!(
        reply.answers[0].data,
        RData::A(Ipv4Addr::new(192, 0, 2, 1).into())
    );
    let rejected = registry
        .gather()
        .iter()
        .find(|f| f.name() == "beacon_dns_upstream_replies_rejected_total")
        .map_or(0, |f| f.get_metric()[0].get_counter().get_value() as u64);
    // The reply from the wrong port never reaches the socket (it is connected to the upstream).
    assert_eq!(rejected, 2);
}

/// A client outside `forward_allow` is refused for names outside the domain and answered for
/// names inside it.
#[test]
fn forwarding_is_for_allowed_clients_only() {
    let rt = runtime();
    let (server, registry) = rt.block_on(async { start(big_zone(3), LIMITS) });
    let addr = server.local_addr();
    // The server's allow list is empty: 127.0.0.1 is not allowed either (allowed, it would get
    // SERVFAIL after the silent upstream's timeout).
    let outside = query(addr, "www.example.", RecordType::A, Ask::UDP);
    assert_eq!(
        outside.metadata.response_code,
        hickory_proto::op::ResponseCode::Refused
    );
    let inside = query(addr, BIG, RecordType::A, Ask::UDP);
    assert_eq!(inside.answers.len(), 3);
    let denied = counter(&registry, "beacon_dns_forwards_total", ("result", "denied"));
    assert_eq!(denied, 1);
    rt.block_on(server.shutdown());
}

//! Named-VIP names on the wire: queries encoded as a client sends them, answered by `DnsHandler`,
//! decoded as a client reads them. Forwarding is on, to a socket this test watches, to show that
//! l4lb names are answered here and never forwarded, whatever the zone holds.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use beacon_catalog::vip::VipName;
use beacon_dns::forward::{ForwardConfig, Forwarder};
use beacon_dns::handler::{DnsHandler, HandlerSettings, SharedZone};
use beacon_dns::l4lb::{L4LB_NEGATIVE_TTL, L4LB_TTL, PublishedVip};
use beacon_dns::metrics::DnsMetrics;
use beacon_dns::records::RecordSet;
use beacon_dns::zone::{Zone, ZoneConfig};
use beacon_test_support::capture::Capture;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{LowerName, Name, RData, RecordType};
use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler};

struct Server {
    handler: DnsHandler,
    /// The upstream resolver forwarding goes to.
    upstream: UdpSocket,
    runtime: tokio::runtime::Runtime,
}

impl Server {
    fn new(zone: Option<Zone>) -> Self {
        let upstream = UdpSocket::bind("127.0.0.1:0").unwrap();
        upstream.set_nonblocking(true).unwrap();
        let forwarder = Forwarder::new(ForwardConfig {
            resolvers: vec![upstream.local_addr().unwrap()],
            zones: Vec::new(),
            timeout: Duration::from_millis(20),
            enabled: true,
            max_inflight: 4,
            allow: vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()],
        });
        let shared: SharedZone = Arc::new(ArcSwapOption::new(zone.map(Arc::new)));
        let handler = DnsHandler::new(
            LowerName::new(&Name::from_ascii("mesos.").unwrap()),
            shared,
            forwarder,
            HandlerSettings {
                recurse_on: true,
                set_truncate_bit: true,
                edns_max_payload: 1232,
            },
            DnsMetrics::new(&prometheus::Registry::new()).unwrap(),
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Self {
            handler,
            upstream,
            runtime,
        }
    }

    fn ask(&self, name: &str, qtype: RecordType) -> Message {
        let mut query = Message::new(0x4242, MessageType::Query, OpCode::Query);
        query.metadata.recursion_desired = true;
        query.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        let src: SocketAddr = "192.0.2.7:5353".parse().unwrap();
        let request = Request::from_bytes(query.to_vec().unwrap(), src, Protocol::Udp).unwrap();
        let capture = Capture::new(Protocol::Udp);
        self.runtime.block_on(
            self.handler
                .handle_request::<_, TokioTime>(&request, capture.clone()),
        );
        capture.message()
    }

    /// How many queries reached the upstream resolver since the last call.
    fn forwarded(&self) -> usize {
        let mut buf = [0u8; 1500];
        let mut count = 0;
        while self.upstream.recv_from(&mut buf).is_ok() {
            count += 1;
        }
        count
    }
}

fn zone_config() -> ZoneConfig {
    ZoneConfig {
        serial: 7,
        ..ZoneConfig::mesos_dns()
    }
}

fn zone_with(vips: &[PublishedVip]) -> Zone {
    Zone::new(&RecordSet::default(), zone_config())
        .unwrap()
        .with_vips(vips)
}

fn web() -> PublishedVip {
    PublishedVip {
        name: VipName::new("/web", "marathon").unwrap(),
        v4: Some(Ipv4Addr::new(11, 165, 255, 103)),
        v6: Some("fd01:c::75e6:6466:d5fa:b369".parse().unwrap()),
    }
}

#[test]
fn vip_names_answer_authoritatively_under_every_alias() {
    let server = Server::new(Some(zone_with(&[web()])));
    for name in [
        "web.marathon.l4lb.thisdcos.directory.",
        "web.marathon.l4lb.thisdcos.global.",
        "Web.Marathon.DCLB.thisdcos.directory.",
        "web.marathon.dclb.thisdcos.global.",
    ] {
        let reply = server.ask(name, RecordType::A);
        assert_eq!(reply.metadata.id, 0x4242);
        assert!(reply.metadata.authoritative, "{name}");
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert_eq!(reply.answers.len(), 1, "{name}");
        let answer = &reply.answers[0];
        assert_eq!(answer.name.to_ascii(), name);
        assert_eq!(answer.ttl, L4LB_TTL);
        assert_eq!(
            answer.data,
            RData::A(Ipv4Addr::new(11, 165, 255, 103).into())
        );
        let reply = server.ask(name, RecordType::AAAA);
        assert!(matches!(reply.answers[0].data, RData::AAAA(_)));
    }
    assert_eq!(server.forwarded(), 0);
}

#[test]
fn missing_vip_names_are_nxdomain_with_the_soa_and_not_forwarded() {
    let server = Server::new(Some(zone_with(&[web()])));
    let reply = server.ask("db.marathon.l4lb.thisdcos.directory.", RecordType::A);
    assert!(reply.metadata.authoritative);
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    assert!(reply.answers.is_empty());
    let soa = &reply.authorities[0];
    assert_eq!(soa.name.to_ascii(), "l4lb.thisdcos.directory.");
    match &soa.data {
        RData::SOA(soa) => assert_eq!(soa.minimum, L4LB_NEGATIVE_TTL),
        other => panic!("not an SOA: {other:?}"),
    }
    // NODATA: the name exists, with no record of this type; so does the framework's name.
    for (name, qtype) in [
        ("web.marathon.l4lb.thisdcos.directory.", RecordType::TXT),
        ("marathon.l4lb.thisdcos.global.", RecordType::A),
    ] {
        let reply = server.ask(name, qtype);
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NoError,
            "{name}"
        );
        assert!(reply.answers.is_empty() && !reply.authorities.is_empty());
    }
    assert_eq!(server.forwarded(), 0);
    // The check above can fail: a name outside every zone does reach the upstream.
    server.ask("example.com.", RecordType::A);
    assert_eq!(server.forwarded(), 1);
}

#[test]
fn with_the_data_plane_off_every_vip_name_is_nxdomain() {
    let server = Server::new(Some(zone_with(&[])));
    let reply = server.ask("web.marathon.l4lb.thisdcos.directory.", RecordType::A);
    assert!(reply.metadata.authoritative);
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    let apex = server.ask("l4lb.thisdcos.directory.", RecordType::SOA);
    assert_eq!(apex.metadata.response_code, ResponseCode::NoError);
    assert!(matches!(apex.answers[0].data, RData::SOA(_)));
    assert_eq!(server.forwarded(), 0);
}

#[test]
fn before_the_first_load_vip_names_fail_rather_than_forward() {
    let server = Server::new(None);
    let reply = server.ask("web.marathon.l4lb.thisdcos.directory.", RecordType::A);
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(server.forwarded(), 0);
}

#[test]
fn publishing_vips_keeps_the_mesos_answers() {
    let catalog = beacon_catalog::mesos::parse_state(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/conformance/mesos-dns/fake.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let records = beacon_dns::records::generate(
        &catalog,
        &beacon_dns::records::GeneratorConfig {
            domain: "mesos".into(),
            spec: beacon_dns::labels::LabelSpec::Rfc1123,
            ip_sources: vec![
                beacon_dns::records::IpSource::Netinfo,
                beacon_dns::records::IpSource::Mesos,
                beacon_dns::records::IpSource::Host,
            ],
            masters: vec!["1.2.3.4:5050".into()],
            ns_name: "ns1.mesos.".into(),
            ns_ips: Vec::new(),
            enumerate: false,
            healthy_only: false,
        },
    );
    let zone = Zone::new(&records, zone_config()).unwrap();
    let with = zone.with_vips(&[web()]);
    let server = Server::new(Some(with));
    let mesos = server.ask("liquor-store.marathon.mesos.", RecordType::A);
    assert_eq!(mesos.answers.len(), 2);
    let vip = server.ask("web.marathon.l4lb.thisdcos.directory.", RecordType::A);
    assert_eq!(vip.answers.len(), 1);
}

use beacon_catalog::vip::VipName;
use hickory_proto::rr::RData;
use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::*;
use crate::records::RecordSet;
use crate::zone::{Zone, ZoneConfig};

fn config() -> ZoneConfig {
    ZoneConfig {
        serial: 7,
        ..ZoneConfig::mesos_dns()
    }
}

fn vip(name: &str, framework: &str, v4: Option<&str>, v6: Option<&str>) -> PublishedVip {
    PublishedVip {
        name: VipName::new(name, framework).unwrap(),
        v4: v4.map(|s| s.parse().unwrap()),
        v6: v6.map(|s| s.parse().unwrap()),
    }
}

fn zone(vips: &[PublishedVip]) -> Zone {
    Zone::new(&RecordSet::default(), config())
        .unwrap()
        .with_vips(vips)
}

fn ask<'z>(zone: &'z Zone, name: &str, qtype: RecordType) -> Answer<'z> {
    zone.answer(
        &Name::from_ascii(name).unwrap(),
        qtype,
        &mut SmallRng::seed_from_u64(1),
    )
}

fn sample() -> Zone {
    zone(&[
        vip("/web", "marathon", Some("11.1.2.3"), Some("fd01:c::1")),
        vip("/mygroup/db", "marathon", Some("11.4.5.6"), None),
        vip("broker", "confluent.kafka", None, Some("fd01:c::2")),
        vip("none", "marathon", None, None),
    ])
}

#[test]
fn names_and_aliases_answer_a_and_aaaa() {
    let z = sample();
    for name in [
        "web.marathon.l4lb.thisdcos.directory.",
        "WEB.Marathon.l4lb.thisdcos.directory.",
        "web.marathon.l4lb.thisdcos.global.",
        "web.marathon.dclb.thisdcos.directory.",
        "web.marathon.dclb.thisdcos.global.",
    ] {
        let a = ask(&z, name, RecordType::A);
        assert_eq!(a.rcode, ResponseCode::NoError, "{name}");
        assert_eq!(a.answers.len(), 1, "{name}");
        assert_eq!(a.answers[0].name.to_string(), name, "owned by the question");
        assert_eq!(a.answers[0].ttl, L4LB_TTL);
        assert!(matches!(a.answers[0].data, RData::A(A(ip)) if ip == Ipv4Addr::new(11, 1, 2, 3)));
        let aaaa = ask(&z, name, RecordType::AAAA);
        assert!(matches!(aaaa.answers[0].data, RData::AAAA(AAAA(ip)) if ip.segments()[7] == 1));
        assert_eq!(ask(&z, name, RecordType::ANY).answers.len(), 2);
    }
    let db = ask(
        &z,
        "mygroupdb.marathon.l4lb.thisdcos.directory.",
        RecordType::A,
    );
    assert_eq!(db.answers.len(), 1);
    let broker = ask(
        &z,
        "broker.confluent.kafka.l4lb.thisdcos.directory.",
        RecordType::AAAA,
    );
    assert_eq!(broker.answers.len(), 1);
}

#[test]
fn nodata_nxdomain_and_the_soa() {
    let z = sample();
    // A VIP with only IPv4 backends: AAAA is NODATA.
    let nodata = ask(
        &z,
        "mygroupdb.marathon.l4lb.thisdcos.directory.",
        RecordType::AAAA,
    );
    assert_eq!(
        (nodata.rcode, nodata.answers.len()),
        (ResponseCode::NoError, 0)
    );
    let soa = &nodata.authority[0];
    assert_eq!(soa.name.to_string(), "l4lb.thisdcos.directory.");
    assert!(matches!(&soa.data, RData::SOA(s) if s.minimum == L4LB_NEGATIVE_TTL && s.serial == 7));
    // Names between the apex and a VIP exist (NODATA), others do not.
    for name in [
        "marathon.l4lb.thisdcos.directory.",
        "kafka.l4lb.thisdcos.directory.",
        "confluent.kafka.dclb.thisdcos.global.",
        "l4lb.thisdcos.directory.",
    ] {
        assert_eq!(
            ask(&z, name, RecordType::A).rcode,
            ResponseCode::NoError,
            "{name}"
        );
    }
    for name in [
        "nope.marathon.l4lb.thisdcos.directory.",
        "none.marathon.l4lb.thisdcos.directory.",
        "x.web.marathon.l4lb.thisdcos.directory.",
        "web.other.l4lb.thisdcos.directory.",
    ] {
        let nx = ask(&z, name, RecordType::A);
        assert_eq!(nx.rcode, ResponseCode::NXDomain, "{name}");
        assert!(matches!(nx.authority[0].data, RData::SOA(_)));
    }
    // An alias answers with its own apex's SOA.
    let nx = ask(&z, "nope.marathon.dclb.thisdcos.global.", RecordType::A);
    assert_eq!(nx.authority[0].name.to_string(), "dclb.thisdcos.global.");
}

#[test]
fn apexes_answer_soa_and_ns() {
    let z = zone(&[]);
    for apex in L4LB_ZONES {
        let soa = ask(&z, apex, RecordType::SOA);
        assert!(matches!(soa.answers[0].data, RData::SOA(_)), "{apex}");
        let ns = ask(&z, apex, RecordType::NS);
        assert!(
            matches!(&ns.answers[0].data, RData::NS(NS(t)) if t.to_string() == "ns1.mesos."),
            "{apex}"
        );
    }
}

#[test]
fn without_vips_every_name_is_nxdomain() {
    let z = Zone::new(&RecordSet::default(), config()).unwrap();
    let nx = ask(&z, "web.marathon.l4lb.thisdcos.directory.", RecordType::A);
    assert_eq!(nx.rcode, ResponseCode::NXDomain);
    let name = LowerName::new(&Name::from_ascii("web.marathon.l4lb.thisdcos.global.").unwrap());
    assert!(z.contains(&name) && covers(&name));
    let outside = LowerName::new(&Name::from_ascii("thisdcos.directory.").unwrap());
    assert!(!covers(&outside) && !z.contains(&outside));
}

#[test]
fn alias_names_too_long_for_the_canonical_zone_are_nxdomain() {
    let z = sample();
    // 252 characters here; 255 under l4lb.thisdcos.directory, one more than a name can hold.
    let prefix = [
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(30),
    ]
    .join(".");
    let long = format!("{prefix}.marathon.l4lb.thisdcos.global.");
    assert_eq!(long.len(), 253);
    let nx = ask(&z, &long, RecordType::A);
    assert_eq!(nx.rcode, ResponseCode::NXDomain);
}

#[test]
fn published_vips_split_families_by_backend() {
    use beacon_catalog::vip::{Backend, Protocol, VipAddress, VipKey, VipTable};
    let backend = |ip: &str| Backend {
        ip: ip.parse().unwrap(),
        port: 80,
        weight: 1,
        node: "n1".into(),
        agent_ip: None,
    };
    let key = |name: &str, protocol, port| VipKey {
        protocol,
        address: VipAddress::Named(VipName::new(name, "marathon").unwrap()),
        port,
    };
    let mut table = VipTable::default();
    table
        .vips
        .insert(key("web", Protocol::Tcp, 80), vec![backend("10.0.0.1")]);
    table
        .vips
        .insert(key("web", Protocol::Udp, 53), vec![backend("fd00::1")]);
    table
        .vips
        .insert(key("db", Protocol::Tcp, 5432), vec![backend("10.0.0.2")]);
    table.vips.insert(
        VipKey {
            protocol: Protocol::Tcp,
            address: VipAddress::Ip("10.9.9.9".parse().unwrap()),
            port: 80,
        },
        vec![backend("10.0.0.3")],
    );
    let addresses = table.named_addresses();
    let published = published_vips(&table, &addresses);
    let web = VipName::new("web", "marathon").unwrap();
    let db = VipName::new("db", "marathon").unwrap();
    assert_eq!(
        published,
        [
            PublishedVip {
                name: db.clone(),
                v4: Some(db.home_v4()),
                v6: None,
            },
            PublishedVip {
                name: web.clone(),
                v4: Some(web.home_v4()),
                v6: Some(web.home_v6()),
            },
        ]
    );
    let z = zone(&published);
    assert_eq!(
        ask(&z, "db.marathon.l4lb.thisdcos.directory.", RecordType::A)
            .answers
            .len(),
        1
    );
}

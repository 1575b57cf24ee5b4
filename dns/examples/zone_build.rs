//! Times record generation and zone building for a Mesos state file:
//! `cargo run --release -p beacon-dns --example zone_build -- state.json`
//! (make one with `bench/gen_state.py --tasks 10000`).

use std::time::Instant;

use beacon_dns::labels::LabelSpec;
use beacon_dns::records::{GeneratorConfig, IpSource, generate};
use beacon_dns::zone::{Zone, ZoneConfig};

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: zone_build STATE.json");
    let body = std::fs::read(path).expect("read the state");
    let catalog = beacon_catalog::mesos::parse_state(&body).expect("a valid state");
    let config = GeneratorConfig {
        domain: "mesos".into(),
        spec: LabelSpec::Rfc1123,
        ip_sources: vec![IpSource::Netinfo, IpSource::Mesos, IpSource::Host],
        masters: Vec::new(),
        ns_name: "ns1.mesos.".into(),
        ns_ips: Vec::new(),
        enumerate: false,
        healthy_only: false,
    };
    for round in 0..5 {
        let t = Instant::now();
        let records = generate(&catalog, &config);
        let generated = t.elapsed();
        let t = Instant::now();
        let zone = Zone::new(&records, zone_config()).expect("a zone");
        let built = t.elapsed();
        println!(
            "round {round}: {} records, generate {generated:?}, zone {built:?} ({} skipped)",
            records.counts().iter().sum::<usize>(),
            zone.skipped()
        );
    }
}

fn zone_config() -> ZoneConfig {
    ZoneConfig {
        serial: 1,
        apex_nodata: true,
        ..ZoneConfig::mesos_dns()
    }
}

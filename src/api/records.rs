//! `GET /v1/records`: every record this node serves, in dcos-net's shape (`research/dcos-net.md`
//! §4.1): a JSON array of `{"name", "host", "rtype"}`, `rtype` being `A`, `AAAA` or `SRV` and an
//! SRV's `host` being `target:port`. Names are written as dcos-net wrote them, without the final
//! dot.
//!
//! "Serves" is what DNS answers, not what was generated: names DNS cannot serve (upper case, a
//! label over 63 octets) are left out as the zone leaves them out, and named VIPs are listed only
//! once the data plane has programmed them (the zone names nothing earlier), under the canonical
//! l4lb zone and each alias the DNS server answers for.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use beacon_dns::l4lb::{L4LB_ZONES, published_vips};
use beacon_dns::records::RecordSet;
use serde::Serialize;

use super::ApiState;
use crate::publish::vips::VipState;

pub(super) fn routes() -> Router<ApiState> {
    Router::new().route("/v1/records", get(records))
}

#[derive(Serialize, Debug, PartialEq)]
struct Record {
    name: String,
    host: String,
    rtype: &'static str,
}

async fn records(State(state): State<ApiState>) -> Response {
    let published = state.current.published.load_full();
    let vips = state.publisher.vips().state();
    // Tens of thousands of records take milliseconds to list: off the async workers.
    let job = tokio::task::spawn_blocking(move || {
        let mut out = published
            .map(|p| mesos_records(&p.records))
            .unwrap_or_default();
        out.extend(vip_records(&vips));
        out
    });
    match job.await {
        Ok(out) => axum::Json(out).into_response(),
        Err(_) => super::text(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    }
}

/// The Mesos-DNS records the zone serves: A, then AAAA, then SRV, each in generation order.
fn mesos_records(records: &RecordSet) -> Vec<Record> {
    let mut out = Vec::with_capacity(records.a.len() + records.srv.len());
    let record = |name: &str, host: String, rtype| Record {
        name: name.trim_end_matches('.').to_string(),
        host,
        rtype,
    };
    for (name, ips) in records.a.iter().filter(|(n, _)| servable(n)) {
        out.extend(ips.iter().map(|ip| record(name, ip.to_string(), "A")));
    }
    for (name, ips) in records.aaaa.iter().filter(|(n, _)| servable(n)) {
        out.extend(ips.iter().map(|ip| record(name, ip.to_string(), "AAAA")));
    }
    for (name, srvs) in records.srv.iter().filter(|(n, _)| servable(n)) {
        let servable_targets = srvs.iter().filter(|s| servable(&s.target));
        out.extend(servable_targets.map(|s| {
            let target = s.target.trim_end_matches('.');
            record(name, format!("{target}:{}", s.port), "SRV")
        }));
    }
    out
}

/// Whether the zone can hold `name`: the same test it applies when it indexes the records.
fn servable(name: &str) -> bool {
    !name.bytes().any(|b| b.is_ascii_uppercase())
        && hickory_proto::rr::Name::from_ascii(name).is_ok()
}

/// The A and AAAA records of the named VIPs the data plane has programmed, in every l4lb zone.
fn vip_records(state: &VipState) -> Vec<Record> {
    let mut programmed = state.table.clone();
    programmed
        .vips
        .retain(|key, _| state.programmed.contains(key));
    let mut out = Vec::new();
    for vip in published_vips(&programmed, &state.addresses) {
        for zone in L4LB_ZONES {
            let name = vip.name.fqdn_in(zone.trim_end_matches('.'));
            let name = name.trim_end_matches('.');
            let v4 = vip.v4.map(|ip| (ip.to_string(), "A"));
            let v6 = vip.v6.map(|ip| (ip.to_string(), "AAAA"));
            out.extend(v4.into_iter().chain(v6).map(|(host, rtype)| Record {
                name: name.to_string(),
                host,
                rtype,
            }));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use beacon_dns::records::Srv;

    #[test]
    fn records_are_listed_as_dcos_net_did_without_unservable_names() {
        let mut set = RecordSet::default();
        set.a
            .entry("web.marathon.mesos.".into())
            .or_default()
            .insert("10.0.0.1".parse().unwrap());
        set.a
            .entry("Upper.marathon.mesos.".into())
            .or_default()
            .insert("10.0.0.2".parse().unwrap());
        set.srv
            .entry("_web._tcp.marathon.mesos.".into())
            .or_default()
            .insert(Srv {
                target: "web-abcde-s1.marathon.mesos.".into(),
                port: 31000,
            });
        let out = mesos_records(&set);
        let want = |name: &str, host: &str, rtype| Record {
            name: name.into(),
            host: host.into(),
            rtype,
        };
        assert_eq!(
            out,
            vec![
                want("web.marathon.mesos", "10.0.0.1", "A"),
                want(
                    "_web._tcp.marathon.mesos",
                    "web-abcde-s1.marathon.mesos:31000",
                    "SRV"
                ),
            ]
        );
    }
}

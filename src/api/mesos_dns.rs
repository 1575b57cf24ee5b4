//! The Mesos-DNS HTTP endpoints, with its JSON shapes and its conventions: names are
//! lower-cased, `.*` removed and a trailing dot added; nothing found is still HTTP 200 with one
//! all-empty element.

use std::collections::BTreeMap;
use std::net::IpAddr;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use beacon_dns::records::RecordSet;
use serde::Serialize;

use super::{ApiState, go_json};

pub(super) fn routes(enumeration: bool) -> Router<ApiState> {
    let router = Router::new()
        .route("/v1/version", get(version))
        .route("/v1/config", get(config))
        .route("/v1/hosts/{host}", get(hosts))
        .route("/v1/hosts/{host}/ports", get(host_ports))
        .route("/v1/services/{service}", get(services));
    match enumeration {
        true => router
            .route("/v1/enumerate", get(enumerate))
            .route("/v1/axfr", get(axfr)),
        false => router,
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Version {
    service: &'static str,
    #[serde(rename = "URL")]
    url: &'static str,
    version: &'static str,
}

async fn version() -> Response {
    go_json(&Version {
        service: "Mesos-DNS",
        url: "https://github.com/mesosphere/mesos-dns",
        version: concat!("beacon-", env!("CARGO_PKG_VERSION")),
    })
}

/// The Mesos-DNS configuration with Go field names, secrets redacted.
async fn config(State(state): State<ApiState>) -> Response {
    let mut m = state.config.mesos_dns.clone();
    if let Some(p) = state.current.published.load().as_ref() {
        m.soa_serial = p.serial;
    }
    (
        [(header::CONTENT_TYPE, "application/json")],
        m.to_api_json_string(),
    )
        .into_response()
}

#[derive(Serialize, Default)]
struct Host {
    host: String,
    ip: String,
}

async fn hosts(State(state): State<ApiState>, Path(host): Path<String>) -> Response {
    let name = normalise(&host);
    let published = state.current.published.load();
    let mut out: Vec<Host> = match published.as_ref() {
        Some(p) => addresses(&p.records, &name)
            .map(|ip| Host {
                host: name.clone(),
                ip: ip.to_string(),
            })
            .collect(),
        None => Vec::new(),
    };
    if out.is_empty() {
        out.push(Host::default());
    }
    go_json(&out)
}

#[derive(Serialize, Default)]
struct Service {
    service: String,
    host: String,
    ip: String,
    port: String,
}

async fn services(State(state): State<ApiState>, Path(service): Path<String>) -> Response {
    let name = normalise(&service);
    let published = state.current.published.load();
    let mut out = Vec::new();
    if let Some(srvs) = published
        .as_ref()
        .and_then(|p| p.records.srv.get(&name).map(|s| (p, s)))
    {
        let (p, srvs) = srvs;
        for srv in srvs {
            // One entry for the target's first A and one for its first AAAA.
            let first_a = p
                .records
                .a
                .get(&srv.target)
                .and_then(|s| s.first())
                .map(|ip| IpAddr::V4(*ip));
            let first_aaaa = p
                .records
                .aaaa
                .get(&srv.target)
                .and_then(|s| s.first())
                .map(|ip| IpAddr::V6(*ip));
            for ip in first_a.into_iter().chain(first_aaaa) {
                out.push(Service {
                    service: service.clone(),
                    host: srv.target.clone(),
                    ip: ip.to_string(),
                    port: srv.port.to_string(),
                });
            }
        }
    }
    if out.is_empty() {
        out.push(Service::default());
    }
    go_json(&out)
}

#[derive(Serialize, Default)]
struct HostPort {
    service: String,
    host: String,
    port: String,
}

/// The SRV records that point at `host`: which services it serves on which ports. Mesos-DNS
/// answered 501 here.
async fn host_ports(State(state): State<ApiState>, Path(host): Path<String>) -> Response {
    let name = normalise(&host);
    let published = state.current.published.load();
    let mut out = Vec::new();
    if let Some(p) = published.as_ref() {
        for (service, srvs) in &p.records.srv {
            for srv in srvs.iter().filter(|s| s.target == name) {
                out.push(HostPort {
                    service: service.clone(),
                    host: name.clone(),
                    port: srv.port.to_string(),
                });
            }
        }
    }
    if out.is_empty() {
        out.push(HostPort::default());
    }
    go_json(&out)
}

#[derive(Serialize)]
struct Enumeration {
    frameworks: Vec<EnumFramework>,
}

#[derive(Serialize)]
struct EnumFramework {
    tasks: Vec<EnumTask>,
    name: String,
}

#[derive(Serialize)]
struct EnumTask {
    name: String,
    id: String,
    records: Vec<EnumRecord>,
}

#[derive(Serialize)]
struct EnumRecord {
    name: String,
    host: String,
    rtype: &'static str,
}

async fn enumerate(State(state): State<ApiState>) -> Response {
    let published = state.current.published.load_full();
    let publisher = state.publisher.clone();
    let job = tokio::task::spawn_blocking(move || {
        published
            .map(|p| publisher.enumeration(&p.catalog))
            .unwrap_or_default()
    });
    let Ok(enumeration) = job.await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "enumeration failed").into_response();
    };
    let frameworks = enumeration
        .into_iter()
        .map(|f| EnumFramework {
            name: f.name,
            tasks: f
                .tasks
                .into_iter()
                .map(|t| EnumTask {
                    name: t.name,
                    id: t.id,
                    records: t
                        .records
                        .into_iter()
                        .map(|r| EnumRecord {
                            name: r.name,
                            host: r.host,
                            rtype: r.rtype,
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect();
    go_json(&Enumeration { frameworks })
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Axfr {
    #[serde(rename = "TTL")]
    ttl: u32,
    serial: u32,
    refresh_seconds: u64,
    mname: String,
    rname: String,
    domain: String,
    records: AxfrRecords,
}

#[derive(Serialize)]
struct AxfrRecords {
    #[serde(rename = "As")]
    a: BTreeMap<String, Vec<String>>,
    #[serde(rename = "AAAAs")]
    aaaa: BTreeMap<String, Vec<String>>,
    #[serde(rename = "SRVs")]
    srv: BTreeMap<String, Vec<String>>,
}

async fn axfr(State(state): State<ApiState>) -> Response {
    let m = &state.config.mesos_dns;
    let published = state.current.published.load();
    let Some(p) = published.as_ref() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting for the first catalog load",
        )
            .into_response();
    };
    fn strings<V: ToString>(
        m: &beacon_dns::records::RecordMap<V>,
    ) -> BTreeMap<String, Vec<String>> {
        m.iter()
            .map(|(k, vs)| (k.clone(), vs.iter().map(V::to_string).collect()))
            .collect()
    }
    go_json(&Axfr {
        ttl: m.ttl,
        serial: p.serial,
        refresh_seconds: m.refresh_seconds,
        mname: m.soa_mname.clone(),
        rname: m.soa_rname.clone(),
        domain: m.domain.clone(),
        records: AxfrRecords {
            a: strings(&p.records.a),
            aaaa: strings(&p.records.aaaa),
            srv: strings(&p.records.srv),
        },
    })
}

/// A and then AAAA values of `name`.
fn addresses<'r>(records: &'r RecordSet, name: &str) -> impl Iterator<Item = IpAddr> + 'r {
    let v4 = records
        .a
        .get(name)
        .into_iter()
        .flatten()
        .map(|ip| IpAddr::V4(*ip));
    let v6 = records
        .aaaa
        .get(name)
        .into_iter()
        .flatten()
        .map(|ip| IpAddr::V6(*ip));
    v4.chain(v6)
}

/// Lower-cased, `.*` removed, trailing dot added.
fn normalise(name: &str) -> String {
    let mut n = name.to_lowercase().replace(".*", "");
    if !n.ends_with('.') {
        n.push('.');
    }
    n
}

//! The HTTP API against Mesos-DNS's own replies (`conformance/mesos-dns/http/scenario-A`), up to
//! ordering, plus Beacon's additions.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::*;

fn reference(name: &str) -> Value {
    let path = conformance(&format!("http/scenario-A/{name}.body"));
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// JSON arrays compared as multisets, recursively.
fn canonical(v: &Value) -> Value {
    match v {
        Value::Array(items) => {
            let mut items: Vec<Value> = items.iter().map(canonical).collect();
            items.sort_by_key(|i| i.to_string());
            Value::Array(items)
        }
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), canonical(v))).collect())
        }
        other => other.clone(),
    }
}

fn start() -> (TempDir, FakeMaster, Agent) {
    let dir = TempDir::new("api");
    let master = FakeMaster::start(
        &dir,
        &std::fs::read(conformance("fake-loopback-leader.json")).unwrap(),
    );
    let config: Value =
        serde_json::from_slice(&std::fs::read(conformance("config-A-defaults.json")).unwrap())
            .unwrap();
    let agent = Agent::start(&dir, config, master.addr);
    (dir, master, agent)
}

#[test]
fn mesos_dns_endpoints_match_up_to_ordering() {
    let (_dir, _master, agent) = start();
    for (path, file) in [
        (
            "/v1/hosts/liquor-store.marathon.mesos",
            "v1_hosts_liquor-store.marathon.mesos",
        ),
        (
            "/v1/hosts/LIQUOR-STORE.marathon.mesos.",
            "v1_hosts_LIQUOR-STORE.marathon.mesos.",
        ),
        ("/v1/hosts/missing.mesos", "v1_hosts_missing.mesos"),
        ("/v1/hosts/example.com", "v1_hosts_example.com"),
        (
            "/v1/hosts/toy-store.ipv6-framework.mesos",
            "v1_hosts_toy-store.ipv6-framework.mesos",
        ),
        (
            "/v1/services/_leader._tcp.mesos.",
            "v1_services__leader._tcp.mesos.",
        ),
        (
            "/v1/services/_nope._tcp.mesos.",
            "v1_services__nope._tcp.mesos.",
        ),
        (
            "/v1/services/_slave._tcp.mesos.",
            "v1_services__slave._tcp.mesos.",
        ),
        (
            "/v1/services/_liquor-store._tcp.marathon.mesos",
            "v1_services__liquor-store._tcp.marathon.mesos",
        ),
        (
            "/v1/services/_toy-store._tcp.ipv6-framework.mesos.",
            "v1_services__toy-store._tcp.ipv6-framework.mesos.",
        ),
        (
            "/v1/services/_framework._tcp.ipv6-framework.mesos.",
            "v1_services__framework._tcp.ipv6-framework.mesos.",
        ),
        ("/v1/enumerate", "v1_enumerate"),
    ] {
        let reply = http_get(agent.http, path).unwrap();
        assert_eq!(reply.status, 200, "{path}");
        assert!(
            reply
                .headers
                .to_lowercase()
                .contains("content-type: application/json"),
            "{path}"
        );
        assert_eq!(
            canonical(&reply.json()),
            canonical(&reference(file)),
            "{path}"
        );
    }
}

#[test]
fn axfr_config_version_and_errors() {
    let (_dir, _master, agent) = start();
    let axfr = http_get(agent.http, "/v1/axfr").unwrap().json();
    let want = reference("v1_axfr");
    for key in ["TTL", "RefreshSeconds", "Mname", "Rname", "Domain"] {
        assert_eq!(axfr[key], want[key], "{key}");
    }
    assert_eq!(canonical(&axfr["Records"]), canonical(&want["Records"]));
    assert!(axfr["Serial"].as_u64().unwrap() > 0);

    let config = http_get(agent.http, "/v1/config").unwrap().json();
    let want = reference("v1_config");
    let keys: BTreeSet<&String> = want.as_object().unwrap().keys().collect();
    assert_eq!(
        config.as_object().unwrap().keys().collect::<BTreeSet<_>>(),
        keys
    );
    for key in [
        "TTL",
        "Domain",
        "IPSources",
        "Resolvers",
        "SOAMname",
        "SOARname",
        "RecurseOn",
        "MesosCredentials",
    ] {
        assert_eq!(config[key], want[key], "{key}");
    }

    let version = http_get(agent.http, "/v1/version").unwrap().json();
    assert_eq!(version["Service"], "Mesos-DNS");

    let missing = http_get(agent.http, "/v1/nonexistent").unwrap();
    assert_eq!(
        (missing.status, missing.text().as_str()),
        (404, "404: Page Not Found")
    );
}

#[test]
fn host_ports_lists_the_srv_records_of_a_host() {
    let (_dir, _master, agent) = start();
    let reply = http_get(
        agent.http,
        "/v1/hosts/liquor-store-4dfjd-0.marathon.mesos./ports",
    )
    .unwrap();
    assert_eq!(reply.status, 200);
    let ports: BTreeSet<String> = reply
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["port"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ports, BTreeSet::from(["80".to_string(), "443".to_string()]));
    let none = http_get(agent.http, "/v1/hosts/nothing.mesos/ports")
        .unwrap()
        .json();
    assert_eq!(
        none,
        serde_json::json!([{"service": "", "host": "", "port": ""}])
    );
}

#[test]
fn metrics_health_and_readiness() {
    let (_dir, _master, agent) = start();
    query(
        agent.dns,
        "leader.mesos.",
        hickory_proto::rr::RecordType::A,
        Ask::UDP,
    );
    let metrics = http_get(agent.http, "/metrics").unwrap().text();
    for needle in [
        "beacon_dns_queries_total{qtype=\"A\",rcode=\"NOERROR\"}",
        "beacon_dns_query_duration_seconds_bucket",
        "beacon_catalog_refreshes_total",
        "beacon_catalog_refresh_failures_total",
        "beacon_dns_records{type=\"SRV\"}",
    ] {
        assert!(metrics.contains(needle), "missing {needle} in:\n{metrics}");
    }
    assert_eq!(http_get(agent.http, "/healthz").unwrap().status, 200);
    assert_eq!(http_get(agent.http, "/readyz").unwrap().status, 200);
}

#[test]
fn scenario_b_axfr_and_enumerate_match() {
    let dir = TempDir::new("api-b");
    let master = FakeMaster::start(
        &dir,
        &std::fs::read(conformance("fake-loopback-leader.json")).unwrap(),
    );
    let config: Value =
        serde_json::from_slice(&std::fs::read(conformance("config-B-testlike.json")).unwrap())
            .unwrap();
    let agent = Agent::start(&dir, config, master.addr);
    let read = |name: &str| -> Value {
        serde_json::from_slice(
            &std::fs::read(conformance(&format!("http/scenario-B/{name}.json"))).unwrap(),
        )
        .unwrap()
    };
    let axfr = http_get(agent.http, "/v1/axfr").unwrap().json();
    let want = read("v1_axfr");
    for key in ["TTL", "RefreshSeconds", "Mname", "Rname", "Domain"] {
        assert_eq!(axfr[key], want[key], "{key}");
    }
    assert_eq!(canonical(&axfr["Records"]), canonical(&want["Records"]));
    let enumerate = http_get(agent.http, "/v1/enumerate").unwrap().json();
    assert_eq!(canonical(&enumerate), canonical(&read("v1_enumerate")));
}

/// `/v1/records` lists what `/v1/axfr` holds, in dcos-net's shape, less the names DNS cannot
/// serve (upper case: Mesos-DNS keeps them, no query can reach them).
#[test]
fn records_are_the_served_part_of_axfr() {
    let (_dir, _master, agent) = start();
    let axfr = http_get(agent.http, "/v1/axfr").unwrap().json();
    let mut want = BTreeSet::new();
    for (key, rtype) in [("As", "A"), ("AAAAs", "AAAA"), ("SRVs", "SRV")] {
        for (name, hosts) in axfr["Records"][key].as_object().unwrap() {
            if name.bytes().any(|b| b.is_ascii_uppercase()) {
                continue;
            }
            for host in hosts.as_array().unwrap() {
                let host = host.as_str().unwrap().replace(".:", ":");
                let name = name.trim_end_matches('.').to_string();
                want.insert((name, host.trim_end_matches('.').to_string(), rtype));
            }
        }
    }
    let reply = http_get(agent.http, "/v1/records").unwrap();
    assert!(
        reply.headers.contains("application/json"),
        "{}",
        reply.headers
    );
    let got: BTreeSet<(String, String, &str)> = reply
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let rtype = ["A", "AAAA", "SRV"]
                .into_iter()
                .find(|t| r["rtype"] == *t)
                .unwrap_or_else(|| panic!("rtype: {r}"));
            let field = |k: &str| r[k].as_str().unwrap().to_string();
            (field("name"), field("host"), rtype)
        })
        .collect();
    assert!(got.len() > 20, "{got:?}");
    assert_eq!(got, want);
}

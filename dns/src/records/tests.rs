use std::collections::{BTreeMap, BTreeSet};

use beacon_catalog::mesos::parse_state;
use serde_json::Value;

use super::*;

const CONFORMANCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/conformance/mesos-dns"
);

fn load(name: &str) -> Value {
    let path = format!("{CONFORMANCE}/{name}");
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))).unwrap()
}

fn fake_catalog(leader: &str) -> Catalog {
    let mut state = load("fake.json");
    state["leader"] = Value::from(leader);
    let mut catalog = parse_state(state.to_string().as_bytes()).unwrap();
    catalog
        .host_ips
        .insert("localhost".into(), vec!["127.0.0.1".parse().unwrap()]);
    catalog
}

fn config_from(v: &Value) -> GeneratorConfig {
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    GeneratorConfig {
        domain: v["domain"].as_str().unwrap_or("mesos").to_string(),
        spec: if v["EnforceRFC952"].as_bool().unwrap_or(false) {
            LabelSpec::Rfc952
        } else {
            LabelSpec::Rfc1123
        },
        ip_sources: strs(&v["IPSources"])
            .iter()
            .map(|s| IpSource::parse(s).unwrap())
            .collect(),
        masters: strs(&v["masters"]),
        ns_name: v["SOAMname"].as_str().unwrap().to_string(),
        ns_ips: vec![v["listener"].as_str().unwrap().parse().unwrap()],
        enumerate: true,
        healthy_only: false,
    }
}

/// The record set as `{type: {name: {values}}}` strings, the golden files' shape.
fn as_strings(rs: &RecordSet) -> BTreeMap<&'static str, BTreeMap<String, BTreeSet<String>>> {
    fn conv<V: ToString>(m: &RecordMap<V>) -> BTreeMap<String, BTreeSet<String>> {
        m.iter()
            .map(|(k, vs)| (k.clone(), vs.iter().map(V::to_string).collect()))
            .collect()
    }
    BTreeMap::from([
        ("A", conv(&rs.a)),
        ("AAAA", conv(&rs.aaaa)),
        ("SRV", conv(&rs.srv)),
    ])
}

#[test]
fn golden_record_sets_match_mesos_dns_exactly() {
    let dir = format!("{CONFORMANCE}/golden-records");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let golden: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let config = config_from(&golden["Config"]);
        let catalog = fake_catalog(golden["Config"]["leader"].as_str().unwrap());
        let got = as_strings(&generate(&catalog, &config));
        for rtype in ["A", "AAAA", "SRV"] {
            let want: BTreeMap<String, BTreeSet<String>> =
                serde_json::from_value(golden[rtype].clone()).unwrap_or_default();
            let have = &got[rtype];
            for (name, values) in &want {
                assert_eq!(have.get(name), Some(values), "{path:?} {rtype} {name}");
            }
            for name in have.keys() {
                assert!(
                    want.contains_key(name),
                    "{path:?} {rtype} extra name {name}"
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 7, "golden files found: {checked}");
}

#[test]
fn insert_state_table() {
    let table = load("expected-insert-state.json");
    let setup = &table["setup"];
    let catalog = fake_catalog(setup["leader_override"].as_str().unwrap());
    let mut rows = 0;
    for case in table["cases"].as_array().unwrap() {
        let g = &table["generators"][case["generator"].as_str().unwrap()];
        let mut cfg = serde_json::json!({
            "domain": setup["domain"], "masters": setup["masters"], "SOAMname": setup["soa_mname"],
            "listener": setup["listener"], "IPSources": g["ip_sources"],
            "EnforceRFC952": g["label_spec"] == "RFC952",
        });
        cfg["domain"] = setup["domain"].clone();
        let got = as_strings(&generate(&catalog, &config_from(&cfg)));
        let rtype = case["type"].as_str().unwrap();
        let want: BTreeSet<String> = serde_json::from_value(case["expected"].clone()).unwrap();
        let have = got[rtype]
            .get(case["name"].as_str().unwrap())
            .cloned()
            .unwrap_or_default();
        assert_eq!(have, want, "{case}");
        rows += 1;
    }
    assert_eq!(rows, 50);
}

#[test]
fn master_record_table() {
    let table = load("expected-master-records.json");
    for case in table["cases"].as_array().unwrap() {
        let catalog = Catalog {
            leader_raw: case["leader"].as_str().unwrap().into(),
            ..Default::default()
        };
        let config = GeneratorConfig {
            domain: case["domain"].as_str().unwrap().into(),
            spec: LabelSpec::Rfc1123,
            ip_sources: vec![],
            masters: serde_json::from_value(case["masters"].clone()).unwrap(),
            ns_name: "ns1.foo.com.".into(),
            enumerate: false,
            healthy_only: false,
            ns_ips: vec![],
        };
        let mut generator = Generator {
            rs: RecordSet::default(),
            catalog: &catalog,
            config: &config,
            tail: format!(".{}.", config.domain),
        };
        generator.masters();
        let got = as_strings(&generator.rs);
        let mut want: BTreeMap<&str, BTreeMap<String, BTreeSet<String>>> = BTreeMap::from([
            ("A", BTreeMap::new()),
            ("AAAA", BTreeMap::new()),
            ("SRV", BTreeMap::new()),
        ]);
        for r in case["expected_exact"].as_array().unwrap() {
            let rtype = match r["type"].as_str().unwrap() {
                "A" => "A",
                "AAAA" => "AAAA",
                _ => "SRV",
            };
            want.get_mut(rtype)
                .unwrap()
                .entry(r["name"].as_str().unwrap().into())
                .or_default()
                .insert(r["value"].as_str().unwrap().into());
        }
        assert_eq!(got, want, "{case}");
    }
}

#[test]
fn task_ip_table() {
    let table = load("expected-task-ips.json");
    for case in table["cases"].as_array().unwrap() {
        let statuses = case["task"]["statuses"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let statuses = statuses
            .iter()
            .map(|s| {
                let ips = |k: &str| -> Vec<String> {
                    s[k].as_array()
                        .map(|a| a.iter().map(|v| v.as_str().unwrap().into()).collect())
                        .unwrap_or_default()
                };
                let mut network_infos: Vec<beacon_catalog::NetworkInfo> = s["netinfos"]
                    .as_array()
                    .map(|nets| {
                        nets.iter()
                            .map(|n| beacon_catalog::NetworkInfo {
                                ip_addresses: serde_json::from_value(n.clone()).unwrap(),
                                ..Default::default()
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                network_infos.extend(ips("netinfos_025_ip_address").into_iter().map(|ip| {
                    beacon_catalog::NetworkInfo {
                        ip_address: Some(ip),
                        ..Default::default()
                    }
                }));
                if let Some(nets) = s["netinfos_mixed"].as_array() {
                    network_infos.extend(nets.iter().map(|n| beacon_catalog::NetworkInfo {
                        ip_addresses:
                            serde_json::from_value(n["ip_addresses"].clone()).unwrap_or_default(),
                        ip_address: n["ip_address"].as_str().map(String::from),
                        ..Default::default()
                    }));
                }
                let labels = s["labels"]
                    .as_array()
                    .map(|ls| {
                        ls.iter()
                            .map(|l| beacon_catalog::Label {
                                key: l[0].as_str().unwrap().into(),
                                value: l[1].as_str().unwrap().into(),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                beacon_catalog::Status {
                    state: s["state"].as_str().unwrap_or("").into(),
                    timestamp: s["timestamp"].as_f64().unwrap_or(0.0),
                    labels,
                    network_infos,
                    healthy: None,
                }
            })
            .collect();
        let task = Task {
            id: String::new(),
            name: String::new(),
            agent_id: String::new(),
            state: String::new(),
            statuses,
            ports: vec![],
            discovery: None,
            labels: vec![],
            ips: vec![],
        };
        let sources: Vec<IpSource> = case["sources"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| IpSource::parse(s.as_str().unwrap()))
                    .collect()
            })
            .unwrap_or_default();
        let agent: Vec<IpAddr> = case["task"]["slave_ips"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|v| v.as_str().unwrap().parse().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        let got: Vec<String> = task_ips(&task, &sources, &agent)
            .iter()
            .map(|ip| ip.to_string())
            .collect();
        let want: Vec<String> = serde_json::from_value(case["want"].clone()).unwrap_or_default();
        assert_eq!(got, want, "{case}");
    }
}

#[test]
fn hash_and_tail() {
    assert_eq!(hash_string("test"), "iffe9");
    assert_eq!(agent_id_tail("20140803-125133-3041283216-5050-2410-0"), "0");
    assert_eq!(agent_id_tail("abc-S3"), "s3");
}

/// `healthy_only` leaves out a running task whose latest health check failed, and nothing else;
/// off (the default), the records are Mesos-DNS's.
#[test]
fn healthy_only_leaves_out_failed_health_checks() {
    let golden_dir = format!("{CONFORMANCE}/golden-records");
    let first = std::fs::read_dir(golden_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let golden: Value = serde_json::from_slice(&std::fs::read(first.path()).unwrap()).unwrap();
    let mut catalog = fake_catalog(golden["Config"]["leader"].as_str().unwrap());
    let config = config_from(&golden["Config"]);
    // Every running instance of the first plain task's name fails its health check.
    let fw = (catalog.frameworks.iter_mut())
        .find(|fw| {
            fw.tasks
                .iter()
                .any(|t| t.is_running() && t.discovery.is_none())
        })
        .unwrap();
    let task_name = (fw
        .tasks
        .iter()
        .find(|t| t.is_running() && t.discovery.is_none()))
    .map(|t| t.name.clone())
    .unwrap();
    let name = format!(
        "{}.{}.mesos.",
        config.spec.label(&task_name),
        config.spec.domain_frag(&fw.name)
    );
    for task in fw
        .tasks
        .iter_mut()
        .filter(|t| t.name == task_name && t.is_running())
    {
        let mut failed = task.statuses.last().cloned().unwrap();
        (failed.timestamp, failed.healthy) = (f64::MAX, Some(false));
        task.statuses.push(failed);
    }
    let served = |healthy_only: bool| {
        let config = GeneratorConfig {
            healthy_only,
            ..config.clone()
        };
        let records = as_strings(&generate(&catalog, &config));
        records["A"].contains_key(&name)
    };
    assert!(served(false), "{name}: Mesos-DNS names unhealthy tasks");
    assert!(!served(true), "{name}: left out with healthy_only");
}

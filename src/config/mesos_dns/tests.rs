use super::decode::go_fold_eq;
use super::render::write_go_string;
use super::validate::{split_host_port, valid_port};
use super::*;
use crate::config::conformance_dir;

fn load(json: &str) -> Result<MesosDnsConfig, ConfigError> {
    MesosDnsConfig::from_json(json.as_bytes(), Path::new("/etc/mesos-dns/config.json"))
}

fn with_masters(extra: &str) -> String {
    format!(r#"{{"masters": ["10.0.0.1:5050"]{extra}}}"#)
}

fn fixture(name: &str) -> Vec<u8> {
    let path = conformance_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn strings_of(value: &serde_json::Value) -> Vec<String> {
    match value {
        serde_json::Value::Null => Vec::new(),
        v => v
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect(),
    }
}

fn validation_table(name: &str) -> Vec<serde_json::Value> {
    let doc: serde_json::Value =
        serde_json::from_slice(&fixture("expected-config-validation.json")).unwrap();
    doc[name].as_array().unwrap().clone()
}

#[test]
fn defaults_are_mesos_dns_new_config() {
    let c = MesosDnsConfig::default();
    assert_eq!(
        (
            c.refresh_seconds,
            c.port,
            c.timeout,
            c.state_timeout_seconds
        ),
        (60, 53, 5, 300)
    );
    assert_eq!(
        (
            c.zk_detection_timeout,
            c.http_port,
            c.ttl,
            c.srv_record_default_weight
        ),
        (30, 8123, 60, 1)
    );
    assert_eq!(
        (c.soa_refresh, c.soa_retry, c.soa_expire, c.soa_minttl),
        (60, 600, 86400, 60)
    );
    assert_eq!(
        (c.soa_mname.as_str(), c.soa_rname.as_str()),
        ("ns1.mesos", "root.ns1.mesos")
    );
    assert_eq!(c.resolvers, ["8.8.8.8"]);
    assert_eq!(c.ip_sources, ["netinfo", "mesos", "host"]);
    assert_eq!(
        (
            c.domain.as_str(),
            c.listener.as_str(),
            c.http_listener.as_str()
        ),
        ("mesos", "0.0.0.0", "0.0.0.0")
    );
    assert!(
        c.recurse_on
            && c.dns_on
            && c.http_on
            && c.external_on
            && c.set_truncate_bit
            && c.enumeration_on
    );
    assert!(!c.enforce_rfc952 && !c.mesos_https_on);
    assert!(c.masters.is_empty() && c.zone_resolvers.is_empty() && c.zk.is_empty());
}

#[test]
fn scenario_a_renders_byte_identical_to_mesos_dns() {
    let mut c = MesosDnsConfig::from_json(
        &fixture("config-A-defaults.json"),
        Path::new("/etc/mesos-dns/config-A-defaults.json"),
    )
    .unwrap();
    c.soa_serial = 1_795_364_727;
    let expected = String::from_utf8(fixture("http/scenario-A/v1_config.body")).unwrap();
    assert_eq!(c.to_api_json_string(), expected);
}

#[test]
fn scenario_b_renders_byte_identical_to_mesos_dns() {
    let mut c = MesosDnsConfig::from_json(
        &fixture("config-B-testlike.json"),
        Path::new("/etc/mesos-dns/config-B-testlike.json"),
    )
    .unwrap();
    c.soa_serial = 1_795_364_762;
    let expected = String::from_utf8(fixture("http/scenario-B/v1_config.json")).unwrap();
    assert_eq!(c.to_api_json_string(), expected);
}

#[test]
fn api_json_value_has_the_same_content() {
    let c = load(&with_masters(
        r#", "zoneresolvers": {"weave": ["1.2.3.4"]}"#,
    ))
    .unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&c.to_api_json_string()).unwrap();
    assert_eq!(c.to_api_json(), parsed);
    assert_eq!(parsed["ZoneResolvers"]["weave"][0], "1.2.3.4");
}

#[test]
fn nested_values_are_indented_like_go() {
    let c = load(&with_masters(
        r#", "zoneresolvers": {"b": ["1.2.3.4"], "a": ["5.6.7.8", "::1"]}"#,
    ))
    .unwrap();
    let body = c.to_api_json_string();
    let expected = " \"ZoneResolvers\": {\n   \"a\": [\n    \"5.6.7.8\",\n    \"::1\"\n   ],\n   \"b\": [\n    \"1.2.3.4\"\n   ]\n  },\n";
    assert!(body.contains(expected), "{body}");
    assert!(
        MesosDnsConfig::default()
            .to_api_json_string()
            .contains("\"Masters\": null,\n")
    );
}

#[test]
fn secret_is_never_shown() {
    let c = load(&with_masters(
        r#", "mesosauthentication": "basic", "mesoscredentials": {"principal": "p", "secret": "hunter2"}"#,
    ))
    .unwrap();
    assert_eq!(c.mesos_credentials.secret, "hunter2");
    let body = c.to_api_json_string();
    assert!(!body.contains("hunter2"));
    assert!(
        body.contains("\"Secret\": \"\\u003credacted\\u003e\""),
        "{body}"
    );
    assert_eq!(c.to_api_json()["MesosCredentials"]["Secret"], REDACTED);
    assert_eq!(c.to_api_json()["MesosCredentials"]["Principal"], "p");
    assert!(!format!("{c:?}").contains("hunter2"));
}

#[test]
fn strings_are_escaped_like_go() {
    let mut out = String::new();
    write_go_string("a\"b\\c\n\t\r\u{1}<>&\u{2028}é", &mut out);
    assert_eq!(out, r#""a\"b\\c\n\t\r\u0001\u003c\u003e\u0026\u2028é""#);
}

#[test]
fn keys_match_case_insensitively_like_go() {
    for key in ["httpport", "HttpPort", "HTTPPORT", "hTtPpOrT"] {
        let c = load(&with_masters(&format!(r#", "{key}": 9000"#))).unwrap();
        assert_eq!(c.http_port, 9000, "{key}");
    }
    let c = load(&with_masters(
        r#", "DNSON": false, "ipsources": ["host"], "enforcerfc952": true"#,
    ))
    .unwrap();
    assert!(!c.dns_on && c.enforce_rfc952);
    assert_eq!(c.ip_sources, ["host"]);
    // Go's fold also lets U+017F match 's' and U+212A (Kelvin) match 'k'.
    let c = load(&with_masters(
        r#", "ſoaſerial": 7, "z\u212a": "zk://x/mesos""#,
    ))
    .unwrap();
    assert_eq!((c.soa_serial, c.zk.as_str()), (7, "zk://x/mesos"));
    assert!(
        !go_fold_eq("Port", "Ports") && !go_fold_eq("TTL", "TT") && !go_fold_eq("Port", "Pört")
    );
}

#[test]
fn last_spelling_of_a_key_wins() {
    let c = load(&with_masters(
        r#", "HttpPort": 1, "httpport": 2, "HTTPPORT": 3"#,
    ))
    .unwrap();
    assert_eq!(c.http_port, 3);
    let c = load(r#"{"Masters": ["a:1"], "masters": ["b:2"]}"#).unwrap();
    assert_eq!(c.masters, ["b:2"]);
}

#[test]
fn unknown_keys_are_ignored_and_missing_keys_keep_defaults() {
    let c = load(&with_masters(
        r#", "email": "root.mesos", "ns": "ns1", "nested": {"x": [1]}"#,
    ))
    .unwrap();
    assert_eq!(c.ttl, 60);
    assert_eq!(c.resolvers, ["8.8.8.8"]);
}

#[test]
fn null_follows_go_semantics() {
    let c = load(&with_masters(
        r#", "ttl": null, "domain": null, "resolvers": null, "zoneresolvers": null"#,
    ))
    .unwrap();
    assert_eq!((c.ttl, c.domain.as_str()), (60, "mesos"));
    assert!(c.resolvers.is_empty());
    assert!(matches!(
        load(&with_masters(r#", "ipsources": null"#)),
        Err(ConfigError::EmptyIpSources)
    ));
    assert!(matches!(load("null"), Err(ConfigError::NoMasters)));
}

#[test]
fn wrong_types_name_the_key_and_expected_type() {
    let cases = [
        (
            r#", "HttpPort": "8123""#,
            "HttpPort",
            "an integer in 0..=65535",
        ),
        (r#", "port": 70000"#, "port", "an integer in 0..=65535"),
        (r#", "ttl": -1"#, "ttl", "an integer in 0..=4294967295"),
        (r#", "refreshSeconds": 1.5"#, "refreshSeconds", "an integer"),
        (r#", "dnson": "yes""#, "dnson", "a boolean"),
        (r#", "domain": 5"#, "domain", "a string"),
        (
            r#", "resolvers": "8.8.8.8""#,
            "resolvers",
            "an array of strings",
        ),
        (
            r#", "resolvers": ["8.8.8.8", 1]"#,
            "resolvers[1]",
            "a string",
        ),
        (r#", "zoneresolvers": []"#, "zoneresolvers", "an object"),
        (
            r#", "zoneresolvers": {"weave": [true]}"#,
            "zoneresolvers.weave[0]",
            "a string",
        ),
        (
            r#", "mesoscredentials": {"secret": 1}"#,
            "mesoscredentials.secret",
            "a string",
        ),
    ];
    for (extra, key, expected) in cases {
        let err = load(&with_masters(extra)).unwrap_err();
        let ConfigError::WrongType {
            key: k,
            expected: e,
            ..
        } = &err
        else {
            panic!("{extra}: {err}")
        };
        assert_eq!(k, key, "{extra}");
        assert!(e.starts_with(expected), "{extra}: {err}");
        assert!(err.to_string().contains(key), "{err}");
    }
    assert!(matches!(load("[1]"), Err(ConfigError::WrongType { .. })));
}

#[test]
fn malformed_json_reports_line_and_column() {
    let err = load("{\n  \"masters\": [\"a:1\"],\n  \"port\": ,\n}").unwrap_err();
    let ConfigError::Json {
        line,
        column,
        message,
        ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!((*line, *column), (3, 11));
    assert!(!message.contains("at line"), "{message}");
    assert!(err.to_string().contains("line 3, column 11"), "{err}");
    assert!(matches!(
        load(r#"{"masters": ["a:1"]} x"#),
        Err(ConfigError::Json { .. })
    ));
}

#[test]
fn names_are_normalised_like_mesos_dns() {
    let c = load(&with_masters(
        r#", "domain": "DC.Mesos", "soamname": "NS1.dc.mesos..", "soarname": "admin@example.org""#,
    ))
    .unwrap();
    assert_eq!(c.domain, "dc.mesos");
    assert_eq!(c.soa_mname, "NS1.dc.mesos.");
    assert_eq!(c.soa_rname, "admin.example.org.");
    assert_eq!(c.file, "/etc/mesos-dns/config.json");
    let c = load(&with_masters(r#", "file": "/somewhere/else""#)).unwrap();
    assert_eq!(c.file, "/etc/mesos-dns/config.json");
    let rel =
        MesosDnsConfig::from_json(with_masters("").as_bytes(), Path::new("./x/../config.json"))
            .unwrap();
    assert!(
        Path::new(&rel.file).is_absolute()
            && rel.file.ends_with("/config.json")
            && !rel.file.contains("..")
    );
}

#[test]
fn domain_names_table() {
    for case in validation_table("domain_names") {
        let domain = case["domain"].as_str().unwrap();
        assert_eq!(
            is_domain_name(domain),
            case["valid"].as_bool().unwrap(),
            "{domain:?}"
        );
    }
    let err = load(&with_masters(r#", "domain": "invalid.com.""#)).unwrap_err();
    assert!(matches!(err, ConfigError::InvalidDomain { .. }), "{err}");
}

#[test]
fn masters_table() {
    for case in validation_table("masters") {
        let input = strings_of(&case["input"]);
        let valid = case["valid"].as_bool().unwrap();
        assert_eq!(validate_masters(&input).is_ok(), valid, "{input:?}");
    }
}

#[test]
fn resolvers_table() {
    for case in validation_table("resolvers") {
        let input = strings_of(&case["input"]);
        let valid = case["valid"].as_bool().unwrap();
        assert_eq!(
            validate_resolvers("resolvers", &input).is_ok(),
            valid,
            "{input:?}"
        );
    }
}

/// Turns the table's Go literal (`map[string][]string{"weave": ips}`) into a map.
fn parse_go_zone_map(raw: &str) -> BTreeMap<String, Vec<String>> {
    let Some(body) = raw
        .strip_prefix("map[string][]string{")
        .and_then(|r| r.strip_suffix('}'))
    else {
        assert_eq!(raw, "nil");
        return BTreeMap::new();
    };
    body.split(", ")
        .map(|entry| {
            let (zone, list) = entry.split_once(": ").unwrap();
            let resolvers = match list {
                "ips" => vec!["8.8.8.8".to_owned()],
                "[]string{}" => Vec::new(),
                other => panic!("unexpected list {other}"),
            };
            (zone.trim_matches('"').to_owned(), resolvers)
        })
        .collect()
}

#[test]
fn zone_resolvers_table() {
    let cases = validation_table("zone_resolvers_with_mesos_domain_dc.mesos");
    assert_eq!(cases.len(), 10);
    for case in cases {
        let raw = case["input_raw_go"].as_str().unwrap();
        let zones = parse_go_zone_map(raw);
        let valid = case["valid"].as_bool().unwrap();
        assert_eq!(
            validate_zone_resolvers(&zones, "dc.mesos").is_ok(),
            valid,
            "{raw}"
        );
    }
}

#[test]
fn zone_resolver_errors_name_the_zone() {
    let err = load(&with_masters(
        r#", "zoneresolvers": {"weave": ["8.8.8.8", "8.8.8.8:53"]}"#,
    ))
    .unwrap_err();
    assert!(
        err.to_string().contains("zone_resolvers.\"weave\""),
        "{err}"
    );
    let err = load(&with_masters(
        r#", "zoneresolvers": {"Weave": ["1.1.1.1"], "weave": ["1.1.1.1"]}"#,
    ))
    .unwrap_err();
    assert!(matches!(err, ConfigError::OverlappingZones { .. }), "{err}");
    // Not checked when forwarding is off, as in Mesos-DNS.
    assert!(
        load(&with_masters(
            r#", "externalon": false, "zoneresolvers": {"mesos": []}"#
        ))
        .is_ok()
    );
}

#[test]
fn resolver_and_master_identities() {
    assert!(validate_resolvers("r", &["1.2.3.4".into(), "1.2.3.4:53".into()]).is_err());
    assert!(validate_resolvers("r", &["1.2.3.4".into(), "[::ffff:1.2.3.4]:53".into()]).is_err());
    assert!(validate_resolvers("r", &["[::1]".into()]).is_err());
    assert!(validate_masters(&["[::1]:5050".into(), "[0::1]:5050".into()]).is_err());
    assert!(validate_masters(&["a:01".into(), "a:1".into()]).is_ok());
    assert!(validate_masters(&[":5050".into()]).is_err());
    assert!(validate_masters(&["[::1]x:1".into(), "a:b:1".into()]).is_err());
    let err = validate_masters(&["a".into()]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid masters entry \"a\": expected host:port"
    );
}

#[test]
fn zk_alone_is_enough_and_a_malformed_one_names_the_key() {
    assert!(load(r#"{"zk": "zk://10.0.0.1:2181,10.0.0.2:2181/mesos"}"#).is_ok());
    assert!(load(&with_masters(r#", "zk": "zk://10.0.0.1:2181/mesos""#)).is_ok());
    let err = load(r#"{"zk": "10.0.0.1:2181/mesos"}"#).unwrap_err();
    assert!(matches!(err, ConfigError::InvalidZk { .. }));
    let message = err.to_string();
    assert!(
        message.starts_with("invalid zk \"10.0.0.1:2181/mesos\"") && message.contains("zk://"),
        "{message}"
    );
    assert!(matches!(load("{}"), Err(ConfigError::NoMasters)));
}

#[test]
fn other_validation_rules() {
    let fails = |extra: &str| load(&with_masters(extra)).unwrap_err();
    assert!(matches!(
        fails(r#", "dnson": false, "httpon": false"#),
        ConfigError::NoServerEnabled
    ));
    assert!(matches!(
        fails(r#", "ipsources": []"#),
        ConfigError::EmptyIpSources
    ));
    assert!(matches!(
        fails(r#", "ipsources": ["host", "host"]"#),
        ConfigError::DuplicateIpSource { .. }
    ));
    assert!(matches!(
        fails(r#", "ipsources": ["rkt"]"#),
        ConfigError::InvalidIpSource { .. }
    ));
    assert!(matches!(
        fails(r#", "statetimeoutseconds": 0"#),
        ConfigError::OutOfRange {
            key: "state_timeout_seconds",
            ..
        }
    ));
    assert!(matches!(
        fails(r#", "refreshseconds": 0"#),
        ConfigError::OutOfRange {
            key: "refresh_seconds",
            ..
        }
    ));
    assert!(matches!(
        fails(r#", "ttl": 2147483648"#),
        ConfigError::OutOfRange { key: "ttl", .. }
    ));
    assert!(matches!(
        fails(r#", "certfile": "c.pem""#),
        ConfigError::CertKeyMismatch {
            missing: "key_file",
            ..
        }
    ));
    assert!(matches!(
        fails(r#", "keyfile": "k.pem""#),
        ConfigError::CertKeyMismatch {
            missing: "cert_file",
            ..
        }
    ));
    assert!(matches!(
        fails(r#", "mesosauthentication": "token""#),
        ConfigError::InvalidMesosAuthentication { .. }
    ));
    assert!(matches!(
        fails(r#", "mesosauthentication": "basic""#),
        ConfigError::MissingCredentials
    ));
    assert!(matches!(
        fails(r#", "mesosauthentication": "iam""#),
        ConfigError::MissingIamConfigFile
    ));
    assert!(matches!(
        fails(r#", "resolvers": ["dns.google"]"#),
        ConfigError::InvalidResolver { .. }
    ));
    assert!(load(&with_masters(r#", "certfile": "c.pem", "keyfile": "k.pem", "mesosauthentication": "iam", "iamconfigfile": "/iam.json""#)).is_ok());
    assert!(load(&with_masters(r#", "dnson": false, "resolvers": []"#)).is_ok());
    assert!(
        load(&with_masters(
            r#", "externalon": false, "resolvers": ["bad"]"#
        ))
        .is_ok()
    );
}

#[test]
fn split_host_port_matches_go() {
    assert_eq!(split_host_port("a:1"), Some(("a", "1")));
    assert_eq!(split_host_port("[::1]:53"), Some(("::1", "53")));
    assert_eq!(split_host_port(":80"), Some(("", "80")));
    assert_eq!(split_host_port("a:"), Some(("a", "")));
    for bad in [
        "a",
        "::1",
        "[::1]",
        "[::1]:",
        "[::1]:1:2",
        "a:b:c",
        "[a]b:1",
        "a]:1",
        "[a:1",
    ] {
        if bad == "[::1]:" {
            assert_eq!(split_host_port(bad), Some(("::1", "")));
        } else {
            assert_eq!(split_host_port(bad), None, "{bad}");
        }
    }
    assert!(
        valid_port("+53")
            && !valid_port("-1")
            && !valid_port("")
            && !valid_port("65536")
            && !valid_port("0")
    );
}

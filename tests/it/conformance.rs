//! Wire conformance with a live Mesos-DNS: every answer of `reference-answers-A-B.txt`.
//!
//! The main tables (each `/v1/axfr` name asked A, AAAA and SRV over TCP without EDNS) must match
//! exactly: rcode, flags, ANSWER and AUTHORITY sets, and the ADDITIONAL owners (which address of
//! a multi-address target Mesos-DNS picked was random). The edge-case probes must match too,
//! except where Beacon deliberately fixes Mesos-DNS (README, "Fixes"): the apex and empty
//! non-terminals answer NOERROR instead of NXDOMAIN, and apex SOA/NS come in ANSWER.

use std::collections::BTreeSet;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::support::*;

#[derive(Debug)]
struct Case {
    extra: bool,
    qname: String,
    qtype: String,
    ask: Ask,
    rcode: String,
    flags: String,
    an: Vec<String>,
    ns: Vec<String>,
    ar: Vec<String>,
}

fn parse_reference(scenario: &str) -> Vec<Case> {
    let text = std::fs::read_to_string(conformance("reference-answers-A-B.txt")).unwrap();
    let mut cases: Vec<Case> = Vec::new();
    let (mut in_scenario, mut extra) = (false, false);
    for line in text.lines() {
        if line.starts_with("#####") {
            in_scenario = line.contains(&format!("SCENARIO {scenario} "));
            extra = false;
            continue;
        }
        if !in_scenario {
            continue;
        }
        if line.starts_with("# ---- extra probes") {
            extra = true;
        }
        if let Some(rest) = line.strip_prefix("Q ") {
            cases.push(parse_header(rest, extra));
        } else if let Some(rr) = line.strip_prefix("    ") {
            let case = cases.last_mut().unwrap();
            let (section, record) = rr.split_at(3);
            match section.trim() {
                "AN" => case.an.push(record.to_string()),
                "NS" => case.ns.push(record.to_string()),
                "AR" => case.ar.push(record.to_string()),
                other => panic!("unknown section {other}"),
            }
        }
    }
    cases
}

fn parse_header(rest: &str, extra: bool) -> Case {
    let tokens: Vec<&str> = rest.split_whitespace().collect();
    let rcode_at = tokens.iter().position(|t| t.starts_with("rcode=")).unwrap();
    let an_at = tokens.iter().position(|t| t.starts_with("an=")).unwrap();
    let opts = &tokens[2..rcode_at];
    let transport = if opts[0] == "tcp" {
        Transport::Tcp
    } else {
        Transport::Udp
    };
    // The main tables were asked with +noedns; dig's default elsewhere is EDNS with 1232 bytes.
    let mut edns = if extra { Some(1232) } else { None };
    let mut rd = true;
    for opt in &opts[1..] {
        match *opt {
            "+noedns" => edns = None,
            "+norecurse" => rd = false,
            "+edns=0" => edns = edns.or(Some(1232)),
            o if o.starts_with("+bufsize=") => edns = Some(o["+bufsize=".len()..].parse().unwrap()),
            o => panic!("unknown dig option {o}"),
        }
    }
    let flags = tokens[rcode_at + 1..an_at].join(" ");
    Case {
        extra,
        qname: tokens[0].to_string(),
        qtype: tokens[1].to_string(),
        ask: Ask {
            transport,
            edns,
            rd,
        },
        rcode: tokens[rcode_at]["rcode=".len()..].to_string(),
        flags: flags["flags=".len()..].to_string(),
        an: Vec::new(),
        ns: Vec::new(),
        ar: Vec::new(),
    }
}

fn rcode_name(code: ResponseCode) -> &'static str {
    match code {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::FormErr => "FORMERR",
        _ => "OTHER",
    }
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

/// `owner TTL TYPE`: what of an additional record does not depend on Mesos-DNS's random pick.
fn owner_and_type(rr: &str) -> String {
    rr.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

fn run_scenario(scenario: &str, config_file: &str) {
    let dir = TempDir::new(&format!("conformance-{scenario}"));
    let state = std::fs::read(conformance("fake-loopback-leader.json")).unwrap();
    let master = FakeMaster::start(&dir, &state);
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(conformance(config_file)).unwrap()).unwrap();
    let agent = Agent::start(&dir, config, master.addr);

    let cases = parse_reference(scenario);
    let main: Vec<&Case> = cases.iter().filter(|c| !c.extra).collect();
    assert!(
        main.len() > 250,
        "scenario {scenario}: only {} main-table cases parsed",
        main.len()
    );
    let names: BTreeSet<String> = main.iter().map(|c| c.qname.clone()).collect();
    let mut failures = Vec::new();
    for case in &cases {
        let qtype: RecordType = case.qtype.parse().unwrap();
        let reply = query(agent.dns, &case.qname, qtype, case.ask);
        let mut want_rcode = case.rcode.clone();
        let mut want_an = sorted(&case.an);
        let mut want_ns = sorted(&case.ns);
        if case.extra {
            apply_documented_fixes(case, &names, &mut want_rcode, &mut want_an, &mut want_ns);
        }
        let got_an = sorted(&reply.answers.iter().map(show).collect::<Vec<_>>());
        let got_ns = sorted(&reply.authorities.iter().map(show).collect::<Vec<_>>());
        let got_ar: Vec<String> = sorted(
            &reply
                .additionals
                .iter()
                .map(|r| owner_and_type(&show(r)))
                .collect::<Vec<_>>(),
        );
        let want_ar: Vec<String> = sorted(
            &case
                .ar
                .iter()
                .map(|r| owner_and_type(r))
                .collect::<Vec<_>>(),
        );
        let got_rcode = rcode_name(reply.metadata.response_code).to_string();
        let got = (got_rcode, flags(&reply), got_an, got_ns, got_ar);
        let want = (want_rcode, case.flags.clone(), want_an, want_ns, want_ar);
        if got != want {
            failures.push(format!(
                "Q {} {} {:?}\n  want {want:?}\n  got  {got:?}",
                case.qname, case.qtype, case.ask
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "scenario {scenario}: {} of {} answers differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Beacon's documented fixes, applied to the reference answer of an edge-case probe.
fn apply_documented_fixes(
    case: &Case,
    names: &BTreeSet<String>,
    rcode: &mut String,
    an: &mut Vec<String>,
    ns: &mut Vec<String>,
) {
    let q = case.qname.to_lowercase();
    let q = if q.ends_with('.') { q } else { format!("{q}.") };
    let is_apex = q == "mesos.";
    let is_empty_non_terminal =
        !names.contains(&q) && names.iter().any(|n| n.ends_with(&format!(".{q}")));
    if (is_apex || is_empty_non_terminal) && rcode == "NXDOMAIN" {
        *rcode = "NOERROR".into();
    }
    if is_apex && (case.qtype == "SOA" || case.qtype == "NS") {
        // SOA: the SOA moves to ANSWER and the NS goes to AUTHORITY; NS: the NS moves to ANSWER.
        let moved = std::mem::take(ns);
        *an = moved;
        if case.qtype == "SOA" {
            let soa = &an[0];
            let ns_rr = format!(
                "{} NS {}",
                soa.split(" SOA ").next().unwrap(),
                soa.split_whitespace().nth(3).unwrap()
            );
            ns.push(ns_rr);
        }
    }
}

#[test]
fn scenario_a_defaults_matches_live_mesos_dns() {
    run_scenario("A", "config-A-defaults.json");
}

#[test]
fn scenario_b_testlike_config_matches_live_mesos_dns() {
    run_scenario("B", "config-B-testlike.json");
}

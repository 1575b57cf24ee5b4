//! Parsing a Mesos master's `GET /master/state` document, or an agent's `GET /state`, into a
//! [`Catalog`].
//!
//! Only the fields Mesos-DNS reads are kept (see `research/mesos-dns.md` §2); everything else is
//! ignored, and absent fields take empty defaults. As in Mesos-DNS, a malformed `pid` anywhere
//! rejects the whole document, so the caller keeps its last good catalog.

use serde::Deserialize;

use crate::model::{Agent, Catalog, Discovery, Framework, Label, Pid, PortRange, Status, Task};
use crate::shapes::{RawDiscovery, RawStatus, labels_either};

/// Why a state document was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// Occurs when the body is not JSON of the expected shape.
    #[error("malformed state JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Occurs when a `pid` field is not of the form `id@host:port`.
    #[error("bad pid {value:?}: {reason}")]
    BadPid {
        /// The pid as found in the document.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Occurs when the state names no leader, which Mesos-DNS also treats as a failed poll.
    #[error("state has no leader")]
    NoLeader,
}

/// Parses a `/master/state` body.
pub fn parse_state(body: &[u8]) -> Result<Catalog, StateError> {
    let raw: RawState = serde_json::from_slice(body)?;
    if raw.leader.trim().is_empty() {
        return Err(StateError::NoLeader);
    }
    let agents = raw
        .slaves
        .into_iter()
        .map(|s| {
            Ok(Agent {
                id: s.id,
                hostname: s.hostname,
                pid: s.pid.as_deref().map(parse_pid).transpose()?,
            })
        })
        .collect::<Result<_, StateError>>()?;
    let frameworks = raw
        .frameworks
        .into_iter()
        .map(convert_framework)
        .collect::<Result<_, StateError>>()?;
    Ok(Catalog {
        leader: parse_pid(&raw.leader).ok(),
        leader_raw: raw.leader,
        agents,
        frameworks,
        host_ips: Default::default(),
        masters: Vec::new(),
    })
}

/// Parses a Mesos agent's `GET /state` body: the agent itself and the tasks it runs, as a
/// catalog without a leader (the node's own fragment, as dcos-net published each agent's tasks).
///
/// The agent nests tasks under `frameworks[].executors[].tasks`; queued and completed tasks are
/// left out, like the master's completed ones. A task without `slave_id` belongs to this agent.
pub fn parse_agent_state(body: &[u8]) -> Result<Catalog, StateError> {
    let raw: RawAgentState = serde_json::from_slice(body)?;
    let agent = Agent {
        id: raw.id,
        hostname: raw.hostname,
        pid: raw.pid.as_deref().map(parse_pid).transpose()?,
    };
    let frameworks = raw
        .frameworks
        .into_iter()
        .map(|f| Framework {
            name: f.name,
            pid: None,
            hostname: f.hostname,
            tasks: f
                .executors
                .into_iter()
                .flat_map(|e| e.tasks)
                .map(convert_task)
                .map(|mut t| {
                    if t.agent_id.is_empty() {
                        t.agent_id.clone_from(&agent.id);
                    }
                    t
                })
                .collect(),
        })
        .collect();
    Ok(Catalog {
        leader: None,
        leader_raw: String::new(),
        agents: vec![agent],
        frameworks,
        host_ips: Default::default(),
        masters: Vec::new(),
    })
}

/// Parses a libprocess pid, `id@host:port`, trimming surrounding spaces and quotes.
///
/// The host may be an IPv4 literal, a bracketed IPv6 literal or a hostname.
pub fn parse_pid(text: &str) -> Result<Pid, StateError> {
    let bad = |reason| StateError::BadPid {
        value: text.to_string(),
        reason,
    };
    let trimmed = text.trim_matches(|c: char| c == '"' || c.is_whitespace());
    let (id, hostport) = trimmed.split_once('@').ok_or_else(|| bad("missing '@'"))?;
    let (host, port) = hostport
        .rsplit_once(':')
        .ok_or_else(|| bad("missing ':port'"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(bad("empty host"));
    }
    if host.contains(':') && host.parse::<std::net::Ipv6Addr>().is_err() {
        return Err(bad("host is neither an address nor a hostname"));
    }
    let port = port.parse().map_err(|_| bad("port is not a number"))?;
    Ok(Pid {
        id: id.to_string(),
        host: host.to_string(),
        port,
    })
}

/// Parses a Mesos ports resource such as `[31000-31002, 31005-31005]`. Ranges that do not parse
/// are skipped; `""` and `"[]"` give none.
pub fn parse_port_ranges(text: &str) -> Vec<PortRange> {
    let inner = text.trim().trim_start_matches('[').trim_end_matches(']');
    inner
        .split(',')
        .filter_map(|part| {
            let (a, b) = part.trim().split_once('-')?;
            let (begin, end) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            (begin <= end).then_some(PortRange { begin, end })
        })
        .collect()
}

fn convert_framework(f: RawFramework) -> Result<Framework, StateError> {
    Ok(Framework {
        name: f.name,
        pid: f.pid.as_deref().map(parse_pid).transpose()?,
        hostname: f.hostname,
        tasks: f.tasks.into_iter().map(convert_task).collect(),
    })
}

fn convert_task(t: RawTask) -> Task {
    Task {
        id: t.id,
        name: t.name,
        agent_id: t.slave_id,
        state: t.state,
        statuses: t.statuses.into_iter().map(Status::from).collect(),
        ports: t
            .resources
            .ports
            .as_deref()
            .map(parse_port_ranges)
            .unwrap_or_default(),
        discovery: t.discovery.map(Discovery::from),
        labels: t.labels,
        ips: Vec::new(),
    }
}

// The wire shapes. `default` everywhere: Mesos omits empty fields freely.

#[derive(Deserialize)]
struct RawState {
    #[serde(default)]
    leader: String,
    #[serde(default)]
    slaves: Vec<RawAgent>,
    #[serde(default)]
    frameworks: Vec<RawFramework>,
}

#[derive(Deserialize)]
struct RawAgentState {
    #[serde(default)]
    id: String,
    #[serde(default)]
    hostname: String,
    pid: Option<String>,
    #[serde(default)]
    frameworks: Vec<RawAgentFramework>,
}

#[derive(Deserialize)]
struct RawAgentFramework {
    #[serde(default)]
    name: String,
    #[serde(default)]
    hostname: String,
    #[serde(default)]
    executors: Vec<RawExecutor>,
}

#[derive(Deserialize)]
struct RawExecutor {
    #[serde(default)]
    tasks: Vec<RawTask>,
}

#[derive(Deserialize)]
struct RawAgent {
    #[serde(default)]
    id: String,
    #[serde(default)]
    hostname: String,
    pid: Option<String>,
}

#[derive(Deserialize)]
struct RawFramework {
    #[serde(default)]
    name: String,
    pid: Option<String>,
    #[serde(default)]
    hostname: String,
    #[serde(default)]
    tasks: Vec<RawTask>,
}

#[derive(Deserialize)]
struct RawTask {
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    slave_id: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    statuses: Vec<RawStatus>,
    #[serde(default)]
    resources: RawResources,
    discovery: Option<RawDiscovery>,
    #[serde(default, deserialize_with = "labels_either")]
    labels: Vec<Label>,
}

#[derive(Deserialize, Default)]
struct RawResources {
    ports: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/conformance/mesos-dns"
    );

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{FIXTURES}/{name}")).expect("shared/ must sit beside the checkout")
    }

    #[test]
    fn parses_an_agent_state() {
        let body = br#"{"id": "S1", "hostname": "agent-1", "pid": "slave(1)@10.0.0.7:5051",
            "frameworks": [{"id": "F1", "name": "marathon", "hostname": "m1",
              "executors": [{"id": "e1", "tasks": [
                {"id": "web.1", "name": "web", "state": "TASK_RUNNING",
                 "resources": {"ports": "[31000-31001]"},
                 "statuses": [{"state": "TASK_RUNNING", "timestamp": 1.5}]}],
                "queued_tasks": [{"id": "q"}], "completed_tasks": [{"id": "old"}]}]}],
            "completed_frameworks": [{"name": "gone"}]}"#;
        let c = parse_agent_state(body).unwrap();
        assert!(c.leader.is_none());
        assert_eq!(c.agents.len(), 1);
        assert_eq!(c.agents[0].pid.as_ref().unwrap().host, "10.0.0.7");
        assert_eq!(c.frameworks.len(), 1);
        let task = &c.frameworks[0].tasks[0];
        assert_eq!((task.id.as_str(), task.agent_id.as_str()), ("web.1", "S1"));
        assert_eq!(task.expanded_ports().collect::<Vec<_>>(), [31000, 31001]);
        assert_eq!(c.task_count(), 1);
        assert!(parse_agent_state(br#"{"pid": "nonsense"}"#).is_err());
        assert!(parse_agent_state(b"[1,2").is_err());
    }

    #[test]
    fn a_task_both_master_and_agent_report_counts_once() {
        let master = parse_state(&fixture("fake.json")).unwrap();
        let mut agent = master.clone();
        agent.leader = None;
        let added = agent.frameworks[0].tasks[0].clone();
        agent.frameworks[0].tasks = vec![Task {
            id: "only-on-the-agent".into(),
            ..added
        }];
        agent.frameworks[0]
            .tasks
            .push(master.frameworks[0].tasks[0].clone());
        let merged = Catalog::merge([&master, &agent]);
        assert_eq!(merged.task_count(), master.task_count() + 1);
        assert_eq!(Catalog::merge([&master]).task_count(), master.task_count());
    }

    #[test]
    fn parses_the_mesos_dns_fixture() {
        let c = parse_state(&fixture("fake.json")).unwrap();
        assert_eq!(c.leader.as_ref().unwrap().host, "1.2.3.4");
        assert_eq!(c.agents.len(), 4);
        assert_eq!(c.frameworks.len(), 4);
        let liquor = c
            .frameworks
            .iter()
            .flat_map(|f| &f.tasks)
            .find(|t| t.name == "liquor.store");
        let d = liquor.unwrap().discovery.as_ref().unwrap();
        assert_eq!(d.ports.len(), 2);
        assert_eq!(d.ports[1].name, "https");
    }

    #[test]
    fn pid_cases_from_mesos_dns() {
        let table: serde_json::Value =
            serde_json::from_slice(&fixture("expected-pid-parse.json")).unwrap();
        for case in table["cases"].as_array().unwrap() {
            let text: String = serde_json::from_str(case["json"].as_str().unwrap().trim()).unwrap();
            let pid = parse_pid(&text).unwrap();
            assert_eq!(pid.id, case["id"].as_str().unwrap());
            assert_eq!(pid.host, case["host"].as_str().unwrap());
            assert_eq!(pid.port.to_string(), case["port"].as_str().unwrap());
        }
        assert!(parse_pid("").is_err());
        assert!(parse_pid("master!1.2.3.4;5050").is_err());
        assert!(parse_pid("m@1.2.3.4:notaport").is_err());
    }

    #[test]
    fn port_ranges_expand() {
        let table: serde_json::Value =
            serde_json::from_slice(&fixture("expected-resources-ports.json")).unwrap();
        for case in table["cases"].as_array().unwrap() {
            let ranges = parse_port_ranges(case["ports"].as_str().unwrap());
            let got: Vec<String> = ranges
                .iter()
                .flat_map(|r| r.begin..=r.end)
                .map(|p| p.to_string())
                .collect();
            let want: Vec<String> = serde_json::from_value(case["expanded"].clone()).unwrap();
            assert_eq!(got, want);
        }
        assert!(parse_port_ranges("").is_empty());
        assert!(parse_port_ranges("[]").is_empty());
        assert!(parse_port_ranges("[9-1, x-y]").is_empty());
    }

    #[test]
    fn bad_pid_rejects_the_whole_state() {
        let body = br#"{"leader":"master@1.2.3.4:5050","frameworks":[{"name":"x","pid":""}]}"#;
        assert!(matches!(parse_state(body), Err(StateError::BadPid { .. })));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for body in [
            &b""[..],
            b"{",
            b"[]",
            b"null",
            b"{\"leader\": 5}",
            b"{\"slaves\": {}}",
        ] {
            assert!(
                parse_state(body).is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(matches!(parse_state(b"{}"), Err(StateError::NoLeader)));
    }
}

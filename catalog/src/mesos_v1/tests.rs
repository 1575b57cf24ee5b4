//! Events decoded from JSON shaped as the master writes it (Mesos `docs/operator-http-api.md`,
//! `master.proto`), and the stream state's rules.

use std::collections::HashMap;
use std::time::Duration;

use super::*;
use crate::model::{DiscoveryPort, Label, PortRange};

const FRAMEWORK: &str = "0c2a6ea9-9f4a-4c23-9ec8-1e9cbf6c21b8-0000";
const AGENT: &str = "2915adf0-7df8-4a5d-a2b0-6c2a9c2f93b3-S0";

fn decode(json: &str) -> Event {
    decode_event(json.as_bytes()).unwrap_or_else(|e| panic!("{e}: {json}"))
}

fn subscribed() -> String {
    format!(
        r#"{{"type": "SUBSCRIBED", "subscribed": {{"get_state": {{
        "get_tasks": {{"tasks": [{task}], "completed_tasks": [{{"name": "old",
            "task_id": {{"value": "old.1"}}, "framework_id": {{"value": "{FRAMEWORK}"}},
            "agent_id": {{"value": "{AGENT}"}}, "state": "TASK_FINISHED"}}]}},
        "get_executors": {{}},
        "get_frameworks": {{"frameworks": [{{"framework_info": {{"user": "root",
            "name": "marathon", "id": {{"value": "{FRAMEWORK}"}}, "hostname": "m1.example",
            "checkpoint": true, "failover_timeout": 604800.0}},
            "active": true, "connected": true, "recovered": false,
            "registered_time": {{"nanoseconds": 1470820172762719232}}}}]}},
        "get_agents": {{"agents": [{{"agent_info": {{"hostname": "10.0.0.7", "port": 5051,
            "id": {{"value": "{AGENT}"}}, "resources": []}}, "active": true,
            "pid": "slave(1)@10.0.0.7:5051", "version": "1.11.0"}}]}}}},
        "heartbeat_interval_seconds": 15.0}}}}"#,
        task = task_json("web.1", "TASK_RUNNING")
    )
}

fn task_json(id: &str, state: &str) -> String {
    format!(
        r#"{{"name": "web", "task_id": {{"value": "{id}"}},
        "framework_id": {{"value": "{FRAMEWORK}"}}, "agent_id": {{"value": "{AGENT}"}},
        "executor_id": {{"value": "{id}"}}, "state": "{state}",
        "resources": [
            {{"name": "cpus", "type": "SCALAR", "scalar": {{"value": 0.1}}, "role": "*"}},
            {{"name": "ports", "type": "RANGES", "role": "*",
              "ranges": {{"range": [{{"begin": 31000, "end": 31001}}, {{"begin": 9, "end": 1}},
                                   {{"begin": 31005, "end": 70000}}]}}}},
            {{"name": "ports", "type": "RANGES", "revocable": {{}},
              "ranges": {{"range": [{{"begin": 32000, "end": 32000}}]}}}}],
        "statuses": [{{"task_id": {{"value": "{id}"}}, "state": "TASK_RUNNING",
            "source": "SOURCE_EXECUTOR", "agent_id": {{"value": "{AGENT}"}},
            "timestamp": 1470820172.5, "healthy": true, "uuid": "AAAA",
            "labels": {{"labels": [{{"key": "k", "value": "v"}}]}},
            "container_status": {{"container_id": {{"value": "c1"}}, "network_infos": [
                {{"ip_addresses": [{{"protocol": "IPv4", "ip_address": "9.0.1.2"}}],
                  "name": "dcos"}}]}}}}],
        "labels": {{"labels": [{{"key": "VIP_0", "value": "/web:80"}}]}},
        "discovery": {{"visibility": "FRAMEWORK", "name": "web-svc",
            "ports": {{"ports": [{{"number": 80, "name": "http", "protocol": "tcp",
                "labels": {{"labels": [{{"key": "VIP_0", "value": "/web:80"}}]}}}},
                {{"number": 70000, "protocol": "udp"}}]}},
            "labels": {{"labels": [{{"key": "dc", "value": "de1"}}]}}}}}}"#
    )
}

fn running_status(id: &str, state: &str, timestamp: f64, healthy: Option<bool>) -> String {
    let healthy = healthy.map_or(String::new(), |h| format!(r#", "healthy": {h}"#));
    format!(
        r#"{{"type": "TASK_UPDATED", "task_updated": {{"framework_id": {{"value": "{FRAMEWORK}"}},
        "state": "{state}", "status": {{"task_id": {{"value": "{id}"}}, "state": "{state}",
        "agent_id": {{"value": "{AGENT}"}}, "timestamp": {timestamp}{healthy}}}}}}}"#
    )
}

fn state_of(json: &str) -> StreamState {
    let mut state = StreamState::default();
    state.apply(decode(json)).unwrap();
    state
}

fn catalog(state: &StreamState) -> crate::Catalog {
    let pids = HashMap::from([(FRAMEWORK.to_string(), "scheduler(1)@10.0.0.9:8080".into())]);
    state.catalog("master@10.0.0.1:5050", &pids).unwrap()
}

#[test]
fn subscribed_snapshot_decodes_like_v0() {
    let Event::Subscribed {
        snapshot,
        heartbeat_interval,
    } = decode(&subscribed())
    else {
        panic!("not SUBSCRIBED")
    };
    assert_eq!(heartbeat_interval, Some(Duration::from_secs(15)));
    assert_eq!(snapshot.frameworks[0].name, "marathon");
    assert_eq!(snapshot.frameworks[0].hostname, "m1.example");
    assert_eq!(
        snapshot.agents[0].pid.as_deref(),
        Some("slave(1)@10.0.0.7:5051")
    );
    assert_eq!(snapshot.tasks.len(), 1, "completed tasks are left out");
    let task = &snapshot.tasks[0].task;
    assert_eq!((task.id.as_str(), task.agent_id.as_str()), ("web.1", AGENT));
    // Reversed and out-of-range ranges are skipped as v0 skips them; revocable ports are not
    // v0's `ports`.
    assert_eq!(
        task.ports,
        [PortRange {
            begin: 31000,
            end: 31001
        }]
    );
    let status = &task.statuses[0];
    assert_eq!(status.network_infos[0].ip_addresses, ["9.0.1.2"]);
    assert_eq!(status.labels[0].key, "k");
    assert_eq!(status.healthy, Some(true));
    let discovery = task.discovery.as_ref().unwrap();
    assert_eq!(discovery.name, "web-svc");
    assert_eq!(
        discovery.ports.len(),
        1,
        "a port beyond u16 is skipped, as in v0"
    );
    assert_eq!(
        discovery.ports[0],
        DiscoveryPort {
            number: 80,
            protocol: "tcp".into(),
            name: "http".into(),
            labels: vec![Label {
                key: "VIP_0".into(),
                value: "/web:80".into()
            }],
        }
    );
    assert_eq!(task.labels[0].value, "/web:80");

    let c = catalog(&StreamState::from(snapshot));
    assert_eq!(c.leader.as_ref().unwrap().port, 5050);
    assert_eq!(c.frameworks[0].pid.as_ref().unwrap().host, "10.0.0.9");
    assert_eq!(c.agents[0].pid.as_ref().unwrap().host, "10.0.0.7");
    assert_eq!(c.task_count(), 1);
}

#[test]
fn each_event_kind_decodes() {
    let added = format!(
        r#"{{"type": "TASK_ADDED", "task_added": {{"task": {}}}}}"#,
        task_json("t", "TASK_STAGING")
    );
    let Event::TaskAdded(entry) = decode(&added) else {
        panic!()
    };
    assert_eq!(
        (entry.framework_id.as_str(), entry.task.state.as_str()),
        (FRAMEWORK, "TASK_STAGING")
    );

    match decode(&running_status("t", "TASK_RUNNING", 2.0, Some(false))) {
        Event::TaskUpdated {
            framework_id,
            agent_id,
            task_id,
            state,
            status,
        } => {
            assert_eq!((framework_id.as_str(), task_id.as_str()), (FRAMEWORK, "t"));
            assert_eq!(agent_id.as_deref(), Some(AGENT));
            assert_eq!(
                (state.as_str(), status.healthy),
                ("TASK_RUNNING", Some(false))
            );
        }
        other => panic!("{other:?}"),
    }

    let agent = r#"{"type": "AGENT_ADDED", "agent_added": {"agent": {"agent_info":
        {"hostname": "a2", "id": {"value": "S2"}, "port": 5051}, "active": true,
        "version": "1.11.0", "pid": "slave(1)@10.0.0.8:5051"}}}"#;
    let want = AgentEntry {
        id: "S2".into(),
        hostname: "a2".into(),
        pid: Some("slave(1)@10.0.0.8:5051".into()),
    };
    assert_eq!(decode(agent), Event::AgentAdded(want));
    let removed = r#"{"type": "AGENT_REMOVED", "agent_removed": {"agent_id": {"value": "S2"}}}"#;
    assert_eq!(
        decode(removed),
        Event::AgentRemoved {
            agent_id: "S2".into()
        }
    );

    let fw = |kind: &str| {
        format!(
            r#"{{"type": "{kind}", "{}": {{"framework": {{"framework_info": {{"user": "u",
            "name": "chronos", "id": {{"value": "F2"}}}}, "active": true, "connected": true,
            "recovered": false}}}}}}"#,
            kind.to_lowercase()
        )
    };
    let entry = FrameworkEntry {
        id: "F2".into(),
        name: "chronos".into(),
        hostname: String::new(),
    };
    assert_eq!(
        decode(&fw("FRAMEWORK_ADDED")),
        Event::FrameworkAdded(entry.clone())
    );
    assert_eq!(
        decode(&fw("FRAMEWORK_UPDATED")),
        Event::FrameworkUpdated(entry)
    );
    let removed = r#"{"type": "FRAMEWORK_REMOVED", "framework_removed": {"framework_info":
        {"user": "u", "name": "chronos", "id": {"value": "F2"}}}}"#;
    assert_eq!(
        decode(removed),
        Event::FrameworkRemoved {
            framework_id: "F2".into()
        }
    );

    assert_eq!(decode(r#"{"type": "HEARTBEAT"}"#), Event::Heartbeat);
    assert_eq!(
        decode(r#"{"type": "OPERATION_UPDATED", "x": 1}"#),
        Event::Unknown("OPERATION_UPDATED".into())
    );
    assert_eq!(
        decode(r#"{"type": "UNKNOWN"}"#),
        Event::Unknown("UNKNOWN".into())
    );
}

#[test]
fn bad_events_say_what_is_missing() {
    let cases = [
        (
            r#"{"type": "TASK_UPDATED", "task_updated": {"framework_id": {"value": "F"},
            "state": "TASK_RUNNING", "status": {"state": "TASK_RUNNING"}}}"#,
            "TASK_UPDATED without status.task_id",
        ),
        (
            r#"{"type": "TASK_UPDATED", "task_updated": {"state": "TASK_RUNNING",
            "status": {"task_id": {"value": "t"}}}}"#,
            "TASK_UPDATED without framework_id",
        ),
        (
            r#"{"type": "TASK_UPDATED", "task_updated": {"framework_id": {"value": "F"},
            "status": {"task_id": {"value": "t"}}}}"#,
            "TASK_UPDATED without state",
        ),
        (
            r#"{"type": "TASK_ADDED", "task_added": {"task": {"name": "x",
            "framework_id": {"value": "F"}}}}"#,
            "TASK_ADDED task without task_id",
        ),
        (r#"{"type": "TASK_ADDED"}"#, "TASK_ADDED without task_added"),
        (
            r#"{"type": "AGENT_ADDED", "agent_added": {"agent": {"pid": "x"}}}"#,
            "AGENT_ADDED agent without agent_info",
        ),
        (
            r#"{"type": "AGENT_REMOVED", "agent_removed": {"agent_id": {}}}"#,
            "AGENT_REMOVED without agent_id",
        ),
        (
            r#"{"type": "FRAMEWORK_REMOVED", "framework_removed": {}}"#,
            "FRAMEWORK_REMOVED without framework_removed.framework_info",
        ),
        (
            r#"{"type": "SUBSCRIBED", "subscribed": {"get_state": {"get_agents": {"agents":
            [{"agent_info": {"hostname": "h"}}]}}}}"#,
            "SUBSCRIBED get_agents.agents[0] without agent_info.id",
        ),
        (
            r#"{"type": "SUBSCRIBED", "subscribed": {}}"#,
            "SUBSCRIBED without subscribed.get_state",
        ),
        (r#"{"subscribed": {}}"#, "event without type"),
    ];
    for (json, want) in cases {
        let error = decode_event(json.as_bytes()).unwrap_err();
        assert_eq!(error.to_string(), want, "{json}");
    }
    let heartbeat = r#"{"type": "SUBSCRIBED",
        "subscribed": {"get_state": {}, "heartbeat_interval_seconds": -1}}"#;
    assert!(matches!(
        decode_event(heartbeat.as_bytes()),
        Err(EventError::BadHeartbeat(_))
    ));
    for garbage in [
        "",
        "{",
        "[]",
        "null",
        r#"{"type": 5}"#,
        r#"{"type": "TASK_ADDED", "task_added": {"task": {"statuses": {}}}}"#,
    ] {
        assert!(
            matches!(decode_event(garbage.as_bytes()), Err(EventError::Json(_))),
            "{garbage}"
        );
    }
}

#[test]
fn task_updates_follow_the_masters_rules() {
    let mut state = state_of(&subscribed());
    // Same state as the last status: replaces it (a health check update).
    state
        .apply(decode(&running_status(
            "web.1",
            "TASK_RUNNING",
            3.0,
            Some(false),
        )))
        .unwrap();
    let task = &catalog(&state).frameworks[0].tasks[0];
    assert_eq!(task.statuses.len(), 1);
    assert!(task.is_unhealthy());
    // A new state appends.
    state
        .apply(decode(&running_status("web.1", "TASK_KILLING", 4.0, None)))
        .unwrap();
    let task = &catalog(&state).frameworks[0].tasks[0];
    assert_eq!(task.state, "TASK_KILLING");
    assert_eq!(
        task.statuses
            .iter()
            .map(|s| s.timestamp)
            .collect::<Vec<_>>(),
        [3.0, 4.0]
    );
    // A terminal state removes it; the same again, or for an unknown framework, is harmless.
    for _ in 0..2 {
        state
            .apply(decode(&running_status("web.1", "TASK_KILLED", 5.0, None)))
            .unwrap();
    }
    assert_eq!(state.task_count(), 0);
    let gone = running_status("web.1", "TASK_UNREACHABLE", 5.0, None).replace(FRAMEWORK, "F9");
    state.apply(decode(&gone)).unwrap();
    // A non-terminal update for a task the state does not hold cannot be placed.
    let error = state
        .apply(decode(&running_status("web.1", "TASK_RUNNING", 6.0, None)))
        .unwrap_err();
    assert!(error.0.contains("unknown task"), "{error}");
}

#[test]
fn frameworks_and_agents_come_and_go() {
    let mut state = state_of(&subscribed());
    let orphan = format!(
        r#"{{"type": "TASK_ADDED", "task_added": {{"task": {}}}}}"#,
        task_json("t", "TASK_STAGING")
    )
    .replace(FRAMEWORK, "F9");
    assert!(
        state
            .apply(decode(&orphan))
            .unwrap_err()
            .0
            .contains("unknown framework F9")
    );

    let renamed = format!(
        r#"{{"type": "FRAMEWORK_UPDATED", "framework_updated": {{"framework":
        {{"framework_info": {{"name": "marathon-2", "id": {{"value": "{FRAMEWORK}"}}}}}}}}}}"#
    );
    state.apply(decode(&renamed)).unwrap();
    let c = catalog(&state);
    assert_eq!(
        (c.frameworks[0].name.as_str(), c.task_count()),
        ("marathon-2", 1),
        "tasks kept"
    );

    let removed = format!(
        r#"{{"type": "FRAMEWORK_REMOVED", "framework_removed": {{"framework_info":
        {{"id": {{"value": "{FRAMEWORK}"}}}}}}}}"#
    );
    state.apply(decode(&removed)).unwrap();
    assert_eq!((state.framework_count(), state.task_count()), (0, 0));

    let agent_removed = format!(
        r#"{{"type": "AGENT_REMOVED", "agent_removed": {{"agent_id": {{"value": "{AGENT}"}}}}}}"#
    );
    state.apply(decode(&agent_removed)).unwrap();
    state.apply(decode(&agent_removed)).unwrap();
    assert_eq!(state.agent_count(), 0);
    state.apply(Event::Heartbeat).unwrap();
    state.apply(Event::Unknown("X".into())).unwrap();
    // A new SUBSCRIBED starts over.
    state.apply(decode(&subscribed())).unwrap();
    assert_eq!(
        (
            state.framework_count(),
            state.agent_count(),
            state.task_count()
        ),
        (1, 1, 1)
    );
}

#[test]
fn catalog_needs_a_leader_and_good_pids() {
    let state = state_of(&subscribed());
    assert!(matches!(
        state.catalog(" ", &HashMap::new()),
        Err(crate::mesos::StateError::NoLeader)
    ));
    let pids = HashMap::from([(FRAMEWORK.to_string(), "nonsense".to_string())]);
    assert!(state.catalog("master@1.2.3.4:5050", &pids).is_err());
    // A leader that is not a pid is kept raw, as v0 keeps it.
    let c = state.catalog("somewhere", &HashMap::new()).unwrap();
    assert!(c.leader.is_none() && c.frameworks[0].pid.is_none());
}

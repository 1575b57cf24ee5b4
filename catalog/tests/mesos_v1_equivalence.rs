//! The event stream gives the catalog `/master/state` gives: for each v0 state document, the
//! SUBSCRIBED snapshot made of it, framed, decoded and applied, yields exactly what
//! `parse_state` yields; and so does the snapshot of a first state followed by the events
//! between each pair of states of a generated churn, at every step.

use std::collections::HashMap;

use beacon_catalog::Catalog;
use beacon_catalog::mesos::parse_state;
use beacon_catalog::mesos_v1::{
    Event, RecordIo, StreamState, decode_event, encode_record, events_between_v0, snapshot_from_v0,
};
use serde_json::{Value, json};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/conformance/mesos-dns"
);

/// Every `/master/state` document among the conformance data.
const STATE_FIXTURES: [&str; 2] = ["fake.json", "fake-loopback-leader.json"];

fn fixture(name: &str) -> Value {
    let bytes = std::fs::read(format!("{FIXTURES}/{name}")).expect("shared/ beside the checkout");
    serde_json::from_slice(&bytes).expect("fixture is JSON")
}

/// What `/master/state-summary` would give: scheduler pids by framework id.
fn framework_pids(state: &Value) -> HashMap<String, String> {
    let frameworks = state["frameworks"].as_array().into_iter().flatten();
    frameworks
        .filter_map(|f| Some((f["id"].as_str()?.into(), f["pid"].as_str()?.into())))
        .collect()
}

fn v0_catalog(state: &Value) -> Catalog {
    parse_state(&serde_json::to_vec(state).unwrap()).expect("v0 state parses")
}

fn v1_catalog(stream: &StreamState, state: &Value) -> Catalog {
    let leader = state["leader"].as_str().unwrap_or_default();
    stream
        .catalog(leader, &framework_pids(state))
        .expect("stream catalog")
}

/// Frames `events` into one byte stream, feeds it in chunks of `cut` bytes, and decodes it.
fn through_the_wire(events: &[Value], cut: usize) -> Vec<Event> {
    let stream: Vec<u8> = (events.iter())
        .flat_map(|e| encode_record(&serde_json::to_vec(e).unwrap()))
        .collect();
    let mut decoder = RecordIo::new(256 << 20);
    let mut out = Vec::new();
    for chunk in stream.chunks(cut.max(1)) {
        decoder.push(chunk);
        while let Some(record) = decoder.next_record().expect("framing") {
            out.push(decode_event(&record).expect("event decodes"));
        }
    }
    assert_eq!(out.len(), events.len());
    out
}

fn subscribe(state: &Value, cut: usize) -> StreamState {
    let mut stream = StreamState::default();
    for event in through_the_wire(&[snapshot_from_v0(state)], cut) {
        stream.apply(event).expect("snapshot applies");
    }
    stream
}

#[test]
fn snapshot_of_each_fixture_gives_the_v0_catalog() {
    for name in STATE_FIXTURES {
        let state = fixture(name);
        let want = v0_catalog(&state);
        for cut in [1, 7, 4096, usize::MAX] {
            let got = v1_catalog(&subscribe(&state, cut), &state);
            assert_eq!(got, want, "{name}, chunks of {cut}");
        }
        assert!(
            want.task_count() >= 8,
            "{name}: the fixture's tasks are all there"
        );
    }
}

#[test]
fn events_between_a_state_and_itself_are_none() {
    let state = fixture("fake.json");
    assert_eq!(events_between_v0(&state, &state), Vec::<Value>::new());
}

#[test]
fn churn_from_each_fixture_stays_equal_at_every_step() {
    for (seed, name) in [
        (1, "fake.json"),
        (2, "fake-loopback-leader.json"),
        (3, "fake.json"),
    ] {
        let mut state = fixture(name);
        dedupe_tasks(&mut state);
        let mut churn = Churn::new(seed);
        let mut stream = subscribe(&state, 1 + seed as usize);
        assert_eq!(v1_catalog(&stream, &state), v0_catalog(&state));
        let mut kinds: HashMap<String, usize> = HashMap::new();
        for step in 0..250 {
            let next = churn.step(&state, step);
            let events = events_between_v0(&state, &next);
            for e in &events {
                *kinds.entry(e["type"].as_str().unwrap().into()).or_default() += 1;
                // The churn follows the master's rules, so no task is ever re-sent whole.
                let added = &e["task_added"]["task"];
                let (fw, id) = (&added["framework_id"]["value"], &added["task_id"]["value"]);
                let known = state["frameworks"].as_array().unwrap().iter().any(|f| {
                    &f["id"] == fw
                        && f["tasks"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|t| &t["id"] == id)
                });
                assert!(!known, "step {step}: a replacing TASK_ADDED: {e}");
            }
            let cut = 1 + churn.below(600);
            for event in through_the_wire(&events, cut) {
                stream
                    .apply(event)
                    .unwrap_or_else(|u| panic!("{name} step {step}: {u}"));
            }
            let (got, want) = (v1_catalog(&stream, &next), v0_catalog(&next));
            assert_eq!(got, want, "{name} (seed {seed}) step {step}: {events:#?}");
            state = next;
        }
        for kind in [
            "FRAMEWORK_ADDED",
            "FRAMEWORK_UPDATED",
            "FRAMEWORK_REMOVED",
            "AGENT_ADDED",
        ] {
            assert!(
                kinds.contains_key(kind),
                "{kind} never generated: {kinds:?}"
            );
        }
        for kind in ["AGENT_REMOVED", "TASK_ADDED", "TASK_UPDATED"] {
            assert!(
                kinds.contains_key(kind),
                "{kind} never generated: {kinds:?}"
            );
        }
    }
}

/// Mesos-DNS's fixture lists one task twice, which a master cannot do (task ids are unique in a
/// framework); churn on one copy would have no v1 equivalent.
fn dedupe_tasks(state: &mut Value) {
    for fw in state["frameworks"].as_array_mut().unwrap() {
        let mut seen = Vec::new();
        fw["tasks"].as_array_mut().unwrap().retain(|t| {
            let id = t["id"].as_str().unwrap().to_string();
            let fresh = !seen.contains(&id);
            seen.push(id);
            fresh
        });
    }
}

/// A deterministic generator of master state changes, following the master's rules: new
/// frameworks, agents and tasks come last; a status of the last one's state replaces it; a task
/// that ends leaves the list.
struct Churn {
    rng: u64,
    serial: u64,
}

const LIVE_STATES: [&str; 4] = [
    "TASK_STAGING",
    "TASK_STARTING",
    "TASK_RUNNING",
    "TASK_KILLING",
];

impl Churn {
    fn new(seed: u64) -> Self {
        Self {
            rng: seed,
            serial: 0,
        }
    }

    /// splitmix64.
    fn next(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn id(&mut self, what: &str) -> String {
        self.serial += 1;
        format!("gen-{what}-{}", self.serial)
    }

    /// The state after one to three changes.
    fn step(&mut self, state: &Value, step: usize) -> Value {
        let mut next = state.clone();
        for _ in 0..1 + self.below(3) {
            self.change(&mut next, 1_500_000_000.0 + step as f64 + 0.25);
        }
        next
    }

    fn change(&mut self, state: &mut Value, now: f64) {
        let frameworks = state["frameworks"].as_array().map_or(0, Vec::len);
        let agents = state["slaves"].as_array().map_or(0, Vec::len);
        match self.below(12) {
            0 => self.add_framework(state),
            1 if frameworks > 2 => {
                let i = self.below(frameworks);
                state["frameworks"].as_array_mut().unwrap().remove(i);
            }
            2 if frameworks > 0 => {
                let i = self.below(frameworks);
                let fw = &mut state["frameworks"][i];
                fw["hostname"] = json!(format!("host-{}.example", self.below(5)));
                fw["name"] = json!(format!("{}-x", fw["name"].as_str().unwrap_or_default()));
            }
            3 => {
                let id = self.id("agent");
                let ip = format!("10.1.{}.{}", self.below(250), self.below(250));
                state["slaves"].as_array_mut().unwrap().push(json!({
                    "id": id, "hostname": ip, "pid": format!("slave(1)@{ip}:5051"),
                }));
            }
            4 if agents > 1 => {
                let i = self.below(agents);
                state["slaves"].as_array_mut().unwrap().remove(i);
            }
            5 | 6 if frameworks > 0 => self.add_task(state, now),
            7 => self.end_task(state),
            _ => self.update_task(state, now),
        }
    }

    fn add_framework(&mut self, state: &mut Value) {
        let id = self.id("framework");
        let mut fw = json!({"id": id, "name": format!("fw{}", self.below(4)),
            "hostname": "localhost", "tasks": [], "completed_tasks": [], "active": true});
        if self.below(2) == 0 {
            fw["pid"] = json!(format!("scheduler(1)@10.2.0.{}:8080", self.below(250)));
        }
        state["frameworks"].as_array_mut().unwrap().push(fw);
    }

    fn add_task(&mut self, state: &mut Value, now: f64) {
        let agent = self.pick_agent(state);
        let id = self.id("task");
        let name = ["web", "db", "cache.v2", "Odd Name"][self.below(4)];
        let port = 31000 + self.below(1000);
        let ports = format!("[{port}-{}]", port + self.below(3));
        let mut task = json!({"id": id, "name": name, "slave_id": agent,
            "state": "TASK_STAGING", "statuses": [],
            "resources": {"cpus": 0.5, "mem": 128, "ports": ports},
            "labels": [{"key": "team", "value": "a"}]});
        if self.below(2) == 0 {
            task["discovery"] = json!({"visibility": "FRAMEWORK", "name": format!("{name}-svc"),
                "ports": {"ports": [{"number": 80, "protocol": "tcp", "name": "http",
                    "labels": {"labels": [{"key": "VIP_0", "value": "/web:80"}]}}]},
                "labels": {"labels": [{"key": "dc", "value": "x"}]}});
        }
        if self.below(2) == 0 {
            let status = self.status("TASK_RUNNING", now);
            task["state"] = json!("TASK_RUNNING");
            task["statuses"] = json!([status]);
        }
        let frameworks = state["frameworks"].as_array_mut().unwrap();
        let i = self.below(frameworks.len());
        frameworks[i]["tasks"].as_array_mut().unwrap().push(task);
    }

    /// A task reaches a terminal state (or becomes unreachable): it leaves the list.
    fn end_task(&mut self, state: &mut Value) {
        if let Some((f, t)) = self.pick_task(state) {
            state["frameworks"][f]["tasks"]
                .as_array_mut()
                .unwrap()
                .remove(t);
        }
    }

    /// A status update: a new live state, or a health check result while running.
    fn update_task(&mut self, state: &mut Value, now: f64) {
        let Some((f, t)) = self.pick_task(state) else {
            return;
        };
        let new_state = match self.below(3) {
            0 => LIVE_STATES[self.below(LIVE_STATES.len())],
            _ => "TASK_RUNNING",
        };
        let mut status = self.status(new_state, now);
        if new_state == "TASK_RUNNING" {
            status["healthy"] = json!(self.below(2) == 0);
        }
        let task = &mut state["frameworks"][f]["tasks"][t];
        task["state"] = json!(new_state);
        let statuses = task["statuses"].as_array_mut().unwrap();
        // The master's rule (`Master::updateTask`): the same state replaces the last status.
        if statuses
            .last()
            .is_some_and(|s| s["state"] == json!(new_state))
        {
            statuses.pop();
        }
        statuses.push(status);
    }

    fn status(&mut self, state: &str, now: f64) -> Value {
        let ip = format!("9.0.{}.{}", self.below(250), self.below(250));
        json!({"state": state, "timestamp": now,
            "labels": [{"key": "Docker.NetworkSettings.IPAddress", "value": ip}],
            "container_status": {"network_infos": [{"name": "dcos",
                "ip_addresses": [{"protocol": "IPv4", "ip_address": ip},
                                 {"protocol": "IPv6", "ip_address": "fd01:b::1:8000:2"}]}]}})
    }

    fn pick_agent(&mut self, state: &Value) -> String {
        let agents = state["slaves"].as_array().unwrap();
        agents[self.below(agents.len())]["id"]
            .as_str()
            .unwrap()
            .into()
    }

    fn pick_task(&mut self, state: &Value) -> Option<(usize, usize)> {
        let frameworks = state["frameworks"].as_array()?;
        let all: Vec<(usize, usize)> = (frameworks.iter().enumerate())
            .flat_map(|(f, fw)| {
                (0..fw["tasks"].as_array().map_or(0, Vec::len)).map(move |t| (f, t))
            })
            .collect();
        (!all.is_empty()).then(|| all[self.below(all.len())])
    }
}

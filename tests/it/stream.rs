//! The Mesos master's event stream, against `beacon fake-master` (which streams the difference
//! each time its state file is replaced): the records an agent builds from the stream equal
//! those a polling agent builds from `/master/state`, through churn; a dropped stream and a
//! silent one are noticed and re-synced; a master without `/api/v1` is polled.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

/// A native-config agent following `master`, by its event stream or (`events = false`) by
/// polling every second.
fn agent(dir: &TempDir, name: &str, master: SocketAddr, events: bool) -> (Proc, SocketAddr) {
    let (dns, http) = (free_port(), free_port());
    let toml = format!(
        "[mesos_dns]\nmasters = [\"{master}\"]\nrefresh_seconds = 1\nlistener = \"127.0.0.1\"\n\
         port = {dns}\nhttp_listener = \"127.0.0.1\"\nhttp_port = {http}\nexternal_on = false\n\
         [mesos_master]\nevents = {events}\n[vip]\ndata_plane = \"off\"\n"
    );
    let config = dir.path(&format!("{name}.toml"));
    std::fs::write(&config, toml).unwrap();
    let child = beacon()
        .args(["agent", "--config"])
        .arg(&config)
        .spawn()
        .unwrap();
    let http: SocketAddr = ([127, 0, 0, 1], http).into();
    wait_until("agent ready", || {
        http_get(http, "/readyz").is_ok_and(|r| r.status == 200)
    });
    (Proc(child), http)
}

fn fixture() -> Value {
    serde_json::from_slice(&std::fs::read(conformance("fake-loopback-leader.json")).unwrap())
        .unwrap()
}

/// Every record the agent serves, as `/v1/axfr` lists them (without the zone's serial, which
/// counts this agent's reloads).
fn axfr(http: SocketAddr) -> Value {
    let mut records = http_get(http, "/v1/axfr").map_or(Value::Null, |r| r.json());
    if let Some(fields) = records.as_object_mut() {
        fields.remove("Serial");
    }
    records
}

fn metric(http: SocketAddr, name: &str) -> u64 {
    let text = http_get(http, "/metrics")
        .map(|r| r.text())
        .unwrap_or_default();
    (text.lines())
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

/// A running copy of the first running task of the first framework with one, under a new id
/// and name.
fn copy_task(state: &Value, id: &str, name: &str) -> (usize, Value) {
    let frameworks = state["frameworks"].as_array().unwrap();
    for (i, fw) in frameworks.iter().enumerate() {
        let tasks = fw["tasks"].as_array().into_iter().flatten();
        if let Some(task) = tasks.into_iter().find(|t| t["state"] == "TASK_RUNNING") {
            let mut task = task.clone();
            task["id"] = id.into();
            task["name"] = name.into();
            return (i, task);
        }
    }
    panic!("no running task in the fixture");
}

/// The states the churn test goes through: tasks added, killed, given a new status with a
/// container address, a framework removed.
fn churn(mut state: Value) -> Vec<Value> {
    let mut steps = Vec::new();
    let (fw, task) = copy_task(&state, "churn-1", "churn-one");
    state["frameworks"][fw]["tasks"]
        .as_array_mut()
        .unwrap()
        .push(task);
    steps.push(state.clone());
    let (fw, mut task) = copy_task(&state, "churn-2", "churn-two");
    let status = json!({"state": "TASK_RUNNING", "timestamp": 1.9e9, "container_status": {
        "network_infos": [{"ip_addresses": [{"ip_address": "10.9.8.7"}], "name": "dcos"}]}});
    task["statuses"].as_array_mut().unwrap().push(status);
    state["frameworks"][fw]["tasks"]
        .as_array_mut()
        .unwrap()
        .push(task);
    steps.push(state.clone());
    let tasks = state["frameworks"][fw]["tasks"].as_array_mut().unwrap();
    let killed = tasks.remove(0);
    let completed = state["frameworks"][fw]["completed_tasks"].as_array_mut();
    if let Some(completed) = completed {
        completed.push(killed);
    }
    steps.push(state.clone());
    let last = state["frameworks"].as_array().unwrap().len() - 1;
    state["frameworks"].as_array_mut().unwrap().remove(last);
    steps.push(state.clone());
    steps
}

#[test]
fn the_stream_and_polling_serve_the_same_records_through_churn() {
    let dir = TempDir::new("stream-same");
    let master = FakeMaster::start(&dir, fixture().to_string().as_bytes());
    let (_polled, polled) = agent(&dir, "polled", master.addr, false);
    let (_streamed, streamed) = agent(&dir, "streamed", master.addr, true);
    let same = |what: &str| {
        wait_for(what, Duration::from_secs(20), || {
            let (a, b) = (axfr(polled), axfr(streamed));
            a != Value::Null && a == b
        })
    };
    same("the snapshot gives the polled records");
    assert!(metric(streamed, "beacon_catalog_stream_connected") == 1);
    for (i, state) in churn(fixture()).into_iter().enumerate() {
        let before = axfr(polled);
        master.serve(state.to_string().as_bytes());
        wait_for(
            &format!("step {i}: polled"),
            Duration::from_secs(20),
            || {
                let now = axfr(polled);
                now != Value::Null && now != before
            },
        );
        same(&format!("step {i}: the events give the polled records"));
    }
    assert!(metric(streamed, "beacon_catalog_events_total") >= 4);
    assert_eq!(metric(streamed, "beacon_catalog_stream_ended_total"), 0);
}

#[test]
fn a_new_task_is_named_from_the_stream_without_a_poll() {
    let dir = TempDir::new("stream-fresh");
    let master = FakeMaster::start(&dir, fixture().to_string().as_bytes());
    // Polling would take a minute: refresh_seconds is 60 for this agent.
    let (dns, http) = (free_port(), free_port());
    let toml = format!(
        "[mesos_dns]\nmasters = [\"{}\"]\nrefresh_seconds = 60\nlistener = \"127.0.0.1\"\n\
         port = {dns}\nhttp_listener = \"127.0.0.1\"\nhttp_port = {http}\nexternal_on = false\n\
         [vip]\ndata_plane = \"off\"\n",
        master.addr
    );
    let config = dir.path("agent.toml");
    std::fs::write(&config, toml).unwrap();
    let _agent = Proc(
        beacon()
            .args(["agent", "--config"])
            .arg(&config)
            .spawn()
            .unwrap(),
    );
    let (dns, http): (SocketAddr, SocketAddr) =
        (([127, 0, 0, 1], dns).into(), ([127, 0, 0, 1], http).into());
    wait_until("ready", || {
        http_get(http, "/readyz").is_ok_and(|r| r.status == 200)
    });
    let mut state = fixture();
    let (fw, task) = copy_task(&state, "fresh-1", "freshtask");
    state["frameworks"][fw]["tasks"]
        .as_array_mut()
        .unwrap()
        .push(task);
    master.serve(state.to_string().as_bytes());
    let framework = state["frameworks"][fw]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let name = format!("freshtask.{framework}.mesos.");
    assert_eq!(metric(http, "beacon_catalog_stream_connected"), 1);
    wait_for("the new task answered", Duration::from_secs(10), || {
        let reply = query(dns, &name, hickory_proto::rr::RecordType::A, Ask::UDP);
        !reply.answers.is_empty()
    });
    assert!(metric(http, "beacon_catalog_refreshes_total") >= 1);
}

#[test]
fn a_dropped_stream_is_subscribed_again_and_resynced() {
    let dir = TempDir::new("stream-dropped");
    let mut master = FakeMaster::start(&dir, fixture().to_string().as_bytes());
    let (_agent, http) = agent(&dir, "agent", master.addr, true);
    let before = axfr(http);
    // The master goes away and comes back on the same address with a task more.
    let addr = master.addr;
    drop(master);
    let mut state = fixture();
    let (fw, task) = copy_task(&state, "after-drop", "afterdrop");
    state["frameworks"][fw]["tasks"]
        .as_array_mut()
        .unwrap()
        .push(task);
    master = FakeMaster::start_on(&dir, state.to_string().as_bytes(), addr);
    wait_for(
        "the stream's end is counted",
        Duration::from_secs(20),
        || metric(http, "beacon_catalog_stream_ended_total") >= 1,
    );
    wait_for(
        "re-synced from a new snapshot",
        Duration::from_secs(40),
        || {
            let now = axfr(http);
            now != before && now.to_string().contains("afterdrop")
        },
    );
    drop(master);
}

#[test]
fn a_silent_stream_is_noticed_and_resynced() {
    let dir = TempDir::new("stream-silent");
    let master = FakeMaster::start_with(
        &dir,
        fixture().to_string().as_bytes(),
        &["--heartbeat-secs", "1"],
    );
    let (_agent, http) = agent(&dir, "agent", master.addr, true);
    // Frozen, the master keeps its connections open but sends nothing, not even heartbeats.
    let pid = master.pid().to_string();
    let signal = |sig: &str| {
        assert!(
            Command::new("kill")
                .args([sig, &pid])
                .status()
                .unwrap()
                .success()
        );
    };
    signal("-STOP");
    let mut state = fixture();
    let (fw, task) = copy_task(&state, "after-silence", "aftersilence");
    state["frameworks"][fw]["tasks"]
        .as_array_mut()
        .unwrap()
        .push(task);
    let tmp = master.state.with_extension("tmp");
    std::fs::write(&tmp, state.to_string()).unwrap();
    std::fs::rename(&tmp, &master.state).unwrap();
    let noticed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for("the silence is noticed", Duration::from_secs(20), || {
            metric(http, "beacon_catalog_stream_ended_total") >= 1
        })
    }));
    signal("-CONT");
    noticed.unwrap();
    wait_for(
        "re-synced once the master answers",
        Duration::from_secs(40),
        || axfr(http).to_string().contains("aftersilence"),
    );
}

#[test]
fn a_master_without_the_v1_api_is_polled() {
    let dir = TempDir::new("stream-nov1");
    let master = FakeMaster::start_with(&dir, fixture().to_string().as_bytes(), &["--no-v1"]);
    let (_agent, http) = agent(&dir, "agent", master.addr, true);
    assert!(metric(http, "beacon_catalog_refreshes_total") >= 1);
    assert_eq!(metric(http, "beacon_catalog_stream_connected"), 0);
    let mut state = fixture();
    let (fw, task) = copy_task(&state, "polled-1", "polledtask");
    state["frameworks"][fw]["tasks"]
        .as_array_mut()
        .unwrap()
        .push(task);
    master.serve(state.to_string().as_bytes());
    wait_for(
        "the poll picks the change up",
        Duration::from_secs(20),
        || axfr(http).to_string().contains("polledtask"),
    );
}

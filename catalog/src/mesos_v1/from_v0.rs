//! v0 `/master/state` documents turned into the v1 events a master would stream for them: what a
//! fake master needs to serve SUBSCRIBE from the same state files it serves `/master/state` from.
//!
//! The output carries every field the decoder reads (and a few more, for realism), so that
//! decoding it gives what `parse_state` gives for the document. Two things do not carry over,
//! as in a real v1 stream: the leader and the scheduler pids (the fake master serves those
//! through `/master/state-summary`).

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::mesos::parse_port_ranges;

/// The SUBSCRIBED event (`{"type":"SUBSCRIBED","subscribed":{...}}`) for a v0 state document:
/// its frameworks, agents and `frameworks[].tasks`. Completed and unreachable tasks and
/// completed frameworks are left out, as `parse_state` leaves them out.
///
/// A framework without an `id` gets `v0-framework-<index>` (v1 needs one to place its tasks);
/// each task's `framework_id` is its enclosing framework's, whatever the task itself says.
pub fn snapshot_from_v0(state: &Value) -> Value {
    let frameworks = frameworks_of(state);
    let tasks: Vec<Value> = (frameworks.iter())
        .flat_map(|(id, fw)| tasks_of(fw).iter().map(move |t| v1_task(id, t)))
        .collect();
    let agents: Vec<Value> = agents_of(state).iter().map(v1_agent).collect();
    let frameworks: Vec<Value> = (frameworks.iter())
        .map(|(id, fw)| v1_framework(id, fw))
        .collect();
    json!({
        "type": "SUBSCRIBED",
        "subscribed": {
            "get_state": {
                "get_tasks": { "tasks": tasks },
                "get_executors": {},
                "get_frameworks": { "frameworks": frameworks },
                "get_agents": { "agents": agents },
            },
            "heartbeat_interval_seconds": 15.0,
        },
    })
}

/// The events that take a stream from v0 state `old` to v0 state `new`, in an order that
/// applies cleanly: FRAMEWORK_ADDED/UPDATED, AGENT_ADDED (also for an agent whose info
/// changed, as on re-registration), then per framework TASK_ADDED for new tasks, TASK_UPDATED
/// for changed ones (one per new status, each with the task's new state) and TASK_UPDATED to
/// TASK_KILLED for tasks gone from the list, then FRAMEWORK_REMOVED and AGENT_REMOVED.
///
/// Where v1 has no event for a change (a task's name, labels or ports changed, statuses
/// rewritten other than by the master's rule of appending or replacing the last, a state change
/// without statuses), the task is sent again in a TASK_ADDED, which the stream state takes as a
/// replacement: a real master never does that, since none of those changes happen to a task.
/// New entries must come last in `new` for the stream's order to match (v1 only appends); a
/// task left in the list with a terminal state is dropped by the stream at once.
pub fn events_between_v0(old: &Value, new: &Value) -> Vec<Value> {
    let old_fws = frameworks_of(old);
    let new_fws = frameworks_of(new);
    let old_by_id: HashMap<&str, &Value> = old_fws.iter().map(|(i, f)| (i.as_str(), *f)).collect();
    let new_ids: HashMap<&str, &Value> = new_fws.iter().map(|(i, f)| (i.as_str(), *f)).collect();
    let mut events = Vec::new();
    for (id, fw) in &new_fws {
        let info = v1_framework(id, fw);
        match old_by_id.get(id.as_str()) {
            None => events.push(event("FRAMEWORK_ADDED", json!({"framework": info}))),
            Some(o) if v1_framework(id, o) != info => {
                events.push(event("FRAMEWORK_UPDATED", json!({"framework": info})));
            }
            Some(_) => {}
        }
    }
    let old_agents: HashMap<String, Value> = agents_of(old)
        .iter()
        .map(|a| (agent_id(a), v1_agent(a)))
        .collect();
    let new_agents: Vec<(String, Value)> = agents_of(new)
        .iter()
        .map(|a| (agent_id(a), v1_agent(a)))
        .collect();
    for (id, agent) in &new_agents {
        if old_agents.get(id) != Some(agent) {
            events.push(event("AGENT_ADDED", json!({"agent": agent})));
        }
    }
    for (id, fw) in &new_fws {
        let old_tasks = old_by_id.get(id.as_str()).map_or(&[][..], |o| tasks_of(o));
        events.extend(task_events(id, old_tasks, tasks_of(fw)));
    }
    for (id, fw) in &old_fws {
        if !new_ids.contains_key(id.as_str()) {
            let info = &v1_framework(id, fw)["framework_info"];
            events.push(event("FRAMEWORK_REMOVED", json!({"framework_info": info})));
        }
    }
    let new_agent_ids: Vec<&String> = new_agents.iter().map(|(id, _)| id).collect();
    for a in agents_of(old) {
        let id = agent_id(a);
        if !new_agent_ids.contains(&&id) {
            events.push(event("AGENT_REMOVED", json!({"agent_id": {"value": id}})));
        }
    }
    events
}

/// The task events of one framework present in `new` (with no old tasks when it is new). A
/// repeated task id (which a master cannot have, but a test document can) pairs the n-th copy
/// in `new` with the n-th in `old`.
fn task_events(framework_id: &str, old: &[Value], new: &[Value]) -> Vec<Value> {
    let mut old_by_id: HashMap<&str, Vec<&Value>> = HashMap::new();
    for t in old {
        old_by_id.entry(str_field(t, "id")).or_default().push(t);
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut events = Vec::new();
    for task in new {
        let id = str_field(task, "id");
        let copy = seen.entry(id).or_default();
        let before = old_by_id.get(id).and_then(|copies| copies.get(*copy));
        *copy += 1;
        if before.is_some_and(|b| *b == task) {
            continue; // unchanged: no need to convert it to compare
        }
        let now = v1_task(framework_id, task);
        match before {
            None => events.push(task_added(now)),
            Some(before) => {
                events.extend(task_changes(
                    framework_id,
                    &v1_task(framework_id, before),
                    now,
                ));
            }
        }
    }
    for task in old {
        let id = str_field(task, "id");
        // Marked seen so that a repeated id is killed once.
        if seen.insert(id, 0).is_none() {
            events.push(task_killed(framework_id, &v1_task(framework_id, task)));
        }
    }
    events
}

/// TASK_UPDATED events taking the v1 task `before` to `now`, or a replacing TASK_ADDED.
fn task_changes(framework_id: &str, before: &Value, now: Value) -> Vec<Value> {
    let without = |t: &Value| {
        let mut t = t.clone();
        if let Some(map) = t.as_object_mut() {
            map.remove("statuses");
            map.remove("state");
        }
        t
    };
    if without(before) != without(&now) {
        return vec![task_added(now)];
    }
    let (old, new) = (statuses(before), statuses(&now));
    let state = now.get("state").cloned().unwrap_or(Value::Null);
    if old == new && before.get("state") == now.get("state") {
        return Vec::new();
    }
    let from = match new_statuses_from(old, new) {
        // Only the state changed: send the last status again, which replaces itself.
        Some(p) if p == new.len() && !new.is_empty() => new.len() - 1,
        Some(p) if p < new.len() => p,
        _ => return vec![task_added(now)],
    };
    (new[from..].iter())
        .map(|status| {
            let update = json!({"framework_id": {"value": framework_id}, "status": status});
            task_updated(update, &state)
        })
        .collect()
}

/// Where the statuses to send start, when sending `new[p..]` one by one turns `old` into `new`
/// under the master's rule (a status of the last one's state replaces it, others append).
fn new_statuses_from(old: &[Value], new: &[Value]) -> Option<usize> {
    let p = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let state = |s: &Value| str_field(s, "state").to_string();
    // Of `old`, only its last status may be gone, replaced by `new[p]` of the same state.
    let replaces_last = match old.len() - p {
        0 => false,
        1 if p < new.len() && state(&old[p]) == state(&new[p]) => true,
        _ => return None,
    };
    let first_append = if replaces_last { p + 1 } else { p };
    let appends = (first_append..new.len()).all(|i| i == 0 || state(&new[i - 1]) != state(&new[i]));
    appends.then_some(p)
}

fn task_added(task: Value) -> Value {
    event("TASK_ADDED", json!({ "task": task }))
}

fn task_updated(mut update: Value, state: &Value) -> Value {
    update["state"] = state.clone();
    event("TASK_UPDATED", update)
}

/// An event of type `kind` with its payload in the field of the same name, in snake_case.
fn event(kind: &str, payload: Value) -> Value {
    let mut out = json!({ "type": kind });
    out[kind.to_ascii_lowercase()] = payload;
    out
}

/// TASK_UPDATED to TASK_KILLED for a task gone from the list.
fn task_killed(framework_id: &str, task: &Value) -> Value {
    let last = statuses(task).last();
    let timestamp = last.and_then(|s| s.get("timestamp")).cloned();
    let mut status = json!({"task_id": task["task_id"], "state": "TASK_KILLED",
        "timestamp": timestamp.unwrap_or(json!(0.0)), "source": "SOURCE_MASTER"});
    if let Some(agent) = task.get("agent_id") {
        status["agent_id"] = agent.clone();
    }
    let update = json!({"framework_id": {"value": framework_id}, "status": status});
    task_updated(update, &json!("TASK_KILLED"))
}

/// A v0 framework as `Response.GetFrameworks.Framework`.
fn v1_framework(id: &str, fw: &Value) -> Value {
    let mut info = json!({"id": {"value": id}});
    copy_fields(
        fw,
        &mut info,
        &["name", "hostname", "user", "role", "webui_url"],
    );
    let mut out = json!({"framework_info": info});
    out["active"] = fw.get("active").cloned().unwrap_or(json!(true));
    out["connected"] = json!(true);
    out
}

/// A v0 agent as `Response.GetAgents.Agent`.
fn v1_agent(agent: &Value) -> Value {
    let mut info = json!({"id": {"value": agent_id(agent)}});
    copy_fields(agent, &mut info, &["hostname"]);
    let mut out = json!({"agent_info": info, "active": true});
    copy_fields(agent, &mut out, &["pid", "version", "active"]);
    out
}

/// A v0 task (under framework `framework_id`) as a v1 `Task`.
fn v1_task(framework_id: &str, task: &Value) -> Value {
    let id = str_field(task, "id");
    let mut out = json!({"task_id": {"value": id}, "framework_id": {"value": framework_id}});
    let agent = task.get("slave_id").filter(|a| !a.is_null());
    if let Some(agent) = agent {
        out["agent_id"] = json!({"value": agent});
    }
    copy_fields(
        task,
        &mut out,
        &["name", "state", "discovery", "container", "health_check"],
    );
    if let Some(resources) = task.get("resources") {
        out["resources"] = v1_resources(resources);
    }
    if let Some(labels) = wrapped_labels(task.get("labels")) {
        out["labels"] = labels;
    }
    let statuses = task.get("statuses").and_then(Value::as_array);
    if let Some(list) = statuses {
        let v1 = list.iter().map(|s| v1_status(id, agent, s)).collect();
        out["statuses"] = Value::Array(v1);
    }
    out
}

/// A v0 status as a v1 `TaskStatus`.
fn v1_status(task_id: &str, agent_id: Option<&Value>, status: &Value) -> Value {
    let mut out = json!({"task_id": {"value": task_id}});
    if let Some(agent) = agent_id {
        out["agent_id"] = json!({"value": agent});
    }
    let keys = [
        "state",
        "timestamp",
        "container_status",
        "healthy",
        "source",
        "reason",
        "message",
    ];
    copy_fields(status, &mut out, &keys);
    if let Some(labels) = wrapped_labels(status.get("labels")) {
        out["labels"] = labels;
    }
    out
}

/// v0's resource object (`{"cpus": 1, "ports": "[31000-31001]"}`) as v1 `Resource`s.
fn v1_resources(resources: &Value) -> Value {
    let mut out = Vec::new();
    for name in ["cpus", "mem", "disk", "gpus"] {
        if let Some(value) = resources.get(name).filter(|v| v.is_number()) {
            out.push(
                json!({"name": name, "type": "SCALAR", "scalar": {"value": value}, "role": "*"}),
            );
        }
    }
    if let Some(ports) = resources.get("ports").and_then(Value::as_str) {
        let ranges: Vec<Value> = (parse_port_ranges(ports).iter())
            .map(|r| json!({"begin": r.begin, "end": r.end}))
            .collect();
        out.push(
            json!({"name": "ports", "type": "RANGES", "ranges": {"range": ranges}, "role": "*"}),
        );
    }
    Value::Array(out)
}

/// Labels in v1's `{"labels": [...]}` form, whichever form v0 used; `None` when absent.
fn wrapped_labels(labels: Option<&Value>) -> Option<Value> {
    match labels? {
        Value::Null => None,
        list @ Value::Array(_) => Some(json!({ "labels": list })),
        other => Some(other.clone()),
    }
}

/// The frameworks of a v0 state with their ids (made up when absent).
fn frameworks_of(state: &Value) -> Vec<(String, &Value)> {
    let list = state.get("frameworks").and_then(Value::as_array);
    (list.map_or(&[][..], Vec::as_slice).iter().enumerate())
        .map(|(i, fw)| match fw.get("id").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => (id.to_string(), fw),
            _ => (format!("v0-framework-{i}"), fw),
        })
        .collect()
}

fn agents_of(state: &Value) -> &[Value] {
    state
        .get("slaves")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn tasks_of(framework: &Value) -> &[Value] {
    framework
        .get("tasks")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn statuses(task: &Value) -> &[Value] {
    task.get("statuses")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn agent_id(agent: &Value) -> String {
    str_field(agent, "id").to_string()
}

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Copies the fields of `from` named in `keys` that are present and not null.
fn copy_fields(from: &Value, to: &mut Value, keys: &[&str]) {
    let Some(target) = to.as_object_mut() else {
        return;
    };
    let Some(source) = from.as_object() else {
        return;
    };
    for key in keys {
        if let Some(v) = source.get(*key).filter(|v| !v.is_null()) {
            target.insert((*key).to_string(), v.clone());
        }
    }
}

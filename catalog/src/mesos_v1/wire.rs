//! The v1 JSON shapes (`master.proto`, `mesos.proto` as the master writes them: snake_case
//! fields, enums as names, ids as `{"value": ..}`), and their conversion to the catalog's types.
//!
//! Each conversion mirrors the v0 parser's for the same field (`crate::mesos`), so that a task
//! read from the stream equals the task read from `/master/state`. `default` everywhere: the
//! master omits empty fields.

use std::time::Duration;

use serde::Deserialize;

use crate::model::{Discovery, Label, PortRange, Status, Task};
use crate::shapes::{RawDiscovery, RawStatus, labels_either};

use super::event::{self, AgentEntry, EventError, FrameworkEntry, Snapshot, TaskEntry};

#[derive(Deserialize)]
pub(super) struct Event {
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    pub(super) subscribed: Option<Subscribed>,
    pub(super) task_added: Option<TaskAdded>,
    pub(super) task_updated: Option<TaskUpdated>,
    pub(super) agent_added: Option<AgentAdded>,
    pub(super) agent_removed: Option<AgentRemoved>,
    pub(super) framework_added: Option<FrameworkEvent>,
    pub(super) framework_updated: Option<FrameworkEvent>,
    pub(super) framework_removed: Option<FrameworkRemoved>,
}

#[derive(Deserialize)]
pub(super) struct Subscribed {
    pub(super) get_state: Option<GetState>,
    pub(super) heartbeat_interval_seconds: Option<f64>,
}

#[derive(Deserialize)]
pub(super) struct GetState {
    #[serde(default)]
    get_tasks: GetTasks,
    #[serde(default)]
    get_frameworks: GetFrameworks,
    #[serde(default)]
    get_agents: GetAgents,
}

#[derive(Deserialize, Default)]
struct GetTasks {
    #[serde(default)]
    tasks: Vec<WireTask>,
}

#[derive(Deserialize, Default)]
struct GetFrameworks {
    #[serde(default)]
    frameworks: Vec<WireFramework>,
}

#[derive(Deserialize, Default)]
struct GetAgents {
    #[serde(default)]
    agents: Vec<WireAgent>,
}

#[derive(Deserialize)]
pub(super) struct TaskAdded {
    pub(super) task: WireTask,
}

#[derive(Deserialize)]
pub(super) struct TaskUpdated {
    framework_id: Option<Id>,
    status: Option<WireStatus>,
    state: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct AgentAdded {
    pub(super) agent: WireAgent,
}

#[derive(Deserialize)]
pub(super) struct AgentRemoved {
    pub(super) agent_id: Option<Id>,
}

#[derive(Deserialize)]
pub(super) struct FrameworkEvent {
    pub(super) framework: WireFramework,
}

#[derive(Deserialize)]
pub(super) struct FrameworkRemoved {
    pub(super) framework_info: Option<FrameworkInfo>,
}

/// `FrameworkID`, `AgentID`, `TaskID`: `{"value": ".."}`.
#[derive(Deserialize)]
pub(super) struct Id {
    value: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct WireFramework {
    framework_info: Option<FrameworkInfo>,
}

#[derive(Deserialize)]
pub(super) struct FrameworkInfo {
    pub(super) id: Option<Id>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    hostname: String,
}

#[derive(Deserialize)]
pub(super) struct WireAgent {
    agent_info: Option<AgentInfo>,
    pid: Option<String>,
}

#[derive(Deserialize)]
struct AgentInfo {
    id: Option<Id>,
    #[serde(default)]
    hostname: String,
}

#[derive(Deserialize)]
pub(super) struct WireTask {
    #[serde(default)]
    name: String,
    task_id: Option<Id>,
    framework_id: Option<Id>,
    agent_id: Option<Id>,
    #[serde(default)]
    state: String,
    #[serde(default)]
    resources: Vec<Resource>,
    #[serde(default)]
    statuses: Vec<RawStatus>,
    #[serde(default, deserialize_with = "labels_either")]
    labels: Vec<Label>,
    discovery: Option<RawDiscovery>,
}

#[derive(Deserialize)]
struct Resource {
    #[serde(default)]
    name: String,
    ranges: Option<Ranges>,
    revocable: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct Ranges {
    #[serde(default)]
    range: Vec<Range>,
}

#[derive(Deserialize)]
struct Range {
    begin: Option<u64>,
    end: Option<u64>,
}

/// A TASK_UPDATED status: the task's status, and which task it is.
#[derive(Deserialize)]
struct WireStatus {
    task_id: Option<Id>,
    agent_id: Option<Id>,
    #[serde(flatten)]
    status: RawStatus,
}

/// The id's value, or [`EventError::Missing`] with `what` as its message.
pub(super) fn id(id: Option<Id>, what: &str) -> Result<String, EventError> {
    id.and_then(|i| i.value)
        .ok_or_else(|| EventError::Missing(what.to_string()))
}

impl GetState {
    pub(super) fn into_snapshot(self) -> Result<Snapshot, EventError> {
        let frameworks = (self.get_frameworks.frameworks.into_iter().enumerate())
            .map(|(i, f)| f.into_entry(&format!("SUBSCRIBED get_frameworks.frameworks[{i}]")))
            .collect::<Result<_, _>>()?;
        let agents = (self.get_agents.agents.into_iter().enumerate())
            .map(|(i, a)| a.into_entry(&format!("SUBSCRIBED get_agents.agents[{i}]")))
            .collect::<Result<_, _>>()?;
        let tasks = (self.get_tasks.tasks.into_iter().enumerate())
            .map(|(i, t)| t.into_entry(&format!("SUBSCRIBED get_tasks.tasks[{i}]")))
            .collect::<Result<_, _>>()?;
        Ok(Snapshot {
            frameworks,
            agents,
            tasks,
        })
    }
}

impl TaskUpdated {
    pub(super) fn into_event(self) -> Result<event::Event, EventError> {
        let missing = |what: &str| EventError::Missing(format!("TASK_UPDATED without {what}"));
        let framework_id = id(self.framework_id, "TASK_UPDATED without framework_id")?;
        let state = self.state.ok_or_else(|| missing("state"))?;
        let mut status = self.status.ok_or_else(|| missing("status"))?;
        let task_id = id(status.task_id.take(), "TASK_UPDATED without status.task_id")?;
        let agent_id = status.agent_id.take().and_then(|a| a.value);
        Ok(event::Event::TaskUpdated {
            framework_id,
            agent_id,
            task_id,
            state,
            status: status.status.into(),
        })
    }
}

impl WireFramework {
    pub(super) fn into_entry(self, what: &str) -> Result<FrameworkEntry, EventError> {
        let missing = || EventError::Missing(format!("{what} without framework_info"));
        let info = self.framework_info.ok_or_else(missing)?;
        Ok(FrameworkEntry {
            id: id(info.id, &format!("{what} without framework_info.id"))?,
            name: info.name,
            hostname: info.hostname,
        })
    }
}

impl WireAgent {
    pub(super) fn into_entry(self, what: &str) -> Result<AgentEntry, EventError> {
        let missing = || EventError::Missing(format!("{what} without agent_info"));
        let info = self.agent_info.ok_or_else(missing)?;
        Ok(AgentEntry {
            id: id(info.id, &format!("{what} without agent_info.id"))?,
            hostname: info.hostname,
            pid: self.pid,
        })
    }
}

impl WireTask {
    /// The task as `parse_state` reads the same task from v0 (`convert_task` in `mesos.rs`).
    /// `agent_id` may be absent, as v0's `slave_id` may.
    pub(super) fn into_entry(self, what: &str) -> Result<TaskEntry, EventError> {
        let framework_id = id(self.framework_id, &format!("{what} without framework_id"))?;
        let task = Task {
            id: id(self.task_id, &format!("{what} without task_id"))?,
            name: self.name,
            agent_id: self.agent_id.and_then(|a| a.value).unwrap_or_default(),
            state: self.state,
            statuses: self.statuses.into_iter().map(Status::from).collect(),
            ports: port_ranges(&self.resources),
            discovery: self.discovery.map(Discovery::from),
            labels: self.labels,
            ips: Vec::new(),
        };
        Ok(TaskEntry { framework_id, task })
    }
}

/// The ranges of the non-revocable `ports` resources, in order. v0's `resources.ports` is the
/// same resources summed into one range string (revocable ones go to `ports_revocable`, which v0
/// parsing ignores); ranges that v0 parsing would skip (beyond a u16, or reversed) are skipped.
fn port_ranges(resources: &[Resource]) -> Vec<PortRange> {
    resources
        .iter()
        .filter(|r| r.name == "ports" && r.revocable.is_none())
        .filter_map(|r| r.ranges.as_ref())
        .flat_map(|r| &r.range)
        .filter_map(|r| {
            let begin = u16::try_from(r.begin?).ok()?;
            let end = u16::try_from(r.end?).ok()?;
            (begin <= end).then_some(PortRange { begin, end })
        })
        .collect()
}

/// Decodes one RecordIO record of the SUBSCRIBE stream.
pub fn decode_event(record: &[u8]) -> Result<event::Event, EventError> {
    let raw: Event = serde_json::from_slice(record)?;
    let kind = raw
        .kind
        .ok_or_else(|| EventError::Missing("event without type".into()))?;
    let missing = |what: &str| EventError::Missing(format!("{kind} without {what}"));
    Ok(match kind.as_str() {
        "SUBSCRIBED" => {
            let subscribed = raw.subscribed.ok_or_else(|| missing("subscribed"))?;
            let heartbeat_interval = subscribed
                .heartbeat_interval_seconds
                .map(|s| Duration::try_from_secs_f64(s).map_err(|_| EventError::BadHeartbeat(s)))
                .transpose()?;
            let state = subscribed
                .get_state
                .ok_or_else(|| missing("subscribed.get_state"))?;
            event::Event::Subscribed {
                snapshot: state.into_snapshot()?,
                heartbeat_interval,
            }
        }
        "TASK_ADDED" => {
            let added = raw.task_added.ok_or_else(|| missing("task_added"))?;
            event::Event::TaskAdded(Box::new(added.task.into_entry("TASK_ADDED task")?))
        }
        "TASK_UPDATED" => {
            let updated = raw.task_updated.ok_or_else(|| missing("task_updated"))?;
            updated.into_event()?
        }
        "AGENT_ADDED" => {
            let added = raw.agent_added.ok_or_else(|| missing("agent_added"))?;
            event::Event::AgentAdded(added.agent.into_entry("AGENT_ADDED agent")?)
        }
        "AGENT_REMOVED" => {
            let removed = raw.agent_removed.ok_or_else(|| missing("agent_removed"))?;
            event::Event::AgentRemoved {
                agent_id: id(removed.agent_id, "AGENT_REMOVED without agent_id")?,
            }
        }
        "FRAMEWORK_ADDED" => {
            let added = raw
                .framework_added
                .ok_or_else(|| missing("framework_added"))?;
            event::Event::FrameworkAdded(added.framework.into_entry("FRAMEWORK_ADDED framework")?)
        }
        "FRAMEWORK_UPDATED" => {
            let updated = raw
                .framework_updated
                .ok_or_else(|| missing("framework_updated"))?;
            event::Event::FrameworkUpdated(
                updated
                    .framework
                    .into_entry("FRAMEWORK_UPDATED framework")?,
            )
        }
        "FRAMEWORK_REMOVED" => {
            let removed = raw
                .framework_removed
                .ok_or_else(|| missing("framework_removed"))?;
            let info = removed
                .framework_info
                .ok_or_else(|| missing("framework_removed.framework_info"))?;
            event::Event::FrameworkRemoved {
                framework_id: id(info.id, "FRAMEWORK_REMOVED without framework_info.id")?,
            }
        }
        "HEARTBEAT" => event::Event::Heartbeat,
        _ => event::Event::Unknown(kind),
    })
}

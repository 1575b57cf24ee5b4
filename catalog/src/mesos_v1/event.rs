//! The operator API's events (`master.proto` `Event`), decoded into the catalog's types.
//!
//! Only what `/master/state` parsing keeps is decoded (see [`crate::mesos`]); the rest of each
//! event is ignored. Ids that place an event (task, framework, agent) are required and their
//! absence is an error; other fields take empty defaults, as in the v0 parser.

use std::time::Duration;

use crate::model::{Status, Task};

/// One event of the SUBSCRIBE stream.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The first event: the master's whole state.
    Subscribed {
        /// Frameworks, agents and active tasks.
        snapshot: Snapshot,
        /// How often the master sends [`Event::Heartbeat`], when it says.
        heartbeat_interval: Option<Duration>,
    },
    /// A task was launched.
    TaskAdded(Box<TaskEntry>),
    /// A task's state changed, or a health check reported.
    TaskUpdated {
        /// The task's framework.
        framework_id: String,
        /// The agent, when the status names it.
        agent_id: Option<String>,
        /// The task.
        task_id: String,
        /// The task's latest state (which the status's own state may trail).
        state: String,
        /// The status update.
        status: Status,
    },
    /// An agent registered or re-registered.
    AgentAdded(AgentEntry),
    /// An agent was removed; its tasks get their own [`Event::TaskUpdated`].
    AgentRemoved {
        /// The agent.
        agent_id: String,
    },
    /// A framework registered.
    FrameworkAdded(FrameworkEntry),
    /// A framework re-registered or changed its info.
    FrameworkUpdated(FrameworkEntry),
    /// A framework was removed, with its tasks.
    FrameworkRemoved {
        /// The framework.
        framework_id: String,
    },
    /// The master is alive.
    Heartbeat,
    /// An event type this decoder does not know (newer masters add some): not an error.
    Unknown(String),
}

/// The state a SUBSCRIBED event carries (`get_state`), in the master's order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// `get_frameworks.frameworks`: registered frameworks, connected or not.
    pub frameworks: Vec<FrameworkEntry>,
    /// `get_agents.agents`: registered agents.
    pub agents: Vec<AgentEntry>,
    /// `get_tasks.tasks`: the tasks v0 lists under `frameworks[].tasks`. Unreachable, completed
    /// and pending tasks are left out, as `parse_state` leaves them out.
    pub tasks: Vec<TaskEntry>,
}

/// A framework as the stream describes it (`framework_info`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FrameworkEntry {
    /// `framework_info.id.value`.
    pub id: String,
    /// `framework_info.name`.
    pub name: String,
    /// `framework_info.hostname`.
    pub hostname: String,
}

/// An agent as the stream describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentEntry {
    /// `agent_info.id.value`.
    pub id: String,
    /// `agent_info.hostname`.
    pub hostname: String,
    /// `pid`, unparsed: as in v0, a bad pid fails the catalog, not the event.
    pub pid: Option<String>,
}

/// A task and the framework it belongs to.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskEntry {
    /// `framework_id.value`.
    pub framework_id: String,
    /// The task, converted as `parse_state` converts a v0 task.
    pub task: Task,
}

/// Why a record is not a usable event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// Occurs when the record is not JSON of the event shape.
    #[error("malformed event JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Occurs when a field an event needs is absent, such as `TASK_UPDATED without
    /// status.task_id`.
    #[error("{0}")]
    Missing(String),
    /// Occurs when `heartbeat_interval_seconds` is not a usable duration.
    #[error("SUBSCRIBED with a bad heartbeat_interval_seconds: {0}")]
    BadHeartbeat(f64),
}

//! The master's state as the event stream tells it, kept up to date event by event, and turned
//! into the [`Catalog`] that `parse_state` would make of the master's `/master/state`.

use std::collections::HashMap;

use crate::mesos::{StateError, parse_pid};
use crate::model::{Agent, Catalog, Framework, Status, Task};

use super::event::{AgentEntry, Event, FrameworkEntry, Snapshot, TaskEntry};
use super::keyed::Keyed;

/// An event that does not fit the state held: the state has missed something, and the caller
/// re-subscribes for a full snapshot.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("event cannot be placed in the stream state: {0}")]
pub struct Unplaced(pub String);

/// Frameworks (with their active tasks) and agents, in arrival order: snapshot order first, then
/// the order in which events added them. An update keeps an entry's place.
#[derive(Clone, Debug, Default)]
pub struct StreamState {
    frameworks: Keyed<FrameworkState>,
    agents: Keyed<AgentEntry>,
}

#[derive(Clone, Debug)]
struct FrameworkState {
    info: FrameworkEntry,
    tasks: Keyed<Task>,
}

impl From<Snapshot> for StreamState {
    /// The state a SUBSCRIBED snapshot describes. A task whose framework the snapshot does not
    /// list is left out: v0 nests tasks under their framework, so it cannot list one either.
    fn from(snapshot: Snapshot) -> Self {
        let mut state = Self::default();
        for info in snapshot.frameworks {
            state.frameworks.push(
                info.id.clone(),
                FrameworkState {
                    info,
                    tasks: Keyed::default(),
                },
            );
        }
        for agent in snapshot.agents {
            state.agents.push(agent.id.clone(), agent);
        }
        for TaskEntry { framework_id, task } in snapshot.tasks {
            if let Some(framework) = state.frameworks.first_mut(&framework_id) {
                framework.tasks.push(task.id.clone(), task);
            }
        }
        state
    }
}

impl StreamState {
    /// Applies one event. SUBSCRIBED replaces the whole state; HEARTBEAT and unknown events
    /// change nothing.
    ///
    /// A task update to a terminal state (or TASK_UNREACHABLE) removes the task: the master
    /// moves such tasks out of `frameworks[].tasks` (to `completed_tasks` once the framework
    /// acknowledges, to `unreachable_tasks` at once) and sends no later event for the move.
    pub fn apply(&mut self, event: Event) -> Result<(), Unplaced> {
        match event {
            Event::Subscribed { snapshot, .. } => *self = Self::from(snapshot),
            Event::TaskAdded(entry) => self.add_task(*entry)?,
            Event::TaskUpdated {
                framework_id,
                task_id,
                state,
                status,
                ..
            } => self.update_task(&framework_id, &task_id, state, status)?,
            Event::AgentAdded(agent) => self.agents.upsert(agent.id.clone(), agent),
            Event::AgentRemoved { agent_id } => {
                // Its tasks become lost or unreachable through their own TASK_UPDATED events.
                self.agents.remove(&agent_id);
            }
            Event::FrameworkAdded(info) | Event::FrameworkUpdated(info) => {
                self.upsert_framework(info)
            }
            Event::FrameworkRemoved { framework_id } => {
                self.frameworks.remove(&framework_id);
            }
            Event::Heartbeat | Event::Unknown(_) => {}
        }
        Ok(())
    }

    /// The catalog `parse_state` would make of the equivalent `/master/state`.
    ///
    /// The stream does not carry two things v0 has, so the caller supplies them: `leader`, the
    /// leading master's pid (`master@10.0.0.1:5050`: v0's `leader`; v1 `GET_MASTER` gives it as
    /// `master_info.pid`, and so does the ZooKeeper leader entry), and `framework_pids`,
    /// scheduler pids by framework id (from `/master/state-summary`, whose `frameworks[]` carry
    /// `id` and, for non-HTTP schedulers, `pid`). As in v0, an empty leader or a malformed pid
    /// fails the whole catalog.
    pub fn catalog(
        &self,
        leader: &str,
        framework_pids: &HashMap<String, String>,
    ) -> Result<Catalog, StateError> {
        if leader.trim().is_empty() {
            return Err(StateError::NoLeader);
        }
        let agents = (self.agents.values())
            .map(|a| {
                Ok(Agent {
                    id: a.id.clone(),
                    hostname: a.hostname.clone(),
                    pid: a.pid.as_deref().map(parse_pid).transpose()?,
                })
            })
            .collect::<Result<_, StateError>>()?;
        let frameworks = (self.frameworks.values())
            .map(|f| {
                let pid = framework_pids.get(&f.info.id);
                Ok(Framework {
                    name: f.info.name.clone(),
                    pid: pid.map(|p| parse_pid(p)).transpose()?,
                    hostname: f.info.hostname.clone(),
                    tasks: f.tasks.values().cloned().collect(),
                })
            })
            .collect::<Result<_, StateError>>()?;
        Ok(Catalog {
            leader: parse_pid(leader).ok(),
            leader_raw: leader.to_string(),
            agents,
            frameworks,
            host_ips: Default::default(),
            masters: Vec::new(),
        })
    }

    /// Number of frameworks held.
    pub fn framework_count(&self) -> usize {
        self.frameworks.len()
    }

    /// Number of agents held.
    pub fn agent_count(&self) -> usize {
        self.agents.len()
    }

    /// Number of active tasks held.
    pub fn task_count(&self) -> usize {
        self.frameworks.values().map(|f| f.tasks.len()).sum()
    }

    fn add_task(&mut self, TaskEntry { framework_id, task }: TaskEntry) -> Result<(), Unplaced> {
        let Some(framework) = self.frameworks.first_mut(&framework_id) else {
            return Err(Unplaced(format!(
                "TASK_ADDED for task {} of unknown framework {framework_id}",
                task.id
            )));
        };
        framework.tasks.upsert(task.id.clone(), task);
        Ok(())
    }

    fn update_task(
        &mut self,
        framework_id: &str,
        task_id: &str,
        state: String,
        status: Status,
    ) -> Result<(), Unplaced> {
        let framework = self.frameworks.first_mut(framework_id);
        if leaves_active_list(&state) {
            // Unknown is fine here: the task is gone either way.
            if let Some(framework) = framework {
                framework.tasks.remove(task_id);
            }
            return Ok(());
        }
        let unplaced = |what: &str| {
            Unplaced(format!(
                "TASK_UPDATED to {state} for {what} (task {task_id} of framework {framework_id})"
            ))
        };
        let framework = framework.ok_or_else(|| unplaced("an unknown framework"))?;
        let found = framework.tasks.for_each_mut(task_id, |task| {
            task.state.clone_from(&state);
            record_status(&mut task.statuses, status.clone());
        });
        match found {
            true => Ok(()),
            false => Err(unplaced("an unknown task")),
        }
    }

    fn upsert_framework(&mut self, info: FrameworkEntry) {
        let id = info.id.clone();
        let updated = self.frameworks.for_each_mut(&id, |f| f.info = info.clone());
        if !updated {
            let tasks = Keyed::default();
            self.frameworks.push(id, FrameworkState { info, tasks });
        }
    }
}

/// Whether a task in this state leaves v0's `frameworks[].tasks`: the terminal states
/// (`protobuf::isTerminalState` in Mesos) and TASK_UNREACHABLE.
pub fn leaves_active_list(state: &str) -> bool {
    matches!(
        state,
        "TASK_FINISHED"
            | "TASK_FAILED"
            | "TASK_KILLED"
            | "TASK_LOST"
            | "TASK_ERROR"
            | "TASK_DROPPED"
            | "TASK_GONE"
            | "TASK_GONE_BY_OPERATOR"
            | "TASK_UNREACHABLE"
    )
}

/// Records a status as the master records it in the task's `statuses` (`Master::updateTask`):
/// a status of the same state as the last one replaces it, any other is appended.
pub(super) fn record_status(statuses: &mut Vec<Status>, status: Status) {
    if statuses
        .last()
        .is_some_and(|last| last.state == status.state)
    {
        statuses.pop();
    }
    statuses.push(status);
}

//! Following a Mesos master through the v1 operator API event stream (`POST /api/v1`
//! `{"type":"SUBSCRIBE"}`, `research/mesos-live.md` §2) instead of polling `/master/state`.
//!
//! The pieces, all pure (the caller owns the HTTP connection and the clock):
//! - [`RecordIo`] cuts the streamed body into records by their length prefix;
//! - [`decode_event`] turns a record into an [`Event`];
//! - [`StreamState`] starts from the SUBSCRIBED snapshot, applies each later event, and makes
//!   the same [`Catalog`](crate::Catalog) that [`parse_state`](crate::mesos::parse_state) makes
//!   of `/master/state`, field for field;
//! - [`snapshot_from_v0`] and [`events_between_v0`] make the events a master would stream for v0
//!   state documents, for a fake master and for tests.
//!
//! # What v1 does not say
//!
//! - The leader's pid and the schedulers' pids are not in the stream; [`StreamState::catalog`]
//!   takes them as arguments (from `GET_MASTER` and `/master/state-summary`).
//! - A terminal task stays in v0's `frameworks[].tasks` until its framework acknowledges the
//!   update, and the master sends no event when it moves; the stream state drops the task at the
//!   terminal TASK_UPDATED. Mesos-DNS names only running tasks, so no record differs.
//! - The master records a status of the same state as the last one in place of it, and streams
//!   it only when it is a (health) check update; any other same-state update (new labels or
//!   network infos while running) reaches `/master/state` but not the stream.
//! - With several `ports` resources, v0 sums them into one coalesced range list; the stream
//!   state lists each resource's ranges in order: the same ports, possibly cut differently.
//!
//! # Order
//!
//! Frameworks, agents and each framework's tasks are listed in snapshot order, then in the
//! order events add them; an update keeps an entry's place. Mesos's own order (both v0 and v1)
//! is a hash map's, so no consumer may rely on it: DNS answers are shuffled, and only the
//! order of values inside an RRset, `/v1/enumerate` and the first of duplicate agent ids follow
//! it. Statuses keep the master's order, which `Task::latest_running_status` uses to break ties.

mod event;
mod from_v0;
mod keyed;
mod recordio;
mod state;
mod wire;

pub use event::{AgentEntry, Event, EventError, FrameworkEntry, Snapshot, TaskEntry};
pub use from_v0::{events_between_v0, snapshot_from_v0};
pub use recordio::{FrameError, MAX_PREFIX_DIGITS, RecordIo, encode_record};
pub use state::{StreamState, Unplaced, leaves_active_list};
pub use wire::decode_event;

#[cfg(test)]
mod tests;

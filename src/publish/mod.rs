//! The publishing pipeline: how a source's catalog becomes what this node serves.
//!
//! The steps, in order:
//!
//! 1. [`registrations`]: the registrations this node accepted through the API, saved in the
//!    state directory;
//! 2. [`node_origin`]: this node's own origin, `node/<name>`: its registrations and its Mesos
//!    agent's tasks, put together into one fragment (the node is the origin's only writer);
//! 3. a [`Sink`]: where a fragment goes. Alone, straight into the origins; in a cluster, out
//!    through gossip (`crate::cluster`), which brings every node's fragments back here;
//! 4. [`origins`]: every origin's fragment (the Mesos master's and each node's); a change
//!    publishes their union;
//! 5. [`published`]: records generated per origin (its Mesos part, and each registration
//!    apart, so a write generates one registration), united, and a zone built from them: its
//!    Mesos part whole, its registrations overlay updated by the names a write changed;
//! 6. [`vips`]: the VIP table derived from the same catalog, programmed into the data plane
//!    between two zone swaps, so that DNS never names a VIP the data plane does not balance.
//!
//! Every step is blocking (generation takes a while with tens of thousands of tasks): callers
//! run it on a blocking thread.

pub mod fence;
pub mod last_known;
pub mod node_origin;
pub mod origins;
pub mod owners;
pub mod published;
pub mod registrations;
pub mod vips;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use beacon_catalog::Catalog;

pub use node_origin::NodeOrigin;
pub use origins::{MESOS_MASTER, Origins, node_origin};
pub use published::{Current, Published, Publisher};
pub use registrations::Registrations;
pub use vips::Vips;

/// Fragments by origin name: what the origins hold and the publisher generates from.
pub type Fragments = BTreeMap<String, Arc<Catalog>>;

/// Where a source puts its fragment.
pub trait Sink: Send + Sync {
    /// Publishes `fragment` as `origin`'s and returns once this node serves it, so that a
    /// write acknowledged by the API is already answered by this node's DNS. Blocking.
    fn set(&self, origin: &str, fragment: Catalog) -> Result<(), PublishError>;
}

/// Why a fragment could not be published.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// Occurs when the zone cannot be built from the records (a configuration problem: the
    /// domain or SOA names are not valid DNS names).
    #[error("cannot build the zone: {0}; check the domain and SOA settings")]
    Zone(#[from] beacon_dns::zone::ZoneError),
    /// Occurs when a fragment cannot be encoded for gossip.
    #[error("cannot encode the fragment for gossip: {0}")]
    Encode(String),
    /// Occurs when the gossip node has stopped: the agent is shutting down.
    #[error("the gossip node has stopped (the agent is shutting down); retry on another node")]
    GossipStopped,
    /// Occurs when the registrations cannot be saved or read in the state directory.
    #[error("{path}: {source}; check that [node] state_dir is writable and holds valid JSON")]
    State {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// Occurs when publishing panicked on its blocking thread (a bug: please report it).
    #[error("publishing panicked: {0}")]
    Panicked(String),
}

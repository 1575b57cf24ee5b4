//! The last good Mesos master state, kept in `[node] state_dir` so that an agent restarted
//! while the master is unreachable serves what it served before, at once, instead of SERVFAIL.
//! Written whole and flushed (temp file, fsync, rename, fsync of the directory), at most every
//! [`SAVE_EVERY`]; newer state from the master replaces it as soon as a poll succeeds.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use beacon_catalog::Catalog;

use crate::common::{lock, wall_millis};

/// How often the snapshot may be rewritten: a master state runs to megabytes.
pub const SAVE_EVERY: Duration = Duration::from_secs(30);

/// The snapshot file and when it was last written.
pub struct LastKnown {
    file: PathBuf,
    saved: Mutex<Option<Instant>>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Snapshot {
    /// Unix seconds when the master served it.
    stamp: u64,
    catalog: Catalog,
}

impl LastKnown {
    /// The snapshot of a node whose state directory is `state_dir`; none without one.
    pub fn new(state_dir: &std::path::Path) -> Option<Self> {
        (!state_dir.as_os_str().is_empty()).then(|| Self {
            file: state_dir.join("last-mesos-master.json"),
            saved: Mutex::new(None),
        })
    }

    /// Keeps `catalog`, just read from the master, unless it was kept less than
    /// [`SAVE_EVERY`] ago. Blocking. A failure is logged: serving goes on.
    pub fn save(&self, catalog: &Catalog) {
        let mut saved = lock(&self.saved);
        if saved.is_some_and(|at| at.elapsed() < SAVE_EVERY) {
            return;
        }
        let snapshot = Snapshot {
            stamp: wall_millis() / 1000,
            catalog: catalog.clone(),
        };
        let written = serde_json::to_vec(&snapshot)
            .map_err(std::io::Error::from)
            .and_then(|bytes| crate::common::write_durably(&self.file, &bytes));
        match written {
            Ok(()) => *saved = Some(Instant::now()),
            Err(error) => {
                tracing::warn!(file = %self.file.display(), %error, "could not keep the last-known master state");
            }
        }
    }

    /// The kept state and when the master served it (unix seconds), if there is one that
    /// reads. Blocking.
    pub fn load(&self) -> Option<(Catalog, u64)> {
        let bytes = std::fs::read(&self.file).ok()?;
        match serde_json::from_slice::<Snapshot>(&bytes) {
            Ok(snapshot) => Some((snapshot.catalog, snapshot.stamp)),
            Err(error) => {
                tracing::warn!(file = %self.file.display(), %error, "ignoring an unreadable last-known master state");
                None
            }
        }
    }
}

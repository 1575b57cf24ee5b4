//! This node's registrations (`PUT`/`DELETE /v1/registrations/{id}`): published as part of the
//! node's origin and, with a state directory, kept in `registrations.json` there so that a restarted
//! node serves them again.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use beacon_catalog::registration::{self, Registration};

use super::{NodeOrigin, PublishError};
use crate::common::lock;

/// Whether a `put` created or replaced a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// It is new.
    Created,
    /// It replaced one with the same id.
    Replaced,
}

/// The registrations this node accepted.
pub struct Registrations {
    origin: Arc<NodeOrigin>,
    /// `registrations.json` in the state directory, if there is one.
    file: Option<std::path::PathBuf>,
    entries: Mutex<BTreeMap<String, Registration>>,
}

impl Registrations {
    /// The registrations of the node whose origin is `origin`, kept in `state_dir` unless it is
    /// empty. Registrations saved by a previous run are loaded (and published by [`Self::load`]).
    pub fn new(origin: Arc<NodeOrigin>, state_dir: &std::path::Path) -> Self {
        let file =
            (!state_dir.as_os_str().is_empty()).then(|| state_dir.join("registrations.json"));
        Self {
            origin,
            file,
            entries: Mutex::new(BTreeMap::new()),
        }
    }

    /// Loads and publishes the registrations a previous run saved. Blocking.
    pub fn load(&self) -> Result<usize, PublishError> {
        let Some(file) = &self.file else { return Ok(0) };
        let state = |source| PublishError::State {
            path: file.clone(),
            source,
        };
        let saved: BTreeMap<String, Registration> = match std::fs::read(file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| state(e.into()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(state(e)),
        };
        let count = saved.len();
        self.change(|entries| *entries = saved)?;
        Ok(count)
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        self.origin.node()
    }

    /// Adds or replaces `id` and publishes. Blocking: call it from a blocking thread.
    pub fn put(&self, id: &str, reg: Registration) -> Result<Put, PublishError> {
        self.change(|entries| match entries.insert(id.to_string(), reg) {
            Some(_) => Put::Replaced,
            None => Put::Created,
        })
    }

    /// Removes `id` and publishes; whether it existed. Blocking.
    pub fn delete(&self, id: &str) -> Result<bool, PublishError> {
        self.change(|entries| entries.remove(id).is_some())
    }

    /// A copy of every registration, by id.
    pub fn list(&self) -> BTreeMap<String, Registration> {
        self.lock().clone()
    }

    fn change<T>(
        &self,
        edit: impl FnOnce(&mut BTreeMap<String, Registration>) -> T,
    ) -> Result<T, PublishError> {
        let mut entries = self.lock();
        let out = edit(&mut entries);
        if let Some(file) = &self.file {
            save(file, &entries)?;
        }
        let fragment = registration::fragment(self.origin.node(), &entries);
        // Still under the lock, so that fragments reach the origins in the order of the edits.
        self.origin.set_registrations(fragment)?;
        Ok(out)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Registration>> {
        lock(&self.entries)
    }
}

/// Writes `entries` to `file` through a temporary file and a rename, so a crash never leaves
/// half a file.
fn save(
    file: &std::path::Path,
    entries: &BTreeMap<String, Registration>,
) -> Result<(), PublishError> {
    let err = |source| PublishError::State {
        path: file.to_path_buf(),
        source,
    };
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = file.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(entries).map_err(|e| err(e.into()))?;
    std::fs::write(&tmp, bytes).map_err(err)?;
    std::fs::rename(&tmp, file).map_err(err)
}

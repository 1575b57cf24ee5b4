//! This node's registrations (`PUT`/`DELETE /v1/registrations/{id}`): published as part of the
//! node's origin and, with a state directory, kept in `registrations.json` there so that a restarted
//! node serves them again.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use beacon_catalog::registration::{self, Registration};

use crate::node_origin::NodeOrigin;

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
    pub fn load(&self) -> Result<usize, String> {
        let Some(file) = &self.file else { return Ok(0) };
        let saved: BTreeMap<String, Registration> = match std::fs::read(file) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", file.display()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(format!("{}: {e}", file.display())),
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
    pub fn put(&self, id: &str, reg: Registration) -> Result<Put, String> {
        self.change(|entries| match entries.insert(id.to_string(), reg) {
            Some(_) => Put::Replaced,
            None => Put::Created,
        })
    }

    /// Removes `id` and publishes; whether it existed. Blocking.
    pub fn delete(&self, id: &str) -> Result<bool, String> {
        self.change(|entries| entries.remove(id).is_some())
    }

    /// A copy of every registration, by id.
    pub fn list(&self) -> BTreeMap<String, Registration> {
        self.lock().clone()
    }

    fn change<T>(
        &self,
        edit: impl FnOnce(&mut BTreeMap<String, Registration>) -> T,
    ) -> Result<T, String> {
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
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Writes `entries` to `file` through a temporary file and a rename, so a crash never leaves
/// half a file.
fn save(file: &std::path::Path, entries: &BTreeMap<String, Registration>) -> Result<(), String> {
    let err = |e: std::io::Error| format!("{}: {e}", file.display());
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = file.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(entries).map_err(|e| e.to_string())?;
    std::fs::write(&tmp, bytes).map_err(err)?;
    std::fs::rename(&tmp, file).map_err(err)
}

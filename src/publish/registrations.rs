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

/// Why a write was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// Occurs when the registration belongs to another token.
    #[error("registration {id:?} belongs to token {owner:?}; only that token may change it")]
    NotOwner {
        /// The registration.
        id: String,
        /// The token that owns it.
        owner: String,
    },
    /// Occurs when the token already holds as many registrations as it may.
    #[error(
        "token {token:?} already holds its {max} registrations; delete one or raise max_registrations"
    )]
    Quota {
        /// The token.
        token: String,
        /// Its `max_registrations`.
        max: usize,
    },
    /// Occurs when saving or publishing failed; nothing changed.
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// A registration and the token that made it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// The registration.
    pub registration: Registration,
    /// The token that wrote it (none for registrations saved before tokens existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// `registrations.json`: entries by id, or (as written before tokens) registrations by id.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Saved {
    Entries(BTreeMap<String, Entry>),
    Bare(BTreeMap<String, Registration>),
}

type Entries = BTreeMap<String, Entry>;

/// The registrations this node accepted.
pub struct Registrations {
    origin: Arc<NodeOrigin>,
    /// `registrations.json` in the state directory, if there is one.
    file: Option<std::path::PathBuf>,
    entries: Mutex<Entries>,
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
        let saved = match std::fs::read(file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| state(e.into()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(state(e)),
        };
        let saved = match saved {
            Saved::Entries(entries) => entries,
            Saved::Bare(regs) => (regs.into_iter())
                .map(|(id, registration)| {
                    (
                        id,
                        Entry {
                            registration,
                            token: None,
                        },
                    )
                })
                .collect(),
        };
        let count = saved.len();
        self.change(|entries| *entries = saved)?;
        Ok(count)
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        self.origin.node()
    }

    /// Adds or replaces `id` for `token`, which may hold at most `max` registrations, and
    /// publishes. A registration of another token is not replaced. Blocking: call it from a
    /// blocking thread.
    pub fn put(
        &self,
        id: &str,
        registration: Registration,
        token: &str,
        max: usize,
    ) -> Result<Put, WriteError> {
        let mut entries = self.lock();
        let existing = entries.get(id);
        check_owner(id, existing, token)?;
        let held = entries
            .values()
            .filter(|e| e.token.as_deref() == Some(token))
            .count();
        if existing.is_none() && held >= max {
            let token = token.to_string();
            return Err(WriteError::Quota { token, max });
        }
        let entry = Entry {
            registration,
            token: Some(token.to_string()),
        };
        let put = self.change_locked(&mut entries, |entries| {
            match entries.insert(id.to_string(), entry) {
                Some(_) => Put::Replaced,
                None => Put::Created,
            }
        })?;
        Ok(put)
    }

    /// Removes `id`, if `token` owns it, and publishes; whether it existed. Blocking.
    pub fn delete(&self, id: &str, token: &str) -> Result<bool, WriteError> {
        let mut entries = self.lock();
        let Some(existing) = entries.get(id) else {
            return Ok(false);
        };
        check_owner(id, Some(existing), token)?;
        Ok(self.change_locked(&mut entries, |entries| entries.remove(id).is_some())?)
    }

    /// A copy of every registration, by id.
    pub fn list(&self) -> BTreeMap<String, Registration> {
        (self.lock().iter())
            .map(|(id, e)| (id.clone(), e.registration.clone()))
            .collect()
    }

    fn change<T>(&self, edit: impl FnOnce(&mut Entries) -> T) -> Result<T, PublishError> {
        let mut entries = self.lock();
        self.change_locked(&mut entries, edit)
    }

    /// Edits a copy, saves it, publishes it, and only then keeps it: a save or publish that
    /// fails leaves the registrations as they were.
    fn change_locked<T>(
        &self,
        entries: &mut Entries,
        edit: impl FnOnce(&mut Entries) -> T,
    ) -> Result<T, PublishError> {
        let mut next = entries.clone();
        let out = edit(&mut next);
        if let Some(file) = &self.file {
            save(file, &next)?;
        }
        let regs: BTreeMap<String, Registration> = (next.iter())
            .map(|(id, e)| (id.clone(), e.registration.clone()))
            .collect();
        let fragment = registration::fragment(self.origin.node(), &regs);
        // Still under the lock, so that fragments reach the origins in the order of the edits.
        self.origin.set_registrations(fragment)?;
        *entries = next;
        Ok(out)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        lock(&self.entries)
    }
}

/// Whether `token` may change the registration `existing` (a registration saved before tokens
/// existed may be changed by any token).
fn check_owner(id: &str, existing: Option<&Entry>, token: &str) -> Result<(), WriteError> {
    match existing.and_then(|e| e.token.as_deref()) {
        Some(owner) if owner != token => Err(WriteError::NotOwner {
            id: id.to_string(),
            owner: owner.to_string(),
        }),
        _ => Ok(()),
    }
}

/// Writes `entries` to `file` through a temporary file and a rename, so a crash never leaves
/// half a file.
fn save(file: &std::path::Path, entries: &Entries) -> Result<(), PublishError> {
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

//! This node's registrations (`PUT`/`DELETE /v1/registrations/{id}`): published as part of the
//! node's origin and, with a state directory, kept in `registrations.json` there so that a restarted
//! node serves them again.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use beacon_catalog::registration::Registration;
use beacon_catalog::{Catalog, Framework, Task};

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
    /// Occurs while the registrations are being recovered from the cluster's copy (the saved
    /// file was unreadable): writes wait for that, so none is lost.
    #[error("this node is recovering its registrations from the cluster; retry in a few seconds")]
    Recovering,
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

/// What each write would otherwise derive again from every entry: a write changes one entry,
/// so only that one is serialised and turned into a task, and a PUT stays as cheap with
/// thousands of registrations as with one.
#[derive(Clone, Debug)]
struct Kept {
    entry: Entry,
    /// The entry as saved in `registrations.json`.
    json: String,
    /// The task it stands for in the node's fragment.
    task: Task,
}

impl Kept {
    fn new(id: &str, node: &str, entry: Entry) -> Result<Self, serde_json::Error> {
        Ok(Self {
            json: serde_json::to_string(&entry)?,
            task: entry.registration.to_task(id, node),
            entry,
        })
    }
}

type Entries = BTreeMap<String, Kept>;

/// The registrations this node accepted.
pub struct Registrations {
    origin: Arc<NodeOrigin>,
    /// `registrations.json` in the state directory, if there is one.
    file: Option<std::path::PathBuf>,
    entries: Mutex<Entries>,
    /// False while the registrations are recovered from the cluster: writes wait.
    writable: std::sync::atomic::AtomicBool,
}

/// What loading the saved registrations found.
#[derive(Debug, PartialEq, Eq)]
pub enum Loaded {
    /// This many registrations (0: no file, or an empty one).
    Saved(usize),
    /// The file did not parse: it was set aside (renamed) to this path, and nothing loaded.
    SetAside(std::path::PathBuf),
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
            writable: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// Refuses writes ([`WriteError::Recovering`]) until [`Self::recover`] or
    /// [`Self::accept_writes`].
    pub fn hold_writes(&self) {
        (self.writable).store(false, std::sync::atomic::Ordering::SeqCst);
        self.origin.hold();
    }

    /// Takes writes again.
    pub fn accept_writes(&self) {
        (self.writable).store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn check_writable(&self) -> Result<(), WriteError> {
        match self.writable.load(std::sync::atomic::Ordering::SeqCst) {
            true => Ok(()),
            false => Err(WriteError::Recovering),
        }
    }

    /// Takes this node's registrations from `fragment`, the cluster's copy of its origin (the
    /// tokens that made them are not in it: any token may then change them), saves and
    /// publishes them, and takes writes again. Blocking.
    pub fn recover(&self, fragment: &Catalog) -> Result<usize, PublishError> {
        let prefix = format!("{}.", self.node());
        let mut kept = Entries::new();
        let tasks = (fragment.frameworks.iter())
            .flat_map(|f| f.tasks.iter().map(move |t| (f, t)))
            .filter(|(_, t)| t.is_registration());
        for (framework, task) in tasks {
            let Some(id) = task.id.strip_prefix(&prefix) else {
                continue;
            };
            let registration = Registration::from_task(&framework.name, task);
            let entry = Entry {
                registration,
                token: None,
            };
            let entry =
                Kept::new(id, self.node(), entry).map_err(|e| self.state_error(e.into()))?;
            kept.insert(id.to_string(), entry);
        }
        let count = kept.len();
        let mut entries = self.lock();
        *entries = kept;
        let committed = self.commit(&entries);
        self.accept_writes();
        committed.map(|()| count)
    }

    /// Loads and publishes the registrations a previous run saved. Blocking.
    pub fn load(&self) -> Result<Loaded, PublishError> {
        let Some(file) = &self.file else {
            return Ok(Loaded::Saved(0));
        };
        let state = |source| PublishError::State {
            path: file.clone(),
            source,
        };
        let saved = match std::fs::read(file) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(saved) => saved,
                Err(_) => return set_aside(file).map(Loaded::SetAside).map_err(state),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::Saved(0)),
            Err(e) => return Err(state(e)),
        };
        let saved = match saved {
            Saved::Entries(entries) => entries,
            Saved::Bare(regs) => (regs.into_iter())
                .map(|(id, registration)| {
                    let token = None;
                    (
                        id,
                        Entry {
                            registration,
                            token,
                        },
                    )
                })
                .collect(),
        };
        let mut kept = Entries::new();
        for (id, entry) in saved {
            let entry = Kept::new(&id, self.node(), entry).map_err(|e| state(e.into()))?;
            kept.insert(id, entry);
        }
        let count = kept.len();
        let mut entries = self.lock();
        let before = std::mem::replace(&mut *entries, kept);
        if let Err(e) = self.commit(&entries) {
            *entries = before;
            return Err(e);
        }
        Ok(Loaded::Saved(count))
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
        self.check_writable()?;
        let mut entries = self.lock();
        let existing = entries.get(id);
        check_owner(id, existing.map(|k| &k.entry), token)?;
        let held = entries
            .values()
            .filter(|k| k.entry.token.as_deref() == Some(token))
            .count();
        if existing.is_none() && held >= max {
            let token = token.to_string();
            return Err(WriteError::Quota { token, max });
        }
        let entry = Entry {
            registration,
            token: Some(token.to_string()),
        };
        let kept = Kept::new(id, self.node(), entry).map_err(|e| self.state_error(e.into()))?;
        let before = entries.insert(id.to_string(), kept);
        if let Err(e) = self.commit(&entries) {
            undo(&mut entries, id, before);
            return Err(e.into());
        }
        Ok(match before {
            Some(_) => Put::Replaced,
            None => Put::Created,
        })
    }

    /// Removes `id`, if `token` owns it, and publishes; whether it existed. Blocking.
    pub fn delete(&self, id: &str, token: &str) -> Result<bool, WriteError> {
        self.check_writable()?;
        let mut entries = self.lock();
        let Some(existing) = entries.get(id) else {
            return Ok(false);
        };
        check_owner(id, Some(&existing.entry), token)?;
        let before = entries.remove(id);
        if let Err(e) = self.commit(&entries) {
            undo(&mut entries, id, before);
            return Err(e.into());
        }
        Ok(true)
    }

    /// A copy of every registration, by id.
    pub fn list(&self) -> BTreeMap<String, Registration> {
        (self.lock().iter())
            .map(|(id, k)| (id.clone(), k.entry.registration.clone()))
            .collect()
    }

    /// Saves and publishes `entries`, already edited in place (the caller undoes the edit if
    /// this fails, so a failed save or publish leaves the registrations as they were). Called
    /// under the lock, so that fragments reach the origins in the order of the edits.
    fn commit(&self, entries: &Entries) -> Result<(), PublishError> {
        if let Some(file) = &self.file {
            save(file, entries)?;
        }
        self.origin.set_registrations(fragment(entries))
    }

    fn state_error(&self, source: std::io::Error) -> PublishError {
        let path = self.file.clone().unwrap_or_default();
        PublishError::State { path, source }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        lock(&self.entries)
    }
}

/// Renames an unreadable `file` to `<file>.corrupt-<unix seconds>`, keeping it for a person to
/// look at, and returns the new path.
pub(crate) fn set_aside(file: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
    let stamp = crate::common::wall_millis() / 1000;
    let mut aside = file.as_os_str().to_owned();
    aside.push(format!(".corrupt-{stamp}"));
    let aside = std::path::PathBuf::from(aside);
    std::fs::rename(file, &aside)?;
    Ok(aside)
}

/// Puts back what was under `id` before a write that failed.
fn undo(entries: &mut Entries, id: &str, before: Option<Kept>) {
    match before {
        Some(kept) => entries.insert(id.to_string(), kept),
        None => entries.remove(id),
    };
}

/// The registrations' part of the node's fragment, from the kept tasks: what
/// [`beacon_catalog::registration::fragment`] gives, without converting every registration again.
fn fragment(entries: &Entries) -> Catalog {
    let mut frameworks: BTreeMap<&str, Framework> = BTreeMap::new();
    for kept in entries.values() {
        let name = &kept.entry.registration.framework;
        let fw = frameworks.entry(name).or_insert_with(|| Framework {
            name: name.clone(),
            pid: None,
            hostname: String::new(),
            tasks: Vec::new(),
        });
        fw.tasks.push(kept.task.clone());
    }
    Catalog {
        frameworks: frameworks.into_values().collect(),
        ..Catalog::default()
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
/// half a file. The file is one JSON object of entries by id, put together from each entry's
/// kept JSON rather than serialised again.
fn save(file: &std::path::Path, entries: &Entries) -> Result<(), PublishError> {
    let err = |source| PublishError::State {
        path: file.to_path_buf(),
        source,
    };
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let size: usize = entries
        .iter()
        .map(|(id, k)| id.len() + k.json.len() + 8)
        .sum();
    let mut bytes = Vec::with_capacity(size + 4);
    bytes.push(b'{');
    for (i, (id, kept)) in entries.iter().enumerate() {
        bytes.extend_from_slice(if i == 0 { b"\n  " } else { b",\n  " });
        serde_json::to_writer(&mut bytes, id).map_err(|e| err(e.into()))?;
        bytes.extend_from_slice(b": ");
        bytes.extend_from_slice(kept.json.as_bytes());
    }
    bytes.extend_from_slice(b"\n}\n");
    crate::common::write_durably(file, &bytes).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::Sink;

    /// A sink that keeps the last fragment published.
    #[derive(Default)]
    struct Last(Mutex<Option<Catalog>>);

    impl Sink for Last {
        fn set(&self, _origin: &str, fragment: Catalog) -> Result<(), PublishError> {
            *lock(&self.0) = Some(fragment);
            Ok(())
        }
    }

    fn reg(name: &str, framework: &str, ip: &str) -> Registration {
        let body = format!(r#"{{"name": "{name}", "framework": "{framework}", "ips": ["{ip}"]}}"#);
        Registration::parse(body.as_bytes()).unwrap()
    }

    /// Writes that keep each entry's JSON and task publish and save what converting every
    /// registration again would, across puts, replacements and deletes, and a restart loads it.
    #[test]
    fn kept_entries_give_the_full_fragment_and_file() {
        let dir = std::env::temp_dir().join(format!("beacon-regs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let sink = Arc::new(Last::default());
        let origin = Arc::new(NodeOrigin::new("n1".into(), sink.clone()));
        let regs = Registrations::new(origin, &dir);
        let writes = [
            ("a", reg("web", "shop", "10.0.0.1")),
            ("b\"q", reg("db", "data", "10.0.0.2")),
            ("c", reg("web", "shop", "10.0.0.3")),
            ("a", reg("web", "shop", "10.0.0.4")),
        ];
        for (id, r) in writes {
            regs.put(id, r, "t", 10).unwrap();
        }
        assert!(regs.delete("c", "t").unwrap());
        let expected = regs.list();
        let published = lock(&sink.0).clone().unwrap();
        let full = beacon_catalog::registration::fragment("n1", &expected);
        assert_eq!(published, full);
        let text = std::fs::read_to_string(dir.join("registrations.json")).unwrap();
        let saved: Entries2 = serde_json::from_str(&text).unwrap();
        assert_eq!(saved.len(), 2);
        assert_eq!(saved["a"].registration, expected["a"]);
        assert_eq!(saved["a"].token.as_deref(), Some("t"));
        let again = Registrations::new(Arc::new(NodeOrigin::new("n1".into(), sink.clone())), &dir);
        assert_eq!(again.load().unwrap(), Loaded::Saved(2));
        assert_eq!(again.list(), expected);
        assert_eq!(lock(&sink.0).clone().unwrap(), full);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    type Entries2 = BTreeMap<String, Entry>;
}

//! This node's registrations (`PUT`/`DELETE /v1/registrations/{id}`): kept in memory and
//! published as the node's origin.

use std::collections::BTreeMap;
use std::sync::Mutex;

use beacon_catalog::registration::{self, Registration};

use crate::cluster::Sink;
use crate::origins::node_origin;

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
    node: String,
    entries: Mutex<BTreeMap<String, Registration>>,
    sink: Sink,
}

impl Registrations {
    /// The registrations of `node`, published through `sink`.
    pub fn new(node: String, sink: Sink) -> Self {
        Self {
            node,
            entries: Mutex::new(BTreeMap::new()),
            sink,
        }
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
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
        let fragment = registration::fragment(&self.node, &entries);
        // Still under the lock, so that fragments reach the origins in the order of the edits.
        self.sink.set(&node_origin(&self.node), fragment)?;
        Ok(out)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Registration>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

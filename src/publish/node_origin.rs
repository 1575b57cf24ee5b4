//! This node's own origin, `node/<name>`: the registrations it accepted and the tasks its Mesos
//! agent runs, published together as one fragment. The node is the only writer of that origin,
//! so two sources on one node must go out as one document, never one overwriting the other.

use std::sync::{Arc, Mutex};

use beacon_catalog::Catalog;

use super::{PublishError, Sink, node_origin};
use crate::common::lock;

/// The two parts of the node's fragment, and where it is published.
pub struct NodeOrigin {
    node: String,
    sink: Arc<dyn Sink>,
    parts: Mutex<Parts>,
}

#[derive(Default)]
struct Parts {
    registrations: Catalog,
    agent_tasks: Catalog,
    /// While set, edits are kept but not published: the registrations are being recovered
    /// from the cluster's copy of this origin, which a publication now would overwrite.
    held: bool,
}

impl NodeOrigin {
    /// The origin of `node`, published through `sink`.
    pub fn new(node: String, sink: Arc<dyn Sink>) -> Self {
        Self {
            node,
            sink,
            parts: Mutex::new(Parts::default()),
        }
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Replaces the registrations' part and publishes. Blocking: call it from a blocking thread.
    pub fn set_registrations(&self, part: Catalog) -> Result<(), PublishError> {
        self.update(|parts| {
            parts.registrations = part;
            parts.held = false;
        })
    }

    /// Replaces the local agent's tasks and publishes. Blocking.
    pub fn set_agent_tasks(&self, part: Catalog) -> Result<(), PublishError> {
        self.update(|parts| parts.agent_tasks = part)
    }

    /// Publishes the fragment as it stands (an empty one at start, so that a node with no
    /// other source is ready and known to the cluster). Blocking.
    pub fn publish(&self) -> Result<(), PublishError> {
        self.update(|_| {})
    }

    /// Keeps edits unpublished until the registrations' part is set again (recovery).
    pub fn hold(&self) {
        lock(&self.parts).held = true;
    }

    fn update(&self, edit: impl FnOnce(&mut Parts)) -> Result<(), PublishError> {
        // The lock is held through publishing, so fragments go out in the order of the edits.
        let mut parts = lock(&self.parts);
        edit(&mut parts);
        if parts.held {
            return Ok(());
        }
        let fragment = Catalog::merge([&parts.registrations, &parts.agent_tasks]);
        self.sink.set(&node_origin(&self.node), fragment)
    }
}

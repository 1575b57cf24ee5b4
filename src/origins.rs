//! The catalog as the union of its sources' fragments, one per origin: the Mesos master's state
//! (`mesos-master`) and each node's own registrations and agent tasks (`node/<name>`). Changing a
//! fragment publishes the union, so every source goes one way: source → origins → published
//! records, zone and VIPs. In a cluster the replicated store fills this map with every node's
//! fragments (`cluster.rs`); alone, the node's sources write here directly.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use beacon_catalog::Catalog;

use crate::published::{Current, Published, Publisher};

/// The origin of the Mesos master's state.
pub const MESOS_MASTER: &str = "mesos-master";

/// The origin of a node's own registrations.
pub fn node_origin(node: &str) -> String {
    format!("node/{node}")
}

/// Every origin's fragment, and the publisher of their union.
pub struct Origins {
    fragments: Mutex<BTreeMap<String, Arc<Catalog>>>,
    /// Origins that must have loaded once before anything is published: until the master's
    /// state is in, DNS answers SERVFAIL rather than NXDOMAIN for Mesos names.
    required: Vec<String>,
    publisher: Publisher,
    current: Current,
}

impl Origins {
    /// Origins published through `publisher` into `current`.
    pub fn new(required: Vec<String>, publisher: Publisher, current: Current) -> Self {
        Self {
            fragments: Mutex::new(BTreeMap::new()),
            required,
            publisher,
            current,
        }
    }

    /// Replaces `origin`'s fragment and publishes the union; `Ok(None)` while a required origin
    /// is still missing. Blocking (generation takes a while with many tasks): call it from a
    /// blocking thread.
    pub fn set(&self, origin: &str, fragment: Catalog) -> Result<Option<Arc<Published>>, String> {
        // The lock is held through publishing so that two sources cannot publish out of order.
        let mut fragments = self.fragments.lock().unwrap_or_else(|e| e.into_inner());
        fragments.insert(origin.to_string(), Arc::new(fragment));
        self.publish(&fragments)
    }

    /// Replaces every fragment (what the cluster's store holds) and publishes the union.
    /// Blocking.
    pub fn replace_all(
        &self,
        all: BTreeMap<String, Arc<Catalog>>,
    ) -> Result<Option<Arc<Published>>, String> {
        let mut fragments = self.fragments.lock().unwrap_or_else(|e| e.into_inner());
        *fragments = all;
        self.publish(&fragments)
    }

    /// The VIP side of the publisher.
    pub fn vips(&self) -> &Arc<crate::vips::Vips> {
        self.publisher.vips()
    }

    /// Publishes the fragments again, unchanged: what VIPs may use changed (a node went down
    /// or came back). Blocking.
    pub fn republish(&self) -> Result<Option<Arc<Published>>, String> {
        let fragments = self.fragments.lock().unwrap_or_else(|e| e.into_inner());
        self.publish(&fragments)
    }

    fn publish(
        &self,
        fragments: &BTreeMap<String, Arc<Catalog>>,
    ) -> Result<Option<Arc<Published>>, String> {
        if !self.required.iter().all(|r| fragments.contains_key(r)) {
            return Ok(None);
        }
        self.publisher
            .publish(&self.current, fragments, &agent_owners(fragments))
            .map(Some)
            .map_err(|e| e.to_string())
    }
}

/// The gossip node of each Mesos agent some node polls: a node's fragment names its agent.
fn agent_owners(fragments: &BTreeMap<String, Arc<Catalog>>) -> BTreeMap<String, String> {
    let nodes = fragments
        .iter()
        .filter_map(|(origin, f)| Some((origin.strip_prefix("node/")?, f)));
    nodes
        .flat_map(|(node, f)| f.agents.iter().map(|a| (a.id.clone(), node.to_string())))
        .collect()
}

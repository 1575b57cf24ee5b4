//! The catalog as the union of its sources' fragments, one per origin: the Mesos master's state
//! (`mesos-master`) and each node's own registrations and agent tasks (`node/<name>`). Changing a
//! fragment publishes the union. In a cluster the replicated store fills this map with every
//! node's fragments (`crate::cluster`); alone, the node's sources write here directly, through
//! this type's [`Sink`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use beacon_catalog::Catalog;

use super::{Current, Fragments, PublishError, Published, Publisher, Sink, Vips};
use crate::common::lock;

/// The origin of the Mesos master's state.
pub const MESOS_MASTER: &str = "mesos-master";

/// The origin of a node's own registrations.
pub fn node_origin(node: &str) -> String {
    format!("node/{node}")
}

/// Every origin's fragment, and the publisher of their union.
pub struct Origins {
    fragments: Mutex<Fragments>,
    /// Origins that must have loaded once before anything is published: until the master's
    /// state is in, DNS answers SERVFAIL rather than NXDOMAIN for Mesos names.
    required: Vec<String>,
    publisher: Publisher,
    current: Current,
}

/// What a publish gave: the new generation, or `None` while a required origin is missing.
pub type Outcome = Result<Option<Arc<Published>>, PublishError>;

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

    /// Replaces `origin`'s fragment and publishes the union. Blocking.
    pub fn set(&self, origin: &str, fragment: Catalog) -> Outcome {
        // The lock is held through publishing so that two sources cannot publish out of order.
        let mut fragments = lock(&self.fragments);
        fragments.insert(origin.to_string(), Arc::new(fragment));
        self.publish(&fragments)
    }

    /// Replaces every fragment (what the cluster's store holds) and publishes the union.
    /// Blocking.
    pub fn replace_all(&self, all: Fragments) -> Outcome {
        let mut fragments = lock(&self.fragments);
        *fragments = all;
        self.publish(&fragments)
    }

    /// The VIP side of the publisher.
    pub fn vips(&self) -> &Arc<Vips> {
        self.publisher.vips()
    }

    /// Publishes the fragments again, unchanged: what VIPs may use changed (a node went down
    /// or came back). Blocking.
    pub fn republish(&self) -> Outcome {
        let fragments = lock(&self.fragments);
        self.publish(&fragments)
    }

    fn publish(&self, fragments: &Fragments) -> Outcome {
        if !self.required.iter().all(|r| fragments.contains_key(r)) {
            return Ok(None);
        }
        let owners = agent_owners(fragments);
        Ok(Some(self.publisher.publish(
            &self.current,
            fragments,
            &owners,
        )?))
    }
}

impl Sink for Origins {
    fn set(&self, origin: &str, fragment: Catalog) -> Result<(), PublishError> {
        Self::set(self, origin, fragment).map(|_| ())
    }
}

/// The gossip node of each Mesos agent some node polls: a node's fragment names its agent.
fn agent_owners(fragments: &Fragments) -> BTreeMap<String, String> {
    let nodes = fragments
        .iter()
        .filter_map(|(origin, f)| Some((origin.strip_prefix("node/")?, f)));
    nodes
        .flat_map(|(node, f)| f.agents.iter().map(|a| (a.id.clone(), node.to_string())))
        .collect()
}

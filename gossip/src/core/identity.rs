//! The identity a node has in the cluster: its name, where to reach it, and a bump that orders
//! successive lives of the same name.
//!
//! foca identifies members by value and detects "two identities for one member" through
//! [`Identity::addr`]. We use the socket address as that key, for two reasons: a joining node only
//! knows its seeds by address (foca accepts an announce addressed to any identity with our
//! address), and foca finds members by a linear scan comparing keys, which is cheapest for a
//! `Copy` address. When a node restarts, or is wrongly declared down and rejoins, it comes back
//! with a larger `bump`, which wins the conflict and replaces the old identity everywhere (foca
//! emits `Rename`). Names are what the store calls a node's origin; the node layer keeps track of
//! which names have a live member.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use foca::Identity;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One life of one node: `name` is stable, `bump` grows every time the node (re)joins.
///
/// The caller picks `bump` at start from the wall clock (milliseconds since the Unix epoch is a
/// good choice), so that a restarted node's identity is always newer than the one it had before.
/// foca bumps it by one more when the node finds itself declared down and rejoins
/// ([`Identity::renew`]).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId {
    // Field order matters: derived comparisons look at the address and bump first, which tells
    // members apart without comparing strings (foca compares identities in linear scans).
    addr: SocketAddr,
    bump: u64,
    #[serde(serialize_with = "ser_name", deserialize_with = "de_name")]
    name: Arc<str>,
}

impl NodeId {
    /// A node called `name`, reachable at `addr`, in the life numbered `bump`.
    pub fn new(name: &str, addr: SocketAddr, bump: u64) -> Self {
        Self {
            name: name.into(),
            addr,
            bump,
        }
    }

    /// The node name, e.g. `n1`; also the name of the node's own store origin.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address the transport dials to reach this node.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Which life of the node this is: larger is newer.
    pub fn bump(&self) -> u64 {
        self.bump
    }

    /// A stand-in for a peer known only by address, to announce ourselves to (a seed). foca
    /// accepts an announce whose destination has its address, whatever the name and bump.
    pub fn seed(addr: SocketAddr) -> Self {
        Self::new("", addr, 0)
    }
}

impl Identity for NodeId {
    type Addr = SocketAddr;

    /// Rejoin after being declared down with a strictly newer identity (foca requires the new one
    /// to win [`Identity::win_addr_conflict`] against the old).
    fn renew(&self) -> Option<Self> {
        Some(Self {
            name: self.name.clone(),
            addr: self.addr,
            bump: self.bump.wrapping_add(1),
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The newer life wins; the name breaks the (unexpected) tie so both sides agree on a winner.
    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        (self.bump, &self.name) > (adversary.bump, &adversary.name)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}#{}", self.name, self.addr, self.bump)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

fn ser_name<S: Serializer>(name: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(name)
}

fn de_name<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<str>, D::Error> {
    String::deserialize(d).map(Arc::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(bump: u64) -> NodeId {
        NodeId::new("n1", "127.0.0.1:7000".parse().unwrap(), bump)
    }

    #[test]
    fn renewed_identity_wins() {
        let old = id(10);
        let new = old.renew().unwrap();
        assert_eq!(new.name(), "n1");
        assert!(new.win_addr_conflict(&old));
        assert!(!old.win_addr_conflict(&new));
    }

    #[test]
    fn postcard_roundtrip() {
        let a = id(1_700_000_000_000);
        let bytes = postcard::to_allocvec(&a).unwrap();
        let b: NodeId = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(a, b);
    }
}

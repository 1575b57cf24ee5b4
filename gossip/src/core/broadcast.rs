//! Store deltas as foca custom broadcasts.
//!
//! A change to an origin is broadcast as an item (`wire::Item`): the origin, its version and its payload.
//! foca piggybacks items on SWIM packets and re-sends each one `max_transmissions` times; a node
//! that receives an item newer than what it holds applies it and re-broadcasts it (returns
//! `Some(key)` from [`BroadcastHandler::receive_item`]), so the item spreads epidemically. An item
//! that is not new is dropped (`None`): returning `Some` for old news would keep it circulating
//! forever.
//!
//! Payloads too large to share a datagram with a SWIM header travel as a *notice* (the item
//! without its payload). A node that learns from a notice that it is behind does not relay it: it
//! pulls the payload from the sender by sync, and broadcasts a notice of its own once it holds the
//! data. So whoever sends a notice can always serve the pull. The same notice, re-sent every few
//! seconds for each origin a node writes, is the heartbeat that lets peers notice deltas they
//! missed (research/gossip-dns.md §1.5 step 3), in both directions: a sender with an older version
//! than ours gets a sync too.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use foca::{BroadcastHandler, Invalidates};

use crate::core::identity::NodeId;
use crate::core::store::{Applied, Origin, Store, Version};
use crate::error::Error;
use crate::wire::{self, Item};

/// The identity of a broadcast item inside foca's queue.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    origin: Origin,
    version: Version,
    full: bool,
}

/// State the broadcast handler shares with the node: foca owns the handler and gives no access
/// to it, so both hold this behind a lock (uncontended: one owner drives the node).
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) store: Store,
    /// The time of the call being processed, for the store's bookkeeping.
    pub(crate) now: Instant,
    /// Notices that show we are behind: pull `origin` at `version` from the sender.
    pub(crate) pulls: Vec<(NodeId, Origin, Version)>,
    /// Senders of notices older than what we hold: they need a sync.
    pub(crate) behind: Vec<NodeId>,
}

/// foca's handler for our items.
pub(crate) struct Handler {
    shared: Arc<Mutex<Shared>>,
}

/// Why an item was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ItemError {
    /// The item did not decode.
    #[error(transparent)]
    Decode(#[from] Error),
    /// The payload does not match its version's hash.
    #[error("payload for {origin} does not match version {version}")]
    BadHash { origin: Origin, version: Version },
}

impl Invalidates for Key {
    /// A newer version of the same origin replaces a queued older one; at the same version a full
    /// item replaces a notice (and an identical item, so re-queued heartbeats do not pile up), but
    /// a notice never replaces a full item still being spread.
    fn invalidates(&self, other: &Self) -> bool {
        self.origin == other.origin
            && (self.version > other.version
                || (self.version == other.version && (self.full || !other.full)))
    }
}

impl Handler {
    pub(crate) fn new(shared: Arc<Mutex<Shared>>) -> Self {
        Self { shared }
    }
}

impl BroadcastHandler<NodeId> for Handler {
    type Key = Key;
    type Error = ItemError;

    fn receive_item(
        &mut self,
        data: &[u8],
        sender: Option<&NodeId>,
    ) -> Result<Option<Key>, ItemError> {
        let Item::V1 {
            origin,
            version,
            payload,
        } = wire::decode("broadcast item", data)?;
        let key = Key {
            origin,
            version,
            full: payload.is_some(),
        };
        // Our own items (foca::add_broadcast): the node has already written the store.
        let Some(sender) = sender else {
            return Ok(Some(key));
        };
        let mut shared = lock(&self.shared);
        let shared = &mut *shared;
        match payload {
            Some(payload) => {
                match shared
                    .store
                    .apply(shared.now, key.origin.clone(), version, payload)
                {
                    Applied::New => Ok(Some(key)),
                    Applied::Stale => Ok(None),
                    Applied::BadHash => Err(ItemError::BadHash {
                        origin: key.origin,
                        version,
                    }),
                }
            }
            None => {
                let ours = shared.store.version(&key.origin);
                if ours < Some(version) {
                    shared.pulls.push((sender.clone(), key.origin, version));
                } else if ours > Some(version) {
                    shared.behind.push(sender.clone());
                }
                Ok(None)
            }
        }
    }
}

/// Encode an item: the full delta, or a notice when `payload` is `None`.
pub(crate) fn encode_item(origin: &Origin, version: Version, payload: Option<&Bytes>) -> Vec<u8> {
    wire::encode(&Item::V1 {
        origin: origin.clone(),
        version,
        payload: payload.cloned(),
    })
}

/// Lock the shared state. A panic while it was held cannot leave it half-updated in a way that
/// matters more than losing the node, so a poisoned lock is used as is.
pub(crate) fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(version: u64, full: bool) -> Key {
        Key {
            origin: Origin::Node("a".into()),
            version: Version {
                stamp: version,
                hash: 0,
            },
            full,
        }
    }

    #[test]
    fn invalidation() {
        assert!(key(2, false).invalidates(&key(1, true)));
        assert!(!key(1, true).invalidates(&key(2, false)));
        assert!(key(1, true).invalidates(&key(1, false)));
        assert!(!key(1, false).invalidates(&key(1, true)));
        assert!(key(1, false).invalidates(&key(1, false)));
        let mut other = key(3, true);
        other.origin = Origin::Node("b".into());
        assert!(!key(4, true).invalidates(&other));
    }
}

//! Store deltas as foca custom broadcasts.
//!
//! A change to an origin is broadcast as an item (`wire::Item`): the origin, its version, its
//! payload and its writer's seal, checked before anything is stored ([`crate::core::trust`]).
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
//!
//! A node's certificate is an item too, broadcast once when it starts, so its seals can be
//! checked everywhere without a round trip; a delta sealed by a certificate we have not seen is
//! pulled from its sender like a notice, and the sync answer carries the certificate.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use foca::{BroadcastHandler, Invalidates};

use crate::core::identity::NodeId;
use crate::core::store::{Applied, Origin, Store, Version};
use crate::core::trust::{CertId, Reason, Refusal, Seal, Trust};
use crate::error::Error;
use crate::wire::{self, Item, ItemV2};

/// The identity of a broadcast item inside foca's queue.
#[derive(Debug, Clone)]
pub(crate) enum Key {
    /// An origin's version: whole (`full`) or a notice.
    Record {
        origin: Origin,
        version: Version,
        full: bool,
    },
    /// A node's certificate.
    Certificate(CertId),
}

/// State the broadcast handler shares with the node: foca owns the handler and gives no access
/// to it, so both hold this behind a lock (uncontended: one owner drives the node).
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) store: Store,
    /// Our key, the writers we know, and what we refused.
    pub(crate) trust: Trust,
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
        match (self, other) {
            (
                Self::Record {
                    origin,
                    version,
                    full,
                },
                Self::Record {
                    origin: o,
                    version: v,
                    full: f,
                },
            ) => origin == o && (version > v || (version == v && (*full || !*f))),
            (Self::Certificate(a), Self::Certificate(b)) => a == b,
            _ => false,
        }
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
        let item = match wire::decode_item(data)? {
            Item::V2(item) => item,
            Item::V1 { .. } => {
                if sender.is_some() {
                    lock(&self.shared).trust.rejections.count(Reason::Unsigned);
                }
                return Ok(None);
            }
        };
        let mut shared = lock(&self.shared);
        match item {
            ItemV2::Certificate(der) => {
                let key = Key::Certificate(CertId::of(&der));
                let now = shared.now;
                let new = sender.is_none() || !shared.trust.knows(&CertId::of(&der));
                // Relayed only the first time we learn it, like any item.
                Ok((new && shared.trust.learn(now, &der)).then_some(key))
            }
            ItemV2::Record {
                origin,
                version,
                payload,
            } => {
                let key = Key::Record {
                    origin: origin.clone(),
                    version,
                    full: payload.is_some(),
                };
                // Our own items (foca::add_broadcast): the node has already written the store.
                let Some(sender) = sender else {
                    return Ok(Some(key));
                };
                match payload {
                    Some((payload, seal)) => {
                        receive_delta(&mut shared, sender, origin, version, payload, seal)
                            .map(|relay| relay.then_some(key))
                    }
                    None => {
                        receive_notice(&mut shared, sender, origin, version);
                        Ok(None)
                    }
                }
            }
        }
    }
}

/// A delta from `sender`: stored if new and sealed by its origin's writer. Returns whether to
/// relay it.
fn receive_delta(
    shared: &mut Shared,
    sender: &NodeId,
    origin: Origin,
    version: Version,
    payload: Bytes,
    seal: Seal,
) -> Result<bool, ItemError> {
    // Old news costs no signature check: foca delivers every item several times.
    if shared.store.version(&origin) >= Some(version) {
        return Ok(false);
    }
    let now = shared.now;
    match shared
        .trust
        .check(now, &origin, version, &payload, Some(&seal))
    {
        Ok(()) => {}
        Err(Refusal::Unknown) => {
            // The sender holds it and can send the certificate along: pull it.
            shared.pulls.push((sender.clone(), origin, version));
            return Ok(false);
        }
        Err(Refusal::Rejected(_)) => return Ok(false),
    }
    match shared
        .store
        .apply_sealed(now, origin.clone(), version, payload, Some(seal))
    {
        Applied::New => Ok(true),
        Applied::Stale => Ok(false),
        Applied::BadHash => {
            shared.trust.rejections.count(Reason::BadHash);
            Err(ItemError::BadHash { origin, version })
        }
    }
}

/// A notice from `sender`: pull if we are behind, tell it to sync if it is. A notice stamped
/// beyond the allowed skew is ignored, so it cannot make us pull what we would refuse.
fn receive_notice(shared: &mut Shared, sender: &NodeId, origin: Origin, version: Version) {
    if shared.trust.is_from_the_future(shared.now, version.stamp) {
        shared.trust.rejections.count(Reason::FutureStamp);
        return;
    }
    let ours = shared.store.version(&origin);
    if ours < Some(version) {
        shared.pulls.push((sender.clone(), origin, version));
    } else if ours > Some(version) {
        shared.behind.push(sender.clone());
    }
}

/// Encode an item: the full delta with its seal, or a notice when `payload` is `None`.
pub(crate) fn encode_item(
    origin: &Origin,
    version: Version,
    payload: Option<(&Bytes, &Seal)>,
) -> Vec<u8> {
    wire::encode(&Item::V2(ItemV2::Record {
        origin: origin.clone(),
        version,
        payload: payload.map(|(p, s)| (p.clone(), s.clone())),
    }))
}

/// Encode a certificate announcement.
pub(crate) fn encode_certificate(der: &Bytes) -> Vec<u8> {
    wire::encode(&Item::V2(ItemV2::Certificate(der.clone())))
}

/// Lock the shared state. A panic while it was held cannot leave it half-updated in a way that
/// matters more than losing the node, so a poisoned lock is used as is.
pub(crate) fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(origin: &str, version: u64, full: bool) -> Key {
        Key::Record {
            origin: Origin::Node(origin.into()),
            version: Version {
                stamp: version,
                hash: 0,
            },
            full,
        }
    }

    fn key(version: u64, full: bool) -> Key {
        key_of("a", version, full)
    }

    #[test]
    fn invalidation() {
        assert!(key(2, false).invalidates(&key(1, true)));
        assert!(!key(1, true).invalidates(&key(2, false)));
        assert!(key(1, true).invalidates(&key(1, false)));
        assert!(!key(1, false).invalidates(&key(1, true)));
        assert!(key(1, false).invalidates(&key(1, false)));
        assert!(!key(4, true).invalidates(&key_of("b", 3, true)));
        let cert = Key::Certificate(CertId([1; 8]));
        assert!(cert.invalidates(&cert.clone()));
        assert!(!cert.invalidates(&key(1, true)));
    }
}

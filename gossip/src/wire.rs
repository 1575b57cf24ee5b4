//! Wire formats: every message is a versioned envelope (`V1 { … }`, STYLE rule 11) encoded with
//! postcard, so a later version can be added beside this one and told apart by its tag.
//!
//! * [`Datagram`]: what goes in one QUIC datagram: the cluster id and one foca SWIM packet (which
//!   carries membership updates and our custom broadcasts).
//! * [`Item`]: one custom broadcast inside a SWIM packet: a delta (origin, version, payload and
//!   the writer's seal) or a version notice (origin, version) for payloads too large to
//!   broadcast, or a node's certificate. Version 1 items were unsigned: they still decode, so
//!   they are counted as unsigned when dropped.
//! * [`SyncMessage`]: the three messages of a push-pull sync over one bi-directional stream.
//!   Version 2 carries seals and certificates; version 1 is refused.
//!
//! Decoding never panics: every failure is an [`Error`], and trailing bytes are an error too.

use bytes::Bytes;
use foca::Member;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::core::identity::NodeId;
use crate::core::store::{Origin, Version};
use crate::core::trust::{CertId, Seal};
use crate::error::Error;

/// Bytes an envelope adds to a SWIM packet: tag (1) + cluster id varint (≤ 10) + length varint
/// (≤ 2 for packets under 16 KiB). foca's packet budget is the datagram budget minus this.
pub(crate) const DATAGRAM_OVERHEAD: usize = 13;

/// One datagram.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Datagram<'a> {
    /// Version 1.
    V1 {
        /// The sender's cluster.
        cluster: u64,
        /// A foca packet.
        #[serde(borrow)]
        swim: Raw<'a>,
    },
}

/// One custom broadcast.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Item {
    /// Version 1.
    V1 {
        /// Whose records.
        origin: Origin,
        /// Their version.
        version: Version,
        /// The records, or `None` for a notice ("this version exists, pull it").
        payload: Option<Bytes>,
    },
    /// Version 2: signed deltas, and certificates.
    V2(ItemV2),
}

/// A version 2 broadcast.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ItemV2 {
    /// A delta (with its writer's seal) or a notice (neither payload nor seal).
    Record {
        /// Whose records.
        origin: Origin,
        /// Their version.
        version: Version,
        /// The records and their seal, or `None` for a notice.
        payload: Option<(Bytes, Seal)>,
    },
    /// A node's certificate (DER), broadcast once when it starts so peers can check its seals.
    Certificate(Bytes),
}

/// One message on a sync stream. The cluster id rides on every message.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum SyncMessage {
    /// Version 1.
    V1 {
        /// The sender's cluster; the unsigned body that followed is not read.
        cluster: u64,
    },
    /// Version 2: records carry seals, and certificates travel beside them.
    V2 {
        /// The sender's cluster.
        cluster: u64,
        /// The message.
        body: SyncBody,
    },
}

/// The messages of a sync exchange, in the order they are sent.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum SyncBody {
    /// Requester → responder: what I have.
    Request(SyncRequest),
    /// Responder → requester: what you lack, and what I lack.
    Response(SyncResponse),
    /// Requester → responder: what you said you lack.
    Push(SyncPush),
}

/// Which exchange a sync is; [`crate::core::sync`] describes the three. Defined with the
/// messages it rides in, so the wire format depends on no protocol logic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncKind {
    /// Whole store both ways, and membership.
    Full,
    /// Only some origins, from a peer that announced newer versions.
    Pull,
    /// Tell a member we suspect it, so it can refute.
    Suspect,
}

/// What the requester holds.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SyncRequest {
    /// Who asks (the transport has authenticated the peer; this names its identity).
    pub(crate) from: NodeId,
    /// Full: compare every origin both ways. Pull: only the origins in `digest`. Suspect: no
    /// records, only `members`.
    pub(crate) kind: SyncKind,
    /// Origin → version held by the requester.
    pub(crate) digest: Vec<(Origin, Version)>,
    /// Full: the certificates the requester knows, so the responder sends the others.
    pub(crate) certs: Vec<CertId>,
    /// Full: the requester's membership view, itself included. Suspect: the suspicion. Pull:
    /// empty.
    pub(crate) members: Vec<Member<NodeId>>,
}

/// The responder's answer.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SyncResponse {
    /// Records the requester lacks or holds older.
    pub(crate) records: Vec<SignedRecord>,
    /// Certificates of those records' writers, and (full sync) the ones the requester lacks.
    pub(crate) certs: Vec<Bytes>,
    /// Origins the responder lacks or holds older: the requester pushes them.
    pub(crate) wanted: Vec<Origin>,
    /// Members the requester's view lacks or has stale, the responder itself included.
    pub(crate) members: Vec<Member<NodeId>>,
}

/// The requester's push of what the responder wanted.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SyncPush {
    /// The wanted records.
    pub(crate) records: Vec<SignedRecord>,
    /// Certificates of those records' writers.
    pub(crate) certs: Vec<Bytes>,
}

/// One origin's version as sync carries it, with its writer's seal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SignedRecord {
    /// Whose records.
    pub(crate) origin: Origin,
    /// Their version.
    pub(crate) version: Version,
    /// The records; empty for a tombstone.
    pub(crate) payload: Bytes,
    /// The writer's seal (`None` only from a peer that never had one: refused as unsigned).
    pub(crate) seal: Option<Seal>,
}

/// A borrowed byte string, encoded as postcard bytes (length + raw), decoded without copying.
#[derive(Debug)]
pub(crate) struct Raw<'a>(pub(crate) &'a [u8]);

/// An item of either version, for the broadcast handler.
pub(crate) fn decode_item(bytes: &[u8]) -> Result<Item, Error> {
    decode("broadcast item", bytes)
}

impl Serialize for Raw<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Raw<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&'de [u8]>::deserialize(d).map(Raw)
    }
}

/// Encode any wire message. Encoding into a `Vec` only fails if a `Serialize` impl does, which
/// ours never do; the error is still passed up rather than unwrapped.
pub(crate) fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    // postcard's to_allocvec fails only when the serializer reports an error; derived impls and
    // `Raw` never do, and an empty Vec would be rejected by every decoder anyway.
    postcard::to_allocvec(message).unwrap_or_default()
}

/// Decode a whole message, rejecting trailing bytes.
pub(crate) fn decode<'a, T: Deserialize<'a>>(
    what: &'static str,
    bytes: &'a [u8],
) -> Result<T, Error> {
    let (value, rest) =
        postcard::take_from_bytes(bytes).map_err(|source| Error::Decode { what, source })?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(Error::Trailing {
            what,
            extra: rest.len(),
        })
    }
}

/// Wrap a SWIM packet for the wire.
pub(crate) fn encode_datagram(cluster: u64, swim: &[u8]) -> Vec<u8> {
    encode(&Datagram::V1 {
        cluster,
        swim: Raw(swim),
    })
}

/// Unwrap a datagram, checking its cluster.
pub(crate) fn decode_datagram(cluster: u64, bytes: &[u8]) -> Result<&[u8], Error> {
    match decode("datagram", bytes)? {
        Datagram::V1 { cluster: got, swim } if got == cluster => Ok(swim.0),
        Datagram::V1 { cluster: got, .. } => Err(Error::WrongCluster {
            expected: cluster,
            got,
        }),
    }
}

/// Encode a sync message.
pub(crate) fn encode_sync(cluster: u64, body: SyncBody) -> Vec<u8> {
    encode(&SyncMessage::V2 { cluster, body })
}

/// Decode a sync message, checking its cluster.
pub(crate) fn decode_sync(cluster: u64, bytes: &[u8]) -> Result<SyncBody, Error> {
    let what = "sync message";
    let (message, rest) =
        postcard::take_from_bytes(bytes).map_err(|source| Error::Decode { what, source })?;
    if let SyncMessage::V1 { .. } = message {
        return Err(Error::UnsignedPeer);
    }
    if !rest.is_empty() {
        let extra = rest.len();
        return Err(Error::Trailing { what, extra });
    }
    match message {
        SyncMessage::V2 { cluster: got, body } if got == cluster => Ok(body),
        SyncMessage::V2 { cluster: got, .. } => Err(Error::WrongCluster {
            expected: cluster,
            got,
        }),
        SyncMessage::V1 { .. } => Err(Error::UnsignedPeer),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn datagram_overhead_is_bounded() {
        let swim = vec![0u8; 1400];
        let bytes = encode_datagram(u64::MAX, &swim);
        assert!(bytes.len() - swim.len() <= DATAGRAM_OVERHEAD);
        assert_eq!(decode_datagram(u64::MAX, &bytes).unwrap(), &swim[..]);
    }

    #[test]
    fn other_cluster_is_rejected() {
        let bytes = encode_datagram(1, b"x");
        assert!(matches!(
            decode_datagram(2, &bytes),
            Err(Error::WrongCluster {
                expected: 2,
                got: 1
            })
        ));
        let bytes = encode_sync(
            1,
            SyncBody::Push(SyncPush {
                records: Vec::new(),
                certs: Vec::new(),
            }),
        );
        assert!(matches!(
            decode_sync(2, &bytes),
            Err(Error::WrongCluster { .. })
        ));
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = encode_datagram(1, b"x");
        bytes.push(0);
        assert!(matches!(
            decode_datagram(1, &bytes),
            Err(Error::Trailing { .. })
        ));
    }

    proptest! {
        /// Random bytes never panic a decoder.
        #[test]
        fn decoders_survive_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_datagram(7, &bytes);
            let _ = decode_sync(7, &bytes);
            let _ = decode::<Item>("item", &bytes);
        }
    }
}

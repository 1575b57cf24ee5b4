//! A saved copy of the store, so that a node restarted while no peer answers (a cluster outage)
//! serves the records it last held, at once, instead of nothing.
//!
//! The copy holds every origin's version, payload and seal, whether it was withdrawn, and the
//! certificates behind the seals. It is not trusted for being ours: whoever can write the file
//! could write anything into it, so [`crate::Node::restore`] checks every entry exactly as a
//! record from a peer (the seal, the writer's certificate against the CA today, the deny list,
//! the writer's right to the origin, the stamp against the clock skew; see
//! [`crate::core::trust`]) and merges it like one: highest version wins, so a copy never
//! replaces anything newer. Only the withdrawn flag is taken on the file's word: it can only
//! hide records, never add any, and a member of that name coming up shows them again.
//!
//! The encoding is postcard behind a magic line and followed by the FNV-1a hash of the body, so
//! a truncated or damaged file is told apart from a good one before anything is applied. No
//! I/O here: the agent writes and reads the bytes.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::core::seal::Seal;
use crate::core::store::{Origin, Version, content_hash};
use crate::error::Error;

/// The first bytes of a saved copy: what it is and the format's version.
const MAGIC: &[u8] = b"beacon gossip store v1\n";

/// A copy of the store: see the module docs. Take one with [`crate::Node::snapshot`], restore
/// it with [`crate::Node::restore`]. The default is an empty copy.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Snapshot {
    /// When it was taken: milliseconds since the Unix epoch on the saving node's clock.
    pub saved_at: u64,
    /// The cluster it belongs to: seals name it, so another cluster's copy checks nowhere.
    pub(crate) cluster: u64,
    pub(crate) records: Vec<SavedRecord>,
    /// The certificates of the records' writers.
    pub(crate) certs: Vec<Bytes>,
}

/// One origin as saved.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct SavedRecord {
    pub(crate) origin: Origin,
    pub(crate) version: Version,
    pub(crate) payload: Bytes,
    pub(crate) seal: Option<Seal>,
    /// Hidden when saved (its node was gone): restored hidden.
    pub(crate) withdrawn: bool,
}

/// What [`crate::Node::restore`] did with a copy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// Entries checked and stored.
    pub kept: usize,
    /// Entries refused (bad seal, unknown or revoked writer, another cluster, stamped too far
    /// ahead, not the writer's origin); each is counted in [`crate::Rejections`] too.
    pub refused: usize,
    /// When the copy was taken (ms since the Unix epoch).
    pub saved_at: u64,
}

/// While a node serves what it restored and has not heard from a peer since.
#[derive(Debug)]
pub(crate) struct Restoring {
    /// [`Snapshot::saved_at`].
    pub(crate) saved_at: u64,
    /// The other nodes whose records were restored: their withdrawal grace period starts once
    /// a peer has answered, not while we cannot tell a dead node from our own isolation.
    pub(crate) names: Vec<String>,
}

impl Snapshot {
    /// How many origins it holds.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether it holds no origin.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The bytes to keep.
    pub fn encode(&self) -> Vec<u8> {
        let body = postcard::to_allocvec(self).expect("a snapshot always encodes");
        let mut out = Vec::with_capacity(MAGIC.len() + body.len() + 8);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&body);
        out.extend_from_slice(&content_hash(&body).to_le_bytes());
        out
    }

    /// Reads kept bytes back; an error for anything that is not a whole copy (truncated, damaged,
    /// another format).
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let what = "saved store";
        let body = bytes
            .strip_prefix(MAGIC)
            .ok_or(Error::Corrupt("not a saved gossip store"))?;
        let split = body
            .len()
            .checked_sub(8)
            .ok_or(Error::Corrupt("truncated"))?;
        let (body, hash) = body.split_at(split);
        let hash = u64::from_le_bytes(hash.try_into().expect("8 bytes"));
        if content_hash(body) != hash {
            return Err(Error::Corrupt(
                "truncated or damaged: the checksum does not match",
            ));
        }
        let (snapshot, rest) =
            postcard::take_from_bytes(body).map_err(|source| Error::Decode { what, source })?;
        if !rest.is_empty() {
            return Err(Error::Trailing {
                what,
                extra: rest.len(),
            });
        }
        Ok(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::core::trust::Reason;
    use crate::sim::{SimCa, SimKeys};
    use crate::{Node, NodeConfig, NodeId};

    /// Now on the wall clock, in ms: certificates and stamps are checked against it.
    const WALL: u64 = 1_700_000_000_000;

    fn node(keys: SimKeys, port: u16) -> Node {
        let id = NodeId::new(
            &String::from_utf8_lossy(&keys_name(&keys)),
            ([127, 0, 0, 1], port).into(),
            1,
        );
        let config = NodeConfig {
            withdraw_after: Duration::from_secs(5),
            ..NodeConfig::default()
        };
        let mut node = Node::new(config, id, 7, Instant::now(), Arc::new(keys));
        node.set_wall_clock(Instant::now(), WALL);
        node
    }

    fn keys_name(keys: &SimKeys) -> Vec<u8> {
        use crate::core::trust::Keys;
        let certificate = keys.certificate();
        certificate[2..2 + usize::from(certificate[1])].to_vec()
    }

    fn a() -> Origin {
        Origin::Node("a".into())
    }

    fn master() -> Origin {
        Origin::Shared(crate::core::trust::MESOS_MASTER.into())
    }

    /// Node "a" (a master poller) with its own records and the master's, saved and read back.
    fn saved_by_a(ca: &Arc<SimCa>) -> Snapshot {
        let mut writer = node(ca.issue("a", true), 1);
        let now = Instant::now();
        writer.publish(now, WALL, a(), Bytes::from_static(b"a's records"));
        writer.publish(now, WALL, master(), Bytes::from_static(b"the master's"));
        Snapshot::decode(&writer.snapshot(WALL).encode()).unwrap()
    }

    fn payload(node: &Node, origin: &Origin) -> Option<Bytes> {
        node.record(origin).map(|r| r.payload)
    }

    #[test]
    fn a_saved_store_comes_back_and_is_served_at_once() {
        let ca = Arc::new(SimCa::new());
        let snapshot = saved_by_a(&ca);
        let mut b = node(ca.issue("b", false), 2);
        let restored = b.restore(Instant::now(), WALL, snapshot);
        assert_eq!((restored.kept, restored.refused), (2, 0));
        assert_eq!(b.restored_at(), Some(WALL));
        assert_eq!(payload(&b, &a()).unwrap(), "a's records");
        assert_eq!(payload(&b, &master()).unwrap(), "the master's");
        let events: Vec<_> = std::iter::from_fn(|| b.poll_event()).collect();
        assert!(
            events.contains(&crate::Event::OriginChanged(a())),
            "{events:?}"
        );
        // Alone, b cannot tell a dead "a" from its own isolation: a's records stay.
        b.handle_timeout(Instant::now() + Duration::from_secs(60));
        assert!(payload(&b, &a()).is_some());
    }

    #[test]
    fn a_tampered_payload_is_refused() {
        let ca = Arc::new(SimCa::new());
        let mut snapshot = saved_by_a(&ca);
        for record in &mut snapshot.records {
            // A consistent version, so only the seal can tell.
            record.payload = Bytes::from_static(b"forged");
            record.version = Version::of(record.version.stamp + 1, &record.payload);
        }
        let mut b = node(ca.issue("b", false), 2);
        let restored = b.restore(
            Instant::now(),
            WALL,
            Snapshot::decode(&snapshot.encode()).unwrap(),
        );
        assert_eq!((restored.kept, restored.refused), (0, 2));
        assert_eq!(b.rejections().get(Reason::BadSignature), 2);
        assert!(b.records().is_empty());
        assert_eq!(b.restored_at(), None);
    }

    #[test]
    fn a_seal_from_an_unknown_or_foreign_certificate_is_refused() {
        let ca = Arc::new(SimCa::new());
        // The certificates left out: nobody vouches for the seals.
        let mut snapshot = saved_by_a(&ca);
        snapshot.certs.clear();
        let mut b = node(ca.issue("b", false), 2);
        assert_eq!(b.restore(Instant::now(), WALL, snapshot).refused, 2);
        assert_eq!(b.rejections().get(Reason::UnknownCertificate), 2);
        // Records sealed under another CA, with that CA's certificate beside them.
        let rogue = saved_by_a(&Arc::new(SimCa::new()));
        let mut c = node(ca.issue("c", false), 3);
        assert_eq!(c.restore(Instant::now(), WALL, rogue).kept, 0);
        assert_eq!(c.rejections().get(Reason::BadCertificate), 1);
        assert!(c.records().is_empty());
    }

    #[test]
    fn a_revoked_writer_is_refused() {
        let ca = Arc::new(SimCa::new());
        let mut b = node(ca.issue("b", false), 2);
        b.set_revoked(Instant::now(), BTreeSet::from(["a".to_owned()]));
        let restored = b.restore(Instant::now(), WALL, saved_by_a(&ca));
        assert_eq!((restored.kept, restored.refused), (0, 2));
        assert_eq!(b.rejections().get(Reason::Revoked), 2);
    }

    #[test]
    fn a_stamp_too_far_ahead_is_refused() {
        let ca = Arc::new(SimCa::new());
        let snapshot = saved_by_a(&ca);
        let mut b = node(ca.issue("b", false), 2);
        // The clock went back an hour since the save.
        let restored = b.restore(Instant::now(), WALL - 3_600_000, snapshot);
        assert_eq!(restored.kept, 0);
        assert_eq!(b.rejections().get(Reason::FutureStamp), 2);
    }

    #[test]
    fn an_older_copy_never_replaces_a_newer_version() {
        let ca = Arc::new(SimCa::new());
        let mut writer = node(ca.issue("a", true), 1);
        let now = Instant::now();
        writer.publish(now, WALL - 10, a(), Bytes::from_static(b"old"));
        let old = writer.snapshot(WALL);
        writer.publish(now, WALL, a(), Bytes::from_static(b"new"));
        let new = writer.snapshot(WALL);
        let mut b = node(ca.issue("b", false), 2);
        assert_eq!(b.restore(now, WALL, new).kept, 1);
        assert_eq!(b.restore(now, WALL, old).kept, 0);
        assert_eq!(payload(&b, &a()).unwrap(), "new");
    }

    #[test]
    fn a_withdrawn_origin_comes_back_withdrawn() {
        let ca = Arc::new(SimCa::new());
        let mut snapshot = saved_by_a(&ca);
        for record in &mut snapshot.records {
            record.withdrawn = record.origin == a();
        }
        let mut b = node(ca.issue("b", false), 2);
        assert_eq!(b.restore(Instant::now(), WALL, snapshot).kept, 2);
        assert_eq!(b.version(&a()).map(|_| ()), Some(()));
        assert!(payload(&b, &a()).is_none());
        assert!(payload(&b, &master()).is_some());
        // Saved again, it is still withdrawn.
        let again = b.snapshot(WALL);
        assert!(again.records.iter().any(|r| r.origin == a() && r.withdrawn));
    }

    #[test]
    fn another_clusters_copy_is_refused_whole() {
        let ca = Arc::new(SimCa::new());
        let mut snapshot = saved_by_a(&ca);
        snapshot.cluster ^= 1;
        let mut b = node(ca.issue("b", false), 2);
        assert_eq!(b.restore(Instant::now(), WALL, snapshot).refused, 2);
        assert!(b.records().is_empty());
    }

    fn bare() -> Snapshot {
        Snapshot {
            saved_at: 7,
            cluster: 1,
            records: vec![SavedRecord {
                origin: Origin::Node("a".into()),
                version: Version::of(1, b"x"),
                payload: Bytes::from_static(b"x"),
                seal: None,
                withdrawn: true,
            }],
            certs: vec![Bytes::from_static(b"cert")],
        }
    }

    #[test]
    fn round_trips() {
        let bytes = bare().encode();
        let back = Snapshot::decode(&bytes).unwrap();
        assert_eq!(back.saved_at, 7);
        assert_eq!(back.len(), 1);
        assert!(back.records[0].withdrawn);
        assert_eq!(back.certs, vec![Bytes::from_static(b"cert")]);
    }

    #[test]
    fn anything_but_a_whole_copy_is_refused() {
        let bytes = bare().encode();
        for cut in 0..bytes.len() {
            assert!(Snapshot::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 1;
        assert!(Snapshot::decode(&flipped).is_err());
        let mut longer = bytes;
        longer.push(0);
        assert!(Snapshot::decode(&longer).is_err());
    }
}

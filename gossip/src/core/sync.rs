//! Push-pull anti-entropy over a reliable stream.
//!
//! Broadcasts are fire-and-forget: a node that was partitioned, joined late or lost packets can
//! miss a delta for good (research/gossip-dns.md §1.4). Sync repairs that, memberlist-style: the
//! requester sends the digest of its store (origin → version) and its membership view; the
//! responder answers, in one round trip, with every record the requester lacks or holds older,
//! the origins it lacks itself, and the member records the requester's view is missing; the
//! requester then pushes the records the responder asked for. The three messages travel on one
//! QUIC bi-directional stream opened by the transport, so they are reliable and ordered.
//!
//! Three kinds of exchange share the format:
//!
//! * [`SyncKind::Full`]: both digests, both ways, plus membership. Periodic (every 10 s at up to
//!   32 nodes, scaled up with log2 N above that like memberlist's push-pull), right after joining,
//!   and when a peer's heartbeat shows it is behind us.
//! * [`SyncKind::Pull`]: only the origins a version notice said we are behind on; no membership.
//! * [`SyncKind::Suspect`]: no records; carries the suspicion our failed probe just raised to the
//!   suspect itself, which refutes it and answers with its new incarnation. This is Lifeguard's
//!   "buddy system" over a channel that survives datagram loss, so a live node under packet loss
//!   clears a suspicion long before the suspicion timeout.
//!
//! Records travel with their writers' seals, and the certificates behind those seals ride
//! beside them, so the receiver checks every record as if it came from its writer (see
//! [`crate::core::trust`]); a full sync also sends the certificates the requester lacks.
//!
//! The functions here are pure over a [`Store`]; the node layer does scheduling and membership.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Instant;

use bytes::Bytes;

use crate::core::store::{Applied, Origin, Store, Version};
use crate::core::trust::{CertId, Reason, Trust};
pub use crate::wire::SyncKind;
use crate::wire::{SignedRecord, SyncPush, SyncRequest, SyncResponse};

/// A version lower than any real one: in a pull, "I have nothing for this origin".
pub(crate) const NO_VERSION: Version = Version { stamp: 0, hash: 0 };

/// The responder's side: the records the requester lacks, and what we lack.
pub(crate) fn answer(store: &Store, request: &SyncRequest) -> (Vec<SignedRecord>, Vec<Origin>) {
    let theirs: HashMap<&Origin, Version> = request.digest.iter().map(|(o, v)| (o, *v)).collect();
    let mut records = Vec::new();
    let mut wanted = Vec::new();
    if request.kind == SyncKind::Full {
        for (origin, ours) in store.digest() {
            if theirs.get(origin).is_none_or(|v| *v < ours) {
                push_raw(store, origin, &mut records);
            }
        }
    } else if request.kind == SyncKind::Pull {
        for (origin, version) in &request.digest {
            if store.version(origin).is_some_and(|ours| ours > *version) {
                push_raw(store, origin, &mut records);
            }
        }
    }
    if request.kind == SyncKind::Full {
        for (origin, version) in &request.digest {
            if store.version(origin).is_none_or(|ours| ours < *version) {
                wanted.push(origin.clone());
            }
        }
    }
    (records, wanted)
}

/// The certificates to send with `records`: their writers', and with `known` (a full sync's
/// request) every other one the requester lacks.
pub(crate) fn certificates_for(
    trust: &Trust,
    records: &[SignedRecord],
    known: Option<&[CertId]>,
) -> Vec<Bytes> {
    let mut ids: BTreeSet<CertId> = records
        .iter()
        .filter_map(|r| r.seal.as_ref().map(|s| s.cert))
        .collect();
    if let Some(known) = known {
        let known: HashSet<&CertId> = known.iter().collect();
        ids.extend(trust.known().into_iter().filter(|id| !known.contains(id)));
    }
    ids.iter().filter_map(|id| trust.certificate(id)).collect()
}

/// Apply records from a peer, after learning the certificates that came with them: only
/// records sealed by their origin's writer are stored. Returns the new ones and how many were
/// refused.
pub(crate) fn apply_records(
    store: &mut Store,
    trust: &mut Trust,
    now: Instant,
    records: Vec<SignedRecord>,
    certs: &[Bytes],
) -> (Vec<SignedRecord>, usize) {
    for cert in certs {
        trust.learn(now, cert);
    }
    let mut new = Vec::new();
    let mut bad = 0;
    for record in records {
        if store.version(&record.origin) >= Some(record.version) {
            continue;
        }
        let checked = trust.check(
            now,
            &record.origin,
            record.version,
            &record.payload,
            record.seal.as_ref(),
        );
        if checked.is_err() {
            if checked == Err(crate::core::trust::Refusal::Unknown) {
                trust.rejections.count(Reason::UnknownCertificate);
            }
            bad += 1;
            continue;
        }
        let SignedRecord {
            origin,
            version,
            payload,
            seal,
        } = record.clone();
        match store.apply_sealed(now, origin, version, payload, seal) {
            Applied::New => new.push(record),
            Applied::Stale => {}
            Applied::BadHash => {
                trust.rejections.count(Reason::BadHash);
                bad += 1;
            }
        }
    }
    (new, bad)
}

/// The requester's push: the records the responder asked for.
pub(crate) fn push_for(store: &Store, trust: &Trust, response: &SyncResponse) -> SyncPush {
    let mut records = Vec::new();
    for origin in &response.wanted {
        push_raw(store, origin, &mut records);
    }
    let certs = certificates_for(trust, &records, None);
    SyncPush { records, certs }
}

/// The digest of the whole store.
pub(crate) fn full_digest(store: &Store) -> Vec<(Origin, Version)> {
    store.digest().map(|(o, v)| (o.clone(), v)).collect()
}

/// How long to wait between periodic full syncs in a cluster of `n`: memberlist's push-pull
/// scaling, `base × (⌈log2 n − log2 32⌉ + 1)` above 32 nodes.
pub(crate) fn sync_interval(base: std::time::Duration, n: usize) -> std::time::Duration {
    if n <= 32 {
        return base;
    }
    let steps = ((n as f64).log2() - 32f64.log2()).ceil() + 1.0;
    base.mul_f64(steps)
}

fn push_raw(store: &Store, origin: &Origin, out: &mut Vec<SignedRecord>) {
    if let Some((version, payload)) = store.raw(origin) {
        out.push(SignedRecord {
            origin: origin.clone(),
            version,
            payload,
            seal: store.seal(origin).cloned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::core::identity::NodeId;
    use crate::core::store::StoreConfig;

    fn request(store: &Store, kind: SyncKind) -> SyncRequest {
        SyncRequest {
            from: NodeId::seed("127.0.0.1:1".parse().unwrap()),
            kind,
            digest: full_digest(store),
            certs: Vec::new(),
            members: Vec::new(),
        }
    }

    /// The diff logic only: seals are checked (and tested) in the node layer.
    fn apply_unchecked(store: &mut Store, now: Instant, records: Vec<SignedRecord>) {
        for r in records {
            store.apply_sealed(now, r.origin, r.version, r.payload, r.seal);
        }
    }

    #[test]
    fn one_round_trip_converges_both_ways() {
        let now = Instant::now();
        let mut a = Store::new(StoreConfig::default());
        let mut b = Store::new(StoreConfig::default());
        a.write(now, 10, Origin::Node("a".into()), Bytes::from_static(b"a1"));
        a.write(
            now,
            10,
            Origin::Shared("m".into()),
            Bytes::from_static(b"old"),
        );
        b.write(now, 20, Origin::Node("b".into()), Bytes::from_static(b"b1"));
        b.write(
            now,
            20,
            Origin::Shared("m".into()),
            Bytes::from_static(b"new"),
        );

        let req = request(&a, SyncKind::Full);
        let (records, wanted) = answer(&b, &req);
        let response = SyncResponse {
            records,
            wanted,
            members: Vec::new(),
            certs: Vec::new(),
        };
        assert_eq!(response.wanted, vec![Origin::Node("a".into())]);
        let mut push = Vec::new();
        for origin in &response.wanted {
            push_raw(&a, origin, &mut push);
        }
        apply_unchecked(&mut a, now, response.records);
        apply_unchecked(&mut b, now, push);
        assert_eq!(full_digest(&a), full_digest(&b));
        assert_eq!(a.get(&Origin::Shared("m".into())).unwrap().payload, "new");
    }

    #[test]
    fn pull_only_answers_named_origins() {
        let now = Instant::now();
        let mut b = Store::new(StoreConfig::default());
        b.write(now, 20, Origin::Node("b".into()), Bytes::from_static(b"b1"));
        b.write(now, 20, Origin::Node("c".into()), Bytes::from_static(b"c1"));
        let req = SyncRequest {
            digest: vec![(Origin::Node("b".into()), NO_VERSION)],
            ..request(&b, SyncKind::Pull)
        };
        let (records, wanted) = answer(&b, &req);
        assert_eq!(records.len(), 1);
        assert!(wanted.is_empty());
    }

    #[test]
    fn interval_scales_like_memberlist() {
        let base = Duration::from_secs(10);
        assert_eq!(sync_interval(base, 10), base);
        assert_eq!(sync_interval(base, 1000), Duration::from_secs(60));
    }
}

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
//! The functions here are pure over a [`Store`]; the node layer does scheduling and membership.

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;

use crate::core::store::{Applied, Origin, Store, Version};
pub use crate::wire::SyncKind;
use crate::wire::{SyncPush, SyncRequest, SyncResponse};

/// A version lower than any real one: in a pull, "I have nothing for this origin".
pub(crate) const NO_VERSION: Version = Version { stamp: 0, hash: 0 };

/// The responder's side: the records the requester lacks, and what we lack.
pub(crate) fn answer(
    store: &Store,
    request: &SyncRequest,
) -> (Vec<(Origin, Version, Bytes)>, Vec<Origin>) {
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

/// Apply records from a peer; returns the new ones and how many were refused (bad hash).
pub(crate) fn apply_records(
    store: &mut Store,
    now: Instant,
    records: Vec<(Origin, Version, Bytes)>,
) -> (Vec<(Origin, Version, Bytes)>, usize) {
    let mut new = Vec::new();
    let mut bad = 0;
    for (origin, version, payload) in records {
        match store.apply(now, origin.clone(), version, payload.clone()) {
            Applied::New => new.push((origin, version, payload)),
            Applied::Stale => {}
            Applied::BadHash => bad += 1,
        }
    }
    (new, bad)
}

/// The requester's push: the records the responder asked for.
pub(crate) fn push_for(store: &Store, response: &SyncResponse) -> SyncPush {
    let mut records = Vec::new();
    for origin in &response.wanted {
        push_raw(store, origin, &mut records);
    }
    SyncPush { records }
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

fn push_raw(store: &Store, origin: &Origin, out: &mut Vec<(Origin, Version, Bytes)>) {
    if let Some((version, payload)) = store.raw(origin) {
        out.push((origin.clone(), version, payload));
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
            members: Vec::new(),
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
        };
        assert_eq!(response.wanted, vec![Origin::Node("a".into())]);
        let push = push_for(&a, &response);
        apply_records(&mut a, now, response.records);
        apply_records(&mut b, now, push.records);
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

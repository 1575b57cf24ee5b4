//! The replication loop: every node's fragments come back from the replicated store into the
//! [`Origins`], and membership changes reach the VIP side.

use std::collections::BTreeMap;
use std::sync::Arc;

use beacon_catalog::Catalog;
use beacon_gossip::net::Gossip;
use beacon_gossip::{Event, NodeId, Origin, Record, Version};
use tokio::sync::{mpsc, watch};

use super::codec;
use super::lag::Lag;
use crate::publish::{Fragments, Origins};

/// The version of every origin this node serves now; the cluster sink waits on it so that a
/// write is answered by this node once acknowledged.
pub type Applied = BTreeMap<Origin, Version>;

/// Decoded fragments by origin, with the version they were decoded from.
type Decoded = BTreeMap<Origin, (Version, Arc<Catalog>)>;

/// Rebuilds the origins from the store whenever an origin changes or is withdrawn, until the
/// gossip node stops. Fragments are decoded once per version: the master's state runs to
/// megabytes, and a registration elsewhere must not make every node parse it again.
pub async fn run(
    gossip: Gossip,
    mut events: mpsc::Receiver<Event>,
    origins: Arc<Origins>,
    lag: Lag,
    applied: watch::Sender<Applied>,
) {
    let mut decoded = Decoded::new();
    while let Some(event) = events.recv().await {
        match event {
            Event::OriginChanged(_) | Event::OriginWithdrawn(_) => {}
            Event::MemberUp(id) => {
                tracing::info!(member = %id.name(), "member up");
                origins.vips().member_address(id.name(), id.addr().ip());
                reachable(&origins, &id, true).await;
                continue;
            }
            Event::MemberDown(id) => {
                tracing::warn!(member = %id.name(), "member down");
                reachable(&origins, &id, false).await;
                continue;
            }
            Event::MemberLeft(id) => {
                tracing::info!(member = %id.name(), "member left");
                reachable(&origins, &id, false).await;
                continue;
            }
            _ => continue,
        }
        // Collapse a burst of events into one rebuild.
        while events.try_recv().is_ok() {}
        let Ok(records) = gossip.records().await else {
            return;
        };
        let versions = records
            .iter()
            .map(|(o, r)| (o.clone(), r.version))
            .collect();
        decoded = rebuild(&origins, decoded, records, &lag).await;
        applied.send_replace(versions);
    }
}

/// A member went down, left or came back: its VIP backends are withdrawn or restored at once,
/// not after the grace period that applies to its records.
async fn reachable(origins: &Arc<Origins>, id: &NodeId, up: bool) {
    if origins.vips().set_down(id.name(), !up) {
        let origins = origins.clone();
        let _ = tokio::task::spawn_blocking(move || origins.republish()).await;
    }
}

/// Publishes the store's `records` on a blocking thread; returns what is decoded now.
async fn rebuild(
    origins: &Arc<Origins>,
    mut decoded: Decoded,
    records: Vec<(Origin, Record)>,
    lag: &Lag,
) -> Decoded {
    let origins = origins.clone();
    let rebuild = tokio::task::spawn_blocking(move || {
        let (all, changed) = decode(&mut decoded, records);
        (origins.replace_all(all), decoded, changed)
    });
    match rebuild.await {
        Ok((result, kept, changed)) => {
            match result {
                Ok(_) => lag.observe(&changed),
                Err(error) => tracing::warn!(%error, "could not publish the cluster's catalog"),
            }
            kept
        }
        Err(error) => {
            tracing::warn!(%error, "publishing the cluster's catalog panicked");
            Decoded::new()
        }
    }
}

/// The fragments of `records`, decoding only origins whose version changed, and the origins
/// that changed; `decoded` is left holding exactly the visible origins.
fn decode(
    decoded: &mut Decoded,
    records: Vec<(Origin, Record)>,
) -> (Fragments, Vec<(Origin, Version)>) {
    let mut all = BTreeMap::new();
    let mut kept = Decoded::new();
    let mut changed = Vec::new();
    for (origin, record) in records {
        if record.payload.is_empty() {
            continue;
        }
        let fragment = match decoded.remove(&origin) {
            Some((version, fragment)) if version == record.version => fragment,
            _ => match codec::decode(&record.payload) {
                Ok(fragment) => {
                    changed.push((origin.clone(), record.version));
                    Arc::new(fragment)
                }
                Err(error) => {
                    tracing::warn!(?origin, %error, "ignored an undecodable fragment");
                    continue;
                }
            },
        };
        all.insert(codec::from_gossip(&origin), fragment.clone());
        kept.insert(origin, (record.version, fragment));
    }
    *decoded = kept;
    (all, changed)
}

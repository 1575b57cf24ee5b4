//! Recovering this node's registrations from the cluster when its saved file was unreadable:
//! every other node still holds the node's origin as it last published it. Until that copy is
//! back (or it is clear there is none), writes wait and the node publishes nothing of its own,
//! so the copy is not overwritten by an empty one.

use std::sync::Arc;
use std::time::Duration;

use beacon_catalog::Catalog;
use beacon_gossip::Origin;
use beacon_gossip::net::Gossip;
use tokio_util::sync::CancellationToken;

use crate::cluster::codec;
use crate::publish::Registrations;

/// How long to wait for a peer to sync this node's origin back before starting empty.
const WAIT: Duration = Duration::from_secs(30);

/// The recovery task.
pub struct Recovery {
    registrations: Arc<Registrations>,
    gossip: Gossip,
}

impl Recovery {
    /// Recovers `registrations` from what `gossip` holds of this node's origin.
    pub fn new(registrations: Arc<Registrations>, gossip: Gossip) -> Self {
        Self {
            registrations,
            gossip,
        }
    }

    /// Waits for the cluster's copy, then restores from it; ends early on `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let origin = Origin::Node(self.registrations.node().to_string());
        let found = tokio::select! {
            _ = shutdown.cancelled() => return,
            found = tokio::time::timeout(WAIT, self.copy_of(&origin)) => found.ok(),
        };
        let copy = match found {
            Some(catalog) => catalog,
            None => {
                tracing::error!(
                    "no peer holds a copy of this node's registrations: starting with none"
                );
                Catalog::default()
            }
        };
        let registrations = self.registrations.clone();
        match tokio::task::spawn_blocking(move || registrations.recover(&copy)).await {
            Ok(Ok(n)) => tracing::warn!(
                registrations = n,
                "registrations recovered from the cluster's copy"
            ),
            Ok(Err(error)) => tracing::error!(%error, "could not save the recovered registrations"),
            Err(error) => tracing::error!(%error, "recovering registrations panicked"),
        }
    }

    /// This node's origin as the store holds it, once a peer has synced it back.
    async fn copy_of(&self, origin: &Origin) -> Catalog {
        loop {
            let records = self.gossip.records().await.unwrap_or_default();
            let payload = (records.into_iter())
                .find(|(o, r)| o == origin && !r.payload.is_empty())
                .map(|(_, r)| r.payload);
            if let Some(catalog) = payload.and_then(|p| codec::decode(&p).ok()) {
                return catalog;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

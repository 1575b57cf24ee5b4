//! The agent in a cluster: its sources' fragments go out through gossip, and every node's
//! fragments come back from the replicated store into the [`Origins`]. With a cluster, the
//! store is the one path: a source → gossip → origins → records and zone, on every node alike.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use beacon_catalog::Catalog;
use beacon_gossip::net::{Credentials, Gossip, Transport, spawn};
use beacon_gossip::{
    Event, MemberState, Node, NodeConfig, NodeId, Origin, Record, Version, cluster_id,
};
use bytes::Bytes;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::origins::Origins;

/// Where sources put their fragments: straight into the origins, or out through gossip.
#[derive(Clone)]
pub enum Sink {
    /// One node alone.
    Local(Arc<Origins>),
    /// A cluster member.
    Cluster(Gossip, tokio::runtime::Handle),
}

impl Sink {
    /// Publishes `fragment` as `origin`'s. Blocking: call it from a blocking thread.
    pub fn set(&self, origin: &str, fragment: Catalog) -> Result<(), String> {
        match self {
            Self::Local(origins) => origins.set(origin, fragment).map(|_| ()),
            Self::Cluster(gossip, runtime) => {
                let payload = encode(&fragment)?;
                let published = runtime.block_on(gossip.publish(to_gossip(origin), payload));
                published.map(|_| ()).map_err(|e| e.to_string())
            }
        }
    }
}

/// Starts gossip for `config`'s `[cluster]`, or `None` when it is off. The convergence-lag
/// histogram goes into `registry`.
pub async fn start(
    config: &Config,
    origins: Arc<Origins>,
    registry: &prometheus::Registry,
) -> Result<Option<(Gossip, std::net::SocketAddr)>, String> {
    let cluster = &config.cluster;
    let Some(listen) = cluster.listen_addr().map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let name = &config.node.name;
    let creds = credentials(&cluster.tls_dir, name)?;
    let (transport, incoming) = Transport::bind(listen, &creds).map_err(|e| e.to_string())?;
    let addr = transport.local_addr().map_err(|e| e.to_string())?;
    let mut node_config = NodeConfig {
        cluster: cluster_id(&cluster.name),
        ..NodeConfig::default()
    };
    node_config.withdraw_after = std::time::Duration::from_secs(cluster.withdraw_after_secs);
    let id = NodeId::new(name, addr, wall_millis());
    let node = Node::new(node_config, id, rand::random(), Instant::now());
    let (gossip, events) = spawn(node, transport, incoming);
    for (seed_name, seed_addr) in cluster.seed_addrs().map_err(|e| e.to_string())? {
        gossip
            .join(NodeId::new(&seed_name, seed_addr, 0))
            .await
            .map_err(|e| e.to_string())?;
    }
    let lag = Lag::new(registry, name).map_err(|e| e.to_string())?;
    tokio::spawn(replicate(gossip.clone(), events, origins, lag));
    tracing::info!(%addr, node = %name, cluster = %cluster.name, "gossip started");
    Ok(Some((gossip, addr)))
}

/// The members, for `/v1/nodes`.
pub async fn members(gossip: &Gossip) -> Vec<MemberState> {
    gossip.members().await.unwrap_or_default()
}

/// Rebuilds the origins from the store whenever an origin changes or is withdrawn. Fragments
/// are decoded once per version: the master's state runs to megabytes, and a registration
/// elsewhere must not make every node parse it again.
async fn replicate(
    gossip: Gossip,
    mut events: mpsc::Receiver<Event>,
    origins: Arc<Origins>,
    lag: Lag,
) {
    let mut decoded: Decoded = BTreeMap::new();
    while let Some(event) = events.recv().await {
        match &event {
            Event::OriginChanged(_) | Event::OriginWithdrawn(_) => {}
            Event::MemberUp(id) | Event::MemberDown(id) => {
                let down = matches!(event, Event::MemberDown(_));
                match down {
                    true => tracing::warn!(member = %id.name(), "member down"),
                    false => tracing::info!(member = %id.name(), "member up"),
                }
                // Its VIP backends are withdrawn at once, not after the grace period.
                if origins.vips().set_down(id.name(), down) {
                    let origins = origins.clone();
                    let _ = tokio::task::spawn_blocking(move || origins.republish()).await;
                }
                continue;
            }
            _ => continue,
        }
        // Collapse a burst of events into one rebuild.
        while events.try_recv().is_ok() {}
        let Ok(records) = gossip.records().await else {
            return;
        };
        let origins = origins.clone();
        let rebuild = tokio::task::spawn_blocking(move || {
            let (all, changed) = decode(&mut decoded, records);
            (origins.replace_all(all), decoded, changed)
        });
        match rebuild.await {
            Ok((result, kept, changed)) => {
                decoded = kept;
                match result {
                    Ok(_) => lag.observe(&changed),
                    Err(error) => tracing::warn!(%error, "could not publish the cluster's catalog"),
                }
            }
            Err(error) => {
                tracing::warn!(%error, "publishing the cluster's catalog panicked");
                decoded = BTreeMap::new();
            }
        }
    }
}

/// Fragments by origin name, as [`Origins::replace_all`] takes them.
type Fragments = BTreeMap<String, Arc<Catalog>>;

/// Decoded fragments by origin, with the version they were decoded from.
type Decoded = BTreeMap<Origin, (Version, Arc<Catalog>)>;

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
            _ => match decode_payload(&record.payload) {
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
        all.insert(from_gossip(&origin), fragment.clone());
        kept.insert(origin, (record.version, fragment));
    }
    *decoded = kept;
    (all, changed)
}

/// `beacon_gossip_convergence_lag_seconds`: from a change's stamp on its writer's clock to its
/// records being served here. It counts only changes made after this node started (what it
/// finds in the cluster when it joins is old news, not lag) and not this node's own; it is as
/// good as the nodes' clock synchronisation, and a negative difference counts as zero.
struct Lag {
    histogram: prometheus::Histogram,
    own: Origin,
    started: u64,
}

impl Lag {
    fn new(registry: &prometheus::Registry, node: &str) -> prometheus::Result<Self> {
        let histogram = prometheus::Histogram::with_opts(
            prometheus::HistogramOpts::new(
                "beacon_gossip_convergence_lag_seconds",
                "Time from a change on another node (its wall clock) to its records served here",
            )
            .buckets(vec![
                0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0, 60.0,
            ]),
        )?;
        registry.register(Box::new(histogram.clone()))?;
        Ok(Self {
            histogram,
            own: Origin::Node(node.to_string()),
            started: wall_millis(),
        })
    }

    fn observe(&self, changed: &[(Origin, Version)]) {
        let now = wall_millis();
        for (origin, version) in changed {
            if *origin != self.own && version.stamp >= self.started {
                let ms = now.saturating_sub(version.stamp);
                self.histogram.observe(ms as f64 / 1000.0);
            }
        }
    }
}

/// The first byte of a payload: JSON compressed with LZ4 (block format, size prepended).
/// Fragments are JSON because they are read rarely and must stay debuggable; compressed because
/// a node's fragment runs to a megabyte for a few thousand tasks and compresses about tenfold.
const LZ4_JSON: u8 = 1;

/// The largest fragment a payload may expand to (a sync stream carries up to 64 MB).
const MAX_FRAGMENT: usize = 256 << 20;

fn encode(fragment: &Catalog) -> Result<Bytes, String> {
    let json = serde_json::to_vec(fragment).map_err(|e| e.to_string())?;
    let mut payload = vec![LZ4_JSON];
    payload.extend_from_slice(&lz4_flex::compress_prepend_size(&json));
    Ok(Bytes::from(payload))
}

fn decode_payload(payload: &[u8]) -> Result<Catalog, String> {
    let Some((&LZ4_JSON, block)) = payload.split_first() else {
        return Err("unknown payload format".into());
    };
    let size = block.get(..4).map_or(usize::MAX, |s| {
        u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize
    });
    if size > MAX_FRAGMENT {
        return Err(format!("fragment of {size} bytes is over the limit"));
    }
    let json = lz4_flex::decompress_size_prepended(block).map_err(|e| e.to_string())?;
    serde_json::from_slice(&json).map_err(|e| e.to_string())
}

fn to_gossip(origin: &str) -> Origin {
    match origin.strip_prefix("node/") {
        Some(node) => Origin::Node(node.to_string()),
        None => Origin::Shared(origin.to_string()),
    }
}

fn from_gossip(origin: &Origin) -> String {
    match origin {
        Origin::Node(node) => crate::origins::node_origin(node),
        Origin::Shared(name) => name.clone(),
    }
}

fn credentials(dir: &std::path::Path, name: &str) -> Result<Credentials, String> {
    let read_certs = |file: &str| -> Result<Vec<CertificateDer<'static>>, String> {
        let path = dir.join(file);
        CertificateDer::pem_file_iter(&path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("{}: {e}", path.display()))
    };
    let key_path = dir.join(format!("{name}-key.pem"));
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| format!("{}: {e}", key_path.display()))?;
    Ok(Credentials {
        chain: read_certs(&format!("{name}.pem"))?,
        key,
        roots: read_certs("ca.pem")?,
    })
}

fn wall_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_garbage_is_an_error() {
        let fragment = Catalog {
            leader_raw: "master@10.0.0.1:5050".into(),
            ..Default::default()
        };
        let payload = encode(&fragment).unwrap();
        assert_eq!(decode_payload(&payload).unwrap(), fragment);
        for bad in [
            &b""[..],
            b"{}",
            b"\x01",
            b"\x01\xff\xff\xff\xff",
            &payload[..payload.len() - 1],
        ] {
            assert!(decode_payload(bad).is_err(), "{bad:?}");
        }
    }
}

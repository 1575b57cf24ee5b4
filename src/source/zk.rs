//! ZooKeeper master detection, as Mesos-DNS does it (`research/mesos-live.md` §1): every Mesos
//! master that contends for leadership holds a sequential znode `<path>/json.info_<seq>` whose
//! data is its MasterInfo as JSON; the lowest sequence leads.
//!
//! The detector watches those children and sends the masters (leader first, as `host:port`) on a
//! `watch` channel that the master poller reads: it polls the leader first, and the masters make
//! `master.mesos` and `masterN`. Where Mesos-DNS exits after `ZkDetectionTimeout` without a
//! leader, Beacon keeps serving its last state, says so in one line, counts it in
//! `beacon_zk_detection_timeouts_total` and keeps trying: a DNS server that exits takes every
//! name down with it, while the masters it last knew are often still up.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use prometheus::{IntCounter, IntGauge, Registry};
use serde::Deserialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use zookeeper_client::{Client, Error as ZkError, SessionState};

use crate::config::zk::ZkUrl;

/// The masters ZooKeeper names, `host:port`, leader first; empty when it names none.
pub type MastersRx = watch::Receiver<Vec<String>>;

/// The children's name prefix: Mesos's `"json.info"` label and the sequence separator.
const LABEL: &str = "json.info_";
/// Mesos-DNS's session timeout.
const SESSION_TIMEOUT: Duration = Duration::from_secs(60);
/// Mesos-DNS detects at most once a second: a flapping master should not make Beacon flap.
const DETECT_PAUSE: Duration = Duration::from_millis(500);
/// Reconnection backoff after a failed or expired session.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(10);

/// Watches the masters' znodes; run it with [`ZkDetector::run`].
pub struct ZkDetector {
    url: ZkUrl,
    /// `ZkDetectionTimeout`; `None` for 0 (wait forever, as Mesos-DNS).
    timeout: Option<Duration>,
    masters: watch::Sender<Vec<String>>,
    /// Whether ZooKeeper currently names a leader (for the detection timeout).
    leader_known: watch::Sender<bool>,
    metrics: ZkMetrics,
}

#[derive(Clone)]
struct ZkMetrics {
    timeouts: IntCounter,
    masters: IntGauge,
}

impl ZkDetector {
    /// A detector for `url` and its receiver of masters; registers its metrics in `registry`.
    pub fn new(
        url: ZkUrl,
        detection_timeout_secs: u64,
        registry: &Registry,
    ) -> prometheus::Result<(Self, MastersRx)> {
        let timeouts = IntCounter::new(
            "beacon_zk_detection_timeouts_total",
            "Times ZooKeeper named no Mesos leader within ZkDetectionTimeout (the last state stayed in service)",
        )?;
        let masters = IntGauge::new("beacon_zk_masters", "Mesos masters ZooKeeper names now")?;
        registry.register(Box::new(timeouts.clone()))?;
        registry.register(Box::new(masters.clone()))?;
        let (tx, rx) = watch::channel(Vec::new());
        let detector = Self {
            url,
            timeout: (detection_timeout_secs > 0)
                .then(|| Duration::from_secs(detection_timeout_secs)),
            masters: tx,
            leader_known: watch::channel(false).0,
            metrics: ZkMetrics { timeouts, masters },
        };
        Ok((detector, rx))
    }

    /// Detects until `shutdown`, reconnecting whenever the session ends.
    pub async fn run(self, shutdown: CancellationToken) {
        let watchdog = watchdog(
            self.leader_known.subscribe(),
            self.timeout,
            self.metrics.timeouts.clone(),
        );
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => {}
            _ = self.detect() => {}
            _ = watchdog => {}
        }
    }

    async fn detect(&self) {
        let mut retry = RETRY_FIRST;
        let zk = self.url.connect_string();
        loop {
            let error = self.session(&mut retry).await;
            self.leader_known.send_replace(false);
            tracing::warn!(
                %zk, %error, retry_in = ?retry,
                "zookeeper session ended; polling the masters it last named meanwhile"
            );
            tokio::time::sleep(retry).await;
            retry = retry.saturating_mul(2).min(RETRY_MAX);
        }
    }

    async fn connect(&self) -> Result<Client, ZkError> {
        let mut connector = Client::connector()
            .with_session_timeout(SESSION_TIMEOUT)
            .with_fail_eagerly();
        if let Some(digest) = &self.url.digest {
            connector = connector.with_auth("digest", digest.as_bytes());
        }
        connector.connect(&self.url.connect_string()).await
    }

    /// One session: lists the masters, then again on every change, until the session ends;
    /// returns why it ended.
    async fn session(&self, retry: &mut Duration) -> ZkError {
        let client = match self.connect().await {
            Ok(client) => client,
            Err(e) => return e,
        };
        *retry = RETRY_FIRST;
        tracing::info!(zk = %self.url.connect_string(), path = %self.url.path, "zookeeper connected; watching the mesos masters");
        let mut state = client.state_watcher();
        loop {
            let watcher = match self.list(&client).await {
                Ok(watcher) => watcher,
                Err(e) => return e,
            };
            let changed = watcher.changed();
            tokio::pin!(changed);
            loop {
                tokio::select! {
                    _ = &mut changed => break,
                    s = state.changed() => match s {
                        SessionState::Disconnected => {
                            self.leader_known.send_replace(false);
                            tracing::warn!("zookeeper disconnected; polling the masters it last named meanwhile");
                        }
                        s if s.is_terminated() => return session_end(s),
                        _ => break,
                    },
                }
            }
            tokio::time::sleep(DETECT_PAUSE).await;
        }
    }

    /// Reads the masters and sets a watch on the children (or, while the path does not exist
    /// yet, on its creation).
    async fn list(&self, client: &Client) -> Result<zookeeper_client::OneshotWatcher, ZkError> {
        let path = &self.url.path;
        let (children, watcher) = match client.get_and_watch_children(path).await {
            Ok((children, _, watcher)) => (children, watcher),
            Err(ZkError::NoNode) => {
                let (_, watcher) = client.check_and_watch_stat(path).await?;
                (Vec::new(), watcher)
            }
            Err(e) => return Err(e),
        };
        let mut masters = Vec::new();
        for child in leader_first(children) {
            let znode = format!("{path}/{child}");
            match client.get_data(&znode).await {
                Ok((data, _)) => match master_address(&data) {
                    Some(addr) => masters.push(addr),
                    None => {
                        tracing::warn!(%znode, "zookeeper: MasterInfo without an address; skipped")
                    }
                },
                Err(ZkError::NoNode) => {} // gone since the listing; the watch fires again
                Err(e) => return Err(e),
            }
        }
        self.found(masters);
        Ok(watcher)
    }

    fn found(&self, masters: Vec<String>) {
        self.metrics.masters.set(masters.len() as i64);
        self.leader_known.send_replace(!masters.is_empty());
        let leader = masters.first().cloned().unwrap_or_default();
        let changed = self.masters.send_if_modified(|current| {
            let changed = *current != masters;
            *current = masters;
            changed
        });
        if changed {
            match leader.is_empty() {
                true => tracing::warn!(path = %self.url.path, "zookeeper names no mesos master"),
                false => {
                    tracing::info!(%leader, masters = ?*self.masters.borrow(), "mesos masters from zookeeper")
                }
            }
        }
    }
}

fn session_end(state: SessionState) -> ZkError {
    match state {
        SessionState::AuthFailed => ZkError::AuthFailed,
        SessionState::Expired => ZkError::SessionExpired,
        _ => ZkError::ConnectionLoss,
    }
}

/// Says once per leaderless spell that lasts longer than `timeout`, and counts it.
async fn watchdog(
    mut known: watch::Receiver<bool>,
    timeout: Option<Duration>,
    counter: IntCounter,
) {
    let Some(timeout) = timeout else {
        return std::future::pending().await;
    };
    loop {
        if known.wait_for(|k| !*k).await.is_err() {
            return std::future::pending().await;
        }
        if tokio::time::timeout(timeout, known.wait_for(|k| *k))
            .await
            .is_err()
        {
            counter.inc();
            tracing::warn!(
                secs = timeout.as_secs(),
                "no mesos leader from zookeeper within ZkDetectionTimeout; still serving the last \
                 state and retrying (check that the masters run and register under the zk path)"
            );
        }
        if known.wait_for(|k| *k).await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// The `json.info_` children, lowest sequence (the leader) first.
fn leader_first(children: Vec<String>) -> Vec<String> {
    let mut seq: Vec<(u64, String)> = children
        .into_iter()
        .filter_map(|c| Some((c.strip_prefix(LABEL)?.parse().ok()?, c)))
        .collect();
    seq.sort();
    seq.into_iter().map(|(_, c)| c).collect()
}

#[derive(Deserialize)]
struct MasterInfo {
    #[serde(default)]
    address: Option<Address>,
    #[serde(default)]
    ip: Option<u32>,
    #[serde(default)]
    port: Option<u32>,
}

#[derive(Deserialize)]
struct Address {
    #[serde(default)]
    ip: Option<String>,
    #[serde(default)]
    port: Option<u32>,
}

/// A master's `host:port` from its MasterInfo JSON: `address.ip`/`address.port` when present,
/// else the packed `ip` (IPv4 in host byte order, as Mesos writes it) and `port`.
fn master_address(data: &[u8]) -> Option<String> {
    let info: MasterInfo = serde_json::from_slice(data).ok()?;
    if let Some(Address {
        ip: Some(ip),
        port: Some(port),
    }) = info.address
        && let Ok(ip) = ip.parse::<IpAddr>()
    {
        return Some(join(ip, port));
    }
    let ip = Ipv4Addr::from(info.ip?.to_le_bytes());
    Some(join(IpAddr::V4(ip), info.port.unwrap_or(5050)))
}

fn join(ip: IpAddr, port: u32) -> String {
    match ip {
        IpAddr::V4(ip) => format!("{ip}:{port}"),
        IpAddr::V6(ip) => format!("[{ip}]:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lowest_sequence_leads_and_other_children_are_ignored() {
        let children = [
            "json.info_0000000012",
            "info_0000000001",
            "json.info_0000000009",
            "x",
        ];
        let sorted = leader_first(children.iter().map(|c| c.to_string()).collect());
        assert_eq!(sorted, ["json.info_0000000009", "json.info_0000000012"]);
    }

    #[test]
    fn master_info_address_or_packed_ip() {
        let full = br#"{"address":{"hostname":"h","ip":"10.0.0.7","port":5051},"ip":1,"port":1}"#;
        assert_eq!(master_address(full).as_deref(), Some("10.0.0.7:5051"));
        // 127.0.0.1 as Mesos packs it on a little-endian host.
        let packed = br#"{"ip":16777343,"port":5050,"pid":"master@127.0.0.1:5050"}"#;
        assert_eq!(master_address(packed).as_deref(), Some("127.0.0.1:5050"));
        let v6 = br#"{"address":{"ip":"::1","port":5050}}"#;
        assert_eq!(master_address(v6).as_deref(), Some("[::1]:5050"));
        assert_eq!(master_address(b"{oops"), None);
        assert_eq!(master_address(br#"{"hostname":"h"}"#), None);
    }
}

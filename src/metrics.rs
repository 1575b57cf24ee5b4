//! The agent's Prometheus registry and the catalog-source metrics.

use std::sync::Mutex;
use std::sync::atomic::Ordering;

use beacon_gossip::Liveness;
use beacon_gossip::net::Gossip;
use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// Metrics of a poll loop (the master's, the local agent's).
#[derive(Clone, Debug)]
pub struct SourceMetrics {
    /// Successful refreshes.
    pub refreshes: IntCounter,
    /// Failed refreshes (the last good catalog was kept).
    pub failures: IntCounter,
    /// Time to fetch, parse and publish a catalog.
    pub refresh_seconds: Histogram,
    /// Tasks in the current catalog.
    pub tasks: IntGauge,
    /// Unix time of the last successful refresh.
    pub last_success: IntGauge,
    /// Body bytes read from the source.
    pub bytes: IntCounter,
}

impl SourceMetrics {
    /// Creates the metrics, named `{prefix}_refreshes_total` and so on, and registers them in
    /// `registry`: `beacon_catalog` for the master poller, `beacon_mesos_agent` for the agent's.
    pub fn new(registry: &Registry, prefix: &str, what: &str) -> prometheus::Result<Self> {
        let m = Self {
            refreshes: IntCounter::new(
                format!("{prefix}_refreshes_total"),
                format!("{what} polls that succeeded"),
            )?,
            failures: IntCounter::new(
                format!("{prefix}_refresh_failures_total"),
                format!("{what} polls that failed; the last good state stays in service"),
            )?,
            refresh_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    format!("{prefix}_refresh_seconds"),
                    format!("Time to fetch, parse and publish the {what} state"),
                )
                .buckets(vec![
                    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ]),
            )?,
            tasks: IntGauge::new(
                format!("{prefix}_tasks"),
                format!("Tasks in the {what} state"),
            )?,
            last_success: IntGauge::new(
                format!("{prefix}_last_success_timestamp_seconds"),
                format!("Unix time of the last successful {what} poll"),
            )?,
            bytes: IntCounter::new(
                format!("{prefix}_bytes_total"),
                format!("Body bytes read from the {what} (states, events)"),
            )?,
        };
        registry.register(Box::new(m.refreshes.clone()))?;
        registry.register(Box::new(m.failures.clone()))?;
        registry.register(Box::new(m.refresh_seconds.clone()))?;
        registry.register(Box::new(m.tasks.clone()))?;
        registry.register(Box::new(m.last_success.clone()))?;
        registry.register(Box::new(m.bytes.clone()))?;
        Ok(m)
    }
}

/// Gossip metrics, read from the node when `/metrics` is scraped.
#[derive(Debug)]
pub struct ClusterMetrics {
    members: IntGaugeVec,
    datagrams: IntCounterVec,
    bytes: IntCounterVec,
    syncs: IntCounterVec,
    /// Counter values at the last scrape: Prometheus counters only go up by increments.
    last: Mutex<[u64; 6]>,
    /// Versions peers sent that were refused, by reason (unsigned, foreign, future_stamp, …).
    rejected: IntCounterVec,
    last_rejected: Mutex<beacon_gossip::Rejections>,
}

impl ClusterMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let m = Self {
            members: IntGaugeVec::new(
                Opts::new(
                    "beacon_gossip_members",
                    "Cluster members by state, this node included",
                ),
                &["state"],
            )?,
            datagrams: IntCounterVec::new(
                Opts::new("beacon_gossip_datagrams_total", "SWIM datagrams"),
                &["direction"],
            )?,
            bytes: IntCounterVec::new(
                Opts::new(
                    "beacon_gossip_bytes_total",
                    "Gossip bytes, datagrams and sync streams",
                ),
                &["direction"],
            )?,
            syncs: IntCounterVec::new(
                Opts::new(
                    "beacon_gossip_syncs_total",
                    "Sync exchanges this node started",
                ),
                &["result"],
            )?,
            last: Mutex::new([0; 6]),
            rejected: IntCounterVec::new(
                Opts::new(
                    "beacon_gossip_rejected_total",
                    "Origin versions refused: unsigned, mis-signed, foreign or stamped too far ahead",
                ),
                &["reason"],
            )?,
            last_rejected: Mutex::new(beacon_gossip::Rejections::default()),
        };
        registry.register(Box::new(m.members.clone()))?;
        registry.register(Box::new(m.datagrams.clone()))?;
        registry.register(Box::new(m.bytes.clone()))?;
        registry.register(Box::new(m.syncs.clone()))?;
        registry.register(Box::new(m.rejected.clone()))?;
        Ok(m)
    }

    /// Reads the node's members and counters into the metrics.
    pub async fn update(&self, gossip: &Gossip) {
        let members = gossip.members().await.unwrap_or_default();
        let rejected = gossip.rejections().await;
        let by = |l: Liveness| members.iter().filter(|m| m.state == l).count() as i64;
        self.members
            .with_label_values(&["up"])
            .set(by(Liveness::Up) + 1);
        self.members
            .with_label_values(&["suspect"])
            .set(by(Liveness::Suspect));
        self.members
            .with_label_values(&["down"])
            .set(by(Liveness::Down));
        self.members
            .with_label_values(&["left"])
            .set(by(Liveness::Left));
        let t = gossip.traffic();
        let now = [
            &t.datagrams_in,
            &t.datagrams_out,
            &t.bytes_in,
            &t.bytes_out,
            &t.syncs,
            &t.sync_failures,
        ]
        .map(|c| c.load(Ordering::Relaxed));
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let delta = |i: usize| now[i].saturating_sub(last[i]);
        self.datagrams.with_label_values(&["in"]).inc_by(delta(0));
        self.datagrams.with_label_values(&["out"]).inc_by(delta(1));
        self.bytes.with_label_values(&["in"]).inc_by(delta(2));
        self.bytes.with_label_values(&["out"]).inc_by(delta(3));
        self.syncs.with_label_values(&["started"]).inc_by(delta(4));
        self.syncs.with_label_values(&["failed"]).inc_by(delta(5));
        *last = now;
        drop(last);
        if let Ok(rejected) = rejected {
            let mut last = self.last_rejected.lock().unwrap_or_else(|e| e.into_inner());
            for reason in beacon_gossip::Reason::ALL {
                let delta = rejected.get(reason).saturating_sub(last.get(reason));
                self.rejected
                    .with_label_values(&[reason.as_str()])
                    .inc_by(delta);
            }
            *last = rejected;
        }
    }
}

/// VIP metrics, read from the data plane's per-CPU maps at each scrape: per-VIP and per-backend
/// counters, VIPs by state, backends by reachability.
pub struct VipCollector {
    vips: std::sync::Arc<crate::publish::vips::Vips>,
    descs: Vec<prometheus::core::Desc>,
}

impl VipCollector {
    /// A collector over `vips`.
    pub fn new(vips: std::sync::Arc<crate::publish::vips::Vips>) -> prometheus::Result<Self> {
        let (families, gauges) = vip_vecs()?;
        let descs = families
            .iter()
            .flat_map(|f| prometheus::core::Collector::desc(f).into_iter().cloned())
            .chain(
                gauges
                    .iter()
                    .flat_map(|g| prometheus::core::Collector::desc(g).into_iter().cloned()),
            )
            .collect();
        Ok(Self { vips, descs })
    }
}

/// The counter vectors (VIP packets, bytes, new flows, misses; backend packets, bytes, new
/// flows) and gauges (VIPs by state, backends by state, data plane on).
fn vip_vecs() -> prometheus::Result<(Vec<IntCounterVec>, Vec<IntGaugeVec>)> {
    let vip = ["vip", "protocol"];
    let backend = ["vip", "protocol", "backend"];
    let counter =
        |name: &str, help: &str, labels: &[&str]| IntCounterVec::new(Opts::new(name, help), labels);
    let counters = vec![
        counter(
            "beacon_vip_packets_total",
            "Packets and socket operations balanced",
            &vip,
        )?,
        counter(
            "beacon_vip_bytes_total",
            "Bytes of the packets balanced",
            &vip,
        )?,
        counter(
            "beacon_vip_new_flows_total",
            "Flows and sockets given a backend",
            &vip,
        )?,
        counter(
            "beacon_vip_misses_total",
            "Packets and connects that found no usable backend",
            &vip,
        )?,
        counter(
            "beacon_vip_backend_packets_total",
            "Packets and socket operations sent to a backend",
            &backend,
        )?,
        counter(
            "beacon_vip_backend_bytes_total",
            "Bytes sent to a backend",
            &backend,
        )?,
        counter(
            "beacon_vip_backend_new_flows_total",
            "Flows and sockets given to a backend",
            &backend,
        )?,
        counter(
            "beacon_vip_data_plane_events_total",
            "Data plane events by kind: XDP verdicts and flows (xdp_flow_unsaved: new flows balanced but not saved by the flood guard), tc and socket translations, connects refused in the VIP ranges (sock_range_refused)",
            &["event"],
        )?,
    ];
    let gauges = vec![
        IntGaugeVec::new(
            Opts::new("beacon_vips", "VIPs the catalog declares, by state"),
            &["state"],
        )?,
        IntGaugeVec::new(
            Opts::new("beacon_vip_backends", "VIP backends, by reachability"),
            &["state"],
        )?,
        IntGaugeVec::new(
            Opts::new("beacon_vip_data_plane", "1 when the eBPF data plane runs"),
            &[],
        )?,
    ];
    Ok((counters, gauges))
}

impl prometheus::core::Collector for VipCollector {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let Ok((counters, gauges)) = vip_vecs() else {
            return Vec::new();
        };
        let state = self.vips.state();
        let stats = self.vips.stats();
        for (key, (vip, backends)) in &stats {
            let name = key.display_name();
            let labels = [name.as_str(), key.protocol.as_str()];
            let values = [vip.packets, vip.bytes, vip.new_flows, vip.misses];
            for (c, v) in counters.iter().zip(values) {
                c.with_label_values(&labels).inc_by(v);
            }
            for (addr, b) in backends {
                let addr = addr.to_string();
                let labels = [name.as_str(), key.protocol.as_str(), addr.as_str()];
                for (c, v) in counters[4..].iter().zip([b.packets, b.bytes, b.new_flows]) {
                    c.with_label_values(&labels).inc_by(v);
                }
            }
        }
        for (event, value) in self.vips.global_counters() {
            counters[7].with_label_values(&[event]).inc_by(value);
        }
        let declared = state.table.vips.len() as i64;
        let programmed = state.programmed.len() as i64;
        gauges[0].with_label_values(&["programmed"]).set(programmed);
        gauges[0]
            .with_label_values(&["not_programmed"])
            .set(declared - programmed);
        let backends = state.table.vips.values().flatten();
        let withdrawn = backends
            .clone()
            .filter(|b| state.unreachable.contains(&b.node))
            .count() as i64;
        gauges[1]
            .with_label_values(&["reachable"])
            .set(backends.count() as i64 - withdrawn);
        gauges[1].with_label_values(&["withdrawn"]).set(withdrawn);
        gauges[2]
            .with_label_values::<&str>(&[])
            .set(i64::from(self.vips.is_on()));
        let families = counters
            .iter()
            .flat_map(prometheus::core::Collector::collect);
        families
            .chain(gauges.iter().flat_map(prometheus::core::Collector::collect))
            .collect()
    }
}

/// The Mesos master's event stream (`[mesos_master] events`).
#[derive(Clone)]
pub struct StreamMetrics {
    /// Events applied (heartbeats included).
    pub events: IntCounter,
    /// Malformed events, skipped.
    pub skipped: IntCounter,
    /// Subscriptions that ended (dropped, silent, or an event that did not fit), each followed
    /// by a full re-sync.
    pub ended: IntCounter,
    /// 1 while a stream is open.
    pub connected: IntGauge,
}

impl StreamMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let m = Self {
            events: IntCounter::new(
                "beacon_catalog_events_total",
                "Mesos master events read from the stream",
            )?,
            skipped: IntCounter::new(
                "beacon_catalog_events_skipped_total",
                "Malformed Mesos master events, logged and skipped",
            )?,
            ended: IntCounter::new(
                "beacon_catalog_stream_ended_total",
                "Mesos master event streams that ended (dropped, silent, or out of step), each followed by a full re-sync",
            )?,
            connected: IntGauge::new(
                "beacon_catalog_stream_connected",
                "1 while the Mesos master's event stream is open",
            )?,
        };
        registry.register(Box::new(m.events.clone()))?;
        registry.register(Box::new(m.skipped.clone()))?;
        registry.register(Box::new(m.ended.clone()))?;
        registry.register(Box::new(m.connected.clone()))?;
        Ok(m)
    }
}

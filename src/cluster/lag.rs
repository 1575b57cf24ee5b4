//! `beacon_gossip_convergence_lag_seconds`: from a change's stamp on its writer's clock to its
//! records being served here.

use beacon_gossip::{Origin, Version};

use crate::common::wall_millis;

/// The histogram, and what it leaves out: changes made before this node started (what it finds
/// in the cluster when it joins is old news, not lag) and this node's own. It is as good as the
/// nodes' clock synchronisation; a negative difference counts as zero.
pub struct Lag {
    histogram: prometheus::Histogram,
    own: Origin,
    started: u64,
}

impl Lag {
    /// The histogram for node `node`, registered in `registry`.
    pub fn new(registry: &prometheus::Registry, node: &str) -> prometheus::Result<Self> {
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

    /// Counts the origins that `changed` and are now served.
    pub fn observe(&self, changed: &[(Origin, Version)]) {
        let now = wall_millis();
        for (origin, version) in changed {
            if *origin != self.own && version.stamp >= self.started {
                let ms = now.saturating_sub(version.stamp);
                self.histogram.observe(ms as f64 / 1000.0);
            }
        }
    }
}

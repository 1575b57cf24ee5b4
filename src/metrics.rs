//! The agent's Prometheus registry and the catalog-source metrics.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntGauge, Registry};

/// Metrics of the catalog refresh loop.
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
}

impl SourceMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let m = Self {
            refreshes: IntCounter::new(
                "beacon_catalog_refreshes_total",
                "Catalog refreshes that succeeded",
            )?,
            failures: IntCounter::new(
                "beacon_catalog_refresh_failures_total",
                "Catalog refreshes that failed; the last good catalog stays in service",
            )?,
            refresh_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "beacon_catalog_refresh_seconds",
                    "Time to fetch, parse and publish the catalog",
                )
                .buckets(vec![
                    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ]),
            )?,
            tasks: IntGauge::new("beacon_catalog_tasks", "Tasks in the current catalog")?,
            last_success: IntGauge::new(
                "beacon_catalog_last_success_timestamp_seconds",
                "Unix time of the last successful refresh",
            )?,
        };
        registry.register(Box::new(m.refreshes.clone()))?;
        registry.register(Box::new(m.failures.clone()))?;
        registry.register(Box::new(m.refresh_seconds.clone()))?;
        registry.register(Box::new(m.tasks.clone()))?;
        registry.register(Box::new(m.last_success.clone()))?;
        Ok(m)
    }
}

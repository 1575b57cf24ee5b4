//! Beacon's VIP load balancer, userspace side: what the BPF data plane should hold, and keeping
//! it there.
//!
//! - [`desired`](mod@desired) (pure) turns the catalog's VIP table into kernel VIPs: named VIPs
//!   at their 11.0.0.0/8 and fd01:c::/64 addresses, backends on unreachable nodes withdrawn (fail
//!   open), weights, and a [`maglev`] ring per VIP.
//! - [`plan`] (pure) diffs that against what is programmed and lists the map writes, keeping
//!   VIP rows and backend ids stable, marking removed backends before freeing them, and writing
//!   in an order where nothing half-built is visible.
//! - [`DataPlane`] loads and attaches the programs of `beacon-ebpf` (socket LB on a cgroup, XDP
//!   and tc on chosen interfaces), runs plans against the maps, reads them back to repair drift,
//!   and reports counters. With a pin directory its maps and links live in bpffs and outlive the
//!   process: a restarted agent adopts them, and [`remove_pinned`] removes them.
//!
//! It does **not** decide which backends a VIP has (`beacon_catalog::vip` does), publish DNS
//! (the agent publishes [`DataPlane::programmed`] only), or run on its own timer: the agent calls
//! [`DataPlane::apply`] on catalog changes and [`DataPlane::reconcile`] every
//! [`DataPlaneConfig::reconcile_interval`].

#![warn(missing_docs)]

mod config;
mod dataplane;
pub mod desired;
mod error;
mod loader;
pub mod maglev;
mod maps;
mod pins;
pub mod plan;
mod report;
mod stats;
mod syscall;
mod udp_destroy;

pub use config::{DataPlaneConfig, XdpModeSetting, detect_cgroup2};
pub use dataplane::DataPlane;
pub use desired::{
    Desired, DesiredBackend, DesiredVip, Limits, SkipReason, Skipped, VipId, desired,
    desired_in_order,
};
pub use error::DataPlaneError;
pub use pins::{Removed, remove as remove_pinned};
pub use report::ApplyReport;
pub use stats::{BackendStats, Counters, VipStats};

//! What one pass over the maps did, for the agent's logs and metrics.

use std::time::Duration;

use beacon_catalog::vip::VipKey;

use crate::desired::Skipped;
use crate::plan::{Changes, Plan};

/// What one [`DataPlane::apply`](crate::DataPlane::apply) or
/// [`DataPlane::reconcile`](crate::DataPlane::reconcile) did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// What the plans run changed.
    pub changes: Changes,
    /// Connected UDP sockets destroyed because their backend was removed.
    pub udp_sockets_destroyed: u64,
    /// Catalog VIPs left out (map limits, missing addresses), from the desired state.
    pub skipped: Vec<Skipped>,
    /// Catalog VIPs that found no free row or ids this time; retried by the next call.
    pub deferred: Vec<VipKey>,
    /// Map writes made.
    pub writes: u32,
    /// Wall time taken.
    pub elapsed: Duration,
}

impl ApplyReport {
    /// Whether anything was written.
    pub fn changed(&self) -> bool {
        self.writes > 0
    }

    /// Counts what `plan` changes; a pass may run several plans.
    pub(crate) fn add(&mut self, plan: &Plan) {
        self.changes.add(&plan.changes);
    }
}

//! Withdrawing backends on unreachable nodes, with dcos-net's fail-open rule
//! (`research/dcos-net.md` §2.3): a node that gossip reports unreachable keeps no backend in the
//! data path, unless every backend of the VIP is on such a node. Then all are kept: a partition
//! seen from this node says little about the backends, and refusing every connection is worse
//! than trying one that may be gone.

use std::collections::BTreeSet;

use crate::vip::Backend;

/// The backends to program: those `unreachable` does not reject, or all of them when it rejects
/// every one (fail open). Order is kept.
pub fn withdraw_unreachable(
    backends: &[Backend],
    unreachable: impl Fn(&Backend) -> bool,
) -> Vec<Backend> {
    let kept: Vec<Backend> = backends
        .iter()
        .filter(|b| !unreachable(b))
        .cloned()
        .collect();
    if kept.is_empty() {
        backends.to_vec()
    } else {
        kept
    }
}

/// [`withdraw_unreachable`] for a set of unreachable node ids, matched on [`Backend::node`].
pub fn withdraw_on_nodes(backends: &[Backend], unreachable: &BTreeSet<String>) -> Vec<Backend> {
    withdraw_unreachable(backends, |b| unreachable.contains(&b.node))
}

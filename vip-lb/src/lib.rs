//! Beacon's VIP load balancer, userspace side.
//!
//! Today it holds the pure part: [`maglev`] builds the consistent-hashing table a VIP's packets
//! are spread with, identically on every node given the same backends. It does not load BPF
//! programs or touch maps yet (that comes with aya, issue 4's data-plane half), and it does not
//! decide which backends a VIP has: `beacon_catalog::vip` does.

#![warn(missing_docs)]

pub mod maglev;

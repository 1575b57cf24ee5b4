//! What Beacon's tests share across crates: the gate of root-only tests ([`privileged`]),
//! throw-away network namespaces and veth pairs ([`netns`]), cgroups and a test's client process
//! re-run inside one ([`cgroup`], [`client`]), and a small DNS client ([`dns`]) and response
//! capture ([`capture`]).
//!
//! A dev-dependency only: production code never links it (build scripts use [`privileged`],
//! which needs nothing but std, with `default-features = false`). It does not start Beacon,
//! load BPF objects or build packets: those stay with the crate that tests them.

#![warn(missing_docs)]

#[cfg(feature = "capture")]
pub mod capture;
#[cfg(feature = "net")]
pub mod cgroup;
#[cfg(feature = "net")]
pub mod client;
#[cfg(feature = "dns")]
pub mod dns;
#[cfg(feature = "net")]
pub mod netns;
pub mod privileged;

//! Beacon's catalog: what the cluster runs, as one immutable snapshot.
//!
//! A [`Catalog`] holds the frameworks, tasks, agents and leader that a Mesos master reports, in a
//! typed form: pids are parsed, port ranges expanded, hostnames resolved. It is built whole by a
//! source (see [`mesos`] for polled state, [`mesos_v1`] for the event stream) and handed to
//! consumers (the DNS record generator, the HTTP API) behind an `Arc`, so a query never waits for
//! an update.
//!
//! [`vip`] reads the VIPs that tasks declare (DC/OS Minuteman labels) into a sorted table and
//! gives named VIPs their addresses.
//!
//! This crate does no I/O and has no async code: parsing is pure, and hostname resolution is done
//! by the caller, which fills [`Catalog::host_ips`].

#![warn(missing_docs)]

pub mod mesos;
pub mod mesos_v1;
mod model;
pub mod registration;
mod shapes;
pub mod vip;

pub use model::{
    Agent, Catalog, Discovery, DiscoveryPort, Framework, Label, NetworkInfo, Pid, PortRange,
    Status, Task,
};

//! Beacon's gossip layer, sans-IO: cluster membership and the replicated catalog store.
//!
//! Every Beacon agent runs one [`Node`]. Together the nodes
//!
//! * keep a SWIM membership list ([foca] 2.0), with a local-health multiplier in the spirit of
//!   Lifeguard to keep false "down" verdicts rare ([`core::health`]);
//! * replicate a per-origin store: each origin (a node, or a shared source such as the Mesos
//!   master) owns one opaque payload with a totally ordered version, and the highest version
//!   wins ([`core::store`]);
//! * spread changes as foca custom broadcasts, small payloads whole and large ones as version
//!   notices that peers pull ([`core::broadcast`]);
//! * repair whatever broadcasts missed with push-pull sync over a reliable stream, which also
//!   exchanges membership so a partitioned node re-learns the cluster ([`core::sync`]);
//! * withdraw the records of a node that has been down for a grace period, and bring them back
//!   when it returns;
//! * accept an origin's version only with its writer's signature, from a certificate that owns
//!   that origin, stamped no further ahead than the allowed clock skew ([`core::trust`]);
//! * drop revoked nodes: down, withdrawn and refused whatever their certificate
//!   ([`Node::set_revoked`]), and sign with a rotated key ([`Node::set_keys`]).
//!
//! What it does **not** do: no I/O of any kind (no sockets, no tokio, no threads, no clock: time
//! comes in as an [`std::time::Instant`] and randomness from a caller-provided seed), and no
//! X.509: the core verifies ECDSA signatures (ring) while certificates are checked by a
//! [`Keys`] the caller gives it (`net::X509Keys` in the agent, fakes with real signatures in the
//! simulator). The QUIC transport that drives a [`Node`] carries SWIM packets in datagrams and
//! syncs on bi-directional streams, and authenticates peers with mutual TLS; the cluster id in
//! every message only keeps two correctly authenticated clusters from merging by mistake. Payloads
//! are opaque: the agent decides what a node's records are and how they are encoded.
//!
//! With the `sim` feature, the `sim` module provides a deterministic discrete-event simulator of
//! a whole cluster (virtual clock, latency, loss, partitions, kill and restart) for tests and
//! benchmarks: `cargo run --release -p beacon-gossip --example sim_bench --features sim`.
//!
//! [foca]: https://docs.rs/foca

#![warn(missing_docs)]

pub mod core;
pub mod error;
pub mod net;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
mod wire;

pub use crate::core::identity::NodeId;
pub use crate::core::membership::{
    Event, Liveness, MemberState, Membership, MembershipConfig, Transmit,
};
pub use crate::core::node::{Node, NodeConfig, NodeStats, SyncOpen, cluster_id};
pub use crate::core::saved::{Restored, Snapshot};
pub use crate::core::store::{Origin, Record, Store, StoreConfig, StoreEvent, Version};
pub use crate::core::sync::SyncKind;
pub use crate::core::trust::{CertId, Keys, Reason, Rejections, Seal, Writer};
pub use crate::error::Error;

//! The `beacon` agent: configuration, wiring, catalog sources, HTTP API and CLI.
//!
//! The binary in `main.rs` only parses arguments and calls [`commands::run`]; everything else
//! lives here so that integration tests can start agents in-process. The rooms, in the order
//! data flows through them:
//!
//! - [`config`]: both file formats, parsed and checked once into typed settings;
//! - [`source`]: the Mesos master and the local Mesos agent, polled into catalogs;
//! - [`publish`]: the publishing pipeline, from a source's catalog to the zone DNS serves and
//!   the VIPs the data plane balances;
//! - [`cluster`]: gossip glue, which carries each node's fragments to every node;
//! - [`agent`]: the wiring: builds every part, owns every task, stops them in order;
//! - [`api`]: the HTTP API over what is published;
//! - [`commands`]: the other subcommands (demo, fake master, operator queries, certificates).

#![warn(missing_docs)]

pub mod agent;
pub mod api;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod common;
pub mod config;
pub mod logging;
pub mod metrics;
pub mod publish;
pub mod source;

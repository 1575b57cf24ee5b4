//! Task sources: where the catalog comes from. Today, the Mesos master's state.

pub mod master;

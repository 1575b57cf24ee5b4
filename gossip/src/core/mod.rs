//! The sans-IO core: identity, membership, store, broadcasts, sync, and the node tying them.

pub mod broadcast;
pub mod health;
pub mod identity;
pub mod membership;
pub mod node;
mod presence;
pub mod saved;
pub mod seal;
pub mod store;
pub mod sync;
pub mod trust;

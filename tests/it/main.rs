//! Integration tests: the real `beacon` binary on loopback, against a fake Mesos master (also the
//! binary, `beacon fake-master`), queried over real sockets.

mod api;
mod cluster;
mod conformance;
mod durable;
mod forward;
mod hostile;
mod kept_store;
mod operator;
mod partition;
mod registrations;
mod revocation;
mod robustness;
mod signed;
mod stream;
mod support;
mod trust;
mod ui;
mod vips;
mod zk;

//! Beacon's DNS: Mesos-DNS names from the catalog, answered the way Mesos-DNS answers them.
//!
//! Data flows one way: [`records::generate`] turns a [`beacon_catalog::Catalog`] into a
//! [`records::RecordSet`] (pure, the Mesos-DNS naming rules); [`zone::Zone`] indexes it for
//! queries and decides every answer (pure, the Mesos-DNS reply rules plus Beacon's fixes);
//! [`server`] puts a zone behind hickory-server sockets and forwards other names upstream.
//! [`l4lb`] answers the names of named VIPs (`<name>.<framework>.l4lb.thisdcos.directory`) from
//! the list of VIPs the agent has programmed ([`zone::Zone::with_vips`]).

#![warn(missing_docs)]

mod answer;
pub mod forward;
pub mod handler;
pub mod l4lb;
pub mod labels;
pub mod metrics;
pub mod records;
pub mod response;
pub mod server;
mod tcp;
mod udp;
pub mod zone;

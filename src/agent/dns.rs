//! The DNS server: the hickory handler over the published zone, the forwarder, the sockets.

use std::net::SocketAddr;

use beacon_dns::forward::Forwarder;
use beacon_dns::handler::{DnsHandler, HandlerSettings};
use beacon_dns::metrics::DnsMetrics;
use beacon_dns::server::{DnsServer, ListenConfig, TcpLimits};

use super::error::AgentError;
use crate::config::{Config, Endpoints};
use crate::publish::Current;

/// Starts serving `current`'s zone on `addr`: sockets are open when this returns, and answer
/// SERVFAIL for the domain until the first catalog is published.
pub fn start(
    config: &Config,
    endpoints: &Endpoints,
    addr: SocketAddr,
    current: &Current,
    metrics: DnsMetrics,
) -> Result<DnsServer, AgentError> {
    let m = &config.mesos_dns;
    let settings = HandlerSettings {
        recurse_on: m.recurse_on,
        set_truncate_bit: m.set_truncate_bit,
        edns_max_payload: config.dns.edns_max_payload,
    };
    let handler = DnsHandler::new(
        endpoints.domain.clone(),
        current.zone.clone(),
        Forwarder::new(endpoints.forward.clone()),
        settings,
        metrics,
    );
    let listen = ListenConfig {
        addr,
        udp_sockets: config.dns.udp_sockets,
        tcp: TcpLimits {
            max_connections: config.dns.tcp_max_connections,
            max_per_client: config.dns.tcp_max_per_client,
            idle_timeout: config.dns.tcp_idle_timeout,
            query_timeout: config.dns.tcp_query_timeout,
        },
        inherited: super::activation::inherited(addr),
    };
    DnsServer::start(handler, &listen).map_err(|source| AgentError::Bind { addr, source })
}

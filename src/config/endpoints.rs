//! The addresses and names the agent serves and forwards to, parsed from the Mesos-DNS settings
//! once, so the wiring only binds what it is given.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use beacon_dns::forward::ForwardConfig;
use hickory_proto::rr::{LowerName, Name};
use if_addrs::IfAddr;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::{ConfigError, DnsSettings, NativeConfig};

/// Where the agent listens, the zone it is authoritative for, and where it forwards the rest.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The DNS listener (`Listener:Port`), when `DnsOn`.
    pub dns: Option<SocketAddr>,
    /// The HTTP listener (`HTTPListener:HttpPort`), when `HttpOn`.
    pub http: Option<SocketAddr>,
    /// The domain as an absolute DNS name (`mesos.`).
    pub domain: LowerName,
    /// Upstream resolvers, per zone and for the rest.
    pub forward: ForwardConfig,
}

impl NativeConfig {
    /// Parses the listeners, the domain and the resolvers. With `Resolvers` empty and
    /// `ExternalOn`, the system's resolvers are read from /etc/resolv.conf.
    pub fn endpoints(&self) -> Result<Endpoints, ConfigError> {
        let m = &self.mesos_dns;
        let dns = m
            .dns_on
            .then(|| listen_addr("Listener", &m.listener, m.port));
        let http = (m.http_on).then(|| listen_addr("HTTPListener", &m.http_listener, m.http_port));
        Ok(Endpoints {
            dns: dns.transpose()?,
            http: http.transpose()?,
            domain: LowerName::new(&dns_name("Domain", &m.domain)?),
            forward: self.forward_config()?,
        })
    }

    fn forward_config(&self) -> Result<ForwardConfig, ConfigError> {
        let m = &self.mesos_dns;
        let resolvers = match (m.resolvers.is_empty(), m.external_on) {
            (true, true) => system_resolvers(),
            _ => parse_resolvers("Resolvers", &m.resolvers)?,
        };
        let mut zones = Vec::new();
        for (zone, list) in &m.zone_resolvers {
            let name = dns_name("ZoneResolvers", zone.trim_end_matches('.'))?;
            zones.push((
                LowerName::new(&name),
                parse_resolvers("ZoneResolvers", list)?,
            ));
        }
        Ok(ForwardConfig {
            resolvers,
            zones,
            timeout: Duration::from_secs(m.timeout.max(1)),
            enabled: m.external_on,
            max_inflight: self.dns.max_inflight_forwards,
            allow: forward_allow(&self.dns),
        })
    }
}

fn invalid(key: &'static str, value: &str, reason: impl ToString) -> ConfigError {
    ConfigError::InvalidAddress {
        key,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// `name` as an absolute DNS name.
fn dns_name(key: &'static str, name: &str) -> Result<Name, ConfigError> {
    Name::from_ascii(format!("{name}.")).map_err(|e| invalid(key, name, e))
}

fn listen_addr(key: &'static str, host: &str, port: u16) -> Result<SocketAddr, ConfigError> {
    let ip: IpAddr = host.parse().map_err(|e| invalid(key, host, e))?;
    Ok(SocketAddr::new(ip, port))
}

fn parse_resolvers(key: &'static str, list: &[String]) -> Result<Vec<SocketAddr>, ConfigError> {
    list.iter()
        .map(|r| {
            r.parse::<SocketAddr>()
                .or_else(|_| r.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map_err(|e| invalid(key, r, e))
        })
        .collect()
}

/// The clients forwarding is for: the configured networks, and this node's interface networks
/// when asked (read once at start; an interface added later needs a restart to be allowed).
fn forward_allow(dns: &DnsSettings) -> Vec<IpNet> {
    let mut allow = dns.forward_allow.clone();
    if dns.forward_allow_interfaces {
        let ifs = if_addrs::get_if_addrs().unwrap_or_default();
        allow.extend(ifs.iter().filter_map(|i| match &i.addr {
            IfAddr::V4(a) => Ipv4Net::with_netmask(a.ip, a.netmask).ok().map(IpNet::from),
            IfAddr::V6(a) => Ipv6Net::with_netmask(a.ip, a.netmask).ok().map(IpNet::from),
        }));
    }
    allow
}

/// Nameservers of /etc/resolv.conf other than this host's own addresses (Mesos-DNS does the
/// same when `Resolvers` is empty, so that it does not forward to itself).
fn system_resolvers() -> Vec<SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let local: Vec<IpAddr> = if_addrs::get_if_addrs()
        .map(|ifs| ifs.iter().map(|i| i.ip()).collect())
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| l.strip_prefix("nameserver"))
        .filter_map(|ip| ip.trim().parse::<IpAddr>().ok())
        .filter(|ip| !ip.is_loopback() && !local.contains(ip))
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

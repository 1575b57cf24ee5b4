//! Mesos-DNS start-up validation (`records/validation.go`), one check per setting.

use super::*;
// ------------------------------------------------------------------------------------------
// Validation helpers (records/validation.go)
// ------------------------------------------------------------------------------------------

/// `^[a-zA-Z0-9-]+(\.[a-zA-Z0-9-]+)*$`: Mesos-DNS' domain rule, without a regex engine.
pub(super) fn is_domain_name(name: &str) -> bool {
    name.split('.').all(|label| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

/// Masters must be unique `host:port` pairs; IP hosts are compared by address.
pub(crate) fn validate_masters(masters: &[String]) -> Result<(), ConfigError> {
    let mut seen = HashSet::new();
    for master in masters {
        let key = normalize_master(master).map_err(|reason| ConfigError::InvalidMaster {
            value: master.clone(),
            reason,
        })?;
        if !seen.insert(key) {
            return Err(ConfigError::DuplicateMaster {
                value: master.clone(),
            });
        }
    }
    Ok(())
}

/// The identity of a master: canonical host and port as written (Mesos-DNS keeps the port
/// string, so `a:1` and `a:01` differ).
fn normalize_master(master: &str) -> Result<(String, String), &'static str> {
    let (host, port) = split_host_port(master).ok_or("expected host:port")?;
    if host.is_empty() {
        return Err("expected host:port with a non-empty host");
    }
    if !valid_port(port) {
        return Err("port must be a number in 1..=65535");
    }
    let host = parse_ip(host).map_or_else(|| host.to_owned(), |ip| ip.to_string());
    Ok((host, port.to_owned()))
}

/// `zk`, when set, must be a URL Mesos-DNS reads: refused here rather than at each connection.
pub(super) fn validate_zk(zk: &str) -> Result<(), ConfigError> {
    if zk.is_empty() {
        return Ok(());
    }
    crate::config::zk::ZkUrl::parse(zk)
        .map(drop)
        .map_err(|reason| ConfigError::InvalidZk {
            value: zk.to_string(),
            reason,
        })
}

/// Resolvers must be unique IP or IP:port (port 53 when omitted) addresses.
pub(super) fn validate_resolvers(key: &str, resolvers: &[String]) -> Result<(), ConfigError> {
    let mut seen = HashSet::new();
    for resolver in resolvers {
        let addr = normalize_resolver(resolver).map_err(|reason| ConfigError::InvalidResolver {
            key: key.to_owned(),
            value: resolver.clone(),
            reason,
        })?;
        if !seen.insert(addr) {
            return Err(ConfigError::DuplicateResolver {
                key: key.to_owned(),
                value: resolver.clone(),
            });
        }
    }
    Ok(())
}

/// The identity of a resolver: its address and port string.
fn normalize_resolver(resolver: &str) -> Result<(IpAddr, String), &'static str> {
    let (host, port) = split_host_port(resolver).unwrap_or((resolver, "53"));
    let ip = parse_ip(host).ok_or("expected an ip address or ip:port")?;
    if !valid_port(port) {
        return Err("port must be a number in 1..=65535");
    }
    Ok((ip, port.to_owned()))
}

/// Each zone needs valid resolvers and must not overlap the domain or another zone, so that
/// every name has exactly one place to go.
pub(super) fn validate_zone_resolvers(
    zones: &BTreeMap<String, Vec<String>>,
    domain: &str,
) -> Result<(), ConfigError> {
    for (zone, resolvers) in zones {
        let zone_owned = || zone.clone();
        if resolvers.is_empty() {
            return Err(ConfigError::EmptyZoneResolvers { zone: zone_owned() });
        }
        if !is_domain_name(zone) {
            return Err(ConfigError::InvalidZone { zone: zone_owned() });
        }
        validate_resolvers(&format!("zone_resolvers.\"{zone}\""), resolvers)?;
        if zone.eq_ignore_ascii_case(domain) {
            return Err(ConfigError::ZoneIsDomain { zone: zone_owned() });
        }
    }
    check_zone_overlap(zones.keys().map(String::as_str).chain([domain]))
}

/// Fails if any of the names lies inside another (label-wise, ignoring case).
fn check_zone_overlap<'a>(names: impl Iterator<Item = &'a str>) -> Result<(), ConfigError> {
    let dotted: Vec<(&str, String)> = names
        .map(|name| (name, format!(".{}", name.to_ascii_lowercase())))
        .collect();
    for (i, (zone, inner)) in dotted.iter().enumerate() {
        for (j, (masked_by, outer)) in dotted.iter().enumerate() {
            if i != j && inner.ends_with(outer.as_str()) {
                return Err(ConfigError::OverlappingZones {
                    zone: (*zone).to_owned(),
                    masked_by: (*masked_by).to_owned(),
                });
            }
        }
    }
    Ok(())
}

/// IP sources: a non-empty list of distinct known sources.
pub(super) fn validate_ip_sources(sources: &[String]) -> Result<(), ConfigError> {
    if sources.is_empty() {
        return Err(ConfigError::EmptyIpSources);
    }
    let mut seen = HashSet::new();
    for source in sources {
        if !IP_SOURCES.contains(&source.as_str()) {
            return Err(ConfigError::InvalidIpSource {
                value: source.clone(),
            });
        }
        if !seen.insert(source) {
            return Err(ConfigError::DuplicateIpSource {
                value: source.clone(),
            });
        }
    }
    Ok(())
}

/// Go's `net.SplitHostPort`: `host:port` or `[v6]:port`, exactly as lenient and as strict.
pub(super) fn split_host_port(s: &str) -> Option<(&str, &str)> {
    let colon = s.rfind(':')?;
    let (host, open_from, close_from) = if s.starts_with('[') {
        let end = s.find(']')?;
        // The ']' must be immediately followed by the last ':'.
        if end + 1 != colon {
            return None;
        }
        (&s[1..end], 1, end + 1)
    } else {
        let host = &s[..colon];
        if host.contains(':') {
            return None;
        }
        (host, 0, 0)
    };
    if s[open_from..].contains('[') || s[close_from..].contains(']') {
        return None;
    }
    Some((host, &s[colon + 1..]))
}

/// Go's `validPortString`: `strconv.Atoi` (sign allowed) in 1..=65535.
pub(super) fn valid_port(port: &str) -> bool {
    port.parse::<i64>().is_ok_and(|p| (1..=65535).contains(&p))
}

/// Go's `net.ParseIP` followed by `String()`: IPv4-mapped IPv6 addresses are the IPv4 address.
fn parse_ip(host: &str) -> Option<IpAddr> {
    host.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

//! The `zk` URL, read as Mesos-DNS reads it (`zk://host1:2181,host2:2181/mesos`): the host part
//! split on `,`, the path being where the masters register. Parsed here once, so that a malformed
//! URL is refused at start-up (naming the key) instead of failing every connection later.

/// A parsed `zk` setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZkUrl {
    /// ZooKeeper servers as `host:port` (port 2181 when the URL gives none).
    pub hosts: Vec<String>,
    /// The znode under which the masters register, without a trailing `/` (`/mesos`).
    pub path: String,
    /// `user:password` for ZooKeeper's digest scheme, when the URL carries one (Mesos accepts
    /// `zk://user:password@host/path`).
    pub digest: Option<String>,
}

/// ZooKeeper's client port, used when a host gives none.
const DEFAULT_PORT: &str = "2181";

impl ZkUrl {
    /// Parses `url`; the error says what is wrong, for `ConfigError::InvalidZk`.
    pub fn parse(url: &str) -> Result<Self, &'static str> {
        let rest = url
            .strip_prefix("zk://")
            .ok_or("it must start with zk://")?;
        let (authority, path) = rest
            .split_once('/')
            .ok_or("it needs the path the masters register under, as in zk://host:2181/mesos")?;
        let path = format!("/{}", path.trim_end_matches('/'));
        if path == "/" || path.contains("//") || path.contains(['?', '#', ' ']) {
            return Err("the path must be a znode path such as /mesos");
        }
        let (digest, hosts) = match authority.rsplit_once('@') {
            Some((creds, hosts)) if creds.contains(':') => (Some(creds.to_string()), hosts),
            Some(_) => return Err("credentials must be user:password@"),
            None => (None, authority),
        };
        let hosts = hosts
            .split(',')
            .map(host_port)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            hosts,
            path,
            digest,
        })
    }

    /// The servers as the ZooKeeper client takes them: `h1:2181,h2:2181`.
    pub fn connect_string(&self) -> String {
        self.hosts.join(",")
    }
}

/// One server, `host[:port]`, as `host:port`.
fn host_port(host: &str) -> Result<String, &'static str> {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(':') || name.starts_with('[') => (name, port),
        _ => (host, DEFAULT_PORT),
    };
    if name.is_empty() || name.contains(['[', ']']) && !name.starts_with('[') {
        return Err("every server needs a host, as in zk://host1:2181,host2:2181/mesos");
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(format!("{name}:{port}")),
        _ => Err("a server's port must be a number in 1..=65535"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mesos_dns_urls_parse() {
        let url = ZkUrl::parse("zk://10.0.0.1:2181,zk2:2182/mesos").unwrap();
        assert_eq!(url.hosts, ["10.0.0.1:2181", "zk2:2182"]);
        assert_eq!((url.path.as_str(), url.digest.as_deref()), ("/mesos", None));
        assert_eq!(url.connect_string(), "10.0.0.1:2181,zk2:2182");
        let url = ZkUrl::parse("zk://u:p@zk/dcos/mesos/").unwrap();
        assert_eq!(url.hosts, ["zk:2181"]);
        assert_eq!(url.path, "/dcos/mesos");
        assert_eq!(url.digest.as_deref(), Some("u:p"));
        assert_eq!(
            ZkUrl::parse("zk://[::1]:2181/m").unwrap().hosts,
            ["[::1]:2181"]
        );
    }

    #[test]
    fn malformed_urls_say_what_is_wrong() {
        for bad in [
            "http://h:2181/mesos",
            "h:2181/mesos",
            "zk://h:2181",
            "zk://h:2181/",
            "zk://h:0/mesos",
            "zk://h:x/mesos",
            "zk://,h/mesos",
            "zk://u@h/mesos",
            "zk://h/a//b",
        ] {
            assert!(ZkUrl::parse(bad).is_err(), "{bad}");
        }
    }
}

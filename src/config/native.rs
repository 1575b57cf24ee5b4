//! Beacon's native TOML configuration, for `beacon agent --config FILE.toml`.
//!
//! It holds every Mesos-DNS setting in `[mesos_dns]`, under the snake_case names of
//! [`MesosDnsConfig`], with the same defaults and the same validation as `config.json` (both
//! formats go through [`MesosDnsConfig::validate`]). Beacon's additions live in `[dns]`,
//! `[mesos_master]`, `[mesos_agent]`, `[node]`, `[cluster]`, `[vip]`, `[api]` and `[log]`. Unlike `config.json`, unknown keys are
//! errors: a typo in a file written for Beacon should not be silently ignored. Every key is
//! optional, except that a node needs somewhere to get tasks from: `masters`, a `[mesos_agent]`
//! address, or a `[cluster]` to join (whose registrations it serves).
//!
//! A complete file, with every key at its default except `masters`:
//!
//! The sample file `packaging/beacon.toml` holds every key with its default (a test keeps it,
//! this code and the README's reference in step).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use super::api::ApiSettings;
use super::values::{DataPlaneMode, Seed, XdpMode, optional_addr, seconds};
use super::{ConfigError, MesosDnsConfig};

/// The whole native configuration file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NativeConfig {
    /// `[mesos_dns]`: the Mesos-DNS settings.
    pub mesos_dns: MesosDnsConfig,
    /// `[dns]`: Beacon's DNS server settings.
    pub dns: DnsSettings,
    /// `[mesos_master]`: how the Mesos master is followed.
    pub mesos_master: MesosMasterSettings,
    /// `[mesos_agent]`: the local Mesos agent.
    pub mesos_agent: MesosAgentSettings,
    /// `[node]`: this node.
    pub node: NodeSettings,
    /// `[cluster]`: gossip with other nodes.
    pub cluster: ClusterSettings,
    /// `[vip]`: the VIP data plane.
    pub vip: VipSettings,
    /// `[api]`: write tokens and registration limits.
    pub api: ApiSettings,
    /// `[log]`: logging.
    pub log: LogSettings,
}

/// `[mesos_master]`: how the Mesos master (`masters` or `zk` in `[mesos_dns]`) is followed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MesosMasterSettings {
    /// Follow the master's v1 event stream (SUBSCRIBE) instead of polling `/master/state`
    /// every `refresh_seconds`: a new task is named within a fraction of a second, and the
    /// master sends changes instead of its whole state. A master without the v1 API is polled.
    /// On by default, with `config.json` too: the answers are the same either way.
    pub events: bool,
}

impl Default for MesosMasterSettings {
    fn default() -> Self {
        Self { events: true }
    }
}

/// `[mesos_agent]`: the local Mesos agent, polled for the tasks this node runs. Off while
/// `address` is empty.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MesosAgentSettings {
    /// The agent's `host:port`.
    pub address: String,
    /// Time between polls (`refresh_seconds` in the file).
    #[serde(rename = "refresh_seconds", deserialize_with = "seconds")]
    pub refresh: Duration,
}

impl Default for MesosAgentSettings {
    fn default() -> Self {
        Self {
            address: String::new(),
            refresh: Duration::from_secs(2),
        }
    }
}

impl MesosAgentSettings {
    /// Checks the address and period.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.address.is_empty() {
            super::mesos_dns::validate_masters(std::slice::from_ref(&self.address)).map_err(
                |_| ConfigError::InvalidSetting {
                    key: "mesos_agent.address",
                    value: self.address.clone(),
                    reason: "expected host:port",
                },
            )?;
        }
        if self.refresh.is_zero() {
            return Err(ConfigError::OutOfRange {
                key: "mesos_agent.refresh_seconds",
                value: 0,
                expected: "at least 1",
            });
        }
        Ok(())
    }
}

/// `[vip]`: the eBPF VIP data plane. With `--mesos-dns-config` it is off: a drop-in for
/// Mesos-DNS should not attach programs to the host's cgroups unasked.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VipSettings {
    /// Whether the data plane runs.
    pub data_plane: DataPlaneMode,
    /// The cgroup v2 directory the socket LB attaches to; empty: the cgroup2 mount point.
    pub cgroup: std::path::PathBuf,
    /// Interfaces where XDP balances arriving packets (and tc reverses the replies).
    pub xdp_interfaces: Vec<String>,
    /// How XDP attaches.
    pub xdp_mode: XdpMode,
    /// Time between full reconciles of the BPF maps (`reconcile_secs` in the file).
    #[serde(rename = "reconcile_secs", deserialize_with = "seconds")]
    pub reconcile: Duration,
    /// Where the data plane's maps and links are pinned (bpffs), so that balancing outlives
    /// the agent and a restarted agent adopts them; empty: not pinned (a stop detaches).
    pub bpffs_dir: std::path::PathBuf,
    /// Where registrations may declare IP VIPs (their token must allow it too); empty: nowhere.
    /// Set the same on every node: each node applies it to every node's registrations.
    pub ip_vip_ranges: Vec<IpNet>,
    /// VIPs one node's registrations may declare (so that no node fills the kernel's tables).
    /// Set the same on every node.
    pub max_registered_vips: usize,
    /// Entries of the XDP flow table (and of its reverse table), shared out among the CPUs.
    pub flow_table_size: u32,
    /// New XDP flows each CPU saves in the flow table per second; flows over it are balanced
    /// but not saved, so a SYN flood cannot evict established flows. 0: no limit.
    pub new_flow_rate_limit: u32,
}

impl Default for VipSettings {
    fn default() -> Self {
        Self {
            data_plane: DataPlaneMode::Auto,
            cgroup: std::path::PathBuf::new(),
            xdp_interfaces: Vec::new(),
            xdp_mode: XdpMode::Auto,
            reconcile: Duration::from_secs(30),
            bpffs_dir: "/sys/fs/bpf/beacon".into(),
            ip_vip_ranges: Vec::new(),
            max_registered_vips: 64,
            flow_table_size: 65536,
            new_flow_rate_limit: 20000,
        }
    }
}

impl VipSettings {
    /// Settings with the data plane off.
    pub fn off() -> Self {
        Self {
            data_plane: DataPlaneMode::Off,
            ..Self::default()
        }
    }

    /// Checks the period and the flow table's size.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.reconcile.is_zero() {
            return Err(ConfigError::OutOfRange {
                key: "vip.reconcile_secs",
                value: 0,
                expected: "at least 1",
            });
        }
        if !(1024..=16_777_216).contains(&self.flow_table_size) {
            return Err(ConfigError::OutOfRange {
                key: "vip.flow_table_size",
                value: u64::from(self.flow_table_size),
                expected: "1024 to 16777216",
            });
        }
        Ok(())
    }
}

/// `[cluster]`: gossip with other agents. Off while `listen` is empty.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    /// The gossip QUIC endpoint, `host:port`; empty (`None`) means no cluster.
    #[serde(deserialize_with = "optional_addr")]
    pub listen: Option<SocketAddr>,
    /// Peers to join through, `name@host:port` (the name is what their certificate says).
    pub seeds: Vec<Seed>,
    /// Directory of `ca.pem`, `<node>.pem` and `<node>-key.pem`.
    pub tls_dir: std::path::PathBuf,
    /// Cluster name; messages of another cluster are refused.
    pub name: String,
    /// How long a node may stay down before its records are withdrawn everywhere
    /// (`withdraw_after_secs` in the file).
    #[serde(rename = "withdraw_after_secs", deserialize_with = "seconds")]
    pub withdraw_after: Duration,
    /// How far ahead of this node's clock a peer's version may be stamped; later ones are
    /// refused, so no stamp can lock an origin away from its owner (`max_clock_skew_secs`).
    #[serde(rename = "max_clock_skew_secs", deserialize_with = "seconds")]
    pub max_clock_skew: Duration,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            listen: None,
            seeds: Vec::new(),
            tls_dir: "beacon-tls".into(),
            name: "beacon".into(),
            withdraw_after: Duration::from_secs(30),
            max_clock_skew: Duration::from_secs(60),
        }
    }
}

/// `[node]`: this node's identity.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeSettings {
    /// The node's name: it owns the node's registrations and is the name its TLS certificate
    /// carries. A lower-case DNS label; default: the host name, lower-cased, up to its first dot.
    pub name: String,
    /// Directory where this node keeps its registrations across restarts; empty keeps them in
    /// memory only.
    pub state_dir: std::path::PathBuf,
}

impl Default for NodeSettings {
    fn default() -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let label: String = host
            .trim()
            .split('.')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(63)
            .collect();
        let label = label.trim_matches('-');
        Self {
            name: if label.is_empty() {
                "node".into()
            } else {
                label.to_string()
            },
            state_dir: std::path::PathBuf::new(),
        }
    }
}

impl NodeSettings {
    /// Checks that the name is a lower-case DNS label.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let n = &self.name;
        let ok = (1..=63).contains(&n.len())
            && n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !n.starts_with('-')
            && !n.ends_with('-');
        match ok {
            true => Ok(()),
            false => Err(ConfigError::InvalidNodeName { value: n.clone() }),
        }
    }
}

/// `[dns]`: DNS server behaviour Beacon adds on top of Mesos-DNS.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsSettings {
    /// Cap on the UDP answer size a client's EDNS may ask for, in bytes (512..=65535).
    /// Default 1232, the DNS Flag Day 2020 value that avoids IP fragmentation.
    pub edns_max_payload: u16,
    /// Answer PTR queries for task and agent addresses under `in-addr.arpa` and `ip6.arpa`,
    /// which Mesos-DNS never did. Default false.
    pub ptr_records: bool,
    /// Bound on upstream queries in flight (> 0), so a slow upstream cannot exhaust memory.
    /// Default 1024.
    pub max_inflight_forwards: usize,
    /// Number of `SO_REUSEPORT` UDP sockets; 0 means one per core. Default 0.
    pub udp_sockets: usize,
    /// Time after which an idle DNS-over-TCP connection is closed (> 0; `tcp_idle_timeout_secs`
    /// in the file). Default 10 s.
    #[serde(rename = "tcp_idle_timeout_secs", deserialize_with = "seconds")]
    pub tcp_idle_timeout: Duration,
    /// Answer NOERROR/NODATA rather than NXDOMAIN for the apex and empty non-terminals, as RFC
    /// 8020 requires (Mesos-DNS answered NXDOMAIN). Default true.
    pub apex_nodata: bool,
    /// DNS-over-TCP connections open at once, all clients together (NSD's `tcp-count`): past
    /// it a new connection is closed on accept, so idle clients cannot use up the agent's file
    /// descriptors. Default 100.
    pub tcp_max_connections: usize,
    /// DNS-over-TCP connections open at once from one client address, so one client cannot
    /// take every connection. Default 16.
    pub tcp_max_per_client: usize,
    /// Time for a DNS-over-TCP query to arrive whole and be answered (NSD's `tcp-timeout`;
    /// `tcp_query_timeout_secs` in the file), so a client trickling bytes holds a connection
    /// that long at most. Default 10 s.
    #[serde(rename = "tcp_query_timeout_secs", deserialize_with = "seconds")]
    pub tcp_query_timeout: Duration,
    /// Clients whose queries for names outside the domain are forwarded; any other client gets
    /// REFUSED for them (names in the domain stay open to all), so an agent listening on
    /// 0.0.0.0 is not an open resolver. Default loopback, RFC 1918, RFC 4193 and link-local.
    pub forward_allow: Vec<IpNet>,
    /// Also allow forwarding for the networks of this node's interfaces. Default true.
    pub forward_allow_interfaces: bool,
    /// Leave a task whose latest health check failed out of its A, AAAA and SRV answers (as
    /// the VIPs already drain it; Consul's `only_passing`). Default false: Mesos-DNS names
    /// every running task, healthy or not.
    pub healthy_only: bool,
}

impl Default for DnsSettings {
    fn default() -> Self {
        Self {
            edns_max_payload: 1232,
            ptr_records: false,
            max_inflight_forwards: 1024,
            udp_sockets: 0,
            tcp_idle_timeout: Duration::from_secs(10),
            apex_nodata: true,
            tcp_max_connections: 100,
            tcp_max_per_client: 16,
            tcp_query_timeout: Duration::from_secs(10),
            forward_allow: [
                "127.0.0.0/8",
                "::1/128",
                "10.0.0.0/8",
                "172.16.0.0/12",
                "192.168.0.0/16",
                "fc00::/7",
                "169.254.0.0/16",
                "fe80::/10",
            ]
            .iter()
            .filter_map(|net| net.parse().ok())
            .collect(),
            forward_allow_interfaces: true,
            healthy_only: false,
        }
    }
}

impl DnsSettings {
    /// Checks the ranges documented on each field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let out_of_range = |key, value: u64, expected| ConfigError::OutOfRange {
            key,
            value,
            expected,
        };
        if self.edns_max_payload < 512 {
            let value = self.edns_max_payload.into();
            return Err(out_of_range("edns_max_payload", value, "512..=65535"));
        }
        if self.max_inflight_forwards == 0 {
            return Err(out_of_range("max_inflight_forwards", 0, "at least 1"));
        }
        if self.tcp_idle_timeout.is_zero() {
            return Err(out_of_range("tcp_idle_timeout_secs", 0, "at least 1"));
        }
        let max = self.tcp_max_connections;
        if !(1..=65535).contains(&max) {
            return Err(out_of_range("tcp_max_connections", max as u64, "1..=65535"));
        }
        let per_client = self.tcp_max_per_client;
        if !(1..=max).contains(&per_client) {
            let expected = "1..=tcp_max_connections";
            return Err(out_of_range(
                "tcp_max_per_client",
                per_client as u64,
                expected,
            ));
        }
        if self.tcp_query_timeout.is_zero() {
            return Err(out_of_range("tcp_query_timeout_secs", 0, "at least 1"));
        }
        Ok(())
    }
}

/// `[log]`: logging.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// A `tracing_subscriber::EnvFilter` directive, such as `info` or `beacon=debug,info`.
    /// Default `info`.
    pub filter: String,
    /// `text` or `json`. Default `text`.
    pub format: super::values::LogFormat,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            filter: "info".to_owned(),
            format: super::values::LogFormat::Text,
        }
    }
}

impl NativeConfig {
    /// Parses a native TOML configuration, then normalises and validates it; `file` names the
    /// file in errors and becomes `mesos_dns.file` (made absolute).
    pub fn from_toml(text: &str, file: &Path) -> Result<Self, ConfigError> {
        let parsed: Self = toml::from_str(text).map_err(|e| toml_error(&e, text, file))?;
        let masters_required = parsed.masters_required();
        let config = Self {
            mesos_dns: parsed.mesos_dns.finish(file, masters_required)?,
            ..parsed
        };
        config.dns.validate()?;
        config.mesos_agent.validate()?;
        config.node.validate()?;
        config.vip.validate()?;
        config.api.validate()?;
        Ok(config)
    }

    /// Whether `masters` must be set: only when the node has no other source of tasks.
    fn masters_required(&self) -> bool {
        self.mesos_agent.address.is_empty() && self.cluster.listen.is_none()
    }

    /// Validates everything, as loading does; for configurations built or changed in code.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.mesos_dns.check(self.masters_required())?;
        self.dns.validate()?;
        self.mesos_agent.validate()?;
        self.node.validate()?;
        self.vip.validate()?;
        self.api.validate()
    }
}

/// Turns a TOML error into one with a line and column instead of a multi-line snippet.
///
/// Serde's type errors ("invalid type: string \"53\", expected u16") do not say which key they
/// are about, so the key written before the offending value is added.
fn toml_error(error: &toml::de::Error, text: &str, file: &Path) -> ConfigError {
    let start = error.span().map(|span| span.start);
    let (line, column) = start.map_or((0, 0), |start| line_column(text, start));
    let mut message = one_line(error.message());
    if let Some(key) = start.and_then(|start| key_before(text, start)) {
        message = format!("{message} (key `{key}`)");
    }
    ConfigError::Toml {
        path: file.to_path_buf(),
        line,
        column,
        message,
    }
}

/// The key of a `key = value` line when `offset` points into the value.
fn key_before(text: &str, offset: usize) -> Option<&str> {
    let before = text.get(..offset)?;
    let line = &before[before.rfind('\n').map_or(0, |i| i + 1)..];
    let (key, _) = line.split_once('=')?;
    Some(key.trim()).filter(|key| !key.is_empty())
}

/// Joins a multi-line parser message ("invalid table header\nexpected `.`") into one line,
/// so it reads well in a log line.
fn one_line(message: &str) -> String {
    let parts: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    parts.join(": ")
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<NativeConfig, ConfigError> {
        NativeConfig::from_toml(text, Path::new("/etc/beacon/beacon.toml"))
    }

    /// The sample configuration shipped in `packaging/`.
    fn doc_example() -> String {
        include_str!("../../packaging/beacon.toml").to_string()
    }

    /// The README's configuration reference is the sample file, word for word.
    #[test]
    fn the_readme_reference_is_the_sample_file() {
        let readme = include_str!("../../README.md");
        let sample = doc_example();
        let body: String = sample
            .lines()
            .skip_while(|l| l.starts_with('#') || l.is_empty())
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(
            readme.contains(&body),
            "README.md's configuration reference differs from packaging/beacon.toml"
        );
    }

    #[test]
    fn doc_example_parses_and_is_all_defaults() {
        let example = doc_example();
        assert!(example.contains("[log]"), "{example}");
        let config = parse(&example).unwrap();
        let mut expected = NativeConfig::default();
        expected.mesos_dns.masters = vec!["127.0.0.1:5050".to_owned()];
        expected.mesos_dns = expected
            .mesos_dns
            .finish(Path::new("/etc/beacon/beacon.toml"), true)
            .unwrap();
        assert_eq!(config, expected);
    }

    #[test]
    fn minimal_file_gets_defaults() {
        let c = parse("[mesos_dns]\nmasters = [\"10.0.0.1:5050\"]\n").unwrap();
        assert_eq!(c.dns, DnsSettings::default());
        assert_eq!(c.log.filter, "info");
        assert_eq!(c.mesos_dns.soa_mname, "ns1.mesos.");
        assert_eq!(c.mesos_dns.file, "/etc/beacon/beacon.toml");
        assert_eq!(c.dns.edns_max_payload, 1232);
        assert!(c.dns.apex_nodata && !c.dns.ptr_records);
    }

    #[test]
    fn sections_are_read() {
        let c = parse(
            r#"
            [mesos_dns]
            masters = ["10.0.0.1:5050", "10.0.0.2:5050"]
            domain = "DC.Mesos"
            ip_sources = ["docker", "host"]
            mesos_authentication = "basic"
            [mesos_dns.mesos_credentials]
            principal = "beacon"
            secret = "s3cret"
            [mesos_dns.zone_resolvers]
            "consul" = ["10.0.0.2:8600"]
            [dns]
            edns_max_payload = 4096
            ptr_records = true
            udp_sockets = 4
            [log]
            filter = "beacon=debug,info"
            "#,
        )
        .unwrap();
        assert_eq!(c.mesos_dns.domain, "dc.mesos");
        assert_eq!(c.mesos_dns.zone_resolvers["consul"], ["10.0.0.2:8600"]);
        assert_eq!(c.mesos_dns.mesos_credentials.principal, "beacon");
        assert_eq!(
            (c.dns.edns_max_payload, c.dns.ptr_records, c.dns.udp_sockets),
            (4096, true, 4)
        );
        assert_eq!(c.log.filter, "beacon=debug,info");
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key() {
        for (text, key) in [
            (
                "[mesos_dns]\nmasters = [\"a:1\"]\nmaster = [\"b:1\"]\n",
                "master",
            ),
            ("[mesos_dns]\nmasters = [\"a:1\"]\nfile = \"/x\"\n", "file"),
            (
                "[mesos_dns]\nmasters = [\"a:1\"]\n[dns]\nedns = 1\n",
                "edns",
            ),
            ("[mesos_dns]\nmasters = [\"a:1\"]\n[logging]\n", "logging"),
            (
                "[mesos_dns]\nmasters = [\"a:1\"]\n[mesos_dns.mesos_credentials]\nuser = \"x\"\n",
                "user",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(matches!(err, ConfigError::Toml { .. }), "{err}");
            assert!(err.to_string().contains(&format!("`{key}`")), "{err}");
        }
    }

    #[test]
    fn syntax_and_type_errors_have_positions() {
        let err = parse("[mesos_dns]\nmasters = [\"a:1\"]\nport = \"53\"\n").unwrap_err();
        assert!(err.to_string().contains("(key `port`)"), "{err}");
        let ConfigError::Toml { line, column, .. } = err else {
            panic!("{err}")
        };
        assert_eq!((line, column), (3, 8));
        let err = parse("[mesos_dns\n").unwrap_err();
        assert!(matches!(err, ConfigError::Toml { line: 1, .. }), "{err}");
        assert!(!err.to_string().contains('\n'), "{err}");
    }

    #[test]
    fn mesos_dns_validation_is_shared() {
        assert!(matches!(parse(""), Err(ConfigError::NoMasters)));
        assert!(parse("[mesos_dns]\nzk = \"zk://h:2181/mesos\"\n").is_ok());
        assert!(matches!(
            parse("[mesos_dns]\nzk = \"zk://h:2181\"\n"),
            Err(ConfigError::InvalidZk { .. })
        ));
        let err = parse("[mesos_dns]\nmasters = [\"a\"]\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid masters entry \"a\": expected host:port"
        );
        let err = parse(
            "[mesos_dns]\nmasters = [\"a:1\"]\n[mesos_dns.zone_resolvers]\nmesos = [\"1.1.1.1\"]\n",
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::ZoneIsDomain { .. }), "{err}");
    }

    #[test]
    fn masters_are_optional_with_another_source() {
        let agent = parse("[mesos_agent]\naddress = \"127.0.0.1:5051\"\n").unwrap();
        assert_eq!(agent.mesos_agent.refresh, Duration::from_secs(2));
        assert!(parse("[cluster]\nlisten = \"127.0.0.1:7946\"\n").is_ok());
        let err = parse("[mesos_agent]\naddress = \"localhost\"\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid mesos_agent.address \"localhost\": expected host:port"
        );
        let err = parse("[mesos_agent]\naddress = \"a:1\"\nrefresh_seconds = 0\n").unwrap_err();
        assert!(
            err.to_string().contains("mesos_agent.refresh_seconds"),
            "{err}"
        );
    }

    #[test]
    fn dns_settings_are_range_checked() {
        let base = "[mesos_dns]\nmasters = [\"a:1\"]\n[dns]\n";
        for (setting, key) in [
            ("edns_max_payload = 511", "edns_max_payload"),
            ("max_inflight_forwards = 0", "max_inflight_forwards"),
            ("tcp_idle_timeout_secs = 0", "tcp_idle_timeout_secs"),
        ] {
            let err = parse(&format!("{base}{setting}\n")).unwrap_err();
            assert!(
                matches!(err, ConfigError::OutOfRange { key: k, .. } if k == key),
                "{err}"
            );
        }
        assert!(matches!(
            parse(&format!("{base}edns_max_payload = 65536\n")),
            Err(ConfigError::Toml { .. })
        ));
        assert!(parse(&format!("{base}edns_max_payload = 512\n")).is_ok());
    }

    #[test]
    fn line_column_counts_characters() {
        assert_eq!(line_column("ab\ncé d", 7), (2, 4));
        assert_eq!(line_column("x", 0), (1, 1));
    }
}

//! Agent configuration, read from either of two file formats.
//!
//! * A Mesos-DNS `config.json` ([`mesos_dns`]), so that Beacon is a drop-in replacement: the same
//!   keys (matched case-insensitively, as Go does), the same defaults, the same normalisation and
//!   the same validation. Beacon's own settings stay at their defaults.
//! * Beacon's native TOML file ([`native`]), for `beacon agent --config FILE.toml`. It holds every
//!   Mesos-DNS key in a `[mesos_dns]` table plus Beacon's additions in `[dns]` and `[log]`.
//!
//! Both end in the same [`Config`], and both run the one validation path,
//! [`MesosDnsConfig::validate`], so a setting means the same thing whichever file it came from.

use std::io;
use std::path::{Component, Path, PathBuf};

pub mod api;
pub mod endpoints;
pub mod mesos_dns;
pub mod native;
pub mod values;
pub mod zk;

pub use api::{ApiSettings, TokenSettings};
pub use endpoints::Endpoints;
pub use mesos_dns::{MesosCredentials, MesosDnsConfig};
pub use native::{
    ClusterSettings, DnsSettings, LogSettings, MesosAgentSettings, MesosMasterSettings,
    NativeConfig, NodeSettings, VipSettings,
};
pub use values::{DataPlaneMode, LogFormat, Seed, XdpMode};

/// The agent's whole configuration: the Mesos-DNS settings plus Beacon's own.
///
/// This is [`NativeConfig`] under the name the rest of the agent uses; it can be loaded from
/// either file format.
pub use native::NativeConfig as Config;

impl NativeConfig {
    /// Loads a Mesos-DNS `config.json`, leaving Beacon's own settings at their defaults but for
    /// the VIP data plane, which is off (see [`VipSettings`]).
    ///
    /// A leading `~/` is expanded with `$HOME` and a relative path is made absolute, as Mesos-DNS
    /// does, because the absolute path is what `/v1/config` reports as `File`.
    pub fn from_mesos_dns_json_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let file = absolute_config_path(path.as_ref())?;
        let bytes = read_file(&file)?;
        Ok(Self {
            mesos_dns: MesosDnsConfig::from_json(&bytes, &file)?,
            vip: VipSettings::off(),
            ..Self::default()
        })
    }

    /// Loads Beacon's native TOML configuration file.
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let file = absolute_config_path(path.as_ref())?;
        let bytes = read_file(&file)?;
        let text =
            String::from_utf8(bytes).map_err(|_| ConfigError::NotUtf8 { path: file.clone() })?;
        Self::from_toml(&text, &file)
    }
}

/// Reads a whole configuration file, naming the path if that fails.
fn read_file(path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Turns the path given on the command line into the absolute path Mesos-DNS would report.
///
/// Like Go's `filepath.Abs`, this is purely lexical (`.` and `..` are resolved without touching
/// the file system, symlinks are kept), so it works before the file is opened.
pub(crate) fn absolute_config_path(file: &Path) -> Result<PathBuf, ConfigError> {
    let expanded = expand_home(file);
    if expanded.is_absolute() {
        return Ok(clean_path(&expanded));
    }
    let cwd = std::env::current_dir().map_err(|source| ConfigError::WorkingDirectory {
        path: file.to_path_buf(),
        source,
    })?;
    Ok(clean_path(&cwd.join(expanded)))
}

/// Expands a leading `~/` with `$HOME`, which Mesos-DNS does for its `-config` flag.
fn expand_home(file: &Path) -> PathBuf {
    match (file.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) if file.to_string_lossy().starts_with("~/") => {
            PathBuf::from(home).join(rest)
        }
        _ => file.to_path_buf(),
    }
}

/// Lexically normalises an absolute path, like Go's `filepath.Clean`.
fn clean_path(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                // `pop` refuses to go above the root, which is what Clean does with "/..".
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Why a configuration could not be loaded.
///
/// Every message names the offending key (in its snake_case spelling) and value, so the user can
/// find the line to fix. Messages are lower-case without a trailing period, so that they read
/// well after `beacon: ` and inside other errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Occurs when a `[mesos_agent]` setting does not parse.
    #[error("invalid {key} {value:?}: {reason}")]
    InvalidSetting {
        /// The key, with its section: `mesos_agent.address`.
        key: &'static str,
        /// Its value.
        value: String,
        /// What is expected.
        reason: &'static str,
    },
    /// Occurs when a listener, resolver or domain does not parse (the Mesos-DNS checks let
    /// through something the server cannot use).
    #[error("invalid {key} {value:?}: {reason}")]
    InvalidAddress {
        /// The key, as Mesos-DNS spells it.
        key: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// Occurs when `[node] name` is not a lower-case DNS label.
    #[error(
        "invalid node name {value:?}: use 1 to 63 of a-z, 0-9 and '-', not starting or ending with '-'"
    )]
    InvalidNodeName {
        /// The configured name.
        value: String,
    },
    /// Occurs when the configuration file cannot be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// Occurs when a TOML configuration file is not valid UTF-8.
    #[error("config file {} is not valid utf-8", path.display())]
    NotUtf8 {
        /// The offending file.
        path: PathBuf,
    },
    /// Occurs when a relative config path cannot be made absolute because the working directory
    /// is unknown.
    #[error("cannot make config path {} absolute: {source}", path.display())]
    WorkingDirectory {
        /// The relative path as given.
        path: PathBuf,
        /// Why the working directory could not be read.
        source: io::Error,
    },
    /// Occurs when a `config.json` is not well-formed JSON.
    #[error("malformed json in {} at line {line}, column {column}: {message}", path.display())]
    Json {
        /// The file being parsed.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// Occurs when a TOML file is malformed, has a value of the wrong type, or has a key Beacon
    /// does not know (the key is named in the message).
    #[error("invalid toml in {} at line {line}, column {column}: {message}", path.display())]
    Toml {
        /// The file being parsed.
        path: PathBuf,
        /// 1-based line of the error (0 when the parser gave no position).
        line: usize,
        /// 1-based column of the error (0 when the parser gave no position).
        column: usize,
        /// The parser's message, which names the key.
        message: String,
    },
    /// Occurs when a `config.json` key holds a JSON value of the wrong type or range.
    #[error("invalid value for \"{key}\": expected {expected}, found {found}")]
    WrongType {
        /// The key as spelled in the document, with `[i]` or `.member` for nested values.
        key: String,
        /// The type Beacon expected.
        expected: String,
        /// The JSON value found instead.
        found: String,
    },
    /// Occurs when both `dns_on` and `http_on` are false, leaving nothing to serve.
    #[error("dns_on and http_on are both false: at least one server must be on")]
    NoServerEnabled,
    /// Occurs when neither `masters` nor `zk` is set, so Beacon cannot find Mesos.
    #[error(
        "no mesos masters configured: list them in masters as host:port, or set zk to the \
         zookeeper url the masters register in (zk://host:2181/mesos)"
    )]
    NoMasters,
    /// Occurs when `zk` is not a ZooKeeper URL Mesos-DNS would read.
    #[error("invalid zk \"{value}\": {reason} (write it as zk://host1:2181,host2:2181/mesos)")]
    InvalidZk {
        /// The `zk` URL given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Occurs when a `masters` entry is not `host:port` with a port in 1..=65535.
    #[error("invalid masters entry \"{value}\": {reason}")]
    InvalidMaster {
        /// The entry as written.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Occurs when two `masters` entries name the same host and port.
    #[error("duplicate masters entry \"{value}\"")]
    DuplicateMaster {
        /// The second entry as written.
        value: String,
    },
    /// Occurs when a resolver (in `resolvers` or `zone_resolvers`) is not an IP or IP:port.
    #[error("invalid {key} entry \"{value}\": {reason}")]
    InvalidResolver {
        /// `resolvers`, or `zone_resolvers."zone"`.
        key: String,
        /// The entry as written.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Occurs when two resolvers of one list are the same address and port (53 if omitted).
    #[error("duplicate {key} entry \"{value}\"")]
    DuplicateResolver {
        /// `resolvers`, or `zone_resolvers."zone"`.
        key: String,
        /// The second entry as written.
        value: String,
    },
    /// Occurs when a `zone_resolvers` zone has an empty resolver list.
    #[error("zone_resolvers zone \"{zone}\" has no resolvers")]
    EmptyZoneResolvers {
        /// The zone.
        zone: String,
    },
    /// Occurs when a `zone_resolvers` zone is not a valid domain name.
    #[error(
        "invalid zone_resolvers zone \"{zone}\": expected dot-separated labels of letters, \
         digits and '-', without a trailing dot"
    )]
    InvalidZone {
        /// The zone.
        zone: String,
    },
    /// Occurs when a `zone_resolvers` zone is the Mesos domain itself, which Beacon serves.
    #[error("zone_resolvers zone \"{zone}\" is the mesos domain")]
    ZoneIsDomain {
        /// The zone.
        zone: String,
    },
    /// Occurs when a `zone_resolvers` zone lies inside another zone or the Mesos domain (or
    /// contains the domain), which would make forwarding ambiguous.
    #[error("ambiguous zone_resolvers: \"{zone}\" is masked by \"{masked_by}\"")]
    OverlappingZones {
        /// The inner zone.
        zone: String,
        /// The enclosing zone or Mesos domain.
        masked_by: String,
    },
    /// Occurs when `ip_sources` is empty.
    #[error("ip_sources is empty: expected some of host, docker, mesos, netinfo")]
    EmptyIpSources,
    /// Occurs when an `ip_sources` entry is listed twice.
    #[error("duplicate ip_sources entry \"{value}\"")]
    DuplicateIpSource {
        /// The repeated entry.
        value: String,
    },
    /// Occurs when an `ip_sources` entry is not one of host, docker, mesos, netinfo.
    #[error("invalid ip_sources entry \"{value}\": expected host, docker, mesos or netinfo")]
    InvalidIpSource {
        /// The entry as written.
        value: String,
    },
    /// Occurs when `domain` is not a valid domain name.
    #[error(
        "invalid domain \"{value}\": expected dot-separated labels of letters, digits and '-', \
         without a trailing dot"
    )]
    InvalidDomain {
        /// The domain, lower-cased.
        value: String,
    },
    /// Occurs when `cert_file` is set without `key_file`, or the other way round.
    #[error("{present} is \"{value}\" but {missing} is empty: they must be given together")]
    CertKeyMismatch {
        /// The key that was set (`cert_file` or `key_file`).
        present: &'static str,
        /// Its value.
        value: String,
        /// The key that is missing.
        missing: &'static str,
    },
    /// Occurs when `mesos_authentication` is not "", "basic" or "iam".
    #[error("invalid mesos_authentication \"{value}\": expected \"\", \"basic\" or \"iam\"")]
    InvalidMesosAuthentication {
        /// The value as written.
        value: String,
    },
    /// Occurs when `mesos_authentication` is "basic" but `mesos_credentials` is empty.
    #[error("mesos_authentication is \"basic\" but mesos_credentials is empty")]
    MissingCredentials,
    /// Occurs when `mesos_authentication` is "iam" but `iam_config_file` is empty.
    #[error("mesos_authentication is \"iam\" but iam_config_file is empty")]
    MissingIamConfigFile,
    /// Occurs when a numeric setting is outside the range Beacon can use (for example a zero
    /// `state_timeout_seconds`, or `edns_max_payload` below 512).
    #[error("invalid {key} {value}: expected {expected}")]
    OutOfRange {
        /// The key.
        key: &'static str,
        /// The value given.
        value: u64,
        /// The accepted range.
        expected: &'static str,
    },
}

/// Where the Mesos-DNS conformance fixtures live: `$BEACON_CONFORMANCE_DIR`, else the shared
/// directory beside the workspace.
#[cfg(test)]
pub(crate) fn conformance_dir() -> PathBuf {
    std::env::var_os("BEACON_CONFORMANCE_DIR").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/conformance/mesos-dns"
            ))
        },
        PathBuf::from,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_path_is_lexical_like_go() {
        assert_eq!(
            clean_path(Path::new("/etc/./mesos-dns//x/../config.json")),
            PathBuf::from("/etc/mesos-dns/config.json")
        );
        assert_eq!(clean_path(Path::new("/../a")), PathBuf::from("/a"));
    }

    #[test]
    fn relative_paths_become_absolute() {
        let abs = absolute_config_path(Path::new("sub/../config.json")).unwrap();
        assert!(abs.is_absolute());
        assert!(abs.ends_with("config.json"));
        assert!(!abs.to_string_lossy().contains(".."));
    }

    #[test]
    fn read_errors_name_the_path() {
        let err = Config::from_mesos_dns_json_file("/nonexistent/beacon/config.json").unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }));
        assert!(
            err.to_string().contains("/nonexistent/beacon/config.json"),
            "{err}"
        );
        let err = Config::from_toml_file("/nonexistent/beacon/beacon.toml").unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/beacon/beacon.toml"),
            "{err}"
        );
    }

    #[test]
    fn loads_the_reference_json_configs() {
        let dir = conformance_dir();
        let a = Config::from_mesos_dns_json_file(dir.join("config-A-defaults.json")).unwrap();
        assert_eq!(a.mesos_dns.masters, ["127.0.0.1:15050"]);
        assert_eq!(
            a.mesos_dns.file,
            clean_path(&dir.join("config-A-defaults.json")).to_string_lossy()
        );
        assert_eq!(a.dns, DnsSettings::default());
        let b = Config::from_mesos_dns_json_file(dir.join("config-B-testlike.json")).unwrap();
        assert_eq!(b.mesos_dns.soa_rname, "admin.example.org.");
        assert!(b.mesos_dns.enforce_rfc952);
    }
}

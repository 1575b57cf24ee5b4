//! The Mesos-DNS configuration: `config.json` loading, validation and the `/v1/config` body.
//!
//! Beacon reads an unmodified Mesos-DNS `config.json` and must accept, reject and report it
//! exactly as Mesos-DNS (`records/config.go`, `records/validation.go`) does, so existing
//! deployments can switch without touching their files. That means:
//!
//! * Keys are matched like Go's `encoding/json`: case-insensitively against the Go field names
//!   (`httpport`, `HttpPort` and `HTTPPORT` are all `HttpPort`), members are applied in document
//!   order (so the last spelling of a repeated key wins), unknown keys are ignored, missing keys
//!   keep their defaults, and `null` leaves a scalar alone but empties a list or map.
//! * After parsing, `domain` is lower-cased, `soa_mname`/`soa_rname` get one trailing `.` (and `@`
//!   in `soa_rname` becomes `.`), and `file` becomes the absolute path of the file.
//! * Validation rejects what Mesos-DNS rejects at start-up (see [`MesosDnsConfig::validate`]).
//!
//! Deliberate differences from Mesos-DNS, each because its behaviour was a bug or a crash:
//!
//! * ZooKeeper master detection is not implemented: `zk` alone is an error telling the user to
//!   list `masters`; with both set, validation passes and the agent uses `masters`.
//! * `refresh_seconds = 0` is rejected (Mesos-DNS panics in `time.NewTicker`), `ttl` above
//!   2^31-1 is rejected (RFC 2181 §8; Go's `int32` field rejected it while parsing), and a
//!   `masters` entry with an empty host (`":5050"`) is rejected.
//! * Zone names are compared case-insensitively, since DNS names are.
//! * `/v1/config` never shows the Mesos secret (see [`MesosDnsConfig::to_api_json_string`]).
//! * Certificate, key and IAM files are not opened here: the agent reads them when it connects.
//! * An empty `resolvers` list is kept empty; Mesos-DNS replaced it with the non-local
//!   nameservers of `/etc/resolv.conf` when `external_on` is set, which the agent must do.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};

use super::ConfigError;

/// What `/v1/config` shows instead of a non-empty Mesos secret.
const REDACTED: &str = "<redacted>";

/// The values Mesos-DNS accepts in `IPSources`.
const IP_SOURCES: [&str; 4] = ["host", "docker", "mesos", "netinfo"];

/// Every Mesos-DNS `config.json` setting, under its snake_case name.
///
/// [`Default`] gives Mesos-DNS' own defaults (`records.NewConfig`), listed on each field; note
/// that `config.json.sample` in the Mesos-DNS repository differs from them and is not the
/// default. The same struct is the `[mesos_dns]` table of Beacon's native TOML file, where keys
/// are the snake_case field names and unknown keys are errors.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MesosDnsConfig {
    /// `RefreshSeconds`: how often the master state is polled, in seconds. Default 60.
    pub refresh_seconds: u64,
    /// `Port`: DNS port, UDP and TCP. Default 53.
    pub port: u16,
    /// `Timeout`: dial, read and write timeout of forwarded queries, in seconds. Default 5.
    pub timeout: u64,
    /// `StateTimeoutSeconds`: HTTP timeout for `/master/state`, in seconds; must be > 0.
    /// Default 300.
    pub state_timeout_seconds: u64,
    /// `ZkDetectionTimeout`: seconds to wait for a ZooKeeper leader (0 = forever). Parsed and
    /// echoed for compatibility; Beacon does not use ZooKeeper. Default 30.
    pub zk_detection_timeout: u64,
    /// `HttpPort`: HTTP API port. Default 8123.
    pub http_port: u16,
    /// `TTL`: TTL of every record, also used as the SOA minimum. Default 60.
    pub ttl: u32,
    /// `SRVRecordDefaultWeight`: weight of generated SRV records (priority is always 0).
    /// Default 1.
    pub srv_record_default_weight: u16,
    /// `SOASerial`: the SOA serial. Mesos-DNS ignores the configured value and stamps the unix
    /// time at start and on every reload; the agent must do the same. Default 0.
    pub soa_serial: u32,
    /// `SOARefresh`: SOA refresh interval. Default 60.
    pub soa_refresh: u32,
    /// `SOARetry`: SOA retry interval. Default 600.
    pub soa_retry: u32,
    /// `SOAExpire`: SOA expire time. Default 86400.
    pub soa_expire: u32,
    /// `SOAMinttl`: parsed and echoed, but Mesos-DNS answers with `ttl` as the SOA minimum.
    /// Default 60.
    pub soa_minttl: u32,
    /// `SOAMname`: primary name server of the SOA and NS records; a trailing `.` is added.
    /// Default `ns1.mesos` (so `ns1.mesos.` once loaded).
    pub soa_mname: String,
    /// `SOARname`: SOA mailbox; `@` becomes `.` and a trailing `.` is added.
    /// Default `root.ns1.mesos` (so `root.ns1.mesos.` once loaded).
    pub soa_rname: String,
    /// `Masters`: Mesos masters as `host:port`, unique. Default empty (then `zk` is required,
    /// which Beacon does not support).
    pub masters: Vec<String>,
    /// `ZoneResolvers`: per-zone upstream resolvers (IP or IP:port). Default empty.
    pub zone_resolvers: BTreeMap<String, Vec<String>>,
    /// `Resolvers`: upstream resolvers for names outside the domain, as IP or IP:port (port 53
    /// if omitted), unique. Default `["8.8.8.8"]`. Empty means "use `/etc/resolv.conf`".
    pub resolvers: Vec<String>,
    /// `IPSources`: where task addresses come from, in priority order; each of `host`,
    /// `docker`, `mesos`, `netinfo`, unique, non-empty. Default `["netinfo", "mesos", "host"]`.
    pub ip_sources: Vec<String>,
    /// `Zk`: ZooKeeper URL (`zk://host:port/mesos`). Default empty.
    pub zk: String,
    /// `Domain`: the served domain, lower-cased, without a trailing dot. Default `mesos`.
    pub domain: String,
    /// `File`: the absolute path of the configuration file, set while loading.
    #[serde(skip)]
    pub file: String,
    /// `Listener`: DNS bind address. Default `0.0.0.0`.
    pub listener: String,
    /// `HTTPListener`: HTTP bind address. Default `0.0.0.0`.
    pub http_listener: String,
    /// `RecurseOn`: the RA flag in answers for the domain. Default true.
    pub recurse_on: bool,
    /// `DnsOn`: serve DNS. Default true. At least one of `dns_on` and `http_on` must be true.
    pub dns_on: bool,
    /// `HttpOn`: serve the HTTP API. Default true.
    pub http_on: bool,
    /// `ExternalOn`: forward names outside the domain (else REFUSED). Default true.
    pub external_on: bool,
    /// `EnforceRFC952`: legacy 24-character labels instead of RFC 1123 ones. Default false.
    pub enforce_rfc952: bool,
    /// `SetTruncateBit`: set TC on truncated UDP answers. Default true.
    pub set_truncate_bit: bool,
    /// `EnumerationOn`: enable `/v1/enumerate` and `/v1/axfr`. Default true.
    pub enumeration_on: bool,
    /// `MesosHTTPSOn`: reach the masters over HTTPS. Default false.
    pub mesos_https_on: bool,
    /// `CACertFile`: CA bundle to verify the masters. Default empty.
    pub ca_cert_file: String,
    /// `CertFile`: client certificate for the masters; needs `key_file`. Default empty.
    pub cert_file: String,
    /// `KeyFile`: client key for the masters; needs `cert_file`. Default empty.
    pub key_file: String,
    /// `MesosCredentials`: principal and secret for `basic` authentication. Default empty.
    pub mesos_credentials: MesosCredentials,
    /// `IAMConfigFile`: IAM service-account file for `iam` authentication. Default empty.
    pub iam_config_file: String,
    /// `MesosAuthentication`: `""` (none), `basic` or `iam`. Default empty.
    pub mesos_authentication: String,
}

impl Default for MesosDnsConfig {
    fn default() -> Self {
        Self {
            refresh_seconds: 60,
            port: 53,
            timeout: 5,
            state_timeout_seconds: 300,
            zk_detection_timeout: 30,
            http_port: 8123,
            ttl: 60,
            srv_record_default_weight: 1,
            soa_serial: 0,
            soa_refresh: 60,
            soa_retry: 600,
            soa_expire: 86400,
            soa_minttl: 60,
            soa_mname: "ns1.mesos".to_owned(),
            soa_rname: "root.ns1.mesos".to_owned(),
            masters: Vec::new(),
            zone_resolvers: BTreeMap::new(),
            resolvers: vec!["8.8.8.8".to_owned()],
            ip_sources: ["netinfo", "mesos", "host"].map(str::to_owned).to_vec(),
            zk: String::new(),
            domain: "mesos".to_owned(),
            file: String::new(),
            listener: "0.0.0.0".to_owned(),
            http_listener: "0.0.0.0".to_owned(),
            recurse_on: true,
            dns_on: true,
            http_on: true,
            external_on: true,
            enforce_rfc952: false,
            set_truncate_bit: true,
            enumeration_on: true,
            mesos_https_on: false,
            ca_cert_file: String::new(),
            cert_file: String::new(),
            key_file: String::new(),
            mesos_credentials: MesosCredentials::default(),
            iam_config_file: String::new(),
            mesos_authentication: String::new(),
        }
    }
}

/// HTTP Basic credentials for the Mesos masters (`MesosCredentials`).
///
/// `Debug` hides the secret, so logging a configuration never leaks it.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MesosCredentials {
    /// `Principal`: the user name.
    pub principal: String,
    /// `Secret`: the password.
    pub secret: String,
}

impl fmt::Debug for MesosCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MesosCredentials")
            .field("principal", &self.principal)
            .field("secret", &redact(&self.secret))
            .finish()
    }
}

/// Hides a secret but still shows whether one is set.
fn redact(secret: &str) -> &str {
    if secret.is_empty() { "" } else { REDACTED }
}

impl MesosDnsConfig {
    /// Parses a Mesos-DNS `config.json`, then normalises and validates it as Mesos-DNS does.
    ///
    /// `file` is the path the bytes came from; it names the file in errors and becomes
    /// [`Self::file`] (made absolute).
    pub fn from_json(bytes: &[u8], file: &Path) -> Result<Self, ConfigError> {
        let doc: Json = serde_json::from_slice(bytes).map_err(|e| json_syntax_error(&e, file))?;
        let mut config = Self::default();
        config.apply_json(&doc)?;
        config.finish(file)
    }

    /// Normalises a freshly parsed configuration and validates it: the one path both file
    /// formats go through.
    pub(crate) fn finish(mut self, file: &Path) -> Result<Self, ConfigError> {
        self.normalize();
        self.file = super::absolute_config_path(file)?
            .to_string_lossy()
            .into_owned();
        self.validate()?;
        Ok(self)
    }

    /// Applies Mesos-DNS' rewriting of names (`SetConfig`/`initSOA`), so that records and
    /// `/v1/config` carry the same spellings as Mesos-DNS.
    fn normalize(&mut self) {
        self.domain = self.domain.to_lowercase();
        self.soa_mname = format!("{}.", self.soa_mname.trim_end_matches('.'));
        self.soa_rname = format!(
            "{}.",
            self.soa_rname.replace('@', ".").trim_end_matches('.')
        );
    }

    /// Checks the configuration as Mesos-DNS does at start-up, returning the first problem.
    ///
    /// Resolvers and zone resolvers are only checked when `external_on` is set, because only
    /// then are they used (as in Mesos-DNS). Expects a normalised configuration (lower-case
    /// `domain`), which loading guarantees.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_sources()?;
        validate_masters(&self.masters)?;
        if self.external_on {
            validate_resolvers("resolvers", &self.resolvers)?;
            validate_zone_resolvers(&self.zone_resolvers, &self.domain)?;
        }
        validate_ip_sources(&self.ip_sources)?;
        self.validate_ranges()?;
        if !is_domain_name(&self.domain) {
            return Err(ConfigError::InvalidDomain {
                value: self.domain.clone(),
            });
        }
        self.validate_tls()?;
        self.validate_auth()
    }

    /// Something to serve, and somewhere to get the state from.
    fn validate_sources(&self) -> Result<(), ConfigError> {
        if !self.dns_on && !self.http_on {
            return Err(ConfigError::NoServerEnabled);
        }
        match (self.masters.is_empty(), self.zk.is_empty()) {
            (true, true) => Err(ConfigError::NoMasters),
            (true, false) => Err(ConfigError::ZkUnsupported {
                zk: self.zk.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// Numbers that Mesos-DNS accepts but cannot work with.
    fn validate_ranges(&self) -> Result<(), ConfigError> {
        let checks = [
            (
                "state_timeout_seconds",
                self.state_timeout_seconds,
                1,
                u64::MAX,
                "at least 1",
            ),
            (
                "refresh_seconds",
                self.refresh_seconds,
                1,
                u64::MAX,
                "at least 1",
            ),
            (
                "ttl",
                u64::from(self.ttl),
                0,
                i32::MAX as u64,
                "at most 2147483647",
            ),
        ];
        for (key, value, min, max, expected) in checks {
            if !(min..=max).contains(&value) {
                return Err(ConfigError::OutOfRange {
                    key,
                    value,
                    expected,
                });
            }
        }
        Ok(())
    }

    /// A client certificate is useless without its key, and the other way round.
    fn validate_tls(&self) -> Result<(), ConfigError> {
        let mismatch = |present, value: &str, missing| ConfigError::CertKeyMismatch {
            present,
            value: value.to_owned(),
            missing,
        };
        match (self.cert_file.is_empty(), self.key_file.is_empty()) {
            (false, true) => Err(mismatch("cert_file", &self.cert_file, "key_file")),
            (true, false) => Err(mismatch("key_file", &self.key_file, "cert_file")),
            _ => Ok(()),
        }
    }

    /// The mechanism must be known and have what it needs (`httpcli.Validate`).
    fn validate_auth(&self) -> Result<(), ConfigError> {
        match self.mesos_authentication.as_str() {
            "" => Ok(()),
            "basic" if self.mesos_credentials == MesosCredentials::default() => {
                Err(ConfigError::MissingCredentials)
            }
            "iam" if self.iam_config_file.is_empty() => Err(ConfigError::MissingIamConfigFile),
            "basic" | "iam" => Ok(()),
            other => Err(ConfigError::InvalidMesosAuthentication {
                value: other.to_owned(),
            }),
        }
    }
}

// ------------------------------------------------------------------------------------------
// Validation helpers (records/validation.go)
// ------------------------------------------------------------------------------------------

/// `^[a-zA-Z0-9-]+(\.[a-zA-Z0-9-]+)*$`: Mesos-DNS' domain rule, without a regex engine.
fn is_domain_name(name: &str) -> bool {
    name.split('.').all(|label| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

/// Masters must be unique `host:port` pairs; IP hosts are compared by address.
fn validate_masters(masters: &[String]) -> Result<(), ConfigError> {
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

/// Resolvers must be unique IP or IP:port (port 53 when omitted) addresses.
fn validate_resolvers(key: &str, resolvers: &[String]) -> Result<(), ConfigError> {
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
fn validate_zone_resolvers(
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
fn validate_ip_sources(sources: &[String]) -> Result<(), ConfigError> {
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
fn split_host_port(s: &str) -> Option<(&str, &str)> {
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
fn valid_port(port: &str) -> bool {
    port.parse::<i64>().is_ok_and(|p| (1..=65535).contains(&p))
}

/// Go's `net.ParseIP` followed by `String()`: IPv4-mapped IPv6 addresses are the IPv4 address.
fn parse_ip(host: &str) -> Option<IpAddr> {
    host.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

// ------------------------------------------------------------------------------------------
// Decoding like Go's encoding/json
// ------------------------------------------------------------------------------------------

/// A JSON value whose objects keep their members in document order, duplicates included:
/// Go applies members one by one, so order decides which spelling of a key wins.
enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Self>),
    Object(Vec<(String, Self)>),
}

impl Json {
    /// Describes the value for an error message.
    fn describe(&self) -> String {
        match self {
            Self::Null => "null".to_owned(),
            Self::Bool(b) => format!("boolean {b}"),
            Self::Number(n) => format!("number {n}"),
            Self::String(s) => format!("string {s:?}"),
            Self::Array(_) => "an array".to_owned(),
            Self::Object(_) => "an object".to_owned(),
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

/// Builds a [`Json`] from serde_json's events.
struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a json value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        serde_json::Number::from_f64(v)
            .map(Json::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members = Vec::new();
        while let Some(member) = map.next_entry()? {
            members.push(member);
        }
        Ok(Json::Object(members))
    }
}

/// Turns a serde_json syntax error into one that names the file and position.
fn json_syntax_error(error: &serde_json::Error, file: &Path) -> ConfigError {
    let full = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    ConfigError::Json {
        path: file.to_path_buf(),
        line: error.line(),
        column: error.column(),
        message: full.strip_suffix(&suffix).unwrap_or(&full).to_owned(),
    }
}

/// Stores one JSON member into the field it names; `key` is the spelling used in the document.
type Setter = fn(&mut MesosDnsConfig, &Json, &str) -> Result<(), ConfigError>;

/// The Go field names (or JSON tags) of `records.Config`, with where each one goes.
const FIELDS: &[(&str, Setter)] = &[
    ("RefreshSeconds", |c, v, k| {
        set_uint(&mut c.refresh_seconds, v, k)
    }),
    ("Port", |c, v, k| set_uint(&mut c.port, v, k)),
    ("Timeout", |c, v, k| set_uint(&mut c.timeout, v, k)),
    ("StateTimeoutSeconds", |c, v, k| {
        set_uint(&mut c.state_timeout_seconds, v, k)
    }),
    ("ZkDetectionTimeout", |c, v, k| {
        set_uint(&mut c.zk_detection_timeout, v, k)
    }),
    ("HttpPort", |c, v, k| set_uint(&mut c.http_port, v, k)),
    ("TTL", |c, v, k| set_uint(&mut c.ttl, v, k)),
    ("SRVRecordDefaultWeight", |c, v, k| {
        set_uint(&mut c.srv_record_default_weight, v, k)
    }),
    ("SOASerial", |c, v, k| set_uint(&mut c.soa_serial, v, k)),
    ("SOARefresh", |c, v, k| set_uint(&mut c.soa_refresh, v, k)),
    ("SOARetry", |c, v, k| set_uint(&mut c.soa_retry, v, k)),
    ("SOAExpire", |c, v, k| set_uint(&mut c.soa_expire, v, k)),
    ("SOAMinttl", |c, v, k| set_uint(&mut c.soa_minttl, v, k)),
    ("SOAMname", |c, v, k| set_string(&mut c.soa_mname, v, k)),
    ("SOARname", |c, v, k| set_string(&mut c.soa_rname, v, k)),
    ("Masters", |c, v, k| set_strings(&mut c.masters, v, k)),
    ("ZoneResolvers", |c, v, k| {
        set_zone_resolvers(&mut c.zone_resolvers, v, k)
    }),
    ("Resolvers", |c, v, k| set_strings(&mut c.resolvers, v, k)),
    ("IPSources", |c, v, k| set_strings(&mut c.ip_sources, v, k)),
    ("Zk", |c, v, k| set_string(&mut c.zk, v, k)),
    ("Domain", |c, v, k| set_string(&mut c.domain, v, k)),
    // Type-checked like Go, then replaced by the real path in `finish`.
    ("File", |c, v, k| set_string(&mut c.file, v, k)),
    ("Listener", |c, v, k| set_string(&mut c.listener, v, k)),
    ("HTTPListener", |c, v, k| {
        set_string(&mut c.http_listener, v, k)
    }),
    ("RecurseOn", |c, v, k| set_bool(&mut c.recurse_on, v, k)),
    ("DnsOn", |c, v, k| set_bool(&mut c.dns_on, v, k)),
    ("HttpOn", |c, v, k| set_bool(&mut c.http_on, v, k)),
    ("ExternalOn", |c, v, k| set_bool(&mut c.external_on, v, k)),
    ("EnforceRFC952", |c, v, k| {
        set_bool(&mut c.enforce_rfc952, v, k)
    }),
    ("SetTruncateBit", |c, v, k| {
        set_bool(&mut c.set_truncate_bit, v, k)
    }),
    ("EnumerationOn", |c, v, k| {
        set_bool(&mut c.enumeration_on, v, k)
    }),
    ("MesosHTTPSOn", |c, v, k| {
        set_bool(&mut c.mesos_https_on, v, k)
    }),
    ("CACertFile", |c, v, k| {
        set_string(&mut c.ca_cert_file, v, k)
    }),
    ("CertFile", |c, v, k| set_string(&mut c.cert_file, v, k)),
    ("KeyFile", |c, v, k| set_string(&mut c.key_file, v, k)),
    ("MesosCredentials", |c, v, k| {
        set_credentials(&mut c.mesos_credentials, v, k)
    }),
    ("IAMConfigFile", |c, v, k| {
        set_string(&mut c.iam_config_file, v, k)
    }),
    ("MesosAuthentication", |c, v, k| {
        set_string(&mut c.mesos_authentication, v, k)
    }),
];

/// Picks one string member out of the credentials.
type CredentialField = fn(&mut MesosCredentials) -> &mut String;

/// The members of `basic.Credentials`.
const CREDENTIAL_FIELDS: &[(&str, CredentialField)] = &[
    ("Principal", |c| &mut c.principal),
    ("Secret", |c| &mut c.secret),
];

impl MesosDnsConfig {
    /// Applies the document's members in order, as `json.Unmarshal` into a `Config` would.
    fn apply_json(&mut self, doc: &Json) -> Result<(), ConfigError> {
        let members = match doc {
            Json::Null => return Ok(()),
            Json::Object(members) => members,
            other => return Err(wrong_type("(document)", "an object", other)),
        };
        for (key, value) in members {
            if let Some((_, set)) = FIELDS.iter().find(|(name, _)| go_fold_eq(name, key)) {
                set(self, value, key)?;
            }
        }
        Ok(())
    }
}

/// Go's case-insensitive field matching (`encoding/json` fold.go): ASCII letters match either
/// case, and Go also lets `ſ` (U+017F) match `s` and the Kelvin sign (U+212A) match `k`.
fn go_fold_eq(field: &str, key: &str) -> bool {
    let mut key_chars = key.chars();
    let all_match = field.chars().all(|f| {
        key_chars.next().is_some_and(|k| {
            k.eq_ignore_ascii_case(&f)
                || (f.eq_ignore_ascii_case(&'s') && k == '\u{17F}')
                || (f.eq_ignore_ascii_case(&'k') && k == '\u{212A}')
        })
    });
    all_match && key_chars.next().is_none()
}

/// The error for a member of the wrong JSON type or range.
fn wrong_type(key: &str, expected: &str, found: &Json) -> ConfigError {
    ConfigError::WrongType {
        key: key.to_owned(),
        expected: expected.to_owned(),
        found: found.describe(),
    }
}

/// Unsigned integer fields; `null` leaves the value alone, as in Go.
fn set_uint<T>(slot: &mut T, value: &Json, key: &str) -> Result<(), ConfigError>
where
    T: TryFrom<u64> + UintMax,
{
    match value {
        Json::Null => Ok(()),
        Json::Number(n) => match n.as_u64().map(T::try_from) {
            Some(Ok(v)) => {
                *slot = v;
                Ok(())
            }
            _ => Err(wrong_type(
                key,
                &format!("an integer in 0..={}", T::LIMIT),
                value,
            )),
        },
        other => Err(wrong_type(
            key,
            &format!("an integer in 0..={}", T::LIMIT),
            other,
        )),
    }
}

/// The largest value of an unsigned field, for error messages.
trait UintMax {
    /// `Self::MAX` as a u64.
    const LIMIT: u64;
}

impl UintMax for u16 {
    const LIMIT: u64 = Self::MAX as u64;
}

impl UintMax for u32 {
    const LIMIT: u64 = Self::MAX as u64;
}

impl UintMax for u64 {
    const LIMIT: Self = Self::MAX;
}

/// Boolean fields; `null` leaves the value alone.
fn set_bool(slot: &mut bool, value: &Json, key: &str) -> Result<(), ConfigError> {
    match value {
        Json::Null => Ok(()),
        Json::Bool(b) => {
            *slot = *b;
            Ok(())
        }
        other => Err(wrong_type(key, "a boolean", other)),
    }
}

/// String fields; `null` leaves the value alone.
fn set_string(slot: &mut String, value: &Json, key: &str) -> Result<(), ConfigError> {
    match value {
        Json::Null => Ok(()),
        Json::String(s) => {
            s.clone_into(slot);
            Ok(())
        }
        other => Err(wrong_type(key, "a string", other)),
    }
}

/// String lists; `null` empties the list (Go sets the slice to nil).
fn set_strings(slot: &mut Vec<String>, value: &Json, key: &str) -> Result<(), ConfigError> {
    match value {
        Json::Null => {
            slot.clear();
            Ok(())
        }
        Json::Array(items) => {
            *slot = strings(items, key)?;
            Ok(())
        }
        other => Err(wrong_type(key, "an array of strings", other)),
    }
}

/// The elements of a string array; a `null` element is "" as in Go.
fn strings(items: &[Json], key: &str) -> Result<Vec<String>, ConfigError> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Json::Null => Ok(String::new()),
            Json::String(s) => Ok(s.clone()),
            other => Err(wrong_type(&format!("{key}[{i}]"), "a string", other)),
        })
        .collect()
}

/// The zone map; Go merges an object into the existing map and `null` empties it.
fn set_zone_resolvers(
    slot: &mut BTreeMap<String, Vec<String>>,
    value: &Json,
    key: &str,
) -> Result<(), ConfigError> {
    let members = match value {
        Json::Null => {
            slot.clear();
            return Ok(());
        }
        Json::Object(members) => members,
        other => return Err(wrong_type(key, "an object of string arrays", other)),
    };
    for (zone, resolvers) in members {
        let mut list = Vec::new();
        set_strings(&mut list, resolvers, &format!("{key}.{zone}"))?;
        slot.insert(zone.clone(), list);
    }
    Ok(())
}

/// The credentials object; Go merges it into the existing struct and `null` leaves it alone.
fn set_credentials(
    slot: &mut MesosCredentials,
    value: &Json,
    key: &str,
) -> Result<(), ConfigError> {
    let members = match value {
        Json::Null => return Ok(()),
        Json::Object(members) => members,
        other => return Err(wrong_type(key, "an object", other)),
    };
    for (member, value) in members {
        if let Some((_, field)) = CREDENTIAL_FIELDS
            .iter()
            .find(|(name, _)| go_fold_eq(name, member))
        {
            set_string(field(slot), value, &format!("{key}.{member}"))?;
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// /v1/config, rendered like Go's json.MarshalIndent(v, " ", " ")
// ------------------------------------------------------------------------------------------

/// A JSON value in the shape Go produces: objects keep the order they are built in.
enum GoValue<'a> {
    Null,
    Bool(bool),
    UInt(u64),
    Str(&'a str),
    Array(Vec<Self>),
    Object(Vec<(&'a str, Self)>),
}

impl MesosDnsConfig {
    /// The `/v1/config` body, byte for byte as Mesos-DNS (go-restful, `json.MarshalIndent`
    /// with prefix and indent of one space) writes it: Go field names in struct order, no
    /// trailing newline.
    ///
    /// One deliberate difference: a non-empty `MesosCredentials.Secret` is shown as
    /// `"<redacted>"` (written `"\u003credacted\u003e"`, since Go escapes `<` and `>`).
    /// Mesos-DNS showed the secret to anyone who could reach the API; Beacon never does.
    /// As in Go, empty `Masters` renders as `null` (the Go default is a nil slice).
    pub fn to_api_json_string(&self) -> String {
        let mut out = String::new();
        write_go_json(&self.api_value(), 0, &mut out);
        out
    }

    /// The `/v1/config` body as a [`serde_json::Value`], with the same content as
    /// [`Self::to_api_json_string`] (secret redacted). Without serde_json's `preserve_order`
    /// feature its keys are sorted, so serve [`Self::to_api_json_string`] when the exact
    /// Mesos-DNS bytes matter.
    pub fn to_api_json(&self) -> serde_json::Value {
        to_serde_value(&self.api_value())
    }

    /// The Go `records.Config` struct, as the encoder sees it.
    fn api_value(&self) -> GoValue<'_> {
        use GoValue::{Bool, Str, UInt};
        let masters = if self.masters.is_empty() {
            GoValue::Null
        } else {
            str_array(&self.masters)
        };
        let zones = self
            .zone_resolvers
            .iter()
            .map(|(zone, rs)| (zone.as_str(), str_array(rs)))
            .collect();
        let credentials = GoValue::Object(vec![
            ("Principal", Str(&self.mesos_credentials.principal)),
            ("Secret", Str(redact(&self.mesos_credentials.secret))),
        ]);
        GoValue::Object(vec![
            ("RefreshSeconds", UInt(self.refresh_seconds)),
            ("Port", UInt(self.port.into())),
            ("Timeout", UInt(self.timeout)),
            ("StateTimeoutSeconds", UInt(self.state_timeout_seconds)),
            ("ZkDetectionTimeout", UInt(self.zk_detection_timeout)),
            ("HttpPort", UInt(self.http_port.into())),
            ("TTL", UInt(self.ttl.into())),
            (
                "SRVRecordDefaultWeight",
                UInt(self.srv_record_default_weight.into()),
            ),
            ("SOASerial", UInt(self.soa_serial.into())),
            ("SOARefresh", UInt(self.soa_refresh.into())),
            ("SOARetry", UInt(self.soa_retry.into())),
            ("SOAExpire", UInt(self.soa_expire.into())),
            ("SOAMinttl", UInt(self.soa_minttl.into())),
            ("SOAMname", Str(&self.soa_mname)),
            ("SOARname", Str(&self.soa_rname)),
            ("Masters", masters),
            ("ZoneResolvers", GoValue::Object(zones)),
            ("Resolvers", str_array(&self.resolvers)),
            ("IPSources", str_array(&self.ip_sources)),
            ("Zk", Str(&self.zk)),
            ("Domain", Str(&self.domain)),
            ("File", Str(&self.file)),
            ("Listener", Str(&self.listener)),
            ("HTTPListener", Str(&self.http_listener)),
            ("RecurseOn", Bool(self.recurse_on)),
            ("DnsOn", Bool(self.dns_on)),
            ("HttpOn", Bool(self.http_on)),
            ("ExternalOn", Bool(self.external_on)),
            ("EnforceRFC952", Bool(self.enforce_rfc952)),
            ("SetTruncateBit", Bool(self.set_truncate_bit)),
            ("EnumerationOn", Bool(self.enumeration_on)),
            ("MesosHTTPSOn", Bool(self.mesos_https_on)),
            ("CACertFile", Str(&self.ca_cert_file)),
            ("CertFile", Str(&self.cert_file)),
            ("KeyFile", Str(&self.key_file)),
            ("MesosCredentials", credentials),
            ("IAMConfigFile", Str(&self.iam_config_file)),
            ("MesosAuthentication", Str(&self.mesos_authentication)),
        ])
    }
}

/// A list of strings (a Go `[]string`).
fn str_array(list: &[String]) -> GoValue<'_> {
    GoValue::Array(list.iter().map(|s| GoValue::Str(s)).collect())
}

/// Writes `value` as Go's `MarshalIndent(v, " ", " ")` would, `depth` levels deep: each new
/// line starts with the prefix (one space) plus one space per level; empty containers stay
/// `[]`/`{}`.
fn write_go_json(value: &GoValue<'_>, depth: usize, out: &mut String) {
    match value {
        GoValue::Null => out.push_str("null"),
        GoValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        GoValue::UInt(n) => out.push_str(&n.to_string()),
        GoValue::Str(s) => write_go_string(s, out),
        GoValue::Array(items) => write_container(('[', ']'), items, depth, out, |item, out| {
            write_go_json(item, depth + 1, out);
        }),
        GoValue::Object(members) => {
            write_container(('{', '}'), members, depth, out, |(key, item), out| {
                write_go_string(key, out);
                out.push_str(": ");
                write_go_json(item, depth + 1, out);
            })
        }
    }
}

/// Writes the brackets, line breaks and commas around a container's elements.
fn write_container<T>(
    (open, close): (char, char),
    elements: &[T],
    depth: usize,
    out: &mut String,
    mut write_element: impl FnMut(&T, &mut String),
) {
    out.push(open);
    for (i, element) in elements.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        go_newline(depth + 1, out);
        write_element(element, out);
    }
    if !elements.is_empty() {
        go_newline(depth, out);
    }
    out.push(close);
}

/// A line break followed by the one-space prefix and `depth` one-space indents.
fn go_newline(depth: usize, out: &mut String) {
    out.push('\n');
    out.extend(std::iter::repeat_n(' ', depth + 1));
}

/// A string as Go's encoder writes it with HTML escaping on (the default): `<`, `>`, `&`,
/// U+2028, U+2029 and control characters become `\uXXXX` (lower-case hex), except `\n`, `\r`
/// and `\t`.
fn write_go_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' | '\0'..='\u{1f}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Converts to serde_json's value type for callers that want to inspect or re-encode it.
fn to_serde_value(value: &GoValue<'_>) -> serde_json::Value {
    use serde_json::Value;
    match value {
        GoValue::Null => Value::Null,
        GoValue::Bool(b) => Value::Bool(*b),
        GoValue::UInt(n) => Value::from(*n),
        GoValue::Str(s) => Value::from(*s),
        GoValue::Array(items) => items.iter().map(to_serde_value).collect(),
        GoValue::Object(members) => Value::Object(
            members
                .iter()
                .map(|(key, item)| ((*key).to_owned(), to_serde_value(item)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::conformance_dir;

    fn load(json: &str) -> Result<MesosDnsConfig, ConfigError> {
        MesosDnsConfig::from_json(json.as_bytes(), Path::new("/etc/mesos-dns/config.json"))
    }

    fn with_masters(extra: &str) -> String {
        format!(r#"{{"masters": ["10.0.0.1:5050"]{extra}}}"#)
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = conformance_dir().join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn strings_of(value: &serde_json::Value) -> Vec<String> {
        match value {
            serde_json::Value::Null => Vec::new(),
            v => v
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_owned())
                .collect(),
        }
    }

    fn validation_table(name: &str) -> Vec<serde_json::Value> {
        let doc: serde_json::Value =
            serde_json::from_slice(&fixture("expected-config-validation.json")).unwrap();
        doc[name].as_array().unwrap().clone()
    }

    #[test]
    fn defaults_are_mesos_dns_new_config() {
        let c = MesosDnsConfig::default();
        assert_eq!(
            (
                c.refresh_seconds,
                c.port,
                c.timeout,
                c.state_timeout_seconds
            ),
            (60, 53, 5, 300)
        );
        assert_eq!(
            (
                c.zk_detection_timeout,
                c.http_port,
                c.ttl,
                c.srv_record_default_weight
            ),
            (30, 8123, 60, 1)
        );
        assert_eq!(
            (c.soa_refresh, c.soa_retry, c.soa_expire, c.soa_minttl),
            (60, 600, 86400, 60)
        );
        assert_eq!(
            (c.soa_mname.as_str(), c.soa_rname.as_str()),
            ("ns1.mesos", "root.ns1.mesos")
        );
        assert_eq!(c.resolvers, ["8.8.8.8"]);
        assert_eq!(c.ip_sources, ["netinfo", "mesos", "host"]);
        assert_eq!(
            (
                c.domain.as_str(),
                c.listener.as_str(),
                c.http_listener.as_str()
            ),
            ("mesos", "0.0.0.0", "0.0.0.0")
        );
        assert!(
            c.recurse_on
                && c.dns_on
                && c.http_on
                && c.external_on
                && c.set_truncate_bit
                && c.enumeration_on
        );
        assert!(!c.enforce_rfc952 && !c.mesos_https_on);
        assert!(c.masters.is_empty() && c.zone_resolvers.is_empty() && c.zk.is_empty());
    }

    #[test]
    fn scenario_a_renders_byte_identical_to_mesos_dns() {
        let mut c = MesosDnsConfig::from_json(
            &fixture("config-A-defaults.json"),
            Path::new("/etc/mesos-dns/config-A-defaults.json"),
        )
        .unwrap();
        c.soa_serial = 1_795_364_727;
        let expected = String::from_utf8(fixture("http/scenario-A/v1_config.body")).unwrap();
        assert_eq!(c.to_api_json_string(), expected);
    }

    #[test]
    fn scenario_b_renders_byte_identical_to_mesos_dns() {
        let mut c = MesosDnsConfig::from_json(
            &fixture("config-B-testlike.json"),
            Path::new("/etc/mesos-dns/config-B-testlike.json"),
        )
        .unwrap();
        c.soa_serial = 1_795_364_762;
        let expected = String::from_utf8(fixture("http/scenario-B/v1_config.json")).unwrap();
        assert_eq!(c.to_api_json_string(), expected);
    }

    #[test]
    fn api_json_value_has_the_same_content() {
        let c = load(&with_masters(
            r#", "zoneresolvers": {"weave": ["1.2.3.4"]}"#,
        ))
        .unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&c.to_api_json_string()).unwrap();
        assert_eq!(c.to_api_json(), parsed);
        assert_eq!(parsed["ZoneResolvers"]["weave"][0], "1.2.3.4");
    }

    #[test]
    fn nested_values_are_indented_like_go() {
        let c = load(&with_masters(
            r#", "zoneresolvers": {"b": ["1.2.3.4"], "a": ["5.6.7.8", "::1"]}"#,
        ))
        .unwrap();
        let body = c.to_api_json_string();
        let expected = " \"ZoneResolvers\": {\n   \"a\": [\n    \"5.6.7.8\",\n    \"::1\"\n   ],\n   \"b\": [\n    \"1.2.3.4\"\n   ]\n  },\n";
        assert!(body.contains(expected), "{body}");
        assert!(
            MesosDnsConfig::default()
                .to_api_json_string()
                .contains("\"Masters\": null,\n")
        );
    }

    #[test]
    fn secret_is_never_shown() {
        let c = load(&with_masters(
            r#", "mesosauthentication": "basic", "mesoscredentials": {"principal": "p", "secret": "hunter2"}"#,
        ))
        .unwrap();
        assert_eq!(c.mesos_credentials.secret, "hunter2");
        let body = c.to_api_json_string();
        assert!(!body.contains("hunter2"));
        assert!(
            body.contains("\"Secret\": \"\\u003credacted\\u003e\""),
            "{body}"
        );
        assert_eq!(c.to_api_json()["MesosCredentials"]["Secret"], REDACTED);
        assert_eq!(c.to_api_json()["MesosCredentials"]["Principal"], "p");
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn strings_are_escaped_like_go() {
        let mut out = String::new();
        write_go_string("a\"b\\c\n\t\r\u{1}<>&\u{2028}é", &mut out);
        assert_eq!(out, r#""a\"b\\c\n\t\r\u0001\u003c\u003e\u0026\u2028é""#);
    }

    #[test]
    fn keys_match_case_insensitively_like_go() {
        for key in ["httpport", "HttpPort", "HTTPPORT", "hTtPpOrT"] {
            let c = load(&with_masters(&format!(r#", "{key}": 9000"#))).unwrap();
            assert_eq!(c.http_port, 9000, "{key}");
        }
        let c = load(&with_masters(
            r#", "DNSON": false, "ipsources": ["host"], "enforcerfc952": true"#,
        ))
        .unwrap();
        assert!(!c.dns_on && c.enforce_rfc952);
        assert_eq!(c.ip_sources, ["host"]);
        // Go's fold also lets U+017F match 's' and U+212A (Kelvin) match 'k'.
        let c = load(&with_masters(
            r#", "ſoaſerial": 7, "z\u212a": "zk://x/mesos""#,
        ))
        .unwrap();
        assert_eq!((c.soa_serial, c.zk.as_str()), (7, "zk://x/mesos"));
        assert!(
            !go_fold_eq("Port", "Ports") && !go_fold_eq("TTL", "TT") && !go_fold_eq("Port", "Pört")
        );
    }

    #[test]
    fn last_spelling_of_a_key_wins() {
        let c = load(&with_masters(
            r#", "HttpPort": 1, "httpport": 2, "HTTPPORT": 3"#,
        ))
        .unwrap();
        assert_eq!(c.http_port, 3);
        let c = load(r#"{"Masters": ["a:1"], "masters": ["b:2"]}"#).unwrap();
        assert_eq!(c.masters, ["b:2"]);
    }

    #[test]
    fn unknown_keys_are_ignored_and_missing_keys_keep_defaults() {
        let c = load(&with_masters(
            r#", "email": "root.mesos", "ns": "ns1", "nested": {"x": [1]}"#,
        ))
        .unwrap();
        assert_eq!(c.ttl, 60);
        assert_eq!(c.resolvers, ["8.8.8.8"]);
    }

    #[test]
    fn null_follows_go_semantics() {
        let c = load(&with_masters(
            r#", "ttl": null, "domain": null, "resolvers": null, "zoneresolvers": null"#,
        ))
        .unwrap();
        assert_eq!((c.ttl, c.domain.as_str()), (60, "mesos"));
        assert!(c.resolvers.is_empty());
        assert!(matches!(
            load(&with_masters(r#", "ipsources": null"#)),
            Err(ConfigError::EmptyIpSources)
        ));
        assert!(matches!(load("null"), Err(ConfigError::NoMasters)));
    }

    #[test]
    fn wrong_types_name_the_key_and_expected_type() {
        let cases = [
            (
                r#", "HttpPort": "8123""#,
                "HttpPort",
                "an integer in 0..=65535",
            ),
            (r#", "port": 70000"#, "port", "an integer in 0..=65535"),
            (r#", "ttl": -1"#, "ttl", "an integer in 0..=4294967295"),
            (r#", "refreshSeconds": 1.5"#, "refreshSeconds", "an integer"),
            (r#", "dnson": "yes""#, "dnson", "a boolean"),
            (r#", "domain": 5"#, "domain", "a string"),
            (
                r#", "resolvers": "8.8.8.8""#,
                "resolvers",
                "an array of strings",
            ),
            (
                r#", "resolvers": ["8.8.8.8", 1]"#,
                "resolvers[1]",
                "a string",
            ),
            (r#", "zoneresolvers": []"#, "zoneresolvers", "an object"),
            (
                r#", "zoneresolvers": {"weave": [true]}"#,
                "zoneresolvers.weave[0]",
                "a string",
            ),
            (
                r#", "mesoscredentials": {"secret": 1}"#,
                "mesoscredentials.secret",
                "a string",
            ),
        ];
        for (extra, key, expected) in cases {
            let err = load(&with_masters(extra)).unwrap_err();
            let ConfigError::WrongType {
                key: k,
                expected: e,
                ..
            } = &err
            else {
                panic!("{extra}: {err}")
            };
            assert_eq!(k, key, "{extra}");
            assert!(e.starts_with(expected), "{extra}: {err}");
            assert!(err.to_string().contains(key), "{err}");
        }
        assert!(matches!(load("[1]"), Err(ConfigError::WrongType { .. })));
    }

    #[test]
    fn malformed_json_reports_line_and_column() {
        let err = load("{\n  \"masters\": [\"a:1\"],\n  \"port\": ,\n}").unwrap_err();
        let ConfigError::Json {
            line,
            column,
            message,
            ..
        } = &err
        else {
            panic!("{err}")
        };
        assert_eq!((*line, *column), (3, 11));
        assert!(!message.contains("at line"), "{message}");
        assert!(err.to_string().contains("line 3, column 11"), "{err}");
        assert!(matches!(
            load(r#"{"masters": ["a:1"]} x"#),
            Err(ConfigError::Json { .. })
        ));
    }

    #[test]
    fn names_are_normalised_like_mesos_dns() {
        let c = load(&with_masters(r#", "domain": "DC.Mesos", "soamname": "NS1.dc.mesos..", "soarname": "admin@example.org""#)).unwrap();
        assert_eq!(c.domain, "dc.mesos");
        assert_eq!(c.soa_mname, "NS1.dc.mesos.");
        assert_eq!(c.soa_rname, "admin.example.org.");
        assert_eq!(c.file, "/etc/mesos-dns/config.json");
        let c = load(&with_masters(r#", "file": "/somewhere/else""#)).unwrap();
        assert_eq!(c.file, "/etc/mesos-dns/config.json");
        let rel =
            MesosDnsConfig::from_json(with_masters("").as_bytes(), Path::new("./x/../config.json"))
                .unwrap();
        assert!(
            Path::new(&rel.file).is_absolute()
                && rel.file.ends_with("/config.json")
                && !rel.file.contains("..")
        );
    }

    #[test]
    fn domain_names_table() {
        for case in validation_table("domain_names") {
            let domain = case["domain"].as_str().unwrap();
            assert_eq!(
                is_domain_name(domain),
                case["valid"].as_bool().unwrap(),
                "{domain:?}"
            );
        }
        let err = load(&with_masters(r#", "domain": "invalid.com.""#)).unwrap_err();
        assert!(matches!(err, ConfigError::InvalidDomain { .. }), "{err}");
    }

    #[test]
    fn masters_table() {
        for case in validation_table("masters") {
            let input = strings_of(&case["input"]);
            let valid = case["valid"].as_bool().unwrap();
            assert_eq!(validate_masters(&input).is_ok(), valid, "{input:?}");
        }
    }

    #[test]
    fn resolvers_table() {
        for case in validation_table("resolvers") {
            let input = strings_of(&case["input"]);
            let valid = case["valid"].as_bool().unwrap();
            assert_eq!(
                validate_resolvers("resolvers", &input).is_ok(),
                valid,
                "{input:?}"
            );
        }
    }

    /// Turns the table's Go literal (`map[string][]string{"weave": ips}`) into a map.
    fn parse_go_zone_map(raw: &str) -> BTreeMap<String, Vec<String>> {
        let Some(body) = raw
            .strip_prefix("map[string][]string{")
            .and_then(|r| r.strip_suffix('}'))
        else {
            assert_eq!(raw, "nil");
            return BTreeMap::new();
        };
        body.split(", ")
            .map(|entry| {
                let (zone, list) = entry.split_once(": ").unwrap();
                let resolvers = match list {
                    "ips" => vec!["8.8.8.8".to_owned()],
                    "[]string{}" => Vec::new(),
                    other => panic!("unexpected list {other}"),
                };
                (zone.trim_matches('"').to_owned(), resolvers)
            })
            .collect()
    }

    #[test]
    fn zone_resolvers_table() {
        let cases = validation_table("zone_resolvers_with_mesos_domain_dc.mesos");
        assert_eq!(cases.len(), 10);
        for case in cases {
            let raw = case["input_raw_go"].as_str().unwrap();
            let zones = parse_go_zone_map(raw);
            let valid = case["valid"].as_bool().unwrap();
            assert_eq!(
                validate_zone_resolvers(&zones, "dc.mesos").is_ok(),
                valid,
                "{raw}"
            );
        }
    }

    #[test]
    fn zone_resolver_errors_name_the_zone() {
        let err = load(&with_masters(
            r#", "zoneresolvers": {"weave": ["8.8.8.8", "8.8.8.8:53"]}"#,
        ))
        .unwrap_err();
        assert!(
            err.to_string().contains("zone_resolvers.\"weave\""),
            "{err}"
        );
        let err = load(&with_masters(
            r#", "zoneresolvers": {"Weave": ["1.1.1.1"], "weave": ["1.1.1.1"]}"#,
        ))
        .unwrap_err();
        assert!(matches!(err, ConfigError::OverlappingZones { .. }), "{err}");
        // Not checked when forwarding is off, as in Mesos-DNS.
        assert!(
            load(&with_masters(
                r#", "externalon": false, "zoneresolvers": {"mesos": []}"#
            ))
            .is_ok()
        );
    }

    #[test]
    fn resolver_and_master_identities() {
        assert!(validate_resolvers("r", &["1.2.3.4".into(), "1.2.3.4:53".into()]).is_err());
        assert!(
            validate_resolvers("r", &["1.2.3.4".into(), "[::ffff:1.2.3.4]:53".into()]).is_err()
        );
        assert!(validate_resolvers("r", &["[::1]".into()]).is_err());
        assert!(validate_masters(&["[::1]:5050".into(), "[0::1]:5050".into()]).is_err());
        assert!(validate_masters(&["a:01".into(), "a:1".into()]).is_ok());
        assert!(validate_masters(&[":5050".into()]).is_err());
        assert!(validate_masters(&["[::1]x:1".into(), "a:b:1".into()]).is_err());
        let err = validate_masters(&["a".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid masters entry \"a\": expected host:port"
        );
    }

    #[test]
    fn zk_only_is_an_explained_error_and_zk_with_masters_passes() {
        let err = load(r#"{"zk": "zk://10.0.0.1:2181/mesos"}"#).unwrap_err();
        assert!(matches!(err, ConfigError::ZkUnsupported { .. }));
        let message = err.to_string();
        assert!(
            message.contains("zookeeper") && message.contains("masters"),
            "{message}"
        );
        assert!(load(&with_masters(r#", "zk": "zk://10.0.0.1:2181/mesos""#)).is_ok());
        assert!(matches!(load("{}"), Err(ConfigError::NoMasters)));
    }

    #[test]
    fn other_validation_rules() {
        let fails = |extra: &str| load(&with_masters(extra)).unwrap_err();
        assert!(matches!(
            fails(r#", "dnson": false, "httpon": false"#),
            ConfigError::NoServerEnabled
        ));
        assert!(matches!(
            fails(r#", "ipsources": []"#),
            ConfigError::EmptyIpSources
        ));
        assert!(matches!(
            fails(r#", "ipsources": ["host", "host"]"#),
            ConfigError::DuplicateIpSource { .. }
        ));
        assert!(matches!(
            fails(r#", "ipsources": ["rkt"]"#),
            ConfigError::InvalidIpSource { .. }
        ));
        assert!(matches!(
            fails(r#", "statetimeoutseconds": 0"#),
            ConfigError::OutOfRange {
                key: "state_timeout_seconds",
                ..
            }
        ));
        assert!(matches!(
            fails(r#", "refreshseconds": 0"#),
            ConfigError::OutOfRange {
                key: "refresh_seconds",
                ..
            }
        ));
        assert!(matches!(
            fails(r#", "ttl": 2147483648"#),
            ConfigError::OutOfRange { key: "ttl", .. }
        ));
        assert!(matches!(
            fails(r#", "certfile": "c.pem""#),
            ConfigError::CertKeyMismatch {
                missing: "key_file",
                ..
            }
        ));
        assert!(matches!(
            fails(r#", "keyfile": "k.pem""#),
            ConfigError::CertKeyMismatch {
                missing: "cert_file",
                ..
            }
        ));
        assert!(matches!(
            fails(r#", "mesosauthentication": "token""#),
            ConfigError::InvalidMesosAuthentication { .. }
        ));
        assert!(matches!(
            fails(r#", "mesosauthentication": "basic""#),
            ConfigError::MissingCredentials
        ));
        assert!(matches!(
            fails(r#", "mesosauthentication": "iam""#),
            ConfigError::MissingIamConfigFile
        ));
        assert!(matches!(
            fails(r#", "resolvers": ["dns.google"]"#),
            ConfigError::InvalidResolver { .. }
        ));
        assert!(load(&with_masters(r#", "certfile": "c.pem", "keyfile": "k.pem", "mesosauthentication": "iam", "iamconfigfile": "/iam.json""#)).is_ok());
        assert!(load(&with_masters(r#", "dnson": false, "resolvers": []"#)).is_ok());
        assert!(
            load(&with_masters(
                r#", "externalon": false, "resolvers": ["bad"]"#
            ))
            .is_ok()
        );
    }

    #[test]
    fn split_host_port_matches_go() {
        assert_eq!(split_host_port("a:1"), Some(("a", "1")));
        assert_eq!(split_host_port("[::1]:53"), Some(("::1", "53")));
        assert_eq!(split_host_port(":80"), Some(("", "80")));
        assert_eq!(split_host_port("a:"), Some(("a", "")));
        for bad in [
            "a",
            "::1",
            "[::1]",
            "[::1]:",
            "[::1]:1:2",
            "a:b:c",
            "[a]b:1",
            "a]:1",
            "[a:1",
        ] {
            if bad == "[::1]:" {
                assert_eq!(split_host_port(bad), Some(("::1", "")));
            } else {
                assert_eq!(split_host_port(bad), None, "{bad}");
            }
        }
        assert!(
            valid_port("+53")
                && !valid_port("-1")
                && !valid_port("")
                && !valid_port("65536")
                && !valid_port("0")
        );
    }
}

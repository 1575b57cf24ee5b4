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
//! * `zk` is checked at start-up (Mesos-DNS only failed later, when detection began); with both
//!   `zk` and `masters`, ZooKeeper leads and `masters` is the fallback.
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
    /// `Masters`: Mesos masters as `host:port`, unique. Default empty (then `zk` is required);
    /// with `zk`, the fallback when ZooKeeper names no master.
    pub masters: Vec<String>,
    /// `ZoneResolvers`: per-zone upstream resolvers (IP or IP:port). Default empty.
    pub zone_resolvers: BTreeMap<String, Vec<String>>,
    /// `Resolvers`: upstream resolvers for names outside the domain, as IP or IP:port (port 53
    /// if omitted), unique. Default `["8.8.8.8"]`. Empty means "use `/etc/resolv.conf`".
    pub resolvers: Vec<String>,
    /// `IPSources`: where task addresses come from, in priority order; each of `host`,
    /// `docker`, `mesos`, `netinfo`, unique, non-empty. Default `["netinfo", "mesos", "host"]`.
    pub ip_sources: Vec<String>,
    /// `Zk`: ZooKeeper URL (`zk://host1:port1,host2:port2/mesos`) the masters register in; the
    /// masters it names lead, the leader first. Default empty.
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
        config.finish(file, true)
    }

    /// Normalises a freshly parsed configuration and validates it: the one path both file
    /// formats go through.
    pub(crate) fn finish(
        mut self,
        file: &Path,
        masters_required: bool,
    ) -> Result<Self, ConfigError> {
        self.normalize();
        self.file = super::absolute_config_path(file)?
            .to_string_lossy()
            .into_owned();
        self.check(masters_required)?;
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
        self.check(true)
    }

    /// [`Self::validate`], with `masters` optional when the node has other sources of tasks.
    pub(crate) fn check(&self, masters_required: bool) -> Result<(), ConfigError> {
        self.validate_sources(masters_required)?;
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
    fn validate_sources(&self, masters_required: bool) -> Result<(), ConfigError> {
        if !self.dns_on && !self.http_on {
            return Err(ConfigError::NoServerEnabled);
        }
        if self.masters.is_empty() && self.zk.is_empty() && masters_required {
            return Err(ConfigError::NoMasters);
        }
        validate_zk(&self.zk)
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

mod decode;
mod render;
mod validate;

use decode::*;
pub(crate) use validate::validate_masters;
use validate::*;

#[cfg(test)]
mod tests;

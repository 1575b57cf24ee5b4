//! `[api]`: who may write through the HTTP API, and how much one registration may hold.
//!
//! Reads stay open, as Mesos-DNS's are. Every write (a registration PUT or DELETE) needs a token
//! from `[[api.tokens]]`, sent as `Authorization: Bearer SECRET`. The file holds the SHA-256 of
//! each secret, never the secret (`beacon token new` makes both), and the token's scope.

use std::collections::BTreeSet;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, de};

use super::ConfigError;

/// `[api]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSettings {
    /// The write tokens; none means no writes at all.
    pub tokens: Vec<TokenSettings>,
    /// Addresses one registration may list. Default 64.
    pub max_addresses: usize,
    /// Ports one registration may list. Default 32.
    pub max_ports: usize,
    /// Labels one port may carry. Default 16.
    pub max_labels: usize,
    /// Largest registration body, in bytes. Default 65536.
    pub max_body_bytes: usize,
    /// HTTP connections served at once. Default 256.
    pub max_connections: usize,
    /// Time a request's headers may take (and an idle keep-alive connection may wait) before
    /// the connection is closed (`header_timeout_secs` in the file). Default 10 s.
    #[serde(
        rename = "header_timeout_secs",
        deserialize_with = "super::values::seconds"
    )]
    pub header_timeout: std::time::Duration,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            tokens: Vec::new(),
            max_addresses: 64,
            max_ports: 32,
            max_labels: 16,
            max_body_bytes: 64 << 10,
            max_connections: 256,
            header_timeout: std::time::Duration::from_secs(10),
        }
    }
}

/// One `[[api.tokens]]`: a secret's digest and what its holder may write.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    /// A name for logs, errors and ownership: the registrations a token makes are its own.
    pub name: String,
    /// SHA-256 of the secret, as 64 hex digits.
    pub secret_sha256: Digest,
    /// Frameworks it may register into; `"*"` for any.
    #[serde(default)]
    pub frameworks: Vec<String>,
    /// Networks every address of its registrations must fall in.
    #[serde(default)]
    pub backend_cidrs: Vec<IpNet>,
    /// Whether its registrations may declare named VIPs (`VIP_0=/web:80`).
    #[serde(default)]
    pub named_vips: bool,
    /// Networks its IP VIPs (`VIP_0=10.1.2.3:80`) must fall in (and in `[vip] ip_vip_ranges`).
    #[serde(default)]
    pub ip_vip_cidrs: Vec<IpNet>,
    /// Registrations it may hold on this node at once.
    #[serde(default = "default_max_registrations")]
    pub max_registrations: usize,
}

fn default_max_registrations() -> usize {
    100
}

/// A SHA-256 digest, written as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Digest(pub [u8; 32]);

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl std::str::FromStr for Digest {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const EXPECTED: &str = "expected 64 hex digits (the SHA-256 `beacon token new` prints)";
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return Err(EXPECTED);
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks(2).enumerate() {
            let text = std::str::from_utf8(pair).map_err(|_| EXPECTED)?;
            out[i] = u8::from_str_radix(text, 16).map_err(|_| EXPECTED)?;
        }
        Ok(Self(out))
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(de::Error::custom)
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A file of `[[api.tokens]]` stanzas alone, as `beacon token new` prints them: how an agent
/// started with `--mesos-dns-config` gets tokens (`beacon agent --tokens FILE`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    api: TokensOnly,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensOnly {
    #[serde(default)]
    tokens: Vec<TokenSettings>,
}

impl ApiSettings {
    /// Adds the tokens of a file of `[[api.tokens]]` stanzas.
    pub fn add_tokens_file(&mut self, path: &std::path::Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let file: TokensFile = toml::from_str(&text).map_err(|e| ConfigError::Toml {
            path: path.to_path_buf(),
            line: 0,
            column: 0,
            message: e.message().to_string(),
        })?;
        self.tokens.extend(file.api.tokens);
        self.validate()
    }

    /// Checks the limits and that token names are unique and non-empty.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut names = BTreeSet::new();
        for token in &self.tokens {
            if token.name.is_empty() || !names.insert(token.name.as_str()) {
                return Err(ConfigError::InvalidSetting {
                    key: "api.tokens.name",
                    value: token.name.clone(),
                    reason: "each token needs a name of its own",
                });
            }
        }
        for (key, value) in [
            ("api.max_addresses", self.max_addresses),
            ("api.max_ports", self.max_ports),
            ("api.max_body_bytes", self.max_body_bytes),
            ("api.max_connections", self.max_connections),
            (
                "api.header_timeout_secs",
                self.header_timeout.as_secs() as usize,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::OutOfRange {
                    key,
                    value: 0,
                    expected: "at least 1",
                });
            }
        }
        Ok(())
    }
}

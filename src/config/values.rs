//! Typed setting values: fixed choices as enums, periods as [`Duration`], peers as addresses.
//! Each parses when the file is read, so the agent never matches strings again.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, de};

/// `[vip] data_plane`: whether the eBPF VIP data plane runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataPlaneMode {
    /// On when root and BPF allow it; otherwise off, with one log line saying why.
    #[default]
    Auto,
    /// On, or the agent refuses to start.
    On,
    /// Off: VIPs are derived for the API, but nothing is attached and DNS names no VIP.
    Off,
}

/// `[vip] xdp_mode`: how XDP programs attach.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XdpMode {
    /// The driver's native mode.
    #[default]
    Auto,
    /// Native (driver) mode; fails where the driver lacks XDP.
    Native,
    /// Generic (skb) mode: works on every interface.
    Generic,
}

/// `[log] format`: how log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// A gossip peer to join through, written `name@host:port` (the name its certificate carries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    /// The peer's node name.
    pub name: String,
    /// Its gossip address.
    pub addr: SocketAddr,
}

impl std::str::FromStr for Seed {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const EXPECTED: &str = "expected name@host:port with an IP address";
        let (name, addr) = s.split_once('@').ok_or(EXPECTED)?;
        Ok(Self {
            name: name.to_string(),
            addr: addr.parse().map_err(|_| EXPECTED)?,
        })
    }
}

impl fmt::Display for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.addr)
    }
}

impl<'de> Deserialize<'de> for Seed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse()
            .map_err(|e| de::Error::custom(format!("{text:?}: {e}")))
    }
}

/// A whole number of seconds, as the files write periods.
pub(crate) fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_secs)
}

/// An optional `host:port` with an IP address; empty means none.
pub(crate) fn optional_addr<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(d)?;
    match text.is_empty() {
        true => Ok(None),
        false => text.parse().map(Some).map_err(|_| {
            de::Error::custom(format!("{text:?}: expected host:port with an IP address"))
        }),
    }
}

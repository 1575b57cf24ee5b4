//! VIP declarations as users write them in labels (`research/dcos-net.md` §1.1), parsed.
//!
//! - A DiscoveryInfo port label whose key starts with `VIP` or `vip` (`VIP_0`, `VIP_1`, `vipfoo`:
//!   the suffix is cosmetic) declares a VIP for that port: `/name:port` or `name:port` (named),
//!   `10.1.2.3:port` or `fd01::1:port` (an IP VIP; the value is split at the last `:`), and, a
//!   Beacon addition, `[fd01::1]:port` (dcos-net took the bracketed form for a name).
//! - A task label `VIP_PORT<n>` (key case-insensitive) with value `tcp://<vip>:<port>` or
//!   `udp://<vip>:<port>` declares a VIP for the task's `n`th port resource (counting from 0 over
//!   the expanded ranges), which is a host port. SDK frameworks use this form.
//! - A port label `network-scope=host` says the port number is a host port (backends are the
//!   agent's address); `container`, or no such label, says it is a container port (backends are
//!   the task's own addresses).

use std::net::{IpAddr, Ipv6Addr};

use crate::model::Label;
use crate::vip::VipProblem;

/// What a VIP label's value names, before the framework is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// A name, raw (`/mygroup/myapp`).
    Named(String),
    /// An address.
    Ip(IpAddr),
}

/// The transport protocol of a VIP. TCP and UDP VIPs are separate even with equal names and
/// ports, as in dcos-net since DCOS_OSS-4395.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// Protocols of a DiscoveryInfo port: `tcp` or `udp` in any case, or both when empty (the
    /// registration API's "empty for both", and Mesos-DNS's reading of an unset protocol).
    pub(crate) fn of_port(text: &str) -> Result<&'static [Self], VipProblem> {
        match text.to_ascii_lowercase().as_str() {
            "tcp" => Ok(&[Self::Tcp]),
            "udp" => Ok(&[Self::Udp]),
            "" => Ok(&[Self::Tcp, Self::Udp]),
            _ => Err(VipProblem::Protocol(text.to_string())),
        }
    }

    /// The lower-case name, as dcos-net's API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

/// Whether a port label declares a VIP.
pub(crate) fn is_vip_key(key: &str) -> bool {
    key.starts_with("VIP") || key.starts_with("vip")
}

/// Whether a port's labels make its number a host port (`network-scope=host`).
pub(crate) fn is_host_scope(labels: &[Label]) -> bool {
    labels
        .iter()
        .any(|l| l.key == "network-scope" && l.value.eq_ignore_ascii_case("host"))
}

/// Parses `<vip>:<port>`.
pub(crate) fn parse_value(value: &str) -> Result<(Target, u16), VipProblem> {
    let value = value.trim();
    let Some((vip, port)) = value.rsplit_once(':') else {
        return Err(VipProblem::MissingPort);
    };
    let port = match port.parse::<u16>() {
        Ok(p) if p > 0 => p,
        _ => return Err(VipProblem::Port(port.to_string())),
    };
    let bracketed = vip.strip_prefix('[').and_then(|v| v.strip_suffix(']'));
    let target = match bracketed {
        Some(inner) => match inner.parse::<Ipv6Addr>() {
            Ok(ip) => Target::Ip(IpAddr::V6(ip)),
            Err(_) => return Err(VipProblem::Address(vip.to_string())),
        },
        None => match vip.parse::<IpAddr>() {
            Ok(ip) => Target::Ip(ip),
            Err(_) => Target::Named(vip.to_string()),
        },
    };
    Ok((target, port))
}

/// A task label `VIP_PORT<n>=<scheme>://<vip>:<port>`, parsed; `None` when the key is not of
/// that form (the label is not about VIPs).
pub(crate) fn parse_task_label(
    label: &Label,
) -> Option<Result<(usize, Protocol, Target, u16), VipProblem>> {
    let key = label.key.to_ascii_lowercase();
    let index = key.strip_prefix("vip_port")?;
    Some(parse_task_value(index, &label.value))
}

fn parse_task_value(
    index: &str,
    value: &str,
) -> Result<(usize, Protocol, Target, u16), VipProblem> {
    let index: usize = index
        .parse()
        .map_err(|_| VipProblem::PortIndex(index.to_string()))?;
    let value = value.trim();
    let (scheme, rest) = value
        .split_once("://")
        .ok_or_else(|| VipProblem::Scheme(value.to_string()))?;
    let protocol = match scheme.to_ascii_lowercase().as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => return Err(VipProblem::Scheme(value.to_string())),
    };
    let (target, port) = parse_value(rest)?;
    Ok((index, protocol, target, port))
}

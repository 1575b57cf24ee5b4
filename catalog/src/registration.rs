//! Registrations: services announced through Beacon's API rather than found in Mesos state
//! (`PUT /v1/registrations/{id}`, SPEC.md). The body is shaped like a Mesos task's discovery
//! data, and a registration becomes a task in the catalog, so the same naming rules apply:
//! `{name}.{framework}.{domain}` A records for its addresses, SRV records for its ports.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::model::{Catalog, Discovery, DiscoveryPort, Framework, Label, Task};

/// A registration as accepted: validated, protocols lower-cased.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// Service name, such as `web`.
    pub name: String,
    /// Framework (namespace) it is registered under, such as `marathon`.
    pub framework: String,
    /// Addresses of the service; at least one.
    pub ips: Vec<IpAddr>,
    /// Ports.
    #[serde(default)]
    pub ports: Vec<RegisteredPort>,
}

/// A port of a registration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisteredPort {
    /// Port number, 1 to 65535.
    pub number: u16,
    /// `tcp`, `udp`, or empty for both.
    #[serde(default)]
    pub protocol: String,
    /// Port name, such as `http`: adds `_http._{name}._{protocol}` SRV records.
    #[serde(default)]
    pub name: String,
    /// Port labels, such as `{"VIP_0": "/web:80"}`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Why a registration was refused; the message is what the API answers with HTTP 400.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistrationError {
    /// Occurs when the body is not JSON at all.
    #[error("the body is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Occurs when the id in the path is unusable.
    #[error("invalid registration id {0:?}: use 1 to 128 of A-Z, a-z, 0-9, '.', '_' and '-'")]
    Id(String),
    /// Occurs when a field is missing, of the wrong kind, or makes no DNS name.
    #[error("{field}: {reason}")]
    Field {
        /// The field, as a path: `name`, `ips[1]`, `ports[0].number`.
        field: String,
        /// What is wrong with it, and what to write instead.
        reason: String,
    },
}

impl RegistrationError {
    fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Field {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The field at fault, when one is.
    pub fn field_name(&self) -> Option<&str> {
        match self {
            Self::Field { field, .. } => Some(field),
            _ => None,
        }
    }
}

type Object = serde_json::Map<String, serde_json::Value>;

impl Registration {
    /// Parses and validates a request body. Every error names the field and says what is
    /// expected in plain words (no parser or type names).
    pub fn parse(body: &[u8]) -> Result<Self, RegistrationError> {
        let value: serde_json::Value = serde_json::from_slice(body)?;
        let top = value
            .as_object()
            .ok_or_else(|| RegistrationError::field("body", "expected a JSON object"))?;
        only_keys(top, "", &["name", "framework", "ips", "ports"])?;
        let ports = match top.get("ports") {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::Array(list)) => (list.iter().enumerate())
                .map(|(i, p)| parse_port(i, p))
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(RegistrationError::field(
                    "ports",
                    "expected a list of ports",
                ));
            }
        };
        Ok(Self {
            name: dns_label(top, "name")?,
            framework: dns_label(top, "framework")?,
            ips: parse_ips(top)?,
            ports,
        })
    }

    /// The registration `task` stands for (in framework `framework`): the inverse of
    /// [`Registration::to_task`], to recover a node's registrations from its published origin.
    pub fn from_task(framework: &str, task: &Task) -> Self {
        let ports = (task.discovery.iter())
            .flat_map(|d| &d.ports)
            .map(|p| RegisteredPort {
                number: p.number,
                protocol: p.protocol.clone(),
                name: p.name.clone(),
                labels: (p.labels.iter())
                    .map(|l| (l.key.clone(), l.value.clone()))
                    .collect(),
            })
            .collect();
        Self {
            name: task.name.clone(),
            framework: framework.to_string(),
            ips: task.ips.clone(),
            ports,
        }
    }

    /// The task this registration stands for, owned by `node`.
    pub fn to_task(&self, id: &str, node: &str) -> Task {
        let ports = self
            .ports
            .iter()
            .map(|p| DiscoveryPort {
                number: p.number,
                protocol: p.protocol.clone(),
                name: p.name.clone(),
                labels: p
                    .labels
                    .iter()
                    .map(|(k, v)| Label {
                        key: k.clone(),
                        value: v.clone(),
                    })
                    .collect(),
            })
            .collect();
        Task {
            id: format!("{node}.{id}"),
            name: self.name.clone(),
            agent_id: node.to_string(),
            state: "TASK_RUNNING".into(),
            statuses: Vec::new(),
            ports: Vec::new(),
            discovery: Some(Discovery {
                name: self.name.clone(),
                ports,
                labels: Vec::new(),
            }),
            labels: Vec::new(),
            ips: self.ips.clone(),
        }
    }
}

/// Refuses keys of `object` other than `allowed`; `at` prefixes the field path.
fn only_keys(object: &Object, at: &str, allowed: &[&str]) -> Result<(), RegistrationError> {
    match object.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => Err(RegistrationError::field(
            format!("{at}{key}"),
            format!("unknown field; the fields are {}", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

/// A name DNS can serve as one label: 1 to 63 ASCII letters, digits and hyphens, not starting
/// or ending with a hyphen (no dots: a dot would make several labels).
fn dns_label(object: &Object, field: &str) -> Result<String, RegistrationError> {
    let text = object
        .get(field)
        .ok_or_else(|| RegistrationError::field(field, "missing; it is required"))?
        .as_str()
        .ok_or_else(|| RegistrationError::field(field, "expected a string"))?;
    let ok = (1..=63).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-');
    match ok {
        true => Ok(text.to_string()),
        false => Err(RegistrationError::field(
            field,
            format!(
                "{text:?} is not a DNS label: use 1 to 63 ASCII letters, digits and '-', \
                 not starting or ending with '-', and no dots"
            ),
        )),
    }
}

fn parse_ips(object: &Object) -> Result<Vec<IpAddr>, RegistrationError> {
    let list = object
        .get("ips")
        .ok_or_else(|| RegistrationError::field("ips", "missing; give at least one address"))?
        .as_array()
        .ok_or_else(|| RegistrationError::field("ips", "expected a list of addresses"))?;
    if list.is_empty() {
        return Err(RegistrationError::field(
            "ips",
            "needs at least one address",
        ));
    }
    (list.iter().enumerate())
        .map(|(i, ip)| {
            let bad = || {
                RegistrationError::field(format!("ips[{i}]"), format!("{ip} is not an IP address"))
            };
            ip.as_str().and_then(|t| t.parse().ok()).ok_or_else(bad)
        })
        .collect()
}

fn parse_port(i: usize, value: &serde_json::Value) -> Result<RegisteredPort, RegistrationError> {
    let at = format!("ports[{i}].");
    let port = value
        .as_object()
        .ok_or_else(|| RegistrationError::field(format!("ports[{i}]"), "expected an object"))?;
    only_keys(port, &at, &["number", "protocol", "name", "labels"])?;
    let number = (port.get("number").and_then(serde_json::Value::as_u64))
        .and_then(|n| u16::try_from(n).ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            RegistrationError::field(
                format!("{at}number"),
                "expected a port number from 1 to 65535",
            )
        })?;
    let text = |key: &str| -> Result<String, RegistrationError> {
        match port.get(key) {
            None | Some(serde_json::Value::Null) => Ok(String::new()),
            Some(v) => (v.as_str().map(str::to_string))
                .ok_or_else(|| RegistrationError::field(format!("{at}{key}"), "expected a string")),
        }
    };
    let protocol = text("protocol")?.to_ascii_lowercase();
    if !matches!(protocol.as_str(), "" | "tcp" | "udp") {
        let reason = format!("{protocol:?}: use tcp, udp, or leave it out for both");
        return Err(RegistrationError::field(format!("{at}protocol"), reason));
    }
    let labels = match port.get("labels") {
        None | Some(serde_json::Value::Null) => BTreeMap::new(),
        Some(serde_json::Value::Object(map)) => (map.iter())
            .map(|(k, v)| match v.as_str() {
                Some(v) => Ok((k.clone(), v.to_string())),
                None => Err(RegistrationError::field(
                    format!("{at}labels.{k}"),
                    "expected a string",
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(RegistrationError::field(
                format!("{at}labels"),
                "expected an object of strings",
            ));
        }
    };
    Ok(RegisteredPort {
        number,
        protocol,
        name: text("name")?,
        labels,
    })
}

/// Checks a registration id from a URL path.
pub fn validate_id(id: &str) -> Result<(), RegistrationError> {
    let ok = (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(RegistrationError::Id(id.to_string()))
    }
}

/// The catalog fragment of `node`'s registrations: one framework per framework name.
pub fn fragment(node: &str, registrations: &BTreeMap<String, Registration>) -> Catalog {
    let mut frameworks: BTreeMap<&str, Framework> = BTreeMap::new();
    for (id, reg) in registrations {
        let fw = frameworks
            .entry(&reg.framework)
            .or_insert_with(|| Framework {
                name: reg.framework.clone(),
                pid: None,
                hostname: String::new(),
                tasks: Vec::new(),
            });
        fw.tasks.push(reg.to_task(id, node));
    }
    Catalog {
        frameworks: frameworks.into_values().collect(),
        ..Catalog::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spec_shape() {
        let body = br#"{"name": "web", "framework": "marathon", "ips": ["10.0.0.5", "fd00::5"],
            "ports": [{"number": 8080, "protocol": "TCP", "name": "http", "labels": {"VIP_0": "/web:80"}}]}"#;
        let reg = Registration::parse(body).unwrap();
        assert_eq!(reg.ports[0].protocol, "tcp");
        let task = reg.to_task("web-1", "n1");
        assert_eq!(
            task.discovery.as_ref().unwrap().ports[0].labels[0].value,
            "/web:80"
        );
        assert_eq!(task.agent_id, "n1");
    }

    #[test]
    fn bad_bodies_say_what_is_wrong() {
        for (body, needle) in [
            (&br#"{"name": "web"}"#[..], "framework: missing"),
            (br#"{"name": "", "framework": "m", "ips": ["1.2.3.4"]}"#, "name: \"\" is not a DNS label"),
            (br#"{"name": "a.b", "framework": "m", "ips": ["1.2.3.4"]}"#, "no dots"),
            (br#"{"name": "caf\u00e9", "framework": "m", "ips": ["1.2.3.4"]}"#, "ASCII"),
            (br#"{"name": "w", "framework": "m", "ips": []}"#, "ips: needs at least one"),
            (br#"{"name": "w", "framework": "m", "ips": ["nope"]}"#, "ips[0]: \"nope\" is not an IP address"),
            (br#"{"name": "w", "framework": "m", "ips": ["1.2.3.4"], "ports": [{"number": 0}]}"#, "ports[0].number"),
            (br#"{"name": "w", "framework": "m", "ips": ["1.2.3.4"], "ports": [{"number": 70000}]}"#, "from 1 to 65535"),
            (br#"{"name": "w", "framework": "m", "ips": ["1.2.3.4"], "ports": [{"number": 1, "protocol": "sctp"}]}"#, "sctp"),
            (br#"{"name": "w", "framework": "m", "ips": ["1.2.3.4"], "extra": 1}"#, "extra: unknown field"),
            (br#"{"name": "w", "framework": "m", "ips": ["1.2.3.4"], "ports": ["x"]}"#, "ports[0]: expected an object"),
            (b"not json", "not JSON"),
        ] {
            let err = Registration::parse(body).unwrap_err().to_string();
            assert!(err.contains(needle), "{err} does not mention {needle}");
            assert!(!err.contains("struct") && !err.contains("RegisteredPort"), "{err}");
        }
        assert!(validate_id("web-1.a_b").is_ok());
        assert!(
            validate_id("").is_err()
                && validate_id("a/b").is_err()
                && validate_id(&"x".repeat(129)).is_err()
        );
    }
}

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
    /// Occurs when the body is not JSON of the registration's shape.
    #[error("invalid registration body: {0}")]
    Json(#[from] serde_json::Error),
    /// Occurs when the id in the path is unusable.
    #[error("invalid registration id {0:?}: use 1 to 128 of A-Z, a-z, 0-9, '.', '_' and '-'")]
    Id(String),
    /// Occurs when a field is missing or makes no DNS name.
    #[error("invalid {field}: {reason}")]
    Field {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl Registration {
    /// Parses and validates a request body.
    pub fn parse(body: &[u8]) -> Result<Self, RegistrationError> {
        let mut reg: Self = serde_json::from_slice(body)?;
        reg.validate()?;
        for port in &mut reg.ports {
            port.protocol.make_ascii_lowercase();
        }
        Ok(reg)
    }

    fn validate(&self) -> Result<(), RegistrationError> {
        let field = |field, reason: &str| {
            Err(RegistrationError::Field {
                field,
                reason: reason.to_string(),
            })
        };
        if !self.name.bytes().any(|b| b.is_ascii_alphanumeric()) || self.name.len() > 63 {
            return field(
                "name",
                "needs 1 to 63 characters, at least one a letter or digit",
            );
        }
        if !self.framework.bytes().any(|b| b.is_ascii_alphanumeric()) || self.framework.len() > 128
        {
            return field(
                "framework",
                "needs 1 to 128 characters, at least one a letter or digit",
            );
        }
        if self.ips.is_empty() {
            return field("ips", "needs at least one address");
        }
        for (i, port) in self.ports.iter().enumerate() {
            if port.number == 0 {
                return field("ports", &format!("port {i} has number 0"));
            }
            if !matches!(
                port.protocol.to_ascii_lowercase().as_str(),
                "" | "tcp" | "udp"
            ) {
                return field(
                    "ports",
                    &format!(
                        "port {i} has protocol {:?}; use tcp, udp or none",
                        port.protocol
                    ),
                );
            }
        }
        Ok(())
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
            (&br#"{"name": "web"}"#[..], "missing field"),
            (br#"{"name": "", "framework": "m", "ips": ["1.2.3.4"]}"#, "invalid name"),
            (br#"{"name": "w", "framework": "m", "ips": []}"#, "invalid ips"),
            (br#"{"name": "w", "framework": "m", "ips": ["nope"]}"#, "invalid IP address"),
            (br#"{"name": "w", "framework": "m", "ips": ["1.2.3.4"], "ports": [{"number": 0}]}"#, "number 0"),
            (br#"{"name": "w", "framework": "m", "ips": ["1.2.3.4"], "ports": [{"number": 70000}]}"#, "invalid value"),
            (br#"{"name": "w", "framework": "m", "ips": ["1.2.3.4"], "ports": [{"number": 1, "protocol": "sctp"}]}"#, "sctp"),
            (br#"{"name": "w", "framework": "m", "ips": ["1.2.3.4"], "extra": 1}"#, "unknown field"),
            (b"not json", "invalid registration body"),
        ] {
            let err = Registration::parse(body).unwrap_err().to_string();
            assert!(err.contains(needle), "{err} does not mention {needle}");
        }
        assert!(validate_id("web-1.a_b").is_ok());
        assert!(
            validate_id("").is_err()
                && validate_id("a/b").is_err()
                && validate_id(&"x".repeat(129)).is_err()
        );
    }
}

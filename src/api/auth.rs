//! Who may write: `Authorization: Bearer SECRET` checked against `[[api.tokens]]`, and the
//! token's scope checked against the registration. Every refusal is a [`Refusal`]: a status and a
//! JSON body naming the rule that refused, so a client can tell what to fix.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use beacon_catalog::registration::{Registration, fragment};
use beacon_catalog::vip::{VipAddress, extract};
use ipnet::IpNet;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::config::{ApiSettings, TokenSettings};
use crate::publish::owners::Conflict;

/// A refused request: what the API answers instead.
#[derive(Debug)]
pub(super) struct Refusal {
    /// 400, 401, 403, 409 or 413.
    pub(super) status: StatusCode,
    /// The rule that refused, for programs: `token`, `framework`, `backend_cidrs`, ...
    pub(super) rule: &'static str,
    /// What is wrong and what to do, for people.
    pub(super) message: String,
    /// Who owns what was asked for, on a 409.
    pub(super) owner: Option<String>,
    /// The body's field at fault, on a 400.
    pub(super) field: Option<String>,
}

impl Refusal {
    /// A refusal with `status` by `rule`.
    pub(super) fn new(status: StatusCode, rule: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            rule,
            message: message.into(),
            owner: None,
            field: None,
        }
    }

    fn forbidden(rule: &'static str, message: String) -> Self {
        Self::new(StatusCode::FORBIDDEN, rule, message)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut body = json!({"error": self.message, "rule": self.rule});
        if let Some(owner) = self.owner {
            body["owner"] = owner.into();
        }
        if let Some(field) = self.field {
            body["field"] = field.into();
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            let challenge = header::HeaderValue::from_static("Bearer realm=\"beacon\"");
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

impl From<Conflict> for Refusal {
    fn from(conflict: Conflict) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            rule: "owner",
            message: conflict.to_string(),
            owner: Some(conflict.owner),
            field: None,
        }
    }
}

/// The token `headers` carry, if it is one of `settings`' tokens.
pub(super) fn authenticate<'s>(
    settings: &'s ApiSettings,
    headers: &HeaderMap,
) -> Result<&'s TokenSettings, Refusal> {
    let unauthorized = |message: &str| Refusal::new(StatusCode::UNAUTHORIZED, "token", message);
    if settings.tokens.is_empty() {
        return Err(unauthorized(
            "this agent takes no writes: no [[api.tokens]] are configured (make one with `beacon token new`)",
        ));
    }
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| unauthorized("writes need a token: send `Authorization: Bearer SECRET`"))?;
    let secret = (value.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| unauthorized("the Authorization header must read `Bearer SECRET`"))?;
    let digest: [u8; 32] = Sha256::digest(secret.trim().as_bytes()).into();
    // Every token is compared, each in constant time, so the time taken tells nothing.
    let mut found = None;
    for token in &settings.tokens {
        if constant_time_eq(&token.secret_sha256.0, &digest) {
            found = Some(token);
        }
    }
    found.ok_or_else(|| unauthorized("unknown token"))
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks `reg` against the size limits of `settings` (400 when over).
pub(super) fn check_limits(settings: &ApiSettings, reg: &Registration) -> Result<(), Refusal> {
    let over = |what: &str, n: usize, max: usize, key: &str| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "limits",
            format!("{n} {what} is over the limit of {max} ([api] {key})"),
        )
    };
    if reg.ips.len() > settings.max_addresses {
        let (n, max) = (reg.ips.len(), settings.max_addresses);
        return Err(over("addresses", n, max, "max_addresses"));
    }
    if reg.ports.len() > settings.max_ports {
        return Err(over(
            "ports",
            reg.ports.len(),
            settings.max_ports,
            "max_ports",
        ));
    }
    if let Some(port) = reg
        .ports
        .iter()
        .find(|p| p.labels.len() > settings.max_labels)
    {
        let n = port.labels.len();
        return Err(over(
            "labels on one port",
            n,
            settings.max_labels,
            "max_labels",
        ));
    }
    Ok(())
}

/// Checks that `reg` is inside `token`'s scope, and its IP VIPs inside `ip_vip_ranges` too.
pub(super) fn check_scope(
    token: &TokenSettings,
    ip_vip_ranges: &[IpNet],
    reg: &Registration,
) -> Result<(), Refusal> {
    let name = &token.name;
    if !token
        .frameworks
        .iter()
        .any(|f| f == "*" || *f == reg.framework)
    {
        let message = format!(
            "token {name:?} may not register into framework {:?} (its frameworks: {:?})",
            reg.framework, token.frameworks
        );
        return Err(Refusal::forbidden("framework", message));
    }
    if let Some(ip) =
        (reg.ips.iter()).find(|ip| !token.backend_cidrs.iter().any(|n| n.contains(*ip)))
    {
        let message = format!(
            "address {ip} is outside token {name:?}'s backend_cidrs {:?}",
            token.backend_cidrs
        );
        return Err(Refusal::forbidden("backend_cidrs", message));
    }
    check_vips(token, ip_vip_ranges, reg)
}

/// The VIPs `reg` declares, against the token's scope and the node's IP VIP ranges.
fn check_vips(
    token: &TokenSettings,
    ip_vip_ranges: &[IpNet],
    reg: &Registration,
) -> Result<(), Refusal> {
    let regs = std::collections::BTreeMap::from([(String::new(), reg.clone())]);
    let table = extract(&fragment("check", &regs));
    for key in table.vips.keys() {
        match &key.address {
            VipAddress::Named(vip) if !token.named_vips => {
                let message = format!(
                    "token {:?} may not declare named VIPs such as /{}:{}",
                    token.name,
                    vip.name(),
                    key.port
                );
                return Err(Refusal::forbidden("named_vips", message));
            }
            VipAddress::Named(_) => {}
            VipAddress::Ip(ip) => {
                if !ip_vip_ranges.iter().any(|n| n.contains(ip)) {
                    let message = format!(
                        "IP VIP {ip} is outside this node's [vip] ip_vip_ranges {ip_vip_ranges:?}"
                    );
                    return Err(Refusal::forbidden("ip_vip_ranges", message));
                }
                if !token.ip_vip_cidrs.iter().any(|n| n.contains(ip)) {
                    let message = format!(
                        "IP VIP {ip} is outside token {:?}'s ip_vip_cidrs {:?}",
                        token.name, token.ip_vip_cidrs
                    );
                    return Err(Refusal::forbidden("ip_vip_cidrs", message));
                }
            }
        }
    }
    Ok(())
}

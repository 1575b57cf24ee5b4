//! The `/v1/config` body, rendered like Go's `json.MarshalIndent(v, " ", " ")`.

use super::*;

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
pub(super) fn write_go_string(s: &str, out: &mut String) {
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

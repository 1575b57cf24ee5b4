//! Decoding `config.json` like Go's `encoding/json`: case-insensitive keys, document order.

use super::*;

/// A JSON value whose objects keep their members in document order, duplicates included:
/// Go applies members one by one, so order decides which spelling of a key wins.
pub(super) enum Json {
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
pub(super) fn json_syntax_error(error: &serde_json::Error, file: &Path) -> ConfigError {
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
    pub(super) fn apply_json(&mut self, doc: &Json) -> Result<(), ConfigError> {
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
pub(super) fn go_fold_eq(field: &str, key: &str) -> bool {
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

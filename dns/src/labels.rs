//! The Mesos-DNS label sanitiser (`research/mesos-dns.md` §3.1).
//!
//! Every character maps to `[a-z0-9-]` or is dropped; the result is trimmed and cut to the spec's
//! length. Framework names keep their dots through [`LabelSpec::domain_frag`], so one framework
//! name can span several DNS labels.

/// Which label rules to apply: RFC 1123 (the Mesos-DNS default) or the legacy RFC 952 rules
/// (`EnforceRFC952: true`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelSpec {
    /// Up to 63 characters; leading digits allowed.
    Rfc1123,
    /// Up to 24 characters; leading digits are stripped.
    Rfc952,
}

impl LabelSpec {
    /// Sanitises one label.
    pub fn label(self, name: &str) -> String {
        let mapped: String = name.chars().filter_map(map_char).collect();
        match self {
            Self::Rfc1123 => trim_cut(&mapped, 63, |c| c == '-'),
            Self::Rfc952 => trim_cut(&mapped, 24, |c| c == '-' || c.is_ascii_digit()),
        }
    }

    /// Sanitises a dotted name label by label, dropping labels that end up empty.
    pub fn domain_frag(self, name: &str) -> String {
        let parts: Vec<String> = name
            .split('.')
            .map(|part| self.label(part))
            .filter(|part| !part.is_empty())
            .collect();
        parts.join(".")
    }
}

fn map_char(c: char) -> Option<char> {
    match c {
        'A'..='Z' => Some(c.to_ascii_lowercase()),
        'a'..='z' | '0'..='9' => Some(c),
        '-' | '.' | '_' => Some('-'),
        _ => None,
    }
}

/// Trims `left` from the front, cuts to `max`, trims `-` from the end of the head and, when that
/// trim shortened it, refills the head once from what followed the cut (its leading `-` removed).
/// The refill is a Mesos-DNS quirk kept for compatibility: it can leave a trailing `-`.
fn trim_cut(label: &str, max: usize, left: impl Fn(char) -> bool) -> String {
    // `label` is ASCII after `map_char`, so byte indices are char indices.
    let label = label.trim_start_matches(left);
    let (head, rest) = label.split_at(label.len().min(max));
    let trimmed = head.trim_end_matches('-');
    let lost = head.len() - trimmed.len();
    let refill = rest.trim_start_matches('-');
    let mut out = String::with_capacity(max);
    out.push_str(trimmed);
    out.push_str(&refill[..refill.len().min(lost)]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn table(key: &str) -> BTreeMap<String, String> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/conformance/mesos-dns/expected-labels.json"
        );
        let all: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        serde_json::from_value(all[key].clone()).unwrap()
    }

    fn check(key: &str, specs: &[LabelSpec], f: fn(LabelSpec, &str) -> String) {
        let cases = table(key);
        assert!(!cases.is_empty(), "{key}");
        for (input, want) in &cases {
            for &spec in specs {
                assert_eq!(&f(spec, input), want, "{key} {spec:?} {input:?}");
            }
        }
    }

    #[test]
    fn mesos_dns_label_tables() {
        use LabelSpec::*;
        check("RFC952_special", &[Rfc952], LabelSpec::label);
        check("RFC1123_special", &[Rfc1123], LabelSpec::label);
        check(
            "label_common_cases_both_specs",
            &[Rfc952, Rfc1123],
            LabelSpec::label,
        );
        check(
            "DomainFrag_common_cases_both_specs",
            &[Rfc952, Rfc1123],
            LabelSpec::domain_frag,
        );
        check(
            "DomainFrag_RFC952_special",
            &[Rfc952],
            LabelSpec::domain_frag,
        );
        check(
            "DomainFrag_RFC1123_special",
            &[Rfc1123],
            LabelSpec::domain_frag,
        );
    }

    #[test]
    fn labels_are_always_valid_dns_labels() {
        for input in ["", "é", "---", "a\u{0}b", &"x".repeat(300), "ÀB-c_d.e"] {
            for spec in [LabelSpec::Rfc1123, LabelSpec::Rfc952] {
                let out = spec.label(input);
                assert!(out.len() <= 63);
                assert!(
                    out.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                );
            }
        }
    }
}

//! Named-VIP names: how a label such as `/mygroup/myapp` and a framework name become the DNS
//! labels of `<name>.<framework>.l4lb.thisdcos.directory`.
//!
//! The rules are dcos-net's (`mesos_state:domain_frag/1`, `research/dcos-net.md` §1.2), which are
//! not Mesos-DNS's sanitiser (`beacon_dns::labels`): each dot-separated part is lower-cased,
//! characters before the first letter or digit are dropped, `-`, `_` and `.` become `-`, every
//! other character (such as `/`) is dropped, a label stops at 63 characters (after the cut only
//! letters and digits are added, never `-`), and trailing `-` are removed. So
//! `/mygroup/myapp` becomes `mygroupmyapp`.
//!
//! One fix: dcos-net kept a part that came out empty (`a.//` made `a.`, an invalid name); here
//! empty parts are dropped, and a name left with no label at all is refused.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The zone named VIPs live in (`<name>.<framework>.l4lb.thisdcos.directory`).
pub const L4LB_ZONE: &str = "l4lb.thisdcos.directory";

/// Longest DNS name, in presentation form without the final dot (RFC 1035 §3.1: 255 octets on the
/// wire, two of which are the first length byte and the root).
const MAX_NAME: usize = 253;

/// A named VIP's identity: its name and its framework's name, both already in DNS form.
///
/// DC/OS keyed named VIPs by (label, framework name); here the key is the normalised pair, so two
/// spellings that make the same DNS name (`/web` and `web`, `/a/b` and `/ab`) are one VIP instead
/// of two VIPs fighting over one name and one address.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VipName {
    name: String,
    framework: String,
}

impl VipName {
    /// Normalises a VIP label (`/mygroup/myapp`) and a framework name (`marathon`).
    ///
    /// `None` when either has no letter or digit, or when the full
    /// `<name>.<framework>.l4lb.thisdcos.directory` name would exceed 253 characters.
    pub fn new(name: &str, framework: &str) -> Option<Self> {
        let name = domain_frag(name);
        let framework = domain_frag(framework);
        let full = name.len() + 1 + framework.len() + 1 + L4LB_ZONE.len();
        (!name.is_empty() && !framework.is_empty() && full <= MAX_NAME)
            .then_some(Self { name, framework })
    }

    /// The name part, one or more DNS labels (`mygroupmyapp`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The framework part, one or more DNS labels (`marathon`).
    pub fn framework(&self) -> &str {
        &self.framework
    }

    /// The canonical name `<name>.<framework>`: the input of address hashing, and the DNS name
    /// relative to the l4lb zone.
    pub fn canonical(&self) -> String {
        format!("{}.{}", self.name, self.framework)
    }

    /// The fully qualified name in `zone` (such as [`L4LB_ZONE`]), with the final dot.
    pub fn fqdn_in(&self, zone: &str) -> String {
        format!("{}.{}.{}.", self.name, self.framework, zone)
    }
}

impl fmt::Display for VipName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.name, self.framework)
    }
}

/// dcos-net's `domain_frag`: split on `.`, normalise each part with [`label`], drop empty parts.
pub fn domain_frag(text: &str) -> String {
    let parts: Vec<String> = text
        .split('.')
        .map(label)
        .filter(|l| !l.is_empty())
        .collect();
    parts.join(".")
}

/// dcos-net's `label`: one DNS label from arbitrary text (see the module documentation).
pub fn label(text: &str) -> String {
    const MAX: usize = 63;
    let mut out = String::with_capacity(text.len().min(MAX));
    let mut started = false;
    let mut cut = false;
    for byte in text.bytes() {
        let c = byte.to_ascii_lowercase();
        let alnum = c.is_ascii_lowercase() || c.is_ascii_digit();
        if !cut && out.len() >= MAX {
            trim_dashes(&mut out);
            cut = true;
        }
        if cut {
            if out.len() == MAX {
                break;
            }
            if alnum {
                out.push(char::from(c));
            }
        } else if alnum {
            started = true;
            out.push(char::from(c));
        } else if started && matches!(c, b'-' | b'_' | b'.') {
            out.push('-');
        }
    }
    trim_dashes(&mut out);
    out
}

fn trim_dashes(label: &mut String) {
    let kept = label.trim_end_matches('-').len();
    label.truncate(kept);
}

//! A per-thread cache of encoded answers, so that a repeated question costs a lookup and a copy
//! instead of decoding, answering and encoding it again.
//!
//! Only what is certainly repeatable is cached: a standard query with one question and at most
//! an option-less EDNS record, answered authoritatively (NOERROR or NXDOMAIN). Truncated
//! answers are cached too: a name with a big RRset is exactly where answering afresh costs the
//! most, so it must cost a lookup like any other (one answer per zone and query shape).
//! The key is the exact question bytes (case included: Mesos-DNS echoes the question's spelling
//! in SRV and SOA owners), the header flags and the EDNS size, DO bit and version; the reply is
//! the same but for the id, which is patched. Every new zone empties the cache.
//!
//! Mesos-DNS shuffles the answers of every reply. To keep that spread, a key holds up to
//! [`MAX_VARIANTS`] replies, each shuffled independently by the handler, and one in
//! [`REFRESH_EVERY`] hits is answered afresh and replaces one of them, so over time every order
//! appears. A truncated answer keeps one variant: its client asks again over TCP for the whole
//! set, so more samples of it would buy no spread, only misses.

use std::collections::HashMap;

/// Replies kept per question at most (and never more than its number of answers).
const MAX_VARIANTS: usize = 8;
/// One hit in this many is answered by the handler again, refreshing a variant.
const REFRESH_EVERY: u32 = 32;
/// Questions kept per thread; past this the cache starts over (a cheap, bounded policy).
const MAX_KEYS: usize = 65_536;

/// A cached reply's facts the metrics need.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Facts {
    pub(crate) qtype: u16,
    pub(crate) rcode: u8,
}

struct Entry {
    variants: Vec<Vec<u8>>,
    wanted: usize,
    hits: u32,
    facts: Facts,
}

/// The cache of one serving thread.
pub(crate) struct AnswerCache {
    entries: HashMap<Vec<u8>, Entry>,
    /// Identity of the zone the entries were made from.
    zone: u64,
}

/// What to do with a query.
pub(crate) enum Lookup<'c> {
    /// Send this reply (its id still to be patched).
    Hit(&'c [u8], Facts),
    /// Answer it with the handler, then offer the reply to [`AnswerCache::insert`] under `key`.
    Miss(Vec<u8>),
    /// Answer it with the handler; not cacheable.
    Skip,
}

impl AnswerCache {
    pub(crate) fn new() -> Self {
        Self {
            entries: HashMap::new(),
            zone: 0,
        }
    }

    /// Forgets everything when the zone is not the one the entries came from.
    pub(crate) fn set_zone(&mut self, zone: u64) {
        if zone != self.zone {
            self.entries.clear();
            self.zone = zone;
        }
    }

    pub(crate) fn lookup(&mut self, query: &[u8], random: u32) -> Lookup<'_> {
        let Some(key) = key(query) else {
            return Lookup::Skip;
        };
        let Some(entry) = self.entries.get_mut(&key) else {
            return Lookup::Miss(key);
        };
        entry.hits = entry.hits.wrapping_add(1);
        if entry.variants.len() < entry.wanted || entry.hits % REFRESH_EVERY == 0 {
            return Lookup::Miss(key);
        }
        let facts = entry.facts;
        let pick = random as usize % entry.variants.len();
        Lookup::Hit(&entry.variants[pick], facts)
    }

    /// Keeps `reply` for `key` if it is an authoritative NOERROR or NXDOMAIN.
    pub(crate) fn insert(&mut self, key: Vec<u8>, reply: &[u8], qtype: u16) {
        let Some(&[flags_hi, flags_lo]) = reply.get(2..4) else {
            return;
        };
        let (aa, tc, rcode) = (flags_hi & 0x04 != 0, flags_hi & 0x02 != 0, flags_lo & 0x0f);
        if !aa || !(rcode == 0 || rcode == 3) {
            return;
        }
        if self.entries.len() >= MAX_KEYS && !self.entries.contains_key(&key) {
            self.entries.clear();
        }
        let answers = usize::from(u16::from_be_bytes([reply[6], reply[7]]));
        let entry = self.entries.entry(key).or_insert_with(|| Entry {
            variants: Vec::new(),
            wanted: if tc {
                1
            } else {
                answers.clamp(1, MAX_VARIANTS)
            },
            hits: 0,
            facts: Facts { qtype, rcode },
        });
        if entry.variants.len() < entry.wanted {
            entry.variants.push(reply.to_vec());
        } else {
            let slot = (entry.hits / REFRESH_EVERY) as usize % entry.variants.len();
            entry.variants[slot] = reply.to_vec();
        }
    }
}

/// The cache key of a query, or `None` when its reply may not be reused: anything but a
/// standard query with one uncompressed question and at most an EDNS(0) record without
/// options.
pub(crate) fn key(query: &[u8]) -> Option<Vec<u8>> {
    let header = query.get(..12)?;
    let (flags_hi, counts) = (header[2], &header[4..12]);
    // QR=0, opcode QUERY, not truncated; one question, no answers or authority, at most one
    // additional (the OPT).
    if flags_hi & 0xfa != 0 || counts[..6] != [0, 1, 0, 0, 0, 0] || counts[6] != 0 || counts[7] > 1
    {
        return None;
    }
    let end = question_end(query)?;
    let mut key = Vec::with_capacity(end - 12 + 8);
    key.extend_from_slice(&header[2..4]);
    key.extend_from_slice(&query[12..end]);
    match counts[7] {
        0 if end == query.len() => Some(key),
        1 => {
            // OPT: root name, type 41, class = size, TTL = ext-rcode, version, flags; no options.
            let opt = query.get(end..)?;
            if opt.len() != 11
                || opt[0] != 0
                || opt[1..3] != [0, 41]
                || opt[5] != 0
                || opt[9..11] != [0, 0]
            {
                return None;
            }
            key.push(1);
            key.extend_from_slice(&opt[3..5]); // size
            key.extend_from_slice(&opt[6..9]); // version, flags (DO)
            Some(key)
        }
        _ => None,
    }
}

/// The offset just past the first question, when its name has no compression pointer.
fn question_end(query: &[u8]) -> Option<usize> {
    let mut at = 12;
    loop {
        let len = *query.get(at)?;
        match len {
            0 => break,
            l if l & 0xc0 != 0 => return None,
            l => at += usize::from(l) + 1,
        }
    }
    let end = at + 5;
    (end <= query.len()).then_some(end)
}

/// The query type of a question that [`key`] accepted.
pub(crate) fn qtype(query: &[u8]) -> u16 {
    question_end(query).map_or(0, |end| {
        u16::from_be_bytes([query[end - 4], query[end - 3]])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &[u8], flags: [u8; 2], opt: Option<&[u8]>) -> Vec<u8> {
        let mut q = vec![
            0x12,
            0x34,
            flags[0],
            flags[1],
            0,
            1,
            0,
            0,
            0,
            0,
            0,
            u8::from(opt.is_some()),
        ];
        q.extend_from_slice(name);
        q.extend_from_slice(&[0, 1, 0, 1]);
        if let Some(opt) = opt {
            q.extend_from_slice(opt);
        }
        q
    }

    const NAME: &[u8] = b"\x06leader\x05mesos\x00";
    const OPT: &[u8] = &[0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0];

    #[test]
    fn keys_cover_what_changes_the_reply() {
        let plain = key(&query(NAME, [1, 0], None)).unwrap();
        let no_rd = key(&query(NAME, [0, 0], None)).unwrap();
        let edns = key(&query(NAME, [1, 0], Some(OPT))).unwrap();
        let upper = key(&query(b"\x06LEADER\x05mesos\x00", [1, 0], None)).unwrap();
        assert!(plain != no_rd && plain != edns && plain != upper);
        assert_eq!(
            plain,
            key(&{
                let mut q = query(NAME, [1, 0], None);
                q[0] = 9;
                q
            })
            .unwrap(),
            "the id is not part of it"
        );
    }

    #[test]
    fn only_plain_queries_are_cached() {
        assert!(key(&query(NAME, [0x81, 0], None)).is_none(), "a response");
        assert!(
            key(&query(NAME, [0x28, 0], None)).is_none(),
            "UPDATE opcode"
        );
        assert!(
            key(&query(b"\xc0\x0c", [1, 0], None)).is_none(),
            "compressed question"
        );
        let mut with_option = OPT.to_vec();
        with_option[10] = 4;
        with_option.extend_from_slice(&[0, 10, 0, 0]);
        assert!(
            key(&query(NAME, [1, 0], Some(&with_option))).is_none(),
            "EDNS options (a cookie)"
        );
        let mut trailing = query(NAME, [1, 0], None);
        trailing.push(0);
        assert!(key(&trailing).is_none());
        assert!(key(&query(NAME, [1, 0], None)[..20]).is_none(), "truncated");
        assert_eq!(qtype(&query(NAME, [1, 0], None)), 1);
    }

    #[test]
    fn hits_after_enough_variants_and_only_for_good_replies() {
        let mut cache = AnswerCache::new();
        cache.set_zone(1);
        let q = query(NAME, [1, 0], None);
        let Lookup::Miss(k) = cache.lookup(&q, 0) else {
            panic!()
        };
        // An authoritative NOERROR with 2 answers: two variants wanted.
        let reply = [0x12, 0x34, 0x85, 0x80, 0, 1, 0, 2, 0, 0, 0, 0];
        cache.insert(k.clone(), &reply, 1);
        assert!(matches!(cache.lookup(&q, 0), Lookup::Miss(_)));
        cache.insert(k.clone(), &reply, 1);
        assert!(matches!(cache.lookup(&q, 0), Lookup::Hit(..)));
        cache.set_zone(2);
        assert!(
            matches!(cache.lookup(&q, 0), Lookup::Miss(_)),
            "a new zone empties it"
        );
        let servfail = [0x12, 0x34, 0x85, 0x82, 0, 1, 0, 0, 0, 0, 0, 0];
        cache.insert(k.clone(), &servfail, 1);
        let not_aa = [0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        cache.insert(k, &not_aa, 1);
        assert!(matches!(cache.lookup(&q, 0), Lookup::Miss(_)));
    }
}

//! Size rules for answers: the UDP limit a client may ask for through EDNS, and Mesos-DNS's
//! truncation order (`research/mesos-dns.md` §4.3).
//!
//! Beacon honours the client's EDNS buffer size (capped, 1232 by default, per the DNS flag day
//! 2020 advice) where Mesos-DNS ignored it and cut every UDP answer at 512 bytes. When an answer
//! does not fit, it drops all additional records first, then keeps the longest prefix of the
//! (already shuffled) answers that fits, as Mesos-DNS does.

use std::borrow::Cow;

use hickory_proto::op::{Edns, Query};
use hickory_proto::rr::{RData, Record};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use crate::zone::Answer;

/// The largest message a UDP client without EDNS accepts (RFC 1035 §4.2.1).
pub const CLASSIC_UDP_LIMIT: u16 = 512;

/// The EDNS record to answer with, and the size limit it implies, for a UDP request.
///
/// A request without OPT gets no OPT and 512 bytes. With OPT, the reply echoes one advertising
/// `min(client size, cap)`, never less than 512.
pub fn udp_edns(request: Option<&Edns>, cap: u16) -> (Option<Edns>, u16) {
    let Some(req) = request else {
        return (None, CLASSIC_UDP_LIMIT);
    };
    let size = req
        .max_payload()
        .clamp(CLASSIC_UDP_LIMIT, cap.max(CLASSIC_UDP_LIMIT));
    let mut edns = Edns::new();
    edns.set_max_payload(size);
    edns.set_version(0);
    edns.set_dnssec_ok(false);
    (Some(edns), size)
}

/// Makes `answer` fit in `limit` bytes once encoded with `query` and `edns`. Returns whether
/// anything was dropped, which is when Mesos-DNS sets TC.
pub fn fit(answer: &mut Answer<'_>, query: &Query, edns: Option<&Edns>, limit: u16) -> bool {
    let limit = usize::from(limit);
    if upper_bound(answer, query, edns) <= limit
        || encoded_len(answer, query, edns, answer.answers.len()) <= limit
    {
        return false;
    }
    answer.additionals.clear();
    let all = answer.answers.len();
    if encoded_len(answer, query, edns, all) <= limit {
        return true;
    }
    // Binary search the longest prefix that fits; an empty answer section always fits here
    // because authority records are never large.
    let (mut lo, mut hi) = (0, all);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if encoded_len(answer, query, edns, mid) <= limit {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    answer.answers.truncate(lo);
    true
}

/// A cheap bound on the encoded size: every name written out in full.
fn upper_bound(answer: &Answer<'_>, query: &Query, edns: Option<&Edns>) -> usize {
    let records = answer
        .answers
        .iter()
        .chain(&answer.authority)
        .chain(&answer.additionals);
    let opt = if edns.is_some() { 11 } else { 0 };
    12 + query.name().len() + 5 + opt + records.map(|r| record_bound(r)).sum::<usize>()
}

fn record_bound(r: &Record) -> usize {
    let rdata = match &r.data {
        RData::A(_) => 4,
        RData::AAAA(_) => 16,
        RData::SRV(srv) => 6 + srv.target.len() + 1,
        RData::SOA(soa) => soa.mname.len() + soa.rname.len() + 22,
        RData::NS(ns) => ns.0.len() + 1,
        RData::PTR(ptr) => ptr.0.len() + 1,
        // Nothing else is generated; a generous bound keeps the check safe if that changes.
        _ => 512,
    };
    r.name.len() + 1 + 10 + rdata
}

/// The compressed size with only the first `answers` answer records.
fn encoded_len(answer: &Answer<'_>, query: &Query, edns: Option<&Edns>, answers: usize) -> usize {
    let mut buf = Vec::with_capacity(1024);
    let mut enc = BinEncoder::new(&mut buf);
    let records = answer.answers[..answers]
        .iter()
        .chain(&answer.authority)
        .chain(&answer.additionals);
    let mut ok = enc.emit_vec(&[0; 12]).is_ok() && query.emit(&mut enc).is_ok();
    for r in records {
        ok &= Cow::as_ref(r).emit(&mut enc).is_ok();
    }
    if let Some(edns) = edns {
        ok &= Record::from(edns).emit(&mut enc).is_ok();
    }
    if ok { buf.len() } else { usize::MAX }
}

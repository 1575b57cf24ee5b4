//! Size rules for answers: the UDP limit a client may ask for through EDNS, and Mesos-DNS's
//! truncation order (`research/mesos-dns.md` §4.3).
//!
//! Beacon honours the client's EDNS buffer size (capped, 1232 by default, per the DNS flag day
//! 2020 advice) where Mesos-DNS ignored it and cut every UDP answer at 512 bytes. When an answer
//! does not fit, it drops all additional records first, then keeps the longest prefix of the
//! (already shuffled) answers that fits, as Mesos-DNS does.

use std::borrow::Cow;

use hickory_proto::op::{Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::{RData, Record};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use hickory_server::server::ResponseInfo;
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder, Queries};

use crate::answer::Answer;

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

/// Makes `answer` fit in `limit` bytes once encoded after the request's `queries` with `edns`. Returns whether
/// anything was dropped, which is when Mesos-DNS sets TC.
pub fn fit(answer: &mut Answer<'_>, queries: &Queries, edns: Option<&Edns>, limit: u16) -> bool {
    let question = queries.as_bytes();
    let limit = usize::from(limit);
    if upper_bound(answer, question, edns) <= limit
        || encoded_len(answer, queries, edns, answer.answers.len()) <= limit
    {
        return false;
    }
    answer.additionals.clear();
    let all = answer.answers.len();
    if encoded_len(answer, queries, edns, all) <= limit {
        return true;
    }
    // A question near 255 bytes echoed with an SOA owned by the same name can overflow 512
    // bytes on its own: then the authority records go too (what is left is the header and the
    // question, which always fit).
    if encoded_len(answer, queries, edns, 0) > limit {
        answer.answers.clear();
        answer.authority.clear();
        return true;
    }
    // Binary search the longest prefix that fits.
    let (mut lo, mut hi) = (0, all);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if encoded_len(answer, queries, edns, mid) <= limit {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    answer.answers.truncate(lo);
    true
}

/// Encodes a UDP response of at most `limit` bytes.
///
/// The encoding runs without a size cap: [`fit`] has already made the answer fit, and
/// hickory-proto's encoder, given a cap, can fail a record that would fit once compressed
/// (names are written out before their compression pointer is found), which would set TC and
/// drop records or the OPT record on its own. A reply that still comes out too long (an
/// upstream's, which `fit` does not see) goes out as a bare header with TC set, telling the
/// client to retry over TCP.
pub fn encode_udp<'a>(
    response: MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
    limit: u16,
) -> (ResponseInfo, Vec<u8>) {
    let metadata = *response.metadata();
    let mut bytes = Vec::with_capacity(512);
    let mut encoder = BinEncoder::new(&mut bytes);
    match response.destructive_emit(&mut encoder) {
        Ok(info) if bytes.len() <= usize::from(limit) => (info, bytes),
        Ok(_) => {
            let mut truncated = metadata;
            truncated.truncation = true;
            bare_header(truncated)
        }
        Err(error) => {
            tracing::warn!(%error, "cannot encode a response; sending SERVFAIL");
            let mut failed = Metadata::new(metadata.id, MessageType::Response, OpCode::Query);
            failed.response_code = ResponseCode::ServFail;
            bare_header(failed)
        }
    }
}

/// A reply of a header alone, with no records.
pub(crate) fn bare_header(metadata: Metadata) -> (ResponseInfo, Vec<u8>) {
    let header = Header {
        metadata,
        counts: HeaderCounts::default(),
    };
    let mut bytes = Vec::with_capacity(12);
    // A bare header always encodes.
    let _ = header.emit(&mut BinEncoder::new(&mut bytes));
    (ResponseInfo::from(header), bytes)
}

/// A cheap bound on the encoded size: every name written out in full.
fn upper_bound(answer: &Answer<'_>, question: &[u8], edns: Option<&Edns>) -> usize {
    let records = answer
        .answers
        .iter()
        .chain(&answer.authority)
        .chain(&answer.additionals);
    let opt = if edns.is_some() { 11 } else { 0 };
    12 + question.len() + opt + records.map(|r| record_bound(r)).sum::<usize>()
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

/// The size of the reply with only the first `answers` answer records, encoded by the very
/// code that will send it (so that compression is counted exactly).
fn encoded_len(
    answer: &Answer<'_>,
    queries: &Queries,
    edns: Option<&Edns>,
    answers: usize,
) -> usize {
    let mut builder = MessageResponseBuilder::new(queries, None);
    if let Some(edns) = edns {
        builder.edns(edns);
    }
    let response = builder.build(
        Metadata::new(0, MessageType::Response, OpCode::Query),
        answer.answers[..answers].iter().map(Cow::as_ref),
        answer.authority.iter().map(Cow::as_ref),
        std::iter::empty::<&Record>(),
        answer.additionals.iter().map(Cow::as_ref),
    );
    let mut buf = Vec::with_capacity(1024);
    let mut enc = BinEncoder::new(&mut buf);
    match response.destructive_emit(&mut enc) {
        Ok(_) => buf.len(),
        Err(_) => usize::MAX,
    }
}

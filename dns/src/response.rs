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
use hickory_server::zone_handler::{MessageResponse, Queries};

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

/// The most answer records a reply of `limit` bytes could hold: a header (12 bytes) and then
/// records of at least 11 bytes each (a one-byte owner, type, class, TTL and length). A zone
/// asked for more than this many ([`crate::zone::Zone::answer_within`]) would truncate anyway.
pub fn max_answers(limit: u16) -> usize {
    usize::from(limit).saturating_sub(12) / 11 + 1
}

/// Makes `answer` fit in `limit` bytes once encoded after the request's `queries` with `edns`.
/// Returns whether anything was dropped, which is when Mesos-DNS sets TC.
///
/// The reply is encoded once, record after record, by the encoder that will send it (so that
/// compression is counted exactly), stopping at the first answer past the limit: the work is
/// bounded by the limit, not by the size of the RRset. A shorter prefix is measured by rolling
/// the encoder back to where that prefix ended, not by encoding it again.
pub fn fit(answer: &mut Answer<'_>, queries: &Queries, edns: Option<&Edns>, limit: u16) -> bool {
    let limit = usize::from(limit);
    if upper_bound(answer, queries.as_bytes(), edns) <= limit {
        return false;
    }
    let opt = edns.map_or(0, opt_len);
    let mut buf = Vec::with_capacity(limit.min(16 << 10) + 512);
    let mut m = Measure::start(&mut buf, queries);
    let ends = m.answers(answer, limit);
    if ends.len() == answer.answers.len() + 1 {
        let with_authority = m.records(&answer.authority);
        if m.records(&answer.additionals).saturating_add(opt) <= limit {
            return false;
        }
        answer.additionals.clear();
        if with_authority.saturating_add(opt) <= limit {
            return true;
        }
    }
    answer.additionals.clear();
    // The longest prefix whose reply, with the authority records and OPT, fits. The authority
    // compresses no better after fewer answers, so its size after the most answers is a lower
    // bound: start from the longest prefix that bound allows, and walk back if needed.
    let last = ends.len() - 1;
    let least_tail = m.rollback(ends[last]).records(&answer.authority) - ends[last];
    let least_tail = least_tail.saturating_add(opt);
    let mut keep = ends
        .iter()
        .rposition(|&end| end.saturating_add(least_tail) <= limit);
    while let Some(k) = keep {
        if m.rollback(ends[k])
            .records(&answer.authority)
            .saturating_add(opt)
            <= limit
        {
            break;
        }
        keep = k.checked_sub(1);
    }
    match keep {
        Some(k) => answer.answers.truncate(k),
        // A question near 255 bytes echoed with an SOA owned by the same name can overflow 512
        // bytes on its own: then the authority records go too (what is left is the header and
        // the question, which always fit).
        None => {
            answer.answers.clear();
            answer.authority.clear();
        }
    }
    true
}

/// An encoder measuring a reply's size as hickory-server would encode it.
struct Measure<'b> {
    encoder: BinEncoder<'b>,
}

impl<'b> Measure<'b> {
    /// A header's room, then the question as hickory-server emits it: the client's raw bytes,
    /// registered whole as one compression candidate (`QueriesEmitAndCount::emit`).
    fn start(buf: &'b mut Vec<u8>, queries: &Queries) -> Self {
        let mut encoder = BinEncoder::new(buf);
        // Writing to a Vec cannot fail.
        let _ = encoder.emit_vec(&[0; 12]);
        let start = encoder.offset();
        let _ = encoder.emit_vec(queries.as_bytes());
        if !queries.queries().is_empty() {
            encoder.store_label_pointer(start, encoder.offset());
        }
        Self { encoder }
    }

    /// Emits answers until one ends past `limit`; returns the reply's size after 0, 1, ...
    /// answers, up to the last that ends within the limit.
    fn answers(&mut self, answer: &Answer<'_>, limit: usize) -> Vec<usize> {
        let mut ends = vec![self.encoder.offset()];
        for record in &answer.answers {
            if record.emit(&mut self.encoder).is_err() || self.encoder.offset() > limit {
                break;
            }
            ends.push(self.encoder.offset());
        }
        ends
    }

    /// Emits `records`; returns the reply's size after them (`usize::MAX` if one cannot be
    /// encoded, which then never fits).
    fn records(&mut self, records: &[Cow<'_, Record>]) -> usize {
        for record in records {
            if record.emit(&mut self.encoder).is_err() {
                return usize::MAX;
            }
        }
        self.encoder.offset()
    }

    /// Forgets everything written past `offset`, compression candidates included.
    fn rollback(&mut self, offset: usize) -> &mut Self {
        self.encoder.set_offset(offset);
        self.encoder.trim();
        self
    }
}

/// The size of the OPT record for `edns`.
fn opt_len(edns: &Edns) -> usize {
    Record::from(edns)
        .to_bytes()
        .map_or(usize::MAX, |b| b.len())
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

//! DNS metrics: queries by type and rcode, latency, forwarding outcomes, records served.

use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};

/// Query types counted under their own name; others count as `other`.
const QTYPES: [&str; 11] = [
    "A", "AAAA", "SRV", "SOA", "NS", "PTR", "ANY", "TXT", "MX", "other", "none",
];
/// Response codes counted under their own name; others count as `other`.
const RCODES: [&str; 8] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "BADVERS", "other",
];

/// The DNS server's Prometheus metrics.
#[derive(Clone, Debug)]
pub struct DnsMetrics {
    /// One counter per (query type, rcode), resolved up front: looking labels up per query
    /// costs a hash and a lock.
    queries: Vec<IntCounter>,
    latency: Histogram,
    forwards: IntCounterVec,
    cache: [IntCounter; 2],
    records: IntGaugeVec,
    upstream_rejected: IntCounter,
    tcp_refused: IntCounterVec,
}

impl DnsMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let queries = IntCounterVec::new(
            Opts::new(
                "beacon_dns_queries_total",
                "DNS queries answered, by query type and response code",
            ),
            &["qtype", "rcode"],
        )?;
        let buckets = vec![
            10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 5e-3, 25e-3, 100e-3, 1.0, 5.0,
        ];
        let latency = Histogram::with_opts(
            HistogramOpts::new(
                "beacon_dns_query_duration_seconds",
                "Time from decoded query to response handed to the socket",
            )
            .buckets(buckets),
        )?;
        let forwards = IntCounterVec::new(
            Opts::new(
                "beacon_dns_forwards_total",
                "Queries for names outside the domain, by outcome",
            ),
            &["result"],
        )?;
        let records = IntGaugeVec::new(
            Opts::new("beacon_dns_records", "Records served, by type"),
            &["type"],
        )?;
        registry.register(Box::new(queries.clone()))?;
        let queries = QTYPES
            .iter()
            .flat_map(|t| RCODES.iter().map(move |r| (t, r)))
            .map(|(t, r)| queries.with_label_values(&[t, r]))
            .collect();
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(forwards.clone()))?;
        let cache_vec = IntCounterVec::new(
            Opts::new(
                "beacon_dns_answer_cache_total",
                "UDP queries answered from the answer cache (hit) or not (miss)",
            ),
            &["result"],
        )?;
        registry.register(Box::new(cache_vec.clone()))?;
        let cache = [
            cache_vec.with_label_values(&["hit"]),
            cache_vec.with_label_values(&["miss"]),
        ];
        registry.register(Box::new(records.clone()))?;
        let upstream_rejected = IntCounter::new(
            "beacon_dns_upstream_replies_rejected_total",
            "Upstream replies ignored: not echoing the query's id and question",
        )?;
        registry.register(Box::new(upstream_rejected.clone()))?;
        let tcp_refused = IntCounterVec::new(
            Opts::new(
                "beacon_dns_tcp_refused_total",
                "DNS-over-TCP connections closed on accept, by the cap they met",
            ),
            &["cap"],
        )?;
        registry.register(Box::new(tcp_refused.clone()))?;
        Ok(Self {
            queries,
            latency,
            forwards,
            cache,
            records,
            upstream_rejected,
            tcp_refused,
        })
    }

    /// Counts one answered query.
    pub fn observe(&self, qtype: Option<RecordType>, rcode: ResponseCode, elapsed: Duration) {
        let t = match qtype {
            Some(RecordType::A) => 0,
            Some(RecordType::AAAA) => 1,
            Some(RecordType::SRV) => 2,
            Some(RecordType::SOA) => 3,
            Some(RecordType::NS) => 4,
            Some(RecordType::PTR) => 5,
            Some(RecordType::ANY) => 6,
            Some(RecordType::TXT) => 7,
            Some(RecordType::MX) => 8,
            Some(_) => 9,
            None => 10,
        };
        self.queries[t * RCODES.len() + rcode_index(rcode)].inc();
        self.latency.observe(elapsed.as_secs_f64());
    }

    /// Counts one query answered from a cache, by its wire query type and rcode.
    pub fn observe_raw(&self, qtype: u16, rcode: u8, elapsed: Duration) {
        let rcode = ResponseCode::from(0, rcode);
        self.observe(Some(RecordType::from(qtype)), rcode, elapsed);
    }

    /// Counts one answer-cache lookup of a cacheable query.
    pub fn cache_lookup(&self, hit: bool) {
        self.cache[usize::from(!hit)].inc();
    }

    /// Counts one forwarding outcome.
    pub fn forwarded(&self, result: &'static str) {
        self.forwards.with_label_values(&[result]).inc();
    }

    /// Counts one upstream reply ignored for not matching its query.
    pub fn upstream_reply_rejected(&self) {
        self.upstream_rejected.inc();
    }

    /// Counts one TCP connection refused at the `cap` (`total` or `per_client`).
    pub fn tcp_refused(&self, cap: &'static str) {
        self.tcp_refused.with_label_values(&[cap]).inc();
    }

    /// Records how many records of each type the served zone holds.
    pub fn set_records(&self, a: usize, aaaa: usize, srv: usize) {
        for (t, n) in [("A", a), ("AAAA", aaaa), ("SRV", srv)] {
            self.records
                .with_label_values(&[t])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
}

fn rcode_index(rcode: ResponseCode) -> usize {
    match rcode {
        ResponseCode::NoError => 0,
        ResponseCode::FormErr => 1,
        ResponseCode::ServFail => 2,
        ResponseCode::NXDomain => 3,
        ResponseCode::NotImp => 4,
        ResponseCode::Refused => 5,
        ResponseCode::BADVERS => 6,
        _ => 7,
    }
}

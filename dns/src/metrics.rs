//! DNS metrics: queries by type and rcode, latency, forwarding outcomes, records served.

use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGaugeVec, Opts, Registry};

/// The DNS server's Prometheus metrics.
#[derive(Clone, Debug)]
pub struct DnsMetrics {
    queries: IntCounterVec,
    latency: Histogram,
    forwards: IntCounterVec,
    records: IntGaugeVec,
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
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(forwards.clone()))?;
        registry.register(Box::new(records.clone()))?;
        Ok(Self {
            queries,
            latency,
            forwards,
            records,
        })
    }

    /// Counts one answered query.
    pub fn observe(&self, qtype: Option<RecordType>, rcode: ResponseCode, elapsed: Duration) {
        let qtype = match qtype {
            Some(
                t @ (RecordType::A
                | RecordType::AAAA
                | RecordType::SRV
                | RecordType::SOA
                | RecordType::NS
                | RecordType::PTR
                | RecordType::ANY
                | RecordType::TXT
                | RecordType::MX),
            ) => t.into(),
            Some(_) => "other",
            None => "none",
        };
        self.queries
            .with_label_values(&[qtype, rcode_label(rcode)])
            .inc();
        self.latency.observe(elapsed.as_secs_f64());
    }

    /// Counts one forwarding outcome.
    pub fn forwarded(&self, result: &'static str) {
        self.forwards.with_label_values(&[result]).inc();
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

fn rcode_label(rcode: ResponseCode) -> &'static str {
    match rcode {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::BADVERS => "BADVERS",
        _ => "other",
    }
}

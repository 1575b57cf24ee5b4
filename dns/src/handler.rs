//! The request handler hickory-server calls for every query: it routes a query to the zone or to
//! the forwarder, applies the header rules, and encodes within the client's size limit.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwapOption;
use hickory_proto::op::{Header, HeaderCounts, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, LowerName, Name, Record, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

use crate::forward::{Forwarded, Forwarder};
use crate::l4lb;
use crate::metrics::DnsMetrics;
use crate::response::{fit, max_answers, udp_edns};
use crate::zone::Zone;

/// Header and size settings that are not part of the zone.
#[derive(Clone, Copy, Debug)]
pub struct HandlerSettings {
    /// RA flag on in-domain answers (`RecurseOn`).
    pub recurse_on: bool,
    /// Set TC on truncated answers (`SetTruncateBit`); when false TC is never set.
    pub set_truncate_bit: bool,
    /// Cap on the UDP size a client's EDNS may ask for.
    pub edns_max_payload: u16,
}

/// The zone being served: empty until the first catalog load, then swapped whole per refresh.
pub type SharedZone = Arc<ArcSwapOption<Zone>>;

/// Answers DNS requests from the current zone, or forwards them.
pub struct DnsHandler {
    origin: LowerName,
    zone: SharedZone,
    forwarder: Forwarder,
    settings: HandlerSettings,
    metrics: DnsMetrics,
}

impl DnsHandler {
    /// A handler for the domain `origin` serving `zone`.
    pub fn new(
        origin: LowerName,
        zone: SharedZone,
        forwarder: Forwarder,
        settings: HandlerSettings,
        metrics: DnsMetrics,
    ) -> Self {
        Self {
            origin,
            zone,
            forwarder,
            settings,
            metrics,
        }
    }

    /// The metrics queries are counted in.
    pub fn metrics(&self) -> &DnsMetrics {
        &self.metrics
    }

    /// An identity of the zone being served (0 before the first load): it changes whenever a
    /// new zone is swapped in, so caches of answers know to start over.
    pub fn zone_id(&self) -> u64 {
        self.zone.load().as_ref().map_or(0, |z| z.generation())
    }

    async fn respond<R: ResponseHandler>(
        &self,
        request: &Request,
        rh: R,
    ) -> (Option<RecordType>, ResponseInfo) {
        if question_is_compressed(request.queries.as_bytes()) {
            // Nothing precedes the question for its name to point at but the header; echoing
            // such a question (hickory-server echoes the raw bytes) would send garbage back.
            let info = Header {
                metadata: request.metadata,
                counts: HeaderCounts::default(),
            };
            return (None, ResponseInfo::from(info));
        }
        if request.metadata.op_code != OpCode::Query {
            return (None, self.error(request, rh, ResponseCode::NotImp).await);
        }
        if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            // RFC 6891 §6.1.3: BADVERS, with an OPT advertising the version we speak (0).
            return (None, self.error(request, rh, ResponseCode::BADVERS).await);
        }
        let Ok(info) = request.request_info() else {
            return (None, self.error(request, rh, ResponseCode::FormErr).await);
        };
        let qtype = info.query.query_type();
        let name = info.query.name();
        let zone = self.zone.load();
        // The l4lb zones are ours even before the first load: SERVFAIL then, never forwarded.
        let in_domain = match zone.as_ref() {
            Some(zone) => zone.contains(name),
            None => self.origin.zone_of(name) || l4lb::covers(name),
        };
        if !in_domain {
            if !self.forwarder.allows(request.src().ip()) {
                // Not an open resolver: names in the domain stay open to all, others are
                // forwarded only for the clients allowed.
                self.metrics.forwarded("denied");
                let info = self.error(request, rh, ResponseCode::Refused).await;
                return (Some(qtype), info);
            }
            return (Some(qtype), self.forward(request, name, rh).await);
        }
        if info.query.query_class() != DNSClass::IN {
            return (
                Some(qtype),
                self.error(request, rh, ResponseCode::Refused).await,
            );
        }
        let Some(zone) = zone.as_ref() else {
            // Not loaded yet: never NXDOMAIN for a name that may exist (Mesos-DNS issue #344).
            return (
                Some(qtype),
                self.error(request, rh, ResponseCode::ServFail).await,
            );
        };
        let original = info.query.original();
        (
            Some(qtype),
            self.answer(request, zone, original.name(), qtype, rh).await,
        )
    }

    /// Answers from `zone`, sized to what the client can take.
    async fn answer<R: ResponseHandler>(
        &self,
        request: &Request,
        zone: &Zone,
        name: &Name,
        qtype: RecordType,
        rh: R,
    ) -> ResponseInfo {
        let (edns, limit) = match request.protocol() {
            Protocol::Udp => udp_edns(request.edns.as_ref(), self.settings.edns_max_payload),
            _ => (
                request
                    .edns
                    .as_ref()
                    .and_then(|e| udp_edns(Some(e), self.settings.edns_max_payload).0),
                u16::MAX,
            ),
        };
        let cap = max_answers(limit);
        let mut answer = zone.answer_within(name, qtype, &mut rand::rng(), cap);
        let truncated = fit(&mut answer, &request.queries, edns.as_ref(), limit);
        let mut meta = Metadata::response_from_request(&request.metadata);
        meta.authoritative = true;
        meta.recursion_available = self.settings.recurse_on;
        meta.response_code = answer.rcode;
        meta.truncation = truncated && self.settings.set_truncate_bit;
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(edns) = &edns {
            builder.edns(edns);
        }
        let response = builder.build(
            meta,
            answer.answers.iter().map(Cow::as_ref),
            answer.authority.iter().map(Cow::as_ref),
            std::iter::empty::<&Record>(),
            answer.additionals.iter().map(Cow::as_ref),
        );
        send(rh, response, &meta).await
    }

    /// An error reply: the question echoed, no records, and OPT when the request had one
    /// (RFC 6891 §7: every reply to an EDNS request carries OPT).
    async fn error<R: ResponseHandler>(
        &self,
        request: &Request,
        rh: R,
        code: ResponseCode,
    ) -> ResponseInfo {
        let (edns, _) = udp_edns(request.edns.as_ref(), self.settings.edns_max_payload);
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(edns) = &edns {
            builder.edns(edns);
        }
        let response = builder.error_msg(&request.metadata, code);
        let meta = *response.metadata();
        send(rh, response, &meta).await
    }

    async fn forward<R: ResponseHandler>(
        &self,
        request: &Request,
        name: &LowerName,
        rh: R,
    ) -> ResponseInfo {
        let tcp = request.protocol() != Protocol::Udp;
        let forwarded = self
            .forwarder
            .forward(name, request.as_slice(), tcp, &self.metrics);
        let (code, label) = match forwarded.await {
            Forwarded::Reply(reply) => {
                self.metrics.forwarded("reply");
                let mut builder = MessageResponseBuilder::from_message_request(request);
                if let Some(edns) = &reply.edns {
                    builder.edns(edns);
                }
                let meta = reply.metadata;
                let response = builder.build(
                    meta,
                    reply.answers.iter(),
                    reply.authorities.iter(),
                    std::iter::empty(),
                    reply.additionals.iter(),
                );
                return send(rh, response, &meta).await;
            }
            Forwarded::Refused => (ResponseCode::Refused, "refused"),
            Forwarded::Failed => (ResponseCode::ServFail, "failed"),
            Forwarded::Overloaded => (ResponseCode::ServFail, "overloaded"),
        };
        self.metrics.forwarded(label);
        self.error(request, rh, code).await
    }
}

#[async_trait::async_trait]
impl RequestHandler for DnsHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        rh: R,
    ) -> ResponseInfo {
        let start = Instant::now();
        let (qtype, info) = self.respond(request, rh).await;
        self.metrics
            .observe(qtype, info.response_code, start.elapsed());
        info
    }
}

async fn send<'a, R: ResponseHandler>(
    mut rh: R,
    response: hickory_server::zone_handler::MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
    meta: &Metadata,
) -> ResponseInfo {
    match rh.send_response(response).await {
        Ok(info) => info,
        Err(error) => {
            tracing::debug!(%error, "could not send a DNS response");
            let mut failed = *meta;
            failed.response_code = ResponseCode::ServFail;
            ResponseInfo::from(Header {
                metadata: failed,
                counts: HeaderCounts::default(),
            })
        }
    }
}

/// Whether a question section (as received) uses a compression pointer in a name.
fn question_is_compressed(mut bytes: &[u8]) -> bool {
    // Walk each question: labels up to the root, then type and class.
    while let Some(&len) = bytes.first() {
        match len {
            0 => bytes = bytes.get(5..).unwrap_or_default(),
            l if l & 0xc0 != 0 => return true,
            l => bytes = bytes.get(usize::from(l) + 1..).unwrap_or_default(),
        }
    }
    false
}

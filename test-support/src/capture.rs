//! A `ResponseHandler` that keeps the bytes a reply would go on the wire as, so a
//! `beacon_dns::handler::DnsHandler` can be tested without sockets.
//!
//! UDP is encoded by Beacon's own `beacon_dns::response::encode_udp` with the UDP loop's limit
//! (512 without EDNS, the advertised size, at least 512, with it). TCP is encoded like
//! hickory-server's `ResponseHandle` (`MessageResponse::destructive_emit`, capped at 65535),
//! with a bare SERVFAIL header when encoding fails.

use std::sync::{Arc, Mutex};

use hickory_proto::op::{
    Header, HeaderCounts, Message, MessageType, Metadata, OpCode, ResponseCode,
};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use hickory_server::net::NetError;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;

/// What a [`Capture`] put on the wire.
#[derive(Debug)]
pub struct Sent {
    /// The encoded reply.
    pub bytes: Vec<u8>,
    /// The size limit the encoder had.
    pub limit: u16,
    /// Encoding failed and a bare SERVFAIL header went instead (hickory's fallback).
    pub fallback: bool,
}

/// Keeps every reply sent through it (and its clones) over `protocol`.
#[derive(Clone, Debug)]
pub struct Capture {
    protocol: Protocol,
    sent: Arc<Mutex<Vec<Sent>>>,
}

impl Capture {
    /// A capture of replies sent over `protocol` (`Udp` or `Tcp`).
    pub fn new(protocol: Protocol) -> Self {
        Self {
            protocol,
            sent: Arc::default(),
        }
    }

    /// Takes what was sent so far.
    pub fn take(&self) -> Vec<Sent> {
        std::mem::take(&mut self.sent.lock().unwrap())
    }

    /// Takes the one reply sent so far; panics unless there was exactly one.
    pub fn take_one(&self) -> Sent {
        let mut sent = self.take();
        assert_eq!(sent.len(), 1, "expected exactly one reply");
        sent.pop().unwrap()
    }

    /// The one reply sent so far, decoded.
    pub fn message(&self) -> Message {
        Message::from_vec(&self.take_one().bytes).expect("the reply decodes")
    }
}

#[async_trait::async_trait]
impl ResponseHandler for Capture {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let limit = match self.protocol {
            Protocol::Udp => response.edns().map_or(512, |e| e.max_payload().max(512)),
            _ => u16::MAX,
        };
        let id = response.metadata().id;
        let (info, bytes, fallback) = if self.protocol == Protocol::Udp {
            let (info, bytes) = beacon_dns::response::encode_udp(response, limit);
            let fallback = bytes.len() == 12 && info.response_code == ResponseCode::ServFail;
            (info, bytes, fallback)
        } else {
            let mut bytes = Vec::with_capacity(512);
            let result = {
                let mut encoder = BinEncoder::new(&mut bytes);
                encoder.set_max_size(limit);
                response.destructive_emit(&mut encoder)
            };
            match result {
                Ok(info) => (info, bytes, false),
                Err(_) => {
                    bytes.clear();
                    let mut metadata = Metadata::new(id, MessageType::Response, OpCode::Query);
                    metadata.response_code = ResponseCode::ServFail;
                    let header = Header {
                        metadata,
                        counts: HeaderCounts::default(),
                    };
                    header.emit(&mut BinEncoder::new(&mut bytes)).unwrap();
                    (ResponseInfo::from(header), bytes, true)
                }
            }
        };
        self.sent.lock().unwrap().push(Sent {
            bytes,
            limit,
            fallback,
        });
        Ok(info)
    }
}

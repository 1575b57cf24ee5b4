//! The answer a zone gives, before encoding. Its own module because the Mesos zone
//! ([`crate::zone`]), the l4lb zones ([`crate::l4lb`]) and the size rules ([`crate::response`])
//! all speak it, and none of them should depend on another for it.

use std::borrow::Cow;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::Record;

/// One answer, before encoding: rcode and the three sections.
#[derive(Debug, Default)]
pub struct Answer<'z> {
    /// Response code.
    pub rcode: ResponseCode,
    /// ANSWER section.
    pub answers: Vec<Cow<'z, Record>>,
    /// AUTHORITY section.
    pub authority: Vec<Cow<'z, Record>>,
    /// ADDITIONAL section (without OPT).
    pub additionals: Vec<Cow<'z, Record>>,
}

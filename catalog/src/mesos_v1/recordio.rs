//! RecordIO, the framing of the operator API's streamed responses (Mesos `docs/recordio.md`):
//! each record is `<length in ASCII decimal>\n<length bytes>`.
//!
//! HTTP chunks (and any proxy on the way) cut the stream wherever they like, so the decoder keeps
//! what it has been fed and cuts records by their length prefix alone.

/// The longest length prefix accepted: 12 digits (under a terabyte), as dcos-net allowed. A
/// longer run of bytes without `\n` means the stream is not RecordIO.
pub const MAX_PREFIX_DIGITS: usize = 12;

/// Why a RecordIO stream cannot be decoded. Once the decoder reports one, it reports it again on
/// every call: the stream is lost and the caller reconnects.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Occurs when more than [`MAX_PREFIX_DIGITS`] bytes arrive without the `\n` ending a prefix.
    #[error("record length prefix longer than {MAX_PREFIX_DIGITS} bytes without a newline")]
    PrefixTooLong,
    /// Occurs when the length prefix holds something other than ASCII digits.
    #[error("record length prefix holds byte {byte:#04x}, not a decimal digit")]
    BadPrefix {
        /// The offending byte.
        byte: u8,
    },
    /// Occurs when a newline comes before any digit.
    #[error("record length prefix is empty")]
    EmptyPrefix,
    /// Occurs when a record declares more bytes than the decoder was told to accept.
    #[error("record declares {declared} bytes, more than the maximum of {max}")]
    TooLarge {
        /// The declared length.
        declared: u64,
        /// The configured maximum.
        max: usize,
    },
}

/// An incremental RecordIO decoder: [`push`](Self::push) bytes as they arrive, then take
/// complete records with [`next_record`](Self::next_record) until it returns `Ok(None)`.
#[derive(Debug)]
pub struct RecordIo {
    /// Bytes received and not yet returned, starting at a record boundary.
    buf: Vec<u8>,
    /// The largest record accepted.
    max_len: usize,
    /// The current record's (prefix length including `\n`, body length), once its prefix is in.
    header: Option<(usize, usize)>,
    /// The error that ended the stream.
    failed: Option<FrameError>,
}

impl RecordIo {
    /// A decoder that rejects records longer than `max_len` bytes (a SUBSCRIBED snapshot of a big
    /// cluster is tens of megabytes; the agent allows 256 MiB).
    pub fn new(max_len: usize) -> Self {
        Self {
            buf: Vec::new(),
            max_len,
            header: None,
            failed: None,
        }
    }

    /// Appends bytes as received. Nothing is decoded until [`next_record`](Self::next_record).
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Bytes held that no complete record has taken yet.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete record, `Ok(None)` when more bytes are needed, or the error that ended
    /// the stream (again on every later call).
    pub fn next_record(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let header = match self.header {
            Some(header) => header,
            None => match self.read_prefix() {
                Ok(Some(header)) => header,
                Ok(None) => return Ok(None),
                Err(error) => {
                    self.buf = Vec::new();
                    self.failed = Some(error.clone());
                    return Err(error);
                }
            },
        };
        self.header = Some(header);
        let (prefix_len, body_len) = header;
        let end = prefix_len + body_len;
        if self.buf.len() < end {
            return Ok(None);
        }
        let record = self.buf[prefix_len..end].to_vec();
        // The tail is at most what arrived after this record: usually less than one chunk.
        self.buf.drain(..end);
        self.header = None;
        Ok(Some(record))
    }

    /// Reads the length prefix at the front of the buffer: `(prefix length with the newline,
    /// body length)`, or `None` until its newline has arrived.
    fn read_prefix(&self) -> Result<Option<(usize, usize)>, FrameError> {
        let mut declared: u64 = 0;
        for (i, &byte) in self.buf.iter().enumerate() {
            if byte == b'\n' {
                if i == 0 {
                    return Err(FrameError::EmptyPrefix);
                }
                let body_len = usize::try_from(declared)
                    .ok()
                    .filter(|&len| len <= self.max_len)
                    .ok_or(FrameError::TooLarge {
                        declared,
                        max: self.max_len,
                    })?;
                return Ok(Some((i + 1, body_len)));
            }
            if i >= MAX_PREFIX_DIGITS {
                return Err(FrameError::PrefixTooLong);
            }
            if !byte.is_ascii_digit() {
                return Err(FrameError::BadPrefix { byte });
            }
            // At most 12 digits: no overflow.
            declared = declared * 10 + u64::from(byte - b'0');
        }
        Ok(None)
    }
}

/// Frames one record: `<len>\n<bytes>`.
pub fn encode_record(record: &[u8]) -> Vec<u8> {
    let mut out = format!("{}\n", record.len()).into_bytes();
    out.extend_from_slice(record);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records_of(stream: &[u8], max: usize, cut: usize) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut decoder = RecordIo::new(max);
        let mut out = Vec::new();
        for chunk in stream.chunks(cut.max(1)) {
            decoder.push(chunk);
            while let Some(record) = decoder.next_record()? {
                out.push(record);
            }
        }
        Ok(out)
    }

    #[test]
    fn records_are_cut_by_length_whatever_the_chunks() {
        let records: [&[u8]; 4] = [
            br#"{"type":"SUBSCRIBED","subscribed":{}}"#,
            b"",
            br#"{"type":"HEARTBEAT"}"#,
            "{\"type\":\"x\",\"n\":\"\n12\n\"}".as_bytes(),
        ];
        let stream: Vec<u8> = records.iter().flat_map(|r| encode_record(r)).collect();
        for cut in 1..=stream.len() {
            let got = records_of(&stream, 1 << 20, cut).unwrap();
            assert_eq!(got, records, "chunks of {cut}");
        }
    }

    #[test]
    fn every_split_point_of_two_chunks() {
        let stream = [encode_record(b"hello"), encode_record(b"world!")].concat();
        for split in 0..=stream.len() {
            let mut decoder = RecordIo::new(64);
            decoder.push(&stream[..split]);
            let mut got = Vec::new();
            while let Some(r) = decoder.next_record().unwrap() {
                got.push(r);
            }
            decoder.push(&stream[split..]);
            while let Some(r) = decoder.next_record().unwrap() {
                got.push(r);
            }
            assert_eq!(got, [b"hello".to_vec(), b"world!".to_vec()]);
            assert_eq!(decoder.buffered(), 0);
        }
    }

    #[test]
    fn a_partial_record_waits() {
        let mut decoder = RecordIo::new(64);
        decoder.push(b"10\nabc");
        assert_eq!(decoder.next_record(), Ok(None));
        assert_eq!(decoder.next_record(), Ok(None));
        decoder.push(b"defghij4\nab");
        assert_eq!(decoder.next_record(), Ok(Some(b"abcdefghij".to_vec())));
        assert_eq!(decoder.next_record(), Ok(None));
        assert_eq!(decoder.buffered(), 4);
    }

    #[test]
    fn bad_prefixes_are_errors_that_stay() {
        let cases: [(&[u8], FrameError); 5] = [
            (b"12a\n", FrameError::BadPrefix { byte: b'a' }),
            (b"-1\n", FrameError::BadPrefix { byte: b'-' }),
            (b" 1\n", FrameError::BadPrefix { byte: b' ' }),
            (b"\n{}", FrameError::EmptyPrefix),
            (b"1234567890123", FrameError::PrefixTooLong),
        ];
        for (stream, want) in cases {
            let mut decoder = RecordIo::new(usize::MAX);
            decoder.push(stream);
            assert_eq!(decoder.next_record(), Err(want.clone()), "{stream:?}");
            decoder.push(b"2\n{}");
            assert_eq!(decoder.next_record(), Err(want), "{stream:?} again");
            assert_eq!(decoder.buffered(), 0);
        }
        // Twelve digits are allowed, and a bad byte is caught before the newline arrives.
        let mut decoder = RecordIo::new(usize::MAX);
        decoder.push(b"000000000002\n{}");
        assert_eq!(decoder.next_record(), Ok(Some(b"{}".to_vec())));
        let mut decoder = RecordIo::new(64);
        decoder.push(b"1x");
        assert!(decoder.next_record().is_err());
    }

    #[test]
    fn oversize_records_are_refused_before_their_body() {
        let mut decoder = RecordIo::new(4);
        decoder.push(b"4\nabcd5\n");
        assert_eq!(decoder.next_record(), Ok(Some(b"abcd".to_vec())));
        assert_eq!(
            decoder.next_record(),
            Err(FrameError::TooLarge {
                declared: 5,
                max: 4
            })
        );
        let mut decoder = RecordIo::new(usize::MAX);
        decoder.push(b"999999999999\n");
        assert_eq!(decoder.next_record(), Ok(None));
        assert!(
            FrameError::TooLarge {
                declared: 5,
                max: 4
            }
            .to_string()
            .contains("5 bytes")
        );
    }
}

//! Stream framing of SIP messages over TCP and TLS (RFC 3261 §18.3), with CRLF
//! keep-alives (RFC 5626 §4.4.1). The codec cuts frames only; parsing is done above it
//! with [`parse_message`](crate::message::parse_message).

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::message::scan;

/// The double CRLF "ping" a client sends on a stream (RFC 5626 §4.4.1).
const PING: &[u8] = b"\r\n\r\n";

/// The single CRLF "pong" a server answers a ping with (RFC 5626 §4.4.1).
pub const PONG: &[u8] = b"\r\n";

/// One unit cut from a byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete message: the header section and exactly Content-Length body bytes.
    Message(Bytes),
    /// A double-CRLF keep-alive ping; the receiver answers with [`PONG`].
    Ping,
}

/// Why the stream can no longer be framed; the connection must be closed.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The message (or the header section still arriving) exceeds the size limit.
    #[error("message too large: at least {size} bytes, limit {limit}")]
    TooLarge {
        /// Bytes known to belong to the message.
        size: usize,
        /// Configured limit.
        limit: usize,
    },
    /// No Content-Length header: mandatory on streams (RFC 3261 §18.3, §20.14).
    #[error("no Content-Length on a stream transport")]
    MissingContentLength,
    /// Content-Length is not a number, or appears twice with different values.
    #[error("bad Content-Length: {0}")]
    BadContentLength(&'static str),
    /// The underlying stream failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// SIP framer for stream transports.
///
/// Leading CRLFs are skipped (RFC 3261 §7.5) except a double CRLF at a message
/// boundary, which is reported as [`Frame::Ping`]. The header section is scanned
/// incrementally, so byte-by-byte input costs linear time, and the size limit is
/// enforced before the whole message is buffered: a header section that does not end
/// within `max_message_size` bytes, or a Content-Length that would exceed it, is an
/// error at once.
#[derive(Debug, Clone)]
pub struct SipStreamCodec {
    max_message_size: usize,
    /// Offset from which the search for the end of the header section resumes.
    scanned: usize,
    /// Total frame length once the header section and Content-Length are known.
    frame_len: Option<usize>,
}

impl SipStreamCodec {
    /// A codec that refuses messages longer than `max_message_size` bytes.
    pub fn new(max_message_size: usize) -> Self {
        SipStreamCodec {
            max_message_size,
            scanned: 0,
            frame_len: None,
        }
    }

    /// Skips keep-alive CRLFs at a message boundary. Returns `Some(Frame::Ping)` for a
    /// double CRLF, `None` when the buffer starts a message or needs more bytes.
    fn skip_keepalives(buf: &mut BytesMut) -> Option<Frame> {
        loop {
            if buf.starts_with(PING) {
                buf.advance(PING.len());
                return Some(Frame::Ping);
            }
            match buf.first() {
                Some(b'\r' | b'\n') => {
                    if PING.starts_with(buf) {
                        // "\r", "\r\n" or "\r\n\r": may still become a ping.
                        return None;
                    }
                    buf.advance(1);
                }
                _ => return None,
            }
        }
    }

    /// Resumes the search for the empty line ending the header section; returns the
    /// offset of the first body byte once found.
    fn find_header_end(&mut self, buf: &[u8]) -> Option<usize> {
        while let Some(rel) = buf
            .get(self.scanned..)
            .and_then(|s| memchr::memchr(b'\n', s))
        {
            let nl = self.scanned + rel;
            match (buf.get(nl + 1), buf.get(nl + 2)) {
                (Some(b'\n'), _) => return Some(nl + 2),
                (Some(b'\r'), Some(b'\n')) => return Some(nl + 3),
                // Not enough bytes to decide: look at this line end again later.
                (None, _) | (Some(b'\r'), None) => {
                    self.scanned = nl;
                    return None;
                }
                _ => self.scanned = nl + 1,
            }
        }
        self.scanned = buf.len();
        None
    }
}

/// The Content-Length of a header section (long or compact `l` form, RFC 3261 §7.3.3;
/// the value may be folded onto continuation lines, §7.3.1).
fn content_length(headers: &[u8]) -> Result<usize, CodecError> {
    const NOT_A_NUMBER: CodecError =
        CodecError::BadContentLength("not a decimal number below 10^9");
    let mut found: Option<usize> = None;
    let mut lines = headers.split(|&c| c == b'\n').peekable();
    while let Some(line) = lines.next() {
        if matches!(line.first(), Some(b' ' | b'\t')) {
            continue; // continuation of a header that is not Content-Length
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        let name = scan::trim(name);
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        // The digits must sit on exactly one of the (folded) lines of the value.
        let mut digits: Option<&[u8]> = None;
        let mut segment = scan::trim(value.get(1..).unwrap_or_default());
        loop {
            if !segment.is_empty() {
                if digits.is_some() {
                    return Err(NOT_A_NUMBER);
                }
                digits = Some(segment);
            }
            match lines.next_if(|l| matches!(l.first(), Some(b' ' | b'\t'))) {
                Some(next) => segment = scan::trim(next),
                None => break,
            }
        }
        let value = digits.unwrap_or_default();
        if value.is_empty() || value.len() > 9 || !value.iter().all(u8::is_ascii_digit) {
            return Err(NOT_A_NUMBER);
        }
        let n = value
            .iter()
            .fold(0usize, |acc, d| acc * 10 + usize::from(d - b'0'));
        if found.is_some_and(|f| f != n) {
            return Err(CodecError::BadContentLength("conflicting values"));
        }
        found = Some(n);
    }
    found.ok_or(CodecError::MissingContentLength)
}

impl Decoder for SipStreamCodec {
    type Item = Frame;
    type Error = CodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        let frame_len = match self.frame_len {
            Some(n) => n,
            None => {
                if self.scanned == 0 {
                    if let Some(ping) = Self::skip_keepalives(buf) {
                        return Ok(Some(ping));
                    }
                    if matches!(buf.first(), None | Some(b'\r' | b'\n')) {
                        return Ok(None); // empty, or a ping still arriving
                    }
                }
                let Some(header_end) = self.find_header_end(buf) else {
                    if buf.len() >= self.max_message_size {
                        return Err(CodecError::TooLarge {
                            size: buf.len(),
                            limit: self.max_message_size,
                        });
                    }
                    return Ok(None);
                };
                let body_len = content_length(buf.get(..header_end).unwrap_or_default())?;
                let total = header_end.saturating_add(body_len);
                if total > self.max_message_size {
                    return Err(CodecError::TooLarge {
                        size: total,
                        limit: self.max_message_size,
                    });
                }
                self.frame_len = Some(total);
                total
            }
        };
        if buf.len() < frame_len {
            buf.reserve(frame_len - buf.len());
            return Ok(None);
        }
        self.frame_len = None;
        self.scanned = 0;
        Ok(Some(Frame::Message(buf.split_to(frame_len).freeze())))
    }
}

impl Encoder<Bytes> for SipStreamCodec {
    type Error = CodecError;

    /// Messages are already serialized; a stream needs no extra framing beyond
    /// their Content-Length.
    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), CodecError> {
        dst.extend_from_slice(&item);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"OPTIONS sip:a@example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP h.example.com;branch=z9hG4bK1\r\n\
To: <sip:a@example.com>\r\nFrom: <sip:b@example.com>;tag=1\r\n\
Call-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 4\r\n\r\nbody";

    fn decode_all(codec: &mut SipStreamCodec, buf: &mut BytesMut) -> Vec<Frame> {
        let mut out = Vec::new();
        while let Some(f) = codec.decode(buf).unwrap() {
            out.push(f);
        }
        out
    }

    #[test]
    fn whole_message_is_one_frame() {
        let mut codec = SipStreamCodec::new(65_535);
        let mut buf = BytesMut::from(MSG);
        assert_eq!(
            decode_all(&mut codec, &mut buf),
            vec![Frame::Message(Bytes::from_static(MSG))]
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn byte_by_byte_yields_the_message_once_complete() {
        let mut codec = SipStreamCodec::new(65_535);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for (i, b) in MSG.iter().enumerate() {
            buf.extend_from_slice(&[*b]);
            let got = decode_all(&mut codec, &mut buf);
            if i + 1 < MSG.len() {
                assert!(got.is_empty(), "frame cut early at byte {i}");
            }
            frames.extend(got);
        }
        assert_eq!(frames, vec![Frame::Message(Bytes::from_static(MSG))]);
    }

    #[test]
    fn concatenated_messages_and_pings_split_at_boundaries() {
        let mut codec = SipStreamCodec::new(65_535);
        let mut input = Vec::new();
        input.extend_from_slice(b"\r\n\r\n");
        input.extend_from_slice(MSG);
        input.extend_from_slice(MSG);
        input.extend_from_slice(b"\r\n\r\n");
        input.extend_from_slice(&MSG[..40]);
        let mut buf = BytesMut::from(&input[..]);
        let frames = decode_all(&mut codec, &mut buf);
        let m = Frame::Message(Bytes::from_static(MSG));
        assert_eq!(frames, vec![Frame::Ping, m.clone(), m.clone(), Frame::Ping]);
        buf.extend_from_slice(&MSG[40..]);
        assert_eq!(decode_all(&mut codec, &mut buf), vec![m]);
    }

    #[test]
    fn single_crlf_pong_is_skipped_and_lf_only_headers_are_framed() {
        let mut codec = SipStreamCodec::new(65_535);
        let lf = b"MESSAGE sip:a@b SIP/2.0\nl: 2\n\nhi";
        let mut buf = BytesMut::from(&b"\r\n"[..]);
        assert!(decode_all(&mut codec, &mut buf).is_empty());
        buf.extend_from_slice(lf);
        assert_eq!(
            decode_all(&mut codec, &mut buf),
            vec![Frame::Message(Bytes::from_static(lf))]
        );
    }

    #[test]
    fn split_across_the_header_terminator() {
        let mut codec = SipStreamCodec::new(65_535);
        let end = MSG.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        for cut in end..end + 4 {
            let mut buf = BytesMut::from(&MSG[..cut]);
            assert!(decode_all(&mut codec, &mut buf).is_empty());
            buf.extend_from_slice(&MSG[cut..]);
            assert_eq!(decode_all(&mut codec, &mut buf).len(), 1, "cut at {cut}");
        }
    }

    #[test]
    fn endless_headers_fail_at_the_limit_without_buffering_more() {
        let mut codec = SipStreamCodec::new(1024);
        let mut buf = BytesMut::new();
        let mut err = None;
        for _ in 0..200 {
            buf.extend_from_slice(b"X-Bomb: aaaaaaaaaa\r\n");
            match codec.decode(&mut buf) {
                Ok(None) => {}
                Ok(Some(f)) => panic!("unexpected frame {f:?}"),
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        match err {
            Some(CodecError::TooLarge { size, limit }) => {
                assert_eq!(limit, 1024);
                assert!(size < 1024 + 20, "buffered {size} bytes");
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[test]
    fn content_length_beyond_the_limit_fails_before_the_body_arrives() {
        let mut codec = SipStreamCodec::new(1024);
        let mut buf =
            BytesMut::from(&b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 5000\r\n\r\n"[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(CodecError::TooLarge { size, limit: 1024 }) if size > 5000
        ));
    }

    #[test]
    fn folded_content_length_is_read() {
        let msg = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length:\r\n   3\r\nTo: x\r\n\r\nabc";
        let mut codec = SipStreamCodec::new(1024);
        let mut buf = BytesMut::from(&msg[..]);
        assert_eq!(
            decode_all(&mut codec, &mut buf),
            vec![Frame::Message(Bytes::from_static(msg))]
        );
        let split = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 1\r\n 2\r\n\r\n";
        let mut buf = BytesMut::from(&split[..]);
        assert!(matches!(
            SipStreamCodec::new(1024).decode(&mut buf),
            Err(CodecError::BadContentLength(_))
        ));
    }

    #[test]
    fn missing_or_bad_content_length_is_an_error() {
        let mut codec = SipStreamCodec::new(1024);
        let mut buf = BytesMut::from(&b"INVITE sip:a@b SIP/2.0\r\nTo: x\r\n\r\n"[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(CodecError::MissingContentLength)
        ));
        for bad in [
            &b"A sip:a SIP/2.0\r\nContent-Length: -1\r\n\r\n"[..],
            b"A sip:a SIP/2.0\r\nContent-Length: 99999999999\r\n\r\n",
            b"A sip:a SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\n",
        ] {
            let mut codec = SipStreamCodec::new(1024);
            let mut buf = BytesMut::from(bad);
            assert!(
                matches!(codec.decode(&mut buf), Err(CodecError::BadContentLength(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn binary_garbage_without_line_ends_hits_the_limit() {
        let mut codec = SipStreamCodec::new(512);
        let mut buf = BytesMut::from(&[0xffu8, 0x00, 0x13, 0x37][..]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(&[0xab; 600]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(CodecError::TooLarge { .. })
        ));
    }

    fn message_with_body(body: &[u8]) -> Vec<u8> {
        let mut m = format!(
            "MESSAGE sip:a@b SIP/2.0\r\nl: {}\r\nCall-ID: x\r\n\r\n",
            body.len()
        )
        .into_bytes();
        m.extend_from_slice(body);
        m
    }

    proptest::proptest! {
        #[test]
        fn any_segmentation_yields_the_same_frames(
            bodies in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..64), 1..5),
            pings in proptest::collection::vec(proptest::bool::ANY, 5),
            cuts in proptest::collection::vec(1usize..40, 1..30),
        ) {
            let mut input = Vec::new();
            let mut expected = Vec::new();
            for (body, ping) in bodies.iter().zip(&pings) {
                if *ping {
                    input.extend_from_slice(PING);
                    expected.push(Frame::Ping);
                }
                let m = message_with_body(body);
                input.extend_from_slice(&m);
                expected.push(Frame::Message(Bytes::from(m)));
            }
            let mut codec = SipStreamCodec::new(65_535);
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            let mut rest = &input[..];
            for cut in cuts.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (part, tail) = rest.split_at((*cut).min(rest.len()));
                buf.extend_from_slice(part);
                rest = tail;
                got.extend(decode_all(&mut codec, &mut buf));
            }
            proptest::prop_assert_eq!(got, expected);
            proptest::prop_assert!(buf.is_empty());
        }

        #[test]
        fn arbitrary_bytes_never_panic_nor_buffer_past_the_limit(
            chunks in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..128), 0..40),
        ) {
            let mut codec = SipStreamCodec::new(1024);
            let mut buf = BytesMut::new();
            for chunk in &chunks {
                buf.extend_from_slice(chunk);
                loop {
                    match codec.decode(&mut buf) {
                        Ok(Some(_)) => continue,
                        Ok(None) => {
                            proptest::prop_assert!(buf.len() < 1024, "buffered {} bytes", buf.len());
                            break;
                        }
                        Err(_) => return Ok(()),
                    }
                }
            }
        }
    }

    #[test]
    fn encoder_writes_the_bytes_unchanged() {
        let mut codec = SipStreamCodec::new(1024);
        let mut out = BytesMut::new();
        codec.encode(Bytes::from_static(MSG), &mut out).unwrap();
        codec.encode(Bytes::from_static(PONG), &mut out).unwrap();
        assert_eq!(&out[..MSG.len()], MSG);
        assert_eq!(&out[MSG.len()..], PONG);
    }
}

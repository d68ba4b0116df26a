//! Hostile input: truncation, size limits, header bombs, binary garbage, NUL bytes.
//! None may panic; each yields the error it names.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ims_sip::message::{header_section_end, parse_message, ParseLimits};
use ims_sip::{ParseError, SipMessage};

const OPTIONS: &[u8] = b"OPTIONS sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK776\r\n\
Max-Forwards: 70\r\n\
To: <sip:bob@example.com>\r\n\
From: <sip:alice@example.com>;tag=1\r\n\
Call-ID: hostile-1\r\n\
CSeq: 1 OPTIONS\r\n\
Content-Length: 4\r\n\
\r\n\
body";

/// The OPTIONS request with `extra` header lines inserted before Content-Length.
fn with_headers(extra: &[u8]) -> Vec<u8> {
    let at = OPTIONS
        .windows(16)
        .position(|w| w == b"Content-Length: ")
        .unwrap();
    let mut out = OPTIONS[..at].to_vec();
    out.extend_from_slice(extra);
    out.extend_from_slice(&OPTIONS[at..]);
    out
}

fn big_limits() -> ParseLimits {
    ParseLimits {
        max_message_size: 16 << 20,
        ..ParseLimits::default()
    }
}

#[test]
fn the_reference_message_parses() {
    let msg = SipMessage::parse(OPTIONS).unwrap();
    assert_eq!(&msg.body()[..], b"body");
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let headers_end = header_section_end(OPTIONS, 0).unwrap();
    for cut in 0..OPTIONS.len() {
        let err = SipMessage::parse(&OPTIONS[..cut]).unwrap_err();
        if cut < headers_end {
            assert_eq!(err, ParseError::Incomplete, "cut at {cut}");
        } else {
            assert_eq!(
                err,
                ParseError::BodyTooShort {
                    declared: 4,
                    available: cut - headers_end
                },
                "cut at {cut}"
            );
        }
    }
}

#[test]
fn oversized_message_is_too_large_and_answered_513() {
    let limits = ParseLimits::default();
    let mut msg = OPTIONS.to_vec();
    msg.resize(limits.max_message_size + 1, b'x');
    let err = parse_message(msg.into(), &limits).unwrap_err();
    assert_eq!(
        err,
        ParseError::TooLarge {
            size: limits.max_message_size + 1,
            limit: limits.max_message_size
        }
    );
    // RFC 3261 §21.5.14 / §18.1.1: 513 Message Too Large.
    assert_eq!(err.status_code(), 513);
}

#[test]
fn header_bomb_is_too_many_headers() {
    let bomb = b"X-B: 1\r\n".repeat(100_000);
    let input = with_headers(&bomb);
    // Within the default size limit it is refused for size already...
    assert!(matches!(
        SipMessage::parse(input.clone()).unwrap_err(),
        ParseError::TooLarge { .. }
    ));
    // ...and with the size limit lifted, for the number of headers.
    let err = parse_message(input.into(), &big_limits()).unwrap_err();
    assert_eq!(
        err,
        ParseError::TooManyHeaders {
            limit: ParseLimits::default().max_headers
        }
    );
    assert_eq!(err.status_code(), 400);
}

#[test]
fn one_megabyte_header_line() {
    let mut line = b"X-Long: ".to_vec();
    line.resize(1 << 20, b'a');
    line.extend_from_slice(b"\r\n");
    let input = with_headers(&line);
    assert!(matches!(
        SipMessage::parse(input.clone()).unwrap_err(),
        ParseError::TooLarge { .. }
    ));
    // Accepted when the operator allows such sizes: it is a well-formed header.
    let msg = parse_message(input.clone().into(), &big_limits()).unwrap();
    let value = msg
        .headers
        .get_value(&ims_sip::HeaderName::from_bytes(b"x-long"))
        .unwrap();
    assert_eq!(value.len(), (1 << 20) - 8);
    assert_eq!(&msg.to_bytes()[..], &input[..]);
    // A 1 MB line that never ends is incomplete, not a hang or a panic.
    let unterminated = [&OPTIONS[..40], &line[..line.len() - 2]].concat();
    assert_eq!(
        parse_message(unterminated.into(), &big_limits()).unwrap_err(),
        ParseError::Incomplete
    );
}

#[test]
fn nul_bytes() {
    // In the method.
    let input = [b"OPT\0IONS".as_slice(), &OPTIONS[7..]].concat();
    assert_eq!(
        SipMessage::parse(input).unwrap_err(),
        ParseError::StartLine("method is not a token")
    );
    // In the Request-URI.
    let input = OPTIONS.to_vec();
    let mut input2 = input.clone();
    input2[12] = 0;
    assert_eq!(
        SipMessage::parse(input2).unwrap_err(),
        ParseError::StartLine("malformed Request-URI")
    );
    // In a header name.
    let input = with_headers(b"X-N\0: 1\r\n");
    assert_eq!(
        SipMessage::parse(input).unwrap_err(),
        ParseError::Header("header name is not a token")
    );
    // In a header value it is kept (quoted-pairs may carry any octet, RFC 4475 §3.1.1.2).
    let input = with_headers(b"X-V: a\0b\r\n");
    let msg = SipMessage::parse(input.clone()).unwrap();
    assert_eq!(&msg.to_bytes()[..], &input[..]);
    // Only NULs.
    assert_eq!(
        SipMessage::parse(vec![0u8; 4096]).unwrap_err(),
        ParseError::Incomplete
    );
    assert_eq!(
        SipMessage::parse([vec![0u8; 100], b"\r\n\r\n".to_vec()].concat()).unwrap_err(),
        ParseError::StartLine("no Request-URI")
    );
}

#[test]
fn binary_garbage_never_panics() {
    // A deterministic xorshift stream: reproducible, no wall clock or OS entropy.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..2_000 {
        let len = (next() % 2048) as usize;
        let mut buf: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Half the inputs get a plausible prefix so the header code is reached too.
        if round % 2 == 0 {
            buf.splice(0..0, OPTIONS[..OPTIONS.len() / 2].iter().copied());
        }
        if let Ok(msg) = SipMessage::parse(buf) {
            let again = SipMessage::parse(msg.to_bytes()).unwrap();
            assert_eq!(again, msg);
        }
    }
}

#[test]
fn control_characters_and_bare_cr() {
    // A header line with a bare CR in the middle is one line (only LF ends a line);
    // its value keeps the CR and round-trips.
    let input = with_headers(b"X-Cr: a\rb\r\n");
    let msg = SipMessage::parse(input.clone()).unwrap();
    assert_eq!(&msg.to_bytes()[..], &input[..]);
    // A continuation line as the first header.
    let input = [&OPTIONS[..37], b" folded\r\n".as_slice(), &OPTIONS[37..]].concat();
    assert_eq!(
        SipMessage::parse(input).unwrap_err(),
        ParseError::Header("continuation line without a header")
    );
    // A header line without a colon.
    assert_eq!(
        SipMessage::parse(with_headers(b"NoColonHere\r\n")).unwrap_err(),
        ParseError::Header("no colon")
    );
}

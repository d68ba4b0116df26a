//! Diameter messages: the header of RFC 6733 §3 and the AVPs that follow, plus the
//! answer-building rules of §6.2 and §7.2 (error answers with Failed-AVP, §7.5).

use bytes::{BufMut, Bytes, BytesMut};

use crate::avp::Avp;
use crate::dict::{base, AvpDef};
use crate::error::DecodeError;

/// Command flag 'R' (Request), RFC 6733 §3.
pub const FLAG_REQUEST: u8 = 0x80;
/// Command flag 'P' (Proxiable).
pub const FLAG_PROXIABLE: u8 = 0x40;
/// Command flag 'E' (Error).
pub const FLAG_ERROR: u8 = 0x20;
/// Command flag 'T' (potentially reTransmitted).
pub const FLAG_RETRANSMIT: u8 = 0x10;
const FLAGS_RESERVED: u8 = 0x0f;

/// Size of the Diameter header.
pub const HEADER_LEN: usize = 20;

/// A Diameter message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Command flags (R, P, E, T).
    pub flags: u8,
    /// Command code (24 bits).
    pub command_code: u32,
    /// Application-ID.
    pub application_id: u32,
    /// Hop-by-Hop Identifier.
    pub hop_by_hop: u32,
    /// End-to-End Identifier.
    pub end_to_end: u32,
    /// AVPs in order of appearance.
    pub avps: Vec<Avp>,
}

impl Message {
    /// A new request (R and P set) with zero identifiers; the peer assigns them.
    pub fn request(command_code: u32, application_id: u32) -> Message {
        Message {
            flags: FLAG_REQUEST | FLAG_PROXIABLE,
            command_code,
            application_id,
            hop_by_hop: 0,
            end_to_end: 0,
            avps: Vec::new(),
        }
    }

    /// A new answer to `req` (RFC 6733 §6.2): same command, application, identifiers and
    /// P bit; Session-Id copied first, then Origin-Host and Origin-Realm, then the
    /// Proxy-Info AVPs of the request (§6.7.2) at the end.
    pub fn answer_to(req: &Message, origin_host: &str, origin_realm: &str) -> Message {
        let mut ans = Message {
            flags: req.flags & FLAG_PROXIABLE,
            command_code: req.command_code,
            application_id: req.application_id,
            hop_by_hop: req.hop_by_hop,
            end_to_end: req.end_to_end,
            avps: Vec::new(),
        };
        if let Some(sid) = req.find(&base::SESSION_ID) {
            ans.avps.push(sid.clone());
        }
        ans.avps.push(Avp::utf8(&base::ORIGIN_HOST, origin_host));
        ans.avps.push(Avp::utf8(&base::ORIGIN_REALM, origin_realm));
        ans
    }

    /// An answer carrying Result-Code `code` (RFC 6733 §7.2). Protocol errors (3xxx)
    /// set the E bit; `failed` becomes the content of a Failed-AVP (§7.5).
    pub fn error_answer(
        req: &Message,
        origin_host: &str,
        origin_realm: &str,
        code: u32,
        failed: Option<&Avp>,
    ) -> Message {
        let mut ans = Message::answer_to(req, origin_host, origin_realm);
        if (3000..4000).contains(&code) {
            ans.flags |= FLAG_ERROR;
        }
        ans.avps.push(Avp::u32(&base::RESULT_CODE, code));
        if let Some(f) = failed {
            ans.avps
                .push(Avp::grouped(&base::FAILED_AVP, std::slice::from_ref(f)));
        }
        ans.push_proxy_info_of(req);
        ans
    }

    /// Appends the Proxy-Info AVPs of `req`, in order (RFC 6733 §6.7.2).
    pub fn push_proxy_info_of(&mut self, req: &Message) {
        self.avps.extend(req.find_all(&base::PROXY_INFO).cloned());
    }

    /// The R bit.
    pub fn is_request(&self) -> bool {
        self.flags & FLAG_REQUEST != 0
    }

    /// The E bit.
    pub fn is_error(&self) -> bool {
        self.flags & FLAG_ERROR != 0
    }

    /// First AVP matching `def` at the top level.
    pub fn find(&self, def: &AvpDef) -> Option<&Avp> {
        self.avps.iter().find(|a| a.is(def))
    }

    /// All AVPs matching `def` at the top level.
    pub fn find_all<'a>(&'a self, def: &'a AvpDef) -> impl Iterator<Item = &'a Avp> + 'a {
        self.avps.iter().filter(move |a| a.is(def))
    }

    /// Result-Code, if present and well-formed.
    pub fn result_code(&self) -> Option<u32> {
        self.find(&base::RESULT_CODE).and_then(|a| a.as_u32().ok())
    }

    /// Origin-Host, if present and UTF-8.
    pub fn origin_host(&self) -> Option<&str> {
        self.find(&base::ORIGIN_HOST).and_then(|a| a.as_utf8().ok())
    }

    /// Session-Id, if present and UTF-8.
    pub fn session_id(&self) -> Option<&str> {
        self.find(&base::SESSION_ID).and_then(|a| a.as_utf8().ok())
    }

    /// Length of the encoded message.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.avps.iter().map(Avp::padded_len).sum::<usize>()
    }

    /// Appends the encoded message to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        let len = self.encoded_len();
        buf.reserve(len);
        buf.put_u32((1 << 24) | (len as u32 & 0x00ff_ffff));
        buf.put_u32((u32::from(self.flags) << 24) | (self.command_code & 0x00ff_ffff));
        buf.put_u32(self.application_id);
        buf.put_u32(self.hop_by_hop);
        buf.put_u32(self.end_to_end);
        for a in &self.avps {
            a.encode(buf);
        }
    }

    /// The encoded message.
    pub fn to_bytes(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(self.encoded_len());
        self.encode(&mut b);
        b.freeze()
    }

    /// Decodes the header only, checking version, length and flags (RFC 6733 §3).
    /// `buf` must hold exactly one message.
    pub fn decode_header(buf: &[u8]) -> Result<Header, DecodeError> {
        let h = buf.get(..HEADER_LEN).ok_or(DecodeError::HeaderTruncated {
            available: buf.len(),
        })?;
        let word = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let version = h[0];
        let len = (word(0) & 0x00ff_ffff) as usize;
        let flags = h[4];
        let header = Header {
            version,
            len,
            flags,
            command_code: word(4) & 0x00ff_ffff,
            application_id: word(8),
            hop_by_hop: word(12),
            end_to_end: word(16),
        };
        if len < HEADER_LEN || len & 3 != 0 || len != buf.len() {
            return Err(DecodeError::InvalidMessageLength {
                len,
                available: buf.len(),
            });
        }
        Ok(header)
    }

    /// Decodes one whole message, checking the header and every AVP length. Grouped AVP
    /// contents are checked when read ([`Avp::grouped_avps`]).
    pub fn decode(buf: Bytes) -> Result<Message, DecodeError> {
        let h = Message::decode_header(&buf)?;
        h.check()?;
        let avps = Avp::decode_all(&buf.slice(HEADER_LEN..))?;
        Ok(Message {
            flags: h.flags,
            command_code: h.command_code,
            application_id: h.application_id,
            hop_by_hop: h.hop_by_hop,
            end_to_end: h.end_to_end,
            avps,
        })
    }
}

/// A decoded header, available even when the AVPs fail to decode (so that an error
/// answer can still be built with the right identifiers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Version field.
    pub version: u8,
    /// Message Length.
    pub len: usize,
    /// Command flags.
    pub flags: u8,
    /// Command code.
    pub command_code: u32,
    /// Application-ID.
    pub application_id: u32,
    /// Hop-by-Hop Identifier.
    pub hop_by_hop: u32,
    /// End-to-End Identifier.
    pub end_to_end: u32,
}

impl Header {
    /// Checks version and flags: version 1; reserved bits clear; no E bit on a request;
    /// no T bit on an answer (RFC 6733 §3).
    pub fn check(&self) -> Result<(), DecodeError> {
        if self.version != 1 {
            return Err(DecodeError::UnsupportedVersion(self.version));
        }
        let request = self.flags & FLAG_REQUEST != 0;
        if self.flags & FLAGS_RESERVED != 0
            || (request && self.flags & FLAG_ERROR != 0)
            || (!request && self.flags & FLAG_RETRANSMIT != 0)
        {
            return Err(DecodeError::InvalidHeaderBits { flags: self.flags });
        }
        Ok(())
    }

    /// An empty message with this header's fields, to answer a request that failed to
    /// decode.
    pub fn to_message(&self) -> Message {
        Message {
            flags: self.flags,
            command_code: self.command_code,
            application_id: self.application_id,
            hop_by_hop: self.hop_by_hop,
            end_to_end: self.end_to_end,
            avps: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dict::{command, result};

    /// A DWR from "a.example" with Origin-State-Id 1, checked by hand against RFC 6733
    /// §3 and §4.1.
    const DWR_HEX: &str = concat!(
        "01000034",           // version 1, length 52
        "80000118",           // R, command 280
        "00000000",           // application 0
        "00000001",           // hop-by-hop
        "00000002",           // end-to-end
        "00000108",           // Origin-Host (264)
        "40000011",           // M, length 8 + 9
        "612e6578616d706c65", // "a.example"
        "000000",             // padding
        "00000116",           // Origin-State-Id (278)
        "4000000c",           // M, length 12
        "00000001",           // 1
    );

    fn dwr() -> Message {
        let mut m = Message::request(command::DEVICE_WATCHDOG, 0);
        m.flags = FLAG_REQUEST;
        m.hop_by_hop = 1;
        m.end_to_end = 2;
        m.avps.push(Avp::utf8(&base::ORIGIN_HOST, "a.example"));
        m.avps.push(Avp::u32(&base::ORIGIN_STATE_ID, 1));
        m
    }

    #[test]
    fn golden_dwr() {
        let bytes = dwr().to_bytes();
        assert_eq!(hex::encode(&bytes), DWR_HEX);
        assert_eq!(Message::decode(bytes).unwrap(), dwr());
    }

    #[test]
    fn header_checks() {
        let good = dwr().to_bytes();
        let mut v = good.to_vec();
        v[0] = 2;
        assert_eq!(
            Message::decode(Bytes::from(v)),
            Err(DecodeError::UnsupportedVersion(2))
        );
        let mut v = good.to_vec();
        v[4] |= FLAG_ERROR;
        assert!(matches!(
            Message::decode(Bytes::from(v)),
            Err(DecodeError::InvalidHeaderBits { .. })
        ));
        let mut v = good.to_vec();
        v[4] = FLAG_RETRANSMIT; // T on an answer
        assert!(matches!(
            Message::decode(Bytes::from(v)),
            Err(DecodeError::InvalidHeaderBits { .. })
        ));
        let mut v = good.to_vec();
        v[3] = 51; // not a multiple of 4, and not the octets present
        assert!(matches!(
            Message::decode(Bytes::from(v)),
            Err(DecodeError::InvalidMessageLength { len: 51, .. })
        ));
        assert!(matches!(
            Message::decode(good.slice(..19)),
            Err(DecodeError::HeaderTruncated { available: 19 })
        ));
        // AVP length running past the message.
        let mut v = good.to_vec();
        v[27] = 200;
        assert!(matches!(
            Message::decode(Bytes::from(v)),
            Err(DecodeError::AvpLengthBeyondData { len: 200, .. })
        ));
    }

    #[test]
    fn answers_copy_identifiers_and_flag_errors() {
        let mut req = dwr();
        req.avps.insert(0, Avp::utf8(&base::SESSION_ID, "s;1"));
        req.avps.push(Avp::grouped(
            &base::PROXY_INFO,
            &[Avp::utf8(&base::PROXY_HOST, "p.example")],
        ));
        let bad = Avp::u32(&base::VENDOR_ID, 0);
        let ans = Message::error_answer(
            &req,
            "b.example",
            "example",
            result::DIAMETER_UNKNOWN_PEER,
            Some(&bad),
        );
        assert!(!ans.is_request());
        assert!(ans.is_error());
        assert_eq!((ans.hop_by_hop, ans.end_to_end), (1, 2));
        assert_eq!(ans.session_id(), Some("s;1"));
        assert_eq!(ans.avps[0].code, 263, "Session-Id comes first");
        assert_eq!(ans.origin_host(), Some("b.example"));
        assert_eq!(ans.result_code(), Some(3010));
        let failed = ans.find(&base::FAILED_AVP).unwrap().grouped_avps().unwrap();
        assert_eq!(failed, vec![bad]);
        assert!(ans.find(&base::PROXY_INFO).is_some());
        let ok = Message::error_answer(&req, "b", "r", result::DIAMETER_MISSING_AVP, None);
        assert!(!ok.is_error(), "5xxx are not protocol errors");
    }
}

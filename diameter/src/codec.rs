//! Stream framing by the 24-bit Message Length of RFC 6733 §3, as a
//! `tokio_util::codec` Decoder/Encoder pair.
//!
//! The decoder yields whole messages as [`Frame`]s: either a decoded [`Message`] or,
//! when the header was sound enough to frame by but the contents were not, the
//! [`Header`] and the error, so the connection can answer with the right Result-Code.
//! A length that cannot be framed by (below 20, not a multiple of 4, above the limit)
//! is a fatal error: the stream cannot be resynchronised and is closed.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::error::DecodeError;
use crate::message::{Header, Message, HEADER_LEN};

/// Default largest message accepted (64 KiB): Cx messages with User-Data fit well.
pub const DEFAULT_MAX_MESSAGE: usize = 65_536;

/// One framed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A message that decoded.
    Message(Message),
    /// A message whose header or AVPs were invalid; the stream stays in sync.
    Invalid {
        /// The header as received.
        header: Header,
        /// What was wrong.
        error: DecodeError,
    },
}

/// Diameter framing codec.
#[derive(Debug, Clone)]
pub struct DiameterCodec {
    max_message: usize,
}

impl DiameterCodec {
    /// A codec refusing messages larger than `max_message` octets.
    pub fn new(max_message: usize) -> DiameterCodec {
        DiameterCodec { max_message }
    }
}

impl Default for DiameterCodec {
    fn default() -> Self {
        DiameterCodec::new(DEFAULT_MAX_MESSAGE)
    }
}

/// Errors of the framing layer: I/O, or a length the stream cannot be framed by.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// Transport error.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// Unframeable length.
    #[error("{0}")]
    Decode(DecodeError),
}

impl Decoder for DiameterCodec {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let Some(first) = src.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([0, first[1], first[2], first[3]]) as usize;
        if len < HEADER_LEN || len & 3 != 0 {
            tracing::warn!(len, "diameter: unframeable message length");
            return Err(FrameError::Decode(DecodeError::InvalidMessageLength {
                len,
                available: src.len(),
            }));
        }
        if len > self.max_message {
            tracing::warn!(len, max = self.max_message, "diameter: message too large");
            return Err(FrameError::Decode(DecodeError::MessageTooLarge {
                len,
                max: self.max_message,
            }));
        }
        if src.len() < len {
            // Nothing is reserved for the claimed length: the buffer grows only with
            // the bytes that actually arrive.
            return Ok(None);
        }
        let bytes = src.split_to(len).freeze();
        let header = Message::decode_header(&bytes).map_err(FrameError::Decode)?;
        match Message::decode(bytes) {
            Ok(m) => Ok(Some(Frame::Message(m))),
            Err(error) => {
                tracing::warn!(%error, command = header.command_code, "diameter: invalid message");
                Ok(Some(Frame::Invalid { header, error }))
            }
        }
    }
}

impl Encoder<&Message> for DiameterCodec {
    type Error = FrameError;

    fn encode(&mut self, item: &Message, dst: &mut BytesMut) -> Result<(), FrameError> {
        item.encode(dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avp::Avp;
    use crate::dict::base;

    fn msg(n: u32) -> Message {
        let mut m = Message::request(280, 0);
        m.hop_by_hop = n;
        m.avps.push(Avp::utf8(&base::ORIGIN_HOST, "peer.example"));
        m
    }

    #[test]
    fn partial_input_waits_for_more() {
        let bytes = msg(1).to_bytes();
        let mut codec = DiameterCodec::default();
        let mut buf = BytesMut::new();
        for (i, b) in bytes.iter().enumerate() {
            buf.extend_from_slice(&[*b]);
            let out = codec.decode(&mut buf).unwrap();
            if i + 1 < bytes.len() {
                assert!(out.is_none(), "frame before byte {i}");
            } else {
                assert_eq!(out, Some(Frame::Message(msg(1))));
            }
        }
        assert!(buf.is_empty());
    }

    #[test]
    fn concatenated_messages_are_split() {
        let mut buf = BytesMut::new();
        for n in 1..=3 {
            msg(n).encode(&mut buf);
        }
        let mut codec = DiameterCodec::default();
        for n in 1..=3 {
            assert_eq!(
                codec.decode(&mut buf).unwrap(),
                Some(Frame::Message(msg(n)))
            );
        }
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
    }

    #[test]
    fn bad_lengths_are_fatal_and_limit_applies() {
        let mut codec = DiameterCodec::new(100);
        let mut buf = BytesMut::from(&[1u8, 0, 0, 16, 0x80, 0, 1, 24][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(FrameError::Decode(DecodeError::InvalidMessageLength {
                len: 16,
                ..
            }))
        ));
        let mut buf = BytesMut::from(&[1u8, 0, 0, 22][..]);
        assert!(codec.decode(&mut buf).is_err());
        // A huge claimed length is refused before anything is allocated for it.
        let mut buf = BytesMut::from(&[1u8, 0xff, 0xff, 0xfc][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(FrameError::Decode(DecodeError::MessageTooLarge { .. }))
        ));
        assert!(buf.capacity() < 1000);
        // A claimed length within the limit does not allocate before the bytes arrive.
        let mut codec = DiameterCodec::new(65_536);
        let mut buf = BytesMut::with_capacity(32);
        buf.extend_from_slice(&[1u8, 0, 0xff, 0xf0, 0x80, 0, 1, 24]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert!(buf.capacity() < 1000);
    }

    #[test]
    fn invalid_contents_keep_the_stream_in_sync() {
        let mut bad = msg(7).to_bytes().to_vec();
        bad[0] = 2; // version
        let mut buf = BytesMut::from(&bad[..]);
        msg(8).encode(&mut buf);
        let mut codec = DiameterCodec::default();
        match codec.decode(&mut buf).unwrap() {
            Some(Frame::Invalid { header, error }) => {
                assert_eq!(header.hop_by_hop, 7);
                assert_eq!(error, DecodeError::UnsupportedVersion(2));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            codec.decode(&mut buf).unwrap(),
            Some(Frame::Message(msg(8)))
        );
    }
}

//! Errors of the codec, each mapped to the Result-Code of RFC 6733 §7.1 it calls for.

use crate::dict::result;

/// What was wrong with bytes received from a peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer than 20 octets of header.
    #[error("message shorter than the 20-octet header ({available} octets)")]
    HeaderTruncated {
        /// Octets present.
        available: usize,
    },
    /// Version other than 1 (RFC 6733 §3).
    #[error("unsupported Diameter version {0}")]
    UnsupportedVersion(u8),
    /// Message Length below 20, not a multiple of 4, or not the octets present.
    #[error("invalid message length {len} ({available} octets present)")]
    InvalidMessageLength {
        /// Message Length field.
        len: usize,
        /// Octets present.
        available: usize,
    },
    /// Message larger than the configured limit.
    #[error("message length {len} exceeds the limit {max}")]
    MessageTooLarge {
        /// Message Length field.
        len: usize,
        /// Configured limit.
        max: usize,
    },
    /// Header flags not allowed (E on a request, reserved bits, ...; RFC 6733 §3).
    #[error("invalid header bits {flags:#04x}")]
    InvalidHeaderBits {
        /// The flags octet.
        flags: u8,
    },
    /// Fewer than 8 octets left for an AVP header.
    #[error("truncated AVP header ({available} octets)")]
    AvpTruncated {
        /// Octets present.
        available: usize,
    },
    /// AVP Length below its header size (8, or 12 with the V bit).
    #[error("AVP {code} length {len} is shorter than its header")]
    AvpLengthTooShort {
        /// AVP code.
        code: u32,
        /// AVP Length field.
        len: usize,
    },
    /// AVP Length runs past the enclosing message or Grouped AVP.
    #[error("AVP {code} length {len} exceeds the {available} octets present")]
    AvpLengthBeyondData {
        /// AVP code.
        code: u32,
        /// AVP Length field.
        len: usize,
        /// Octets present.
        available: usize,
    },
    /// Fixed-size data of the wrong size.
    #[error("AVP {code} data has {found} octets, expected {expected}")]
    AvpDataLength {
        /// AVP code.
        code: u32,
        /// Size the format calls for.
        expected: usize,
        /// Size present.
        found: usize,
    },
    /// UTF8String that is not UTF-8.
    #[error("AVP {code} is not valid UTF-8")]
    AvpNotUtf8 {
        /// AVP code.
        code: u32,
    },
    /// Address with an unknown family or a wrong size.
    #[error("AVP {code} is not an IPv4/IPv6 address")]
    AvpBadAddress {
        /// AVP code.
        code: u32,
    },
    /// A value the command does not allow (unknown enumerated value, wrong application).
    #[error("AVP {code} has the unexpected value {value}")]
    AvpUnexpectedValue {
        /// AVP code.
        code: u32,
        /// The value received.
        value: i64,
    },
    /// Grouped AVPs nested deeper than the limit.
    #[error("grouped AVPs nested deeper than {0}")]
    NestingTooDeep(usize),
}

impl DecodeError {
    /// The Result-Code an answer to the offending request carries (RFC 6733 §7.1).
    pub fn result_code(&self) -> u32 {
        match self {
            DecodeError::HeaderTruncated { .. } | DecodeError::InvalidMessageLength { .. } => {
                result::DIAMETER_INVALID_MESSAGE_LENGTH
            }
            DecodeError::MessageTooLarge { .. } => result::DIAMETER_INVALID_MESSAGE_LENGTH,
            DecodeError::UnsupportedVersion(_) => result::DIAMETER_UNSUPPORTED_VERSION,
            DecodeError::InvalidHeaderBits { .. } => result::DIAMETER_INVALID_HDR_BITS,
            DecodeError::AvpTruncated { .. }
            | DecodeError::AvpLengthTooShort { .. }
            | DecodeError::AvpLengthBeyondData { .. }
            | DecodeError::AvpDataLength { .. } => result::DIAMETER_INVALID_AVP_LENGTH,
            DecodeError::AvpNotUtf8 { .. }
            | DecodeError::AvpBadAddress { .. }
            | DecodeError::AvpUnexpectedValue { .. } => result::DIAMETER_INVALID_AVP_VALUE,
            DecodeError::NestingTooDeep(_) => result::DIAMETER_INVALID_AVP_VALUE,
        }
    }
}

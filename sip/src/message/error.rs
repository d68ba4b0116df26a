//! Parse errors: each names what the peer got wrong.

/// Why a message could not be parsed. Every variant maps to a `400 Bad Request`
/// (or `413`/`513` for size limits) when the message was a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The input ended before the end of the header section.
    #[error("incomplete message: no end of headers")]
    Incomplete,
    /// The message exceeds the configured size limit.
    #[error("message too large: {size} bytes, limit {limit}")]
    TooLarge {
        /// Size seen so far.
        size: usize,
        /// Configured limit.
        limit: usize,
    },
    /// More header lines than the configured limit.
    #[error("too many header fields (limit {limit})")]
    TooManyHeaders {
        /// Configured limit.
        limit: usize,
    },
    /// The request or status line is malformed.
    #[error("malformed start line: {0}")]
    StartLine(&'static str),
    /// The protocol version is not SIP/2.0.
    #[error("unsupported SIP version")]
    Version,
    /// A header line is malformed.
    #[error("malformed header field: {0}")]
    Header(&'static str),
    /// A header value could not be parsed as its type.
    #[error("malformed {header} header: {reason}")]
    HeaderValue {
        /// The header's canonical name.
        header: &'static str,
        /// What was wrong.
        reason: &'static str,
    },
    /// A mandatory header is missing (RFC 3261 §8.1.1).
    #[error("missing mandatory header {0}")]
    MissingHeader(&'static str),
    /// A header that may appear only once appears more often.
    #[error("header {0} appears more than once")]
    DuplicateHeader(&'static str),
    /// The body is shorter than Content-Length says.
    #[error("body shorter than Content-Length ({declared} declared, {available} present)")]
    BodyTooShort {
        /// Content-Length value.
        declared: usize,
        /// Bytes present after the headers.
        available: usize,
    },
    /// The CSeq method differs from the request method (RFC 3261 §8.1.1.5).
    #[error("CSeq method does not match request method")]
    CSeqMethodMismatch,
}

impl ParseError {
    /// The SIP status code a server answers this error with (for requests).
    pub fn status_code(&self) -> u16 {
        match self {
            ParseError::TooLarge { .. } => 513,
            _ => 400,
        }
    }
}

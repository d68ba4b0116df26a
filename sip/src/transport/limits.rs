//! Limits protecting the transport layer from hostile or runaway peers.

use std::time::Duration;

use crate::message::ParseLimits;

/// Resource limits of the transport layer.
#[derive(Debug, Clone)]
pub struct TransportLimits {
    /// Largest message accepted (headers + body), in bytes; larger datagrams are
    /// dropped and larger stream messages close the connection.
    pub max_message_size: usize,
    /// Largest number of header lines in a message.
    pub max_headers: usize,
    /// Most simultaneous connections from (or to) one IP address.
    pub max_connections_per_peer: usize,
    /// Most simultaneous connections in total.
    pub max_connections: usize,
    /// A connection that carries no traffic in either direction for this long is closed.
    pub idle_timeout: Duration,
    /// Bound on opening an outgoing connection, on a TLS handshake, and on one write.
    pub connect_timeout: Duration,
    /// Depth of the bounded channels (events upward, writes per connection).
    pub queue_depth: usize,
    /// Receive buffer asked for each UDP socket (`SO_RCVBUF`; the kernel caps it at
    /// `net.core.rmem_max`): one socket carries every peer's datagrams, and a burst
    /// larger than the buffer is dropped by the kernel before it is read.
    pub udp_recv_buffer: usize,
}

impl Default for TransportLimits {
    fn default() -> Self {
        TransportLimits {
            max_message_size: 65_535,
            max_headers: 256,
            max_connections_per_peer: 32,
            max_connections: 10_000,
            // RFC 5626 §4.4.1 suggests keep-alives every 95-120 s on streams.
            idle_timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(10),
            queue_depth: 1024,
            udp_recv_buffer: 4 << 20,
        }
    }
}

impl TransportLimits {
    /// The parser limits these transport limits imply.
    pub fn parse_limits(&self) -> ParseLimits {
        ParseLimits {
            max_message_size: self.max_message_size,
            max_headers: self.max_headers,
        }
    }
}

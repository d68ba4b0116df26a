//! SIP capture export to a Homer collector: every message the transport receives or
//! sends, TLS included (after decryption / before encryption), copied in a HEP v3
//! datagram (HEP3: chunks of vendor, type, length; sipcapture.org's specification) to
//! a collector over UDP. Off unless the node configures a collector
//! ([`super::TransportLayer::capture_to`]); when off, the transport only checks an
//! empty cell. When on, each copy is encoded into a buffer of its own and sent without
//! waiting: a slow or absent collector loses copies, never delays SIP.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::TransportKind;

/// Chunk types of HEP v3 (vendor 0, the generic chunks).
mod chunk {
    pub const IP_FAMILY: u16 = 0x0001;
    pub const IP_PROTOCOL: u16 = 0x0002;
    pub const IPV4_SRC: u16 = 0x0003;
    pub const IPV4_DST: u16 = 0x0004;
    pub const IPV6_SRC: u16 = 0x0005;
    pub const IPV6_DST: u16 = 0x0006;
    pub const SRC_PORT: u16 = 0x0007;
    pub const DST_PORT: u16 = 0x0008;
    pub const TIME_SECS: u16 = 0x0009;
    pub const TIME_MICROS: u16 = 0x000a;
    pub const PROTOCOL_TYPE: u16 = 0x000b;
    pub const AGENT_ID: u16 = 0x000c;
    pub const PAYLOAD: u16 = 0x000f;
}

/// HEP's protocol type of SIP.
const PROTOCOL_SIP: u8 = 0x01;

fn put(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    // Lengths are checked by the caller: a chunk holds at most the payload.
    out.extend_from_slice(&((data.len() + 6) as u16).to_be_bytes());
    out.extend_from_slice(data);
}

/// The HEP v3 packet of `payload` sent over `kind` from `from` to `to` at `time` by
/// capture agent `agent_id`; `None` when the addresses are of different families or
/// the packet would exceed 65535 bytes.
pub fn encode(
    kind: TransportKind,
    from: SocketAddr,
    to: SocketAddr,
    time: SystemTime,
    agent_id: u32,
    payload: &[u8],
) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(payload.len() + 128);
    out.extend_from_slice(b"HEP3\0\0");
    match (from.ip(), to.ip()) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            put(&mut out, chunk::IP_FAMILY, &[2]);
            put(&mut out, chunk::IP_PROTOCOL, &[ip_protocol(kind)]);
            put(&mut out, chunk::IPV4_SRC, &src.octets());
            put(&mut out, chunk::IPV4_DST, &dst.octets());
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            put(&mut out, chunk::IP_FAMILY, &[10]);
            put(&mut out, chunk::IP_PROTOCOL, &[ip_protocol(kind)]);
            put(&mut out, chunk::IPV6_SRC, &src.octets());
            put(&mut out, chunk::IPV6_DST, &dst.octets());
        }
        _ => return None,
    }
    put(&mut out, chunk::SRC_PORT, &from.port().to_be_bytes());
    put(&mut out, chunk::DST_PORT, &to.port().to_be_bytes());
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = u32::try_from(since.as_secs()).unwrap_or(u32::MAX);
    put(&mut out, chunk::TIME_SECS, &secs.to_be_bytes());
    put(
        &mut out,
        chunk::TIME_MICROS,
        &since.subsec_micros().to_be_bytes(),
    );
    put(&mut out, chunk::PROTOCOL_TYPE, &[PROTOCOL_SIP]);
    put(&mut out, chunk::AGENT_ID, &agent_id.to_be_bytes());
    if out.len() + 6 + payload.len() > usize::from(u16::MAX) {
        return None;
    }
    put(&mut out, chunk::PAYLOAD, payload);
    let total = (out.len() as u16).to_be_bytes();
    out[4..6].copy_from_slice(&total);
    Some(out)
}

/// HEP's IP protocol of a transport: TCP for TCP, TLS and WebSockets (the payload is
/// the clear text), UDP for UDP, SCTP for SCTP.
fn ip_protocol(kind: TransportKind) -> u8 {
    match kind {
        TransportKind::Udp => 17,
        TransportKind::Sctp => 132,
        TransportKind::Tcp | TransportKind::Tls | TransportKind::Ws | TransportKind::Wss => 6,
    }
}

/// Where the transport sends its copies.
#[derive(Debug)]
pub struct Capture {
    socket: UdpSocket,
    collector: SocketAddr,
    agent_id: u32,
    /// Copies not sent (the socket's buffer full, the collector unreachable).
    pub lost: AtomicU64,
}

impl Capture {
    /// Copies to `collector` (UDP) as capture agent `agent_id`, from a non-blocking
    /// socket of the collector's address family.
    pub fn new(collector: SocketAddr, agent_id: u32) -> std::io::Result<Capture> {
        let any: SocketAddr = match collector {
            SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
            SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
        };
        let socket = UdpSocket::bind(any)?;
        socket.set_nonblocking(true)?;
        Ok(Capture {
            socket,
            collector,
            agent_id,
            lost: AtomicU64::new(0),
        })
    }

    /// Sends a copy of `payload`, sent over `kind` from `from` to `to`, now.
    pub(super) fn copy(
        &self,
        kind: TransportKind,
        from: SocketAddr,
        to: SocketAddr,
        payload: &[u8],
    ) {
        let sent = encode(kind, from, to, SystemTime::now(), self.agent_id, payload)
            .map(|packet| self.socket.send_to(&packet, self.collector));
        if !matches!(sent, Some(Ok(_))) {
            self.lost.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A REGISTER over UDP from 192.0.2.1:5060 to 198.51.100.2:5080 at
    /// 1700000000.000123 by agent 7, byte by byte.
    #[test]
    fn an_ipv4_udp_packet_is_encoded_chunk_by_chunk() {
        let payload = b"REGISTER sip:x SIP/2.0\r\n\r\n";
        let time = UNIX_EPOCH + Duration::new(1_700_000_000, 123_000);
        let from = "192.0.2.1:5060".parse().unwrap();
        let to = "198.51.100.2:5080".parse().unwrap();
        let packet = encode(TransportKind::Udp, from, to, time, 7, payload).unwrap();
        let mut golden: Vec<u8> = b"HEP3".to_vec();
        let total = 6 + 7 + 7 + 10 + 10 + 8 + 8 + 10 + 10 + 7 + 10 + 6 + payload.len();
        golden.extend_from_slice(&(total as u16).to_be_bytes());
        for (kind, data) in [
            (1u16, vec![2u8]),
            (2, vec![17]),
            (3, vec![192, 0, 2, 1]),
            (4, vec![198, 51, 100, 2]),
            (7, 5060u16.to_be_bytes().to_vec()),
            (8, 5080u16.to_be_bytes().to_vec()),
            (9, 1_700_000_000u32.to_be_bytes().to_vec()),
            (10, 123u32.to_be_bytes().to_vec()),
            (11, vec![1]),
            (12, 7u32.to_be_bytes().to_vec()),
            (15, payload.to_vec()),
        ] {
            golden.extend_from_slice(&[0, 0]);
            golden.extend_from_slice(&kind.to_be_bytes());
            golden.extend_from_slice(&((data.len() + 6) as u16).to_be_bytes());
            golden.extend_from_slice(&data);
        }
        assert_eq!(packet, golden);
    }

    #[test]
    fn ipv6_tls_is_tcp_and_mixed_families_or_oversize_are_refused() {
        let from: SocketAddr = "[2001:db8::1]:5061".parse().unwrap();
        let to: SocketAddr = "[2001:db8::2]:40000".parse().unwrap();
        let packet = encode(TransportKind::Tls, from, to, SystemTime::now(), 1, b"x").unwrap();
        // Family 10 (IPv6), protocol 6 (TCP), 16-byte addresses.
        assert_eq!(&packet[6..13], &[0, 0, 0, 1, 0, 7, 10]);
        assert_eq!(&packet[13..20], &[0, 0, 0, 2, 0, 7, 6]);
        assert_eq!(&packet[20..26], &[0, 0, 0, 5, 0, 22]);
        let v4: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        assert!(encode(TransportKind::Udp, v4, to, SystemTime::now(), 1, b"x").is_none());
        let big = vec![b'a'; 65_500];
        assert!(encode(TransportKind::Tcp, from, to, SystemTime::now(), 1, &big).is_none());
    }
}

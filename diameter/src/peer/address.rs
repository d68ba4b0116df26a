//! Where an initiator peer connects: addresses named by host name or IP address,
//! tried in order.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// One address of the remote peer: a host name (resolved at each connection attempt,
/// so a changed DNS record is followed) or an IP address, and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddress {
    /// Host name or IP address.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl PeerAddress {
    /// `host` (a name or an IP address) and `port`.
    pub fn new(host: impl Into<String>, port: u16) -> PeerAddress {
        PeerAddress {
            host: host.into(),
            port,
        }
    }
}

impl From<SocketAddr> for PeerAddress {
    fn from(addr: SocketAddr) -> PeerAddress {
        PeerAddress {
            host: addr.ip().to_string(),
            port: addr.port(),
        }
    }
}

impl fmt::Display for PeerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The addresses of one remote peer, in the order they are tried: each connection
/// attempt goes through them (and through every IP address a name resolves to) until
/// one completes the capabilities exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddresses(Vec<PeerAddress>);

impl PeerAddresses {
    /// The addresses, in order.
    pub fn new(addresses: impl IntoIterator<Item = PeerAddress>) -> PeerAddresses {
        PeerAddresses(addresses.into_iter().collect())
    }

    /// Every socket address to try, in order; names that do not resolve within
    /// `within` are skipped (and logged).
    pub(crate) async fn resolve(&self, within: Duration) -> Vec<SocketAddr> {
        let mut out = Vec::new();
        for address in &self.0 {
            if let Ok(ip) = address.host.parse::<std::net::IpAddr>() {
                out.push(SocketAddr::new(ip, address.port));
                continue;
            }
            let lookup = tokio::net::lookup_host((address.host.as_str(), address.port));
            match tokio::time::timeout(within, lookup).await {
                Ok(Ok(found)) => out.extend(found),
                Ok(Err(error)) => {
                    tracing::warn!(%address, %error, "diameter: peer name does not resolve");
                }
                Err(_) => tracing::warn!(%address, ?within, "diameter: peer name lookup timed out"),
            }
        }
        out
    }
}

impl From<SocketAddr> for PeerAddresses {
    fn from(addr: SocketAddr) -> PeerAddresses {
        PeerAddresses(vec![addr.into()])
    }
}

impl fmt::Display for PeerAddresses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

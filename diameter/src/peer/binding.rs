//! Binding a peer's Origin-Host to its connection (RFC 6733 §5.3, §13).
//!
//! A CER names its sender in Origin-Host, and that name decides what the peer is (the
//! HSS gives the S-CSCF's users' credentials to `scscf...`). The name is only believed
//! when the connection proves it:
//!
//! - over TLS with a client certificate (verified by rustls against the configured CA
//!   before any Diameter byte is read), the certificate must name the host: a SAN
//!   dNSName, or the subject CN when the certificate has no dNSName; exact,
//!   case-insensitive match, no wildcards;
//! - otherwise (plain TCP, or TLS without client authentication) the source address must
//!   be in the addresses configured for that host;
//! - with `require_tls` set, a plain TCP connection is refused whatever it claims.
//!
//! A refusal is answered with DIAMETER_UNKNOWN_PEER (3010) and the connection closed
//! (RFC 6733 §5.3); it is counted and logged at most once a second with the number of
//! refusals not logged ([`Refusals`]).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ipnet::IpNet;

/// One peer allowed to connect, and how its Origin-Host is bound to a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerBinding {
    /// The Origin-Host the peer claims in its CER (compared case-insensitively).
    pub host: String,
    /// Source addresses a connection without a client certificate claiming `host` may
    /// come from; empty: such connections are refused.
    pub from: Vec<IpNet>,
    /// The name a client certificate must carry (default: `host`).
    pub tls_name: Option<String>,
}

impl PeerBinding {
    /// A peer bound by certificate to `host` and by address to `from`.
    pub fn new(host: &str, from: Vec<IpNet>) -> PeerBinding {
        PeerBinding {
            host: host.to_owned(),
            from,
            tls_name: None,
        }
    }

    /// The name a client certificate must carry.
    pub fn certificate_name(&self) -> &str {
        self.tls_name.as_deref().unwrap_or(&self.host)
    }
}

/// What a connection proves about the peer at its other end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// The source address of the connection.
    pub addr: IpAddr,
    /// How the connection is secured.
    pub transport: RemoteTransport,
}

/// The transport of a [`Remote`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteTransport {
    /// Plain TCP.
    Tcp,
    /// TLS; `names` are the DNS names of the verified client certificate (SAN dNSName,
    /// else subject CN), `None` when no client certificate was asked for.
    Tls {
        /// Names of the client certificate.
        names: Option<Vec<String>>,
    },
}

/// Why a CER's Origin-Host was not believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No configured peer has this Origin-Host.
    #[error("no peer of that Origin-Host is configured")]
    UnknownHost,
    /// Plain TCP while TLS is required.
    #[error("plain TCP while TLS is required")]
    TlsRequired,
    /// The client certificate does not name the Origin-Host.
    #[error("the client certificate does not name the Origin-Host")]
    CertificateName,
    /// No client certificate, and the source address is not one of the host's.
    #[error("source address not allowed for the Origin-Host")]
    Address,
    /// The TLS handshake failed (no client certificate, one of another CA, ...), before
    /// any CER.
    #[error("TLS handshake failed")]
    TlsHandshake,
}

impl Refusal {
    /// Every refusal, in the order of [`Refusal::label`]'s metric labels.
    pub const ALL: [Refusal; 5] = [
        Refusal::UnknownHost,
        Refusal::TlsRequired,
        Refusal::CertificateName,
        Refusal::Address,
        Refusal::TlsHandshake,
    ];

    /// A short label for metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::UnknownHost => "unknown_host",
            Refusal::TlsRequired => "tls_required",
            Refusal::CertificateName => "certificate_name",
            Refusal::Address => "address",
            Refusal::TlsHandshake => "tls_handshake",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Checks that `remote` may claim `host` under `bindings` (and `require_tls`).
pub fn check(
    bindings: &[PeerBinding],
    require_tls: bool,
    host: &str,
    remote: &Remote,
) -> Result<(), Refusal> {
    let Some(binding) = bindings.iter().find(|b| b.host.eq_ignore_ascii_case(host)) else {
        return Err(Refusal::UnknownHost);
    };
    match &remote.transport {
        RemoteTransport::Tcp if require_tls => Err(Refusal::TlsRequired),
        RemoteTransport::Tls { names: Some(names) } => {
            let want = binding.certificate_name();
            if names.iter().any(|n| n.eq_ignore_ascii_case(want)) {
                Ok(())
            } else {
                Err(Refusal::CertificateName)
            }
        }
        RemoteTransport::Tcp | RemoteTransport::Tls { names: None } => {
            // An IPv4 peer on a dual-stack listener shows as ::ffff:a.b.c.d.
            let addr = remote.addr.to_canonical();
            if binding.from.iter().any(|net| net.contains(&addr)) {
                Ok(())
            } else {
                Err(Refusal::Address)
            }
        }
    }
}

/// Refused connections (failed TLS handshakes and capabilities exchanges): counted by
/// [`Refusal`], and logged at most once per interval with the number suppressed since
/// the last line, so a peer hammering the listener cannot flood the log.
#[derive(Debug)]
pub struct Refusals {
    counts: [AtomicU64; 5],
    interval: Duration,
    log: Mutex<(Option<Instant>, u64)>,
}

impl Default for Refusals {
    fn default() -> Refusals {
        Refusals::new(Duration::from_secs(1))
    }
}

impl Refusals {
    /// At most one log line per `interval`.
    pub fn new(interval: Duration) -> Refusals {
        Refusals {
            counts: Default::default(),
            interval,
            log: Mutex::new((None, 0)),
        }
    }

    /// Refusals of kind `r` so far.
    pub fn count(&self, r: Refusal) -> u64 {
        self.counts[r.index()].load(Ordering::Relaxed)
    }

    /// Counts this refusal and logs it (with `detail`, e.g. the TLS error), or counts it
    /// as suppressed.
    pub fn refused(&self, host: &str, remote: &Remote, why: Refusal, detail: &str) {
        self.counts[why.index()].fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let suppressed = {
            let mut s = super::shared::lock(&self.log);
            if s.0
                .is_some_and(|last| now.duration_since(last) < self.interval)
            {
                s.1 += 1;
                return;
            }
            s.0 = Some(now);
            std::mem::take(&mut s.1)
        };
        let tls = matches!(remote.transport, RemoteTransport::Tls { .. });
        tracing::warn!(
            origin_host = %host,
            remote = %remote.addr,
            tls,
            reason = why.label(),
            detail,
            suppressed,
            "diameter: peer refused: {why}"
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn bindings() -> Vec<PeerBinding> {
        let mut icscf = PeerBinding::new("icscf.example", vec![]);
        icscf.tls_name = Some("icscf-cx.example".into());
        vec![
            PeerBinding::new("scscf.example", vec!["127.0.0.1/32".parse().unwrap()]),
            icscf,
        ]
    }

    fn tcp(addr: &str) -> Remote {
        Remote {
            addr: addr.parse().unwrap(),
            transport: RemoteTransport::Tcp,
        }
    }

    fn tls(addr: &str, names: Option<&[&str]>) -> Remote {
        Remote {
            addr: addr.parse().unwrap(),
            transport: RemoteTransport::Tls {
                names: names.map(|n| n.iter().map(|s| s.to_string()).collect()),
            },
        }
    }

    #[test]
    fn plain_tcp_is_bound_by_source_address() {
        let b = bindings();
        assert_eq!(check(&b, false, "SCSCF.example", &tcp("127.0.0.1")), Ok(()));
        assert_eq!(
            check(&b, false, "scscf.example", &tcp("::ffff:127.0.0.1")),
            Ok(()),
            "IPv4 on a dual-stack listener"
        );
        assert_eq!(
            check(&b, false, "scscf.example", &tcp("127.0.0.9")),
            Err(Refusal::Address)
        );
        assert_eq!(
            check(&b, false, "icscf.example", &tcp("127.0.0.1")),
            Err(Refusal::Address),
            "no address configured: certificate only"
        );
        assert_eq!(
            check(&b, false, "other.example", &tcp("127.0.0.1")),
            Err(Refusal::UnknownHost)
        );
        assert_eq!(
            check(&b, true, "scscf.example", &tcp("127.0.0.1")),
            Err(Refusal::TlsRequired)
        );
    }

    #[test]
    fn a_client_certificate_must_name_the_host() {
        let b = bindings();
        let ok = tls("10.0.0.1", Some(&["scscf.example"]));
        assert_eq!(check(&b, true, "scscf.example", &ok), Ok(()));
        let other = tls("127.0.0.1", Some(&["icscf-cx.example"]));
        assert_eq!(
            check(&b, true, "scscf.example", &other),
            Err(Refusal::CertificateName),
            "a certificate decides even from an allowed address"
        );
        assert_eq!(check(&b, true, "icscf.example", &other), Ok(()), "tls_name");
        let no_auth = tls("127.0.0.1", None);
        assert_eq!(check(&b, true, "scscf.example", &no_auth), Ok(()));
        assert_eq!(
            check(&b, true, "icscf.example", &no_auth),
            Err(Refusal::Address)
        );
    }

    #[test]
    fn refusals_are_counted_even_when_not_logged() {
        let r = Refusals::new(Duration::from_secs(3600));
        let remote = tcp("127.0.0.9");
        r.refused("scscf.example", &remote, Refusal::Address, "");
        r.refused("scscf.example", &remote, Refusal::Address, "");
        assert_eq!(r.count(Refusal::Address), 2);
        assert_eq!(r.count(Refusal::UnknownHost), 0);
        assert_eq!(super::super::shared::lock(&r.log).1, 1, "one suppressed");
    }
}

//! What a TLS connection proves about its peer: the names of the client certificate the
//! listener verified against its client CA (`TlsServerSource::Pem::client_ca`).

use std::fmt;
use std::sync::Arc;

/// The DNS names (SAN dNSName, else subject CN: [`ims_pki::certificate_names`]) of the
/// client certificate a TLS peer presented and the listener verified. Taken once per
/// connection after the handshake and shared by every message received on it (one
/// (thin) pointer per [`Source`](super::Source)).
///
/// Only the transport layer fills it in from a verified certificate; nothing a message
/// says about itself ever does.
#[derive(Clone, PartialEq, Eq)]
pub struct PeerNames(Arc<Box<[Box<str>]>>);

impl PeerNames {
    /// The names given (tests, and a transport that verified them otherwise).
    pub fn new<S: Into<Box<str>>>(names: impl IntoIterator<Item = S>) -> PeerNames {
        PeerNames(Arc::new(names.into_iter().map(Into::into).collect()))
    }

    /// The names of a verified certificate (DER); `None` when it names nothing.
    pub fn of_certificate(der: &[u8]) -> Option<PeerNames> {
        let names = ims_pki::certificate_names(der);
        (!names.is_empty()).then(|| PeerNames::new(names))
    }

    /// The names, as the certificate writes them.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|n| &**n)
    }

    /// Whether the certificate carries `name` (exact, ASCII case-insensitive; no
    /// wildcard matching).
    pub fn contains(&self, name: &str) -> bool {
        self.iter().any(|n| n.eq_ignore_ascii_case(name))
    }
}

impl fmt::Debug for PeerNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_case_insensitively_and_literally() {
        let names = PeerNames::new(["PCSCF.ims.example.net", "*.example.net"]);
        assert!(names.contains("pcscf.ims.example.net"));
        assert!(!names.contains("scscf.ims.example.net"));
        assert!(!names.contains("x.example.net"), "no wildcard matching");
        assert_eq!(names.iter().count(), 2);
    }

    #[test]
    fn a_source_carries_one_pointer_for_them() {
        assert_eq!(
            std::mem::size_of::<Option<PeerNames>>(),
            std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn garbage_names_nothing() {
        assert_eq!(PeerNames::of_certificate(b"not a certificate"), None);
    }
}

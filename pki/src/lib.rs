//! X.509 helpers shared by the SIP and Diameter stacks.
//!
//! Both stacks bind what a peer is to the certificate it presented over TLS: Diameter
//! binds a CER's Origin-Host to it (`ims_diameter::peer::binding`), the CSCFs classify
//! a SIP sender into a trust zone by it (`ims_node::classify`). Both read the same
//! names, with [`certificate_names`].

/// The DNS names a certificate is issued to: its SAN dNSNames, or its subject CNs when
/// it has no dNSName (RFC 6125 §6.4.4). IP address SANs are not names. A certificate
/// that does not parse names nothing.
///
/// The certificate is only parsed here, not verified: call this on a certificate
/// rustls has verified (a TLS peer's leaf after the handshake).
pub fn certificate_names(der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let mut names: Vec<String> = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                x509_parser::extensions::GeneralName::DNSName(d) => Some((*d).to_owned()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if names.is_empty() {
        names = cert
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok().map(str::to_owned))
            .collect();
    }
    names
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn cert_der(sans: &[&str], cn: &str) -> Vec<u8> {
        let mut p =
            rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, cn.to_string());
        let key = rcgen::KeyPair::generate().unwrap();
        p.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn certificate_names_are_san_dns_names_else_the_cn() {
        let both = cert_der(&["a.example", "127.0.0.1"], "cn.example");
        assert_eq!(certificate_names(&both), vec!["a.example".to_string()]);
        let cn_only = cert_der(&[], "cn.example");
        assert_eq!(certificate_names(&cn_only), vec!["cn.example".to_string()]);
        let ip_only = cert_der(&["127.0.0.1"], "cn.example");
        assert_eq!(
            certificate_names(&ip_only),
            vec!["cn.example".to_string()],
            "an IP address SAN is no dNSName"
        );
        assert!(certificate_names(b"not a certificate").is_empty());
    }
}

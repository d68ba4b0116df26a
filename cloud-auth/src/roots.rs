//! Extra trust anchors for this crate's HTTPS clients (Keystone, `policyd`): a private
//! CA such as the development CA of `imsctl up`.

/// `builder` trusting, besides the system roots, every certificate in the PEM bundle
/// `pem` (if any).
pub fn trusting(
    mut builder: reqwest::ClientBuilder,
    pem: Option<&[u8]>,
) -> reqwest::Result<reqwest::ClientBuilder> {
    if let Some(pem) = pem {
        for cert in reqwest::Certificate::from_pem_bundle(pem)? {
            builder = builder.add_root_certificate(cert);
        }
    }
    Ok(builder)
}

//! The core's CA and one certificate per node for `imsctl config init`: a new CA, or the
//! operator's (`--ca-cert`/`--ca-key`). Each node's certificate names its host name
//! (SAN dNSName, also its Diameter Origin-Host and what `[zones] core_names` would
//! match) and its addresses (SAN iPAddress: peers and UEs connecting by address).

use std::fs;
use std::path::Path;

use anyhow::Context;
use rcgen::{CertificateParams, DnType, Issuer, KeyPair};
use time::{Duration, OffsetDateTime};

use super::plan::Node;
use crate::devca;

/// Leaf certificates are valid this long (the CA/Browser Forum's old limit; renew by
/// running `config init` again with `--ca-cert`/`--ca-key`).
const LEAF_DAYS: i64 = 825;
/// A generated CA is valid this long.
const CA_DAYS: i64 = 3650;

/// The CA that signs the nodes' certificates.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate (PEM), written as `tls/ca.crt`.
    pub cert_pem: String,
}

impl Ca {
    /// A new CA for `domain`, its key written to `key_path` (mode 0600).
    pub fn generate(domain: &str, key_path: &Path) -> anyhow::Result<Ca> {
        let key = KeyPair::generate()?;
        let mut params = devca::ca_params(&format!("IMS core CA ({domain})"))?;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(CA_DAYS);
        let cert = params.self_signed(&key)?;
        devca::write_secret(key_path, &key.serialize_pem())?;
        Ok(Ca {
            issuer: Issuer::new(params, key),
            cert_pem: cert.pem(),
        })
    }

    /// The operator's CA from its certificate and key (PEM).
    pub fn load(cert: &Path, key: &Path) -> anyhow::Result<Ca> {
        let cert_pem =
            fs::read_to_string(cert).with_context(|| format!("reading {}", cert.display()))?;
        let key_pem =
            fs::read_to_string(key).with_context(|| format!("reading {}", key.display()))?;
        let key = KeyPair::from_pem(&key_pem)
            .with_context(|| format!("{}: not a PEM private key", key.display()))?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)
            .with_context(|| format!("{}: not a CA certificate", cert.display()))?;
        Ok(Ca { issuer, cert_pem })
    }

    /// Issues `node`'s certificate and writes `<dir>/<role>.crt` and `<role>.key` (0600).
    pub fn issue(&self, node: &Node, dir: &Path) -> anyhow::Result<()> {
        let mut names = vec![node.name.clone(), node.addr.to_string()];
        names.extend(node.public.map(|p| p.to_string()));
        let mut params = CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(DnType::CommonName, node.name.clone());
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(LEAF_DAYS);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        devca::write_secret(&dir.join(format!("{}.key", node.id)), &key.serialize_pem())?;
        let crt = dir.join(format!("{}.crt", node.id));
        fs::write(&crt, cert.pem()).with_context(|| format!("writing {}", crt.display()))
    }
}

//! The development CA: generated once into `<data>/tls/`, then reused.
//!
//! Files: `ca.crt`/`ca.key` and, per node, `<node>.crt`/`<node>.key` valid for
//! `localhost`, `127.0.0.1`, `::1`, `<node>.<domain>` and the node's extra names (the
//! Diameter Origin-Host of the HSS and the CSCFs: the certificate is also their Cx
//! client or server certificate). Private keys are written with mode 0600. Never use
//! these certificates outside development. An existing certificate is kept, even if the
//! names asked for changed: delete it to have it issued again.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// Paths of the dev CA files.
pub struct DevCa {
    /// Directory holding everything.
    pub dir: PathBuf,
}

impl DevCa {
    /// Ensures the CA and the certificates of `nodes` (name, extra DNS names) exist under
    /// `<data_dir>/tls`. Existing files are kept. Returns whether anything was generated.
    pub fn ensure(
        data_dir: &Path,
        domain: &str,
        nodes: &[(&str, Vec<String>)],
    ) -> anyhow::Result<(DevCa, bool)> {
        let dir = data_dir.join("tls");
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let ca_crt = dir.join("ca.crt");
        let ca_key = dir.join("ca.key");
        let mut generated = false;
        if !ca_crt.exists() || !ca_key.exists() {
            let key = KeyPair::generate()?;
            let cert = ca_params(DEV_CA_NAME)?.self_signed(&key)?;
            write_secret(&ca_key, &key.serialize_pem())?;
            fs::write(&ca_crt, cert.pem())
                .with_context(|| format!("writing {}", ca_crt.display()))?;
            generated = true;
        }
        let ca_key_pem =
            fs::read_to_string(&ca_key).with_context(|| format!("reading {}", ca_key.display()))?;
        // The issuer needs only the CA's name and key, both reproducible from the files.
        let issuer = Issuer::new(ca_params(DEV_CA_NAME)?, KeyPair::from_pem(&ca_key_pem)?);
        for (node, extra) in nodes {
            let crt = dir.join(format!("{node}.crt"));
            let key_path = dir.join(format!("{node}.key"));
            if crt.exists() && key_path.exists() {
                continue;
            }
            let key = KeyPair::generate()?;
            let mut names = vec![
                "localhost".to_string(),
                "127.0.0.1".to_string(),
                "::1".to_string(),
                format!("{node}.{domain}"),
            ];
            for name in extra {
                if !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                    names.push(name.clone());
                }
            }
            let mut params = CertificateParams::new(names)?;
            params
                .distinguished_name
                .push(DnType::CommonName, format!("{node}.{domain}"));
            let cert = params.signed_by(&key, &issuer)?;
            write_secret(&key_path, &key.serialize_pem())?;
            fs::write(&crt, cert.pem()).with_context(|| format!("writing {}", crt.display()))?;
            generated = true;
        }
        Ok((DevCa { dir }, generated))
    }
}

/// The dev CA's subject common name.
const DEV_CA_NAME: &str = "IMS core development CA";

/// The parameters of a CA named `common_name` (also `imsctl config init`'s CA).
pub fn ca_params(common_name: &str) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(params)
}

/// Writes a private key or other secret with mode 0600 (created or truncated).
pub fn write_secret(path: &Path, pem: &str) -> anyhow::Result<()> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    // An existing file keeps its mode through `open`: make it private as well.
    #[cfg(unix)]
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    f.write_all(pem.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_reuses() {
        let tmp = std::env::temp_dir().join(format!("imsctl-devca-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        let nodes = [
            ("pcscf", Vec::new()),
            ("scscf", vec!["scscf-cx.example.org".to_string()]),
        ];
        let (ca, first) = DevCa::ensure(&tmp, "ims.example.net", &nodes).unwrap();
        assert!(first);
        let crt = fs::read_to_string(ca.dir.join("pcscf.crt")).unwrap();
        assert!(crt.starts_with("-----BEGIN CERTIFICATE-----"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(ca.dir.join("pcscf.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "private key readable by others: {mode:o}");
        }
        let scscf = fs::read_to_string(ca.dir.join("scscf.crt")).unwrap();
        let der = rustls_pemfile::certs(&mut scscf.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        let names = ims_pki::certificate_names(&der);
        for name in ["scscf.ims.example.net", "scscf-cx.example.org"] {
            assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
        }
        let (_, second) = DevCa::ensure(&tmp, "ims.example.net", &nodes).unwrap();
        assert!(!second, "existing CA and certificates are reused");
        assert_eq!(fs::read_to_string(ca.dir.join("pcscf.crt")).unwrap(), crt);
        let _ = fs::remove_dir_all(&tmp);
    }
}

//! Certificates: the files exist, each certificate chains to the CA its peers trust and
//! names what they connect to or expect (Diameter Origin-Host, TLS server name,
//! advertised address, `[zones] core_names`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, RootCertStore};

use super::endpoint::{host_port, url};
use super::{Configs, Files, Finding};

/// Why a certificate does not do for a peer.
#[derive(Debug, PartialEq, Eq)]
pub enum Unfit {
    /// A file is missing or no PEM certificate.
    File(String),
    /// It does not chain to the CA.
    Chain,
    /// It chains, but does not carry the name.
    Name,
    /// Expired, not yet valid, or otherwise refused.
    Other(String),
}

/// The certificates of a PEM file, leaf first.
pub fn read(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// The DNS names a certificate file's leaf carries, as a peer reading its names sees
/// them (empty if unreadable).
pub fn names(path: &Path) -> Vec<String> {
    read(path)
        .ok()
        .and_then(|c| c.into_iter().next())
        .map(|leaf| ims_pki::certificate_names(&leaf))
        .unwrap_or_default()
}

/// The DNS names and IP addresses (SAN iPAddress) of a certificate file's leaf: the
/// hosts a node listening on the unspecified address is reached by.
pub fn hosts(path: &Path) -> Vec<String> {
    let mut hosts = names(path);
    let Some(leaf) = read(path).ok().and_then(|c| c.into_iter().next()) else {
        return hosts;
    };
    if let Ok((_, cert)) = x509_parser::parse_x509_certificate(&leaf) {
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for n in &san.value.general_names {
                if let x509_parser::extensions::GeneralName::IPAddress(b) = n {
                    let ip = match b.len() {
                        4 => <[u8; 4]>::try_from(*b).ok().map(std::net::IpAddr::from),
                        16 => <[u8; 16]>::try_from(*b).ok().map(std::net::IpAddr::from),
                        _ => None,
                    };
                    hosts.extend(ip.map(|ip| ip.to_string()));
                }
            }
        }
    }
    hosts
}

/// Whether `cert` (PEM chain) verifies against `ca` (PEM) for `name`, as a TLS peer
/// connecting to `name` would check it.
pub fn verify(cert: &Path, ca: &Path, name: &str) -> Result<(), Unfit> {
    let chain = read(cert).map_err(Unfit::File)?;
    let mut roots = RootCertStore::empty();
    for c in read(ca).map_err(Unfit::File)? {
        roots
            .add(c)
            .map_err(|e| Unfit::File(format!("{}: {e}", ca.display())))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| Unfit::Other(e.to_string()))?;
    let server = ServerName::try_from(name.to_string())
        .map_err(|_| Unfit::Other(format!("{name}: not a DNS name or address")))?;
    let (leaf, rest) = chain.split_first().ok_or(Unfit::Chain)?;
    match verifier.verify_server_cert(leaf, rest, &server, &[], UnixTime::now()) {
        Ok(_) => Ok(()),
        Err(rustls::Error::InvalidCertificate(e)) => Err(match e {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => Unfit::Chain,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                Unfit::Name
            }
            other => Unfit::Other(format!("{other:?}")),
        }),
        Err(e) => Err(Unfit::Other(e.to_string())),
    }
}

/// One certificate a peer checks: in `file` at `key`, against the CA at `ca_key` of
/// `ca_file`, for `name` (which `why` explains).
pub struct Expect<'a> {
    /// File and key of the certificate.
    pub file: &'a str,
    /// Its key.
    pub key: String,
    /// Its path.
    pub cert: &'a Path,
    /// File, key and path of the CA the peer trusts.
    pub ca: (&'a str, String, &'a Path),
    /// The name the peer expects.
    pub name: String,
    /// Where that name comes from.
    pub why: String,
}

/// Checks one expectation; a finding names the certificate's key for a wrong name and
/// the CA's key for a broken chain.
pub fn expect(files: &Files, e: Expect<'_>, out: &mut Vec<Finding>) {
    let (ca_file, ca_key, ca) = e.ca;
    match verify(&files.local(e.cert), &files.local(ca), &e.name) {
        Ok(()) => {}
        Err(Unfit::File(_)) => {} // reported by `exist`
        Err(Unfit::Chain) => out.push(Finding::new(
            ca_file,
            ca_key,
            format!(
                "{}'s {} ({}) does not chain to {}",
                e.file,
                e.key,
                e.cert.display(),
                ca.display()
            ),
        )),
        Err(Unfit::Name) => out.push(Finding::new(
            e.file,
            e.key,
            format!("{} does not name {} ({})", e.cert.display(), e.name, e.why),
        )),
        Err(Unfit::Other(why)) => out.push(Finding::new(
            e.file,
            e.key,
            format!("{}: refused for {}: {why}", e.cert.display(), e.name),
        )),
    }
}

/// Whether the private key at `key` is the one of the certificate at `cert` (`None`
/// when either cannot be read: a key format rcgen does not parse is not judged).
fn key_matches(cert: &Path, key: &Path) -> Option<bool> {
    use rcgen::PublicKeyData;
    let leaf = read(cert).ok()?.into_iter().next()?;
    let pem = std::fs::read_to_string(key).ok()?;
    let pair = rcgen::KeyPair::from_pem(&pem).ok()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&leaf).ok()?;
    Some(parsed.public_key().subject_public_key.data.as_ref() == pair.der_bytes())
}

/// Every file a config names exists (certificates parse), and each key belongs to the
/// certificate named beside it (`<x>.cert`/`<x>.key`, `cx.tls_cert`/`cx.tls_key`).
fn exist(
    file: &str,
    entries: &[(&str, Option<&PathBuf>, bool)],
    files: &Files,
    out: &mut Vec<Finding>,
) {
    for pair in entries.windows(2) {
        let [(cert_key, Some(cert), true), (key_key, Some(key), false)] = pair else {
            continue;
        };
        if key_matches(&files.local(cert), &files.local(key)) == Some(false) {
            out.push(Finding::new(
                file,
                *key_key,
                format!(
                    "{} is not the key of {cert_key} {}",
                    key.display(),
                    cert.display()
                ),
            ));
        }
    }
    for (key, path, is_cert) in entries {
        let Some(path) = path else { continue };
        let local = files.local(path);
        if !local.exists() {
            out.push(Finding::new(
                file,
                *key,
                format!(
                    "{} does not exist (looked for {})",
                    path.display(),
                    local.display()
                ),
            ));
        } else if *is_cert {
            if let Err(e) = read(&local) {
                out.push(Finding::new(file, *key, e));
            }
        }
    }
}

/// The rules of this module.
pub fn check(c: &Configs, files: &Files, out: &mut Vec<Finding>) {
    existence(c, files, out);
    cx(c, files, out);
    listeners(c, files, out);
    core_names(c, files, out);
}

type Entry<'a> = (&'static str, Option<&'a PathBuf>, bool);

fn sip_files(s: &ims_config::SipSection) -> [Entry<'_>; 4] {
    let t = s.tls_files.as_ref();
    [
        ("sip.tls_files.cert", t.map(|t| &t.cert), true),
        ("sip.tls_files.key", t.map(|t| &t.key), false),
        ("sip.tls_files.ca", t.and_then(|t| t.ca.as_ref()), true),
        (
            "sip.tls_files.client_ca",
            t.and_then(|t| t.client_ca.as_ref()),
            true,
        ),
    ]
}

fn http_files(h: &ims_config::HttpSection) -> [Entry<'_>; 2] {
    let t = h.tls.as_ref();
    [
        ("http.tls.cert", t.map(|t| &t.cert), true),
        ("http.tls.key", t.map(|t| &t.key), false),
    ]
}

fn cx_files(x: &ims_config::CxClientSection) -> [Entry<'_>; 3] {
    [
        ("cx.tls_ca", x.tls_ca.as_ref(), true),
        ("cx.tls_cert", x.tls_cert.as_ref(), true),
        ("cx.tls_key", x.tls_key.as_ref(), false),
    ]
}

fn policy_ca(a: &ims_config::CloudAuthSection) -> Option<&PathBuf> {
    a.policy_ca.as_ref()
}

fn existence(c: &Configs, files: &Files, out: &mut Vec<Finding>) {
    let (sip, http, cx) = (sip_files, http_files, cx_files);
    if let Some(p) = &c.pcscf {
        let mut e = sip(&p.sip).to_vec();
        e.extend(http(&p.http));
        e.push(("cloud_auth.policy_ca", policy_ca(&p.cloud_auth), true));
        exist("pcscf.toml", &e, files, out);
    }
    if let Some(i) = &c.icscf {
        let mut e = sip(&i.sip).to_vec();
        e.extend(http(&i.http));
        e.extend(cx(&i.cx));
        exist("icscf.toml", &e, files, out);
    }
    if let Some(s) = &c.scscf {
        let mut e = sip(&s.sip).to_vec();
        e.extend(http(&s.http));
        e.extend(cx(&s.cx));
        e.push(("cloud_auth.policy_ca", policy_ca(&s.cloud_auth), true));
        exist("scscf.toml", &e, files, out);
    }
    if let Some(h) = &c.hss {
        let mut e = http(&h.http).to_vec();
        let t = h.diameter.as_ref().and_then(|d| d.tls_files.as_ref());
        e.push(("diameter.tls_files.cert", t.map(|t| &t.cert), true));
        e.push(("diameter.tls_files.key", t.map(|t| &t.key), false));
        e.push((
            "diameter.tls_files.client_ca",
            t.and_then(|t| t.client_ca.as_ref()),
            true,
        ));
        e.push((
            "provisioning.cloud_auth.policy_ca",
            h.provisioning.cloud_auth.as_ref().and_then(policy_ca),
            true,
        ));
        if !h.security.generate_missing {
            e.push(("security.key_file", h.security.key_file.as_ref(), false));
            let token = h.provisioning.admin_token_file.as_ref();
            e.push(("provisioning.admin_token_file", token, false));
        }
        exist("hss.toml", &e, files, out);
    }
    if let Some(p) = &c.policyd {
        exist("policyd.toml", &http(&p.http), files, out);
    }
}

/// Cx over mutual TLS: the CSCF's certificate for the HSS, the HSS's for the CSCF.
fn cx(c: &Configs, files: &Files, out: &mut Vec<Finding>) {
    let Some(d) = c.hss.as_ref().and_then(|h| h.diameter.as_ref()) else {
        return;
    };
    let Some(hss_tls) = &d.tls_files else { return };
    let clients = [
        ("icscf.toml", c.icscf.as_ref().map(|i| &i.cx)),
        ("scscf.toml", c.scscf.as_ref().map(|s| &s.cx)),
    ];
    for (file, cx) in clients {
        let Some(cx) = cx else { continue };
        if let (Some(cert), Some(ca)) = (&cx.tls_cert, &hss_tls.client_ca) {
            let peer = d
                .peer
                .iter()
                .position(|p| p.host.eq_ignore_ascii_case(&cx.origin_host));
            let name = peer
                .and_then(|n| d.peer[n].tls_name.clone())
                .unwrap_or_else(|| cx.origin_host.clone());
            expect(
                files,
                Expect {
                    file,
                    key: "cx.tls_cert".into(),
                    cert,
                    ca: ("hss.toml", "diameter.tls_files.client_ca".into(), ca),
                    name,
                    why: "cx.origin_host, which the HSS checks".into(),
                },
                out,
            );
        }
        if let Some(ca) = &cx.tls_ca {
            expect(
                files,
                Expect {
                    file: "hss.toml",
                    key: "diameter.tls_files.cert".into(),
                    cert: &hss_tls.cert,
                    ca: (file, "cx.tls_ca".into(), ca),
                    name: cx
                        .peers()
                        .into_iter()
                        .find(|p| p.host.eq_ignore_ascii_case(&d.origin_host))
                        .map_or_else(|| cx.hss_tls_name().to_string(), |p| p.tls_name),
                    why: format!("{file}'s cx.destination_host/tls_server_name"),
                },
                out,
            );
        }
    }
}

/// The CAs named anywhere in the directory: the core's trust anchors.
fn core_cas(c: &Configs) -> Vec<(&'static str, String, &Path)> {
    let mut named: Vec<(&'static str, &str, Option<&PathBuf>)> = Vec::new();
    if let Some(i) = &c.icscf {
        named.push(("icscf.toml", "cx.tls_ca", i.cx.tls_ca.as_ref()));
    }
    if let Some(s) = &c.scscf {
        named.push(("scscf.toml", "cx.tls_ca", s.cx.tls_ca.as_ref()));
    }
    if let Some(p) = &c.pcscf {
        let ca = p.sip.tls_files.as_ref().and_then(|t| t.ca.as_ref());
        named.push(("pcscf.toml", "sip.tls_files.ca", ca));
        named.push((
            "pcscf.toml",
            "cloud_auth.policy_ca",
            p.cloud_auth.policy_ca.as_ref(),
        ));
    }
    if let Some(d) = c.hss.as_ref().and_then(|h| h.diameter.as_ref()) {
        let ca = d.tls_files.as_ref().and_then(|t| t.client_ca.as_ref());
        named.push(("hss.toml", "diameter.tls_files.client_ca", ca));
    }
    named
        .into_iter()
        .filter_map(|(f, k, p)| Some((f, k.to_string(), p?.as_path())))
        .collect()
}

/// A listener's certificate chains to a core CA and names the address it is reached at
/// (the HTTP listener's address; the P-CSCF's advertised host for UEs).
fn listeners(c: &Configs, files: &Files, out: &mut Vec<Finding>) {
    let cas = core_cas(c);
    let Some(ca) = cas.first() else { return };
    let http = [
        ("pcscf.toml", c.pcscf.as_ref().map(|x| &x.http)),
        ("icscf.toml", c.icscf.as_ref().map(|x| &x.http)),
        ("scscf.toml", c.scscf.as_ref().map(|x| &x.http)),
        ("hss.toml", c.hss.as_ref().map(|x| &x.http)),
        ("policyd.toml", c.policyd.as_ref().map(|x| &x.http)),
    ];
    for (file, h) in http {
        let Some(h) = h else { continue };
        let Some(tls) = &h.tls else { continue };
        let name = if h.listen.ip().is_unspecified() {
            None
        } else {
            Some(h.listen.ip().to_string())
        };
        chain_and_name(
            files,
            &cas,
            ca,
            file,
            "http.tls.cert",
            &tls.cert,
            name,
            "http.listen",
            out,
        );
    }
    let sip = [
        ("pcscf.toml", c.pcscf.as_ref().map(|x| &x.sip)),
        ("icscf.toml", c.icscf.as_ref().map(|x| &x.sip)),
        ("scscf.toml", c.scscf.as_ref().map(|x| &x.sip)),
    ];
    for (file, s) in sip {
        let Some(s) = s else { continue };
        let Some(tls) = &s.tls_files else { continue };
        if s.tls.is_empty() {
            continue;
        }
        let name = s
            .advertise
            .as_deref()
            .and_then(|a| host_port(a, 5061))
            .map(|e| e.host);
        chain_and_name(
            files,
            &cas,
            ca,
            file,
            "sip.tls_files.cert",
            &tls.cert,
            name,
            "sip.advertise",
            out,
        );
    }
    cloud(c, files, out);
}

/// Chains to any of `cas` and, when `name` is known, names it.
#[allow(clippy::too_many_arguments)]
fn chain_and_name(
    files: &Files,
    cas: &[(&str, String, &Path)],
    first: &(&str, String, &Path),
    file: &str,
    key: &str,
    cert: &Path,
    name: Option<String>,
    why: &str,
    out: &mut Vec<Finding>,
) {
    let chains = cas.iter().find(|(_, _, ca)| {
        !matches!(
            verify(&files.local(cert), &files.local(ca), "invalid.invalid"),
            Err(Unfit::Chain)
        )
    });
    match (chains, name) {
        (None, _) => out.push(Finding::new(
            file,
            key,
            format!(
                "{} chains to none of the core's CAs ({} {}, ...)",
                cert.display(),
                first.0,
                first.1
            ),
        )),
        (Some(ca), Some(name)) => expect(
            files,
            Expect {
                file,
                key: key.to_string(),
                cert,
                ca: (ca.0, ca.1.clone(), ca.2),
                name,
                why: why.to_string(),
            },
            out,
        ),
        (Some(_), None) => {}
    }
}

/// The policy service's certificate as the CSCFs and the HSS connect to it.
fn cloud(c: &Configs, files: &Files, out: &mut Vec<Finding>) {
    let Some(pd) = &c.policyd else { return };
    let Some(tls) = &pd.http.tls else { return };
    for (file, key, auth) in super::cloud::clients(c) {
        let (Some(ca), Some(to)) = (&auth.policy_ca, auth.policy_url.as_deref().and_then(url))
        else {
            continue;
        };
        expect(
            files,
            Expect {
                file: "policyd.toml",
                key: "http.tls.cert".into(),
                cert: &tls.cert,
                ca: (file, format!("{key}.policy_ca"), ca),
                name: to.host,
                why: format!("{file}'s {key}.policy_url"),
            },
            out,
        );
    }
}

/// Every name in a CSCF's `[zones] core_names` is carried by another CSCF's certificate.
fn core_names(c: &Configs, files: &Files, out: &mut Vec<Finding>) {
    let cscfs = super::cscfs(c, files);
    for me in &cscfs {
        for (n, name) in me.zones.core_names.iter().enumerate() {
            let carried = cscfs
                .iter()
                .filter(|o| o.file != me.file)
                .any(|o| o.cert_names.iter().any(|x| x.eq_ignore_ascii_case(name)));
            if !carried {
                out.push(Finding::new(
                    &me.file,
                    format!("zones.core_names[{n}]"),
                    format!("{name}: no other CSCF's sip.tls_files.cert names it"),
                ));
            }
        }
    }
}

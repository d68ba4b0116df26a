//! `imsctl config check DIR`: loads every node configuration in DIR with `ims-config`
//! (its errors name file and key) and checks the rules that tie the files together:
//! one domain, SIP routes that reach the next node's listeners, Cx identities and peers,
//! certificates that chain to the CAs their peers trust and name what the peers expect,
//! trust zones that cover the other CSCFs, and one policy service and Keystone. Every
//! finding names the file and the dotted key to change.

mod certs;
mod cloud;
mod cx;
mod endpoint;
pub use endpoint::host_port;
mod routes;

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::bail;
use ims_config::{HssConfig, IcscfConfig, PcscfConfig, PolicydConfig, ScscfConfig};

/// One broken rule: the file and key to change, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Config file name, e.g. `icscf.toml`.
    pub file: String,
    /// Dotted key, e.g. `scscf[0].uri`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl Finding {
    fn new(file: &str, key: impl Into<String>, message: impl Into<String>) -> Finding {
        Finding {
            file: file.to_string(),
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.file, self.key, self.message)
    }
}

/// The node configurations found in a directory.
#[derive(Default)]
pub struct Configs {
    /// `pcscf.toml`
    pub pcscf: Option<PcscfConfig>,
    /// `icscf.toml`
    pub icscf: Option<IcscfConfig>,
    /// `scscf.toml`
    pub scscf: Option<ScscfConfig>,
    /// `hss.toml`
    pub hss: Option<HssConfig>,
    /// `policyd.toml`
    pub policyd: Option<PolicydConfig>,
}

/// Where the files named in the configs are: under `paths_base` they are read from
/// `dir` (the configs are written for their installed place).
pub struct Files {
    dir: PathBuf,
    paths_base: PathBuf,
}

impl Files {
    /// The local file a config's path stands for.
    pub fn local(&self, p: &Path) -> PathBuf {
        super::plan::resolve(&self.dir, &self.paths_base, p)
    }
}

fn load<T>(dir: &Path, file: &str, findings: &mut Vec<Finding>) -> Option<T>
where
    T: serde::de::DeserializeOwned + ims_config::Validate,
{
    let path = dir.join(file);
    if !path.exists() {
        return None;
    }
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            findings.push(Finding::new(file, ".", format!("cannot read: {e}")));
            return None;
        }
    };
    match ims_config::parse_str::<T>(&text, Path::new(file)) {
        Ok(c) => Some(c),
        Err(e) => {
            let key = e.key().unwrap_or(".").to_string();
            let full = e.to_string();
            let message = full
                .strip_prefix(&format!("{file}: {key}: "))
                .or_else(|| full.strip_prefix(&format!("{file}: ")))
                .unwrap_or(&full)
                .to_string();
            findings.push(Finding::new(file, key, message));
            None
        }
    }
}

/// Loads what `dir` holds and checks every rule; the findings in file order.
pub fn check(dir: &Path, paths_base: &Path) -> Vec<Finding> {
    let mut findings = Vec::new();
    let configs = Configs {
        pcscf: load(dir, "pcscf.toml", &mut findings),
        icscf: load(dir, "icscf.toml", &mut findings),
        scscf: load(dir, "scscf.toml", &mut findings),
        hss: load(dir, "hss.toml", &mut findings),
        policyd: load(dir, "policyd.toml", &mut findings),
    };
    let files = Files {
        dir: dir.to_path_buf(),
        paths_base: paths_base.to_path_buf(),
    };
    let cscfs = cscfs(&configs, &files);
    routes::check(&configs, &cscfs, &mut findings);
    let hss_names = configs
        .hss
        .as_ref()
        .and_then(|h| h.diameter.as_ref())
        .and_then(|d| d.tls_files.as_ref())
        .map(|t| certs::hosts(&files.local(&t.cert)))
        .unwrap_or_default();
    cx::check(&configs, &hss_names, &mut findings);
    let policyd_names = configs
        .policyd
        .as_ref()
        .and_then(|p| p.http.tls.as_ref())
        .map(|t| certs::hosts(&files.local(&t.cert)))
        .unwrap_or_default();
    cloud::check(&configs, &policyd_names, &mut findings);
    certs::check(&configs, &files, &mut findings);
    findings
}

/// The CSCFs of the directory with what the zone rules need.
fn cscfs<'a>(c: &'a Configs, files: &Files) -> Vec<routes::Cscf<'a>> {
    let names = |sip: &ims_config::SipSection| {
        sip.tls_files
            .as_ref()
            .map(|t| certs::names(&files.local(&t.cert)))
            .unwrap_or_default()
    };
    let hosts = |certs: &[Option<&PathBuf>]| {
        let mut all: Vec<String> = certs
            .iter()
            .flatten()
            .flat_map(|p| certs::hosts(&files.local(p)))
            .collect();
        all.sort();
        all.dedup();
        all
    };
    let sip_cert = |sip: &'a ims_config::SipSection| sip.tls_files.as_ref().map(|t| &t.cert);
    let http_cert = |h: &'a ims_config::HttpSection| h.tls.as_ref().map(|t| &t.cert);
    let mut v = Vec::new();
    if let Some(p) = &c.pcscf {
        v.push(routes::Cscf {
            file: "pcscf.toml",
            sip: &p.sip,
            zones: &p.zones,
            cert_names: names(&p.sip),
            hosts: hosts(&[sip_cert(&p.sip), http_cert(&p.http)]),
        });
    }
    if let Some(i) = &c.icscf {
        v.push(routes::Cscf {
            file: "icscf.toml",
            sip: &i.sip,
            zones: &i.zones,
            cert_names: names(&i.sip),
            hosts: hosts(&[sip_cert(&i.sip), http_cert(&i.http), i.cx.tls_cert.as_ref()]),
        });
    }
    if let Some(s) = &c.scscf {
        v.push(routes::Cscf {
            file: "scscf.toml",
            sip: &s.sip,
            zones: &s.zones,
            cert_names: names(&s.sip),
            hosts: hosts(&[sip_cert(&s.sip), http_cert(&s.http), s.cx.tls_cert.as_ref()]),
        });
    }
    v
}

/// Prints the findings; fails when there are any (or when DIR holds no config).
pub fn run(dir: &Path, paths_base: &Path) -> anyhow::Result<()> {
    let found: Vec<&str> = super::plan::ROLES
        .iter()
        .copied()
        .filter(|r| dir.join(format!("{r}.toml")).exists())
        .collect();
    if found.is_empty() {
        bail!("{}: no pcscf/icscf/scscf/hss/policyd.toml", dir.display());
    }
    let findings = check(dir, paths_base);
    for f in &findings {
        eprintln!("{f}");
    }
    if !findings.is_empty() {
        bail!(
            "{}: {} problem(s) in {}",
            dir.display(),
            findings.len(),
            found.join(", ")
        );
    }
    println!("{}: {} consistent", dir.display(), found.join(", "));
    Ok(())
}

//! `imsctl config check DIR`: loads every node configuration in DIR with `ims-config`
//! (its errors name file and key) and checks the rules that tie the files together:
//! one domain, SIP routes that reach the next node's listeners, Cx identities and peers,
//! certificates that chain to the CAs their peers trust and name what the peers expect,
//! trust zones that cover the other CSCFs, and one policy service and Keystone. Every
//! finding names the file and the dotted key to change.
//!
//! A pooled core (`imsctl config init` with a role given more than once) has
//! `<role><n>.toml` files: the rules between two nodes run on each "view" of one node
//! per role (the n-th of each pool), and the rules of the pools themselves
//! (`pool.rs`) across all files.

mod certs;
mod cloud;
mod cx;
mod endpoint;
mod pool;
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
    /// Not an error: something config check cannot decide (printed, not failing).
    pub warning: bool,
}

impl Finding {
    fn new(file: &str, key: impl Into<String>, message: impl Into<String>) -> Finding {
        Finding {
            file: file.to_string(),
            key: key.into(),
            message: message.into(),
            warning: false,
        }
    }

    fn warning(file: &str, key: impl Into<String>, message: impl Into<String>) -> Finding {
        Finding {
            warning: true,
            ..Finding::new(file, key, message)
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let warning = if self.warning { "warning: " } else { "" };
        write!(f, "{warning}{}: {}: {}", self.file, self.key, self.message)
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
    /// The Server-Names of every S-CSCF of the directory (a pool's included).
    pub scscf_names: Vec<String>,
    /// The Diameter identities of every HSS of the directory.
    pub hss_hosts: Vec<String>,
}

/// The files of one role: `<role>.toml`, or `<role><n>.toml` for a pool.
pub struct Members<T> {
    /// File name and configuration, in file order.
    pub all: Vec<(String, T)>,
}

impl<T: Clone> Members<T> {
    /// The member of view `k` (the pools' n-th nodes side by side).
    fn view(&self, k: usize) -> Option<(String, T)> {
        (!self.all.is_empty()).then(|| self.all[k % self.all.len()].clone())
    }
}

/// Every node configuration of a directory, pools included.
pub struct Pools {
    /// P-CSCFs.
    pub pcscf: Members<PcscfConfig>,
    /// I-CSCFs.
    pub icscf: Members<IcscfConfig>,
    /// S-CSCFs.
    pub scscf: Members<ScscfConfig>,
    /// HSSs.
    pub hss: Members<HssConfig>,
    /// Policy services.
    pub policyd: Members<PolicydConfig>,
}

/// The files of `role` in `dir`: `<role>.toml` and `<role><n>.toml`, in order of n.
pub fn role_files(dir: &Path, role: &str) -> Vec<String> {
    let mut found: Vec<(u32, String)> = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    for e in entries.flatten().take(10_000) {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(n) = name
            .strip_suffix(".toml")
            .and_then(|stem| stem.strip_prefix(role))
        else {
            continue;
        };
        match n {
            "" => found.push((0, name)),
            _ if n.len() <= 3 && n.bytes().all(|b| b.is_ascii_digit()) => {
                found.push((n.parse().unwrap_or(0), name))
            }
            _ => {}
        }
    }
    found.sort();
    found.into_iter().map(|(_, f)| f).collect()
}

fn load_all<T>(dir: &Path, role: &str, findings: &mut Vec<Finding>) -> Members<T>
where
    T: serde::de::DeserializeOwned + ims_config::Validate,
{
    let all = role_files(dir, role)
        .into_iter()
        .filter_map(|f| load(dir, &f, findings).map(|c| (f, c)))
        .collect();
    Members { all }
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

/// Loads what `dir` holds and checks every rule; the findings in file order (errors
/// and warnings).
pub fn check(dir: &Path, paths_base: &Path) -> Vec<Finding> {
    let mut findings = Vec::new();
    let pools = Pools {
        pcscf: load_all(dir, "pcscf", &mut findings),
        icscf: load_all(dir, "icscf", &mut findings),
        scscf: load_all(dir, "scscf", &mut findings),
        hss: load_all(dir, "hss", &mut findings),
        policyd: load_all(dir, "policyd", &mut findings),
    };
    let files = Files {
        dir: dir.to_path_buf(),
        paths_base: paths_base.to_path_buf(),
    };
    let views = [
        pools.pcscf.all.len(),
        pools.icscf.all.len(),
        pools.scscf.all.len(),
        pools.hss.all.len(),
        pools.policyd.all.len(),
    ]
    .into_iter()
    .max()
    .unwrap_or(0);
    let scscf_names: Vec<String> = pools
        .scscf
        .all
        .iter()
        .map(|(_, s)| s.registrar.server_name.to_ascii_lowercase())
        .collect();
    let hss_hosts: Vec<String> = pools
        .hss
        .all
        .iter()
        .filter_map(|(_, h)| h.diameter.as_ref())
        .map(|d| d.origin_host.to_ascii_lowercase())
        .collect();
    for k in 0..views {
        let mut names: Vec<(String, String)> = Vec::new();
        let mut pick = |role: &str, file: Option<&String>| {
            if let Some(f) = file {
                names.push((format!("{role}.toml"), f.clone()));
            }
        };
        let (pcscf, icscf, scscf, hss, policyd) = (
            pools.pcscf.view(k),
            pools.icscf.view(k),
            pools.scscf.view(k),
            pools.hss.view(k),
            pools.policyd.view(k),
        );
        pick("pcscf", pcscf.as_ref().map(|v| &v.0));
        pick("icscf", icscf.as_ref().map(|v| &v.0));
        pick("scscf", scscf.as_ref().map(|v| &v.0));
        pick("hss", hss.as_ref().map(|v| &v.0));
        pick("policyd", policyd.as_ref().map(|v| &v.0));
        let configs = Configs {
            pcscf: pcscf.map(|v| v.1),
            icscf: icscf.map(|v| v.1),
            scscf: scscf.map(|v| v.1),
            hss: hss.map(|v| v.1),
            policyd: policyd.map(|v| v.1),
            scscf_names: scscf_names.clone(),
            hss_hosts: hss_hosts.clone(),
        };
        for f in check_view(&configs, &files) {
            let f = rename(f, &names);
            if !findings.contains(&f) {
                findings.push(f);
            }
        }
    }
    pool::check(&pools, &files, &mut findings);
    findings
}

/// A finding of a view with the role's file names (`scscf.toml`) replaced by the
/// view's (`scscf2.toml`).
fn rename(mut f: Finding, names: &[(String, String)]) -> Finding {
    for (generic, actual) in names.iter().filter(|(g, a)| g != a) {
        if f.file == *generic {
            f.file = actual.clone();
        }
        f.message = f.message.replace(generic.as_str(), actual);
    }
    f
}

/// The rules between one node of each role.
fn check_view(configs: &Configs, files: &Files) -> Vec<Finding> {
    let mut findings = Vec::new();
    let cscfs = cscfs(configs, files);
    routes::check(configs, &cscfs, &mut findings);
    let hss_names = configs
        .hss
        .as_ref()
        .and_then(|h| h.diameter.as_ref())
        .and_then(|d| d.tls_files.as_ref())
        .map(|t| certs::hosts(&files.local(&t.cert)))
        .unwrap_or_default();
    cx::check(configs, &hss_names, &mut findings);
    let policyd_names = configs
        .policyd
        .as_ref()
        .and_then(|p| p.http.tls.as_ref())
        .map(|t| certs::hosts(&files.local(&t.cert)))
        .unwrap_or_default();
    cloud::check(configs, &policyd_names, &mut findings);
    certs::check(configs, files, &mut findings);
    findings
}

/// A CSCF with what the route and zone rules need: `certs` are the certificates it
/// presents (SIP, HTTPS, Cx).
fn cscf_of<'a>(
    file: &str,
    sip: &'a ims_config::SipSection,
    zones: &'a ims_config::ZonesSection,
    certs: &[Option<&PathBuf>],
    files: &Files,
) -> routes::Cscf<'a> {
    let mut hosts: Vec<String> = certs
        .iter()
        .flatten()
        .flat_map(|p| certs::hosts(&files.local(p)))
        .collect();
    hosts.sort();
    hosts.dedup();
    routes::Cscf {
        file: file.to_string(),
        sip,
        zones,
        cert_names: sip
            .tls_files
            .as_ref()
            .map(|t| certs::names(&files.local(&t.cert)))
            .unwrap_or_default(),
        hosts,
    }
}

fn sip_cert(sip: &ims_config::SipSection) -> Option<&PathBuf> {
    sip.tls_files.as_ref().map(|t| &t.cert)
}

fn http_cert(h: &ims_config::HttpSection) -> Option<&PathBuf> {
    h.tls.as_ref().map(|t| &t.cert)
}

/// A P-CSCF as a [`routes::Cscf`].
fn pcscf_cscf<'a>(file: &str, p: &'a PcscfConfig, files: &Files) -> routes::Cscf<'a> {
    let certs = [sip_cert(&p.sip), http_cert(&p.http)];
    cscf_of(file, &p.sip, &p.zones, &certs, files)
}

/// An I-CSCF as a [`routes::Cscf`].
fn icscf_cscf<'a>(file: &str, i: &'a IcscfConfig, files: &Files) -> routes::Cscf<'a> {
    let certs = [sip_cert(&i.sip), http_cert(&i.http), i.cx.tls_cert.as_ref()];
    cscf_of(file, &i.sip, &i.zones, &certs, files)
}

/// An S-CSCF as a [`routes::Cscf`].
fn scscf_cscf<'a>(file: &str, s: &'a ScscfConfig, files: &Files) -> routes::Cscf<'a> {
    let certs = [sip_cert(&s.sip), http_cert(&s.http), s.cx.tls_cert.as_ref()];
    cscf_of(file, &s.sip, &s.zones, &certs, files)
}

/// The CSCFs of a view with what the route and zone rules need.
fn cscfs<'a>(c: &'a Configs, files: &Files) -> Vec<routes::Cscf<'a>> {
    let mut v = Vec::new();
    v.extend(c.pcscf.as_ref().map(|p| pcscf_cscf("pcscf.toml", p, files)));
    v.extend(c.icscf.as_ref().map(|i| icscf_cscf("icscf.toml", i, files)));
    v.extend(c.scscf.as_ref().map(|s| scscf_cscf("scscf.toml", s, files)));
    v
}

/// Prints the findings; fails when there are any (or when DIR holds no config).
pub fn run(dir: &Path, paths_base: &Path) -> anyhow::Result<()> {
    let found: Vec<String> = super::plan::ROLES
        .iter()
        .flat_map(|r| role_files(dir, r))
        .map(|f| f.trim_end_matches(".toml").to_string())
        .collect();
    if found.is_empty() {
        bail!("{}: no pcscf/icscf/scscf/hss/policyd.toml", dir.display());
    }
    let findings = check(dir, paths_base);
    for f in &findings {
        eprintln!("{f}");
    }
    let errors = findings.iter().filter(|f| !f.warning).count();
    if errors > 0 {
        bail!(
            "{}: {errors} problem(s) in {}",
            dir.display(),
            found.join(", ")
        );
    }
    println!("{}: {} consistent", dir.display(), found.join(", "));
    Ok(())
}

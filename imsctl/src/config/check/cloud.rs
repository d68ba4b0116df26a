//! Cloud authorization: the CSCFs and the HSS ask the one policy service, over the
//! scheme it serves, and every node validates tokens against the same Keystone.

use ims_config::{CloudAuthMode, CloudAuthSection};

use super::endpoint::{reaches, url};
use super::{Configs, Finding};

/// The nodes with cloud authorization on: file, key of the section, the section.
pub fn clients(c: &Configs) -> Vec<(&'static str, &'static str, &CloudAuthSection)> {
    let mut v = Vec::new();
    if let Some(p) = &c.pcscf {
        v.push(("pcscf.toml", "cloud_auth", &p.cloud_auth));
    }
    if let Some(s) = &c.scscf {
        v.push(("scscf.toml", "cloud_auth", &s.cloud_auth));
    }
    if let Some(a) = c
        .hss
        .as_ref()
        .and_then(|h| h.provisioning.cloud_auth.as_ref())
    {
        v.push(("hss.toml", "provisioning.cloud_auth", a));
    }
    v.retain(|(_, _, a)| a.mode == CloudAuthMode::On);
    v
}

/// The rules of this module; `policyd_names` are the names of policyd's certificate
/// (the host a URL may name when policyd listens on the unspecified address).
pub fn check(c: &Configs, policyd_names: &[String], out: &mut Vec<Finding>) {
    let on = clients(c);
    let modes: Vec<(&str, CloudAuthMode)> = [
        ("pcscf.toml", c.pcscf.as_ref().map(|p| p.cloud_auth.mode)),
        ("scscf.toml", c.scscf.as_ref().map(|s| s.cloud_auth.mode)),
    ]
    .into_iter()
    .filter_map(|(f, m)| Some((f, m?)))
    .collect();
    if let [(f1, m1), (f2, m2)] = modes.as_slice() {
        if m1 != m2 {
            out.push(Finding::new(
                f2,
                "cloud_auth.mode",
                format!("{m2:?} while {f1} has {m1:?}: a UE's requests would be checked at one CSCF only"),
            ));
        }
    }
    let Some(pd) = &c.policyd else {
        if let Some((file, key, _)) = on.first() {
            out.push(Finding::new(
                file,
                format!("{key}.policy_url"),
                "on, but policyd.toml is missing or does not load",
            ));
        }
        return;
    };
    let scheme = if pd.http.tls.is_some() {
        "https"
    } else {
        "http"
    };
    for (file, key, auth) in &on {
        let policy_url = auth.policy_url.as_deref().unwrap_or_default();
        match url(policy_url) {
            Some(to) if !reaches(&to, &[pd.http.listen], policyd_names) => out.push(Finding::new(
                file,
                format!("{key}.policy_url"),
                format!(
                    "{policy_url} is not policyd.toml's http.listen ({})",
                    pd.http.listen
                ),
            )),
            Some(_) if !policy_url.to_ascii_lowercase().starts_with(scheme) => {
                out.push(Finding::new(
                    file,
                    format!("{key}.policy_url"),
                    format!("{policy_url}: policyd.toml serves {scheme}"),
                ))
            }
            _ => {}
        }
        match (&pd.keystone, &auth.keystone) {
            (None, _) => out.push(Finding::new(
                "policyd.toml",
                "keystone",
                format!("absent, while {file}'s {key} is on: policyd refuses every verify"),
            )),
            (Some(p), Some(k))
                if !p
                    .url
                    .trim_end_matches('/')
                    .eq_ignore_ascii_case(k.url.trim_end_matches('/')) =>
            {
                out.push(Finding::new(
                    file,
                    format!("{key}.keystone.url"),
                    format!("{} is not policyd.toml's keystone.url {}", k.url, p.url),
                ))
            }
            _ => {}
        }
    }
}

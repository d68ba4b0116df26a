//! Cx: each CSCF's Diameter identity is a peer of the HSS with the commands of its role,
//! names the HSS's identity and realm, and connects to an HSS listener.

use ims_config::{CxClientSection, HssConfig};

use super::endpoint::{reaches, Endpoint};
use super::{Configs, Finding};

/// The Cx requests each CSCF role sends (TS 29.228 §6).
const ICSCF_COMMANDS: [&str; 2] = ["UAR", "LIR"];
const SCSCF_COMMANDS: [&str; 2] = ["MAR", "SAR"];

/// The rules of this module.
/// `hss_names`: the names of the HSS's Diameter certificate (the hosts `[cx] hss` may
/// name when the HSS listens on the unspecified address).
pub fn check(c: &Configs, hss_names: &[String], out: &mut Vec<Finding>) {
    let Some(hss) = &c.hss else { return };
    let Some(d) = &hss.diameter else {
        if c.icscf.is_some() || c.scscf.is_some() {
            out.push(Finding::new(
                "hss.toml",
                "diameter",
                "absent: the CSCFs' Cx has no server",
            ));
        }
        return;
    };
    let hsss = &c.hss_hosts;
    if let Some(i) = &c.icscf {
        client(
            "icscf.toml",
            &i.cx,
            &ICSCF_COMMANDS,
            (hss, hsss),
            hss_names,
            out,
        );
    }
    if let Some(s) = &c.scscf {
        client(
            "scscf.toml",
            &s.cx,
            &SCSCF_COMMANDS,
            (hss, hsss),
            hss_names,
            out,
        );
        let host = super::endpoint::sip_uri(&s.registrar.server_name).map(|e| e.host);
        if host.as_deref() != Some(s.cx.origin_host.to_ascii_lowercase().as_str()) {
            out.push(Finding::new(
                "scscf.toml",
                "cx.origin_host",
                format!(
                    "{} is not the host of registrar.server_name {} (the HSS routes RTR/PPR by it)",
                    s.cx.origin_host, s.registrar.server_name
                ),
            ));
        }
        let names = &d.capabilities.server_names;
        for (n, name) in names.iter().enumerate() {
            // Another S-CSCF of a pool: checked in its own view.
            let member = c.scscf_names.contains(&name.to_ascii_lowercase());
            if !member && !name.eq_ignore_ascii_case(&s.registrar.server_name) {
                out.push(Finding::new(
                    "hss.toml",
                    format!("diameter.capabilities.server_names[{n}]"),
                    format!(
                        "{name} is no S-CSCF's registrar.server_name (scscf.toml has {})",
                        s.registrar.server_name
                    ),
                ));
            }
        }
    }
}

/// `cx` of `file` against the view's HSS; `hss.1` are the identities of every HSS of
/// the directory (a CSCF names several).
fn client(
    file: &str,
    cx: &CxClientSection,
    needs: &[&str],
    hss: (&HssConfig, &[String]),
    hss_names: &[String],
    out: &mut Vec<Finding>,
) {
    let (hss, all_hss) = hss;
    let Some(d) = &hss.diameter else { return };
    match d
        .peer
        .iter()
        .position(|p| p.host.eq_ignore_ascii_case(&cx.origin_host))
    {
        None => out.push(Finding::new(
            file,
            "cx.origin_host",
            format!(
                "{} is not a [[diameter.peer]] host of hss.toml",
                cx.origin_host
            ),
        )),
        Some(n) => {
            let missing: Vec<&str> = match &d.peer[n].commands {
                None => Vec::new(),
                Some(cmds) => needs
                    .iter()
                    .copied()
                    .filter(|c| !cmds.iter().any(|x| x == c))
                    .collect(),
            };
            if !missing.is_empty() {
                out.push(Finding::new(
                    "hss.toml",
                    format!("diameter.peer[{n}].commands"),
                    format!("{file}'s {} needs {}", cx.origin_host, missing.join(", ")),
                ));
            }
        }
    }
    let some_hss = all_hss.contains(&cx.destination_host.to_ascii_lowercase());
    if !cx.destination_host.eq_ignore_ascii_case(&d.origin_host) && !some_hss {
        out.push(Finding::new(
            file,
            "cx.destination_host",
            format!(
                "{} is not hss.toml's diameter.origin_host {}",
                cx.destination_host, d.origin_host
            ),
        ));
    }
    for (key, realm) in [
        ("cx.destination_realm", &cx.destination_realm),
        ("cx.origin_realm", &cx.origin_realm),
    ] {
        if !realm.eq_ignore_ascii_case(&d.origin_realm) {
            out.push(Finding::new(
                file,
                key,
                format!(
                    "{realm} is not hss.toml's diameter.origin_realm {}",
                    d.origin_realm
                ),
            ));
        }
    }
    let tls = cx.tls_ca.is_some();
    let (listeners, kind) = if tls {
        (&d.tls, "tls")
    } else {
        (&d.tcp, "tcp")
    };
    for (n, entry) in cx.hss.iter().enumerate() {
        let peer = match entry {
            ims_config::HssEntry::Peer(p) => p.origin_host.as_deref(),
            ims_config::HssEntry::Address(_) => None,
        }
        .unwrap_or(&cx.destination_host);
        if !peer.eq_ignore_ascii_case(&d.origin_host) && all_hss.len() > 1 {
            // Another HSS of the directory: checked in its own view.
            continue;
        }
        let hss = entry.address();
        let to = Endpoint {
            host: hss.host.clone(),
            port: hss.port,
        };
        if !reaches(&to, listeners, hss_names) {
            out.push(Finding::new(
                file,
                format!("cx.hss[{n}]"),
                format!(
                    "{hss} is not a Diameter {kind} listener of hss.toml (diameter.{kind}{})",
                    if tls { "; tls_ca makes Cx TLS" } else { "" }
                ),
            ));
        }
    }
    let hss_mutual = d.tls_files.as_ref().is_some_and(|f| f.client_ca.is_some());
    let bound_by_address = d
        .peer
        .iter()
        .any(|p| p.host.eq_ignore_ascii_case(&cx.origin_host) && !p.from.is_empty());
    if tls && hss_mutual && !bound_by_address && cx.tls_cert.is_none() {
        out.push(Finding::new(
            file,
            "cx.tls_cert",
            "absent: hss.toml binds this peer by certificate only (no `from`), so Cx is refused",
        ));
    }
}

//! The rules of pools, across every file of a role (`docs/scale-out.md`): S-CSCFs of a
//! pool share one PostgreSQL store with `[registrar] pool = true` and distinct
//! Server-Names; the HSSs share one database; every CSCF lists every HSS and is
//! accepted by each; the CSCFs' zones cover each other.

use ims_config::CxClientSection;

use super::{Files, Finding, Pools};

/// The rules of this module.
pub fn check(p: &Pools, files: &Files, out: &mut Vec<Finding>) {
    scscf_pool(p, out);
    hss_database(p, out);
    cx_peers(p, out);
    let mut cscfs = Vec::new();
    cscfs.extend(
        p.pcscf
            .all
            .iter()
            .map(|(f, c)| super::pcscf_cscf(f, c, files)),
    );
    cscfs.extend(
        p.icscf
            .all
            .iter()
            .map(|(f, c)| super::icscf_cscf(f, c, files)),
    );
    cscfs.extend(
        p.scscf
            .all
            .iter()
            .map(|(f, c)| super::scscf_cscf(f, c, files)),
    );
    if cscfs.len() > 3 {
        // One node per role: the view's zone rule said it all.
        let mut found = Vec::new();
        super::routes::zones(&cscfs, &mut found);
        for f in found {
            if !out.contains(&f) {
                out.push(f);
            }
        }
    }
}

/// Whether a store URL is PostgreSQL (what a pool shares).
fn postgres(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

fn scscf_pool(p: &Pools, out: &mut Vec<Finding>) {
    let all = &p.scscf.all;
    if all.len() < 2 {
        return;
    }
    let (first_file, first) = &all[0];
    for (n, (file, s)) in all.iter().enumerate() {
        let r = &s.registrar;
        if !r.pool {
            out.push(Finding::new(
                file,
                "registrar.pool",
                format!(
                    "false, but {} S-CSCFs are in this directory: set pool = true in each, or a failed S-CSCF's users are not taken over",
                    all.len()
                ),
            ));
        }
        if !postgres(&r.store) {
            out.push(Finding::new(
                file,
                "registrar.store",
                format!("{}: a pool of S-CSCFs shares one PostgreSQL store", r.store),
            ));
        } else if n > 0 && r.store != first.registrar.store {
            out.push(Finding::new(
                file,
                "registrar.store",
                format!(
                    "{} is not {first_file}'s {}: the pool shares one store",
                    r.store, first.registrar.store
                ),
            ));
        }
        let same = all[..n]
            .iter()
            .find(|(_, o)| o.registrar.server_name.eq_ignore_ascii_case(&r.server_name));
        if let Some((other, _)) = same {
            out.push(Finding::new(
                file,
                "registrar.server_name",
                format!(
                    "{} is {other}'s too: each S-CSCF of a pool owns its registrations by its own Server-Name",
                    r.server_name
                ),
            ));
        }
    }
}

fn hss_database(p: &Pools, out: &mut Vec<Finding>) {
    let all = &p.hss.all;
    if all.len() < 2 {
        return;
    }
    let (first_file, first) = &all[0];
    for (n, (file, h)) in all.iter().enumerate() {
        if !postgres(&h.store.url) {
            out.push(Finding::new(
                file,
                "store.url",
                format!(
                    "{}: {} HSSs share one PostgreSQL database",
                    h.store.url,
                    all.len()
                ),
            ));
        } else if n > 0 && h.store.url != first.store.url {
            out.push(Finding::new(
                file,
                "store.url",
                format!(
                    "{} is not {first_file}'s {}: the HSSs share one database",
                    h.store.url, first.store.url
                ),
            ));
        }
    }
}

/// Every CSCF names every HSS in `[cx] hss` (and no other Diameter identity), and every
/// HSS has a `[[diameter.peer]]` for every CSCF.
fn cx_peers(p: &Pools, out: &mut Vec<Finding>) {
    let hsss: Vec<(&str, &str)> = p
        .hss
        .all
        .iter()
        .filter_map(|(f, h)| {
            h.diameter
                .as_ref()
                .map(|d| (f.as_str(), d.origin_host.as_str()))
        })
        .collect();
    let mut clients: Vec<(&str, &CxClientSection)> = Vec::new();
    clients.extend(p.icscf.all.iter().map(|(f, i)| (f.as_str(), &i.cx)));
    clients.extend(p.scscf.all.iter().map(|(f, s)| (f.as_str(), &s.cx)));
    if hsss.len() < 2 && clients.len() < 3 {
        // One node per role: the view's rules said it all.
        return;
    }
    for (file, cx) in &clients {
        let peers = cx.peers();
        for (hss_file, host) in &hsss {
            if !peers.iter().any(|p| p.host.eq_ignore_ascii_case(host)) {
                out.push(Finding::new(
                    file,
                    "cx.hss",
                    format!(
                        "names no peer {host} ({hss_file}'s diameter.origin_host): list every HSS"
                    ),
                ));
            }
        }
        for peer in &peers {
            if hsss.len() > 1 && !hsss.iter().any(|(_, h)| h.eq_ignore_ascii_case(&peer.host)) {
                out.push(Finding::new(
                    file,
                    "cx.hss",
                    format!("{} is no HSS's diameter.origin_host", peer.host),
                ));
            }
        }
        for (hss_file, h) in &p.hss.all {
            let Some(d) = &h.diameter else { continue };
            if !d
                .peer
                .iter()
                .any(|p| p.host.eq_ignore_ascii_case(&cx.origin_host))
            {
                out.push(Finding::new(
                    hss_file,
                    "diameter.peer",
                    format!(
                        "no [[diameter.peer]] host {} ({file}'s cx.origin_host): every HSS must accept every CSCF",
                        cx.origin_host
                    ),
                ));
            }
        }
    }
}

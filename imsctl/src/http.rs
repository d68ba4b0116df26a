//! HTTP(S) toward the nodes: URLs from their `[http]` sections, and clients that trust
//! the CA given with `--ca` (or the dev CA) besides the system roots.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

/// The CA file trusted for `https` URLs: `explicit` (`--ca`/`IMS_CA`) if given, else the
/// dev CA that `imsctl up` generates, `${IMS_DATA_DIR:-data}/tls/ca.crt` (the same path
/// the dev configs use), if that file exists.
pub fn trusted_ca(explicit: Option<PathBuf>) -> Option<PathBuf> {
    explicit.or_else(|| {
        let data = std::env::var_os("IMS_DATA_DIR")
            .filter(|d| !d.is_empty())
            .map_or_else(|| PathBuf::from("data"), PathBuf::from);
        Some(data.join("tls").join("ca.crt")).filter(|p| p.is_file())
    })
}

/// An HTTP client for `base`: no proxy toward loopback (a proxy from the environment
/// cannot reach this machine's loopback), trusting the CA in `ca` if given.
pub fn http_client(base: &str, ca: Option<&Path>) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(30));
    if is_loopback(base) {
        builder = builder.no_proxy();
    }
    if let Some(path) = ca {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("{}: not PEM certificates", path.display()))?
        {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().context("building the HTTP client")
}

/// `http://` or `https://` (with `[http.tls]`) and the listen address of a node's
/// `[http]` section (an unspecified address as loopback).
pub fn base_url(http: &ims_config::HttpSection) -> String {
    let mut addr = http.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let scheme = if http.tls.is_some() { "https" } else { "http" };
    format!("{scheme}://{addr}")
}

/// Percent-encodes one path segment (RFC 3986 §2.3: unreserved characters stay).
pub fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Whether `url` points at this machine (127.0.0.0/8, ::1, localhost).
pub fn is_loopback(url: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else {
        return false;
    };
    let Some(host) = u.host_str() else {
        return false;
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls_are_recognised() {
        for u in [
            "http://127.0.0.1:9104",
            "http://127.1.2.3/",
            "http://[::1]:80",
            "http://LocalHost:1",
        ] {
            assert!(is_loopback(u), "{u}");
        }
        for u in [
            "http://10.0.0.1:9104",
            "http://hss.example.net",
            "http://[2001:db8::1]",
            "nonsense",
        ] {
            assert!(!is_loopback(u), "{u}");
        }
    }

    #[test]
    fn an_explicit_ca_wins_over_the_dev_ca() {
        let given = PathBuf::from("/nonexistent/operator-ca.pem");
        assert_eq!(trusted_ca(Some(given.clone())), Some(given));
    }
}

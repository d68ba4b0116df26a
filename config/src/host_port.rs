//! `host:port` addresses of peers named by host name or IP address.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use serde::Deserialize;

/// A peer's address: a host name or an IP address, and a port. Written `host:port`,
/// `192.0.2.7:3868` or `[2001:db8::7]:3868`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct HostPort {
    /// Host name (resolved when connecting) or IP address.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl HostPort {
    /// The IP address when the host is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

impl From<SocketAddr> for HostPort {
    fn from(addr: SocketAddr) -> HostPort {
        HostPort {
            host: addr.ip().to_string(),
            port: addr.port(),
        }
    }
}

impl FromStr for HostPort {
    type Err = String;

    fn from_str(s: &str) -> Result<HostPort, String> {
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Ok(addr.into());
        }
        let bad = || format!("`{s}` is not host:port");
        let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if port == 0 || host.len() > 253 || !host.split('.').all(label_ok) {
            return Err(bad());
        }
        Ok(HostPort {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

impl TryFrom<String> for HostPort {
    type Error = String;

    fn try_from(s: String) -> Result<HostPort, String> {
        s.parse()
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip() {
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            _ => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_addresses_parse_and_print_back() {
        for s in [
            "hss.ims.example.net:3868",
            "192.0.2.7:3868",
            "[2001:db8::7]:3868",
        ] {
            let hp: HostPort = s.parse().unwrap();
            assert_eq!(hp.to_string(), s);
        }
        let hp: HostPort = "HSS-1.Example.net:3868".parse().unwrap();
        assert_eq!((hp.host.as_str(), hp.port), ("hss-1.example.net", 3868));
        assert_eq!(
            "[::1]:5658".parse::<HostPort>().unwrap().ip(),
            Some("::1".parse().unwrap())
        );
    }

    #[test]
    fn what_is_not_host_port_is_refused() {
        for s in [
            "hss.ims.example.net",
            "hss:0",
            "hss:99999",
            ":3868",
            "hss..net:3868",
            "-hss.net:3868",
            "hss net:3868",
            "hss/x:3868",
            "2001:db8::7:3868x",
        ] {
            assert!(s.parse::<HostPort>().is_err(), "{s}");
        }
    }
}

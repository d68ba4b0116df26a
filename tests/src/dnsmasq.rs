//! dnsmasq (Debian package `dnsmasq-base`) as a real DNS server for a test zone: NAPTR,
//! SRV and A records given on its command line, answered authoritatively on a loopback
//! port of the test's choosing (not 53), nothing forwarded upstream.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::stunnel::Kill;
use crate::{free_port, wait_for};

/// TTL of every record served (the resolver keeps answers that long).
pub const TTL: u32 = 60;

/// One record of the test zone.
#[derive(Debug, Clone)]
pub enum Record {
    /// `name` has the IPv4 address `ip`.
    A {
        /// Owner name.
        name: String,
        /// Address.
        ip: std::net::Ipv4Addr,
    },
    /// SRV record `name` (`_sip._udp.domain`) -> `target:port`.
    Srv {
        /// Owner name (`_service._proto.domain`).
        name: String,
        /// Target host.
        target: String,
        /// Port.
        port: u16,
        /// Priority (lower first).
        priority: u16,
        /// Weight (share within a priority).
        weight: u16,
    },
    /// NAPTR record of `name` with the `S` flag, `services`, and SRV name `replacement`.
    Naptr {
        /// Owner name (the domain).
        name: String,
        /// Order (lower first).
        order: u16,
        /// Preference (lower first among one order).
        preference: u16,
        /// `SIP+D2U`, `SIP+D2T`, `SIPS+D2T`.
        services: String,
        /// The SRV name.
        replacement: String,
    },
}

impl Record {
    fn arg(&self) -> String {
        match self {
            Record::A { name, ip } => format!("--host-record={name},{ip}"),
            Record::Srv {
                name,
                target,
                port,
                priority,
                weight,
            } => format!("--srv-host={name},{target},{port},{priority},{weight}"),
            Record::Naptr {
                name,
                order,
                preference,
                services,
                replacement,
            } => format!("--naptr-record={name},{order},{preference},S,{services},,{replacement}"),
        }
    }
}

/// True when the `dnsmasq` binary is installed (`./scripts/test` installs it).
pub fn available() -> bool {
    Command::new("dnsmasq")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A running dnsmasq, killed when dropped.
pub struct Dnsmasq {
    /// Where it answers (UDP and TCP).
    pub addr: SocketAddr,
    _child: Kill,
}

/// Starts dnsmasq serving `records` (and NXDOMAIN for anything else under `.test`) on a
/// free loopback port, logging its queries to `dir/dnsmasq.log`; waits (bounded) until
/// its port is bound. `None` when it does not start.
pub fn start(dir: &Path, records: &[Record]) -> Option<Dnsmasq> {
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut c = Command::new("dnsmasq");
    c.args([
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
    ])
    .args([
        "--no-poll",
        "--bind-interfaces",
        "--listen-address=127.0.0.1",
    ])
    .args([
        "--pid-file=",
        "--user=root",
        "--local=/test/",
        "--log-queries",
    ])
    .arg(format!("--port={port}"))
    .arg(format!("--local-ttl={TTL}"))
    .arg(format!(
        "--log-facility={}",
        dir.join("dnsmasq.log").display()
    ))
    .args(records.iter().map(Record::arg))
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    let child = Kill(c.spawn().ok()?);
    // Bound once our own bind of the port fails.
    wait_for(Duration::from_secs(5), || {
        UdpSocket::bind(addr).is_err().then_some(())
    })?;
    Some(Dnsmasq {
        addr,
        _child: child,
    })
}

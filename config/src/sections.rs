//! Configuration sections shared by several nodes.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::error::Invalid;
use crate::load::Validate;

/// `[node]`: identity and logging.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// Name used in logs and metrics, e.g. `pcscf-1`.
    pub name: String,
    /// Home network domain, e.g. `ims.example.net`.
    pub domain: String,
    /// `tracing` filter directive (RUST_LOG syntax); `RUST_LOG` overrides it.
    #[serde(default = "default_log")]
    pub log: String,
    /// How log lines are written: `text` (default) or `json` (one JSON object per
    /// line, with the spans: a request's Call-ID and icid). `IMS_LOG_FORMAT`
    /// overrides it.
    #[serde(default)]
    pub log_format: LogFormat,
    /// `threads`: the worker threads of the node's runtime, a number or `"auto"` (one
    /// per core the process may use). Unset: see [`NodeSection::threads`].
    #[serde(default, rename = "threads")]
    pub threads_setting: Option<Workers>,
}

impl NodeSection {
    /// The runtime's worker threads: `[node] threads` when set, else `default` (a SIP
    /// node's engine shards; the other nodes one per core), at least one.
    pub fn threads(&self, default: usize) -> usize {
        self.threads_setting.map_or(default, Workers::count).max(1)
    }
}

/// The format of a node's log lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable text lines.
    #[default]
    Text,
    /// One JSON object per line (for a log collector).
    Json,
}

fn default_log() -> String {
    "info".to_string()
}

impl Validate for NodeSection {
    fn validate(&self) -> Result<(), Invalid> {
        if self.threads_setting == Some(Workers::Count(0)) {
            return Err(Invalid::new("threads", "must be at least 1 or \"auto\""));
        }
        if self.name.trim().is_empty() {
            return Err(Invalid::new("name", "must not be empty"));
        }
        if self.domain.trim().is_empty() || self.domain.contains(char::is_whitespace) {
            return Err(Invalid::new("domain", "must be a domain name"));
        }
        Ok(())
    }
}

/// `[http]`: the health and Prometheus metrics endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// Address serving `/health`, the node's API (HSS provisioning, `policyd`) and,
    /// without `metrics_listen`, `/metrics`.
    pub listen: SocketAddr,
    /// HTTPS on `listen` with this certificate and key (PEM).
    pub tls: Option<HttpTlsSection>,
    /// Address serving `/metrics` alone, in plain HTTP (for Prometheus, no secrets on
    /// it); `listen` then does not serve `/metrics`.
    pub metrics_listen: Option<SocketAddr>,
    /// Allows plain HTTP on a `listen` address other than loopback (tokens would cross
    /// the network in clear text). Off by default.
    #[serde(default)]
    pub allow_plaintext: bool,
}

/// `[http.tls]`: the HTTPS identity of a node's HTTP listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTlsSection {
    /// Certificate chain (PEM, leaf first).
    pub cert: PathBuf,
    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl Validate for HttpSection {
    fn validate(&self) -> Result<(), Invalid> {
        if self.tls.is_none() && !self.listen.ip().is_loopback() && !self.allow_plaintext {
            return Err(Invalid::new(
                "listen",
                "plain HTTP on a non-loopback address: set [http.tls] (cert, key), or \
                 allow_plaintext = true",
            ));
        }
        if self.metrics_listen == Some(self.listen) && self.listen.port() != 0 {
            return Err(Invalid::new("metrics_listen", "must differ from listen"));
        }
        Ok(())
    }
}

/// `[sip.tls_files]`: certificate and key for TLS listeners (and presented as client
/// certificate on outgoing TLS when the server asks for one), CA for outgoing TLS, CA
/// for client certificates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// PEM certificate chain presented by TLS listeners, and to TLS servers that ask
    /// for a client certificate.
    pub cert: PathBuf,
    /// PEM private key of that certificate.
    pub key: PathBuf,
    /// PEM CA bundle trusted for outgoing TLS connections.
    pub ca: Option<PathBuf>,
    /// PEM CA bundle client certificates are verified against: when set, the TLS
    /// listeners ask every client for a certificate; one that does not chain to this
    /// CA fails the handshake, a client without one (a UE) is still served. The names
    /// of a verified certificate are what `[zones] *_names` match.
    pub client_ca: Option<PathBuf>,
}

/// `[sip.limits]`: protection against hostile or broken peers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Largest SIP message accepted, in bytes.
    #[serde(default = "default_max_message_size")]
    pub max_message_size: usize,
    /// Largest number of header fields in one message.
    #[serde(default = "default_max_headers")]
    pub max_headers: usize,
    /// Stream connections accepted from one IP address.
    #[serde(default = "default_max_connections_per_peer")]
    pub max_connections_per_peer: usize,
    /// Stream connections in total.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Seconds after which a stream connection without traffic is closed.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_secs: u64,
}

fn default_max_message_size() -> usize {
    65_535
}
fn default_max_headers() -> usize {
    256
}
fn default_max_connections_per_peer() -> usize {
    64
}
fn default_max_connections() -> usize {
    16_384
}
fn default_idle_timeout() -> u64 {
    // Longer than the usual UE re-registration/keep-alive interval (RFC 5626 suggests
    // keep-alives every 95-120 s on TCP).
    600
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            max_message_size: default_max_message_size(),
            max_headers: default_max_headers(),
            max_connections_per_peer: default_max_connections_per_peer(),
            max_connections: default_max_connections(),
            idle_timeout_secs: default_idle_timeout(),
        }
    }
}

impl Validate for LimitsSection {
    fn validate(&self) -> Result<(), Invalid> {
        if !(1_024..=16 * 1_024 * 1_024).contains(&self.max_message_size) {
            return Err(Invalid::new(
                "max_message_size",
                "must be between 1024 and 16777216 bytes",
            ));
        }
        if !(16..=4_096).contains(&self.max_headers) {
            return Err(Invalid::new("max_headers", "must be between 16 and 4096"));
        }
        if self.max_connections_per_peer == 0 {
            return Err(Invalid::new(
                "max_connections_per_peer",
                "must be at least 1",
            ));
        }
        if self.max_connections < self.max_connections_per_peer {
            return Err(Invalid::new(
                "max_connections",
                "must be at least max_connections_per_peer",
            ));
        }
        if !(1..=86_400).contains(&self.idle_timeout_secs) {
            return Err(Invalid::new(
                "idle_timeout_secs",
                "must be between 1 and 86400",
            ));
        }
        Ok(())
    }
}

/// `[sip]`: listeners of a SIP node.
///
/// The listeners here face the node's UEs and peers. A node reached at one address by
/// UEs and at another by its core (a P-CSCF behind an OpenStack floating IP: public
/// toward phones, private toward the CSCFs) also has `[sip.core]`: requests it sends
/// to a destination (not back over a UE's flow) leave from those listeners, with their
/// advertised address.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipSection {
    /// UDP listen addresses.
    #[serde(default)]
    pub udp: Vec<SocketAddr>,
    /// TCP listen addresses.
    #[serde(default)]
    pub tcp: Vec<SocketAddr>,
    /// TLS listen addresses (need `[sip.tls]`).
    #[serde(default)]
    pub tls: Vec<SocketAddr>,
    /// The host written in Via, Record-Route and Path for these listeners (`host` or
    /// `host:port`; each listener writes its own port); defaults to the listener's
    /// address. Required when a listener binds a wildcard address.
    pub advertise: Option<String>,
    /// The listeners toward the core, with their own advertised host.
    pub core: Option<SipFaceSection>,
    /// Certificates for TLS.
    #[serde(rename = "tls_files")]
    pub tls_files: Option<TlsSection>,
    /// Limits.
    #[serde(default)]
    pub limits: LimitsSection,
    /// `[sip.hep]`: copy every SIP message (TLS in clear text) to a Homer collector.
    pub hep: Option<HepSection>,
    /// `[sip.dns]`: how next hops are looked up (RFC 3263).
    #[serde(default)]
    pub dns: DnsSection,
    /// `workers`: how many shards the SIP engine runs, each a task with its own UDP
    /// socket per listener (`SO_REUSEPORT`), transactions and timers: a number (1, the
    /// default: one task, one socket per listener) or `"auto"` (one per core the
    /// process may use). Shards run in parallel when the runtime has as many worker
    /// threads, which is its default (`[node] threads`).
    #[serde(default)]
    pub workers: Workers,
    /// `shard_ports`: with `workers` above 1, each shard sends the requests it
    /// forwards over UDP from a socket of its own (so that their responses come back
    /// to it, not to any shard): shard `i` binds port `shard_ports + i` on the address
    /// of the UDP listener requests leave from (of `[sip.core]` when it has one; one
    /// per address family). Unset: ports the kernel picks (logged at start). Set it
    /// when a firewall must know them; unused with one worker.
    pub shard_ports: Option<u16>,
}

/// The cores available to the process (one when that cannot be read): what `"auto"`
/// counts, and the runtime threads of a node that is not a SIP node.
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// A count of workers (`[sip] workers`: engine shards; `[node] threads`: runtime
/// threads), or `"auto"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Workers {
    /// This many (at least 1).
    Count(usize),
    /// `"auto"`: one per core available to the process.
    Auto(AutoWorkers),
}

/// The word `auto` of [`Workers::Auto`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoWorkers {
    /// `"auto"`.
    Auto,
}

impl Default for Workers {
    fn default() -> Self {
        Workers::Count(1)
    }
}

impl Workers {
    /// The count, or the cores available to the process.
    pub fn count(self) -> usize {
        match self {
            Workers::Count(n) => n,
            Workers::Auto(AutoWorkers::Auto) => available_cores(),
        }
    }
}

/// `[sip.dns]`: the DNS servers next-hop names are looked up with (NAPTR, SRV, A/AAAA;
/// RFC 3263) and how soon a silent server is given up for the next one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSection {
    /// DNS servers (`ip:port`); empty: the system's (`/etc/resolv.conf`). Names in
    /// `/etc/hosts` and URIs with an IP address never wait for DNS.
    #[serde(default)]
    pub servers: Vec<SocketAddr>,
    /// Milliseconds a branch whose next hop has another server left may go without
    /// any response before that server is tried (RFC 3263 §4.3); unset: only the
    /// transaction timeout (Timer B/F, 32 s) fails over. Transport errors and 503 fail
    /// over at once either way.
    pub failover_after_ms: Option<u64>,
}

/// `[sip.hep]`: SIP capture export in HEP v3 over UDP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HepSection {
    /// The collector's `ip:port` (Homer's heplify-server listens on 9060).
    pub collector: SocketAddr,
    /// The capture agent id written in each packet (default 0).
    #[serde(default)]
    pub agent_id: u32,
}

impl SipSection {
    /// The `host:port` the core reaches this node at: the advertised address of
    /// `[sip.core]` when there is one, else of `[sip]`, with the port of that face's
    /// first listener (UDP, then TCP, then TLS) when it names none. `None` without an
    /// advertised address.
    pub fn core_host_port(&self) -> Option<String> {
        let (advertise, udp, tcp, tls) = match &self.core {
            Some(c) => (c.advertise.as_deref(), &c.udp, &c.tcp, &c.tls),
            None => (self.advertise.as_deref(), &self.udp, &self.tcp, &self.tls),
        };
        let advertise = advertise?;
        if has_port(advertise) {
            return Some(advertise.to_string());
        }
        match udp.iter().chain(tcp).chain(tls).next() {
            Some(first) => Some(format!("{advertise}:{}", first.port())),
            None => Some(advertise.to_string()),
        }
    }
}

/// Whether `host[:port]` names a port (an IPv6 reference is bracketed).
fn has_port(host_port: &str) -> bool {
    match host_port.rsplit_once(':') {
        Some((host, port)) => {
            (!host.contains(':') || host.ends_with(']')) && port.parse::<u16>().is_ok()
        }
        None => false,
    }
}

/// `[sip.core]`: the listeners a node uses toward its core peers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipFaceSection {
    /// UDP listen addresses.
    #[serde(default)]
    pub udp: Vec<SocketAddr>,
    /// TCP listen addresses.
    #[serde(default)]
    pub tcp: Vec<SocketAddr>,
    /// TLS listen addresses (need `[sip.tls_files]`).
    #[serde(default)]
    pub tls: Vec<SocketAddr>,
    /// The host written in Via, Record-Route and Path for these listeners, as
    /// `[sip] advertise`.
    pub advertise: Option<String>,
}

/// Checks one face's listeners and advertised host.
fn validate_face(
    udp: &[SocketAddr],
    tcp: &[SocketAddr],
    tls: &[SocketAddr],
    advertise: Option<&str>,
) -> Result<(), Invalid> {
    if udp.is_empty() && tcp.is_empty() && tls.is_empty() {
        return Err(Invalid::new(
            "udp",
            "at least one of udp, tcp, tls must listen",
        ));
    }
    match advertise {
        Some(adv) if adv.trim().is_empty() || adv.contains(char::is_whitespace) => {
            return Err(Invalid::new("advertise", "must be host[:port]"));
        }
        Some(_) => {}
        None => {
            let wildcard = udp
                .iter()
                .chain(tcp)
                .chain(tls)
                .find(|a| a.ip().is_unspecified());
            if let Some(addr) = wildcard {
                return Err(Invalid::new(
                    "advertise",
                    format!(
                        "required: {addr} binds every address, so the address to write in \
                         Via, Record-Route and Path is unknown"
                    ),
                ));
            }
        }
    }
    Ok(())
}

impl Validate for SipSection {
    fn validate(&self) -> Result<(), Invalid> {
        validate_face(&self.udp, &self.tcp, &self.tls, self.advertise.as_deref())?;
        if let Some(core) = &self.core {
            validate_face(&core.udp, &core.tcp, &core.tls, core.advertise.as_deref())
                .map_err(|e| e.under("core"))?;
            let main: Vec<_> = self
                .udp
                .iter()
                .map(|a| ("udp", a))
                .chain(self.tcp.iter().map(|a| ("tcp", a)))
                .chain(self.tls.iter().map(|a| ("tls", a)))
                .collect();
            for (kind, addrs) in [("udp", &core.udp), ("tcp", &core.tcp), ("tls", &core.tls)] {
                if let Some(addr) = addrs.iter().find(|a| main.contains(&(kind, *a))) {
                    return Err(Invalid::new(
                        kind,
                        format!("{addr} is also a listener of [sip]: the core listeners need their own port or address"),
                    )
                    .under("core"));
                }
            }
        }
        let any_tls = !self.tls.is_empty() || self.core.as_ref().is_some_and(|c| !c.tls.is_empty());
        if any_tls && self.tls_files.is_none() {
            return Err(Invalid::new(
                "tls_files",
                "TLS listeners need tls_files.cert and tls_files.key",
            ));
        }
        if self.workers == Workers::Count(0) {
            return Err(Invalid::new(
                "workers",
                "needs at least 1 (or \"auto\": one per core)",
            ));
        }
        if self.shard_ports == Some(0) {
            return Err(Invalid::new(
                "shard_ports",
                "a port from 1 (leave it unset for ports the kernel picks)",
            ));
        }
        self.limits.validate().map_err(|e| e.under("limits"))
    }
}

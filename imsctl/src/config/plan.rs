//! What `imsctl config init` was asked for: the domain, each node's addresses and host
//! name, where the files will live on the VMs, and the ports every node uses.

use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{bail, Context};

/// The roles a multi-host core is made of, in the order their files are written.
pub const ROLES: [&str; 5] = ["pcscf", "icscf", "scscf", "hss", "policyd"];

/// SIP toward the UEs (P-CSCF): UDP and TCP.
pub const PCSCF_SIP: u16 = 5060;
/// SIP over TLS toward the UEs (P-CSCF).
pub const PCSCF_SIPS: u16 = 5061;
/// The P-CSCF's listeners toward the core when it sits behind a floating IP
/// (`[sip.core]`).
pub const PCSCF_CORE: u16 = 5064;
/// The I-CSCF's SIP listeners (UDP and TCP).
pub const ICSCF_SIP: u16 = 5070;
/// The S-CSCF's SIP listeners (UDP and TCP).
pub const SCSCF_SIP: u16 = 5080;
/// Diameter Cx over TLS on connect (RFC 6733 §13, port 5658).
pub const DIAMETER_TLS: u16 = 5658;

/// The HTTPS port of a role (`/health`, the HSS provisioning and `policyd` APIs); its
/// plain `/metrics` listener is this plus 10.
pub fn http_port(role: &str) -> u16 {
    match role {
        "pcscf" => 9101,
        "icscf" => 9102,
        "scscf" => 9103,
        "hss" => 9104,
        _ => 9105,
    }
}

/// The plain-HTTP `/metrics` port of a role.
pub fn metrics_port(role: &str) -> u16 {
    http_port(role) + 10
}

/// One node as given on the command line: `ADDR[,public=ADDR][,name=HOST]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// The private address the node's listeners bind and its core peers reach.
    pub addr: IpAddr,
    /// The address UEs reach (an OpenStack floating IP), P-CSCF only.
    pub public: Option<IpAddr>,
    /// Its host name, when given (default `<role>.<domain>`).
    pub name: Option<String>,
}

impl FromStr for NodeSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<NodeSpec, String> {
        let mut parts = s.split(',');
        let addr = parts.next().unwrap_or_default();
        let addr = addr
            .parse()
            .map_err(|_| format!("{addr:?}: not an IP address"))?;
        let mut spec = NodeSpec {
            addr,
            public: None,
            name: None,
        };
        for part in parts {
            match part.split_once('=') {
                Some(("public", a)) => {
                    spec.public = Some(
                        a.parse()
                            .map_err(|_| format!("public={a}: not an IP address"))?,
                    )
                }
                Some(("name", n)) if host_name_ok(n) => spec.name = Some(n.to_ascii_lowercase()),
                Some(("name", n)) => return Err(format!("name={n}: not a host name")),
                _ => return Err(format!("{part:?}: expected public=ADDR or name=HOST")),
            }
        }
        Ok(spec)
    }
}

/// A DNS host name: labels of letters, digits and `-`, at least two of them.
pub fn host_name_ok(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').count() >= 2
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// A node of the plan: its role, addresses and host name.
#[derive(Debug, Clone)]
pub struct Node {
    /// `pcscf`, `icscf`, `scscf`, `hss` or `policyd`.
    pub role: &'static str,
    /// The stem of its files (`<id>.toml`, `tls/<id>.crt`): the role for a role of one
    /// node, `<role><n>` (from 1) for each node of a pool.
    pub id: String,
    /// Private address.
    pub addr: IpAddr,
    /// Public address (P-CSCF behind a floating IP).
    pub public: Option<IpAddr>,
    /// Host name: certificate name, Diameter identity.
    pub name: String,
    /// The host name was given (`name=`): peers reach the node by it (resolved on the
    /// VMs by DNS or /etc/hosts), else by its address.
    pub named: bool,
}

impl Node {
    /// `addr:port`, with brackets for IPv6.
    pub fn at(&self, port: u16) -> String {
        host_port(self.addr, port)
    }

    /// The host its peers name it by: its host name when given, else its address.
    pub fn host(&self) -> String {
        if self.named {
            self.name.clone()
        } else {
            match self.addr {
                IpAddr::V6(v6) => format!("[{v6}]"),
                IpAddr::V4(v4) => v4.to_string(),
            }
        }
    }

    /// `host:port` as its peers reach it.
    pub fn reach(&self, port: u16) -> String {
        format!("{}:{port}", self.host())
    }
}

/// `host:port` with brackets around an IPv6 address.
pub fn host_port(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

/// Keystone settings for cloud authorization (`--keystone`).
#[derive(Debug, Clone)]
pub struct Keystone {
    /// Identity API v3 URL.
    pub url: String,
    /// The service user validating tokens.
    pub user: String,
    /// Its project.
    pub project: String,
}

/// Everything the generator needs.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Home network domain.
    pub domain: String,
    /// P-CSCFs, I-CSCF, S-CSCFs, HSSs, policyd (the order of [`ROLES`]).
    pub nodes: Vec<Node>,
    /// The shared PostgreSQL server of the S-CSCF pool and the HSSs
    /// (`postgres://user@host[:port]`, no password, no database).
    pub db: Option<String>,
    /// Cloud authorization on, against this Keystone.
    pub keystone: Option<Keystone>,
    /// Listeners bind 0.0.0.0 (or ::) instead of the node's address.
    pub bind_any: bool,
    /// Where the configuration directory is installed on the VMs (`/etc/ims-core`).
    pub paths_base: PathBuf,
}

impl Plan {
    /// Builds the plan, refusing a domain that is no host name, two nodes on one
    /// address (each node has a VM of its own; `policyd` may share the first HSS's),
    /// and a pool of S-CSCFs or HSSs without a shared database (`db`).
    pub fn new(
        domain: &str,
        specs: Vec<(&'static str, Vec<NodeSpec>)>,
        db: Option<String>,
        keystone: Option<Keystone>,
        bind_any: bool,
        paths_base: PathBuf,
    ) -> anyhow::Result<Plan> {
        let domain = domain.to_ascii_lowercase();
        if !host_name_ok(&domain) {
            bail!("--domain {domain}: not a domain name");
        }
        if let Some(k) = &keystone {
            let lower = k.url.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                bail!("--keystone {}: must be an http:// or https:// URL", k.url);
            }
        }
        if !paths_base.is_absolute() {
            bail!("--paths-base {}: must be absolute", paths_base.display());
        }
        let mut nodes = Vec::new();
        for (role, specs) in specs {
            if specs.is_empty() {
                bail!("--{role}: missing");
            }
            if specs.len() > MAX_POOL {
                bail!("--{role}: at most {MAX_POOL} nodes");
            }
            let pool = specs.len() > 1;
            if pool && !matches!(role, "pcscf" | "scscf" | "hss") {
                bail!("--{role}: given more than once (pools are of P-CSCFs, S-CSCFs, HSSs)");
            }
            if pool && role != "pcscf" && db.is_none() {
                bail!(
                    "--{role} given {} times: a pool shares its store, --db-url is needed",
                    specs.len()
                );
            }
            for (n, s) in specs.into_iter().enumerate() {
                let id = if pool {
                    format!("{role}{}", n + 1)
                } else {
                    role.to_string()
                };
                nodes.push(Node {
                    role,
                    addr: s.addr,
                    public: s.public,
                    named: s.name.is_some(),
                    name: s.name.unwrap_or_else(|| format!("{id}.{domain}")),
                    id,
                });
            }
        }
        if let Some(url) = &db {
            db_url_ok(url)?;
        }
        for (i, n) in nodes.iter().enumerate() {
            if n.public.is_some() && n.role != "pcscf" {
                bail!("--{}: public= is for the P-CSCF only", n.role);
            }
            let shared = nodes[..i].iter().find(|m| {
                m.addr == n.addr
                    && !(n.role == "policyd" && matches!(m.id.as_str(), "hss" | "hss1"))
            });
            if let Some(m) = shared {
                bail!(
                    "--{} {}: the address of --{} ({}) too",
                    n.role,
                    n.addr,
                    m.role,
                    m.id
                );
            }
            if let Some(m) = nodes[..i].iter().find(|m| m.name == n.name) {
                bail!("--{}: host name {} is {}'s too", n.role, n.name, m.id);
            }
        }
        Ok(Plan {
            domain,
            nodes,
            db,
            keystone,
            bind_any,
            paths_base,
        })
    }

    /// The (first) node of `role`.
    pub fn node(&self, role: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.role == role)
            .unwrap_or(&self.nodes[0])
    }

    /// Every node of `role`, in the order given.
    pub fn members(&self, role: &str) -> Vec<&Node> {
        self.nodes.iter().filter(|n| n.role == role).collect()
    }

    /// Whether `role` is a pool (more than one node).
    pub fn pooled(&self, role: &str) -> bool {
        self.members(role).len() > 1
    }

    /// The address a listener of `node` binds.
    pub fn bind(&self, node: &Node, port: u16) -> String {
        if self.bind_any {
            let any: IpAddr = if node.addr.is_ipv6() {
                IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
            } else {
                IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
            };
            host_port(any, port)
        } else {
            node.at(port)
        }
    }

    /// A path under the installed configuration directory, as the configs name it.
    pub fn path(&self, rel: &str) -> String {
        self.paths_base.join(rel).display().to_string()
    }
}

/// Nodes of one role at most (a bound on the generated directory).
pub const MAX_POOL: usize = 32;

/// `--db-url`: `postgres://user@host[:port]` without a password (it goes in
/// `--db-password-file`, written 0600) and without a database (each role has its own).
fn db_url_ok(url: &str) -> anyhow::Result<()> {
    let lower = url.to_ascii_lowercase();
    let Some(rest) = lower
        .strip_prefix("postgres://")
        .or_else(|| lower.strip_prefix("postgresql://"))
    else {
        bail!("--db-url {url}: must be a postgres:// URL");
    };
    let Some((user, host)) = rest.split_once('@') else {
        bail!("--db-url {url}: must name the user (postgres://USER@HOST[:PORT])");
    };
    if user.contains(':') {
        bail!("--db-url: has a password; give it in --db-password-file (written 0600, never in a config)");
    }
    if host.is_empty() || host.contains(['/', '?', '@']) || user.is_empty() {
        bail!("--db-url {url}: must be postgres://USER@HOST[:PORT], without a database (each role has its own)");
    }
    Ok(())
}

/// Parses `--keystone-*` into [`Keystone`] when a URL is given.
pub fn keystone(url: Option<String>, user: String, project: String) -> Option<Keystone> {
    url.map(|url| Keystone { url, user, project })
}

/// Resolves a path named in a config against the generated directory: under
/// `paths_base` it is taken from `dir`; others (relative ones from the working
/// directory, as a node started here would read them) as they are.
pub fn resolve(
    dir: &std::path::Path,
    paths_base: &std::path::Path,
    p: &std::path::Path,
) -> PathBuf {
    match p.strip_prefix(paths_base) {
        Ok(rest) => dir.join(rest),
        Err(_) => p.to_path_buf(),
    }
}

/// Reads a node spec argument (for clap).
pub fn parse_spec(s: &str) -> Result<NodeSpec, String> {
    s.parse()
}

/// Context for errors about the output directory.
pub fn ensure_empty(dir: &std::path::Path) -> anyhow::Result<()> {
    if dir.exists() {
        let mut entries =
            std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
        if entries.next().is_some() {
            bail!(
                "{}: not empty (config init never overwrites; pick a new directory)",
                dir.display()
            );
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_specs_parse() {
        let s: NodeSpec = "10.0.0.5,public=203.0.113.7,name=edge1.ims.example.net"
            .parse()
            .unwrap();
        assert_eq!(s.addr.to_string(), "10.0.0.5");
        assert_eq!(s.public.unwrap().to_string(), "203.0.113.7");
        assert_eq!(s.name.as_deref(), Some("edge1.ims.example.net"));
        for bad in [
            "host",
            "10.0.0.5,public=x",
            "10.0.0.5,name=-a.b",
            "10.0.0.5,port=1",
        ] {
            assert!(bad.parse::<NodeSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_under_the_base_come_from_the_directory() {
        let base = std::path::Path::new("/etc/ims-core");
        let dir = std::path::Path::new("/tmp/out");
        assert_eq!(
            resolve(dir, base, std::path::Path::new("/etc/ims-core/tls/ca.crt")),
            std::path::Path::new("/tmp/out/tls/ca.crt")
        );
        assert_eq!(
            resolve(dir, base, std::path::Path::new("data/tls/x")),
            std::path::Path::new("data/tls/x")
        );
        assert_eq!(
            resolve(dir, base, std::path::Path::new("/var/lib/x")),
            std::path::Path::new("/var/lib/x")
        );
    }
}

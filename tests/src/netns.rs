//! A test bed of Linux network namespaces: one namespace per "VM", veth links to bridges
//! in a switch namespace of their own (the host's network is never touched), addresses,
//! routes, nftables rulesets, and processes started inside a namespace with `ip netns
//! exec`. Everything is undone when the [`Bed`] is dropped, a failed assertion included:
//! its processes are killed, then its namespaces deleted (which deletes their links).
//!
//! Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN), `ip` (iproute2) and `nft` (nftables);
//! [`available`] says whether this machine has them.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::GroupGuard;

/// Why the bed could not be built or a step in it failed.
#[derive(Debug)]
pub struct NetnsError(pub String);

impl std::fmt::Display for NetnsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Runs `program args` with `stdin` as its input; an error names the command and what
/// it printed on stderr.
fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<Output, NetnsError> {
    let what = format!("{program} {}", args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NetnsError(format!("{what}: {e}")))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| NetnsError(format!("{what}: writing stdin: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NetnsError(format!("{what}: {e}")))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(NetnsError(format!(
            "{what}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// `ip <args>`.
fn ip(args: &[&str]) -> Result<(), NetnsError> {
    run("ip", args, None).map(|_| ())
}

/// The address of host `name` in a bed's table of `(name, address)` (panics when the
/// table has no such host: a mistake in the test).
#[allow(clippy::panic)]
pub fn address_of(hosts: &[(&str, &'static str)], name: &str) -> &'static str {
    hosts
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, a)| *a)
        .unwrap_or_else(|| panic!("no host {name}"))
}

/// `ip` (a bed address, known to parse; panics otherwise: a mistake in the test) and
/// `port` as a socket address.
#[allow(clippy::unwrap_used)]
pub fn sock(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

/// Whether this machine can build a bed: creates a namespace, brings its loopback up,
/// loads an nftables table in it and deletes it. The error says what is missing.
pub fn available() -> Result<(), NetnsError> {
    let name = format!("ims-probe-{}", std::process::id());
    ip(&["netns", "add", &name])?;
    let tried = ip(&["-n", &name, "link", "set", "lo", "up"]).and_then(|()| {
        run(
            "ip",
            &["netns", "exec", &name, "nft", "-f", "-"],
            Some("table inet probe {\n  chain input { type filter hook input priority 0; }\n}\n"),
        )
        .map(|_| ())
    });
    let _ = ip(&["netns", "del", &name]);
    tried
}

/// Whether a socket of namespace `netns` listens on (TCP) or is bound to (UDP) `local`;
/// `protocol` is `tcp` or `udp`.
pub fn listening(netns: &str, protocol: &str, local: SocketAddr) -> bool {
    let flags = if protocol == "udp" { "-Hlun" } else { "-Hltn" };
    run(
        "ip",
        &["netns", "exec", netns, "ss", flags, &format!("src {local}")],
        None,
    )
    .is_ok_and(|o| !o.stdout.trim_ascii().is_empty())
}

/// The TCP listeners and UDP sockets of namespace `netns` (from `ss`), as `("tcp" |
/// "udp", local address)`; a wildcard address stays `0.0.0.0` (or `[::]`).
pub fn bound(netns: &str) -> Result<Vec<(String, SocketAddr)>, NetnsError> {
    let out = run("ip", &["netns", "exec", netns, "ss", "-Hltun"], None)?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = fields.get(4)?.replace('*', "0.0.0.0").parse().ok()?;
            Some((fields.first()?.to_string(), local))
        })
        .collect())
}

/// The bridges of a bed live in a namespace of their own, named `<prefix>-sw`.
const SWITCH: &str = "sw";

/// Network namespaces named `<prefix>-<name>`, bridges in `<prefix>-sw`, and the
/// processes started in them; all removed on drop.
pub struct Bed {
    prefix: String,
    namespaces: Vec<String>,
    processes: Vec<GroupGuard>,
    links: u32,
}

impl Bed {
    /// An empty bed whose namespaces are named `<prefix>-...` (make it unique: the test's
    /// process id in it), with its switch namespace.
    pub fn new(prefix: &str) -> Result<Bed, NetnsError> {
        let mut bed = Bed {
            prefix: prefix.to_string(),
            namespaces: Vec::new(),
            processes: Vec::new(),
            links: 0,
        };
        bed.add(SWITCH)?;
        Ok(bed)
    }

    /// The full name of the bed's namespace `name`.
    pub fn ns(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// Creates namespace `name` with its loopback up.
    pub fn add(&mut self, name: &str) -> Result<(), NetnsError> {
        let ns = self.ns(name);
        // A namespace left by a killed run of the same pid would make `add` fail.
        let _ = ip(&["netns", "del", &ns]);
        ip(&["netns", "add", &ns])?;
        self.namespaces.push(ns.clone());
        ip(&["-n", &ns, "link", "set", "lo", "up"])
    }

    /// Creates bridge `bridge` (at most 15 characters) in the switch namespace.
    pub fn bridge(&mut self, bridge: &str) -> Result<(), NetnsError> {
        let sw = self.ns(SWITCH);
        ip(&["-n", &sw, "link", "add", bridge, "type", "bridge"])?;
        ip(&["-n", &sw, "link", "set", bridge, "up"])
    }

    /// Links namespace `name` to `bridge` by a veth pair, its end named `ifname` with
    /// the address `cidr` (e.g. `10.0.0.5/24`), both ends up.
    pub fn attach(
        &mut self,
        name: &str,
        ifname: &str,
        bridge: &str,
        cidr: &str,
    ) -> Result<(), NetnsError> {
        let sw = self.ns(SWITCH);
        let ns = self.ns(name);
        self.links += 1;
        let port = format!("p{}", self.links);
        ip(&[
            "-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", ifname, "netns", &ns,
        ])?;
        ip(&["-n", &sw, "link", "set", &port, "master", bridge, "up"])?;
        ip(&["-n", &ns, "addr", "add", cidr, "dev", ifname])?;
        ip(&["-n", &ns, "link", "set", ifname, "up"])
    }

    /// Adds an address to an interface of namespace `name` (a second address, such as a
    /// floating IP on a router).
    pub fn add_address(&self, name: &str, ifname: &str, cidr: &str) -> Result<(), NetnsError> {
        ip(&["-n", &self.ns(name), "addr", "add", cidr, "dev", ifname])
    }

    /// A route in namespace `name`: `to` (`default` or a prefix) via `via`.
    pub fn route(&self, name: &str, to: &str, via: &str) -> Result<(), NetnsError> {
        ip(&["-n", &self.ns(name), "route", "add", to, "via", via])
    }

    /// Lets namespace `name` forward IPv4 packets between its interfaces (a router).
    pub fn forward(&self, name: &str) -> Result<(), NetnsError> {
        self.exec(name, "sysctl", &["-qw", "net.ipv4.ip_forward=1"])
            .map(|_| ())
    }

    /// Loads the nftables ruleset `rules` (`nft -f` syntax) in namespace `name`.
    pub fn nft(&self, name: &str, rules: &str) -> Result<(), NetnsError> {
        run(
            "ip",
            &["netns", "exec", &self.ns(name), "nft", "-f", "-"],
            Some(rules),
        )
        .map(|_| ())
    }

    /// Runs `program args` in namespace `name` to completion; an error if it fails.
    pub fn exec(&self, name: &str, program: &str, args: &[&str]) -> Result<Output, NetnsError> {
        let mut all = vec!["netns", "exec"];
        let ns = self.ns(name);
        all.push(&ns);
        all.push(program);
        all.extend_from_slice(args);
        run("ip", &all, None)
    }

    /// A command running the program `program` (a path) in namespace `name`, in the
    /// repository root, in a process group of its own, as [`crate::command`] does.
    pub fn command(&self, name: &str, program: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(name)]).arg(program);
        crate::in_group(c)
    }

    /// Starts `command` (from [`Bed::command`]; `ip netns exec` execs the program, so
    /// the child is the program), killed with its group when the bed is dropped.
    /// Returns the process's index for [`Bed::signal`].
    pub fn spawn(&mut self, mut command: Command) -> Result<usize, NetnsError> {
        let child = command
            .spawn()
            .map_err(|e| NetnsError(format!("{command:?}: {e}")))?;
        self.processes.push(GroupGuard(child));
        Ok(self.processes.len() - 1)
    }

    /// Starts node `role` (its binary) in namespace `ns` with `--config core/<ns>.toml`
    /// (`imsctl config init`'s names), its log `dir/<ns>.log` and its data directory
    /// `dir/run-<ns>`, and waits (at most 30 s) until it has bound its SIP port at
    /// `address` (5060, 5070, 5080; Diameter's 5658 over TCP for the HSS); returns its
    /// process index for [`Bed::signal`]. Panics (the test's failure) when it cannot.
    #[allow(clippy::unwrap_used, clippy::panic)]
    pub fn start_node(
        &mut self,
        dir: &Path,
        core: &Path,
        role: &str,
        ns: &str,
        address: std::net::IpAddr,
    ) -> usize {
        let log_path = dir.join(format!("{ns}.log"));
        let log = std::fs::File::create(&log_path).unwrap();
        let run = dir.join(format!("run-{ns}"));
        std::fs::create_dir_all(&run).unwrap();
        let mut c = self.command(ns, &crate::binary(role));
        c.arg("--config")
            .arg(core.join(format!("{ns}.toml")))
            .env("IMS_DATA_DIR", run)
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let index = self.spawn(c).unwrap_or_else(|e| panic!("{e}"));
        let (protocol, port) = match role {
            "pcscf" => ("udp", 5060),
            "icscf" => ("udp", 5070),
            "scscf" => ("udp", 5080),
            _ => ("tcp", 5658),
        };
        let local = SocketAddr::new(address, port);
        let up = crate::wait_for(std::time::Duration::from_secs(30), || {
            listening(&self.ns(ns), protocol, local).then_some(())
        });
        assert!(
            up.is_some(),
            "{ns} never bound {local}; its log:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        index
    }

    /// Sends signal `sig` (`KILL`, `TERM`, ...) to the process [`Bed::spawn`] returned
    /// `index` for, and waits (at most 10 s) for it to end when the signal is `KILL`.
    pub fn signal(&mut self, index: usize, sig: &str) {
        if let Some(p) = self.processes.get_mut(index) {
            crate::signal(&p.0, sig);
            if sig == "KILL" {
                let _ = crate::wait_exit(&mut p.0, std::time::Duration::from_secs(10));
            }
        }
    }

    /// Whether every process started by [`Bed::spawn`] still runs; the exit status of
    /// the first that ended otherwise.
    pub fn processes_alive(&mut self) -> Result<(), String> {
        for p in &mut self.processes {
            if let Ok(Some(status)) = p.0.try_wait() {
                return Err(format!("process {} exited: {status}", p.0.id()));
            }
        }
        Ok(())
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        // Processes first: a namespace with processes in it outlives `ip netns del`.
        self.processes.clear();
        for ns in self.namespaces.iter().rev() {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

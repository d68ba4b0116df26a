#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The multi-host deployment of `deploy/` exercised for real on this machine (issue 13
//! item 4): a small "cloud" of Linux network namespaces, one per VM, built like the
//! stack of `deploy/openstack/ims-core.yaml`:
//!
//! - a core network 10.213.0.0/24 (a bridge) with the HSS (.14, `policyd`'s address too,
//!   `config init`'s default), the S-CSCF (.13), the I-CSCF (.12), the P-CSCF (.11) and
//!   a management host (.5, the template's `management_cidr`);
//! - a public network 198.51.100.0/24 with a UE host (.20);
//! - a router between them (.1 on both) holding the P-CSCF's floating IP 198.51.100.10:
//!   nftables DNAT to 10.213.0.11 and SNAT back, as Neutron does; it routes the rest, so
//!   the UE host reaches every core address and only each VM's own firewall stops it;
//! - in each VM an nftables ruleset made from the template's security-group rules
//!   themselves (ingress dropped unless a rule of the VM's group admits it), so the bed
//!   tests the template's rules, which `imsctl/tests/heat_template.rs` checks against the
//!   ports the generated configs use.
//!
//! The nodes run `imsctl config init`'s configs (checked by `imsctl config check`) for
//! those addresses, with the P-CSCF's `public=` floating IP: `[sip]` on its private
//! address advertising the floating one, `[sip.core]` toward the I- and S-CSCF. Cx runs
//! over mutual TLS with the generated certificates. Cloud authorization is off (`config
//! init` without `--keystone`), so `policyd` is not started.
//!
//! Shown: the nodes answer `/health` over HTTPS to the management host; subscribers
//! provisioned from there with `imsctl subscriber import` register with SIPp UEs over UDP
//! through the floating IP, and one calls another; a third registers over TLS to the
//! floating IP's 5061 (stunnel checking that the P-CSCF's certificate names it); from the
//! UE host, of every port of every node (those of the template and those the nodes'
//! namespaces have bound; at each address, TCP connect and SIP OPTIONS over UDP) only
//! the P-CSCF's 5060 (UDP and TCP) and 5061 answer; from the S-CSCF the P-CSCF's core
//! port answers; Diameter answers the S-CSCF and is dropped from the
//! P-CSCF. Every probe that gets no answer gets none at all: dropped by a firewall, not
//! refused for want of a listener.
//!
//! The namespaces are `ims<pid>-<name>`; the processes and namespaces go when the test
//! ends (a failure included). Runs in about 17 s on the 2-core development VM.
//!
//! Needs root, `ip` and `nft`. Without them the test is skipped, unless
//! `IMS_TEST_NETNS=1` (set by `.ci/run`): then it fails.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use ims_e2e::chain::{assert_all_passed, provision_digest_in, run_from, sipp_csv, Ue, DOMAIN};
use ims_e2e::netns::{self, Bed};
use ims_e2e::sipp::SippTransport;
use ims_e2e::{binary, command, scratch_dir, sipp, stunnel, wait_for};
use yaml_serde::Value;

/// The management host's address (the template's `management_cidr` is its /32).
const MANAGEMENT: &str = "10.213.0.5";
/// The router's address on the core and on the public network.
const ROUTER_CORE: &str = "10.213.0.1";
const ROUTER_PUBLIC: &str = "198.51.100.1";
/// The P-CSCF's floating IP, on the router.
const FLOATING: &str = "198.51.100.10";
/// The UE host's address.
const UE_HOST: &str = "198.51.100.20";
/// The nodes started, in order, with their namespace and private address. `policyd`
/// has the HSS's address (`config init`'s default), so its rules go to the HSS's VM.
const NODES: [(&str, &str); 4] = [
    ("hss", "10.213.0.14"),
    ("scscf", "10.213.0.13"),
    ("icscf", "10.213.0.12"),
    ("pcscf", "10.213.0.11"),
];

/// A node's private address (`policyd` is on the HSS's).
fn address(role: &str) -> &'static str {
    let role = if role == "policyd" { "hss" } else { role };
    netns::address_of(&NODES, role)
}

/// Who a security-group rule admits.
#[derive(Debug)]
enum Remote {
    Anyone,
    Management,
    Group(String),
}

/// One ingress rule of the template: the role whose group holds it, protocol, port.
#[derive(Debug)]
struct Opening {
    role: String,
    protocol: String,
    port: u16,
    remote: Remote,
}

/// Every `OS::Neutron::SecurityGroupRule` of `deploy/openstack/ims-core.yaml`.
fn security_group_rules() -> Vec<Opening> {
    let path = ims_e2e::repo_root().join("deploy/openstack/ims-core.yaml");
    let template: Value = yaml_serde::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let group = |v: &Value| -> String {
        let sg = v["get_resource"].as_str().unwrap();
        sg.strip_prefix("sg_").unwrap().to_string()
    };
    let rules: Vec<Opening> = template["resources"]
        .as_mapping()
        .unwrap()
        .values()
        .filter(|r| r["type"].as_str() == Some("OS::Neutron::SecurityGroupRule"))
        // The PostgreSQL VM's (postgres_vm, for pools) has no namespace here: this core
        // is one node per role on SQLite.
        .filter(|r| {
            r["properties"]["security_group"]["get_resource"].as_str() != Some("sg_postgres")
        })
        .map(|r| {
            let p = &r["properties"];
            assert_eq!(p["direction"].as_str(), Some("ingress"), "{p:?}");
            assert_eq!(p["port_range_min"], p["port_range_max"], "{p:?}");
            let remote = if let Some(g) = p.get("remote_group") {
                Remote::Group(group(g))
            } else if p["remote_ip_prefix"].as_str() == Some("0.0.0.0/0") {
                Remote::Anyone
            } else {
                assert_eq!(
                    p["remote_ip_prefix"]["get_param"].as_str(),
                    Some("management_cidr"),
                    "{p:?}"
                );
                Remote::Management
            };
            Opening {
                role: group(&p["security_group"]),
                protocol: p["protocol"].as_str().unwrap().to_string(),
                port: u16::try_from(p["port_range_min"].as_u64().unwrap()).unwrap(),
                remote,
            }
        })
        .collect();
    assert!(
        rules.len() > 20,
        "{} rules in {}",
        rules.len(),
        path.display()
    );
    rules
}

/// The nftables ruleset of the VM at `addr`: ingress dropped but what the rules of the
/// groups of the roles on that address admit (and replies, loopback, ICMP).
fn firewall(rules: &[Opening], addr: &str) -> String {
    let mut text = String::from(
        "table inet security_group {\n  chain input {\n    \
         type filter hook input priority 0; policy drop;\n    \
         ct state established,related accept\n    iif \"lo\" accept\n    \
         meta l4proto icmp accept\n",
    );
    for r in rules.iter().filter(|r| address(&r.role) == addr) {
        let source = match &r.remote {
            Remote::Anyone => String::new(),
            Remote::Management => format!("ip saddr {MANAGEMENT} "),
            Remote::Group(g) => format!("ip saddr {} ", address(g)),
        };
        text.push_str(&format!(
            "    {source}{} dport {} accept\n",
            r.protocol, r.port
        ));
    }
    text.push_str("  }\n}\n");
    text
}

/// The router: the floating IP DNATed to the P-CSCF's private address, and the
/// P-CSCF's connections toward the public network SNATed to it.
fn floating_ip() -> String {
    let pcscf = address("pcscf");
    format!(
        "table ip floating {{\n  \
         chain prerouting {{ type nat hook prerouting priority dstnat; \
         ip daddr {FLOATING} dnat to {pcscf}; }}\n  \
         chain postrouting {{ type nat hook postrouting priority srcnat; \
         ip saddr {pcscf} oifname \"pub0\" snat to {FLOATING}; }}\n}}\n"
    )
}

/// The namespaces and links: the router, the management host, the UE host, the VMs.
fn build(bed: &mut Bed, rules: &[Opening]) -> Result<(), netns::NetnsError> {
    bed.bridge("core")?;
    bed.bridge("pub")?;
    bed.add("router")?;
    bed.attach("router", "core0", "core", &format!("{ROUTER_CORE}/24"))?;
    bed.attach("router", "pub0", "pub", &format!("{ROUTER_PUBLIC}/24"))?;
    bed.add_address("router", "pub0", &format!("{FLOATING}/32"))?;
    bed.forward("router")?;
    bed.nft("router", &floating_ip())?;
    bed.add("ue")?;
    bed.attach("ue", "eth0", "pub", &format!("{UE_HOST}/24"))?;
    bed.route("ue", "default", ROUTER_PUBLIC)?;
    bed.add("mgmt")?;
    bed.attach("mgmt", "eth0", "core", &format!("{MANAGEMENT}/24"))?;
    for (role, addr) in NODES {
        bed.add(role)?;
        bed.attach(role, "eth0", "core", &format!("{addr}/24"))?;
        bed.route(role, "default", ROUTER_CORE)?;
        bed.nft(role, &firewall(rules, addr))?;
    }
    Ok(())
}

/// `imsctl <args>`, failing the test if it fails.
fn imsctl_ok(args: &[&str]) {
    let out = command("imsctl").args(args).output().unwrap();
    assert!(out.status.success(), "imsctl {args:?}: {}", text(&out));
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `netns-probe <args>` in namespace `ns`: each address with its verdict (`open`,
/// `refused`, `silent`, `error`).
fn probe(bed: &Bed, ns: &str, args: &[String]) -> BTreeMap<String, String> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = bed
        .exec(ns, binary("netns-probe").to_str().unwrap(), &args)
        .unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(a, v)| (a.to_string(), v.to_string()))
        .collect()
}

/// How `tcp` and `udp` (SIP) addresses answer from namespace `ns`: `tcp/ADDR` or
/// `udp/ADDR` to its verdict.
fn verdicts(
    bed: &Bed,
    ns: &str,
    tcp: &[SocketAddr],
    udp: &[SocketAddr],
) -> BTreeMap<String, String> {
    let mut all = BTreeMap::new();
    for (kind, proto, addrs) in [("tcp", "tcp", tcp), ("sip-udp", "udp", udp)] {
        if addrs.is_empty() {
            continue;
        }
        let mut args = vec![kind.to_string()];
        args.extend(addrs.iter().map(ToString::to_string));
        let seen = probe(bed, ns, &args);
        assert_eq!(seen.len(), addrs.len(), "a verdict per address: {seen:?}");
        all.extend(seen.into_iter().map(|(a, v)| (format!("{proto}/{a}"), v)));
    }
    all
}

/// The addresses of `verdicts` with the verdict `verdict`.
fn with(verdicts: &BTreeMap<String, String>, verdict: &str) -> BTreeSet<String> {
    verdicts
        .iter()
        .filter(|(_, v)| *v == verdict)
        .map(|(a, _)| a.clone())
        .collect()
}

/// Every port of every node, at each of its addresses (the P-CSCF's floating IP too):
/// each port of the template's rules, and each port a node's namespace has bound
/// outside its loopback (so a listener the template does not know is probed too). TCP
/// and UDP apart.
fn every_port(bed: &Bed, rules: &[Opening]) -> (Vec<SocketAddr>, Vec<SocketAddr>) {
    let mut ports: BTreeSet<(String, String, u16)> = rules
        .iter()
        .map(|r| (r.protocol.clone(), address(&r.role).to_string(), r.port))
        .collect();
    for (role, addr) in NODES {
        let bound = netns::bound(&bed.ns(role)).unwrap_or_else(|e| panic!("{e}"));
        for (protocol, local) in bound {
            if !local.ip().is_loopback() {
                ports.insert((protocol, addr.to_string(), local.port()));
            }
        }
    }
    let (mut tcp, mut udp) = (Vec::new(), Vec::new());
    for (protocol, ip, port) in ports {
        let mut ips = vec![ip.as_str()];
        if ip == address("pcscf") {
            ips.push(FLOATING);
        }
        let set = if protocol == "udp" {
            &mut udp
        } else {
            &mut tcp
        };
        set.extend(ips.into_iter().map(|ip| netns::sock(ip, port)));
    }
    (tcp, udp)
}

/// Skips (returns `None`) or fails when this machine cannot build the bed.
fn gate() -> Option<()> {
    match netns::available() {
        Ok(()) => Some(()),
        Err(e) if std::env::var("IMS_TEST_NETNS").as_deref() == Ok("1") => {
            panic!("IMS_TEST_NETNS=1 but network namespaces are not usable: {e}")
        }
        Err(e) => {
            eprintln!("skipped: network namespaces with nftables need root, ip and nft: {e}");
            None
        }
    }
}

/// Generates and checks the configs for the bed's addresses into `dir/core`.
fn generate(dir: &Path) -> PathBuf {
    let core = dir.join("core");
    let core_s = core.to_str().unwrap();
    let node = |role: &str| format!("--{role}={}", address(role));
    imsctl_ok(&[
        "config",
        "init",
        "--domain",
        DOMAIN,
        &format!("--pcscf={},public={FLOATING}", address("pcscf")),
        &node("icscf"),
        &node("scscf"),
        &node("hss"),
        "--paths-base",
        core_s,
        "--out",
        core_s,
    ]);
    imsctl_ok(&["config", "check", core_s, "--paths-base", core_s]);
    core
}

/// Starts the node `role` in its namespace and waits (at most 30 s) for its HTTPS
/// `/health` from the management host.
fn start(bed: &mut Bed, dir: &Path, core: &Path, role: &str) {
    let log = std::fs::File::create(dir.join(format!("{role}.log"))).unwrap();
    let mut c = bed.command(role, &binary(role));
    c.arg("--config")
        .arg(core.join(format!("{role}.toml")))
        .env("IMS_DATA_DIR", dir.join("run"))
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    bed.spawn(c).unwrap_or_else(|e| panic!("{e}"));
    let port = match role {
        "pcscf" => 9101,
        "icscf" => 9102,
        "scscf" => 9103,
        _ => 9104,
    };
    let ca = core.join("tls/ca.crt");
    let args = [
        "https".to_string(),
        netns::sock(address(role), port).to_string(),
        "/health".to_string(),
        ca.to_str().unwrap().to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let probe = binary("netns-probe");
    let up = wait_for(Duration::from_secs(30), || {
        bed.exec("mgmt", probe.to_str().unwrap(), &args).ok()
    });
    assert!(
        up.is_some(),
        "{role} never answered /health; its log:\n{}",
        std::fs::read_to_string(dir.join(format!("{role}.log"))).unwrap_or_default()
    );
}

#[test]
fn a_namespace_cloud_registers_calls_and_shows_only_the_pcscf_sip_ports() {
    if gate().is_none() {
        return;
    }
    let began = Instant::now();
    let dir = scratch_dir("netns");
    std::fs::create_dir_all(dir.join("run")).unwrap();
    let core = generate(&dir);
    let rules = security_group_rules();
    let mut bed = Bed::new(&format!("ims{}", std::process::id())).unwrap();
    build(&mut bed, &rules).unwrap_or_else(|e| panic!("building the bed: {e}"));
    for (role, _) in NODES {
        start(&mut bed, &dir, &core, role);
    }
    bed.processes_alive().unwrap();

    // Two subscribers, provisioned from the management host with the static token.
    let names: Vec<String> = ["alice", "bob", "carol"].map(String::from).to_vec();
    provision_digest_in(&bed, "mgmt", &core, &dir, &names);

    // The UEs, in the UE host, through the floating IP: Bob registers, Alice registers
    // and calls him.
    sipp::run_in_netns(Some(&bed.ns("ue")));
    let entry = netns::sock(FLOATING, 5060);
    let bob = Ue::register_at(
        &dir,
        "bob",
        "alice",
        "session/register.xml",
        netns::sock(UE_HOST, 5102),
        entry,
    );
    let alice = Ue::register_at(
        &dir,
        "alice",
        "bob",
        "session/register.xml",
        netns::sock(UE_HOST, 5101),
        entry,
    );
    let callee = bob.serve(&dir, "session/uas_answer.xml", 1);
    assert_all_passed(&alice.run(&dir, "session/uac_call.xml"), 1);
    assert_all_passed(&callee.finish(), 1);
    // Carol registers over TLS to the floating IP's 5061, through stunnel in the UE
    // host, which checks that the P-CSCF's certificate names the floating IP.
    let tls_entry = netns::sock("127.0.0.1", 5065);
    let _tunnel = stunnel::start_in(
        Some(&bed.ns("ue")),
        &dir,
        tls_entry,
        netns::sock(FLOATING, 5061),
        &core.join("tls/ca.crt"),
        FLOATING,
    )
    .unwrap();
    let carol = sipp_csv(&dir, "carol.csv", &names[2..], "secret", Some("alice"));
    let r = run_from(
        &dir,
        "session/register.xml",
        &carol,
        SippTransport::Tcp,
        1,
        tls_entry,
        netns::sock("127.0.0.1", 5103),
    );
    assert_all_passed(&r, 1);
    sipp::run_in_netns(None);

    // The port matrix from the UE host: only the P-CSCF's SIP toward the UEs, at its
    // private address (routed) and at the floating IP.
    let (tcp, udp) = every_port(&bed, &rules);
    eprintln!("probing from the UE host: TCP {tcp:?}, UDP {udp:?}");
    let seen = verdicts(&bed, "ue", &tcp, &udp);
    let mut expected = BTreeSet::new();
    for ip in [address("pcscf"), FLOATING] {
        expected.insert(format!("tcp/{}", netns::sock(ip, 5060)));
        expected.insert(format!("tcp/{}", netns::sock(ip, 5061)));
        expected.insert(format!("udp/{}", netns::sock(ip, 5060)));
    }
    assert_eq!(with(&seen, "open"), expected, "what answers the UE host");
    // Everything else is dropped on the way (silent), not refused by a node with nothing
    // listening: the firewalls stop it.
    assert_eq!(
        with(&seen, "silent").len(),
        seen.len() - expected.len(),
        "the rest is dropped: {seen:?}"
    );

    // The P-CSCF's core face answers the S-CSCF; the HSS's Diameter answers the S-CSCF
    // and is dropped from the P-CSCF.
    let pcscf_core = netns::sock(address("pcscf"), 5064);
    assert_eq!(
        with(
            &verdicts(&bed, "scscf", &[pcscf_core], &[pcscf_core]),
            "open"
        ),
        BTreeSet::from([format!("tcp/{pcscf_core}"), format!("udp/{pcscf_core}")]),
        "the P-CSCF's [sip.core] from the S-CSCF"
    );
    let diameter = netns::sock(address("hss"), 5658);
    let key = format!("tcp/{diameter}");
    assert_eq!(
        verdicts(&bed, "scscf", &[diameter], &[])
            .get(&key)
            .map(String::as_str),
        Some("open"),
        "Diameter from the S-CSCF"
    );
    assert_eq!(
        verdicts(&bed, "pcscf", &[diameter], &[])
            .get(&key)
            .map(String::as_str),
        Some("silent"),
        "Diameter from the P-CSCF"
    );
    bed.processes_alive().unwrap();
    eprintln!("namespace deployment test took {:?}", began.elapsed());
}

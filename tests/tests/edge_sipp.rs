#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The real `pcscf` and `icscf` binaries between SIPp peers over UDP, with a Diameter
//! server in the test answering UAR ([`ims_e2e::uar_hss`]): a SIPp UE registers alice
//! through P-CSCF -> I-CSCF (UAR) -> a SIPp S-CSCF registrar, which checks Path (flow
//! token), P-Visited-Network-ID and P-Charging-Vector and answers with Service-Route and
//! P-Associated-URI; the P-CSCF shows the registration on /health; the UE's MESSAGE
//! reaches a SIPp S-CSCF at the Service-Route with P-Asserted-Identity set and the UE's
//! own stripped; a MESSAGE from the core with the Path as Route reaches the UE over its
//! flow; an unregistered UE gets 403. The same over TLS, with stunnel in front of a
//! SIPp UE that keeps one connection.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ims_e2e::sipp::{self, SippTransport};
use ims_e2e::{command, free_port, health, scratch_dir, uar_hss, wait_exit, wait_for, GroupGuard};

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A SIPp command over UDP on `local` for a scenario under `sipp-scenarios/pcscf/`,
/// bounded to one call and 20 s, logging `<log>` actions.
fn sipp_cmd(scenario: &str, local: SocketAddr, dir: &Path) -> Command {
    sipp_over(scenario, local, dir, "u1")
}

/// [`sipp_cmd`] over transport mode `mode` (`u1`, `t1`).
fn sipp_over(scenario: &str, local: SocketAddr, dir: &Path, mode: &str) -> Command {
    let mut c = Command::new("sipp");
    c.current_dir(dir)
        .arg("-sf")
        .arg(sipp::scenario(&format!("pcscf/{scenario}")))
        .args(["-i", "127.0.0.1", "-p", &local.port().to_string()])
        .args(["-t", mode, "-m", "1", "-timeout", "20s", "-timeout_error"])
        .args(["-nd", "-trace_err", "-trace_logs"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// Runs a SIPp UAC to the end; true when its one call succeeded.
fn run(mut c: Command) -> bool {
    let mut child = c.spawn().expect("sipp starts");
    wait_exit(&mut child, Duration::from_secs(30)).is_some_and(|s| s.success())
}

/// Waits for a SIPp UAS to end; true when its one call succeeded.
fn ended_ok(child: &mut Child) -> bool {
    wait_exit(child, Duration::from_secs(30)).is_some_and(|s| s.success())
}

/// The `<log>` output of a scenario's runs in `dir`.
fn logs(dir: &Path, scenario: &str) -> String {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.starts_with(scenario) && n.ends_with("_logs.log")
        })
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .collect()
}

fn errors(dir: &Path) -> String {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with("_errors.log"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .collect()
}

fn node(name: &str, config: &Path, dir: &Path) -> GroupGuard {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let child = command(name)
        .arg("--config")
        .arg(config)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("{name} starts: {e}"));
    GroupGuard(child)
}

fn write(dir: &Path, name: &str, text: String) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The nodes under test and their peers' ports.
struct Setup {
    dir: PathBuf,
    p_sip: u16,
    p_http: u16,
    s1: u16,
    s2: u16,
    hss: std::sync::Arc<uar_hss::UarHss>,
    _nodes: [GroupGuard; 2],
    _server: ims_diameter::peer::Server,
    _rt: tokio::runtime::Runtime,
}

/// Starts the UAR-answering HSS, the I-CSCF and the P-CSCF (UDP and TCP, and TLS on
/// `tls` with the PEM `cert`/`key` when given).
fn setup(name: &str, tls: Option<(u16, &Path, &Path)>) -> Setup {
    assert!(
        sipp::available(),
        "sipp is not installed: run ./scripts/test"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (server, hss) = rt
        .block_on(uar_hss::start("icscf.ims.example.net"))
        .unwrap();
    let dir = scratch_dir(name);
    let [p_sip, p_http, i_sip, i_http, s1, s2] = [(); 6].map(|()| free_port());
    let tls_text = tls.map_or(String::new(), |(port, cert, key)| {
        format!(
            "tls = [\"127.0.0.1:{port}\"]\n[sip.tls_files]\ncert = \"{}\"\nkey = \"{}\"\n",
            cert.display(),
            key.display()
        )
    });
    let pcscf_cfg = write(
        &dir,
        "pcscf.toml",
        format!(
            "[node]\nname = \"pcscf\"\ndomain = \"ims.example.net\"\nlog = \"debug\"\n\
             [http]\nlisten = \"127.0.0.1:{p_http}\"\n\
             [cloud_auth]\nmode = \"off\"\n\
             [zones]\ncore = [\"127.0.0.1/32\"]\n\
             [pcscf]\nvisited_network_id = \"visited.example.net\"\n\
             store = \"sqlite://{}/pcscf/registrations.db\"\n\
             reg_event = false\n\
             [pcscf.home_networks]\n\"ims.example.net\" = \"sip:127.0.0.1:{i_sip};lr\"\n\
             [sip]\nudp = [\"127.0.0.1:{p_sip}\"]\ntcp = [\"127.0.0.1:{p_sip}\"]\n{tls_text}",
            dir.display()
        ),
    );
    let icscf_cfg = write(
        &dir,
        "icscf.toml",
        format!(
            "[node]\nname = \"icscf\"\ndomain = \"ims.example.net\"\nlog = \"debug\"\n\
             [http]\nlisten = \"127.0.0.1:{i_http}\"\n\
             [sip]\nudp = [\"127.0.0.1:{i_sip}\"]\n\
             [zones]\ncore = [\"127.0.0.1/32\"]\n\
             [cx]\nhss = [\"{}\"]\ndestination_host = \"hss.ims.example.net\"\ndestination_realm = \"ims.example.net\"\n\
             origin_host = \"icscf.ims.example.net\"\norigin_realm = \"ims.example.net\"\n\
             [[scscf]]\nname = \"sip:scscf.ims.example.net:5080\"\nuri = \"sip:127.0.0.1:{s1};lr\"\n",
            server.local_addr()
        ),
    );
    let nodes = [
        node("icscf", &icscf_cfg, &dir),
        node("pcscf", &pcscf_cfg, &dir),
    ];
    for http in [p_http, i_http] {
        wait_for(Duration::from_secs(15), || health(addr(http)))
            .unwrap_or_else(|| panic!("node on {http} does not answer /health"));
    }
    wait_for(Duration::from_secs(10), || {
        server.peer("icscf.ims.example.net")
    })
    .expect("the I-CSCF opens its Cx connection");
    Setup {
        dir,
        p_sip,
        p_http,
        s1,
        s2,
        hss,
        _nodes: nodes,
        _server: server,
        _rt: rt,
    }
}

impl Setup {
    /// Starts the SIPp registrar (Service-Route toward `s2`) and the S-CSCF at `s2`.
    fn scscfs(&self) -> (GroupGuard, GroupGuard) {
        let mut registrar = sipp_cmd("scscf_registrar.xml", addr(self.s1), &self.dir);
        registrar.args(["-key", "sr_port", &self.s2.to_string()]);
        let registrar = GroupGuard(registrar.spawn().unwrap());
        let orig = GroupGuard(
            sipp_cmd("scscf_originating.xml", addr(self.s2), &self.dir)
                .spawn()
                .unwrap(),
        );
        std::thread::sleep(Duration::from_millis(300));
        (registrar, orig)
    }

    /// The Path the registrar logged.
    fn path(&self) -> String {
        let log = logs(&self.dir, "scscf_registrar");
        log.split_whitespace()
            .skip_while(|w| *w != "PATH")
            .nth(1)
            .unwrap_or_else(|| panic!("no Path logged: {log}"))
            .to_string()
    }

    fn registered(&self) -> bool {
        wait_for(Duration::from_secs(5), || {
            health(addr(self.p_http)).filter(|h| h["registered_contacts"] == 1)
        })
        .is_some()
    }
}

#[test]
fn sipp_ue_registers_through_the_pcscf_and_icscf_binaries() {
    let setup = setup("edge-sipp", None);
    let (dir, p_sip) = (setup.dir.clone(), setup.p_sip);
    let [ue, ue2, core] = [(); 3].map(|()| free_port());
    // The registrar and the Service-Route S-CSCF wait; the UE registers.
    let (mut registrar, mut orig) = setup.scscfs();
    let mut reg = sipp_cmd("ue_register.xml", addr(ue), &dir);
    reg.arg(addr(p_sip).to_string());
    assert!(run(reg), "UE REGISTER: {}", errors(&dir));
    assert!(
        ended_ok(&mut registrar.0),
        "registrar checks: {}",
        errors(&dir)
    );
    let path = setup.path();
    let uars = setup.hss.uars();
    assert_eq!(uars.len(), 1);
    assert_eq!(uars[0].user_name, "alice@ims.example.net");
    assert_eq!(uars[0].visited_network_identifier, "visited.example.net");
    assert!(
        setup.registered(),
        "the P-CSCF shows one registration on /health"
    );

    // The registered UE's MESSAGE goes along the Service-Route, identity asserted.
    let mut msg = sipp_cmd("ue_message.xml", addr(ue), &dir);
    msg.arg(addr(p_sip).to_string());
    assert!(run(msg), "UE MESSAGE: {}", errors(&dir));
    assert!(ended_ok(&mut orig.0), "S-CSCF checks: {}", errors(&dir));

    // From the core, with the Path as Route: over the UE's flow.
    let mut answer = GroupGuard(sipp_cmd("ue_answer.xml", addr(ue), &dir).spawn().unwrap());
    std::thread::sleep(Duration::from_millis(300));
    let mut term = sipp_cmd("core_to_ue.xml", addr(core), &dir);
    term.args(["-key", "route", &path])
        .args(["-rsa", &addr(p_sip).to_string()])
        .arg(addr(ue).to_string());
    assert!(run(term), "core MESSAGE to the UE: {}", errors(&dir));
    assert!(
        ended_ok(&mut answer.0),
        "UE got the MESSAGE: {}",
        errors(&dir)
    );

    // Another UE, never registered: 403.
    let r = sipp::run_uac(
        &sipp::scenario("pcscf/uac_unregistered_message.xml"),
        addr(p_sip),
        Some(addr(p_sip)),
        addr(ue2),
        SippTransport::Udp,
        1,
        1,
        20,
        &dir,
    )
    .unwrap();
    assert_eq!((r.successful, r.failed), (1, 0), "{r:?}");
}

/// A CA and a certificate for 127.0.0.1 signed by it, as PEM files in `dir`:
/// (CA, certificate, key).
fn make_pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "edge test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "pcscf test");
    let cert = params.signed_by(&key, &issuer).unwrap();
    let files = (
        dir.join("ca.pem"),
        dir.join("pcscf.pem"),
        dir.join("pcscf.key"),
    );
    std::fs::write(&files.0, ca_cert.pem()).unwrap();
    std::fs::write(&files.1, cert.pem()).unwrap();
    std::fs::write(&files.2, key.serialize_pem()).unwrap();
    files
}

#[test]
fn sipp_ue_over_tls_registers_and_is_reached_over_its_connection() {
    let pki_dir = scratch_dir("edge-sipp-pki");
    let (ca, cert, key) = make_pki(&pki_dir);
    let p_tls = free_port();
    let setup = setup("edge-sipp-tls", Some((p_tls, &cert, &key)));
    let dir = setup.dir.clone();
    let [entry, ue, core] = [(); 3].map(|()| free_port());
    let _stunnel = ims_e2e::stunnel::start(&dir, addr(entry), addr(p_tls), &ca).unwrap();
    let (mut registrar, mut orig) = setup.scscfs();

    // One SIPp UE over one TCP connection, TLS from stunnel to the P-CSCF.
    let mut session = sipp_over("ue_session.xml", addr(ue), &dir, "t1");
    session
        .args(["-cid_str", "ue-%u"])
        .arg(addr(entry).to_string());
    let mut session = GroupGuard(session.spawn().unwrap());
    assert!(
        ended_ok(&mut registrar.0),
        "registrar checks: {}",
        errors(&dir)
    );
    assert!(
        setup.registered(),
        "the P-CSCF shows one registration on /health"
    );
    assert!(ended_ok(&mut orig.0), "S-CSCF checks: {}", errors(&dir));

    // The core reaches the UE over its TLS connection (the Call-ID maps to the UE's
    // SIPp call).
    let mut term = sipp_cmd("core_to_ue.xml", addr(core), &dir);
    term.args(["-key", "route", &setup.path()])
        .args(["-cid_str", "ue-%u"])
        .args(["-rsa", &addr(setup.p_sip).to_string()])
        .arg(addr(ue).to_string());
    assert!(run(term), "core MESSAGE to the UE: {}", errors(&dir));
    assert!(ended_ok(&mut session.0), "UE session: {}", errors(&dir));
}

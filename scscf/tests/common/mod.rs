//! A test HSS (an ims-diameter `Server` answering MAR and SAR from test data and logging
//! what it received), the real `scscf` binary started against it, and SIPp runs.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use ims_diameter::cx::{
    AnswerHeader, CxRequest, CxResult, Maa, Saa, ServerAssignmentType, SipAuthDataItem,
    SipDigestAuthenticate, UserDataAlreadyAvailable,
};
use ims_diameter::dict::{experimental, result};
use ims_diameter::peer::{Acceptor, BoxFuture, Handler, PeerBinding, PeerConfig, Server};
use ims_diameter::Message;
use ims_e2e::{free_port, http_get, kill_group, wait_for};
use ims_sip::auth::aka::{resync, AuthVector};
use ims_sip::auth::{Algorithm, Ha1, Milenage, Sqn};

pub const DOMAIN: &str = "ims.example.net";
pub const HSS_HOST: &str = "hss.ims.example.net";
pub const SCSCF_HOST: &str = "scscf.ims.example.net";
/// SIPp copies aka_K / aka_OP / aka_AMF as raw characters (design brief §7).
pub const AKA_K: &[u8; 16] = b"abcdefghijklmnop";
pub const AKA_OP: &[u8; 16] = b"0123456789abcdef";
pub const AKA_AMF: [u8; 2] = *b"AA";

/// Most RANDs drawn for one vector by [`sipp_answerable_vector`].
const RAND_DRAWS: usize = 64;

/// An AKA vector SIPp 3.6 can answer: SIPp hashes RES only up to its first zero octet,
/// so the ~3 % of vectors whose XRES holds a 0x00 would be refused (rightly) by the
/// S-CSCF and fail the test by chance; RAND is drawn again for those (at most
/// [`RAND_DRAWS`] times, 0.03^64 apart from certainty). The chain tests, against the real
/// HSS, check the trace instead (`ims_e2e::sipp::run_aka_uac`).
pub fn sipp_answerable_vector(m: &Milenage, sqn: Sqn) -> AuthVector {
    let mut v = AuthVector::generate(m, AKA_AMF, sqn, rand::random());
    for _ in 1..RAND_DRAWS {
        if !v.xres.contains(&0) {
            break;
        }
        v = AuthVector::generate(m, AKA_AMF, sqn, rand::random());
    }
    v
}

/// What the test HSS received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// MAR: IMPI, scheme, whether it carried RAND || AUTS.
    Mar(String, String, bool),
    /// SAR: type, identities, User-Data-Already-Available.
    Sar(ServerAssignmentType, Vec<String>, bool),
}

#[derive(Debug, Clone)]
pub enum Cred {
    Digest(&'static str),
    Aka,
}

struct HssData {
    users: HashMap<String, Cred>,
    sqn: Mutex<HashMap<String, u64>>,
    log: Arc<Mutex<Vec<Seen>>>,
}

/// The IMSSubscription of `user`: its SIP IMPU and a tel URI in the implicit set.
pub fn subscription(user: &str, extra: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><IMSSubscription><PrivateID>{user}@{DOMAIN}</PrivateID>\
         <ServiceProfile><PublicIdentity><Identity>sip:{user}@{DOMAIN}</Identity></PublicIdentity>\
         <PublicIdentity><Identity>tel:+1555{:07}</Identity></PublicIdentity>{extra}\
         </ServiceProfile></IMSSubscription>",
        user.len()
    )
}

fn header(req: &ims_diameter::cx::RequestHeader, r: CxResult) -> AnswerHeader {
    AnswerHeader::for_request(req, HSS_HOST, DOMAIN, r)
}

impl HssData {
    fn mar(&self, msg: &Message, mar: ims_diameter::cx::Mar) -> Message {
        let scheme = mar
            .sip_auth_data_item
            .authentication_scheme
            .clone()
            .unwrap_or_default();
        let resync_data = mar.sip_auth_data_item.authorization.clone();
        self.log.lock().unwrap().push(Seen::Mar(
            mar.user_name.clone(),
            scheme,
            resync_data.is_some(),
        ));
        let user = mar.user_name.split('@').next().unwrap_or_default();
        let item = match self.users.get(user) {
            None => {
                return Maa {
                    header: header(
                        &mar.header,
                        CxResult::experimental(experimental::DIAMETER_ERROR_USER_UNKNOWN),
                    ),
                    user_name: None,
                    supported_features: vec![],
                    public_identity: None,
                    sip_number_auth_items: None,
                    sip_auth_data_items: vec![],
                }
                .to_answer(msg)
            }
            Some(Cred::Digest(pw)) => SipAuthDataItem {
                authentication_scheme: Some("SIP Digest".into()),
                digest: Some(SipDigestAuthenticate {
                    realm: DOMAIN.into(),
                    algorithm: Some("MD5".into()),
                    qop: Some("auth".into()),
                    ha1: Bytes::from(
                        Ha1::compute(Algorithm::Md5, &mar.user_name, DOMAIN, pw.as_bytes())
                            .as_hex()
                            .to_string(),
                    ),
                }),
                ..SipAuthDataItem::default()
            },
            Some(Cred::Aka) => {
                let m = Milenage::with_op(AKA_K, AKA_OP);
                let mut sqns = self.sqn.lock().unwrap();
                let sqn = sqns.entry(mar.user_name.clone()).or_insert(32);
                if let Some(d) = resync_data.filter(|d| d.len() == 30) {
                    let rand: [u8; 16] = d[..16].try_into().unwrap();
                    let ms = resync(&m, &rand, &STANDARD.encode(&d[16..])).unwrap();
                    *sqn = ms.value();
                }
                *sqn += 32;
                let v = sipp_answerable_vector(&m, Sqn::new(*sqn).unwrap());
                SipAuthDataItem {
                    authentication_scheme: Some("Digest-AKAv1-MD5".into()),
                    authenticate: Some(Bytes::copy_from_slice(&v.rand_autn())),
                    authorization: Some(Bytes::copy_from_slice(&v.xres)),
                    confidentiality_key: Some(Bytes::copy_from_slice(&v.ck)),
                    integrity_key: Some(Bytes::copy_from_slice(&v.ik)),
                    ..SipAuthDataItem::default()
                }
            }
        };
        Maa {
            header: header(&mar.header, CxResult::Base(result::DIAMETER_SUCCESS)),
            user_name: Some(mar.user_name.clone()),
            supported_features: vec![],
            public_identity: Some(mar.public_identity.clone()),
            sip_number_auth_items: Some(1),
            sip_auth_data_items: vec![item],
        }
        .to_answer(msg)
    }

    fn sar(&self, msg: &Message, sar: ims_diameter::cx::Sar) -> Message {
        let available =
            sar.user_data_already_available == UserDataAlreadyAvailable::AlreadyAvailable;
        self.log.lock().unwrap().push(Seen::Sar(
            sar.server_assignment_type,
            sar.public_identities.clone(),
            available,
        ));
        // The user of User-Name, or (UNREGISTERED_USER, without one) of the identity.
        let user = sar
            .user_name
            .as_deref()
            .or_else(|| {
                sar.public_identities
                    .first()
                    .map(|i| i.trim_start_matches("sip:"))
            })
            .and_then(|u| u.split('@').next())
            .unwrap_or_default()
            .to_string();
        let wants_data = matches!(
            sar.server_assignment_type,
            ServerAssignmentType::Registration
                | ServerAssignmentType::ReRegistration
                | ServerAssignmentType::UnregisteredUser
        ) && !available;
        Saa {
            header: header(&sar.header, CxResult::Base(result::DIAMETER_SUCCESS)),
            user_name: sar
                .user_name
                .clone()
                .or_else(|| Some(format!("{user}@{DOMAIN}"))),
            supported_features: vec![],
            user_data: wants_data.then(|| Bytes::from(subscription(&user, ""))),
            charging_information: None,
            associated_identities: None,
            server_name: None,
            wildcarded_public_identity: None,
        }
        .to_answer(msg)
    }
}

impl Handler for HssData {
    fn handle(&self, msg: Message) -> BoxFuture<'_, Message> {
        Box::pin(async move {
            match CxRequest::from_message(&msg) {
                Ok(CxRequest::Mar(m)) => self.mar(&msg, m),
                Ok(CxRequest::Sar(s)) => self.sar(&msg, s),
                Ok(_) => Message::error_answer(
                    &msg,
                    HSS_HOST,
                    DOMAIN,
                    result::DIAMETER_COMMAND_UNSUPPORTED,
                    None,
                ),
                Err(e) => e.answer(&msg, HSS_HOST, DOMAIN),
            }
        })
    }
}

/// The test HSS.
pub struct TestHss {
    pub server: Server,
    pub log: Arc<Mutex<Vec<Seen>>>,
}

impl TestHss {
    /// Digest users `alice` (password `secret`) and `user0`..`user{n-1}` (same
    /// password), AKA user `akauser`.
    pub async fn start(n: usize) -> TestHss {
        TestHss::start_at("127.0.0.1:0".parse().unwrap(), n).await
    }

    /// [`TestHss::start`] on `addr` (to come back on the same port after an abort).
    pub async fn start_at(addr: SocketAddr, n: usize) -> TestHss {
        TestHss::start_with(addr, n, Acceptor::Tcp).await
    }

    /// [`TestHss::start_at`] with `acceptor` (TLS).
    pub async fn start_with(addr: SocketAddr, n: usize, acceptor: Acceptor) -> TestHss {
        let mut users = HashMap::new();
        users.insert("alice".to_string(), Cred::Digest("secret"));
        users.insert("akauser".to_string(), Cred::Aka);
        for i in 0..n {
            users.insert(format!("user{i}"), Cred::Digest("secret"));
        }
        let log = Arc::new(Mutex::new(Vec::new()));
        let data = HssData {
            users,
            sqn: Mutex::new(HashMap::new()),
            log: log.clone(),
        };
        let server = hss_server(addr, acceptor, Arc::new(data)).await;
        TestHss { server, log }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    /// Waits (at most 10 s) until the S-CSCF's peer is open and returns it.
    pub async fn scscf_peer(&self) -> ims_diameter::peer::Peer {
        for _ in 0..100 {
            if let Some(p) = self.server.peer(SCSCF_HOST) {
                return p;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the S-CSCF never connected");
    }
}

/// A Diameter server as the HSS (`HSS_HOST`) on `addr`, open to the S-CSCF from
/// 127.0.0.1, answering with `handler`.
pub async fn hss_server(addr: SocketAddr, acceptor: Acceptor, handler: Arc<dyn Handler>) -> Server {
    let mut cfg = PeerConfig::cx(HSS_HOST, DOMAIN);
    cfg.bindings = vec![PeerBinding::new(
        SCSCF_HOST,
        vec!["127.0.0.1/32".parse().unwrap()],
    )];
    Server::bind(cfg, addr, acceptor, handler).await.unwrap()
}

/// A running `scscf` binary and its addresses.
pub struct Scscf {
    pub child: Option<Child>,
    pub sip: SocketAddr,
    pub http: SocketAddr,
    pub config: PathBuf,
    pub store: String,
}

/// Writes a config for an S-CSCF on free ports toward `hss`, store in `dir`.
pub fn write_config(dir: &Path, hss: SocketAddr, limits: (u32, u32, u32)) -> Scscf {
    let sip: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let store = format!("sqlite://{}", dir.join("scscf/bindings.db").display());
    let (min, default, max) = limits;
    let text = format!(
        "[node]\nname = \"scscf-test\"\ndomain = \"{DOMAIN}\"\nlog = \"info\"\n\
         [http]\nlisten = \"{http}\"\n\
         [sip]\nudp = [\"{sip}\"]\ntcp = [\"{sip}\"]\nadvertise = \"{sip}\"\n\
         [cloud_auth]\nmode = \"off\"\n\
         [cx]\nhss = [\"{hss}\"]\norigin_host = \"{SCSCF_HOST}\"\norigin_realm = \"{DOMAIN}\"\n\
         destination_host = \"{HSS_HOST}\"\ndestination_realm = \"{DOMAIN}\"\n\
         [registrar]\nserver_name = \"sip:{SCSCF_HOST}:5080\"\nmin_expires = {min}\n\
         default_expires = {default}\nmax_expires = {max}\nnonce_lifetime = 30\n\
         store = \"{store}\"\n\
         [session]\nicscf = \"sip:127.0.0.1:5070;lr\"\n\
         [zones]\ncore = [\"127.0.0.1/32\"]\n"
    );
    let config = dir.join("scscf.toml");
    std::fs::write(&config, text).unwrap();
    Scscf {
        child: None,
        sip,
        http,
        config,
        store,
    }
}

impl Drop for Scscf {
    fn drop(&mut self) {
        // A failed assertion leaves the node running: kill its process group.
        if let Some(mut c) = self.child.take() {
            kill_group(&mut c);
        }
    }
}

impl Scscf {
    /// Starts the binary and waits for its `/health`.
    pub fn start(&mut self, dir: &Path) {
        let log = std::fs::File::create(dir.join("scscf.log")).unwrap();
        let mut c = Command::new(env!("CARGO_BIN_EXE_scscf"));
        c.arg("--config")
            .arg(&self.config)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        std::os::unix::process::CommandExt::process_group(&mut c, 0);
        let child: Child = c.spawn().unwrap();
        self.child = Some(child);
        let http = self.http;
        assert!(
            wait_for(Duration::from_secs(10), || http_get(http, "/health")).is_some(),
            "scscf did not come up"
        );
    }

    /// SIGTERM and wait for the exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-s", "TERM", &c.id().to_string()])
                .status();
            if wait_for(Duration::from_secs(10), || c.try_wait().ok().flatten()).is_none() {
                kill_group(&mut c);
            }
        }
    }

    /// The `/health` JSON.
    pub fn health(&self) -> serde_json::Value {
        let body = http_get(self.http, "/health").expect("health answers");
        serde_json::from_str(&body).unwrap()
    }

    pub fn contacts(&self) -> u64 {
        self.health()["registered_contacts"]
            .as_u64()
            .unwrap_or(u64::MAX)
    }

    /// Waits (at most 10 s) for the Cx peer to be open.
    pub fn wait_cx_open(&self) {
        let ok = wait_for(Duration::from_secs(10), || {
            (self.health()["cx_peer"].as_str() == Some("Open")).then_some(())
        });
        assert!(ok.is_some(), "Cx peer not open: {}", self.health());
    }
}

/// The scenario directory.
pub fn scenarios() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sipp-scenarios/register")
}

/// Runs `scenario` with `csv` for `calls` calls against `target` over `transport`
/// (SIPp's `-t`: `u1` or `t1`; bounded to
/// 30 s); returns SIPp's exit code (0: every call passed) and its error log.
pub fn sipp(
    transport: &str,
    dir: &Path,
    scenario: &str,
    csv: &Path,
    calls: u32,
    target: SocketAddr,
) -> (Option<i32>, String) {
    let local = free_port();
    let mut c = Command::new("sipp");
    c.current_dir(dir)
        .arg(target.to_string())
        .arg("-sf")
        .arg(scenarios().join(scenario))
        .arg("-inf")
        .arg(csv)
        .args(["-i", "127.0.0.1", "-p", &local.to_string(), "-t", transport])
        .args(["-m", &calls.to_string(), "-r", "20", "-l", "10"])
        .args(["-timeout", "30s", "-timeout_error", "-nd", "-trace_err"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut c, 0);
    let mut child = c.spawn().expect("sipp runs (install sip-tester)");
    let status = ims_e2e::wait_exit(&mut child, Duration::from_secs(40));
    let errors = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with("_errors.log"))
        .filter_map(|e| {
            let t = std::fs::read_to_string(e.path()).ok();
            let _ = std::fs::remove_file(e.path());
            t
        })
        .collect::<Vec<_>>()
        .join("\n");
    (status.and_then(|s| s.code()), errors)
}

/// Runs SIPp off the async runtime.
pub async fn sipp_async(
    dir: &Path,
    scenario: &'static str,
    csv: &Path,
    calls: u32,
    target: SocketAddr,
) -> (Option<i32>, String) {
    let (dir, csv) = (dir.to_path_buf(), csv.to_path_buf());
    tokio::task::spawn_blocking(move || sipp("u1", &dir, scenario, &csv, calls, target))
        .await
        .unwrap()
}

/// [`sipp_async`] over TCP (`-t t1`: one connection).
pub async fn sipp_tcp(
    dir: &Path,
    scenario: &'static str,
    csv: &Path,
    calls: u32,
    target: SocketAddr,
) -> (Option<i32>, String) {
    let (dir, csv) = (dir.to_path_buf(), csv.to_path_buf());
    tokio::task::spawn_blocking(move || sipp("t1", &dir, scenario, &csv, calls, target))
        .await
        .unwrap()
}

/// A CSV of `users` (user part, domain, the authentication keyword).
pub fn csv(dir: &Path, name: &str, users: &[(&str, &str)]) -> PathBuf {
    let mut text = String::from("SEQUENTIAL\n");
    for (user, auth) in users {
        text.push_str(&format!("{user};{DOMAIN};{auth}\n"));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `[authentication username=USER@DOMAIN password=PW]`.
pub fn digest_auth(user: &str, pw: &str) -> String {
    format!("[authentication username={user}@{DOMAIN} password={pw}]")
}

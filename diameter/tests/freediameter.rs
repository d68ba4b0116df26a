//! Interoperability with a real Diameter implementation: freeDiameter (`freeDiameterd`)
//! connects to our server peer, completes CER/CEA and keeps the link with DWR/DWA
//! and answers our DPR.
//! freeDiameter has no Cx commands, so this proves the base protocol (RFC 6733 §5).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use ims_diameter::dict::result;
use ims_diameter::peer::{Acceptor, BoxFuture, Handler, PeerBinding, PeerConfig, Server};
use ims_diameter::Message;
use tokio::process::Command;

struct Refuse;

impl Handler for Refuse {
    fn handle(&self, req: Message) -> BoxFuture<'_, Message> {
        Box::pin(async move {
            Message::error_answer(
                &req,
                "hss.ims.example",
                "ims.example",
                result::DIAMETER_UNABLE_TO_COMPLY,
                None,
            )
        })
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn freediameter_completes_cer_and_watchdog() {
    if std::process::Command::new("freeDiameterd")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("SKIPPED: freeDiameterd is not installed (apt-get install freediameter)");
        return;
    }
    let mut cfg = PeerConfig::cx("hss.ims.example", "ims.example");
    cfg.bindings = vec![PeerBinding::new(
        "fd.ims.example",
        vec!["127.0.0.1/32".parse().unwrap()],
    )];
    cfg.watchdog_interval = Duration::from_millis(500);
    cfg.watchdog_jitter = Duration::ZERO;
    let server = Server::bind(
        cfg,
        "127.0.0.1:0".parse().unwrap(),
        Acceptor::Tcp,
        Arc::new(Refuse),
    )
    .await
    .unwrap();
    let port = server.local_addr().port();

    // freeDiameter insists on TLS credentials even when the peer is configured No_TLS.
    let dir = std::env::temp_dir().join(format!("ims-diameter-fd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["fd.ims.example".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    std::fs::write(dir.join("ca.pem"), cert.pem()).unwrap();
    let conf = format!(
        r#"Identity = "fd.ims.example";
Realm = "ims.example";
Port = {p1};
SecPort = {p2};
ListenOn = "127.0.0.1";
No_SCTP;
No_IPv6;
TwTimer = 6;
TLS_Cred = "{d}/cert.pem", "{d}/key.pem";
TLS_CA = "{d}/ca.pem";
ConnectPeer = "hss.ims.example" {{ ConnectTo = "127.0.0.1"; Port = {port}; No_TLS; No_SCTP; TwTimer = 6; }};
"#,
        p1 = free_port(),
        p2 = free_port(),
        d = dir.display(),
    );
    let conf_path = dir.join("fd.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut fd = Command::new("freeDiameterd")
        .arg("-c")
        .arg(&conf_path)
        .stdout(std::fs::File::create(dir.join("fd.log")).unwrap())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let outcome = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Some(p) = server.peer("fd.ims.example") {
                let s = p.stats();
                // Our DWRs (Tw = 0.5 s) answered by freeDiameter. Its own Tw (6 s, the
                // RFC 3539 minimum) never expires: our traffic resets it.
                if s.dwa_received >= 2 {
                    return s;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    // DPR/DPA: freeDiameter answers our DPR.
    let dpa = match server.peer("fd.ims.example") {
        Some(p) => {
            p.disconnect(ims_diameter::dict::disconnect_cause::REBOOTING)
                .await;
            p.stats().dpa_received
        }
        None => 0,
    };
    let _ = fd.kill().await;
    let log = std::fs::read_to_string(dir.join("fd.log")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    let Ok(stats) = outcome else {
        panic!("freeDiameter did not complete CER/CEA and the watchdog exchange within 20 s; stats {:?}; its log:\n{log}", server.peer("fd.ims.example").map(|p| p.stats()));
    };
    assert_eq!(stats.opened, 1);
    assert_eq!(dpa, 1, "no DPA from freeDiameter; its log:\n{log}");
    server.abort();
}

//! A real peer: freeDiameter (`freeDiameterd`, it has no Cx commands, so the base
//! protocol is what it proves) connects to the `hss` binary, completes CER/CEA and keeps
//! the connection open through our watchdog (Tw 0.5 s: a DWR unanswered twice would close
//! it). Skipped without freeDiameterd.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/process.rs"]
mod process;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use process::{free_port, start_hss, Running};

fn wait_for(what: &str, log: &Path, mut cond: impl FnMut(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if cond(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{what} not seen; freeDiameter log:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn freediameter_opens_and_stays_open_with_the_hss() {
    if Command::new("freeDiameterd")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("SKIPPED: freeDiameterd is not installed (apt-get install freediameter)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (http, dia) = (free_port(), free_port());
    std::fs::write(
        d.join("hss.toml"),
        format!(
            "[node]\nname = \"hss-fd\"\ndomain = \"ims.example.net\"\n\
             [http]\nlisten = \"127.0.0.1:{http}\"\n\
             [store]\nurl = \"sqlite://data/hss.db\"\n\
             [security]\nkey_file = \"data/store.key\"\ngenerate_missing = true\n\
             [diameter]\norigin_host = \"hss.ims.example.net\"\norigin_realm = \"ims.example.net\"\n\
             tcp = [\"127.0.0.1:{dia}\"]\ntw_ms = 500\n\
             [[diameter.peer]]\nhost = \"fd.ims.example.net\"\nfrom = [\"127.0.0.1/32\"]\n"
        ),
    )
    .unwrap();
    let _hss = start_hss(d, &d.join("hss.toml"));
    // The HTTP listener opens after the Diameter ones: once it accepts, so does Cx.
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", http)).is_err() {
        assert!(Instant::now() < deadline, "hss did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    // freeDiameter insists on TLS credentials even when the peer is configured No_TLS.
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["fd.ims.example.net".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(d.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(d.join("key.pem"), key.serialize_pem()).unwrap();
    std::fs::write(
        d.join("fd.conf"),
        format!(
            r#"Identity = "fd.ims.example.net";
Realm = "ims.example.net";
Port = {p1};
SecPort = {p2};
ListenOn = "127.0.0.1";
No_SCTP;
No_IPv6;
TwTimer = 6;
TLS_Cred = "{d}/cert.pem", "{d}/key.pem";
TLS_CA = "{d}/cert.pem";
ConnectPeer = "hss.ims.example.net" {{ ConnectTo = "127.0.0.1"; Port = {dia}; No_TLS; No_SCTP; TwTimer = 6; }};
"#,
            p1 = free_port(),
            p2 = free_port(),
            d = d.display(),
        ),
    )
    .unwrap();
    let log = d.join("fd.log");
    let _fd = Running(
        Command::new("freeDiameterd")
            .arg("-c")
            .arg(d.join("fd.conf"))
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let opened = wait_for("STATE_OPEN", &log, |t| t.contains("'STATE_OPEN'"));
    let before = opened.matches("'STATE_OPEN'").count();
    // Six of our Tw: every DWR must be answered or our side closes the connection.
    std::thread::sleep(Duration::from_secs(3));
    let text = std::fs::read_to_string(&log).unwrap();
    let after_open = text.split("'STATE_OPEN'").nth(1).unwrap_or_default();
    assert_eq!(
        text.matches("'STATE_OPEN'").count(),
        before,
        "reconnected:\n{text}"
    );
    assert!(
        !after_open.contains("STATE_CLOSED") && !after_open.contains("STATE_SUSPECT"),
        "connection left OPEN:\n{text}"
    );
}

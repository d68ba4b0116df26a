#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Two HSS instances (the real `hss` binary) on one PostgreSQL database serve the same
//! subscribers behind the real `icscf` and `scscf`, whose `[cx] hss` names both (the
//! first preferred). SIPp registers users through the I-CSCF at a bounded rate; the
//! preferred HSS is frozen (SIGSTOP, so that Cx requests are in flight at it) for half
//! a second and then killed (SIGKILL) a third of the way through. Cx fails over to the other HSS
//! and no registration fails beyond the Cx transactions that were in flight at the
//! preferred HSS when it died (counted on the CSCFs' `/metrics`: requests resent after
//! the connection was lost, and requests that got no answer).
//!
//! Gated on `IMS_TEST_POSTGRES_URL` (a schema of its own, dropped afterwards); every
//! port is a free ephemeral one, so it may run beside the dev core's tests.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use ims_e2e::chain::{sipp_csv, users, DOMAIN};
use ims_e2e::sipp::{self, SippTransport};
use ims_e2e::{
    block_on, command, free_port, health, http_get, scratch_dir, signal, wait_for, GroupGuard,
};
use ims_runtime::test_db::PgSchema;
use serde_json::json;

const TOKEN: &str = "failover-admin-token";
const SERVER_NAME: &str = "sip:scscf.ims.example.net:5080";
/// Registrations in the load, and their rate (per second).
const USERS: usize = 240;
const RATE: u32 = 40;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// One HSS instance: its Diameter identity and ports.
struct Hss {
    host: &'static str,
    http: u16,
    cx: u16,
}

fn hss_config(dir: &Path, hss: &Hss, db: &str) -> PathBuf {
    let path = dir.join(format!("{}.toml", hss.host));
    let text = format!(
        "[node]\nname = \"{host}\"\ndomain = \"{DOMAIN}\"\n\
         [http]\nlisten = \"127.0.0.1:{http}\"\n\
         [store]\nurl = \"{db}\"\nmax_connections = 4\n\
         [provisioning]\nadmin_token = \"{TOKEN}\"\n\
         [security]\nkey_file = \"{key}\"\ngenerate_missing = true\n\
         [diameter]\norigin_host = \"{host}\"\norigin_realm = \"{DOMAIN}\"\n\
         tcp = [\"127.0.0.1:{cx}\"]\ntw_ms = 6000\n\
         [diameter.capabilities]\nmandatory = []\noptional = []\n\
         server_names = [\"{SERVER_NAME}\"]\n\
         [[diameter.peer]]\nhost = \"icscf.ims.example.net\"\nfrom = [\"127.0.0.1/32\"]\n\
         commands = [\"UAR\", \"LIR\"]\n\
         [[diameter.peer]]\nhost = \"scscf.ims.example.net\"\nfrom = [\"127.0.0.1/32\"]\n\
         commands = [\"MAR\", \"SAR\"]\n",
        host = hss.host,
        http = hss.http,
        cx = hss.cx,
        // One store key for both: they read each other's rows.
        key = dir.join("store.key").display(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// `[cx] hss` naming both instances, `a` preferred.
fn cx_peers(a: &Hss, b: &Hss) -> String {
    format!(
        "hss = [\n  {{ address = \"127.0.0.1:{}\", origin_host = \"{}\", priority = 1 }},\n  \
         {{ address = \"127.0.0.1:{}\", origin_host = \"{}\", priority = 2 }},\n]\n\
         watchdog_secs = 6\nrequest_timeout_secs = 5\n",
        a.cx, a.host, b.cx, b.host
    )
}

/// A dev config (`config/dev/<node>.toml`) with the dev ports of `ports` replaced and
/// Cx over plain TCP toward `cx`.
fn cscf_config(dir: &Path, node: &str, ports: &[(u16, u16)], cx: &str) -> PathBuf {
    let dev = std::fs::read_to_string(ims_e2e::repo_root().join(format!("config/dev/{node}.toml")))
        .unwrap();
    let mut text = String::new();
    for line in dev.lines() {
        let t = line.trim_start();
        if t.starts_with("tls_")
            || t.starts_with("require_tls")
            || t.starts_with("watchdog_secs")
            || t.starts_with("request_timeout_secs")
        {
            continue;
        }
        if t.starts_with("hss = ") {
            text.push_str(cx);
            continue;
        }
        text.push_str(line);
        text.push('\n');
    }
    for (from, to) in ports {
        text = text.replace(&format!("127.0.0.1:{from}"), &format!("127.0.0.1:{to}"));
    }
    let path = dir.join(format!("{node}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn start(node: &str, config: &Path, data: &Path) -> GroupGuard {
    let log = std::fs::File::create(data.join(format!("{}.log", config_name(config)))).unwrap();
    GroupGuard(
        command(node)
            .arg("--config")
            .arg(config)
            .env("IMS_DATA_DIR", data)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

fn config_name(config: &Path) -> String {
    config.file_stem().unwrap().to_string_lossy().into_owned()
}

fn wait_healthy(child: &mut Child, http: u16, what: &str) {
    let up = wait_for(Duration::from_secs(30), || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited during start: {status}");
        }
        health(addr(http))
    });
    assert!(up.is_some(), "{what} did not become healthy");
}

/// The sum of the samples of `/metrics` at `port` whose line starts with `series` and
/// contains each of `labels`.
fn metric(port: u16, series: &str, labels: &[&str]) -> u64 {
    let text = http_get(addr(port), "/metrics").unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with(series) && labels.iter().all(|x| l.contains(x)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

fn provision(http: u16, names: &[String]) {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let names = names.to_vec();
    block_on(async move {
        for n in names {
            let body = json!({
                "id": n,
                "private_identities": [{"impi": format!("{n}@{DOMAIN}"), "password": "secret"}],
                "public_identities": [{"impu": format!("sip:{n}@{DOMAIN}")}]
            });
            let r = client
                .post(format!("http://127.0.0.1:{http}/api/v1/subscribers"))
                .bearer_auth(TOKEN)
                .json(&body)
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201, "provisioning {n}");
        }
    })
    .unwrap();
}

#[test]
fn killing_the_preferred_hss_fails_cx_over_without_losing_registrations() {
    let Some(schema) = block_on(PgSchema::create("hss_failover")).unwrap().unwrap() else {
        return;
    };
    assert!(
        sipp::available(),
        "sipp is not installed: run ./scripts/test"
    );
    let dir = scratch_dir("hss-failover");
    let a = Hss {
        host: "hss-a.ims.example.net",
        http: free_port(),
        cx: free_port(),
    };
    let b = Hss {
        host: "hss-b.ims.example.net",
        http: free_port(),
        cx: free_port(),
    };
    // One after the other: the first creates the schema's tables and the store key.
    let mut hss_a = start("hss", &hss_config(&dir, &a, schema.url()), &dir);
    wait_healthy(&mut hss_a.0, a.http, "hss-a");
    let mut hss_b = start("hss", &hss_config(&dir, &b, schema.url()), &dir);
    wait_healthy(&mut hss_b.0, b.http, "hss-b");

    let (icscf_sip, icscf_http, scscf_sip, scscf_http) =
        (free_port(), free_port(), free_port(), free_port());
    let ports = [
        (5070, icscf_sip),
        (9102, icscf_http),
        (5080, scscf_sip),
        (9103, scscf_http),
    ];
    let cx = cx_peers(&a, &b);
    let mut scscf = start("scscf", &cscf_config(&dir, "scscf", &ports, &cx), &dir);
    let mut icscf = start("icscf", &cscf_config(&dir, "icscf", &ports, &cx), &dir);
    wait_healthy(&mut scscf.0, scscf_http, "scscf");
    wait_healthy(&mut icscf.0, icscf_http, "icscf");
    for (port, node) in [(icscf_http, "icscf"), (scscf_http, "scscf")] {
        let both_open = wait_for(Duration::from_secs(20), || {
            let open = metric(port, "diameter_peer_open", &[]);
            (open == 2).then_some(())
        });
        assert!(both_open.is_some(), "{node}: both HSS peers open");
    }

    let names = users("fo", USERS);
    provision(a.http, &names);
    let csv = sipp_csv(&dir, "users.csv", &names, "secret", None);

    // The load, on its own thread; hss-a dies once it has answered a third of it.
    let sipp_dir = dir.join("sipp");
    std::fs::create_dir_all(&sipp_dir).unwrap();
    let load = std::thread::spawn({
        let csv = csv.clone();
        move || {
            sipp::run_uac_inf(
                &sipp::scenario("register/digest.xml"),
                addr(icscf_sip),
                None,
                Some(&csv),
                addr(free_port()),
                SippTransport::Udp,
                USERS as u32,
                RATE,
                120,
                &sipp_dir,
            )
            .expect("sipp runs")
        }
    });
    let answered_by_a = || metric(a.http, "diameter_answers_sent_total", &[]);
    let busy = wait_for(Duration::from_secs(60), || {
        (answered_by_a() >= USERS as u64).then_some(())
    });
    assert!(busy.is_some(), "hss-a serves the load");
    // Frozen first, so that Cx requests are surely in flight at it (the kernel still
    // takes them in), then SIGKILL: no DPR, its connections reset.
    signal(&hss_a.0, "STOP");
    std::thread::sleep(Duration::from_millis(500));
    hss_a.0.kill().unwrap();
    let _ = hss_a.0.wait();
    let r = load.join().unwrap();

    // What was in flight at hss-a when it died: the requests whose connection closed
    // before their answer (and any that timed out); of those, the ones resent to hss-b.
    let (mut in_flight, mut resent, mut other_failures) = (0, 0, 0);
    for port in [icscf_http, scscf_http] {
        let failures = "diameter_request_failures_total";
        in_flight +=
            metric(port, failures, &["disconnected"]) + metric(port, failures, &["timeout"]);
        other_failures += metric(port, failures, &["no_route"]);
        resent += metric(port, "diameter_failovers_total", &[a.host, "disconnected"]);
    }
    let served_by_b = metric(b.http, "diameter_answers_sent_total", &[]);
    eprintln!(
        "sipp: {} ok, {} failed; in flight at hss-a: {in_flight} ({resent} resent); hss-b answered {served_by_b}",
        r.successful, r.failed
    );
    assert_eq!(r.successful + r.failed, USERS as u64, "{r:?}");
    assert!(in_flight > 0, "requests were in flight at the frozen hss-a");
    assert!(
        r.failed <= in_flight,
        "{} registrations failed, more than the {in_flight} Cx transactions in flight: {r:?}",
        r.failed
    );
    // Better than the bound: each of them was resent to hss-b, so none failed.
    assert_eq!(resent, in_flight, "every lost Cx transaction resent");
    assert_eq!((r.failed, other_failures), (0, 0), "{r:?}");
    assert!(served_by_b > 0, "hss-b took over");
    // Both CSCFs stay ready on the surviving peer.
    for (port, node) in [(icscf_http, "icscf"), (scscf_http, "scscf")] {
        assert_eq!(metric(port, "diameter_peer_open", &[b.host]), 1, "{node}");
        assert_eq!(metric(port, "diameter_peer_open", &[a.host]), 0, "{node}");
        let ready = http_get(addr(port), "/health/ready");
        assert!(ready.is_some(), "{node} ready with one HSS: {ready:?}");
    }
    // Every registration SIPp saw succeed is bound at the S-CSCF.
    let contacts = health(addr(scscf_http))
        .and_then(|h| h["registered_contacts"].as_u64())
        .unwrap_or_default();
    assert_eq!(contacts, r.successful);

    drop((icscf, scscf, hss_b));
    block_on(schema.drop_schema()).unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

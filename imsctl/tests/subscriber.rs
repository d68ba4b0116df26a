//! `imsctl subscriber` (the real binary) against the HSS provisioning API served on a
//! loopback port in this process, over a SQLite store in a temporary directory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::process::Output;
use std::sync::Arc;

use hss::secrets::StoreKey;
use hss::store::Store;

const TOKEN: &str = "imsctl-test-token-0123456789";
const K: &str = "465b5ce8b199b49faa5f0a2ee238a6bc";
const OP: &str = "cdc202d5123e20f62b6d676ac72cb318";

struct Hss {
    store: Store,
    addr: SocketAddr,
    dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

async fn hss() -> Hss {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("hss.db").display());
    let key = StoreKey::from_hex(&"33".repeat(32), "test").unwrap();
    let store = Store::open(&url, 4, key).await.unwrap();
    let api = hss::provisioning::router(store.clone(), Some(TOKEN.into()), "ims.example.net");
    let (addr, task) = ims_runtime::serve_with(
        "127.0.0.1:0".parse().unwrap(),
        ims_runtime::NodeStatus::new("hss-test", "hss"),
        Arc::new(Default::default()),
        api,
    )
    .await
    .unwrap();
    Hss {
        store,
        addr,
        dir,
        task,
    }
}

/// Runs `imsctl subscriber --url .. --token .. <args>` off the runtime's threads.
async fn imsctl(addr: SocketAddr, token: &str, args: &[&str]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_imsctl"));
    cmd.args(["--config-dir", "/nonexistent", "subscriber", "--url"])
        .arg(format!("http://{addr}"))
        .args(["--token", token])
        .args(args)
        .env_remove("IMS_HSS_URL")
        .env_remove("IMS_HSS_TOKEN");
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        tokio::task::spawn_blocking(move || cmd.output().unwrap()),
    )
    .await
    .expect("imsctl finished in time")
    .unwrap();
    out
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_keeps_good_rows_and_reports_bad_ones_by_line() {
    let h = hss().await;
    let csv = h.dir.path().join("subscribers.csv");
    std::fs::write(
        &csv,
        format!(
            "impi,impus,password,k,opc,op,amf,sqn,project_id,user_id\n\
             alice@ims.example.net,sip:alice@ims.example.net;tel:+15550001,secret,,,,,,proj-a,\n\
             bob@ims.example.net,sip:bob@ims.example.net,,{K},,{OP},8000,32,proj-b,user-b\n\
             ,sip:noimpi@ims.example.net,secret,,,,,,,\n\
             carol@ims.example.net,sip:carol@ims.example.net,,zz,,{OP},,,,\n\
             dave@ims.example.net,sip:alice@ims.example.net,secret,,,,,,,\n\
             erin@ims.example.net,sip:erin@ims.example.net,secret\n\
             frank@ims.example.net,sip:frank@ims.example.net,,,,,,,,\n\
             gina@ims.example.net,sip:gina@ims.example.net sip:gina2@ims.example.net,pw,,,,,,proj-g,\n\
             hank@ims.example.net,sip:hank@ims.example.net,,{K},,{OP},,many,,\n"
        ),
    )
    .unwrap();
    let out = imsctl(h.addr, TOKEN, &["import", csv.to_str().unwrap()]).await;
    let all = text(&out);
    assert!(
        !out.status.success(),
        "bad rows make the exit status non-zero:\n{all}"
    );
    assert!(
        all.contains("imported 3 subscriber(s); 6 row(s) failed"),
        "{all}"
    );
    let line = |n: usize| {
        all.lines()
            .find(|l| l.contains(&format!("subscribers.csv:{n}:")))
            .unwrap_or_else(|| panic!("line {n} not reported:\n{all}"))
            .to_string()
    };
    assert!(line(4).contains("impi is empty"), "{}", line(4));
    assert!(
        line(5).contains("400") && line(5).contains("private_identities[0].aka.k"),
        "{}",
        line(5)
    );
    assert!(
        line(6).contains("409") && line(6).contains("sip:alice@ims.example.net"),
        "{}",
        line(6)
    );
    assert!(line(7).contains("3 fields"), "{}", line(7));
    assert!(line(8).contains("password"), "{}", line(8));
    assert!(line(10).contains("sqn"), "{}", line(10));
    for good in [2, 3, 9] {
        assert!(
            !all.contains(&format!("subscribers.csv:{good}:")),
            "good line {good} reported:\n{all}"
        );
    }

    let s = &h.store;
    assert_eq!(s.count().await.unwrap(), 3);
    let alice = s.by_impu("tel:+15550001").await.unwrap().unwrap();
    assert_eq!(alice.cloud.project_id.as_deref(), Some("proj-a"));
    assert_eq!(
        implicit_sets(&alice),
        [Some(1), Some(1)],
        "the impus of a row are one implicit registration set"
    );
    assert!(alice.private_identities[0].auth.digest);
    let bob = s.credentials("bob@ims.example.net").await.unwrap().unwrap();
    assert_eq!(bob.aka.as_ref().unwrap().sqn.value(), 32);
    assert_eq!(hex::encode(bob.aka.unwrap().k), K);
    assert!(s
        .by_impu("sip:gina2@ims.example.net")
        .await
        .unwrap()
        .is_some());
    for gone in ["carol", "dave", "erin", "frank", "hank"] {
        assert!(
            s.by_impi(&format!("{gone}@ims.example.net"))
                .await
                .unwrap()
                .is_none(),
            "{gone}"
        );
    }
    h.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_show_update_delete() {
    let h = hss().await;
    let out = imsctl(
        h.addr,
        TOKEN,
        &[
            "add",
            "--impi",
            "alice@ims.example.net",
            "--impu",
            "sip:alice@ims.example.net",
            "--impu",
            "tel:+15550001",
            "--password",
            "secret",
            "--k",
            K,
            "--op",
            OP,
            "--project-id",
            "proj-a",
            "--id",
            "alice",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("created subscriber alice"));
    let sub = h.store.get("alice").await.unwrap().unwrap();
    assert_eq!(
        implicit_sets(&sub),
        [Some(1), Some(1)],
        "the --impu of one add are one implicit registration set"
    );

    let out = imsctl(h.addr, TOKEN, &["show", "tel:+15550001"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["id"], "alice");
    assert!(!text(&out).contains(K) && !text(&out).contains("secret"));

    let out = imsctl(
        h.addr,
        TOKEN,
        &[
            "update",
            "alice@ims.example.net",
            "--bar",
            "tel:+15550001",
            "--add-impu",
            "sip:al@ims.example.net",
            "--user-id",
            "u1",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let sub = h.store.get("alice").await.unwrap().unwrap();
    let barred: Vec<(&str, bool)> = sub
        .public_identities
        .iter()
        .map(|p| (p.identity.impu.as_str(), p.identity.barred))
        .collect();
    assert_eq!(
        barred,
        [
            ("sip:alice@ims.example.net", false),
            ("tel:+15550001", true),
            ("sip:al@ims.example.net", false)
        ]
    );
    assert_eq!(
        implicit_sets(&sub),
        [Some(1); 3],
        "--add-impu joins the first identity's set"
    );
    assert_eq!(sub.cloud.project_id.as_deref(), Some("proj-a"), "kept");
    assert_eq!(sub.cloud.user_id.as_deref(), Some("u1"));
    assert!(
        h.store
            .credentials("alice@ims.example.net")
            .await
            .unwrap()
            .unwrap()
            .aka
            .is_some(),
        "credentials kept"
    );

    // An application server for alice's originating INVITEs, then one more before it.
    let add = |priority: &'static str, server: &'static str| {
        [
            "add-ifc",
            "sip:alice@ims.example.net",
            "--priority",
            priority,
            "--as",
            server,
            "--method",
            "INVITE",
            "--session-case",
            "originating",
            "--default-handling",
            "terminated",
        ]
    };
    let out = imsctl(h.addr, TOKEN, &add("20", "sip:as2.ims.example.net")).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = imsctl(h.addr, TOKEN, &add("10", "sip:127.0.0.1:5090")).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = imsctl(h.addr, TOKEN, &add("10", "sip:dup.ims.example.net")).await;
    assert!(!out.status.success(), "a priority used twice is refused");
    let servers = |sub: &hss::store::Subscription| -> Vec<(i64, String)> {
        sub.service_profiles
            .iter()
            .find(|p| p.name == "default")
            .map(|p| {
                p.ifcs
                    .iter()
                    .map(|i| (i.priority, i.application_server.server_name.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let sub = h.store.get("alice").await.unwrap().unwrap();
    assert_eq!(
        servers(&sub),
        [
            (10, "sip:127.0.0.1:5090".to_string()),
            (20, "sip:as2.ims.example.net".to_string())
        ]
    );
    let out = imsctl(h.addr, TOKEN, &["remove-ifc", "alice", "--priority", "20"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let sub = h.store.get("alice").await.unwrap().unwrap();
    assert_eq!(servers(&sub), [(10, "sip:127.0.0.1:5090".to_string())]);

    // A third-party registration AS for initial and de-registrations only.
    let register = |types: &'static str, method: &'static str| {
        [
            "add-ifc",
            "alice",
            "--priority",
            "30",
            "--as",
            "sip:reg.ims.example.net",
            "--method",
            method,
            "--registration-type",
            types,
        ]
    };
    let out = imsctl(h.addr, TOKEN, &register("re", "INVITE")).await;
    assert!(!out.status.success(), "only on a REGISTER trigger");
    let out = imsctl(h.addr, TOKEN, &register("de,initial", "REGISTER")).await;
    assert!(out.status.success(), "{}", text(&out));
    let sub = h.store.get("alice").await.unwrap().unwrap();
    let ifc = &sub.service_profiles[0].ifcs[1];
    assert_eq!(ifc.priority, 30);
    assert_eq!(
        ifc.trigger_point.as_ref().unwrap().spts[0].condition,
        hss::store::SptCondition::Method {
            method: "REGISTER".into(),
            registration_type: vec![
                hss::store::RegistrationType::InitialRegistration,
                hss::store::RegistrationType::DeRegistration
            ],
        }
    );

    let out = imsctl(h.addr, TOKEN, &["list"]).await;
    assert!(
        out.status.success() && text(&out).contains("sip:al@ims.example.net"),
        "{}",
        text(&out)
    );

    let out = imsctl(h.addr, "wrong-token-wrong-token", &["list"]).await;
    assert!(!out.status.success());
    assert!(text(&out).contains("401"), "{}", text(&out));

    let out = imsctl(h.addr, TOKEN, &["delete", "sip:alice@ims.example.net"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(h.store.count().await.unwrap(), 0);
    let out = imsctl(h.addr, TOKEN, &["show", "alice"]).await;
    assert!(!out.status.success());
    h.task.abort();
}

/// The implicit registration set of each public identity of `sub`, in order.
fn implicit_sets(sub: &hss::store::Subscription) -> Vec<Option<i64>> {
    sub.public_identities
        .iter()
        .map(|p| p.identity.implicit_set)
        .collect()
}

/// `--separate-sets`: each public identity alone, on `add` and for `update --add-impu`;
/// an identity added without it to a subscriber whose first identity is alone (as the
/// HSS stored several `--impu` before) puts the first and the new one in one set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_sets_on_request() {
    let h = hss().await;
    let args = [
        "add",
        "--impi",
        "bob@ims.example.net",
        "--impu",
        "sip:bob@ims.example.net",
        "--impu",
        "tel:+15550002",
        "--password",
        "secret",
        "--id",
        "bob",
        "--separate-sets",
    ];
    let out = imsctl(h.addr, TOKEN, &args).await;
    assert!(out.status.success(), "{}", text(&out));
    let sub = h.store.get("bob").await.unwrap().unwrap();
    assert_eq!(implicit_sets(&sub), [None, None]);
    let add = |impu: &'static str, separate: bool| {
        let mut a = vec!["update", "bob", "--add-impu", impu];
        if separate {
            a.push("--separate-sets");
        }
        a
    };
    let out = imsctl(h.addr, TOKEN, &add("sip:bob2@ims.example.net", true)).await;
    assert!(out.status.success(), "{}", text(&out));
    let sub = h.store.get("bob").await.unwrap().unwrap();
    assert_eq!(implicit_sets(&sub), [None, None, None]);
    let out = imsctl(h.addr, TOKEN, &add("sip:bob3@ims.example.net", false)).await;
    assert!(out.status.success(), "{}", text(&out));
    let sub = h.store.get("bob").await.unwrap().unwrap();
    assert_eq!(implicit_sets(&sub), [Some(1), None, None, Some(1)]);
    h.task.abort();
}

/// The HSS API over HTTPS with a certificate from a fresh CA: `imsctl subscriber` with
/// `--ca` (the CA's PEM) lists subscribers; without it, the server is not trusted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_the_ca_given_by_ca() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let h = hss().await;
    let dir = h.dir.path();
    let ca_params = || {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p
    };
    let ca_key = KeyPair::generate().unwrap();
    std::fs::write(
        dir.join("ca.crt"),
        ca_params().self_signed(&ca_key).unwrap().pem(),
    )
    .unwrap();
    let issuer = Issuer::new(ca_params(), ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    std::fs::write(dir.join("hss.crt"), leaf.pem()).unwrap();
    std::fs::write(dir.join("hss.key"), key.serialize_pem()).unwrap();
    let http: ims_config::HttpSection = ims_config::parse_str(
        &format!(
            "listen = \"127.0.0.1:0\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            dir.join("hss.crt").display(),
            dir.join("hss.key").display()
        ),
        std::path::Path::new("http.toml"),
    )
    .unwrap();
    let api = hss::provisioning::router(h.store.clone(), Some(TOKEN.into()), "ims.example.net");
    let served = ims_runtime::serve_node(
        &http,
        ims_runtime::NodeStatus::new("hss-test", "hss"),
        Arc::new(Default::default()),
        api,
    )
    .await
    .unwrap();
    let run = |ca: Option<std::path::PathBuf>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_imsctl"));
        cmd.args(["--config-dir", "/nonexistent", "subscriber", "--url"])
            .arg(format!("https://{}", served.addr))
            .args(["--token", TOKEN, "list"])
            .env_remove("IMS_HSS_URL")
            .env_remove("IMS_HSS_TOKEN")
            .env_remove("IMS_CA");
        if let Some(ca) = ca {
            cmd.arg("--ca").arg(ca);
        }
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
    };
    let trusted = run(Some(dir.join("ca.crt"))).await.unwrap();
    assert!(trusted.status.success(), "{}", text(&trusted));
    let untrusted = run(None).await.unwrap();
    assert!(!untrusted.status.success(), "{}", text(&untrusted));
    for t in served.tasks {
        t.abort();
    }
    h.task.abort();
}

//! `imsctl config init` writes a core that `imsctl config check` accepts, and each
//! cross-file rule, broken in a copy of the generated directory, gives its own finding
//! naming file and key. The dev configs pass too, with the dev CA `imsctl up` makes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
#[path = "../src/devca.rs"]
mod devca;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

const NODES: [&str; 4] = [
    "--pcscf=10.0.0.11",
    "--icscf=10.0.0.12",
    "--scscf=10.0.0.13",
    "--hss=10.0.0.14",
];

fn imsctl(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_imsctl"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .env_remove("IMS_DATA_DIR")
        .output()
        .unwrap()
}

fn init(out: &Path, extra: &[&str]) {
    let out_arg = format!("--out={}", out.display());
    let mut args = vec!["config", "init", "--domain=ims.example.net", &out_arg];
    args.extend(NODES);
    args.extend(extra);
    let o = imsctl(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `config check DIR`: success and what it printed on stderr.
fn check(dir: &Path) -> (bool, String) {
    let o = imsctl(&["config", "check", dir.to_str().unwrap()]);
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn init_then_check_passes_and_keys_stay_private() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, extra) in [
        ("plain", vec![]),
        (
            "cloud",
            vec![
                "--policyd=10.0.0.15",
                "--keystone=https://keystone.example.net:5000/v3",
            ],
        ),
        ("any", vec!["--bind-any"]),
    ] {
        let dir = tmp.path().join(name);
        init(&dir, &extra);
        let (ok, err) = check(&dir);
        assert!(ok, "{name}: {err}");
        for f in [
            "ca/ca.key",
            "tls/pcscf.key",
            "tls/hss.key",
            "hss/store.key",
            "hss/admin.token",
        ] {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.join(f)).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{name}/{f}: {mode:o}");
        }
        for role in ["pcscf", "icscf", "scscf", "hss", "policyd"] {
            let text = fs::read_to_string(dir.join(format!("{role}.toml"))).unwrap();
            assert!(
                !text.contains("ca.key") && !text.contains("/ca/"),
                "{role}.toml names the CA key"
            );
            assert!(
                !text.contains("20000"),
                "{role}.toml has the dev core's budgets"
            );
        }
    }
    let cloud = fs::read_to_string(tmp.path().join("cloud/pcscf.toml")).unwrap();
    assert!(cloud.contains("mode = \"on\"") && cloud.contains("https://10.0.0.15:9105"));
    let plain = fs::read_to_string(tmp.path().join("plain/scscf.toml")).unwrap();
    assert!(plain.contains("mode = \"off\""));
    let any = fs::read_to_string(tmp.path().join("any/icscf.toml")).unwrap();
    assert!(
        any.contains("udp = [\"0.0.0.0:5070\"]") && any.contains("advertise = \"10.0.0.12:5070\"")
    );
}

#[test]
fn init_refuses_a_non_empty_directory_and_takes_the_operators_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let first = tmp.path().join("first");
    init(&first, &[]);
    let out_arg = format!("--out={}", first.display());
    let mut args = vec!["config", "init", "--domain=ims.example.net", &out_arg];
    args.extend(NODES);
    assert!(
        !imsctl(&args).status.success(),
        "overwrote an existing directory"
    );
    // The operator's CA: the first directory's; its key is not copied.
    let second = tmp.path().join("second");
    let ca_cert = format!("--ca-cert={}", first.join("tls/ca.crt").display());
    let ca_key = format!("--ca-key={}", first.join("ca/ca.key").display());
    init(&second, &[&ca_cert, &ca_key]);
    assert!(!second.join("ca").exists());
    assert_eq!(
        fs::read(first.join("tls/ca.crt")).unwrap(),
        fs::read(second.join("tls/ca.crt")).unwrap()
    );
    // Certificates of the two directories chain to the same CA: mixing them passes.
    fs::copy(first.join("tls/icscf.crt"), second.join("tls/icscf.crt")).unwrap();
    fs::copy(first.join("tls/icscf.key"), second.join("tls/icscf.key")).unwrap();
    let (ok, err) = check(&second);
    assert!(ok, "{err}");
}

/// How a copy of the generated directory is broken.
enum Break {
    /// Replace text in a file (it must occur).
    Text(&'static str, &'static str, &'static str),
    /// Copy a file of the directory over another.
    Copy(&'static str, &'static str),
    /// Take a file from another core's directory (another CA).
    Foreign(&'static str, &'static str),
    /// Delete a file.
    Remove(&'static str),
}

fn apply(dir: &Path, foreign: &Path, b: &Break) {
    match b {
        Break::Text(file, from, to) => {
            let path = dir.join(file);
            let text = fs::read_to_string(&path).unwrap();
            assert!(text.contains(from), "{file} has no {from:?}");
            fs::write(&path, text.replacen(from, to, 1)).unwrap();
        }
        Break::Copy(from, to) => {
            fs::copy(dir.join(from), dir.join(to)).unwrap();
        }
        Break::Foreign(from, to) => {
            fs::copy(foreign.join(from), dir.join(to)).unwrap();
        }
        Break::Remove(file) => fs::remove_file(dir.join(file)).unwrap(),
    }
}

#[test]
fn each_broken_rule_names_its_file_and_key() {
    use Break::*;
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    init(
        &base,
        &[
            "--policyd=10.0.0.15",
            "--keystone=https://keystone.example.net:5000/v3",
        ],
    );
    let foreign = tmp.path().join("foreign");
    init(&foreign, &[]);
    let (ok, err) = check(&base);
    assert!(ok, "the unbroken directory: {err}");
    let cases: Vec<(&str, Vec<Break>, &str)> = vec![
        (
            "one domain",
            vec![Text("hss.toml", "domain = \"ims.example.net\"", "domain = \"other.example.net\"")],
            "hss.toml: node.domain: other.example.net differs from pcscf.toml's",
        ),
        (
            "P-CSCF route to the I-CSCF",
            vec![Text("pcscf.toml", "sip:10.0.0.12:5070;lr", "sip:10.0.0.12:5071;lr")],
            "pcscf.toml: pcscf.home_networks.\"ims.example.net\": sip:10.0.0.12:5071;lr is not a listener of icscf.toml",
        ),
        (
            "P-CSCF home network",
            vec![Text("pcscf.toml", "\"ims.example.net\" = \"sip:", "\"other.example.net\" = \"sip:")],
            "pcscf.toml: pcscf.home_networks: no entry for the home domain ims.example.net",
        ),
        (
            "I-CSCF S-CSCF name",
            vec![Text("icscf.toml", "name = \"sip:scscf.ims.example.net:5080\"", "name = \"sip:scscf.ims.example.net:5081\"")],
            "icscf.toml: scscf[0].name: sip:scscf.ims.example.net:5081 is no S-CSCF's registrar.server_name (scscf.toml has sip:scscf.ims.example.net:5080)",
        ),
        (
            "I-CSCF S-CSCF uri",
            vec![Text("icscf.toml", "uri = \"sip:10.0.0.13:5080;lr\"", "uri = \"sip:10.0.0.7:5080;lr\"")],
            "icscf.toml: scscf[0].uri: sip:10.0.0.7:5080;lr is not a listener of scscf.toml",
        ),
        (
            "S-CSCF route to the I-CSCF",
            vec![Text("scscf.toml", "icscf = \"sip:10.0.0.12:5070;lr\"", "icscf = \"sip:10.0.0.99:5070;lr\"")],
            "scscf.toml: session.icscf: sip:10.0.0.99:5070;lr is not a listener of icscf.toml",
        ),
        (
            "Cx peer",
            vec![Text("hss.toml", "host = \"icscf.ims.example.net\"", "host = \"icscf2.ims.example.net\"")],
            "icscf.toml: cx.origin_host: icscf.ims.example.net is not a [[diameter.peer]] host of hss.toml",
        ),
        (
            "Cx commands",
            vec![Text("hss.toml", "commands = [\"MAR\", \"SAR\"]", "commands = [\"MAR\"]")],
            "hss.toml: diameter.peer[1].commands: scscf.toml's scscf.ims.example.net needs SAR",
        ),
        (
            "Cx destination host",
            vec![Text("icscf.toml", "destination_host = \"hss.ims.example.net\"", "destination_host = \"hss2.ims.example.net\"")],
            "icscf.toml: cx.destination_host: hss2.ims.example.net is not hss.toml's diameter.origin_host",
        ),
        (
            "Cx realm",
            vec![Text("scscf.toml", "destination_realm = \"ims.example.net\"", "destination_realm = \"example.org\"")],
            "scscf.toml: cx.destination_realm: example.org is not hss.toml's diameter.origin_realm",
        ),
        (
            "Cx address",
            vec![Text("icscf.toml", "hss = [\"10.0.0.14:5658\"]", "hss = [\"10.0.0.14:3868\"]")],
            "icscf.toml: cx.hss[0]: 10.0.0.14:3868 is not a Diameter tls listener of hss.toml",
        ),
        (
            "S-CSCF Origin-Host is its Server-Name's host",
            vec![Text("scscf.toml", "origin_host = \"scscf.ims.example.net\"", "origin_host = \"scscf1.ims.example.net\"")],
            "scscf.toml: cx.origin_host: scscf1.ims.example.net is not the host of registrar.server_name",
        ),
        (
            "HSS Server-Capabilities",
            vec![Text("hss.toml", "server_names = [\"sip:scscf.ims.example.net:5080\"]", "server_names = [\"sip:scscf.ims.example.net:5081\"]")],
            "hss.toml: diameter.capabilities.server_names[0]: sip:scscf.ims.example.net:5081 is no S-CSCF's registrar.server_name",
        ),
        (
            "Cx client certificate",
            vec![Text("scscf.toml", "tls_cert = \"/etc/ims-core/tls/scscf.crt\"\ntls_key = \"/etc/ims-core/tls/scscf.key\"\n", "")],
            "scscf.toml: cx.tls_cert: absent",
        ),
        (
            "a certificate file exists",
            vec![Remove("tls/scscf.crt")],
            "scscf.toml: cx.tls_cert: /etc/ims-core/tls/scscf.crt does not exist",
        ),
        (
            "a client certificate chains to the HSS's CA",
            vec![Foreign("tls/icscf.crt", "tls/icscf.crt"), Foreign("tls/icscf.key", "tls/icscf.key")],
            "hss.toml: diameter.tls_files.client_ca: icscf.toml's cx.tls_cert (/etc/ims-core/tls/icscf.crt) does not chain",
        ),
        (
            "a client certificate names the Origin-Host",
            vec![Copy("tls/scscf.crt", "tls/icscf.crt"), Copy("tls/scscf.key", "tls/icscf.key")],
            "icscf.toml: cx.tls_cert: /etc/ims-core/tls/icscf.crt does not name icscf.ims.example.net",
        ),
        (
            "a key belongs to its certificate",
            vec![Copy("tls/scscf.key", "tls/icscf.key")],
            "icscf.toml: cx.tls_key: /etc/ims-core/tls/icscf.key is not the key of cx.tls_cert",
        ),
        (
            "the HSS certificate names the HSS",
            vec![Copy("tls/policyd.crt", "tls/hss.crt"), Copy("tls/policyd.key", "tls/hss.key")],
            "hss.toml: diameter.tls_files.cert: /etc/ims-core/tls/hss.crt does not name hss.ims.example.net",
        ),
        (
            "the HSS certificate chains to the CSCF's CA",
            vec![Foreign("tls/ca.crt", "tls/other-ca.crt"), Text("icscf.toml", "tls_ca = \"/etc/ims-core/tls/ca.crt\"", "tls_ca = \"/etc/ims-core/tls/other-ca.crt\"")],
            "icscf.toml: cx.tls_ca: hss.toml's diameter.tls_files.cert (/etc/ims-core/tls/hss.crt) does not chain",
        ),
        (
            "the P-CSCF certificate names its advertised address",
            vec![Text("pcscf.toml", "advertise = \"10.0.0.11:5060\"", "advertise = \"10.0.0.99:5060\"")],
            "pcscf.toml: sip.tls_files.cert: /etc/ims-core/tls/pcscf.crt does not name 10.0.0.99",
        ),
        (
            "an HTTPS certificate names its listener",
            vec![Text("hss.toml", "listen = \"10.0.0.14:9104\"", "listen = \"10.0.0.99:9104\"")],
            "hss.toml: http.tls.cert: /etc/ims-core/tls/hss.crt does not name 10.0.0.99",
        ),
        (
            "zones cover the other CSCFs",
            vec![Text("icscf.toml", "core = [\"10.0.0.11/32\", \"10.0.0.13/32\"]", "core = [\"10.0.0.11/32\"]")],
            "icscf.toml: zones.core: does not cover scscf.toml's address 10.0.0.13",
        ),
        (
            "zones.core_names are names of the other CSCFs' certificates",
            vec![
                Text("scscf.toml", "advertise = \"10.0.0.13:5080\"\n\n[cx]", "advertise = \"10.0.0.13:5080\"\ntls = [\"10.0.0.13:5081\"]\n\n[sip.tls_files]\ncert = \"/etc/ims-core/tls/scscf.crt\"\nkey = \"/etc/ims-core/tls/scscf.key\"\nclient_ca = \"/etc/ims-core/tls/ca.crt\"\n\n[cx]"),
                Text("scscf.toml", "interconnect = []", "interconnect = []\ncore_names = [\"pcscf.ims.example.net\", \"bogus.ims.example.net\"]"),
            ],
            "scscf.toml: zones.core_names[1]: bogus.ims.example.net: no other CSCF's sip.tls_files.cert names it",
        ),
        (
            "policyd URL",
            vec![Text("scscf.toml", "policy_url = \"https://10.0.0.15:9105\"", "policy_url = \"https://10.0.0.15:9106\"")],
            "scscf.toml: cloud_auth.policy_url: https://10.0.0.15:9106 is not policyd.toml's http.listen",
        ),
        (
            "policyd scheme",
            vec![Text("pcscf.toml", "policy_url = \"https://10.0.0.15:9105\"", "policy_url = \"http://10.0.0.15:9105\"")],
            "pcscf.toml: cloud_auth.policy_url: http://10.0.0.15:9105: policyd.toml serves https",
        ),
        (
            "policyd certificate chains to the CSCF's policy_ca",
            vec![Foreign("tls/ca.crt", "tls/other-ca.crt"), Text("pcscf.toml", "policy_ca = \"/etc/ims-core/tls/ca.crt\"", "policy_ca = \"/etc/ims-core/tls/other-ca.crt\"")],
            "pcscf.toml: cloud_auth.policy_ca: policyd.toml's http.tls.cert (/etc/ims-core/tls/policyd.crt) does not chain",
        ),
        (
            "one Keystone",
            vec![Text("pcscf.toml", "url = \"https://keystone.example.net:5000/v3\"", "url = \"https://keystone2.example.net:5000/v3\"")],
            "pcscf.toml: cloud_auth.keystone.url: https://keystone2.example.net:5000/v3 is not policyd.toml's keystone.url",
        ),
        (
            "cloud authorization on at both CSCFs",
            vec![Text("pcscf.toml", "mode = \"on\"\npolicy_url = \"https://10.0.0.15:9105\"\npolicy_ca = \"/etc/ims-core/tls/ca.crt\"\n\n[cloud_auth.keystone]\nurl = \"https://keystone.example.net:5000/v3\"\nservice_user = \"ims-service\"\nservice_project = \"service\"\n", "mode = \"off\"\n[cloud_auth.keystone]\nurl = \"https://keystone.example.net:5000/v3\"\nservice_user = \"ims-service\"\nservice_project = \"service\"\n")],
            "scscf.toml: cloud_auth.mode: On while pcscf.toml has Off",
        ),
        (
            "a node's own rules (ims-config)",
            vec![Text("icscf.toml", "uar_per_second = 200.0", "uar_per_second = -1.0")],
            "icscf.toml: budget.uar_per_second: must be a positive number",
        ),
    ];
    run_cases(tmp.path(), &base, &foreign, &cases);
}

type Case = (&'static str, Vec<Break>, &'static str);

/// Breaks a copy of `base` per case and expects `config check` to fail naming it.
fn run_cases(tmp: &Path, base: &Path, foreign: &Path, cases: &[Case]) {
    let mut failures = Vec::new();
    for (i, (name, breaks, expected)) in cases.iter().enumerate() {
        let dir: PathBuf = tmp.join(format!("case{i}"));
        copy_dir(base, &dir);
        for b in breaks {
            apply(&dir, foreign, b);
        }
        let (ok, err) = check(&dir);
        if ok || !err.contains(expected) {
            failures.push(format!(
                "{name}: expected {expected:?}, got (ok={ok}):\n{err}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_core_behind_a_floating_ip_with_host_names_is_checked_alike() {
    use Break::*;
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    let out_arg = format!("--out={}", base.display());
    let o = imsctl(&[
        "config",
        "init",
        "--domain=ims.example.net",
        &out_arg,
        "--pcscf=10.0.0.11,public=203.0.113.5,name=edge1.ims.example.net",
        "--icscf=10.0.0.12,name=icscf1.ims.example.net",
        "--scscf=10.0.0.13,name=scscf1.ims.example.net",
        "--hss=10.0.0.14,name=hss1.ims.example.net",
        "--bind-any",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let pcscf = fs::read_to_string(base.join("pcscf.toml")).unwrap();
    assert!(pcscf.contains("[sip.core]\n"), "{pcscf}");
    assert!(
        pcscf.contains("advertise = \"203.0.113.5:5060\""),
        "{pcscf}"
    );
    assert!(
        pcscf.contains("advertise = \"edge1.ims.example.net:5064\""),
        "{pcscf}"
    );
    let icscf = fs::read_to_string(base.join("icscf.toml")).unwrap();
    assert!(
        icscf.contains("hss = [\"hss1.ims.example.net:5658\"]"),
        "{icscf}"
    );
    let (ok, err) = check(&base);
    assert!(ok, "the unbroken directory: {err}");
    let foreign = tmp.path().join("foreign");
    init(&foreign, &[]);
    let cases: Vec<Case> = vec![
        (
            "a route by host name",
            vec![Text("icscf.toml", "uri = \"sip:scscf1.ims.example.net:5080;lr\"", "uri = \"sip:scscf9.ims.example.net:5080;lr\"")],
            "icscf.toml: scscf[0].uri: sip:scscf9.ims.example.net:5080;lr is not a listener of scscf.toml",
        ),
        (
            "the HSS by host name",
            vec![Text("scscf.toml", "hss = [\"hss1.ims.example.net:5658\"]", "hss = [\"hss9.ims.example.net:5658\"]")],
            "scscf.toml: cx.hss[0]: hss9.ims.example.net:5658 is not a Diameter tls listener of hss.toml",
        ),
        (
            "the P-CSCF's core face is covered by the zones",
            vec![Text("pcscf.toml", "advertise = \"edge1.ims.example.net:5064\"", "advertise = \"10.0.0.99:5064\"")],
            "icscf.toml: zones.core: does not cover pcscf.toml's address 10.0.0.99",
        ),
        (
            "the P-CSCF's certificate names its public address",
            vec![Text("pcscf.toml", "advertise = \"203.0.113.5:5060\"", "advertise = \"203.0.113.6:5060\"")],
            "pcscf.toml: sip.tls_files.cert: /etc/ims-core/tls/pcscf.crt does not name 203.0.113.6",
        ),
    ];
    run_cases(tmp.path(), &base, &foreign, &cases);
}

#[test]
fn policyd_without_keystone_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    init(
        &dir,
        &["--policyd=10.0.0.15", "--keystone=https://k.example.net/v3"],
    );
    let path = dir.join("policyd.toml");
    let text = fs::read_to_string(&path).unwrap();
    let cut = text.find("[keystone]").unwrap();
    fs::write(&path, &text[..cut]).unwrap();
    let (ok, err) = check(&dir);
    assert!(!ok);
    assert!(
        err.contains("policyd.toml: keystone: absent, while pcscf.toml's cloud_auth is on"),
        "{err}"
    );
}

#[test]
fn the_dev_configs_pass_with_the_dev_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let nodes: Vec<(&str, Vec<String>)> = ["policyd", "hss", "scscf", "icscf", "pcscf"]
        .iter()
        .map(|n| (*n, Vec::new()))
        .collect();
    devca::DevCa::ensure(tmp.path(), "ims.example.net", &nodes).unwrap();
    let dev = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/dev");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_imsctl"))
        .args(["config", "check", dev.to_str().unwrap()])
        .env("IMS_DATA_DIR", tmp.path())
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn an_ipv6_core_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v6");
    let out_arg = format!("--out={}", dir.display());
    let o = imsctl(&[
        "config",
        "init",
        "--domain=ims.example.net",
        &out_arg,
        "--pcscf=fd00::11,public=2001:db8::5",
        "--icscf=fd00::12",
        "--scscf=fd00::13",
        "--hss=fd00::14",
        "--keystone=http://keystone.example.net:5000/v3",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let icscf = fs::read_to_string(dir.join("icscf.toml")).unwrap();
    assert!(
        icscf.contains("uri = \"sip:[fd00::13]:5080;lr\""),
        "{icscf}"
    );
    assert!(icscf.contains("\"fd00::11/128\""), "{icscf}");
    let (ok, err) = check(&dir);
    assert!(ok, "{err}");
}

const POOL: [&str; 8] = [
    "--pcscf=10.0.0.11",
    "--pcscf=10.0.0.21",
    "--icscf=10.0.0.12",
    "--scscf=10.0.0.13",
    "--scscf=10.0.0.23",
    "--hss=10.0.0.14",
    "--hss=10.0.0.24",
    "--db-url=postgres://ims@10.0.0.30:5432",
];

fn init_pool(out: &Path, extra: &[&str]) -> Output {
    let out_arg = format!("--out={}", out.display());
    let mut args = vec!["config", "init", "--domain=ims.example.net", &out_arg];
    args.extend(POOL);
    args.extend(extra);
    imsctl(&args)
}

#[test]
fn a_pooled_core_passes_and_its_password_stays_private() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let pw = tmp.path().join("pw");
    fs::write(&pw, "s3cret:x\n").unwrap();
    let dir = tmp.path().join("pool");
    let o = init_pool(&dir, &[&format!("--db-password-file={}", pw.display())]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (ok, err) = check(&dir);
    assert!(ok, "{err}");
    for id in [
        "pcscf1", "pcscf2", "icscf", "scscf1", "scscf2", "hss1", "hss2", "policyd",
    ] {
        assert!(dir.join(format!("{id}.toml")).exists(), "{id}.toml");
        assert!(dir.join(format!("tls/{id}.crt")).exists(), "tls/{id}.crt");
    }
    let pgpass = dir.join("db/pgpass");
    assert_eq!(
        fs::read_to_string(&pgpass).unwrap(),
        "10.0.0.30:5432:*:ims:s3cret\\:x\n"
    );
    let mode = fs::metadata(&pgpass).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "db/pgpass: {mode:o}");
    for e in fs::read_dir(&dir).unwrap() {
        let text = fs::read_to_string(e.unwrap().path()).unwrap_or_default();
        assert!(!text.contains("s3cret"), "the password in a config");
    }
    let s2 = fs::read_to_string(dir.join("scscf2.toml")).unwrap();
    assert!(
        s2.contains("pool = true")
            && s2.contains("store = \"postgres://ims@10.0.0.30:5432/ims_scscf\"")
    );
    let i = fs::read_to_string(dir.join("icscf.toml")).unwrap();
    assert_eq!(i.matches("[[scscf]]").count(), 2);
    // A pool without the shared database, and a password in the URL, are refused.
    let mut args = vec!["config", "init", "--domain=ims.example.net"];
    let out_arg = format!("--out={}", tmp.path().join("nodb").display());
    args.push(&out_arg);
    args.extend(&POOL[..7]);
    assert!(!imsctl(&args).status.success(), "a pool without --db-url");
    let o = init_pool(
        &tmp.path().join("pw-in-url"),
        &["--db-url=postgres://ims:pw@10.0.0.30"],
    );
    assert!(!o.status.success());
}

#[test]
fn each_broken_pool_rule_names_its_file_and_key() {
    use Break::*;
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    assert!(init_pool(&base, &[]).status.success());
    let foreign = tmp.path().join("foreign");
    init(&foreign, &[]);
    let cases: Vec<Case> = vec![
        (
            "every S-CSCF in the I-CSCF's list",
            vec![Text("icscf.toml", "name = \"sip:scscf2.", "name = \"sip:scscf9.")],
            "icscf.toml: scscf: no [[scscf]] named sip:scscf2.ims.example.net:5080 (scscf2.toml registrar.server_name)",
        ),
        (
            "every [[scscf]] an S-CSCF",
            vec![Text("icscf.toml", "name = \"sip:scscf2.", "name = \"sip:scscf9.")],
            "icscf.toml: scscf[1].name: sip:scscf9.ims.example.net:5080 is no S-CSCF's registrar.server_name",
        ),
        (
            "a pool member's route (views)",
            vec![Text("icscf.toml", "sip:10.0.0.23:5080;lr", "sip:10.0.0.23:5081;lr")],
            "icscf.toml: scscf[1].uri: sip:10.0.0.23:5081;lr is not a listener of scscf2.toml",
        ),
        (
            "pool = true",
            vec![Text("scscf2.toml", "pool = true", "pool = false")],
            "scscf2.toml: registrar.pool: false, but 2 S-CSCFs",
        ),
        (
            "one store",
            vec![Text("scscf2.toml", "5432/ims_scscf", "5432/other")],
            "scscf2.toml: registrar.store: postgres://ims@10.0.0.30:5432/other is not scscf1.toml's",
        ),
        (
            "distinct Server-Names",
            vec![Text(
                "scscf2.toml",
                "server_name = \"sip:scscf2.",
                "server_name = \"sip:scscf1.",
            )],
            "scscf2.toml: registrar.server_name: sip:scscf1.ims.example.net:5080 is scscf1.toml's too",
        ),
        (
            "every HSS accepts every CSCF",
            vec![Text(
                "hss2.toml",
                "host = \"scscf1.ims.example.net\"",
                "host = \"scscf9.ims.example.net\"",
            )],
            "hss2.toml: diameter.peer: no [[diameter.peer]] host scscf1.ims.example.net (scscf1.toml's cx.origin_host)",
        ),
        (
            "every CSCF lists every HSS",
            vec![Text(
                "scscf1.toml",
                "origin_host = \"hss2.ims.example.net\"",
                "origin_host = \"hss9.ims.example.net\"",
            )],
            "scscf1.toml: cx.hss: names no peer hss2.ims.example.net (hss2.toml's diameter.origin_host)",
        ),
        (
            "one HSS database",
            vec![Text("hss2.toml", "5432/ims_hss", "5432/other")],
            "hss2.toml: store.url: postgres://ims@10.0.0.30:5432/other is not hss1.toml's",
        ),
        (
            "zones cover the pool",
            vec![Text("scscf1.toml", ", \"10.0.0.23/32\"", "")],
            "scscf1.toml: zones.core: does not cover scscf2.toml's address 10.0.0.23",
        ),
    ];
    run_cases(tmp.path(), &base, &foreign, &cases);
}

#[test]
fn an_srv_name_in_a_route_is_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pool");
    assert!(init_pool(&dir, &[]).status.success());
    let path = dir.join("pcscf1.toml");
    let text = fs::read_to_string(&path).unwrap();
    fs::write(
        &path,
        text.replace("sip:10.0.0.12:5070;lr", "sip:icscf-pool.ims.example.net;lr"),
    )
    .unwrap();
    let (ok, err) = check(&dir);
    assert!(ok, "{err}");
    assert!(
        err.contains("warning: pcscf1.toml: pcscf.home_networks.\"ims.example.net\": sip:icscf-pool.ims.example.net;lr: icscf-pool.ims.example.net names no port, so it is looked up by NAPTR/SRV"),
        "{err}"
    );
}

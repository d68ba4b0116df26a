//! The shipped dev configs load, and bad configs name their file and key.

use std::path::{Path, PathBuf};

use ims_config::{
    load, parse_str, CloudAuthMode, ConfigError, HssConfig, IcscfConfig, PcscfConfig, ScscfConfig,
};

fn dev(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dev").join(name)
}

#[test]
fn every_dev_config_loads() {
    let p: PcscfConfig = load(&dev("pcscf.toml")).expect("pcscf");
    assert_eq!(p.sip.tls.len(), 1, "the P-CSCF listens on TLS toward UEs");
    assert!(p.sip.tls_files.is_some());
    assert!(p.pcscf.home_networks.contains_key("ims.example.net"));
    let i: IcscfConfig = load(&dev("icscf.toml")).expect("icscf");
    assert_eq!(i.cx.origin_host, "icscf.ims.example.net");
    assert!(!i.scscf.is_empty(), "the I-CSCF knows the dev S-CSCF");
    assert!(i.originating.trusts("127.0.0.1".parse().unwrap()));
    assert!(!i.originating.trusts("192.0.2.1".parse().unwrap()));
    let s: ScscfConfig = load(&dev("scscf.toml")).expect("scscf");
    // No Keystone in the dev core: both filters say explicitly that cloud auth is off.
    assert_eq!(p.cloud_auth.mode, CloudAuthMode::Off);
    assert_eq!(s.cloud_auth.mode, CloudAuthMode::Off);
    let h: HssConfig = load(&dev("hss.toml")).expect("hss");
    // Cx over mutual TLS only: the HSS refuses plain TCP and knows both CSCFs, which
    // present client certificates.
    let d = h.diameter.expect("[diameter]");
    assert!(d.require_tls && d.tcp.is_empty());
    let hosts: Vec<&str> = d.peer.iter().map(|p| p.host.as_str()).collect();
    assert_eq!(
        hosts,
        [i.cx.origin_host.as_str(), s.cx.origin_host.as_str()]
    );
    for cx in [&i.cx, &s.cx] {
        assert!(cx.require_tls && cx.client_identity().is_some(), "{cx:?}");
    }
}

const BASE: &str = r#"
[node]
name = "x"
domain = "ims.example.net"
[http]
listen = "127.0.0.1:9000"
"#;

fn parse_pcscf(extra: &str) -> Result<PcscfConfig, ConfigError> {
    parse_str(
        &format!("{BASE}[cloud_auth]\nmode = \"off\"\n{extra}"),
        Path::new("bad.toml"),
    )
}

#[test]
fn unknown_key_is_named_with_the_file() {
    let err = parse_pcscf("[sip]\nudp = [\"127.0.0.1:5060\"]\nudpp = 1\n").unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("bad.toml: "), "{text}");
    assert!(text.contains("udpp"), "{text}");
}

#[test]
fn bad_value_type_names_the_dotted_key() {
    let err = parse_pcscf("[sip]\nudp = [\"not-an-address\"]\n").unwrap_err();
    assert_eq!(err.key(), Some("sip.udp[0]"), "{err}");
    assert!(
        err.to_string().starts_with("bad.toml: sip.udp[0]: "),
        "{err}"
    );
}

#[test]
fn validation_failure_names_the_nested_key() {
    let err =
        parse_pcscf("[sip]\nudp = [\"127.0.0.1:5060\"]\n[sip.limits]\nmax_message_size = 10\n")
            .unwrap_err();
    assert_eq!(err.key(), Some("sip.limits.max_message_size"), "{err}");
}

#[test]
fn tls_listener_without_certificates_is_refused() {
    let err = parse_pcscf("[sip]\ntls = [\"127.0.0.1:5061\"]\n").unwrap_err();
    assert_eq!(err.key(), Some("sip.tls_files"), "{err}");
}

#[test]
fn missing_file_is_reported_with_its_path() {
    let err = load::<HssConfig>(Path::new("/nonexistent/hss.toml")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/hss.toml: cannot read"),
        "{err}"
    );
}

#[test]
fn pcscf_home_network_must_be_a_sip_uri() {
    let err = parse_pcscf(
        "[sip]\nudp = [\"127.0.0.1:5060\"]\n[pcscf.home_networks]\n\"a.net\" = \"http://x\"\n",
    )
    .unwrap_err();
    assert_eq!(err.key(), Some("pcscf.home_networks.a.net"), "{err}");
}

#[test]
fn icscf_needs_cx_and_checks_tw() {
    let sip = "[sip]\nudp = [\"127.0.0.1:5070\"]\n";
    let err = parse_str::<IcscfConfig>(&format!("{BASE}{sip}"), Path::new("i.toml")).unwrap_err();
    assert!(err.to_string().contains("cx"), "{err}");
    let cx =
        "[cx]\nhss = \"127.0.0.1:3868\"\ndestination_host = \"h\"\ndestination_realm = \"r\"\norigin_host = \"i\"\norigin_realm = \"r\"\nwatchdog_secs = 1\n";
    let err =
        parse_str::<IcscfConfig>(&format!("{BASE}{sip}{cx}"), Path::new("i.toml")).unwrap_err();
    assert_eq!(err.key(), Some("cx.watchdog_secs"), "{err}");
}

#[test]
fn icscf_trusts_orig_from_loopback_unless_told_otherwise() {
    let sip = "[sip]\nudp = [\"127.0.0.1:5070\"]\n";
    let cx = "[cx]\nhss = \"127.0.0.1:3868\"\ndestination_host = \"h\"\ndestination_realm = \"r\"\norigin_host = \"i\"\norigin_realm = \"r\"\n";
    let base = format!("{BASE}{sip}{cx}");
    let i = parse_str::<IcscfConfig>(&base, Path::new("i.toml")).unwrap();
    assert!(i.originating.trusts("::1".parse().unwrap()));
    assert!(!i.originating.trusts("10.0.0.5".parse().unwrap()));
    let own = format!("{base}[originating]\nfrom = [\"10.0.0.0/24\"]\n");
    let i = parse_str::<IcscfConfig>(&own, Path::new("i.toml")).unwrap();
    assert!(i.originating.trusts("10.0.0.5".parse().unwrap()));
    assert!(!i.originating.trusts("127.0.0.1".parse().unwrap()));
    let bad = format!("{base}[originating]\nfrom = [\"10.0.0.0/33\"]\n");
    let err = parse_str::<IcscfConfig>(&bad, Path::new("i.toml")).unwrap_err();
    assert!(err.to_string().contains("originating"), "{err}");
}

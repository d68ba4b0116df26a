//! The shipped dev configs load, and bad configs name their file and key.

use std::path::{Path, PathBuf};

use ims_config::{
    load, parse_str, AutoWorkers, CloudAuthMode, ConfigError, HssConfig, IcscfConfig, PcscfConfig,
    ScscfConfig, Workers, ZonesSection,
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
    // Dev zones: loopback is core, so an attacker on 127.0.0.9 is not.
    let core: Vec<String> = i.zones.core.iter().map(ToString::to_string).collect();
    assert_eq!(core, ["127.0.0.1/32", "::1/128"]);
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
        "[cx]\nhss = [\"127.0.0.1:3868\"]\ndestination_host = \"h\"\ndestination_realm = \"r\"\norigin_host = \"i\"\norigin_realm = \"r\"\nwatchdog_secs = 1\n";
    let err =
        parse_str::<IcscfConfig>(&format!("{BASE}{sip}{cx}"), Path::new("i.toml")).unwrap_err();
    assert_eq!(err.key(), Some("cx.watchdog_secs"), "{err}");
    // A Tw too large for a clock deadline is refused too.
    let huge = cx.replace("watchdog_secs = 1", "watchdog_secs = 9223372036854775807");
    let err =
        parse_str::<IcscfConfig>(&format!("{BASE}{sip}{huge}"), Path::new("i.toml")).unwrap_err();
    assert_eq!(err.key(), Some("cx.watchdog_secs"), "{err}");
}

#[test]
fn sip_idle_timeout_is_bounded() {
    for bad in ["0", "86401", "9223372036854775807"] {
        let err = parse_pcscf(&format!(
            "[sip]\nudp = [\"127.0.0.1:5060\"]\n[sip.limits]\nidle_timeout_secs = {bad}\n"
        ))
        .unwrap_err();
        assert_eq!(
            err.key(),
            Some("sip.limits.idle_timeout_secs"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn zones_are_empty_by_default_and_name_the_bad_key() {
    let sip = "[sip]\nudp = [\"127.0.0.1:5070\"]\n";
    let cx = "[cx]\nhss = [\"127.0.0.1:3868\"]\ndestination_host = \"h\"\ndestination_realm = \"r\"\norigin_host = \"i\"\norigin_realm = \"r\"\n";
    let base = format!("{BASE}{sip}{cx}");
    let i = parse_str::<IcscfConfig>(&base, Path::new("i.toml")).unwrap();
    assert_eq!(
        i.zones,
        ZonesSection::default(),
        "nothing is core by default"
    );
    let own = format!(
        "{base}[zones]\ncore = [\"10.0.0.0/24\"]\napplication_servers = [\"10.0.2.5/32\"]\n"
    );
    let i = parse_str::<IcscfConfig>(&own, Path::new("i.toml")).unwrap();
    assert_eq!(i.zones.core.len(), 1);
    assert_eq!(i.zones.application_servers.len(), 1);
    let bad = format!("{base}[zones]\ncore = [\"10.0.0.0/33\"]\n");
    let err = parse_str::<IcscfConfig>(&bad, Path::new("i.toml")).unwrap_err();
    assert_eq!(err.key(), Some("zones.core[0]"), "{err}");
    let twice =
        format!("{base}[zones]\ncore = [\"10.0.0.0/24\"]\ninterconnect = [\"10.0.0.0/24\"]\n");
    let err = parse_str::<IcscfConfig>(&twice, Path::new("i.toml")).unwrap_err();
    assert_eq!(err.key(), Some("zones.interconnect[0]"), "{err}");
    let old = format!("{base}[originating]\nfrom = [\"10.0.0.0/24\"]\n");
    assert!(
        parse_str::<IcscfConfig>(&old, Path::new("i.toml")).is_err(),
        "[originating] is gone"
    );
}

#[test]
fn plain_http_off_loopback_needs_tls_or_an_explicit_allowance() {
    let http = |extra: &str| {
        parse_str::<ims_config::HttpSection>(extra, Path::new("http.toml")).map(|h| {
            (
                h.tls.map(|t| t.cert.display().to_string()),
                h.metrics_listen,
                h.allow_plaintext,
            )
        })
    };
    let err = http("listen = \"0.0.0.0:9104\"\n").unwrap_err();
    assert_eq!(err.key(), Some("listen"), "{err}");
    assert!(err.to_string().contains("allow_plaintext"), "{err}");
    let err = http("listen = \"10.0.0.5:9104\"\n").unwrap_err();
    assert_eq!(err.key(), Some("listen"), "{err}");
    // Loopback, TLS, or an explicit allowance are fine.
    assert!(http("listen = \"127.0.0.1:9104\"\n").is_ok());
    assert!(http("listen = \"[::1]:9104\"\n").is_ok());
    assert_eq!(
        http("listen = \"0.0.0.0:9104\"\n[tls]\ncert = \"c.crt\"\nkey = \"k.key\"\n").unwrap(),
        (Some("c.crt".into()), None, false)
    );
    assert_eq!(
        http("listen = \"0.0.0.0:9104\"\nallow_plaintext = true\nmetrics_listen = \"0.0.0.0:9114\"\n")
            .unwrap(),
        (None, Some("0.0.0.0:9114".parse().unwrap()), true)
    );
    let err =
        http("listen = \"127.0.0.1:9104\"\nmetrics_listen = \"127.0.0.1:9104\"\n").unwrap_err();
    assert_eq!(err.key(), Some("metrics_listen"), "{err}");
    let err = http("listen = \"127.0.0.1:9104\"\n[tls]\ncert = \"c.crt\"\n").unwrap_err();
    assert!(err.to_string().contains("key"), "{err}");
}

/// A P-CSCF behind a floating IP: `[sip]` faces UEs with the public address,
/// `[sip.core]` faces the core with the private one.
#[test]
fn a_core_face_loads_with_its_own_listeners_and_advertised_host() {
    let p = parse_pcscf(
        "[sip]\nudp = [\"0.0.0.0:5060\"]\nadvertise = \"203.0.113.7\"\n\
         [sip.core]\nudp = [\"10.0.0.5:5064\"]\ntcp = [\"10.0.0.5:5064\"]\nadvertise = \"10.0.0.5\"\n",
    )
    .unwrap();
    let core = p.sip.core.expect("[sip.core]");
    assert_eq!(core.udp, ["10.0.0.5:5064".parse().unwrap()]);
    assert_eq!(core.advertise.as_deref(), Some("10.0.0.5"));
}

#[test]
fn bad_faces_name_their_key() {
    for (sip, key) in [
        // A wildcard bind says nothing about the address to write in Via.
        ("[sip]\nudp = [\"0.0.0.0:5060\"]\n", "sip.advertise"),
        (
            "[sip]\nudp = [\"10.0.0.5:5060\"]\n[sip.core]\ntcp = [\"[::]:5064\"]\n",
            "sip.core.advertise",
        ),
        // The same socket cannot face both sides.
        (
            "[sip]\nudp = [\"10.0.0.5:5060\"]\n[sip.core]\nudp = [\"10.0.0.5:5060\"]\n",
            "sip.core.udp",
        ),
        (
            "[sip]\nudp = [\"10.0.0.5:5060\"]\n[sip.core]\n",
            "sip.core.udp",
        ),
        (
            "[sip]\nudp = [\"10.0.0.5:5060\"]\n[sip.core]\ntls = [\"10.0.0.5:5065\"]\n",
            "sip.tls_files",
        ),
        (
            "[sip]\nudp = [\"10.0.0.5:5060\"]\n[sip.core]\nport = 1\n",
            "sip.core",
        ),
    ] {
        let err = parse_pcscf(sip).unwrap_err();
        assert!(
            err.key().is_some_and(|k| k.starts_with(key)),
            "{sip}: {err}"
        );
    }
}

#[test]
fn cx_peers_are_a_list_of_host_port() {
    let sip = "[sip]\nudp = [\"127.0.0.1:5070\"]\n";
    let cx = |hss: &str| {
        format!(
            "[cx]\nhss = {hss}\ndestination_host = \"h\"\ndestination_realm = \"r\"\n\
             origin_host = \"i\"\norigin_realm = \"r\"\n"
        )
    };
    let ok = parse_str::<IcscfConfig>(
        &format!(
            "{BASE}{sip}{}",
            cx("[\"hss-a.ims.example.net:3868\", \"10.0.0.9:3868\"]")
        ),
        Path::new("i.toml"),
    )
    .unwrap();
    let hss: Vec<String> = ok.cx.hss.iter().map(|e| e.address().to_string()).collect();
    assert_eq!(hss, ["hss-a.ims.example.net:3868", "10.0.0.9:3868"]);
    for bad in ["[]", "[\"hss.ims.example.net\"]", "\"10.0.0.9:3868\""] {
        let err = parse_str::<IcscfConfig>(&format!("{BASE}{sip}{}", cx(bad)), Path::new("i.toml"))
            .unwrap_err();
        assert!(
            err.key().is_some_and(|k| k.starts_with("cx.hss")),
            "{bad}: {err}"
        );
    }
}

/// The Service-Route and Path name the core's address with a port, even when
/// `advertise` names the host alone.
#[test]
fn the_core_host_port_takes_the_listener_port_when_advertise_has_none() {
    let sip = |s: &str| parse_pcscf(s).unwrap().sip.core_host_port();
    assert_eq!(
        sip("[sip]\nudp = [\"0.0.0.0:5080\"]\nadvertise = \"scscf.ims.example.net\"\n"),
        Some("scscf.ims.example.net:5080".into())
    );
    assert_eq!(
        sip("[sip]\nudp = [\"0.0.0.0:5080\"]\nadvertise = \"10.0.0.7:5090\"\n"),
        Some("10.0.0.7:5090".into())
    );
    assert_eq!(
        sip("[sip]\ntcp = [\"[::]:5080\"]\nadvertise = \"[2001:db8::7]\"\n"),
        Some("[2001:db8::7]:5080".into())
    );
    assert_eq!(
        sip(
            "[sip]\nudp = [\"0.0.0.0:5060\"]\nadvertise = \"203.0.113.7\"\n\
             [sip.core]\nudp = [\"10.0.0.5:5064\"]\nadvertise = \"10.0.0.5\"\n"
        ),
        Some("10.0.0.5:5064".into())
    );
    assert_eq!(sip("[sip]\nudp = [\"10.0.0.5:5060\"]\n"), None);
}

#[test]
fn sip_workers_is_one_by_default_a_count_or_auto() {
    let udp = "[sip]\nudp = [\"127.0.0.1:5060\"]\n";
    let p = parse_pcscf(udp).expect("default");
    assert_eq!(p.sip.workers, Workers::Count(1));
    assert_eq!(p.sip.workers.count(), 1);
    let p = parse_pcscf(&format!("{udp}workers = 3\n")).expect("count");
    assert_eq!(p.sip.workers.count(), 3);
    let p = parse_pcscf(&format!("{udp}workers = \"auto\"\n")).expect("auto");
    assert_eq!(p.sip.workers, Workers::Auto(AutoWorkers::Auto));
    assert!(p.sip.workers.count() >= 1);
    let err = parse_pcscf(&format!("{udp}workers = 0\n")).unwrap_err();
    assert_eq!(err.key(), Some("sip.workers"), "{err}");
    assert!(parse_pcscf(&format!("{udp}workers = \"many\"\n")).is_err());
}

#[test]
fn node_threads_default_to_the_callers_count_or_are_a_count_or_auto() {
    let udp = "[sip]\nudp = [\"127.0.0.1:5060\"]\n";
    let with_threads = |threads: &str| -> Result<PcscfConfig, ConfigError> {
        parse_str(
            &format!(
                "{}[cloud_auth]\nmode = \"off\"\n{udp}",
                BASE.replace(
                    "domain = \"ims.example.net\"\n",
                    &format!("domain = \"ims.example.net\"\nthreads = {threads}\n"),
                )
            ),
            Path::new("bad.toml"),
        )
    };
    // Unset: what the node asks (a SIP node its engine shards).
    let p = parse_pcscf(udp).expect("default");
    assert_eq!(p.node.threads(p.sip.workers.count()), 1);
    assert_eq!(p.node.threads(4), 4);
    assert_eq!(p.node.threads(0), 1);
    let p = with_threads("3").expect("count");
    assert_eq!(p.node.threads(1), 3);
    let p = with_threads("\"auto\"").expect("auto");
    assert_eq!(
        p.node.threads(1),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let err = with_threads("0").unwrap_err();
    assert_eq!(err.key(), Some("node.threads"), "{err}");
    assert!(with_threads("\"many\"").is_err());
}

#[test]
fn sip_shard_ports_is_unset_by_default_a_port_or_refused_at_0() {
    let udp = "[sip]\nudp = [\"127.0.0.1:5060\"]\nworkers = 2\n";
    assert_eq!(parse_pcscf(udp).expect("default").sip.shard_ports, None);
    let p = parse_pcscf(&format!("{udp}shard_ports = 5200\n")).expect("a port");
    assert_eq!(p.sip.shard_ports, Some(5200));
    let err = parse_pcscf(&format!("{udp}shard_ports = 0\n")).unwrap_err();
    assert_eq!(err.key(), Some("sip.shard_ports"), "{err}");
    assert!(parse_pcscf(&format!("{udp}shard_ports = 70000\n")).is_err());
}

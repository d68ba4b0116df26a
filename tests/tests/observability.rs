#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Every node's `/metrics` during a registration and a call through the dev core
//! (`imsctl up`, the real binaries, SIPp UEs): `promtool check metrics` passes on each
//! node's output, and the labelled series move as they should — the 401 of a
//! registration counted as a 401, Diameter answers by command and result code on both
//! ends of Cx, the hop latency histograms, requests by method, and requests rejected by
//! reason (`malformed` at the P-CSCF, `zone` at the S-CSCF for a REGISTER from outside
//! the core). The CSCFs are ready (`/health/ready`, the Cx peer open), the HSS sees its
//! peers open.
//!
//! The second test checks what `deploy/` gives an operator: the alert rules pass
//! `promtool check rules`, and a real Prometheus (Debian's package) scraping the loaded
//! core with `deploy/prometheus/prometheus.yml` evaluates every rule without error and
//! answers every panel query of the Grafana dashboard `deploy/grafana/ims-core.json`
//! with data (Grafana itself is not installed: its queries are what can break).
//!
//! The nodes listen on the fixed dev ports: run these tests alone (nextest test group
//! `e2e`).

use std::net::UdpSocket;
use std::time::Duration;

use ims_e2e::chain::{
    addr, assert_all_passed, provision_digest, start_core, stop_core, Ue, SCSCF_HTTP,
};
use ims_e2e::metrics::{
    finite_values, promtool_available, promtool_check, promtool_check_file, sum, value, Prometheus,
};
use ims_e2e::{http_get, repo_root, wait_for};

/// Each node and where its `/metrics` is served in plain HTTP.
const METRICS: [(&str, u16); 5] = [
    ("pcscf", 9101),
    ("icscf", 9102),
    ("scscf", SCSCF_HTTP),
    ("hss", 9114),
    ("policyd", 9115),
];

/// The S-CSCF's SIP port (UDP).
const SCSCF_SIP: u16 = 5080;

fn scrape(port: u16) -> String {
    http_get(addr(port), "/metrics").unwrap_or_else(|| panic!("no /metrics on {port}"))
}

fn scrape_all() -> Vec<(&'static str, String)> {
    METRICS.iter().map(|(n, p)| (*n, scrape(*p))).collect()
}

fn of<'a>(all: &'a [(&str, String)], node: &str) -> &'a str {
    &all.iter().find(|(n, _)| *n == node).unwrap().1
}

/// The value of `series` in `text`, 0 when not exposed.
fn at(text: &str, series: &str) -> f64 {
    value(text, series).unwrap_or(0.0)
}

/// Asserts `series` of `node` grew by at least `by` between the scrapes.
fn grew(before: &[(&str, String)], after: &[(&str, String)], node: &str, series: &str, by: f64) {
    let (b, a) = (at(of(before, node), series), at(of(after, node), series));
    assert!(
        a - b >= by,
        "{node} {series}: {b} -> {a}, expected +{by}\n{}",
        of(after, node)
    );
}

/// Asserts every node's output passes `promtool check metrics`.
fn promtool_passes(all: &[(&str, String)]) {
    for (node, text) in all {
        if let Err(said) = promtool_check(text) {
            panic!("promtool check metrics on {node}: {said}\n{text}");
        }
    }
}

/// Rejected requests: an unparsable datagram to the P-CSCF, a REGISTER to the S-CSCF
/// from outside the core (127.0.0.9 is in no zone); the S-CSCF's answer to it.
fn rejected_requests() -> String {
    let outsider = UdpSocket::bind("127.0.0.9:0").unwrap();
    outsider
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    outsider
        .send_to(b"NOT SIP AT ALL\r\n\r\n", addr(5060))
        .unwrap();
    let me = outsider.local_addr().unwrap();
    let register = format!(
        "REGISTER sip:ims.example.net SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKobs1;rport\r\n\
         From: <sip:mallory@ims.example.net>;tag=m1\r\nTo: <sip:mallory@ims.example.net>\r\n\
         Call-ID: obs1@attacker\r\nCSeq: 1 REGISTER\r\nMax-Forwards: 70\r\n\
         Contact: <sip:mallory@{me}>\r\nContent-Length: 0\r\n\r\n"
    );
    outsider
        .send_to(register.as_bytes(), addr(SCSCF_SIP))
        .unwrap();
    let mut buf = vec![0u8; 65_535];
    let answer = wait_for(Duration::from_secs(5), || {
        let n = outsider.recv(&mut buf).ok()?;
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        text.contains("obs1@attacker").then_some(text)
    })
    .expect("the S-CSCF answers the outsider's REGISTER");
    answer
}

#[test]
fn every_node_exports_labelled_series_that_move_with_a_registration_and_a_call() {
    assert!(
        promtool_available(),
        "promtool is not installed (Debian package prometheus): run ./scripts/test"
    );
    let (dir, data, core) = start_core("observability", None);
    // The CSCFs are ready once their Cx peer to the HSS is open.
    for (node, port) in [("pcscf", 9101), ("icscf", 9102), ("scscf", SCSCF_HTTP)] {
        let ready = wait_for(Duration::from_secs(15), || {
            http_get(addr(port), "/health/ready").filter(|b| b.contains("\"ready\":true"))
        });
        assert!(
            ready.is_some(),
            "{node} never ready: {:?}",
            http_get(addr(port), "/health")
        );
        let live = http_get(addr(port), "/health/live").unwrap_or_default();
        assert!(live.contains("\"status\":\"ok\""), "{node} live: {live}");
    }
    let ready = http_get(addr(SCSCF_HTTP), "/health/ready").unwrap();
    assert!(ready.contains("\"cx_peer\":true"), "{ready}");
    assert!(ready.contains("\"sip_engine\":true"), "{ready}");

    let before = scrape_all();
    promtool_passes(&before);
    for (node, text) in &before {
        assert!(text.contains("# TYPE"), "{node} exports nothing: {text}");
    }
    assert_eq!(
        value(
            of(&before, "hss"),
            "diameter_peer_open{peer=\"scscf.ims.example.net\"}"
        ),
        Some(1.0),
        "{}",
        of(&before, "hss")
    );
    assert_eq!(
        value(
            of(&before, "scscf"),
            "diameter_peer_open{peer=\"hss.ims.example.net\"}"
        ),
        Some(1.0),
        "{}",
        of(&before, "scscf")
    );

    // A registration each (REGISTER, 401, REGISTER, 200), then a call.
    let names: Vec<String> = ["alice", "bob"].iter().map(|n| n.to_string()).collect();
    provision_digest(&data, &dir, &names, "secret", None);
    let bob = Ue::register(&dir, "bob", "alice");
    let alice = Ue::register(&dir, "alice", "bob");
    let callee = bob.serve(&dir, "session/uas_answer.xml", 1);
    let r = alice.run(&dir, "session/uac_call.xml");
    assert_all_passed(&r, 1);
    assert_all_passed(&callee.finish(), 1);

    // The registrations as gauges (refreshed every second).
    for (node, port, gauge) in [
        ("pcscf", 9101, "pcscf_registered_contacts"),
        ("scscf", SCSCF_HTTP, "scscf_registered_contacts"),
    ] {
        let two = wait_for(Duration::from_secs(5), || {
            (value(&scrape(port), gauge) == Some(2.0)).then_some(())
        });
        assert!(two.is_some(), "{node} {gauge}: {}", scrape(port));
    }
    let answer = rejected_requests();
    assert!(answer.starts_with("SIP/2.0 403"), "{answer}");

    let after = scrape_all();
    promtool_passes(&after);

    // SIP: requests by method, the 401s counted as 401 (by the S-CSCF that challenged
    // and the P-CSCF that relayed them), the final answers of the call.
    for node in ["pcscf", "scscf"] {
        grew(
            &before,
            &after,
            node,
            "sip_responses_out_total{class=\"4xx\",code=\"401\"}",
            2.0,
        );
        grew(
            &before,
            &after,
            node,
            "sip_requests_in_total{method=\"REGISTER\"}",
            4.0,
        );
        grew(
            &before,
            &after,
            node,
            "sip_requests_in_total{method=\"INVITE\"}",
            1.0,
        );
        grew(
            &before,
            &after,
            node,
            "sip_responses_out_total{class=\"2xx\",code=\"200\"}",
            3.0,
        );
        grew(
            &before,
            &after,
            node,
            "sip_request_duration_seconds_count{method=\"REGISTER\"}",
            4.0,
        );
        grew(
            &before,
            &after,
            node,
            "sip_request_duration_seconds_count{method=\"INVITE\"}",
            1.0,
        );
    }
    // The P-CSCF received the 401s from the next hop before relaying them.
    grew(
        &before,
        &after,
        "pcscf",
        "sip_responses_in_total{class=\"4xx\",code=\"401\"}",
        2.0,
    );
    grew(
        &before,
        &after,
        "pcscf",
        "sip_requests_rejected_total{reason=\"malformed\"}",
        1.0,
    );
    grew(
        &before,
        &after,
        "scscf",
        "sip_requests_rejected_total{reason=\"zone\"}",
        1.0,
    );
    grew(
        &before,
        &after,
        "scscf",
        "sip_responses_out_total{class=\"4xx\",code=\"403\"}",
        1.0,
    );
    // The registrar's authentications: each challenged, then answered right.
    for result in ["challenged", "success"] {
        let series =
            format!("scscf_authentications_total{{scheme=\"digest\",result=\"{result}\"}}");
        grew(&before, &after, "scscf", &series, 2.0);
    }

    // Diameter, both ends of Cx: the S-CSCF's MAR and SAR answered with
    // DIAMETER_SUCCESS, the I-CSCF's UARs answered (first registration: 2001) and its
    // LIR for the call; the HSS counts what it sent, by command and result code.
    grew(
        &before,
        &after,
        "scscf",
        "diameter_answers_received_total{command=\"MAR\",result_code=\"2001\"}",
        2.0,
    );
    grew(
        &before,
        &after,
        "scscf",
        "diameter_answers_received_total{command=\"SAR\",result_code=\"2001\"}",
        2.0,
    );
    grew(
        &before,
        &after,
        "scscf",
        "diameter_request_duration_seconds_count{command=\"MAR\"}",
        2.0,
    );
    grew(
        &before,
        &after,
        "icscf",
        "diameter_answers_received_total{command=\"LIR\",result_code=\"2001\"}",
        1.0,
    );
    let uaas = sum(of(&after, "icscf"), "diameter_answers_received_total");
    assert!(uaas >= 3.0, "{}", of(&after, "icscf"));
    grew(
        &before,
        &after,
        "hss",
        "diameter_answers_sent_total{command=\"MAR\",result_code=\"2001\"}",
        2.0,
    );
    grew(
        &before,
        &after,
        "hss",
        "diameter_requests_received_total{command=\"UAR\"}",
        2.0,
    );
    grew(
        &before,
        &after,
        "hss",
        "diameter_answer_duration_seconds_count{command=\"SAR\"}",
        2.0,
    );
    assert!(
        sum(of(&after, "hss"), "hss_cache_lookups_total")
            > sum(of(&before, "hss"), "hss_cache_lookups_total"),
        "{}",
        of(&after, "hss")
    );
    stop_core(core);
}

/// The dashboard's panel queries, from `deploy/grafana/ims-core.json`.
fn panel_queries() -> Vec<(String, String)> {
    let path = repo_root().join("deploy/grafana/ims-core.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(!panels.is_empty());
    panels
        .iter()
        .flat_map(|p| {
            let title = p["title"].as_str().unwrap_or("?").to_string();
            p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |t| (title.clone(), t["expr"].as_str().unwrap().to_string()))
        })
        .collect()
}

#[test]
fn a_real_prometheus_answers_every_dashboard_panel_and_evaluates_the_alert_rules() {
    assert!(
        promtool_available(),
        "promtool is not installed (Debian package prometheus): run ./scripts/test"
    );
    let deploy = repo_root().join("deploy/prometheus");
    let rules = deploy.join("alerts.yml");
    promtool_check_file("rules", &rules).unwrap_or_else(|e| panic!("alerts.yml: {e}"));
    let (dir, data, core) = start_core("dashboard", None);
    // The operator's scrape configuration, scraping every second here.
    let config = std::fs::read_to_string(deploy.join("prometheus.yml"))
        .unwrap()
        .replace("15s", "1s")
        .replace("  - alerts.yml", &format!("  - {}", rules.display()));
    let config_file = dir.join("prometheus.yml");
    std::fs::write(&config_file, config).unwrap();
    promtool_check_file("config", &config_file).unwrap_or_else(|e| panic!("prometheus.yml: {e}"));
    let prometheus = Prometheus::start(&config_file, &dir).expect("prometheus starts");
    let all_up = wait_for(Duration::from_secs(20), || {
        let up = prometheus.query("sum(up)")?;
        (finite_values(&up) == vec![METRICS.len() as f64]).then_some(())
    });
    assert!(
        all_up.is_some(),
        "targets: {:?}",
        prometheus.api("/api/v1/targets", &[])
    );

    // Load: four registrations, ten calls, a MESSAGE exchange's worth of rejections.
    let names: Vec<String> = ["alice", "bob", "carol", "dave"]
        .iter()
        .map(|n| n.to_string())
        .collect();
    provision_digest(&data, &dir, &names, "secret", None);
    let bob = Ue::register(&dir, "bob", "alice");
    let alice = Ue::register(&dir, "alice", "bob");
    Ue::register(&dir, "carol", "dave");
    Ue::register(&dir, "dave", "carol");
    let callee = bob.serve(&dir, "session/uas_answer.xml", 10);
    let r = alice.run_calls(&dir, "session/uac_call.xml", 10);
    assert_all_passed(&r, 10);
    assert_all_passed(&callee.finish(), 10);
    rejected_requests();

    // Every panel's query returns data (a finite value) once the load was scraped.
    for (title, expr) in panel_queries() {
        let answered = wait_for(Duration::from_secs(20), || {
            let data = prometheus.query(&expr)?;
            (!finite_values(&data).is_empty()).then_some(data)
        });
        assert!(
            answered.is_some(),
            "panel {title:?}: no data for {expr}: {:?}",
            prometheus.query(&expr)
        );
    }
    // Every alert rule evaluates without error on the real series.
    let healthy = wait_for(Duration::from_secs(20), || {
        let rules = prometheus.api("/api/v1/rules", &[])?;
        let all: Vec<&serde_json::Value> = rules["groups"]
            .as_array()?
            .iter()
            .flat_map(|g| g["rules"].as_array().into_iter().flatten())
            .collect();
        (all.len() == 7 && all.iter().all(|r| r["health"] == "ok")).then_some(())
    });
    assert!(
        healthy.is_some(),
        "rules: {:?}",
        prometheus.api("/api/v1/rules", &[])
    );
    // With a healthy core, no alert fires.
    let firing = prometheus.query("ALERTS{alertstate=\"firing\"}").unwrap();
    assert_eq!(firing["result"], serde_json::json!([]), "{firing}");
    drop(prometheus);
    stop_core(core);
}

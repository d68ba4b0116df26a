#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Third-party registration in iFC priority order, and after a profile change (TS 24.229
//! §5.4.1.7, TS 29.228 Annex C and §6.1.4; issue #16), through the real binaries
//! started by `imsctl up`: a SIPp UE registers through the P-CSCF, I-CSCF and S-CSCF;
//! two SIPp application servers are named by the user's REGISTER-method iFCs, set
//! through the HSS provisioning API.
//!
//! * Order: the AS of priority 1 answers its REGISTER 1 s late; the AS of priority 2
//!   gets its REGISTER only after that answer left (the S-CSCF sends them one after the
//!   other). Only the order is asserted, on the SIPp message traces' timestamps (one
//!   clock: both run on this machine), never a duration.
//! * SESSION_TERMINATED: the priority-1 AS answers 500; the priority-2 AS never gets
//!   the registration's REGISTER, only the de-REGISTER of the de-registration that
//!   follows, after the priority-1 AS got its own.
//! * PPR: the HSS API taking the priority-1 AS's iFC out of the registered user's
//!   profile makes the HSS send a PPR; the S-CSCF then sends that AS a de-REGISTER
//!   (Expires 0); the AS still named gets the UE's de-registration later.
//!
//! The nodes listen on the fixed dev ports: run it alone (`cargo nextest run -p ims-e2e
//! --test third_party_register_order`).

use std::path::Path;

use ims_e2e::chain::{
    addr, assert_all_passed, provision_digest, start_core, stop_core, workdir, Ue,
};
use ims_e2e::free_port;
use ims_e2e::hss_api::set_ifcs;
use ims_e2e::sipp::{scenario, Background, SippResult};
use serde_json::{json, Value};

const ALICE: &str = "sip:alice@ims.example.net";

/// iFCs asking for third-party REGISTERs of every kind, one per (priority, AS port),
/// SESSION_CONTINUED, no body.
fn register_ifcs(servers: &[(i64, u16)]) -> Value {
    let servers: Vec<(i64, u16, &str)> = servers
        .iter()
        .map(|(priority, port)| (*priority, *port, "SESSION_CONTINUED"))
        .collect();
    register_ifcs_handled(&servers)
}

/// [`register_ifcs`] with each iFC's DefaultHandling: (priority, AS port, handling).
fn register_ifcs_handled(servers: &[(i64, u16, &str)]) -> Value {
    let ifcs: Vec<Value> = servers
        .iter()
        .map(|(priority, port, handling)| {
            json!({
                "priority": priority,
                "trigger_point": {"condition_type_cnf": true, "spts": [
                    {"group": 0, "type": "method", "method": "REGISTER"}]},
                "application_server": {
                    "server_name": format!("sip:127.0.0.1:{port}"),
                    "default_handling": handling
                }
            })
        })
        .collect();
    Value::Array(ifcs)
}

/// A SIPp AS on `port` answering `calls` REGISTERs with `scenario_file`, traced in a
/// work directory of its own (its trace apart from the other AS's).
fn traced_as(dir: &Path, scenario_file: &str, port: u16, calls: u32) -> Background {
    Background::uas(
        &scenario(scenario_file),
        addr(port),
        calls,
        30,
        &workdir(dir),
        true,
    )
    .expect("SIPp AS starts")
}

/// One message of a SIPp trace (`-trace_msg`).
#[derive(Debug)]
struct Traced<'a> {
    /// SIPp's timestamp, `YYYY-MM-DD HH:MM:SS.uuuuuu` (fixed width: ordered as text).
    at: &'a str,
    /// Received (else sent).
    received: bool,
    /// The message.
    text: &'a str,
}

/// The messages of `r`'s trace, in the order SIPp logged them.
fn trace(r: &SippResult) -> Vec<Traced<'_>> {
    r.messages
        .split("----------------------------------------------- ")
        .filter_map(|entry| {
            let (at, rest) = entry.split_once('\n')?;
            let (what, text) = rest.split_once("\n\n")?;
            Some(Traced {
                at: at.trim(),
                received: what.contains("message received"),
                text: text.trim_start(),
            })
        })
        .collect()
}

/// The REGISTERs received, first transmissions only (a retransmission repeats the
/// Call-ID of the one before it).
fn registers_received<'a>(t: &'a [Traced<'a>]) -> Vec<&'a Traced<'a>> {
    let mut out: Vec<&Traced> = Vec::new();
    for m in t
        .iter()
        .filter(|m| m.received && m.text.starts_with("REGISTER "))
    {
        if out
            .last()
            .is_none_or(|p| header(p.text, "Call-ID") != header(m.text, "Call-ID"))
        {
            out.push(m);
        }
    }
    out
}

/// The value of header `name` in `msg`.
fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    let prefix = format!("{name}:");
    msg.lines()
        .find(|l| l.len() > prefix.len() && l[..prefix.len()].eq_ignore_ascii_case(&prefix))
        .map(|l| l[prefix.len()..].trim())
}

#[test]
fn the_priority_2_as_gets_its_register_only_after_the_priority_1_as_answered() {
    let (dir, data, core) = start_core("3pty-order", None);
    provision_digest(&data, &dir, &["alice".to_string()], "secret", None);
    let (as1_port, as2_port) = (free_port(), free_port());
    // Listed priority 2 first: the S-CSCF goes by priority, not by document order.
    set_ifcs(&data, ALICE, register_ifcs(&[(2, as2_port), (1, as1_port)]));
    let as1 = traced_as(&dir, "thirdparty/as_register_200_after_1s.xml", as1_port, 1);
    let as2 = traced_as(&dir, "thirdparty/as_register_200.xml", as2_port, 1);

    let _alice = Ue::register_with(&dir, "alice", "alice;600", "regevent/register.xml");
    let (r1, r2) = (as1.finish(), as2.finish());
    assert_all_passed(&r1, 1);
    assert_all_passed(&r2, 1);

    let (t1, t2) = (trace(&r1), trace(&r2));
    let answered = t1
        .iter()
        .find(|m| !m.received && m.text.starts_with("SIP/2.0 200"))
        .unwrap_or_else(|| panic!("AS1 answered: {}", r1.messages));
    let got = registers_received(&t2);
    assert_eq!(got.len(), 1, "{}", r2.messages);
    assert!(
        got[0].at > answered.at,
        "AS2's REGISTER ({}) came after AS1's 200 left ({})",
        got[0].at,
        answered.at
    );
    stop_core(core);
}

#[test]
fn a_ppr_dropping_an_as_register_ifc_sends_that_as_a_deregister() {
    let (dir, data, core) = start_core("3pty-ppr", None);
    provision_digest(&data, &dir, &["alice".to_string()], "secret", None);
    let (as1_port, as2_port) = (free_port(), free_port());
    set_ifcs(&data, ALICE, register_ifcs(&[(1, as1_port), (2, as2_port)]));
    // AS1: the registration, then the de-REGISTER of the PPR. AS2: the registration,
    // then the UE's de-registration.
    let as1 = traced_as(&dir, "thirdparty/as_register_200.xml", as1_port, 2);
    let as2 = traced_as(&dir, "thirdparty/as_register_200.xml", as2_port, 2);

    let alice = Ue::register_with(&dir, "alice", "alice;600", "regevent/register.xml");
    // The HSS API changes the registered user's profile: PPR to the S-CSCF.
    set_ifcs(&data, ALICE, register_ifcs(&[(2, as2_port)]));
    let r1 = as1.finish();
    assert_all_passed(&r1, 2);
    assert_all_passed(&alice.run(&dir, "regevent/deregister.xml"), 1);
    let r2 = as2.finish();
    assert_all_passed(&r2, 2);

    let t1 = trace(&r1);
    let got1 = registers_received(&t1);
    assert_eq!(got1.len(), 2, "{}", r1.messages);
    assert_ne!(
        header(got1[0].text, "Expires"),
        Some("0"),
        "{}",
        got1[0].text
    );
    assert_eq!(
        header(got1[1].text, "Expires"),
        Some("0"),
        "{}",
        got1[1].text
    );
    assert_eq!(
        header(got1[1].text, "To"),
        Some(format!("<{ALICE}>").as_str())
    );
    let t2 = trace(&r2);
    let got2 = registers_received(&t2);
    assert_eq!(got2.len(), 2, "{}", r2.messages);
    // AS2 keeps its iFC: the registration, then the UE's de-registration.
    assert_ne!(header(got2[0].text, "Expires"), Some("0"));
    assert_eq!(header(got2[1].text, "Expires"), Some("0"));
    stop_core(core);
}

#[test]
fn a_session_terminated_failure_stops_the_chain_before_the_next_as() {
    let (dir, data, core) = start_core("3pty-stop", None);
    provision_digest(&data, &dir, &["alice".to_string()], "secret", None);
    let (as1_port, as2_port) = (free_port(), free_port());
    set_ifcs(
        &data,
        ALICE,
        register_ifcs_handled(&[
            (1, as1_port, "SESSION_TERMINATED"),
            (2, as2_port, "SESSION_CONTINUED"),
        ]),
    );
    // AS1: the registration (500), then the network de-registration's de-REGISTER.
    // AS2: one REGISTER only.
    let as1 = traced_as(&dir, "thirdparty/as_register_500.xml", as1_port, 2);
    let as2 = traced_as(&dir, "thirdparty/as_register_200.xml", as2_port, 1);

    let _alice = Ue::register_with(&dir, "alice", "alice;600", "regevent/register.xml");
    let (r1, r2) = (as1.finish(), as2.finish());
    assert_all_passed(&r1, 2);
    assert_all_passed(&r2, 1);

    let t1 = trace(&r1);
    let got1 = registers_received(&t1);
    assert_eq!(got1.len(), 2, "{}", r1.messages);
    assert_ne!(header(got1[0].text, "Expires"), Some("0"));
    assert_eq!(header(got1[1].text, "Expires"), Some("0"));
    let t2 = trace(&r2);
    let got2 = registers_received(&t2);
    assert_eq!(got2.len(), 1, "{}", r2.messages);
    assert_eq!(
        header(got2[0].text, "Expires"),
        Some("0"),
        "AS2 hears only of the de-registration: {}",
        got2[0].text
    );
    // The de-REGISTERs in priority order too: AS2's after AS1 answered its own.
    let answered = t1
        .iter()
        .filter(|m| !m.received && m.text.starts_with("SIP/2.0 500"))
        .nth(1)
        .unwrap_or_else(|| panic!("AS1 answered twice: {}", r1.messages));
    assert!(got2[0].at > answered.at);
    stop_core(core);
}

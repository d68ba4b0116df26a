#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Third-party registration (TS 24.229 §5.4.1.7, TS 29.228 Annex B/C; issue #16 item 3)
//! through the real binaries started by `imsctl up`: a SIPp UE registers through the
//! P-CSCF, I-CSCF and S-CSCF; the user's REGISTER-method iFCs, set through the HSS
//! provisioning API, name SIPp application servers (`sipp-scenarios/thirdparty/`).
//!
//! * The AS receives a REGISTER from the S-CSCF for the initial registration, the
//!   re-registration and the de-registration (Expires 0), with From and Contact the
//!   S-CSCF, To the user, and a `multipart/mixed` body holding the iFC's ServiceInfo
//!   and the UE's REGISTER and the S-CSCF's 200 as `message/sip`.
//! * An AS answering 500 with DefaultHandling SESSION_TERMINATED de-registers the user
//!   (the S-CSCF holds no registration for it afterwards); with SESSION_CONTINUED the
//!   user stays registered.
//!
//! The nodes listen on the fixed dev ports: run it alone (`cargo nextest run -p ims-e2e
//! --test third_party_register`).

use std::path::Path;
use std::time::{Duration, Instant};

use ims_e2e::chain::{assert_all_passed, imsctl, provision_digest, start_core, stop_core, Ue};
use ims_e2e::free_port;
use ims_e2e::hss_api::{self, set_ifcs};
use ims_e2e::third_party::{application_server, header, registers};
use serde_json::{json, Value};

const ALICE: &str = "sip:alice@ims.example.net";

/// A REGISTER-method iFC of `priority` naming the AS `sip:127.0.0.1:<port>`, asking
/// for `service_info` and the UE's REGISTER and 200 in the body.
fn register_ifc(priority: i64, port: u16, default_handling: &str, service_info: &str) -> Value {
    let mut ifc = hss_api::register_ifc(priority, port, default_handling);
    let server = &mut ifc["application_server"];
    server["service_info"] = json!(service_info);
    server["include_register_request"] = json!(true);
    server["include_register_response"] = json!(true);
    ifc
}

/// Whether the S-CSCF holds a registration for `impu` (`imsctl registrations`).
fn registered(data: &Path, impu: &str) -> bool {
    let out = imsctl(data, &["registrations", impu]);
    if !out.status.success() {
        return false;
    }
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    shown["registration"]["contacts"]
        .as_array()
        .is_some_and(|c| !c.is_empty())
}

/// Waits (at most 10 s) until `registered(data, impu)` is `want`.
fn wait_registered(data: &Path, impu: &str, want: bool) -> bool {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if registered(data, impu) == want {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

#[test]
fn the_application_server_gets_third_party_registers_with_the_asked_bodies() {
    let name = "3pty-register";
    let (dir, data, core) = start_core(name, None);
    provision_digest(&data, &dir, &["alice".to_string()], "secret", None);
    let as_port = free_port();
    set_ifcs(
        &data,
        ALICE,
        json!([register_ifc(
            10,
            as_port,
            "SESSION_CONTINUED",
            "svc-alice<1>"
        )]),
    );
    let app = application_server(&dir, "thirdparty/as_register_200.xml", as_port, 3);

    let alice = Ue::register_with(&dir, "alice", "alice;600", "regevent/register.xml");
    assert_all_passed(&alice.run(&dir, "regevent/register.xml"), 1);
    assert_all_passed(&alice.run(&dir, "regevent/deregister.xml"), 1);
    let r = app.finish();
    assert_all_passed(&r, 3);
    let got = registers(&r);
    assert_eq!(got.len(), 3, "{}", r.messages);

    for (i, m) in got.iter().enumerate() {
        assert!(
            m.contains(&format!("REGISTER sip:127.0.0.1:{as_port} SIP/2.0")),
            "{m}"
        );
        assert_eq!(header(m, "To"), Some(format!("<{ALICE}>").as_str()), "{m}");
        let from = header(m, "From").unwrap();
        assert!(from.starts_with("<sip:") && from.contains(";tag="), "{m}");
        assert!(!from.contains("alice"), "From is the S-CSCF: {m}");
        assert_eq!(
            header(m, "Contact"),
            Some(&from[..from.find(';').unwrap()]),
            "{m}"
        );
        let expires: u64 = header(m, "Expires").unwrap().parse().unwrap();
        if i < 2 {
            assert!((500..=600).contains(&expires), "registration {i}: {m}");
        } else {
            assert_eq!(expires, 0, "de-registration: {m}");
        }
        // ServiceInfo, the UE's REGISTER and our 200: three parts.
        let ct = header(m, "Content-Type").unwrap();
        assert!(ct.starts_with("multipart/mixed;boundary="), "{m}");
        assert!(m.contains("Content-Type: application/3gpp-ims+xml"), "{m}");
        assert!(
            m.contains("<service-info>svc-alice&lt;1&gt;</service-info>"),
            "{m}"
        );
        assert_eq!(m.matches("Content-Type: message/sip").count(), 2, "{m}");
        assert!(m.contains("REGISTER sip:ims.example.net SIP/2.0"), "{m}");
        assert!(m.contains("SIP/2.0 200 OK"), "{m}");
    }
    stop_core(core);
}

#[test]
fn a_failing_application_server_deregisters_the_user_only_with_session_terminated() {
    let name = "3pty-default-handling";
    let (dir, data, core) = start_core(name, None);
    provision_digest(&data, &dir, &["alice".to_string()], "secret", None);

    // SESSION_CONTINUED: the 500 is ignored, alice stays registered. The AS gets her
    // registration and then her de-registration.
    let port = free_port();
    set_ifcs(
        &data,
        ALICE,
        json!([register_ifc(10, port, "SESSION_CONTINUED", "x")]),
    );
    let app = application_server(&dir, "thirdparty/as_register_500.xml", port, 2);
    let alice = Ue::register_with(&dir, "alice", "alice;600", "regevent/register.xml");
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        registered(&data, ALICE),
        "SESSION_CONTINUED keeps the registration"
    );
    assert_all_passed(&alice.run(&dir, "regevent/deregister.xml"), 1);
    assert_all_passed(&app.finish(), 2);

    // SESSION_TERMINATED: the 500 to her next (initial) registration de-registers her;
    // the AS then gets the de-REGISTER of that network-initiated de-registration.
    let port = free_port();
    set_ifcs(
        &data,
        ALICE,
        json!([register_ifc(10, port, "SESSION_TERMINATED", "x")]),
    );
    let app = application_server(&dir, "thirdparty/as_register_500.xml", port, 2);
    assert_all_passed(&alice.run(&dir, "regevent/register.xml"), 1);
    let r = app.finish();
    assert_all_passed(&r, 2);
    assert!(
        wait_registered(&data, ALICE, false),
        "SESSION_TERMINATED de-registers the user"
    );
    stop_core(core);
}

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Per-kind third-party registration (TS 29.228 Annex B.2.2 `RegistrationType`, Annex C;
//! TS 24.229 §5.4.1.7; issue #16) through the real binaries started by `imsctl up`: the
//! HSS provisioning API stores a REGISTER-method iFC's RegistrationType, the HSS writes
//! it into the User-Data of the SAA, and the S-CSCF sends the third-party REGISTER only
//! for the kinds of registration listed.
//!
//! * AS 1's iFC lists INITIAL_REGISTRATION and DE_REGISTRATION: it receives the
//!   REGISTER of alice's initial registration and of her de-registration (Expires 0),
//!   and none for her re-registration.
//! * AS 2's iFC lists RE_REGISTRATION (it starts listening after the initial
//!   registration): it receives exactly the re-registration's REGISTER, showing that
//!   the re-registration did reach the S-CSCF's third-party registration.
//!
//! The nodes listen on the fixed dev ports: run it alone (`cargo nextest run -p ims-e2e
//! --test third_party_register_types`).

use std::time::Duration;

use ims_e2e::chain::{assert_all_passed, provision_digest, start_core, stop_core, Ue};
use ims_e2e::free_port;
use ims_e2e::hss_api::{hss_api, set_ifcs};
use ims_e2e::third_party::{application_server, expiries, register_ifc};
use serde_json::json;

const ALICE: &str = "sip:alice@ims.example.net";

#[test]
fn registration_types_choose_which_registrations_reach_the_application_server() {
    let name = "3pty-register-types";
    let (dir, data, core) = start_core(name, None);
    provision_digest(&data, &dir, &["alice".to_string()], "secret", None);
    let (initial_and_de, re_only) = (free_port(), free_port());
    set_ifcs(
        &data,
        ALICE,
        json!([
            register_ifc(
                10,
                initial_and_de,
                &["INITIAL_REGISTRATION", "DE_REGISTRATION"]
            ),
            register_ifc(20, re_only, &["RE_REGISTRATION"]),
        ]),
    );
    // The HSS API shows what it stored.
    let (status, found) = hss_api(
        &data,
        reqwest::Method::GET,
        &format!("/api/v1/subscribers?impu={}", ALICE.replace(':', "%3A")),
        None,
    );
    assert_eq!(status, 200, "{found}");
    let ifcs = &found["items"][0]["service_profiles"][0]["ifcs"];
    assert_eq!(
        ifcs[0]["trigger_point"]["spts"][0]["registration_type"],
        json!(["INITIAL_REGISTRATION", "DE_REGISTRATION"]),
        "{found}"
    );

    let as1 = application_server(&dir, "thirdparty/as_register_200.xml", initial_and_de, 2);
    let alice = Ue::register_with(&dir, "alice", "alice;600", "regevent/register.xml");
    let as2 = application_server(&dir, "thirdparty/as_register_200.xml", re_only, 1);
    assert_all_passed(&alice.run(&dir, "regevent/register.xml"), 1);
    let r2 = as2.finish();
    assert_all_passed(&r2, 1);
    let got = expiries(&r2);
    assert_eq!(got.len(), 1, "{}", r2.messages);
    assert!((500..=600).contains(&got[0]), "re-registration: {got:?}");
    // Any third-party REGISTER of the re-registration to AS 1 left with AS 2's (same
    // iFC walk); give it time to arrive before the de-registration.
    std::thread::sleep(Duration::from_secs(1));
    assert_all_passed(&alice.run(&dir, "regevent/deregister.xml"), 1);
    let r1 = as1.finish();
    assert_all_passed(&r1, 2);
    let got = expiries(&r1);
    assert_eq!(got.len(), 2, "{}", r1.messages);
    assert!(
        (500..=600).contains(&got[0]),
        "initial registration: {got:?}"
    );
    assert_eq!(
        got[1], 0,
        "the de-registration, not the re-registration, is AS 1's second REGISTER: {}",
        r1.messages
    );
    stop_core(core);
}

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

use std::path::{Path, PathBuf};

use ims_e2e::chain::{
    addr, assert_all_passed, provision_digest, start_core, stop_core, workdir, Ue,
};
use ims_e2e::hss_api::{register_ifc, set_ifcs};
use ims_e2e::sipp::{scenario, Background, SippResult};
use ims_e2e::third_party::header;
use ims_e2e::{free_port, DevCore};
use serde_json::Value;

const ALICE: &str = "sip:alice@ims.example.net";
const CONTINUED: &str = "SESSION_CONTINUED";

/// The iFCs of [`register_ifc`], one per (priority, AS port, DefaultHandling).
fn register_ifcs(servers: &[(i64, u16, &str)]) -> Value {
    Value::Array(
        servers
            .iter()
            .map(|(priority, port, handling)| register_ifc(*priority, *port, handling))
            .collect(),
    )
}

/// The core started in a scratch directory named for `name`, alice provisioned, and
/// two free ports for the ASs: (scratch directory, data directory, core, AS1, AS2).
fn core_and_two_ases(name: &str) -> (PathBuf, PathBuf, DevCore, u16, u16) {
    let (dir, data, core) = start_core(name, None);
    provision_digest(&data, &dir, &["alice".to_string()], "secret", None);
    (dir, data, core, free_port(), free_port())
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

/// What an AS's SIPp trace (`-trace_msg`) shows, timestamps as SIPp wrote them
/// (`YYYY-MM-DD HH:MM:SS.uuuuuu`: fixed width, so ordered as text).
#[derive(Debug, Default)]
struct Seen {
    /// The REGISTERs received, first transmissions only (a retransmission repeats the
    /// Call-ID of the one before it): when, and whether it de-registers (Expires 0).
    registers: Vec<(String, bool)>,
    /// When each final response left.
    answers: Vec<String>,
}

impl Seen {
    fn of(r: &SippResult) -> Seen {
        let mut seen = Seen::default();
        let mut last_call_id = None;
        for entry in r
            .messages
            .split("----------------------------------------------- ")
        {
            let Some((at, rest)) = entry.split_once('\n') else {
                continue;
            };
            let Some((what, text)) = rest.split_once("\n\n") else {
                continue;
            };
            let (at, text) = (at.trim().to_string(), text.trim_start());
            if what.contains("message sent") && text.starts_with("SIP/2.0 ") {
                seen.answers.push(at);
            } else if what.contains("message received") && text.starts_with("REGISTER ") {
                let call_id = header(text, "Call-ID");
                if call_id != last_call_id {
                    seen.registers
                        .push((at, header(text, "Expires") == Some("0")));
                    last_call_id = call_id;
                }
            }
        }
        seen
    }

    /// "register" or "de-register" for each REGISTER, in order.
    fn kinds(&self) -> Vec<&'static str> {
        let kind = |de: bool| if de { "de-register" } else { "register" };
        self.registers.iter().map(|(_, de)| kind(*de)).collect()
    }
}

/// An AS to start: its scenario (under `sipp-scenarios/`), port and calls.
type AsRun<'a> = (&'a str, u16, u32);

/// Starts the two ASs, then registers alice through the core.
fn ases_then_alice(dir: &Path, as1: AsRun, as2: AsRun) -> (Background, Background, Ue) {
    let start = |(file, port, calls): AsRun| traced_as(dir, file, port, calls);
    let (b1, b2) = (start(as1), start(as2));
    let alice = Ue::register_with(dir, "alice", "alice;600", "regevent/register.xml");
    (b1, b2, alice)
}

/// Waits for an AS's run to end; asserts its `calls` passed and reports what it saw.
fn finished(run: Background, calls: usize) -> Seen {
    let r = run.finish();
    assert_all_passed(&r, calls);
    let seen = Seen::of(&r);
    assert_eq!(seen.registers.len(), calls, "{}", r.messages);
    seen
}

#[test]
fn the_priority_2_as_gets_its_register_only_after_the_priority_1_as_answered() {
    let (dir, data, core, as1_port, as2_port) = core_and_two_ases("3pty-order");
    // Listed priority 2 first: the S-CSCF goes by priority, not by document order.
    let ifcs = [(2, as2_port, CONTINUED), (1, as1_port, CONTINUED)];
    set_ifcs(&data, ALICE, register_ifcs(&ifcs));
    let slow = "thirdparty/as_register_200_after_1s.xml";
    let (as1, as2, _alice) = ases_then_alice(
        &dir,
        (slow, as1_port, 1),
        ("thirdparty/as_register_200.xml", as2_port, 1),
    );
    let (seen1, seen2) = (finished(as1, 1), finished(as2, 1));
    let (got, answered) = (&seen2.registers[0].0, &seen1.answers[0]);
    assert!(
        got > answered,
        "AS2's REGISTER ({got}) must come after AS1's 200 left ({answered})"
    );
    stop_core(core);
}

#[test]
fn a_ppr_dropping_an_as_register_ifc_sends_that_as_a_deregister() {
    let (dir, data, core, as1_port, as2_port) = core_and_two_ases("3pty-ppr");
    let ifcs = [(1, as1_port, CONTINUED), (2, as2_port, CONTINUED)];
    set_ifcs(&data, ALICE, register_ifcs(&ifcs));
    // AS1: the registration, then the de-REGISTER of the PPR. AS2: the registration,
    // then the UE's de-registration.
    let ok = "thirdparty/as_register_200.xml";
    let (as1, as2, alice) = ases_then_alice(&dir, (ok, as1_port, 2), (ok, as2_port, 2));
    // The HSS API changes the registered user's profile: PPR to the S-CSCF.
    set_ifcs(&data, ALICE, register_ifcs(&[(2, as2_port, CONTINUED)]));
    let seen1 = finished(as1, 2);
    assert_eq!(seen1.kinds(), ["register", "de-register"]);
    assert_all_passed(&alice.run(&dir, "regevent/deregister.xml"), 1);
    // AS2 keeps its iFC: the registration, then the UE's de-registration.
    assert_eq!(finished(as2, 2).kinds(), ["register", "de-register"]);
    stop_core(core);
}

#[test]
fn a_session_terminated_failure_stops_the_chain_before_the_next_as() {
    let (dir, data, core, as1_port, as2_port) = core_and_two_ases("3pty-stop");
    let ifcs = [
        (1, as1_port, "SESSION_TERMINATED"),
        (2, as2_port, CONTINUED),
    ];
    set_ifcs(&data, ALICE, register_ifcs(&ifcs));
    // AS1: the registration (500), then the network de-registration's de-REGISTER.
    // AS2: one REGISTER only.
    let (as1, as2, _alice) = ases_then_alice(
        &dir,
        ("thirdparty/as_register_500.xml", as1_port, 2),
        ("thirdparty/as_register_200.xml", as2_port, 1),
    );
    let (seen1, seen2) = (finished(as1, 2), finished(as2, 1));
    assert_eq!(seen1.kinds(), ["register", "de-register"]);
    assert_eq!(
        seen2.kinds(),
        ["de-register"],
        "AS2 hears only of the de-registration"
    );
    // The de-REGISTERs in priority order too: AS2's after AS1 answered its own.
    assert!(seen2.registers[0].0 > seen1.answers[1]);
    stop_core(core);
}

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Two P-CSCFs of one core, and one of them killed (issue 15 item 6; `docs/dns.md`, "Load
//! sharing at the edge"), in a bed of network namespaces on one bridge (10.215.0.0/24):
//! P-CSCF 1 (.11), the I-CSCF (.12), the S-CSCF (.13), the HSS (.14), P-CSCF 2 (.21) and
//! the UEs' host (.20).
//! The configs are `imsctl config init`'s with `--pcscf` twice (`pcscf1.toml`,
//! `pcscf2.toml`; one S-CSCF and one HSS on SQLite), checked by `imsctl config check`.
//!
//! Shown, with SIPp UEs over UDP on the UE host:
//!
//! 1. callers and callees of P-CSCF 1 register through it, callees of P-CSCF 2 through
//!    P-CSCF 2; every caller of P-CSCF 1 calls a callee of P-CSCF 2, and each callee of
//!    P-CSCF 2 calls a caller of P-CSCF 1;
//! 2. P-CSCF 2 gets SIGKILL; the UEs of P-CSCF 1 re-register and call each other: all
//!    succeed;
//! 3. a call to a callee of the dead P-CSCF 2 (still registered through it at the
//!    S-CSCF; its UE still listening and answering) ends with an error at the caller
//!    rather than hanging: the S-CSCF's INVITE to P-CSCF 2's address gets no answer,
//!    so after Timer B (64*T1 = 32 s) the caller gets `408 Request Timeout`, which it
//!    ACKs (`session/uac_call_as_failed.xml`). Not quick: failing at once (on the ICMP
//!    port unreachable of P-CSCF 2's host, say) is left to do;
//! 4. the callees of P-CSCF 2 register through P-CSCF 1 (as a UE does after its SRV
//!    failover) and receive calls again.
//!
//! Needs root, `ip`, `nft` and SIPp; like `deployment_netns.rs`, skipped without network
//! namespaces unless `IMS_TEST_NETNS=1`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ims_e2e::chain::{
    assert_all_passed, provision_digest_in, sipp_pairs_csv, users, workdir, DOMAIN,
};
use ims_e2e::netns::{self, Bed};
use ims_e2e::sipp::{self, SippResult, SippTransport};
use ims_e2e::{command, scratch_dir};

const UE_HOST: &str = "10.215.0.20";
/// UEs of each group.
const USERS: usize = 5;

/// The bed's namespaces (named for the node's config, `<name>.toml`) and addresses.
const HOSTS: [(&str, &str); 6] = [
    ("pcscf1", "10.215.0.11"),
    ("icscf", "10.215.0.12"),
    ("scscf", "10.215.0.13"),
    ("hss", "10.215.0.14"),
    ("pcscf2", "10.215.0.21"),
    ("ue", UE_HOST),
];

/// The UEs' ports: callers and callees of P-CSCF 1, callees of P-CSCF 2.
const CALLERS_PORT: u16 = 5100;
const CALLEES1_PORT: u16 = 5200;
const CALLEES2_PORT: u16 = 5300;

fn address(name: &str) -> &'static str {
    netns::address_of(&HOSTS, name)
}

/// Skips (`None`) without network namespaces or SIPp, unless `IMS_TEST_NETNS=1`.
fn gate() -> Option<()> {
    let missing = match (netns::available(), sipp::available()) {
        (Ok(()), true) => return Some(()),
        (Err(e), _) => format!("network namespaces with nftables: {e}"),
        (_, false) => "sipp".into(),
    };
    assert!(
        std::env::var("IMS_TEST_NETNS").as_deref() != Ok("1"),
        "IMS_TEST_NETNS=1 but this is missing: {missing}"
    );
    eprintln!("skipped: needs {missing}");
    None
}

/// `imsctl config init` with two P-CSCFs for the bed, checked by `imsctl config check`.
fn generate(dir: &Path) -> PathBuf {
    let core = dir.join("core");
    let core_s = core.to_str().unwrap();
    let node = |role: &str, ns: &str| format!("--{role}={}", address(ns));
    for args in [
        vec![
            "config".to_string(),
            "init".into(),
            "--domain".into(),
            DOMAIN.into(),
            node("pcscf", "pcscf1"),
            node("pcscf", "pcscf2"),
            node("icscf", "icscf"),
            node("scscf", "scscf"),
            node("hss", "hss"),
            "--paths-base".into(),
            core_s.into(),
            "--out".into(),
            core_s.into(),
        ],
        vec![
            "config".into(),
            "check".into(),
            core_s.into(),
            "--paths-base".into(),
            core_s.into(),
        ],
    ] {
        let out = command("imsctl").args(&args).output().unwrap();
        assert!(out.status.success(), "imsctl {args:?}: {out:?}");
    }
    core
}

/// Starts node `role` with config `<ns>.toml` in namespace `ns` ([`Bed::start_node`]).
fn start(bed: &mut Bed, dir: &Path, core: &Path, role: &str, ns: &str) -> usize {
    bed.start_node(dir, core, role, ns, address(ns).parse().unwrap())
}

/// Runs `scenario` once per line of `csv` (`USERS` lines) from the UE host's `local`
/// port toward P-CSCF `pcscf`, bounded by `timeout_secs`.
fn uac(
    dir: &Path,
    pcscf: &str,
    scenario: &str,
    csv: &Path,
    local: u16,
    timeout_secs: u32,
) -> SippResult {
    let calls = u32::try_from(USERS).unwrap();
    sipp::run_uac_inf(
        &sipp::scenario(scenario),
        netns::sock(address(pcscf), 5060),
        None,
        Some(csv),
        netns::sock(UE_HOST, local),
        SippTransport::Udp,
        calls,
        10,
        timeout_secs,
        &workdir(dir),
    )
    .expect("sipp runs")
}

/// Callees on the UE host's `local` port answering `USERS` calls.
fn answer_calls(dir: &Path, local: u16) -> sipp::Background {
    sipp::Background::uas(
        &sipp::scenario("session/uas_answer.xml"),
        netns::sock(UE_HOST, local),
        u32::try_from(USERS).unwrap(),
        30,
        &workdir(dir),
        false,
    )
    .expect("sipp UAS starts")
}

/// Every user of `csv` calls its peer from port `from` through P-CSCF `pcscf`, answered
/// on port `to`: all succeed.
fn calls_succeed(dir: &Path, pcscf: &str, csv: &Path, from: u16, to: u16) {
    let uas = answer_calls(dir, to);
    let calls = uac(dir, pcscf, "session/uac_call.xml", csv, from, 30);
    assert_all_passed(&calls, USERS);
    assert_all_passed(&uas.finish(), USERS);
}

#[test]
fn ues_of_one_p_cscf_keep_working_when_another_p_cscf_of_the_core_dies() {
    let Some(()) = gate() else {
        return;
    };
    let dir = scratch_dir("pcscf-pool");
    let core = generate(&dir);
    let mut bed = Bed::new(&format!("edge{}", std::process::id())).unwrap();
    bed.bridge("core").unwrap();
    for (name, addr) in HOSTS {
        bed.add(name).unwrap();
        bed.attach(name, "eth0", "core", &format!("{addr}/24"))
            .unwrap_or_else(|e| panic!("building the bed: {e}"));
    }
    start(&mut bed, &dir, &core, "hss", "hss");
    start(&mut bed, &dir, &core, "scscf", "scscf");
    start(&mut bed, &dir, &core, "icscf", "icscf");
    start(&mut bed, &dir, &core, "pcscf", "pcscf1");
    let pcscf2 = start(&mut bed, &dir, &core, "pcscf", "pcscf2");

    let callers = users("caller", USERS);
    let callees1 = users("calleeone", USERS);
    let callees2 = users("calleetwo", USERS);
    let all: Vec<String> = [&callers, &callees1, &callees2]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    provision_digest_in(&bed, "ue", &core, &dir, &all);
    let to_callees1 = sipp_pairs_csv(&dir, "to1.csv", &callers, &callees1);
    let to_callees2 = sipp_pairs_csv(&dir, "to2.csv", &callers, &callees2);
    let callees1_csv = sipp_pairs_csv(&dir, "callees1.csv", &callees1, &callers);
    let callees2_csv = sipp_pairs_csv(&dir, "callees2.csv", &callees2, &callers);
    sipp::run_in_netns(Some(&bed.ns("ue")));
    let register = |pcscf: &str, csv: &Path, port: u16| {
        assert_all_passed(
            &uac(&dir, pcscf, "session/register.xml", csv, port, 30),
            USERS,
        );
    };

    // 1. Each group registers through its P-CSCF; calls between P-CSCF 1 and 2.
    register("pcscf1", &to_callees1, CALLERS_PORT);
    register("pcscf1", &callees1_csv, CALLEES1_PORT);
    register("pcscf2", &callees2_csv, CALLEES2_PORT);
    calls_succeed(&dir, "pcscf1", &to_callees2, CALLERS_PORT, CALLEES2_PORT);
    calls_succeed(&dir, "pcscf2", &callees2_csv, CALLEES2_PORT, CALLERS_PORT);

    // 2. P-CSCF 2 dies; the UEs of P-CSCF 1 re-register and call each other.
    bed.signal(pcscf2, "KILL");
    let killed = Instant::now();
    register("pcscf1", &to_callees1, CALLERS_PORT);
    register("pcscf1", &callees1_csv, CALLEES1_PORT);
    calls_succeed(&dir, "pcscf1", &to_callees1, CALLERS_PORT, CALLEES1_PORT);

    // 3. Calls to the callees still registered through the dead P-CSCF 2: 408.
    // Their UE answers as before: only the dead P-CSCF keeps the calls from it.
    let uas = answer_calls(&dir, CALLEES2_PORT);
    let started = Instant::now();
    let failed = uac(
        &dir,
        "pcscf1",
        "session/uac_call_as_failed.xml",
        &to_callees2,
        CALLERS_PORT,
        45,
    );
    eprintln!(
        "calls toward the dead P-CSCF ended in {:?}",
        started.elapsed()
    );
    assert_all_passed(&failed, USERS);
    drop(uas);

    // 4. The callees of P-CSCF 2 move to P-CSCF 1 and receive calls again.
    register("pcscf1", &callees2_csv, CALLEES2_PORT);
    calls_succeed(&dir, "pcscf1", &to_callees2, CALLERS_PORT, CALLEES2_PORT);
    sipp::run_in_netns(None);
    eprintln!("P-CSCF pool test: {:?} after the kill", killed.elapsed());
}

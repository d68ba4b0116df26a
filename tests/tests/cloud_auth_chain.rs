#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Cloud authorization through the whole chain (design brief §5-§6, RFC 8898): a real
//! Keystone 30.0.0 (see `cloud-auth/tests/support`), the real `policyd`, `hss`, `scscf`,
//! `icscf` and `pcscf` started by `imsctl up --no-cloud` (no Keystone of its own) with the
//! dev configs turned to `[cloud_auth] mode = "on"` toward that Keystone, subscribers of
//! two tenants, and SIPp UEs carrying Keystone tokens as `Authorization: Bearer` beside
//! their Digest credentials
//! (`sipp-scenarios/cloud/`). One test puts SIPp as an application server in the caller's
//! path (an originating iFC set through the HSS provisioning API): each hop to it is an
//! `as:<host>` question to the caller's tenant policy, and the AS never sees the
//! caller's Bearer token. Every out-of-dialog method is checked: a MESSAGE with a
//! forged token is refused and delivered to nobody.
//!
//! The CSCFs' Keystone cache TTL is set to 2 s here: a revoked token is refused at the
//! latest 2 s after its revocation.

#[path = "../../cloud-auth/tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use ims_e2e::chain::{
    addr, assert_all_passed, assert_not_registered, assert_registered, provision_digest, run,
    sipp_csv, start_core, stop_core, users, workdir, Ue, PCSCF,
};
use ims_e2e::cloud::{self, KeystoneAccount};
use ims_e2e::hss_api::{ifc, set_ifcs};
use ims_e2e::sipp::{scenario, Background, SippResult, SippTransport};
use ims_e2e::{free_port, scratch_dir};
use serde_json::{json, Value};
use support::{Keystone, SERVICE_PASSWORD, SERVICE_USER};

const HOUR: u64 = 3600;
/// Keystone cache TTL of the CSCFs in these tests.
const TOKEN_TTL_S: u64 = 2;

/// The dev configs with cloud authorization on, pointed at `ks` and its service user,
/// with a Keystone cache of [`TOKEN_TTL_S`] (the CSCFs and policyd).
fn configs(dir: &Path, ks: &Keystone) -> PathBuf {
    let account = KeystoneAccount {
        url: &ks.url,
        service_user: SERVICE_USER,
        service_password: SERVICE_PASSWORD,
    };
    cloud::configs(dir, account, TOKEN_TTL_S)
}

/// `PUT /v1/policies/<name>?tenant=<tenant>` with `body` as `admin` (a tenant admin of
/// that tenant); the status.
async fn put_policy(
    data: &Path,
    ks: &Keystone,
    admin: &str,
    tenant: &str,
    name: &str,
    body: Value,
) -> reqwest::StatusCode {
    let token = ks.user_token(admin).await.token;
    cloud::put_policy(data, &token, tenant, name, body).await
}

/// The root policy of `tenant` (created or replaced) with `rules` (`default` enforcer).
async fn put_root(data: &Path, ks: &Keystone, admin: &str, tenant: &str, rules: Value) {
    let token = ks.user_token(admin).await.token;
    cloud::put_root(data, &token, tenant, rules).await;
}

fn members_may_register_and_call() -> Value {
    json!({"REGISTER": "role:member", "INVITE": "role:member", "MESSAGE": "role:member"})
}

/// Runs `scenario` (under `sipp-scenarios/cloud/`) for `user` with `token` (field4)
/// over UDP.
fn register(dir: &Path, scenario: &str, user: &str, token: Option<&str>) -> SippResult {
    let names = vec![user.to_owned()];
    // field3 (a callee) is unused here; field4 is the token.
    let fields = format!("-;{}", token.unwrap_or("-"));
    let file = format!("{user}-{scenario}.csv");
    let csv = sipp_csv(dir, &file, &names, "secret", Some(&fields));
    run(
        dir,
        &format!("cloud/{scenario}.xml"),
        &csv,
        SippTransport::Udp,
        1,
        addr(PCSCF),
    )
}

struct Setup {
    ks: Keystone,
    config: PathBuf,
    dir: PathBuf,
    data: PathBuf,
    core: ims_e2e::DevCore,
}

/// Keystone, the core with cloud auth on, root policies for both tenants, and subscribers
/// `ca000`, `ca001` (tenant a) and `cb000` (tenant b). `None` where Keystone cannot run.
async fn setup(name: &str) -> Option<Setup> {
    let ks = Keystone::start(HOUR).await?;
    let config = configs(&scratch_dir(&format!("{name}-cfg")), &ks);
    let (dir, data, core) = start_core(name, Some(&config));
    put_root(
        &data,
        &ks,
        "ada",
        &ks.tenant_a,
        members_may_register_and_call(),
    )
    .await;
    put_root(
        &data,
        &ks,
        "bea",
        &ks.tenant_b,
        members_may_register_and_call(),
    )
    .await;
    provision_digest(&data, &dir, &users("ca", 2), "secret", Some(&ks.tenant_a));
    provision_digest(&data, &dir, &users("cb", 1), "secret", Some(&ks.tenant_b));
    Some(Setup {
        ks,
        config,
        dir,
        data,
        core,
    })
}

#[tokio::test]
async fn registration_needs_a_valid_token_of_the_subscribers_tenant() {
    let Some(Setup {
        ks,
        dir,
        data,
        core,
        ..
    }) = setup("cloud-register").await
    else {
        return;
    };
    let alice = ks.user_token("alice").await.token; // member of tenant a
    let bob = ks.user_token("bob").await.token; // member of tenant b
    let one = |n: &str| vec![n.to_owned()];

    // A token of the subscriber's own tenant: registered.
    assert_all_passed(&register(&dir, "register_bearer", "ca000", Some(&alice)), 1);
    assert_registered(&data, &one("ca000"));
    // No token: the Bearer challenge naming Keystone; nothing registered.
    assert_all_passed(&register(&dir, "register_no_token", "cb000", None), 1);
    // A forged token: 401 invalid_token.
    assert_all_passed(
        &register(
            &dir,
            "register_bad_token",
            "cb000",
            Some("gAAAAABforged-token_x"),
        ),
        1,
    );
    assert_not_registered(&data, &one("cb000"));
    // Another tenant's token: the Digest exchange succeeds, then 403, and the S-CSCF
    // releases the assignment (the HSS holds the identity unregistered).
    assert_all_passed(&register(&dir, "register_denied", "ca001", Some(&bob)), 1);
    assert_not_registered(&data, &one("ca001"));
    // Bob's token registers his own tenant's subscriber.
    assert_all_passed(&register(&dir, "register_bearer", "cb000", Some(&bob)), 1);
    assert_registered(&data, &one("cb000"));

    // A revoked token is refused once the CSCFs' token cache (2 s) let it go.
    ks.revoke(&alice).await;
    tokio::time::sleep(Duration::from_secs(TOKEN_TTL_S + 1)).await;
    assert_all_passed(
        &register(&dir, "register_bad_token", "ca000", Some(&alice)),
        1,
    );

    stop_core(core);
    ks.stop();
}

#[tokio::test]
async fn a_policy_change_applies_within_a_second_and_a_hung_policy_service_fails_closed() {
    let Some(Setup {
        ks,
        config,
        dir,
        data,
        core,
    }) = setup("cloud-policy").await
    else {
        return;
    };
    let alice = ks.user_token("alice").await.token;
    let a = ks.tenant_a.clone();
    assert_all_passed(&register(&dir, "register_bearer", "ca000", Some(&alice)), 1);

    // Tenant a's admin stops registrations: the next REGISTER, one second later, is
    // refused although the S-CSCF had the decision cached.
    put_root(
        &data,
        &ks,
        "ada",
        &a,
        json!({"REGISTER": "!", "INVITE": "role:member"}),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_all_passed(&register(&dir, "register_denied", "ca000", Some(&alice)), 1);
    put_root(&data, &ks, "ada", &a, members_may_register_and_call()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_all_passed(&register(&dir, "register_bearer", "ca000", Some(&alice)), 1);

    // The policy service hangs (SIGSTOP): the decision the S-CSCF holds keeps working,
    // a question it never asked is refused.
    let pid = policyd_pid(&config);
    signal(pid, "STOP");
    let cached = register(&dir, "register_bearer", "ca000", Some(&alice));
    let new = register(&dir, "register_denied", "ca001", Some(&alice));
    signal(pid, "CONT");
    // A cached decision keeps working while policyd is down; a new one is refused.
    assert_all_passed(&cached, 1);
    assert_all_passed(&new, 1);
    assert_not_registered(&data, &["ca001".to_owned()]);
    // Back up: the new question is answered again.
    assert_all_passed(&register(&dir, "register_bearer", "ca001", Some(&alice)), 1);

    stop_core(core);
    ks.stop();
}

/// The pid of the `policyd` that `imsctl up` started with the configs of `config`.
fn policyd_pid(config: &Path) -> u32 {
    let pattern = format!("policyd --config {}/policyd.toml", config.display());
    let out = std::process::Command::new("pgrep")
        .args(["-f", &pattern])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let pids: Vec<u32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
    assert_eq!(pids.len(), 1, "one process matches {pattern:?}: {text}");
    pids[0]
}

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args(["-s", sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -s {sig} {pid}");
}

#[tokio::test]
async fn a_call_within_a_tenant_passes_and_across_tenants_needs_the_callees_inbound_policy() {
    let Some(Setup {
        ks,
        dir,
        data,
        core,
        ..
    }) = setup("cloud-invite").await
    else {
        return;
    };
    let a = ks.tenant_a.clone();
    let b = ks.tenant_b.clone();
    let alice = ks.user_token("alice").await.token; // tenant a
    let carol = ks.user_token("carol").await.token; // tenant a
    let bob = ks.user_token("bob").await.token; // tenant b
    let reg = "cloud/register_bearer.xml";
    // Callees register with tokens of their own tenants; the caller calls both.
    let same = Ue::register_with(&dir, "ca001", &format!("-;{carol}"), reg);
    let other = Ue::register_with(&dir, "cb000", &format!("-;{bob}"), reg);
    let to_same = Ue::register_with(&dir, "ca000", &format!("ca001;{alice}"), reg);

    // Within tenant a: the call completes.
    let callee = same.serve(&dir, "session/uas_answer.xml", 1);
    assert_all_passed(&to_same.run(&dir, "cloud/uac_call_bearer.xml"), 1);
    assert_all_passed(&callee.finish(), 1);

    // Across tenants: the callee's S-CSCF refuses (403)...
    let to_other = Ue {
        csv: sipp_csv(
            &dir,
            "ca000-to-cb000.csv",
            &["ca000".to_owned()],
            "secret",
            Some(&format!("cb000;{alice}")),
        ),
        ..to_same.clone()
    };
    assert_all_passed(&to_other.run(&dir, "cloud/uac_call_denied.xml"), 1);
    // ...until tenant b lets tenant a's members call in: one second after the change the
    // same call completes.
    put_inbound(&data, &ks, &b, &a).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let callee = other.serve(&dir, "session/uas_answer.xml", 1);
    assert_all_passed(&to_other.run(&dir, "cloud/uac_call_bearer.xml"), 1);
    assert_all_passed(&callee.finish(), 1);

    stop_core(core);
    ks.stop();
}

/// Every out-of-dialog request is checked (`[cloud_auth] methods` defaults to every
/// method): a MESSAGE with a forged token gets `401 ... error="invalid_token"` from the
/// P-CSCF and reaches nobody; with its tenant's token it is delivered, and the callee
/// sees no Bearer credential (checked by `cloud/uas_message.xml`).
#[tokio::test]
async fn an_out_of_dialog_message_needs_a_valid_token() {
    let Some(Setup { ks, dir, core, .. }) = setup("cloud-message").await else {
        return;
    };
    let alice = ks.user_token("alice").await.token; // tenant a
    let carol = ks.user_token("carol").await.token; // tenant a
    let reg = "cloud/register_bearer.xml";
    let callee = Ue::register_with(&dir, "ca001", &format!("-;{carol}"), reg);
    let caller = Ue::register_with(&dir, "ca000", &format!("ca001;{alice}"), reg);

    // A forged token: 401 invalid_token, and nothing reaches the callee's flow.
    let forged = Ue {
        csv: sipp_csv(
            &dir,
            "ca000-forged.csv",
            &["ca000".to_owned()],
            "secret",
            Some("ca001;gAAAAABforged-token_x"),
        ),
        ..caller.clone()
    };
    let callee_socket = std::net::UdpSocket::bind(callee.local).unwrap();
    let refused = forged.run(&dir, "cloud/uac_message_bad_token.xml");
    callee_socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let got = callee_socket.recv_from(&mut buf);
    assert!(
        got.is_err(),
        "the callee got {:?}",
        got.map(|(n, from)| (from, String::from_utf8_lossy(&buf[..n]).into_owned()))
    );
    drop(callee_socket);
    assert_all_passed(&refused, 1);

    // Its tenant's token: delivered, without the token.
    let answer = callee.serve(&dir, "cloud/uas_message.xml", 1);
    assert_all_passed(&caller.run(&dir, "cloud/uac_message_bearer.xml"), 1);
    assert_all_passed(&answer.finish(), 1);

    stop_core(core);
    ks.stop();
}

/// Tenant `callee`'s admin (bea) lets members of tenant `caller` INVITE its subscribers.
async fn put_inbound(data: &Path, ks: &Keystone, callee: &str, caller: &str) {
    let rules = format!(
        r#"permit(principal in Ims::Tenant::"{caller}", action == Ims::Action::"INVITE", resource)
           when {{ principal.roles.contains("member") }};"#
    );
    let body = json!({"enforcer": "custom", "rules": rules});
    let status = put_policy(data, ks, "bea", callee, "inbound", body).await;
    assert_eq!(status, 201, "PUT inbound policy of {callee}");
}

#[tokio::test]
async fn an_application_server_hop_passes_only_when_the_tenant_policy_allows_it() {
    let Some(Setup {
        ks,
        dir,
        data,
        core,
        ..
    }) = setup("cloud-as").await
    else {
        return;
    };
    let a = ks.tenant_a.clone();
    let alice = ks.user_token("alice").await.token; // tenant a
    let carol = ks.user_token("carol").await.token; // tenant a
                                                    // ca000's INVITEs go first to an originating AS (ServerName sip:127.0.0.1:<port>,
                                                    // known to policies as `as:127.0.0.1`); SESSION_TERMINATED, so a call completes only
                                                    // through it.
    let as_port = free_port();
    let caller = "sip:ca000@ims.example.net";
    set_ifcs(
        &data,
        caller,
        json!([ifc(10, "ORIGINATING", as_port, "SESSION_TERMINATED")]),
    );
    let with_as = |as_rule: &str| json!({"REGISTER": "role:member", "INVITE": "role:member", as_rule: "role:member"});
    put_root(&data, &ks, "ada", &a, with_as("as:127.0.0.1")).await;
    let reg = "cloud/register_bearer.xml";
    let callee = Ue::register_with(&dir, "ca001", &format!("-;{carol}"), reg);
    let ue = Ue::register_with(&dir, "ca000", &format!("ca001;{alice}"), reg);

    // Tenant a lets its members through that AS: the call goes through it and completes.
    // The AS checks its Route (its own value, then the S-CSCF's `;lr;orig;odi=...`) and
    // that P-Served-User names an originating registered user; the trace shows it is
    // the caller.
    let server = Background::uas(
        &scenario("session/as_forward.xml"),
        addr(as_port),
        1,
        60,
        &workdir(&dir),
        true,
    )
    .expect("SIPp AS starts");
    let answer = callee.serve(&dir, "session/uas_answer.xml", 1);
    assert_all_passed(&ue.run(&dir, "cloud/uac_call_bearer.xml"), 1);
    assert_all_passed(&answer.finish(), 1);
    let seen = server.finish();
    assert_all_passed(&seen, 1);
    let invite = seen
        .messages
        .split("\n----------")
        .find(|m| m.contains("message received") && m.contains("\nINVITE "))
        .unwrap_or_else(|| panic!("no INVITE received by the AS in:\n{}", seen.messages));
    for needle in [
        format!("P-Served-User: <{caller}>;sescase=orig;regstate=reg"),
        ";lr;orig;odi=".to_string(),
    ] {
        assert!(invite.contains(&needle), "{needle:?} not in {invite}");
    }
    // The caller's token stays in the core: the S-CSCF kept it (`;bkey=` beside the
    // odi) and put it back when the request returned, which the callee's S-CSCF needed
    // to let the call in.
    assert!(
        !invite.to_ascii_lowercase().contains("bearer"),
        "the AS saw a Bearer credential: {invite}"
    );
    assert!(invite.contains(";bkey="), "no kept-token key in {invite}");

    // Tenant a allows another AS only: the S-CSCF refuses the hop (403) and nothing
    // reaches this AS. The feed wipes the S-CSCF's cached allow within a second.
    put_root(&data, &ks, "ada", &a, with_as("as:as.other.example")).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let as_socket = std::net::UdpSocket::bind(addr(as_port)).unwrap();
    let refused = ue.run(&dir, "cloud/uac_call_denied.xml");
    // Whatever the S-CSCF sent the AS arrived before the call ended.
    as_socket.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 2048];
    let got = as_socket.recv_from(&mut buf);
    assert!(
        got.is_err(),
        "the AS got {:?}",
        got.map(|(n, from)| (from, String::from_utf8_lossy(&buf[..n]).into_owned()))
    );
    assert_all_passed(&refused, 1);

    stop_core(core);
    ks.stop();
}

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Reg event subscriptions with cloud authorization on (issue #16): a real Keystone
//! 30.0.0 (`cloud-auth/tests/support`), the real `policyd`, `hss`, `scscf`, `icscf` and
//! `pcscf` started by `imsctl up --no-cloud` with the dev configs turned to
//! `[cloud_auth] mode = "on"` toward that Keystone, SIPp UEs of two tenants registered
//! with their Keystone tokens. Tenant a lets its members SUBSCRIBE, tenant b does not
//! (`"SUBSCRIBE": "!"`).
//!
//! * The P-CSCF's own SUBSCRIBE for each UE (TS 24.229 §5.2.3) carries no token and
//!   needs none: the S-CSCF takes it as the subscription of the P-CSCF on the user's
//!   Path, for both tenants, tenant b's too; its NOTIFY with the full state reaches the
//!   P-CSCF, which answers 200 (tshark). A core node asserting the P-CSCF's host
//!   subscribes straight at the S-CSCF without a token too (the terminating case,
//!   where only `is_network_node` in `scscf/src/regevent/authorize.rs` spares it the
//!   token check). An administrative de-registration (`imsctl deregister`) makes the
//!   P-CSCF drop the UE: its next request, with a valid token, gets 403.
//! * A phone's own SUBSCRIBE is checked like any request it starts: without a token
//!   401 with the Bearer challenge (the P-CSCF's filter), with a token its tenant's
//!   policy refuses 403 (the S-CSCF's check: what an exemption widened to every
//!   subscriber would let through), with one it allows 200 and the full state.
//!
//! Uses the dev ports: run it alone (nextest test group `e2e`). Skipped where Keystone
//! cannot run (`IMS_TEST_KEYSTONE=1` makes that a failure).

#[path = "../../cloud-auth/tests/support/mod.rs"]
mod support;

use ims_e2e::chain::{
    addr, assert_all_passed, assert_pcscf, assert_pcscf_subscribed, decode, impu, imsctl,
    notify_answers, provision_digest, run, start_core, stop_core, users, Capture, Ue, DOMAIN,
};
use ims_e2e::cloud::{configs, put_root, KeystoneAccount};
use ims_e2e::scratch_dir;
use ims_e2e::sipp::SippTransport;
use serde_json::json;
use support::{Keystone, SERVICE_PASSWORD, SERVICE_USER};

const HOUR: u64 = 3600;
/// The S-CSCF's SIP port in the dev configs.
const SCSCF_SIP: u16 = 5080;

#[tokio::test]
async fn the_pcscfs_subscription_needs_no_token_and_a_phones_needs_its_tenants_leave() {
    let Some(ks) = Keystone::start(HOUR).await else {
        return;
    };
    let account = KeystoneAccount {
        url: &ks.url,
        service_user: SERVICE_USER,
        service_password: SERVICE_PASSWORD,
    };
    let config = configs(&scratch_dir("regevent-cloud-cfg"), account, 60);
    let (dir, data, core) = start_core("regevent-cloud", Some(&config));
    let ada = ks.user_token("ada").await.token; // tenant a's admin
    let bea = ks.user_token("bea").await.token; // tenant b's admin
    let registered = json!({"REGISTER": "role:member", "MESSAGE": "role:member"});
    let mut subscribing = registered.clone();
    subscribing["SUBSCRIBE"] = json!("role:member");
    let mut not_subscribing = registered;
    not_subscribing["SUBSCRIBE"] = json!("!");
    put_root(&data, &ada, &ks.tenant_a, subscribing).await;
    put_root(&data, &bea, &ks.tenant_b, not_subscribing).await;
    provision_digest(&data, &dir, &users("ca", 2), "secret", Some(&ks.tenant_a));
    provision_digest(&data, &dir, &users("cb", 1), "secret", Some(&ks.tenant_b));
    let alice = ks.user_token("alice").await.token; // member of tenant a
    let carol = ks.user_token("carol").await.token; // member of tenant a
    let bob = ks.user_token("bob").await.token; // member of tenant b
    let capture = Capture::start(&dir.join("regevent-cloud.pcap"));

    // Registered with their tokens: the P-CSCF subscribes to each, without a token,
    // and the S-CSCF takes each, tenant b's too.
    let reg = "cloud/register_bearer.xml";
    let a = Ue::register_with(&dir, "ca000", &format!("-;{alice}"), reg);
    let c = Ue::register_with(&dir, "ca001", &format!("-;{carol}"), reg);
    let b = Ue::register_with(&dir, "cb000", &format!("-;{bob}"), reg);
    assert_pcscf(&data, "reg_event_subscriptions", 3);
    for user in ["ca000", "ca001", "cb000"] {
        assert_pcscf_subscribed(&data, user);
    }
    // The same subscriber straight at the S-CSCF: a core node asserting the P-CSCF's
    // host subscribes (a fetch) to ca000 without a token, as the terminating case whose
    // served user is ca000 herself, registered with a tenant: taken only because the
    // subscriber is the P-CSCF on her Path. (The P-CSCF's own SUBSCRIBE comes along the
    // Service-Route, the originating case, whose served user is the P-CSCF's node
    // identity: registered nowhere, which cloud authorization leaves to routing.)
    let csv = dir.join("core-node.csv");
    std::fs::write(&csv, format!("SEQUENTIAL\nca000;{DOMAIN};127.0.0.1\n")).unwrap();
    let fetch = run(
        &dir,
        "regevent/core_subscribe.xml",
        &csv,
        SippTransport::Udp,
        1,
        addr(SCSCF_SIP),
    );
    assert_all_passed(&fetch, 1);

    // The phones' own subscriptions (ca001's and cb000's; ca000 keeps none, so that
    // no NOTIFY toward her races her scenario below): no token 401, a token its
    // tenant's policy refuses 403, one it allows 200 with the full state.
    assert_all_passed(&c.run(&dir, "cloud/subscribe_no_token.xml"), 1);
    assert_all_passed(&b.run(&dir, "cloud/subscribe_denied.xml"), 1);
    assert_all_passed(&c.run(&dir, "cloud/subscribe_bearer.xml"), 1);

    // The administrator de-registers ca000: the S-CSCF's NOTIFY reaches the P-CSCF,
    // which drops her registration; her next request, with her valid token, is an
    // unregistered UE's.
    let out = imsctl(&data, &["deregister", &impu("ca000")]);
    assert!(out.status.success(), "imsctl deregister: {out:?}");
    assert_pcscf(&data, "registered_contacts", 2);
    assert_all_passed(&a.run(&dir, "cloud/uac_message_unregistered.xml"), 1);
    assert_pcscf(&data, "reg_event_subscriptions", 2);

    // On the wire: the S-CSCF's NOTIFYs to the P-CSCF's reg-event Contact, the first
    // of each subscription with the full state, answered 200 by the P-CSCF.
    let pcap = capture.stop();
    let full = decode(
        &pcap,
        &[
            "-Y",
            "sip.Method == \"NOTIFY\" && udp.srcport == 5080 && udp.dstport == 5060 \
             && sip.r-uri.user == \"reg-event\" && frame contains \"state=\\\"full\\\"\"",
            "-T",
            "fields",
            "-e",
            "sip.Call-ID",
        ],
    );
    let mut dialogs: Vec<&str> = full.lines().map(str::trim).collect();
    dialogs.sort_unstable();
    dialogs.dedup();
    assert_eq!(dialogs.len(), 3, "full-state NOTIFYs to the P-CSCF: {full}");
    let codes = notify_answers(&pcap, "");
    // Three first NOTIFYs and ca000's de-registration (and ca001's answer to the
    // NOTIFY of her own subscription, relayed).
    assert!(
        codes.iter().filter(|c| *c == "200").count() >= 4,
        "answers to NOTIFYs: {codes:?}"
    );
    assert!(
        !codes.iter().any(|c| c == "481" || c == "403"),
        "answers to NOTIFYs: {codes:?}"
    );

    stop_core(core);
    ks.stop();
}

//! iFC profiles as the HSS writes them, read and evaluated by the S-CSCF (TS 29.228
//! Annex B/C/E, TS 24.229 §5.4.3.2-3): round trip through the HSS's own
//! IMSSubscription writer (`hss::cx::user_data::ims_subscription`), the HSS's golden
//! document, and the 10-iFC profile the `ifc` bench uses.

#![allow(clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use hss::cx::user_data::ims_subscription;
use hss::store as h;
use ims_sip::SipMessage;
use scscf::ifc::{
    matching, DefaultHandling, IfcCursor, RegistrationState, RegistrationType, SessionCase,
    SptCondition,
};
use scscf::profile::UserProfile;

const ALICE: &str = "sip:alice@ims.example.net";

fn spt(group: i64, negated: bool, condition: h::SptCondition) -> h::Spt {
    h::Spt {
        condition_negated: negated,
        group,
        condition,
    }
}

fn method(m: &str) -> h::SptCondition {
    h::SptCondition::Method {
        method: m.into(),
        registration_type: Vec::new(),
    }
}

fn case(c: h::SessionCase) -> h::SptCondition {
    h::SptCondition::SessionCase { session_case: c }
}

fn hss_ifc(
    priority: i64,
    spts: Option<(bool, Vec<h::Spt>)>,
    server: &str,
    ppi: Option<h::ProfilePartIndicator>,
) -> h::InitialFilterCriteria {
    h::InitialFilterCriteria {
        priority,
        trigger_point: spts.map(|(cnf, spts)| h::TriggerPoint {
            condition_type_cnf: cnf,
            spts,
        }),
        application_server: h::ApplicationServer {
            server_name: server.into(),
            default_handling: h::DefaultHandling::SessionTerminated,
            service_info: Some("info <&>".into()),
            include_register_request: true,
            include_register_response: false,
        },
        profile_part_indicator: ppi,
    }
}

/// A subscription using every SPT kind, both normal forms, negation and the
/// ProfilePartIndicator, with its iFCs stored out of priority order.
fn subscription() -> h::Subscription {
    use h::SptCondition as C;
    let identity = |impu: &str, barred: bool, profile: &str| h::PublicIdentityInfo {
        identity: h::PublicIdentity {
            impu: impu.into(),
            barred,
            implicit_set: Some(1),
            service_profile: profile.into(),
        },
        registration: h::Registration::default(),
    };
    let voice = vec![
        // Any request (no TriggerPoint), unregistered part only.
        hss_ifc(
            90,
            None,
            "sip:unreg@as",
            Some(h::ProfilePartIndicator::Unregistered),
        ),
        // DNF: (MESSAGE) or (INVITE and m=audio and not a Subject header).
        hss_ifc(
            20,
            Some((
                false,
                vec![
                    spt(0, false, method("MESSAGE")),
                    spt(1, false, method("INVITE")),
                    spt(
                        1,
                        false,
                        C::SessionDescription {
                            line: "m".into(),
                            content: Some("^audio".into()),
                        },
                    ),
                    spt(
                        1,
                        true,
                        C::SipHeader {
                            header: "Subject".into(),
                            content: None,
                        },
                    ),
                ],
            )),
            "sip:dnf@as",
            None,
        ),
        // CNF: (INVITE) and (originating or originating-unregistered) and (R-URI bob).
        hss_ifc(
            10,
            Some((
                true,
                vec![
                    spt(0, false, method("INVITE")),
                    spt(1, false, case(h::SessionCase::Originating)),
                    spt(1, false, case(h::SessionCase::OriginatingUnregistered)),
                    spt(
                        2,
                        false,
                        C::RequestUri {
                            request_uri: "^sip:bob@".into(),
                        },
                    ),
                ],
            )),
            "sip:cnf@as",
            Some(h::ProfilePartIndicator::Registered),
        ),
        // P-Asserted-Identity carrying a tel URI, with an invalid regex next to it.
        hss_ifc(
            30,
            Some((
                true,
                vec![
                    spt(
                        0,
                        false,
                        C::SipHeader {
                            header: "P-Asserted-Identity".into(),
                            content: Some("<tel:\\+1555".into()),
                        },
                    ),
                    spt(
                        1,
                        true,
                        C::SipHeader {
                            header: "Subject".into(),
                            content: Some("([".into()),
                        },
                    ),
                ],
            )),
            "sip:bad-regex@as",
            None,
        ),
    ];
    h::Subscription {
        id: "alice".into(),
        cloud: h::CloudProfile {
            project_id: Some("tenant-<a>".into()),
            user_id: Some("user-1".into()),
        },
        private_identities: Vec::new(),
        public_identities: vec![
            identity(ALICE, false, "voice"),
            identity("tel:+15551230001", false, "voice"),
            identity("sip:alice-barred@ims.example.net", true, "video"),
        ],
        service_profiles: vec![
            h::ServiceProfile {
                name: "voice".into(),
                ifcs: voice,
            },
            h::ServiceProfile {
                name: "video".into(),
                ifcs: vec![hss_ifc(1, None, "sip:video@as", None)],
            },
        ],
        roaming_networks: Vec::new(),
        created_at: 0,
        updated_at: 0,
    }
}

fn hss_profile() -> UserProfile {
    let sub = subscription();
    let set: Vec<&h::PublicIdentityInfo> = sub.public_identities.iter().collect();
    let xml = ims_subscription(&sub, "alice@ims.example.net", &set);
    UserProfile::parse(Bytes::from(xml)).expect("the HSS's document reads")
}

fn invite(extra_headers: &str, media: &str) -> SipMessage {
    let body = format!("v=0\r\nm={media} 4000 RTP/AVP 0\r\n");
    SipMessage::parse(Bytes::from(format!(
        "INVITE sip:bob@ims.example.net SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
         Max-Forwards: 70\r\nTo: <sip:bob@ims.example.net>\r\nFrom: <{ALICE}>;tag=1\r\n\
         Call-ID: c\r\nCSeq: 1 INVITE\r\n{extra_headers}Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )))
    .expect("test INVITE parses")
}

fn servers(
    profile: &UserProfile,
    req: &SipMessage,
    case: SessionCase,
    state: RegistrationState,
) -> Vec<String> {
    matching(profile.ifcs(ALICE), req, case, state)
        .iter()
        .map(|i| i.application_server.server_name.clone())
        .collect()
}

#[test]
fn the_hss_writer_round_trips_into_the_scscf_model() {
    let p = hss_profile();
    assert_eq!(p.associated, [ALICE, "tel:+15551230001"]);
    assert_eq!(p.barred, ["sip:alice-barred@ims.example.net"]);
    assert_eq!(p.tenant.as_deref(), Some("tenant-<a>"));
    assert_eq!(p.bound_user.as_deref(), Some("user-1"));
    let prios: Vec<i64> = p.ifcs(ALICE).iter().map(|i| i.priority).collect();
    assert_eq!(prios, [10, 20, 30, 90]);
    assert_eq!(p.ifcs("tel:+15551230001"), p.ifcs(ALICE));
    assert_eq!(p.ifcs("sip:alice-barred@ims.example.net").len(), 1);
    let first = &p.ifcs(ALICE)[0];
    let a = &first.application_server;
    assert_eq!(a.server_name, "sip:cnf@as");
    assert_eq!(a.default_handling, DefaultHandling::SessionTerminated);
    assert_eq!(a.service_info.as_deref(), Some("info <&>"));
    assert!(a.include_register_request && !a.include_register_response);
    assert_eq!(first.profile_part, Some(RegistrationState::Registered));
    let tp = first.trigger_point.as_ref().expect("trigger point");
    assert!(tp.is_cnf());
    assert_eq!(tp.spts().len(), 4);
    assert_eq!(
        tp.spts()[1].condition,
        SptCondition::SessionCase(SessionCase::Originating)
    );
    assert!(!tp.spts()[1].negated);
    assert_eq!(tp.spts()[3].groups, [2]);
}

#[test]
fn the_hss_profile_evaluates_per_session_case_and_registration_state() {
    let p = hss_profile();
    use RegistrationState::{Registered, Unregistered};
    use SessionCase::*;
    let audio = invite("P-Asserted-Identity: <tel:+15551230001>\r\n", "audio");
    assert_eq!(
        servers(&p, &audio, Originating, Registered),
        ["sip:cnf@as", "sip:dnf@as"],
        "the invalid-regex SPT never matches, so its negation does not save the iFC"
    );
    assert_eq!(
        servers(&p, &audio, TerminatingRegistered, Registered),
        ["sip:dnf@as"]
    );
    assert_eq!(
        servers(&p, &audio, OriginatingUnregistered, Unregistered),
        ["sip:dnf@as", "sip:unreg@as"],
        "the registered-part iFC does not apply to an unregistered user"
    );
    let video_with_subject = invite("Subject: hi\r\n", "video");
    assert_eq!(
        servers(&p, &video_with_subject, Originating, Registered),
        ["sip:cnf@as"]
    );
    // Walking the chain as the S-CSCF will.
    let mut cursor = IfcCursor::start(Originating, Unregistered);
    let mut visited = Vec::new();
    while let Some((next, ifc)) = cursor.next(p.ifcs(ALICE), &audio) {
        visited.push(ifc.application_server.server_name.as_str());
        cursor = IfcCursor::decode(&next.encode()).expect("own token");
        assert!(visited.len() <= 4);
    }
    assert_eq!(
        visited,
        ["sip:dnf@as", "sip:unreg@as"],
        "only the common and unregistered parts"
    );
}

#[test]
fn the_hss_golden_document_reads() {
    let golden = include_str!("../../hss/tests/data/ims_subscription.xml");
    let p = UserProfile::parse(Bytes::from_static(golden.as_bytes())).expect("golden reads");
    assert_eq!(p.tenant.as_deref(), Some("p<1>&\"2\""));
    assert_eq!(p.bound_user.as_deref(), Some("u1"));
    let prios: Vec<i64> = p.ifcs(ALICE).iter().map(|i| i.priority).collect();
    assert_eq!(prios, [10, 20, 30]);
    let register = p.ifcs(ALICE)[2]
        .trigger_point
        .as_ref()
        .expect("trigger point")
        .spts();
    assert_eq!(
        register[0].registration_types,
        [RegistrationType::Initial, RegistrationType::De]
    );
    let spts = p.ifcs(ALICE)[0]
        .trigger_point
        .as_ref()
        .expect("trigger point")
        .spts();
    assert_eq!(spts.len(), 6);
    let SptCondition::RequestUri(uri) = &spts[4].condition else {
        panic!("RequestURI expected, got {:?}", spts[4].condition)
    };
    assert_eq!(uri.source(), "sip:conf.*&x");
}

/// A REGISTER trigger the HSS writes with RegistrationType INITIAL_REGISTRATION and
/// DE_REGISTRATION: the S-CSCF asks for third-party REGISTERs on those two kinds of
/// registration and not on re-registration; without RegistrationType, on all three.
#[test]
fn hss_registration_types_choose_the_third_party_registers() {
    let register_ifc = |types: Vec<h::RegistrationType>| {
        let mut sub = subscription();
        let ifc = hss_ifc(
            5,
            Some((
                true,
                vec![spt(
                    0,
                    false,
                    h::SptCondition::Method {
                        method: "REGISTER".into(),
                        registration_type: types,
                    },
                )],
            )),
            "sip:reg@as",
            None,
        );
        sub.service_profiles[0].ifcs = vec![ifc];
        let set: Vec<&h::PublicIdentityInfo> = sub.public_identities.iter().collect();
        let xml = ims_subscription(&sub, "alice@ims.example.net", &set);
        let profile = UserProfile::parse(Bytes::from(xml)).expect("profile reads");
        let req = SipMessage::parse(Bytes::from(format!(
            "REGISTER sip:ims.example.net SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
             Max-Forwards: 70\r\nTo: <{ALICE}>\r\nFrom: <{ALICE}>;tag=1\r\n\
             Call-ID: r\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
        )))
        .expect("test REGISTER parses");
        let ifc = profile.ifcs(ALICE)[0].clone();
        [
            RegistrationType::Initial,
            RegistrationType::Re,
            RegistrationType::De,
        ]
        .map(|kind| ifc.matches_register(&req, kind))
    };
    use h::RegistrationType as T;
    assert_eq!(
        register_ifc(vec![T::InitialRegistration, T::DeRegistration]),
        [true, false, true]
    );
    assert_eq!(register_ifc(vec![T::ReRegistration]), [false, true, false]);
    assert_eq!(register_ifc(Vec::new()), [true, true, true]);
}

#[test]
fn the_bench_profile_matches_four_of_ten() {
    let p = UserProfile::parse(Bytes::from_static(include_bytes!(
        "data/ifc_profile_10.xml"
    )))
    .expect("bench profile reads");
    assert_eq!(p.ifcs(ALICE).len(), 10);
    let req = invite(
        "P-Asserted-Identity: <sip:alice@ims.example.net>, <tel:+15551230001>\r\n",
        "audio",
    );
    let prios: Vec<i64> = matching(
        p.ifcs(ALICE),
        &req,
        SessionCase::Originating,
        RegistrationState::Registered,
    )
    .iter()
    .map(|i| i.priority)
    .collect();
    assert_eq!(prios, [10, 50, 90, 100]);
}

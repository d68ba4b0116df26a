//! IMSSubscription (TS 29.228 Annex E): a golden document for a subscription using
//! every iFC element, text escaping, and a parse back with quick-xml.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use hss::cx::user_data::ims_subscription;
use hss::store::*;
use quick_xml::events::Event;
use quick_xml::Reader;

fn spt(group: i64, negated: bool, condition: SptCondition) -> Spt {
    Spt {
        condition_negated: negated,
        group,
        condition,
    }
}

fn subscription() -> Subscription {
    let identity = |impu: &str, barred: bool, profile: &str| PublicIdentityInfo {
        identity: PublicIdentity {
            impu: impu.into(),
            barred,
            implicit_set: Some(1),
            service_profile: profile.into(),
        },
        registration: Registration::default(),
    };
    Subscription {
        id: "alice".into(),
        cloud: CloudProfile {
            project_id: Some("p<1>&\"2\"".into()),
            user_id: Some("u1".into()),
        },
        private_identities: Vec::new(),
        public_identities: vec![
            identity("sip:alice@ims.example.net", false, "voice"),
            identity("tel:+15550001", true, "voice"),
            identity("sip:alice-video@ims.example.net", false, "video"),
        ],
        service_profiles: vec![
            ServiceProfile {
                name: "voice".into(),
                ifcs: vec![
                    InitialFilterCriteria {
                        priority: 20,
                        trigger_point: None,
                        application_server: ApplicationServer {
                            server_name: "sip:log.ims.example.net".into(),
                            default_handling: DefaultHandling::SessionContinued,
                            service_info: None,
                            include_register_request: false,
                            include_register_response: false,
                        },
                        profile_part_indicator: None,
                    },
                    InitialFilterCriteria {
                        priority: 10,
                        trigger_point: Some(TriggerPoint {
                            condition_type_cnf: true,
                            spts: vec![
                                spt(
                                    0,
                                    false,
                                    SptCondition::Method {
                                        method: "INVITE".into(),
                                        registration_type: Vec::new(),
                                    },
                                ),
                                spt(
                                    0,
                                    true,
                                    SptCondition::SessionCase {
                                        session_case: SessionCase::TerminatingUnregistered,
                                    },
                                ),
                                spt(
                                    1,
                                    false,
                                    SptCondition::SipHeader {
                                        header: "Accept-Contact".into(),
                                        content: Some(".*<video>.*".into()),
                                    },
                                ),
                                spt(
                                    1,
                                    false,
                                    SptCondition::SipHeader {
                                        header: "P-Asserted-Identity".into(),
                                        content: None,
                                    },
                                ),
                                spt(
                                    2,
                                    false,
                                    SptCondition::RequestUri {
                                        request_uri: "sip:conf.*&x".into(),
                                    },
                                ),
                                spt(
                                    2,
                                    false,
                                    SptCondition::SessionDescription {
                                        line: "m".into(),
                                        content: Some("audio".into()),
                                    },
                                ),
                            ],
                        }),
                        application_server: ApplicationServer {
                            server_name: "sip:mmtel.ims.example.net".into(),
                            default_handling: DefaultHandling::SessionTerminated,
                            service_info: Some("mmtel\u{1}".into()),
                            include_register_request: true,
                            include_register_response: true,
                        },
                        profile_part_indicator: Some(ProfilePartIndicator::Registered),
                    },
                    InitialFilterCriteria {
                        priority: 30,
                        trigger_point: Some(TriggerPoint {
                            condition_type_cnf: false,
                            spts: vec![spt(
                                0,
                                false,
                                SptCondition::Method {
                                    method: "REGISTER".into(),
                                    registration_type: vec![
                                        RegistrationType::InitialRegistration,
                                        RegistrationType::DeRegistration,
                                    ],
                                },
                            )],
                        }),
                        application_server: ApplicationServer {
                            server_name: "sip:presence.ims.example.net".into(),
                            default_handling: DefaultHandling::SessionContinued,
                            service_info: None,
                            include_register_request: false,
                            include_register_response: false,
                        },
                        profile_part_indicator: None,
                    },
                ],
            },
            ServiceProfile {
                name: "video".into(),
                ifcs: Vec::new(),
            },
            ServiceProfile {
                name: "unused".into(),
                ifcs: Vec::new(),
            },
        ],
        roaming_networks: Vec::new(),
        created_at: 0,
        updated_at: 0,
    }
}

fn render() -> String {
    let sub = subscription();
    let set: Vec<&PublicIdentityInfo> = sub.public_identities.iter().collect();
    ims_subscription(&sub, "alice@ims.example.net", &set)
}

/// `IMS_UPDATE_GOLDEN=1` rewrites the golden file (then review the diff).
#[test]
fn matches_the_golden_document() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/ims_subscription.xml"
    );
    if std::env::var_os("IMS_UPDATE_GOLDEN").is_some() {
        std::fs::write(path, render() + "\n").unwrap();
    }
    let golden = std::fs::read_to_string(path).unwrap();
    assert_eq!(render(), golden.trim_end());
}

/// Parses the document back and returns the (path, text) of every text node.
fn texts(xml: &str) -> Vec<(String, String)> {
    let mut r = Reader::from_str(xml);
    r.config_mut().check_end_names = true;
    let mut path: Vec<String> = Vec::new();
    let mut out = Vec::new();
    loop {
        match r.read_event().unwrap() {
            Event::Start(e) => path.push(String::from_utf8(e.name().as_ref().to_vec()).unwrap()),
            Event::End(_) => {
                path.pop();
            }
            Event::Text(t) => out.push((path.join("/"), t.unescape().unwrap().into_owned())),
            Event::Eof => break,
            _ => {}
        }
    }
    assert!(path.is_empty(), "unclosed elements {path:?}");
    out
}

#[test]
fn parses_back_with_escaped_text_restored() {
    let t = texts(&render());
    let find = |p: &str| -> Vec<&str> {
        t.iter()
            .filter(|(k, _)| k == p)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(find("IMSSubscription/PrivateID"), ["alice@ims.example.net"]);
    assert_eq!(
        find("IMSSubscription/ServiceProfile/PublicIdentity/Identity"),
        [
            "sip:alice@ims.example.net",
            "tel:+15550001",
            "sip:alice-video@ims.example.net"
        ]
    );
    assert_eq!(
        find("IMSSubscription/ServiceProfile/PublicIdentity/BarringIndication"),
        ["1"]
    );
    // Priority order, whatever the stored order.
    assert_eq!(
        find("IMSSubscription/ServiceProfile/InitialFilterCriteria/Priority"),
        ["10", "20", "30"]
    );
    let spt = "IMSSubscription/ServiceProfile/InitialFilterCriteria/TriggerPoint/SPT";
    assert_eq!(find(&format!("{spt}/SIPHeader/Content")), [".*<video>.*"]);
    assert_eq!(find(&format!("{spt}/RequestURI")), ["sip:conf.*&x"]);
    assert_eq!(find(&format!("{spt}/SessionCase")), ["2"]);
    assert_eq!(
        find(&format!("{spt}/ConditionNegated")),
        ["0", "1", "0", "0", "0", "0", "0"]
    );
    // RegistrationType in the SPT's Extension, after its condition (Annex E
    // tSePoTriExtension); only the REGISTER trigger has one.
    assert_eq!(find(&format!("{spt}/Method")), ["INVITE", "REGISTER"]);
    assert_eq!(
        find(&format!("{spt}/Extension/RegistrationType")),
        ["0", "2"]
    );
    assert!(render().contains(
        "<Method>REGISTER</Method><Extension><RegistrationType>0</RegistrationType>\
         <RegistrationType>2</RegistrationType></Extension></SPT>"
    ));
    assert_eq!(render().matches("<RegistrationType>").count(), 2);
    assert_eq!(
        find("IMSSubscription/ServiceProfile/InitialFilterCriteria/ApplicationServer/ServiceInfo"),
        ["mmtel"],
        "control characters are dropped"
    );
    assert_eq!(
        find("IMSSubscription/Extension/CloudProfile/ProjectId"),
        ["p<1>&\"2\""]
    );
    assert_eq!(
        find("IMSSubscription/Extension/CloudProfile/UserId"),
        ["u1"]
    );
    assert_eq!(
        t.iter()
            .filter(|(k, _)| k.ends_with("ServiceProfile/PublicIdentity/Extension/IdentityType"))
            .count(),
        3
    );
    assert_eq!(
        render().matches("<ServiceProfile>").count(),
        2,
        "unused profile left out"
    );
}

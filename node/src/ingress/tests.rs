use super::*;
use proptest::prelude::*;

const ALL_KINDS: [RequestKind; 7] = [
    RequestKind::Register,
    RequestKind::Originating,
    RequestKind::Terminating,
    RequestKind::InDialog,
    RequestKind::FromApplicationServer,
    RequestKind::TowardUe,
    RequestKind::NotOurRoute,
];

fn dev_zones() -> ZonesSection {
    ZonesSection {
        core: vec!["127.0.0.1/32".parse().unwrap(), "::1/128".parse().unwrap()],
        application_servers: vec!["10.0.2.0/24".parse().unwrap()],
        interconnect: vec!["192.0.2.0/24".parse().unwrap()],
        ..ZonesSection::default()
    }
}

fn remote(ip: &str) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), 5060)
}

fn request(extra: &str) -> SipMessage {
    SipMessage::parse(format!(
        "INVITE sip:bob@ims.example.net SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.9:5062;branch=z9hG4bK1\r\n\
         From: <sip:alice@ims.example.net>;tag=1\r\nTo: <sip:bob@ims.example.net>\r\n\
         Call-ID: c\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n"
    ))
    .unwrap()
}

const FORGED: &str = "P-Asserted-Identity: <sip:alice@ims.example.net>\r\n\
    P-Preferred-Identity: <sip:alice@ims.example.net>\r\n\
    P-Served-User: <sip:alice@ims.example.net>;sescase=orig\r\n\
    P-Charging-Vector: icid-value=forged\r\n\
    P-Charging-Function-Addresses: ccf=evil\r\n\
    P-Visited-Network-ID: evil\r\n";

fn identity_headers_left(r: &SipMessage) -> Vec<&str> {
    IDENTITY_HEADERS
        .iter()
        .filter(|h| r.headers.get(h).is_some())
        .map(HeaderName::as_str)
        .collect()
}

#[test]
fn an_attacker_on_another_loopback_address_is_access_at_the_pcscf_and_unclassified_elsewhere() {
    let p = Ingress::new(Role::Pcscf, &dev_zones());
    let s = Ingress::new(Role::Scscf, &dev_zones());
    let attacker: IpAddr = "127.0.0.9".parse().unwrap();
    assert_eq!(p.zone(attacker, None), Zone::Access);
    assert_eq!(s.zone(attacker, None), Zone::Unclassified);
    assert_eq!(s.zone("127.0.0.1".parse().unwrap(), None), Zone::Core);
    assert_eq!(
        s.zone("10.0.2.7".parse().unwrap(), None),
        Zone::ApplicationServer
    );
    assert_eq!(
        s.zone("192.0.2.7".parse().unwrap(), None),
        Zone::Interconnect
    );
}

#[test]
fn a_certificate_naming_a_core_node_makes_its_sender_core_at_every_role() {
    let zones = ZonesSection {
        core_names: vec!["scscf.ims.example.net".into()],
        ..ZonesSection::default()
    };
    let scscf = PeerNames::new(["scscf.ims.example.net"]);
    let other = PeerNames::new(["ue.example.org"]);
    let far: IpAddr = "192.0.2.7".parse().unwrap();
    for role in [Role::Pcscf, Role::Icscf, Role::Scscf] {
        let ingress = Ingress::new(role, &zones);
        assert_eq!(ingress.zone(far, Some(&scscf)), Zone::Core, "{role:?}");
        let outside = if role == Role::Pcscf {
            Zone::Access
        } else {
            Zone::Unclassified
        };
        assert_eq!(ingress.zone(far, Some(&other)), outside, "{role:?}");
        assert_eq!(ingress.zone(far, None), outside, "{role:?}");
    }
}

#[test]
fn the_pcscf_takes_requests_toward_ues_only_from_the_core() {
    for zone in [
        Zone::Access,
        Zone::ApplicationServer,
        Zone::Interconnect,
        Zone::Unclassified,
    ] {
        assert!(!allows(Role::Pcscf, zone, RequestKind::TowardUe), "{zone}");
    }
    assert!(allows(Role::Pcscf, Zone::Core, RequestKind::TowardUe));
    for kind in ALL_KINDS {
        // The core never sends a UE's requests; nobody sends off-route dialog requests.
        assert_eq!(
            allows(Role::Pcscf, Zone::Core, kind),
            kind == RequestKind::TowardUe,
            "{kind:?}"
        );
        assert!(!allows(Role::Pcscf, Zone::Core, RequestKind::NotOurRoute));
        for role in [Role::Pcscf, Role::Icscf, Role::Scscf] {
            assert!(!allows(role, Zone::Access, RequestKind::NotOurRoute));
        }
    }
}

#[test]
fn the_scscf_runs_the_originating_case_only_for_core_and_application_servers() {
    let s = |zone, kind| allows(Role::Scscf, zone, kind);
    for kind in [
        RequestKind::Originating,
        RequestKind::Terminating,
        RequestKind::FromApplicationServer,
    ] {
        assert!(s(Zone::Core, kind));
        assert!(s(Zone::ApplicationServer, kind));
        assert!(!s(Zone::Interconnect, kind));
        assert!(!s(Zone::Unclassified, kind));
    }
    assert!(s(Zone::Core, RequestKind::Register));
    for zone in [
        Zone::ApplicationServer,
        Zone::Interconnect,
        Zone::Unclassified,
    ] {
        assert!(!s(zone, RequestKind::Register), "{zone}");
    }
    assert!(s(Zone::Interconnect, RequestKind::InDialog));
    assert!(!s(Zone::Unclassified, RequestKind::InDialog));
}

#[test]
fn the_icscf_takes_only_terminating_requests_and_registrations_from_other_networks() {
    let i = |zone, kind| allows(Role::Icscf, zone, kind);
    assert!(i(Zone::Core, RequestKind::Originating));
    assert!(i(Zone::ApplicationServer, RequestKind::Originating));
    assert!(!i(Zone::Interconnect, RequestKind::Originating));
    assert!(!i(Zone::Unclassified, RequestKind::Originating));
    assert!(i(Zone::Interconnect, RequestKind::Register));
    assert!(!i(Zone::Unclassified, RequestKind::Register));
    assert!(i(Zone::Unclassified, RequestKind::Terminating));
    assert!(!i(Zone::Unclassified, RequestKind::InDialog));
    assert!(!i(Zone::Interconnect, RequestKind::InDialog));
}

#[test]
fn identity_headers_are_kept_from_the_core_only_what_an_as_may_assert_from_an_as() {
    let f = Ingress::new(Role::Scscf, &dev_zones());
    let mut r = request(FORGED);
    assert_eq!(
        f.admit(
            &mut r,
            remote("127.0.0.1"),
            Zone::Core,
            RequestKind::Originating
        ),
        Ok(0)
    );
    assert_eq!(identity_headers_left(&r).len(), 6);

    let mut r = request(FORGED);
    let n = f.admit(
        &mut r,
        remote("10.0.2.7"),
        Zone::ApplicationServer,
        RequestKind::Originating,
    );
    assert_eq!(n, Ok(2));
    assert_eq!(
        identity_headers_left(&r),
        [
            "P-Asserted-Identity",
            "P-Served-User",
            "P-Charging-Vector",
            "P-Charging-Function-Addresses"
        ]
    );

    let i = Ingress::new(Role::Icscf, &dev_zones());
    let mut r = request(FORGED);
    let n = i.admit(
        &mut r,
        remote("192.0.2.7"),
        Zone::Interconnect,
        RequestKind::Terminating,
    );
    assert_eq!(n, Ok(6));
    assert!(identity_headers_left(&r).is_empty());
}

#[test]
fn a_refused_request_is_answered_403() {
    let f = Ingress::new(Role::Scscf, &dev_zones());
    let mut r = request(FORGED);
    let refused = f
        .admit(
            &mut r,
            remote("127.0.0.9"),
            Zone::Unclassified,
            RequestKind::Originating,
        )
        .unwrap_err();
    assert_eq!(
        refused,
        Refused {
            zone: Zone::Unclassified,
            kind: RequestKind::Originating
        }
    );
    let Decision::Respond(answer) = refused.response(&r) else {
        panic!("not an answer");
    };
    assert_eq!(answer.status(), Some(403));
}

#[test]
fn a_filtered_forward_carries_the_edited_request() {
    use ims_sip::proxy::engine::Forward;
    let edited = request("");
    let d = forward_filtered(Decision::Forward(Forward::default()), edited.clone(), true);
    assert!(matches!(d, Decision::ForwardWith { request, flow: None, .. } if request == edited));
    let d = forward_filtered(Decision::Forward(Forward::default()), edited, false);
    assert!(matches!(d, Decision::Forward(_)));
}

/// Header names a hostile UE might use: every identity header in any letter case, with
/// blanks before the colon, and harmless others around them.
fn header_name() -> impl Strategy<Value = String> {
    let names = prop::sample::select(vec![
        "P-Asserted-Identity",
        "P-Preferred-Identity",
        "P-Served-User",
        "P-Charging-Vector",
        "P-Charging-Function-Addresses",
        "P-Visited-Network-ID",
        "Subject",
        "X-P-Asserted-Identity",
        "Route",
        "Privacy",
    ]);
    (
        names,
        prop::collection::vec(any::<bool>(), 32),
        "[ \t]{0,2}",
    )
        .prop_map(|(name, upper, blanks)| {
            let cased: String = name
                .chars()
                .zip(upper.iter().cycle())
                .map(|(c, u)| {
                    if *u {
                        c.to_ascii_uppercase()
                    } else {
                        c.to_ascii_lowercase()
                    }
                })
                .collect();
            format!("{cased}{blanks}")
        })
}

/// Values: name-addrs, comma lists, parameters, folding onto a second line.
fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "<sip:[a-z]{1,8}@ims\\.example\\.net>(;[a-z]{1,5}=[a-z0-9]{1,5}){0,2}",
        "<sip:a@b>, <tel:\\+1555[0-9]{4}>",
        "[a-zA-Z0-9;=<>@:., \"-]{0,40}",
        "<sip:x@y>\r\n <sip:z@w>",
    ]
}

fn hostile_request() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec!["INVITE", "MESSAGE", "BYE", "ACK", "REGISTER", "OPTIONS"]),
        prop::collection::vec((header_name(), header_value()), 0..12),
        any::<bool>(),
    )
        .prop_map(|(method, headers, to_tag)| {
            let tag = if to_tag { ";tag=x" } else { "" };
            let mut text = format!(
                "{method} sip:bob@ims.example.net SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.9;branch=z9hG4bK1\r\n\
                 From: <sip:alice@ims.example.net>;tag=1\r\nTo: <sip:bob@ims.example.net>{tag}\r\n\
                 Call-ID: c\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\n"
            );
            for (name, value) in headers {
                text.push_str(&format!("{name}: {value}\r\n"));
            }
            text.push_str("Content-Length: 0\r\n\r\n");
            text.into_bytes()
        })
}

/// The names of the header lines of a serialized message, lower case, blanks trimmed.
fn wire_header_names(wire: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(wire);
    let head = text
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_string();
    head.split("\r\n")
        .skip(1)
        .filter(|l| !l.starts_with([' ', '\t']))
        .filter_map(|l| {
            l.split_once(':')
                .map(|(n, _)| n.trim().to_ascii_lowercase())
        })
        .collect()
}

proptest! {
    /// Whatever identity headers a UE combines, none passes the P-CSCF's filter for the
    /// access zone, whatever kind the request is, and the filter never panics.
    #[test]
    fn no_identity_header_passes_from_the_access_zone(wire in hostile_request()) {
        let Ok(parsed) = SipMessage::parse(wire) else {
            return Ok(());
        };
        let filter = Ingress::new(Role::Pcscf, &dev_zones());
        for kind in ALL_KINDS {
            let mut r = parsed.clone();
            if filter.admit(&mut r, remote("127.0.0.9"), Zone::Access, kind).is_err() {
                continue;
            }
            prop_assert!(identity_headers_left(&r).is_empty());
            let out = r.to_bytes();
            let names = wire_header_names(&out);
            for h in IDENTITY_HEADERS {
                let lower = h.as_str().to_ascii_lowercase();
                prop_assert!(!names.contains(&lower), "{} in {:?}", lower, String::from_utf8_lossy(&out));
            }
        }
    }
}

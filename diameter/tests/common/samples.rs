//! One realistic instance of every Cx command, shared by the tests and the bench.

use bytes::Bytes;
use ims_diameter::cx::*;
use ims_diameter::dict::experimental;

pub fn req_header(dest_host: Option<&str>) -> RequestHeader {
    RequestHeader {
        session_id: "icscf.ims.example;1700000000;1".into(),
        origin_host: "icscf.ims.example".into(),
        origin_realm: "ims.example".into(),
        destination_host: dest_host.map(str::to_owned),
        destination_realm: "ims.example".into(),
    }
}

pub fn ans_header(result: CxResult) -> AnswerHeader {
    AnswerHeader::for_request(&req_header(None), "hss.ims.example", "ims.example", result)
}

pub fn features() -> Vec<SupportedFeatures> {
    vec![SupportedFeatures {
        vendor_id: 10415,
        feature_list_id: 1,
        feature_list: 1,
    }]
}

/// An IMSSubscription (TS 29.228 Annex E) of about 2 kB.
pub fn user_data() -> Bytes {
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><IMSSubscription><PrivateID>alice@ims.example</PrivateID><ServiceProfile>",
    );
    for i in 0..4 {
        x.push_str(&format!(
            "<PublicIdentity><BarringIndication>0</BarringIndication><Identity>sip:alice{i}@ims.example</Identity><Extension><IdentityType>0</IdentityType></Extension></PublicIdentity>"
        ));
    }
    for p in 0..4 {
        x.push_str(&format!(
            "<InitialFilterCriteria><Priority>{p}</Priority><TriggerPoint><ConditionTypeCNF>0</ConditionTypeCNF><SPT><ConditionNegated>0</ConditionNegated><Group>0</Group><Method>INVITE</Method></SPT><SPT><Group>0</Group><SessionCase>0</SessionCase></SPT></TriggerPoint><ApplicationServer><ServerName>sip:as{p}.ims.example:5060</ServerName><DefaultHandling>0</DefaultHandling></ApplicationServer></InitialFilterCriteria>"
        ));
    }
    x.push_str("<Extension><Tenant>project-0123456789abcdef</Tenant></Extension></ServiceProfile></IMSSubscription>");
    Bytes::from(x)
}

pub fn uar() -> Uar {
    Uar {
        header: req_header(None),
        user_name: "alice@ims.example".into(),
        supported_features: features(),
        public_identity: "sip:alice@ims.example".into(),
        visited_network_identifier: "ims.example".into(),
        user_authorization_type: Some(UserAuthorizationType::Registration),
        uar_flags: Some(0),
    }
}

pub fn uaa() -> Uaa {
    Uaa {
        header: ans_header(CxResult::experimental(
            experimental::DIAMETER_FIRST_REGISTRATION,
        )),
        supported_features: features(),
        server_name: None,
        server_capabilities: Some(ServerCapabilities {
            mandatory: vec![1],
            optional: vec![2, 3],
            server_names: vec!["sip:scscf.ims.example:6060".into()],
        }),
    }
}

pub fn sar() -> Sar {
    Sar {
        header: req_header(Some("hss.ims.example")),
        user_name: Some("alice@ims.example".into()),
        supported_features: features(),
        public_identities: vec!["sip:alice@ims.example".into(), "tel:+15551234".into()],
        wildcarded_public_identity: None,
        server_name: "sip:scscf.ims.example:6060".into(),
        server_assignment_type: ServerAssignmentType::Registration,
        user_data_already_available: UserDataAlreadyAvailable::NotAvailable,
        sar_flags: None,
    }
}

pub fn saa() -> Saa {
    Saa {
        header: ans_header(CxResult::Base(2001)),
        user_name: Some("alice@ims.example".into()),
        supported_features: features(),
        user_data: Some(user_data()),
        charging_information: Some(ChargingInformation {
            primary_event_charging_function: Some("aaa://ecf.ims.example".into()),
            primary_charging_collection_function: Some("aaa://ccf.ims.example".into()),
            ..Default::default()
        }),
        associated_identities: Some(AssociatedIdentities {
            user_names: vec!["alice2@ims.example".into()],
        }),
        server_name: None,
        wildcarded_public_identity: None,
    }
}

pub fn lir() -> Lir {
    Lir {
        header: req_header(None),
        originating_request: true,
        supported_features: features(),
        public_identity: "sip:bob@ims.example".into(),
        user_authorization_type: None,
    }
}

pub fn lia() -> Lia {
    Lia {
        header: ans_header(CxResult::Base(2001)),
        supported_features: features(),
        server_name: Some("sip:scscf.ims.example:6060".into()),
        server_capabilities: None,
        wildcarded_public_identity: None,
        lia_flags: Some(0),
    }
}

pub fn mar() -> Mar {
    Mar {
        header: req_header(Some("hss.ims.example")),
        user_name: "alice@ims.example".into(),
        supported_features: features(),
        public_identity: "sip:alice@ims.example".into(),
        sip_auth_data_item: SipAuthDataItem {
            authentication_scheme: Some("Digest-AKAv1-MD5".into()),
            ..Default::default()
        },
        sip_number_auth_items: 1,
        server_name: "sip:scscf.ims.example:6060".into(),
    }
}

pub fn maa() -> Maa {
    let aka = SipAuthDataItem {
        item_number: Some(1),
        authentication_scheme: Some("Digest-AKAv1-MD5".into()),
        authenticate: Some(Bytes::from(vec![0x23; 32])),
        authorization: Some(Bytes::from(vec![0xa5; 8])),
        authentication_context: None,
        confidentiality_key: Some(Bytes::from(vec![0xb4; 16])),
        integrity_key: Some(Bytes::from(vec![0xf7; 16])),
        digest: None,
    };
    let digest = SipAuthDataItem {
        item_number: Some(2),
        authentication_scheme: Some("SIP Digest".into()),
        digest: Some(SipDigestAuthenticate {
            realm: "ims.example".into(),
            algorithm: Some("MD5".into()),
            qop: Some("auth".into()),
            ha1: Bytes::from_static(b"939e7578ed9e3c518a452acee763bce9"),
        }),
        ..Default::default()
    };
    Maa {
        header: ans_header(CxResult::Base(2001)),
        user_name: Some("alice@ims.example".into()),
        supported_features: vec![],
        public_identity: Some("sip:alice@ims.example".into()),
        sip_number_auth_items: Some(2),
        sip_auth_data_items: vec![aka, digest],
    }
}

pub fn rtr() -> Rtr {
    Rtr {
        header: RequestHeader {
            origin_host: "hss.ims.example".into(),
            ..req_header(Some("scscf.ims.example"))
        },
        user_name: "alice@ims.example".into(),
        associated_identities: None,
        supported_features: vec![],
        public_identities: vec!["sip:alice@ims.example".into()],
        deregistration_reason: DeregistrationReason {
            reason_code: ReasonCode::PermanentTermination,
            reason_info: Some("subscription deleted".into()),
        },
    }
}

pub fn rta() -> Rta {
    Rta {
        header: ans_header(CxResult::Base(2001)),
        associated_identities: None,
        supported_features: vec![],
    }
}

pub fn ppr() -> Ppr {
    Ppr {
        header: RequestHeader {
            origin_host: "hss.ims.example".into(),
            ..req_header(Some("scscf.ims.example"))
        },
        user_name: "alice@ims.example".into(),
        supported_features: features(),
        user_data: Some(user_data()),
        charging_information: None,
        sip_auth_data_item: None,
    }
}

pub fn ppa() -> Ppa {
    Ppa {
        header: ans_header(CxResult::experimental(
            experimental::DIAMETER_ERROR_USER_UNKNOWN,
        )),
        supported_features: vec![],
    }
}

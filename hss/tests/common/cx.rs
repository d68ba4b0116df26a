//! Subscribers and Cx requests shared by the Cx tests.

#![allow(dead_code)]

use hss::cx::{CxContext, CxServer};
use hss::store::*;
use ims_diameter::cx::*;
use ims_sip::auth::aka::{Usim, UsimFailure};
use ims_sip::auth::milenage::{opc as derive_opc, Block, Milenage};
use ims_sip::auth::{Algorithm, Ha1, Sqn};

pub const HOME: &str = "ims.example.net";
pub const SCSCF: &str = "sip:scscf.ims.example.net:5080";
pub const OTHER_SCSCF: &str = "sip:scscf2.ims.example.net:5080";
pub const ALICE_IMPI: &str = "alice@ims.example.net";
pub const ALICE: &str = "sip:alice@ims.example.net";
pub const ALICE_TEL: &str = "tel:+15550001";
pub const ALICE_BARRED: &str = "sip:alice-barred@ims.example.net";
pub const ALICE_OTHER: &str = "sip:alice-other@ims.example.net";
pub const BOB_IMPI: &str = "bob@ims.example.net";
pub const BOB: &str = "sip:bob@ims.example.net";
pub const CAROL_IMPI: &str = "carol@ims.example.net";
pub const CAROL: &str = "sip:carol@ims.example.net";

/// TS 35.208 test set 1.
pub const K: Block = [
    0x46, 0x5b, 0x5c, 0xe8, 0xb1, 0x99, 0xb4, 0x9f, 0xaa, 0x5f, 0x0a, 0x2e, 0xe2, 0x38, 0xa6, 0xbc,
];
pub const OP: Block = [
    0xcd, 0xc2, 0x02, 0xd5, 0x12, 0x3e, 0x20, 0xf6, 0x2b, 0x6d, 0x67, 0x6a, 0xc7, 0x2c, 0xb3, 0x18,
];

pub fn opc() -> Block {
    derive_opc(&K, &OP)
}

pub fn digest_ha1(impi: &str) -> Ha1 {
    Ha1::compute(Algorithm::Md5, impi, HOME, b"secret")
}

pub fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        mandatory: vec![1],
        optional: vec![2, 3],
        server_names: vec![SCSCF.into()],
    }
}

pub fn server(store: &Store) -> CxServer {
    CxServer::new(CxContext {
        store: store.clone(),
        origin_host: "hss.ims.example.net".into(),
        origin_realm: HOME.into(),
        capabilities: capabilities(),
    })
}

fn ifc(priority: i64, ppi: Option<ProfilePartIndicator>) -> InitialFilterCriteria {
    InitialFilterCriteria {
        priority,
        trigger_point: Some(TriggerPoint {
            condition_type_cnf: false,
            spts: vec![Spt {
                condition_negated: false,
                group: 0,
                condition: SptCondition::Method {
                    method: "INVITE".into(),
                    registration_type: Vec::new(),
                },
            }],
        }),
        application_server: ApplicationServer {
            server_name: "sip:as.ims.example.net".into(),
            default_handling: DefaultHandling::SessionContinued,
            service_info: None,
            include_register_request: false,
            include_register_response: false,
        },
        profile_part_indicator: ppi,
    }
}

fn impu(impu: &str, barred: bool, set: Option<i64>, profile: &str) -> PublicIdentity {
    PublicIdentity {
        impu: impu.into(),
        barred,
        implicit_set: set,
        service_profile: profile.into(),
    }
}

/// alice: digest and AKA; `ALICE` and `ALICE_TEL` (barred) in set 1, `ALICE_BARRED`
/// alone and barred, `ALICE_OTHER` alone with a profile for the unregistered state;
/// may roam to visited.example.org. bob: digest only, one identity, no services.
pub fn alice() -> SubscriptionData {
    SubscriptionData {
        cloud: CloudProfile {
            project_id: Some("proj-a&b".into()),
            user_id: None,
        },
        private_identities: vec![PrivateIdentityData {
            impi: ALICE_IMPI.into(),
            realm: HOME.into(),
            digest_ha1: Some(digest_ha1(ALICE_IMPI)),
            aka: Some(AkaSecrets {
                k: K,
                opc: opc(),
                amf: [0x80, 0x00],
                sqn: None,
            }),
        }],
        public_identities: vec![
            impu(ALICE, false, Some(1), "default"),
            impu(ALICE_TEL, true, Some(1), "default"),
            impu(ALICE_BARRED, true, Some(2), "default"),
            impu(ALICE_OTHER, false, None, "unreg"),
        ],
        service_profiles: vec![
            ServiceProfile {
                name: "default".into(),
                ifcs: vec![ifc(1, Some(ProfilePartIndicator::Registered))],
            },
            ServiceProfile {
                name: "unreg".into(),
                ifcs: vec![ifc(1, Some(ProfilePartIndicator::Unregistered))],
            },
        ],
        roaming_networks: vec!["visited.example.org".into()],
    }
}

pub fn bob() -> SubscriptionData {
    SubscriptionData {
        private_identities: vec![PrivateIdentityData {
            impi: BOB_IMPI.into(),
            realm: HOME.into(),
            digest_ha1: Some(digest_ha1(BOB_IMPI)),
            aka: None,
        }],
        public_identities: vec![impu(BOB, false, None, "default")],
        service_profiles: vec![ServiceProfile {
            name: "default".into(),
            ifcs: Vec::new(),
        }],
        ..SubscriptionData::default()
    }
}

pub async fn provision(store: &Store) {
    store.create("alice", &alice()).await.unwrap();
    store.create("bob", &bob()).await.unwrap();
}

pub fn header(dest: Option<&str>) -> RequestHeader {
    RequestHeader {
        session_id: "scscf.ims.example.net;1;1".into(),
        origin_host: "scscf.ims.example.net".into(),
        origin_realm: HOME.into(),
        destination_host: dest.map(str::to_owned),
        destination_realm: HOME.into(),
    }
}

pub fn uar(impi: &str, impu: &str, visited: &str, t: Option<UserAuthorizationType>) -> Uar {
    Uar {
        header: header(None),
        user_name: impi.into(),
        supported_features: Vec::new(),
        public_identity: impu.into(),
        visited_network_identifier: visited.into(),
        user_authorization_type: t,
        uar_flags: None,
    }
}

pub fn mar(impi: &str, impu: &str, scheme: &str, n: u32, authorization: Option<Vec<u8>>) -> Mar {
    Mar {
        header: header(None),
        user_name: impi.into(),
        supported_features: Vec::new(),
        public_identity: impu.into(),
        sip_auth_data_item: SipAuthDataItem {
            authentication_scheme: Some(scheme.into()),
            authorization: authorization.map(Into::into),
            ..SipAuthDataItem::default()
        },
        sip_number_auth_items: n,
        server_name: SCSCF.into(),
    }
}

pub fn sar(impi: Option<&str>, impus: &[&str], scscf: &str, t: ServerAssignmentType) -> Sar {
    Sar {
        header: header(None),
        user_name: impi.map(str::to_owned),
        supported_features: Vec::new(),
        public_identities: impus.iter().map(|s| s.to_string()).collect(),
        wildcarded_public_identity: None,
        server_name: scscf.into(),
        server_assignment_type: t,
        user_data_already_available: UserDataAlreadyAvailable::NotAvailable,
        sar_flags: None,
    }
}

pub fn lir(impu: &str, originating: bool) -> Lir {
    Lir {
        header: header(None),
        originating_request: originating,
        supported_features: Vec::new(),
        public_identity: impu.into(),
        user_authorization_type: None,
    }
}

pub async fn sar_answer(cx: &CxServer, req: Sar) -> Saa {
    Saa::from_message(&cx.answer(&req.to_message()).await).unwrap()
}

pub async fn lir_answer(cx: &CxServer, impu: &str, originating: bool) -> Lia {
    Lia::from_message(&cx.answer(&lir(impu, originating).to_message()).await).unwrap()
}

/// RAND and AUTN of an AKA SIP-Auth-Data-Item.
pub fn rand_autn(item: &SipAuthDataItem) -> (Block, Block) {
    let a = item.authenticate.as_ref().unwrap();
    assert_eq!(a.len(), 32, "RAND || AUTN");
    (a[..16].try_into().unwrap(), a[16..].try_into().unwrap())
}

/// A USIM far ahead of the HSS (SQN_MS = 2^30) given the AKA challenge of `item`: it
/// answers with a sync failure; the USIM and the RAND || AUTS of its re-synchronisation.
pub fn usim_far_ahead(item: &SipAuthDataItem) -> (Usim, Vec<u8>) {
    let mut ahead = Usim::new(
        Milenage::new(&K, &opc()),
        Sqn::new(1 << 30).unwrap(),
        1 << 28,
    );
    let (rand, autn) = rand_autn(item);
    let Err(UsimFailure::SyncFailure { auts }) = ahead.authenticate(&rand, &autn) else {
        panic!("expected a sync failure");
    };
    let mut resync = rand.to_vec();
    resync.extend_from_slice(&auts);
    (ahead, resync)
}

//! The Cx handlers in process (no connection): every branch of UAR, MAR, SAR and LIR
//! (TS 29.228 §6.1.1, §6.1.2, §6.1.4, §6.3) against a real store, on SQLite and (with
//! `IMS_TEST_POSTGRES_URL`) on PostgreSQL. AKA vectors are checked with ims-sip's USIM.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/cx.rs"]
mod cx_fixture;

use cx_fixture::*;
use hss::store::{AkaSecrets, PrivateIdentityData, RegistrationState, Store};
use ims_diameter::cx::*;
use ims_diameter::dict::{base, command, experimental, result};
use ims_diameter::Message;
use ims_sip::auth::aka::Usim;
use ims_sip::auth::milenage::Milenage;
use ims_sip::auth::{Algorithm, Ha1, Sqn};

fn exp(code: u32) -> CxResult {
    CxResult::experimental(code)
}

async fn uar_scenarios(store: Store, _: String) {
    provision(&store).await;
    let cx = server(&store);
    let ask = |impi: &str, impu: &str, visited: &str, t| {
        let m = uar(impi, impu, visited, t).to_message();
        let cx = cx.clone();
        async move { Uaa::from_message(&cx.answer(&m).await).unwrap() }
    };
    use UserAuthorizationType as T;
    let a = ask(
        "nobody@ims.example.net",
        "sip:nobody@ims.example.net",
        HOME,
        None,
    )
    .await;
    assert_eq!(
        a.header.result,
        exp(experimental::DIAMETER_ERROR_USER_UNKNOWN)
    );
    let a = ask("nobody@ims.example.net", ALICE, HOME, None).await;
    assert_eq!(
        a.header.result,
        exp(experimental::DIAMETER_ERROR_USER_UNKNOWN)
    );
    let a = ask(ALICE_IMPI, BOB, HOME, None).await;
    assert_eq!(
        a.header.result,
        exp(experimental::DIAMETER_ERROR_IDENTITIES_DONT_MATCH)
    );
    // Barred, alone in its set: rejected; barred in a set with a non-barred one: allowed.
    let a = ask(ALICE_IMPI, ALICE_BARRED, HOME, None).await;
    assert_eq!(
        a.header.result,
        CxResult::Base(result::DIAMETER_AUTHORIZATION_REJECTED)
    );
    let a = ask(ALICE_IMPI, ALICE_TEL, HOME, None).await;
    assert_eq!(
        a.header.result,
        exp(experimental::DIAMETER_FIRST_REGISTRATION)
    );
    // De-registration of a barred identity is not refused for barring.
    let a = ask(ALICE_IMPI, ALICE_BARRED, HOME, Some(T::DeRegistration)).await;
    assert_eq!(
        a.header.result,
        exp(experimental::DIAMETER_ERROR_IDENTITY_NOT_REGISTERED)
    );
    // Roaming.
    let a = ask(ALICE_IMPI, ALICE, "visited.example.org", None).await;
    assert_eq!(
        a.header.result,
        exp(experimental::DIAMETER_FIRST_REGISTRATION)
    );
    let a = ask(ALICE_IMPI, ALICE, "elsewhere.example.org", None).await;
    assert_eq!(
        a.header.result,
        exp(experimental::DIAMETER_ERROR_ROAMING_NOT_ALLOWED)
    );
    // First registration: capabilities, no name.
    let a = ask(ALICE_IMPI, ALICE, HOME, Some(T::Registration)).await;
    assert_eq!(
        a.header.result,
        exp(experimental::DIAMETER_FIRST_REGISTRATION)
    );
    assert_eq!(a.server_name, None);
    assert_eq!(a.server_capabilities, Some(capabilities()));
    let a = ask(
        ALICE_IMPI,
        ALICE,
        HOME,
        Some(T::RegistrationAndCapabilities),
    )
    .await;
    assert_eq!(a.header.result, CxResult::Base(result::DIAMETER_SUCCESS));
    assert_eq!(a.server_capabilities, Some(capabilities()));
}

async fn registration_flow(store: Store, _: String) {
    provision(&store).await;
    let cx = server(&store);
    // MAR stores the S-CSCF name; UAR then returns it with FIRST_REGISTRATION.
    let maa = Maa::from_message(
        &cx.answer(&mar(ALICE_IMPI, ALICE, "SIP Digest", 1, None).to_message())
            .await,
    )
    .unwrap();
    assert_eq!(maa.header.result, CxResult::Base(result::DIAMETER_SUCCESS));
    let d = maa.sip_auth_data_items[0].digest.clone().unwrap();
    assert_eq!(d.realm, "ims.example.net");
    assert_eq!(d.algorithm.as_deref(), Some("MD5"));
    assert_eq!(d.qop.as_deref(), Some("auth"));
    assert_eq!(&d.ha1[..], digest_ha1(ALICE_IMPI).as_hex().as_bytes());
    let reg = store.registration(ALICE_TEL).await.unwrap().unwrap();
    assert_eq!(
        reg.scscf.as_deref(),
        Some(SCSCF),
        "stored for the implicit set"
    );
    assert_eq!(reg.state, RegistrationState::NotRegistered);
    let a = Uaa::from_message(
        &cx.answer(&uar(ALICE_IMPI, ALICE, HOME, None).to_message())
            .await,
    )
    .unwrap();
    assert_eq!(
        a.header.result,
        exp(experimental::DIAMETER_FIRST_REGISTRATION)
    );
    assert_eq!(a.server_name.as_deref(), Some(SCSCF));
    assert_eq!(a.server_capabilities, None);

    // SAR REGISTRATION: the whole implicit set registers; User-Data describes it.
    let saa = sar_answer(
        &cx,
        sar(
            Some(ALICE_IMPI),
            &[ALICE],
            SCSCF,
            ServerAssignmentType::Registration,
        ),
    )
    .await;
    assert_eq!(saa.header.result, CxResult::Base(result::DIAMETER_SUCCESS));
    assert_eq!(saa.user_name.as_deref(), Some(ALICE_IMPI));
    let xml = String::from_utf8(saa.user_data.unwrap().to_vec()).unwrap();
    assert!(
        xml.contains("<Identity>sip:alice@ims.example.net</Identity>"),
        "{xml}"
    );
    assert!(
        xml.contains("<BarringIndication>1</BarringIndication><Identity>tel:+15550001</Identity>"),
        "{xml}"
    );
    assert!(!xml.contains(ALICE_BARRED), "another implicit set: {xml}");
    assert!(xml.contains("<ProjectId>proj-a&amp;b</ProjectId>"), "{xml}");
    for impu in [ALICE, ALICE_TEL] {
        let r = store.registration(impu).await.unwrap().unwrap();
        assert_eq!(r.state, RegistrationState::Registered, "{impu}");
        assert_eq!(r.scscf.as_deref(), Some(SCSCF));
    }
    assert_eq!(
        store
            .registration(ALICE_BARRED)
            .await
            .unwrap()
            .unwrap()
            .state,
        RegistrationState::NotRegistered
    );
    // Subsequent registration, LIR, UAR de-registration.
    let a = Uaa::from_message(
        &cx.answer(&uar(ALICE_IMPI, ALICE, HOME, None).to_message())
            .await,
    )
    .unwrap();
    assert_eq!(
        a.header.result,
        exp(experimental::DIAMETER_SUBSEQUENT_REGISTRATION)
    );
    assert_eq!(a.server_name.as_deref(), Some(SCSCF));
    let l = lir_answer(&cx, ALICE_TEL, false).await;
    assert_eq!(l.header.result, CxResult::Base(result::DIAMETER_SUCCESS));
    assert_eq!(l.server_name.as_deref(), Some(SCSCF));
    let a = Uaa::from_message(
        &cx.answer(
            &uar(
                ALICE_IMPI,
                ALICE,
                HOME,
                Some(UserAuthorizationType::DeRegistration),
            )
            .to_message(),
        )
        .await,
    )
    .unwrap();
    assert_eq!(a.header.result, CxResult::Base(result::DIAMETER_SUCCESS));
    assert_eq!(a.server_name.as_deref(), Some(SCSCF));
    // RE_REGISTRATION with the data already at the S-CSCF: no User-Data.
    let mut re = sar(
        Some(ALICE_IMPI),
        &[ALICE],
        SCSCF,
        ServerAssignmentType::ReRegistration,
    );
    re.user_data_already_available = UserDataAlreadyAvailable::AlreadyAvailable;
    let saa = sar_answer(&cx, re).await;
    assert_eq!(saa.header.result, CxResult::Base(result::DIAMETER_SUCCESS));
    assert_eq!(saa.user_data, None);

    // USER_DEREGISTRATION: not registered, name cleared; LIR then finds no service.
    let saa = sar_answer(
        &cx,
        sar(
            Some(ALICE_IMPI),
            &[ALICE_TEL],
            SCSCF,
            ServerAssignmentType::UserDeregistration,
        ),
    )
    .await;
    assert_eq!(saa.header.result, CxResult::Base(result::DIAMETER_SUCCESS));
    assert_eq!(saa.user_data, None);
    for impu in [ALICE, ALICE_TEL] {
        assert_eq!(
            store.registration(impu).await.unwrap().unwrap(),
            Default::default()
        );
    }
    let l = lir_answer(&cx, ALICE, false).await;
    assert_eq!(
        l.header.result,
        exp(experimental::DIAMETER_ERROR_IDENTITY_NOT_REGISTERED)
    );
    // ... except for an originating request, which has unregistered services.
    let l = lir_answer(&cx, ALICE, true).await;
    assert_eq!(
        l.header.result,
        exp(experimental::DIAMETER_UNREGISTERED_SERVICE)
    );
    assert_eq!(l.server_capabilities, Some(capabilities()));
}

async fn unregistered_services(store: Store, _: String) {
    provision(&store).await;
    let cx = server(&store);
    // ALICE_OTHER's profile has an iFC for the unregistered state.
    let l = lir_answer(&cx, ALICE_OTHER, false).await;
    assert_eq!(
        l.header.result,
        exp(experimental::DIAMETER_UNREGISTERED_SERVICE)
    );
    assert_eq!(l.server_capabilities, Some(capabilities()));
    assert_eq!(l.server_name, None);
    let l = lir_answer(&cx, "sip:ghost@ims.example.net", false).await;
    assert_eq!(
        l.header.result,
        exp(experimental::DIAMETER_ERROR_USER_UNKNOWN)
    );
    // UNREGISTERED_USER: an S-CSCF now holds it, with the profile.
    let saa = sar_answer(
        &cx,
        sar(
            None,
            &[ALICE_OTHER],
            SCSCF,
            ServerAssignmentType::UnregisteredUser,
        ),
    )
    .await;
    assert_eq!(saa.header.result, CxResult::Base(result::DIAMETER_SUCCESS));
    let xml = String::from_utf8(saa.user_data.unwrap().to_vec()).unwrap();
    assert!(
        xml.contains("<ProfilePartIndicator>1</ProfilePartIndicator>"),
        "{xml}"
    );
    let r = store.registration(ALICE_OTHER).await.unwrap().unwrap();
    assert_eq!(r.state, RegistrationState::Unregistered);
    let l = lir_answer(&cx, ALICE_OTHER, false).await;
    assert_eq!(l.header.result, CxResult::Base(result::DIAMETER_SUCCESS));
    assert_eq!(l.server_name.as_deref(), Some(SCSCF));
    // A release from another S-CSCF (one the user has left) changes nothing; from the
    // S-CSCF holding it, the HSS forgets the assignment.
    for (scscf, after) in [
        ("sip:other-scscf.ims.example.net", r.clone()),
        (SCSCF, Default::default()),
    ] {
        let saa = sar_answer(
            &cx,
            sar(
                Some(ALICE_IMPI),
                &[ALICE_OTHER],
                scscf,
                ServerAssignmentType::TimeoutDeregistration,
            ),
        )
        .await;
        assert_eq!(saa.header.result, CxResult::Base(result::DIAMETER_SUCCESS));
        assert_eq!(
            store.registration(ALICE_OTHER).await.unwrap().unwrap(),
            after,
            "{scscf}"
        );
    }
    let saa = sar_answer(
        &cx,
        sar(
            None,
            &[ALICE_OTHER],
            SCSCF,
            ServerAssignmentType::UnregisteredUser,
        ),
    )
    .await;
    assert_eq!(saa.header.result, CxResult::Base(result::DIAMETER_SUCCESS));
    // UAR for an unregistered identity: SUBSEQUENT_REGISTRATION to the same S-CSCF.
    let a = Uaa::from_message(
        &cx.answer(&uar(ALICE_IMPI, ALICE_OTHER, HOME, None).to_message())
            .await,
    )
    .unwrap();
    assert_eq!(
        a.header.result,
        exp(experimental::DIAMETER_SUBSEQUENT_REGISTRATION)
    );
    assert_eq!(a.server_name.as_deref(), Some(SCSCF));
}

async fn sar_errors(store: Store, _: String) {
    provision(&store).await;
    let cx = server(&store);
    use ServerAssignmentType as T;
    let saa = sar_answer(
        &cx,
        sar(None, &["sip:ghost@ims.example.net"], SCSCF, T::Registration),
    )
    .await;
    assert_eq!(
        saa.header.result,
        exp(experimental::DIAMETER_ERROR_USER_UNKNOWN)
    );
    let saa = sar_answer(&cx, sar(Some(BOB_IMPI), &[ALICE], SCSCF, T::Registration)).await;
    assert_eq!(
        saa.header.result,
        exp(experimental::DIAMETER_ERROR_IDENTITIES_DONT_MATCH)
    );
    let saa = sar_answer(
        &cx,
        sar(Some(ALICE_IMPI), &[ALICE, BOB], SCSCF, T::Registration),
    )
    .await;
    assert_eq!(
        saa.header.result,
        exp(experimental::DIAMETER_ERROR_IDENTITIES_DONT_MATCH)
    );
    let saa = sar_answer(&cx, sar(None, &[ALICE], SCSCF, T::AaaUserDataRequest)).await;
    assert_eq!(
        saa.header.result,
        exp(experimental::DIAMETER_ERROR_IN_ASSIGNMENT_TYPE)
    );
    // Registered at SCSCF: another S-CSCF may not take it as unregistered, nor fetch it.
    sar_answer(&cx, sar(None, &[ALICE], SCSCF, T::Registration)).await;
    let saa = sar_answer(&cx, sar(None, &[ALICE], OTHER_SCSCF, T::UnregisteredUser)).await;
    assert_eq!(
        saa.header.result,
        exp(experimental::DIAMETER_ERROR_IDENTITY_ALREADY_REGISTERED)
    );
    let saa = sar_answer(&cx, sar(None, &[ALICE], OTHER_SCSCF, T::NoAssignment)).await;
    assert_eq!(
        saa.header.result,
        CxResult::Base(result::DIAMETER_UNABLE_TO_COMPLY)
    );
    let saa = sar_answer(&cx, sar(None, &[ALICE], SCSCF, T::NoAssignment)).await;
    assert_eq!(saa.header.result, CxResult::Base(result::DIAMETER_SUCCESS));
    assert!(saa.user_data.is_some());
    assert_eq!(
        store.registration(ALICE).await.unwrap().unwrap().state,
        RegistrationState::Registered
    );
    // AUTHENTICATION_FAILURE keeps a registered identity's S-CSCF ...
    sar_answer(&cx, sar(None, &[ALICE], SCSCF, T::AuthenticationFailure)).await;
    assert_eq!(
        store
            .registration(ALICE)
            .await
            .unwrap()
            .unwrap()
            .scscf
            .as_deref(),
        Some(SCSCF)
    );
    // ... and clears the name a MAR stored for a not registered one.
    cx.answer(&mar(BOB_IMPI, BOB, "SIP Digest", 1, None).to_message())
        .await;
    assert_eq!(
        store
            .registration(BOB)
            .await
            .unwrap()
            .unwrap()
            .scscf
            .as_deref(),
        Some(SCSCF)
    );
    let saa = sar_answer(
        &cx,
        sar(Some(BOB_IMPI), &[BOB], SCSCF, T::AuthenticationTimeout),
    )
    .await;
    assert_eq!(saa.header.result, CxResult::Base(result::DIAMETER_SUCCESS));
    assert_eq!(store.registration(BOB).await.unwrap().unwrap().scscf, None);
    // *_STORE_SERVER_NAME keeps the name while de-registering; User-Name alone names
    // every identity of the subscription.
    let saa = sar_answer(
        &cx,
        sar(
            Some(ALICE_IMPI),
            &[],
            SCSCF,
            T::UserDeregistrationStoreServerName,
        ),
    )
    .await;
    assert_eq!(saa.header.result, CxResult::Base(result::DIAMETER_SUCCESS));
    for impu in [ALICE, ALICE_TEL, ALICE_BARRED, ALICE_OTHER] {
        let r = store.registration(impu).await.unwrap().unwrap();
        assert_eq!(r.state, RegistrationState::NotRegistered, "{impu}");
        assert_eq!(r.scscf.as_deref(), Some(SCSCF), "{impu}");
    }
    // ADMINISTRATIVE_DEREGISTRATION clears it.
    sar_answer(
        &cx,
        sar(None, &[ALICE], SCSCF, T::AdministrativeDeregistration),
    )
    .await;
    assert_eq!(
        store.registration(ALICE).await.unwrap().unwrap().scscf,
        None
    );
}

async fn mar_aka(store: Store, _: String) {
    provision(&store).await;
    let cx = server(&store);
    let mut usim = Usim::new(Milenage::new(&K, &opc()), Sqn::new(0).unwrap(), 1 << 28);
    // Nine asked, five given; each one a valid challenge in SQN order.
    let maa = Maa::from_message(
        &cx.answer(&mar(ALICE_IMPI, ALICE, "Digest-AKAv1-MD5", 9, None).to_message())
            .await,
    )
    .unwrap();
    assert_eq!(maa.header.result, CxResult::Base(result::DIAMETER_SUCCESS));
    assert_eq!(maa.sip_number_auth_items, Some(5));
    assert_eq!(maa.sip_auth_data_items.len(), 5);
    for (i, item) in maa.sip_auth_data_items.iter().enumerate() {
        assert_eq!(item.item_number, Some(i as u32 + 1));
        assert_eq!(
            item.authentication_scheme.as_deref(),
            Some("Digest-AKAv1-MD5")
        );
        let (rand, autn) = rand_autn(item);
        let ans = usim.authenticate(&rand, &autn).unwrap();
        assert_eq!(&ans.res[..], &item.authorization.as_ref().unwrap()[..]);
        assert_eq!(&ans.ck[..], &item.confidentiality_key.as_ref().unwrap()[..]);
        assert_eq!(&ans.ik[..], &item.integrity_key.as_ref().unwrap()[..]);
    }
    // Unknown scheme: the subscriber has AKA, so AKA.
    let maa = Maa::from_message(
        &cx.answer(&mar(ALICE_IMPI, ALICE, "Unknown", 1, None).to_message())
            .await,
    )
    .unwrap();
    assert_eq!(
        maa.sip_auth_data_items[0].authentication_scheme.as_deref(),
        Some("Digest-AKAv1-MD5")
    );

    // A USIM far ahead rejects the HSS's SQN; its AUTS re-synchronises the HSS.
    let (mut ahead, resync) = usim_far_ahead(&maa.sip_auth_data_items[0]);
    // A corrupted AUTS is refused and leaves SQN alone.
    let mut bad = resync.clone();
    bad[20] ^= 1;
    let maa = Maa::from_message(
        &cx.answer(&mar(ALICE_IMPI, ALICE, "Digest-AKAv1-MD5", 1, Some(bad)).to_message())
            .await,
    )
    .unwrap();
    assert_eq!(
        maa.header.result,
        CxResult::Base(result::DIAMETER_AUTHENTICATION_REJECTED)
    );
    assert!(maa.sip_auth_data_items.is_empty());
    let maa = Maa::from_message(
        &cx.answer(&mar(ALICE_IMPI, ALICE, "Digest-AKAv1-MD5", 1, Some(vec![0; 12])).to_message())
            .await,
    )
    .unwrap();
    assert_eq!(
        maa.header.result,
        CxResult::Base(result::DIAMETER_INVALID_AVP_VALUE)
    );
    let maa = Maa::from_message(
        &cx.answer(&mar(ALICE_IMPI, ALICE, "Digest-AKAv1-MD5", 2, Some(resync)).to_message())
            .await,
    )
    .unwrap();
    assert_eq!(maa.header.result, CxResult::Base(result::DIAMETER_SUCCESS));
    assert_eq!(maa.sip_auth_data_items.len(), 2);
    for item in &maa.sip_auth_data_items {
        let (rand, autn) = rand_autn(item);
        let ans = ahead.authenticate(&rand, &autn).unwrap();
        assert_eq!(&ans.res[..], &item.authorization.as_ref().unwrap()[..]);
    }
}

/// Kamailio 5.6's S-CSCF sends the AKA re-synchronisation MAR with its default scheme
/// (`Digest-MD5` when that is MD5) but a SIP-Authorization of RAND || AUTS. For an IMPI
/// with AKA credentials that is a resync (MAC-S verified, fresh AKA vectors); a bad AUTS
/// leaves SQN_HE alone; a digest-only IMPI and other lengths keep the Digest answer.
async fn mar_resync_under_a_digest_scheme(store: Store, _: String) {
    provision(&store).await;
    let mut carol = bob();
    carol.private_identities[0] = PrivateIdentityData {
        impi: CAROL_IMPI.into(),
        realm: HOME.into(),
        digest_ha1: None,
        aka: Some(AkaSecrets {
            k: K,
            opc: opc(),
            amf: [0x80, 0x00],
            sqn: None,
        }),
    };
    carol.public_identities[0].impu = CAROL.into();
    store.create("carol", &carol).await.unwrap();
    let cx = server(&store);
    let ask = |impi: &'static str, impu: &'static str, scheme: &'static str, auth| {
        let m = mar(impi, impu, scheme, 2, auth).to_message();
        let cx = cx.clone();
        async move { Maa::from_message(&cx.answer(&m).await).unwrap() }
    };
    let sqn_of = |impi: &'static str| {
        let store = store.clone();
        async move {
            store
                .credentials(impi)
                .await
                .unwrap()
                .unwrap()
                .aka
                .unwrap()
                .sqn
        }
    };
    for (impi, impu, scheme) in [
        (ALICE_IMPI, ALICE, "Digest-MD5"),
        (CAROL_IMPI, CAROL, "SIP Digest"),
    ] {
        // A challenge the USIM, far ahead, answers with AUTS.
        let maa = ask(impi, impu, "Digest-AKAv1-MD5", None).await;
        let (mut ahead, resync) = usim_far_ahead(&maa.sip_auth_data_items[0]);
        // Attack: a corrupted AUTS (MAC-S) is refused and SQN_HE stays.
        let before = sqn_of(impi).await;
        let mut bad = resync.clone();
        bad[25] ^= 1;
        let a = ask(impi, impu, scheme, Some(bad)).await;
        assert_eq!(
            a.header.result,
            CxResult::Base(result::DIAMETER_AUTHENTICATION_REJECTED),
            "{impi}"
        );
        assert!(a.sip_auth_data_items.is_empty());
        assert_eq!(sqn_of(impi).await, before, "{impi}: SQN_HE unchanged");
        // The genuine AUTS re-synchronises; the vectors are AKA ones the USIM accepts.
        let a = ask(impi, impu, scheme, Some(resync)).await;
        assert_eq!(
            a.header.result,
            CxResult::Base(result::DIAMETER_SUCCESS),
            "{impi}"
        );
        assert_eq!(a.sip_auth_data_items.len(), 2);
        for item in &a.sip_auth_data_items {
            assert_eq!(
                item.authentication_scheme.as_deref(),
                Some("Digest-AKAv1-MD5")
            );
            assert!(item.digest.is_none());
            let (rand, autn) = rand_autn(item);
            let ans = ahead.authenticate(&rand, &autn).unwrap();
            assert_eq!(&ans.res[..], &item.authorization.as_ref().unwrap()[..]);
        }
        assert!(sqn_of(impi).await.value() > 1 << 30, "{impi}: SQN_HE moved");
    }
    // A digest-only IMPI: 30 bytes change nothing, the Digest answer stays.
    let a = ask(BOB_IMPI, BOB, "Digest-MD5", Some(vec![7; 30])).await;
    assert_eq!(a.header.result, CxResult::Base(result::DIAMETER_SUCCESS));
    assert_eq!(
        a.sip_auth_data_items[0].authentication_scheme.as_deref(),
        Some("SIP Digest")
    );
    assert_eq!(
        &a.sip_auth_data_items[0].digest.as_ref().unwrap().ha1[..],
        digest_ha1(BOB_IMPI).as_hex().as_bytes()
    );
    // Another length under a Digest scheme is not RAND || AUTS: Digest for alice, and
    // still no scheme for carol, who has no password.
    let before = sqn_of(ALICE_IMPI).await;
    let a = ask(ALICE_IMPI, ALICE, "Digest-MD5", Some(vec![7; 12])).await;
    assert_eq!(a.header.result, CxResult::Base(result::DIAMETER_SUCCESS));
    assert!(a.sip_auth_data_items[0].digest.is_some());
    assert_eq!(sqn_of(ALICE_IMPI).await, before);
    let a = ask(CAROL_IMPI, CAROL, "Digest-MD5", Some(vec![7; 31])).await;
    assert_eq!(
        a.header.result,
        exp(experimental::DIAMETER_ERROR_AUTH_SCHEME_NOT_SUPPORTED)
    );
    let a = ask(CAROL_IMPI, CAROL, "Digest-MD5", None).await;
    assert_eq!(
        a.header.result,
        exp(experimental::DIAMETER_ERROR_AUTH_SCHEME_NOT_SUPPORTED)
    );
}

async fn mar_schemes(store: Store, _: String) {
    provision(&store).await;
    let cx = server(&store);
    let maa = |impi: &'static str, impu: &'static str, scheme: &'static str| {
        let m = mar(impi, impu, scheme, 1, None).to_message();
        let cx = cx.clone();
        async move { Maa::from_message(&cx.answer(&m).await).unwrap() }
    };
    let a = maa(BOB_IMPI, BOB, "Digest-AKAv1-MD5").await;
    assert_eq!(
        a.header.result,
        exp(experimental::DIAMETER_ERROR_AUTH_SCHEME_NOT_SUPPORTED)
    );
    let a = maa(BOB_IMPI, BOB, "NTLM").await;
    assert_eq!(
        a.header.result,
        exp(experimental::DIAMETER_ERROR_AUTH_SCHEME_NOT_SUPPORTED)
    );
    let a = maa(BOB_IMPI, BOB, "Unknown").await;
    assert_eq!(a.header.result, CxResult::Base(result::DIAMETER_SUCCESS));
    assert_eq!(
        a.sip_auth_data_items[0].authentication_scheme.as_deref(),
        Some("SIP Digest")
    );
    let a = maa(BOB_IMPI, ALICE, "SIP Digest").await;
    assert_eq!(
        a.header.result,
        exp(experimental::DIAMETER_ERROR_IDENTITIES_DONT_MATCH)
    );
    let a = maa(
        "ghost@ims.example.net",
        "sip:ghost@ims.example.net",
        "SIP Digest",
    )
    .await;
    assert_eq!(
        a.header.result,
        exp(experimental::DIAMETER_ERROR_USER_UNKNOWN)
    );
}

async fn malformed_requests(store: Store, _: String) {
    provision(&store).await;
    let cx = server(&store);
    let mut m = uar(ALICE_IMPI, ALICE, HOME, None).to_message();
    m.avps
        .retain(|a| !a.is(&ims_diameter::dict::cx::PUBLIC_IDENTITY));
    let ans = cx.answer(&m).await;
    assert_eq!(ans.result_code(), Some(result::DIAMETER_MISSING_AVP));
    assert!(ans.find(&base::FAILED_AVP).is_some());
    let rtr = Rtr {
        header: header(Some("hss.ims.example.net")),
        user_name: ALICE_IMPI.into(),
        associated_identities: None,
        supported_features: Vec::new(),
        public_identities: vec![ALICE.into()],
        deregistration_reason: DeregistrationReason {
            reason_code: ReasonCode::PermanentTermination,
            reason_info: None,
        },
    };
    let ans = cx.answer(&rtr.to_message()).await;
    assert_eq!(
        ans.result_code(),
        Some(result::DIAMETER_COMMAND_UNSUPPORTED)
    );
    let mut odd = Message::request(399, ims_diameter::dict::CX_APPLICATION_ID);
    odd.avps = m.avps.clone();
    assert_ne!(odd.command_code, command::USER_AUTHORIZATION);
    let ans = cx.answer(&odd).await;
    assert_eq!(
        ans.result_code(),
        Some(result::DIAMETER_COMMAND_UNSUPPORTED)
    );
}

/// Polls `f` once (as the Diameter connection task does, issue 12): its output if it
/// needed no wait.
fn at_once<T>(f: impl std::future::Future<Output = T>) -> Option<T> {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(t) => Some(t),
        std::task::Poll::Pending => None,
    }
}

/// SQLite keeps subscriptions in memory: once read, a UAR, a LIR and a SAR that changes
/// nothing are answered without waiting for the database (on the connection's task).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_uar_lir_and_unchanged_sar_need_no_wait() {
    let db = common::TestDb::sqlite().await;
    let store = db.store.clone();
    provision(&store).await;
    let cx = server(&store);
    let uar_m = uar(ALICE_IMPI, ALICE, HOME, None).to_message();
    let lir_m = lir(ALICE, false).to_message();
    let sar_m = sar(
        Some(ALICE_IMPI),
        &[ALICE],
        SCSCF,
        ServerAssignmentType::Registration,
    )
    .to_message();
    // The first of each reads (and caches) the subscription, and the SAR writes.
    for m in [&uar_m, &lir_m, &sar_m] {
        cx.answer(m).await;
    }
    for m in [&uar_m, &lir_m, &sar_m] {
        let answer = at_once(cx.answer(m)).expect("answered without a wait");
        assert_eq!(answer.command_code, m.command_code);
        assert!(!answer.is_request() && !answer.is_error(), "{answer:?}");
    }
    db.cleanup().await;
}

/// A SIP Digest MAR for an identity whose S-CSCF is stored is answered from the
/// subscription cache: at once (on the connection's task) and without the database, which
/// is closed here. AKA still goes to the database (SQN_HE advances there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_digest_mar_needs_no_wait_and_no_database() {
    let db = common::TestDb::sqlite().await;
    let store = db.store.clone();
    provision(&store).await;
    let cx = server(&store);
    let digest = mar(BOB_IMPI, BOB, "SIP Digest", 1, None).to_message();
    // The first reads (and caches) the subscription and stores the S-CSCF.
    let first = Maa::from_message(&cx.answer(&digest).await).unwrap();
    assert_eq!(
        first.header.result,
        CxResult::Base(result::DIAMETER_SUCCESS)
    );
    let stored = store.registration(BOB).await.unwrap().map(|r| r.scscf);
    assert_eq!(stored, Some(Some(SCSCF.to_string())));
    store.close().await;
    for _ in 0..2 {
        let answer = at_once(cx.answer(&digest)).expect("answered without a wait");
        let maa = Maa::from_message(&answer).unwrap();
        assert_eq!(maa.header.result, CxResult::Base(result::DIAMETER_SUCCESS));
        let d = maa.sip_auth_data_items[0].digest.clone().unwrap();
        assert_eq!(d.realm, HOME);
        assert_eq!(&d.ha1[..], digest_ha1(BOB_IMPI).as_hex().as_bytes());
    }
    let aka = mar(ALICE_IMPI, ALICE, "Digest-AKAv1-MD5", 1, None).to_message();
    let answer = cx.answer(&aka).await;
    assert_eq!(
        answer.result_code(),
        Some(result::DIAMETER_UNABLE_TO_COMPLY),
        "needs the store"
    );
    db.cleanup().await;
}

/// Attack: a password changed or an identity deleted through the store must not keep
/// working from the cached copy. Each write is followed by a MAR answered with what the
/// database now holds.
async fn a_changed_or_revoked_credential_is_seen_by_the_next_mar(store: Store, _: String) {
    provision(&store).await;
    let cx = server(&store);
    let ha1_of = |impi: &'static str, impu: &'static str| {
        let m = mar(impi, impu, "SIP Digest", 1, None).to_message();
        let cx = cx.clone();
        async move {
            let maa = Maa::from_message(&cx.answer(&m).await).unwrap();
            (
                maa.header.result,
                maa.sip_auth_data_items
                    .first()
                    .and_then(|i| i.digest.as_ref())
                    .map(|d| d.ha1.to_vec()),
            )
        }
    };
    let old = digest_ha1(BOB_IMPI).as_hex().as_bytes().to_vec();
    for _ in 0..2 {
        assert_eq!(ha1_of(BOB_IMPI, BOB).await.1, Some(old.clone()));
    }
    // New password.
    let mut data = bob();
    let new = Ha1::compute(Algorithm::Md5, BOB_IMPI, HOME, b"changed");
    data.private_identities[0].digest_ha1 = Some(new.clone());
    store.update("bob", &data).await.unwrap();
    let (result, ha1) = ha1_of(BOB_IMPI, BOB).await;
    assert_eq!(result, CxResult::Base(result::DIAMETER_SUCCESS));
    assert_eq!(
        ha1,
        Some(new.as_hex().as_bytes().to_vec()),
        "the old HA1 is gone"
    );
    // The IMPI replaced by another one.
    let mut data = bob();
    data.private_identities[0].impi = "bob2@ims.example.net".into();
    store.update("bob", &data).await.unwrap();
    let (result, ha1) = ha1_of(BOB_IMPI, BOB).await;
    assert_eq!(result, exp(experimental::DIAMETER_ERROR_USER_UNKNOWN));
    assert_eq!(ha1, None);
    assert!(ha1_of("bob2@ims.example.net", BOB).await.1.is_some());
    // The subscription deleted.
    assert_eq!(
        ha1_of("bob2@ims.example.net", BOB).await.0,
        CxResult::Base(result::DIAMETER_SUCCESS)
    );
    assert!(store.delete("bob").await.unwrap());
    let (result, ha1) = ha1_of("bob2@ims.example.net", BOB).await;
    assert_eq!(result, exp(experimental::DIAMETER_ERROR_USER_UNKNOWN));
    assert_eq!(ha1, None);
}

on_every_backend!(
    uar_scenarios,
    registration_flow,
    unregistered_services,
    sar_errors,
    mar_aka,
    mar_resync_under_a_digest_scheme,
    mar_schemes,
    malformed_requests,
    a_changed_or_revoked_credential_is_seen_by_the_next_mar
);

//! The subscriber store, on SQLite and (with `IMS_TEST_POSTGRES_URL`) on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;

use hss::secrets::StoreKey;
use hss::store::*;
use ims_sip::auth::milenage::opc;
use ims_sip::auth::{Algorithm, Ha1, Sqn};
use sqlx::Row;

const K: [u8; 16] = [
    0x46, 0x5b, 0x5c, 0xe8, 0xb1, 0x99, 0xb4, 0x9f, 0xaa, 0x5f, 0x0a, 0x2e, 0xe2, 0x38, 0xa6, 0xbc,
];
const OP: [u8; 16] = [
    0xcd, 0xc2, 0x02, 0xd5, 0x12, 0x3e, 0x20, 0xf6, 0x2b, 0x6d, 0x67, 0x6a, 0xc7, 0x2c, 0xb3, 0x18,
];

fn ha1(impi: &str) -> Ha1 {
    Ha1::compute(Algorithm::Md5, impi, "ims.example.net", b"secret")
}

fn profile() -> ServiceProfile {
    ServiceProfile {
        name: "voice".into(),
        ifcs: vec![
            InitialFilterCriteria {
                priority: 10,
                trigger_point: Some(TriggerPoint {
                    condition_type_cnf: false,
                    spts: vec![
                        Spt {
                            condition_negated: false,
                            group: 0,
                            condition: SptCondition::Method {
                                method: "INVITE".into(),
                                registration_type: Vec::new(),
                            },
                        },
                        Spt {
                            condition_negated: true,
                            group: 0,
                            condition: SptCondition::SessionCase {
                                session_case: SessionCase::TerminatingUnregistered,
                            },
                        },
                        Spt {
                            condition_negated: false,
                            group: 1,
                            condition: SptCondition::SipHeader {
                                header: "Accept-Contact".into(),
                                content: Some(".*video.*".into()),
                            },
                        },
                        Spt {
                            condition_negated: false,
                            group: 1,
                            condition: SptCondition::RequestUri {
                                request_uri: "sip:conf.*".into(),
                            },
                        },
                        Spt {
                            condition_negated: false,
                            group: 2,
                            condition: SptCondition::SessionDescription {
                                line: "m".into(),
                                content: Some("audio".into()),
                            },
                        },
                    ],
                }),
                application_server: ApplicationServer {
                    server_name: "sip:mmtel.ims.example.net".into(),
                    default_handling: DefaultHandling::SessionTerminated,
                    service_info: Some("mmtel".into()),
                    include_register_request: true,
                    include_register_response: false,
                },
                profile_part_indicator: Some(ProfilePartIndicator::Registered),
            },
            InitialFilterCriteria {
                priority: 20,
                trigger_point: None,
                application_server: ApplicationServer {
                    server_name: "sip:as2.ims.example.net".into(),
                    default_handling: DefaultHandling::SessionContinued,
                    service_info: None,
                    include_register_request: false,
                    include_register_response: false,
                },
                profile_part_indicator: None,
            },
        ],
    }
}

/// A tel: URI unique to `user`.
fn tel(user: &str) -> String {
    let digits: String = user.bytes().map(|b| b.to_string()).collect();
    format!("tel:+1555{digits}")
}

fn data(user: &str) -> SubscriptionData {
    let impi = format!("{user}@ims.example.net");
    SubscriptionData {
        cloud: CloudProfile {
            project_id: Some("proj-1".into()),
            user_id: Some(format!("user-{user}")),
        },
        private_identities: vec![PrivateIdentityData {
            digest_ha1: Some(ha1(&impi)),
            impi,
            realm: "ims.example.net".into(),
            aka: Some(AkaSecrets {
                k: K,
                opc: opc(&K, &OP),
                amf: [0x80, 0x00],
                sqn: Some(Sqn::new(32).unwrap()),
            }),
        }],
        public_identities: vec![
            PublicIdentity {
                impu: format!("sip:{user}@ims.example.net"),
                barred: false,
                implicit_set: Some(1),
                service_profile: "voice".into(),
            },
            PublicIdentity {
                impu: tel(user),
                barred: true,
                implicit_set: Some(1),
                service_profile: "voice".into(),
            },
        ],
        service_profiles: vec![profile()],
        roaming_networks: vec!["visited.example.org".into()],
    }
}

async fn create_get_and_lookups(store: Store, _url: String) {
    let d = data("alice");
    let created = store.create("sub-alice", &d).await.unwrap();
    let got = store.get("sub-alice").await.unwrap().unwrap();
    assert_eq!(created, got);
    assert_eq!(got.cloud, d.cloud);
    assert_eq!(
        got.service_profiles, d.service_profiles,
        "iFCs and SPTs round-trip"
    );
    assert_eq!(got.roaming_networks, d.roaming_networks);
    let impus: Vec<PublicIdentity> = got
        .public_identities
        .iter()
        .map(|p| p.identity.clone())
        .collect();
    assert_eq!(impus, d.public_identities, "order and fields kept");
    assert!(got
        .public_identities
        .iter()
        .all(|p| p.registration == Registration::default()));
    let p = &got.private_identities[0];
    assert_eq!(p.impi, "alice@ims.example.net");
    assert!(p.auth.digest);
    assert_eq!(
        p.auth.aka,
        Some(AkaInfo {
            amf: "8000".into(),
            sqn: 32
        })
    );

    assert_eq!(
        store
            .by_impi("alice@ims.example.net")
            .await
            .unwrap()
            .unwrap()
            .id,
        "sub-alice"
    );
    assert_eq!(
        store.by_impu(&tel("alice")).await.unwrap().unwrap().id,
        "sub-alice"
    );
    assert!(store.by_impi("nobody@x").await.unwrap().is_none());
    assert!(store.by_impu("sip:nobody@x").await.unwrap().is_none());

    let c = store
        .credentials("alice@ims.example.net")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.subscription_id, "sub-alice");
    assert_eq!(c.digest_ha1, Some(ha1("alice@ims.example.net")));
    let aka = c.aka.unwrap();
    assert_eq!(aka.k, K);
    assert_eq!(aka.opc, opc(&K, &OP));
    assert_eq!(aka.amf, [0x80, 0]);
    assert_eq!(aka.sqn.value(), 32);
    assert_eq!(store.count().await.unwrap(), 1);
}

async fn duplicates_are_refused_whole(store: Store, _url: String) {
    store.create("a", &data("alice")).await.unwrap();
    let err = store.create("a", &data("bob")).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Duplicate { field: "id", .. }),
        "{err}"
    );

    let mut d = data("bob");
    d.private_identities[0].impi = "alice@ims.example.net".into();
    let err = store.create("b", &d).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Duplicate { field: "impi", .. }),
        "{err}"
    );

    let mut d = data("bob");
    d.public_identities[1].impu = "sip:alice@ims.example.net".into();
    let err = store.create("b", &d).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Duplicate { field: "impu", .. }),
        "{err}"
    );

    assert!(
        store.get("b").await.unwrap().is_none(),
        "nothing half-written"
    );
    assert!(store
        .by_impi("bob@ims.example.net")
        .await
        .unwrap()
        .is_none());
    assert_eq!(store.count().await.unwrap(), 1);
}

async fn invalid_profile_reference_is_refused(store: Store, _url: String) {
    let mut d = data("alice");
    d.public_identities[0].service_profile = "nope".into();
    let err = store.create("a", &d).await.unwrap_err();
    match err {
        StoreError::Invalid { field, .. } => {
            assert_eq!(field, "public_identities[0].service_profile")
        }
        other => panic!("{other}"),
    }
    let mut d = data("alice");
    d.private_identities[0].digest_ha1 = None;
    d.private_identities[0].aka = None;
    assert!(matches!(
        store.create("a", &d).await.unwrap_err(),
        StoreError::Invalid { .. }
    ));
    assert_eq!(store.count().await.unwrap(), 0);
}

async fn update_keeps_state_sqn_and_credentials(store: Store, _url: String) {
    store.create("a", &data("alice")).await.unwrap();
    store
        .set_registration(
            &["sip:alice@ims.example.net"],
            &Registration {
                state: RegistrationState::Registered,
                scscf: Some("sip:scscf.ims.example.net:6060".into()),
            },
        )
        .await
        .unwrap();
    let advanced = store.next_sqn("alice@ims.example.net").await.unwrap();

    let mut d = data("alice");
    d.private_identities[0].digest_ha1 = None;
    d.private_identities[0].aka = None;
    d.public_identities.remove(1);
    d.public_identities.push(PublicIdentity {
        impu: "sip:alice2@ims.example.net".into(),
        barred: false,
        implicit_set: None,
        service_profile: "plain".into(),
    });
    d.service_profiles = vec![
        ServiceProfile {
            name: "voice".into(),
            ifcs: vec![],
        },
        ServiceProfile {
            name: "plain".into(),
            ifcs: vec![],
        },
    ];
    d.roaming_networks = vec![];
    d.cloud.user_id = None;
    let updated = store.update("a", &d).await.unwrap();

    assert_eq!(updated.cloud.user_id, None);
    assert!(updated.roaming_networks.is_empty());
    assert_eq!(updated.service_profiles.len(), 2);
    assert!(updated.service_profiles.iter().all(|p| p.ifcs.is_empty()));
    let impus: Vec<&str> = updated
        .public_identities
        .iter()
        .map(|p| p.identity.impu.as_str())
        .collect();
    assert_eq!(
        impus,
        ["sip:alice@ims.example.net", "sip:alice2@ims.example.net"]
    );
    assert_eq!(
        updated.public_identities[0].registration.state,
        RegistrationState::Registered,
        "a kept identity keeps its registration"
    );
    assert!(store.by_impu(&tel("alice")).await.unwrap().is_none());
    let c = store
        .credentials("alice@ims.example.net")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.digest_ha1, Some(ha1("alice@ims.example.net")));
    let aka = c.aka.unwrap();
    assert_eq!(aka.k, K);
    assert_eq!(aka.sqn, advanced, "SQN survives an update without AKA data");

    // New keys with an explicit SQN replace the old ones.
    d.private_identities[0].aka = Some(AkaSecrets {
        k: [1; 16],
        opc: [2; 16],
        amf: [0, 0],
        sqn: Some(Sqn::new(1000).unwrap()),
    });
    store.update("a", &d).await.unwrap();
    let aka = store
        .credentials("alice@ims.example.net")
        .await
        .unwrap()
        .unwrap()
        .aka
        .unwrap();
    assert_eq!((aka.k, aka.opc, aka.amf), ([1; 16], [2; 16], [0, 0]));
    assert_eq!(aka.sqn.value(), 1000);

    assert!(matches!(
        store.update("missing", &d).await.unwrap_err(),
        StoreError::NotFound
    ));
}

async fn list_pages_by_id(store: Store, _url: String) {
    for u in ["e", "a", "c", "b", "d"] {
        store.create(&format!("id-{u}"), &data(u)).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store.list(after.as_deref(), 2).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|s| s.id.clone()));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["id-a", "id-b", "id-c", "id-d", "id-e"]);
    assert_eq!(
        store.list(None, 10).await.unwrap().items[1].public_identities[0]
            .identity
            .impu,
        "sip:b@ims.example.net",
        "list items are whole subscriptions"
    );
}

async fn delete_removes_everything(store: Store, _url: String) {
    store.create("a", &data("alice")).await.unwrap();
    store.create("b", &data("bob")).await.unwrap();
    assert!(store.delete("a").await.unwrap());
    assert!(!store.delete("a").await.unwrap());
    assert!(store.get("a").await.unwrap().is_none());
    assert!(store
        .credentials("alice@ims.example.net")
        .await
        .unwrap()
        .is_none());
    assert!(store.registration(&tel("alice")).await.unwrap().is_none());
    for table in [
        "private_identity",
        "public_identity",
        "service_profile",
        "ifc",
        "spt",
        "roaming_network",
    ] {
        let n: i64 = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM {table} WHERE subscription_id = 'a'"
        ))
        .fetch_one(store.pool())
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
        assert_eq!(n, 0, "{table} rows of the deleted subscription");
    }
    assert!(store.get("b").await.unwrap().is_some(), "others untouched");
}

async fn concurrent_sqn_increments_never_repeat(store: Store, _url: String) {
    store.create("a", &data("alice")).await.unwrap();
    let tasks = 8;
    let per_task = 20;
    let mut handles = Vec::new();
    for t in 0..tasks {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for i in 0..per_task {
                if (t + i) % 3 == 0 {
                    got.extend(store.next_sqns("alice@ims.example.net", 2).await.unwrap());
                } else {
                    got.push(store.next_sqn("alice@ims.example.net").await.unwrap());
                }
            }
            got
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    let unique: HashSet<u64> = all.iter().map(|s| s.value()).collect();
    assert_eq!(unique.len(), all.len(), "an SQN was handed out twice");
    // Every SQN is a successor of the start (32 = SEQ 1, IND 0) along Sqn::next.
    let mut expected = HashSet::new();
    let mut s = Sqn::new(32).unwrap();
    for _ in 0..all.len() {
        s = s.next(IND_BITS).unwrap();
        expected.insert(s.value());
    }
    assert_eq!(unique, expected, "no gaps, nothing outside the sequence");
    let stored = store
        .credentials("alice@ims.example.net")
        .await
        .unwrap()
        .unwrap()
        .aka
        .unwrap()
        .sqn;
    assert_eq!(stored, s, "the stored SQN is the last one handed out");
}

async fn sqn_resync_and_errors(store: Store, _url: String) {
    store.create("a", &data("alice")).await.unwrap();
    let ms = Sqn::new(0x0000_0000_1234).unwrap();
    store.set_sqn("alice@ims.example.net", ms).await.unwrap();
    assert_eq!(
        store.next_sqn("alice@ims.example.net").await.unwrap(),
        ms.next(IND_BITS).unwrap()
    );
    assert!(matches!(
        store.next_sqn("nobody@x").await.unwrap_err(),
        StoreError::NotFound
    ));
    let mut d = data("bob");
    d.private_identities[0].aka = None;
    store.create("b", &d).await.unwrap();
    assert!(matches!(
        store.next_sqn("bob@ims.example.net").await.unwrap_err(),
        StoreError::NoAka
    ));
    assert!(matches!(
        store.set_sqn("bob@ims.example.net", ms).await.unwrap_err(),
        StoreError::NoAka
    ));
}

async fn registration_state_per_impu(store: Store, _url: String) {
    store.create("a", &data("alice")).await.unwrap();
    let reg = Registration {
        state: RegistrationState::Unregistered,
        scscf: Some("sip:scscf.ims.example.net".into()),
    };
    store
        .set_registration(&["sip:alice@ims.example.net", tel("alice").as_str()], &reg)
        .await
        .unwrap();
    assert_eq!(
        store.registration(&tel("alice")).await.unwrap(),
        Some(reg.clone())
    );
    let err = store
        .set_registration(
            &["sip:alice@ims.example.net", "sip:ghost@x"],
            &Registration::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound));
    assert_eq!(
        store
            .registration("sip:alice@ims.example.net")
            .await
            .unwrap(),
        Some(reg),
        "a failed update changes nothing"
    );
    assert_eq!(store.registration("sip:ghost@x").await.unwrap(), None);
}

async fn aka_keys_are_encrypted_at_rest(store: Store, url: String) {
    store.create("a", &data("alice")).await.unwrap();
    let row = sqlx::query(
        "SELECT aka_k, aka_opc, digest_ha1 FROM private_identity WHERE impi = 'alice@ims.example.net'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    let k: Vec<u8> = row.try_get("aka_k").unwrap();
    let opc_raw: Vec<u8> = row.try_get("aka_opc").unwrap();
    assert_eq!(k.len(), 12 + 16 + 16, "nonce, ciphertext, tag");
    assert!(!k.windows(16).any(|w| w == K), "K stored in plain text");
    let opc_plain = opc(&K, &OP);
    assert!(!opc_raw.windows(16).any(|w| w == opc_plain));
    // HA1 is sealed like K and OPc (it used to be stored as plain hex).
    let ha1_raw: String = row.try_get("digest_ha1").unwrap();
    let ha1_hex = ha1("alice@ims.example.net").as_hex().to_string();
    assert!(ha1_raw.starts_with("sealed:"), "{ha1_raw}");
    assert!(!ha1_raw.contains(&ha1_hex), "HA1 stored in plain text");
    assert!(!ha1_raw.contains("secret"));
    assert_eq!(
        store
            .credentials("alice@ims.example.net")
            .await
            .unwrap()
            .unwrap()
            .digest_ha1,
        Some(ha1("alice@ims.example.net"))
    );
    if let Some(file) = url.strip_prefix("sqlite://") {
        // Nowhere in the database file either (WAL included).
        store.close().await;
        for f in [file.to_string(), format!("{file}-wal")] {
            let bytes = std::fs::read(&f).unwrap_or_default();
            assert!(
                !bytes
                    .windows(ha1_hex.len())
                    .any(|w| w == ha1_hex.as_bytes()),
                "HA1 hex found in {f}"
            );
        }
    }

    // Another key cannot read them back.
    store.close().await;
    let other = Store::open(&url, 1, StoreKey::from_hex(&"5a".repeat(32), "t").unwrap())
        .await
        .unwrap();
    let err = other
        .credentials("alice@ims.example.net")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Secret(_)), "{err}");
    other.close().await;
}

/// A database written before HA1 was sealed: its plain-hex rows are sealed when the
/// store opens, and the credentials (what MAR answers with) are still right.
async fn plain_ha1_rows_are_sealed_when_the_store_opens(store: Store, url: String) {
    store.create("a", &data("alice")).await.unwrap();
    store.create("b", &data("bob")).await.unwrap();
    for who in ["alice", "bob"] {
        let impi = format!("{who}@ims.example.net");
        sqlx::query("UPDATE private_identity SET digest_ha1 = $2 WHERE impi = $1")
            .bind(impi.as_str())
            .bind(ha1(&impi).as_hex())
            .execute(store.pool())
            .await
            .unwrap();
    }
    store.close().await;
    let again = Store::open(&url, 2, common::key()).await.unwrap();
    let rows = sqlx::query("SELECT impi, digest_ha1 FROM private_identity")
        .fetch_all(again.pool())
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        let impi: String = row.try_get("impi").unwrap();
        let stored: String = row.try_get("digest_ha1").unwrap();
        assert!(stored.starts_with("sealed:"), "{impi}: {stored}");
        assert!(!stored.contains(ha1(&impi).as_hex()), "{impi}");
        let creds = again.credentials(&impi).await.unwrap().unwrap();
        assert_eq!(creds.digest_ha1, Some(ha1(&impi)), "{impi}");
    }
    again.close().await;
    // Opening again seals nothing twice.
    let third = Store::open(&url, 2, common::key()).await.unwrap();
    let creds = third.credentials("alice@ims.example.net").await.unwrap();
    assert_eq!(
        creds.unwrap().digest_ha1,
        Some(ha1("alice@ims.example.net"))
    );
    third.close().await;
}

async fn data_survives_reopening(store: Store, url: String) {
    store.create("a", &data("alice")).await.unwrap();
    let sqn = store.next_sqn("alice@ims.example.net").await.unwrap();
    let before = store.get("a").await.unwrap();
    store.close().await;
    let again = Store::open(&url, 2, common::key()).await.unwrap();
    assert_eq!(again.get("a").await.unwrap(), before);
    assert_eq!(
        again.next_sqn("alice@ims.example.net").await.unwrap(),
        sqn.next(IND_BITS).unwrap()
    );
    again.close().await;
}

async fn concurrent_writers_do_not_fail_or_collide(store: Store, _url: String) {
    let mut handles = Vec::new();
    for i in 0..12 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            // Users 0-9 are distinct; 10 and 11 both claim user "dup".
            let user = if i >= 10 {
                "dup".to_string()
            } else {
                format!("u{i}")
            };
            store.create(&format!("s{i}"), &data(&user)).await
        }));
    }
    let mut ok = 0;
    let mut dup = 0;
    for h in handles {
        match h.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::Duplicate { .. }) => dup += 1,
            Err(e) => panic!("unexpected failure: {e}"),
        }
    }
    assert_eq!((ok, dup), (11, 1));
    assert_eq!(store.count().await.unwrap(), 11);
}

/// `data(user)` with a REGISTER trigger of `types` as the first iFC of its profile.
fn with_register_trigger(user: &str, types: Vec<RegistrationType>) -> SubscriptionData {
    let mut d = data(user);
    d.service_profiles[0].ifcs[0].trigger_point = Some(TriggerPoint {
        condition_type_cnf: true,
        spts: vec![Spt {
            condition_negated: false,
            group: 0,
            condition: SptCondition::Method {
                method: "REGISTER".into(),
                registration_type: types,
            },
        }],
    });
    d
}

/// The `registration_type` of the first SPT of the first iFC.
fn first_registration_types(sub: &Subscription) -> Vec<RegistrationType> {
    let spt = &sub.service_profiles[0].ifcs[0]
        .trigger_point
        .as_ref()
        .unwrap()
        .spts[0];
    match &spt.condition {
        SptCondition::Method {
            registration_type, ..
        } => registration_type.clone(),
        other => panic!("{other:?}"),
    }
}

/// RegistrationType values of a REGISTER trigger are stored, read back (in the order of
/// their codes), cached with the subscription, and kept by reopening; they are refused
/// on other SPTs, twice, or all three.
async fn registration_types_round_trip(store: Store, url: String) {
    use RegistrationType::{DeRegistration, InitialRegistration, ReRegistration};
    let d = with_register_trigger("alice", vec![DeRegistration, InitialRegistration]);
    store.create("a", &d).await.unwrap();
    let got = store.get("a").await.unwrap().unwrap();
    assert_eq!(
        first_registration_types(&got),
        [InitialRegistration, DeRegistration]
    );
    let d = with_register_trigger("bob", vec![ReRegistration]);
    store.create("b", &d).await.unwrap();
    let got = store.get("b").await.unwrap().unwrap();
    assert_eq!(got.service_profiles, d.service_profiles);
    // The second read of a SQLite store comes from its cache: the same values.
    let before = store.cache_counts();
    let again = store.by_impu("sip:bob@ims.example.net").await.unwrap();
    assert_eq!(first_registration_types(&again.unwrap()), [ReRegistration]);
    if let (Some((hits, _)), Some((after, _))) = (before, store.cache_counts()) {
        assert_eq!(after, hits + 1, "answered from the cache");
    }
    // No values: stored as none (every registration), not as some default.
    let d = with_register_trigger("carol", Vec::new());
    store.create("c", &d).await.unwrap();
    let got = store.get("c").await.unwrap().unwrap();
    assert!(first_registration_types(&got).is_empty());
    store.close().await;
    let reopened = Store::open(&url, 2, common::key()).await.unwrap();
    let got = reopened.get("a").await.unwrap().unwrap();
    assert_eq!(
        first_registration_types(&got),
        [InitialRegistration, DeRegistration]
    );

    let field = "service_profiles[0].ifcs[0].trigger_point.spts[0].registration_type";
    let mut on_invite = with_register_trigger("dave", vec![InitialRegistration]);
    if let Some(tp) = on_invite.service_profiles[0].ifcs[0].trigger_point.as_mut() {
        tp.spts[0].condition = SptCondition::Method {
            method: "INVITE".into(),
            registration_type: vec![InitialRegistration],
        };
    }
    let twice = with_register_trigger("dave", vec![ReRegistration, ReRegistration]);
    let all = with_register_trigger(
        "dave",
        vec![InitialRegistration, ReRegistration, DeRegistration],
    );
    for bad in [on_invite, twice, all] {
        match reopened.create("d", &bad).await.unwrap_err() {
            StoreError::Invalid { field: f, .. } => assert_eq!(f, field),
            other => panic!("{other}"),
        }
    }
    assert!(reopened.get("d").await.unwrap().is_none());
    reopened.close().await;
}

/// A database from before migration 0002 (its column dropped and its record removed):
/// opening the store adds the column, and the SPTs already stored read back with no
/// RegistrationType (every registration, as before).
async fn databases_from_before_registration_types_migrate(store: Store, url: String) {
    store
        .create("a", &with_register_trigger("alice", Vec::new()))
        .await
        .unwrap();
    let before = store.get("a").await.unwrap().unwrap();
    for q in [
        "ALTER TABLE spt DROP COLUMN registration_types",
        "DELETE FROM _sqlx_migrations WHERE version = 2",
    ] {
        sqlx::query(q).execute(store.pool()).await.unwrap();
    }
    store.close().await;
    let again = Store::open(&url, 2, common::key()).await.unwrap();
    assert_eq!(again.get("a").await.unwrap().unwrap(), before);
    let versions: Vec<i64> = sqlx::query("SELECT version FROM _sqlx_migrations ORDER BY version")
        .fetch_all(again.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get("version").unwrap())
        .collect();
    assert_eq!(versions, [1, 2]);
    let d = with_register_trigger("alice", vec![RegistrationType::DeRegistration]);
    let updated = again.update("a", &d).await.unwrap();
    assert_eq!(
        first_registration_types(&updated),
        [RegistrationType::DeRegistration]
    );
    again.close().await;
}

on_every_backend!(
    registration_types_round_trip,
    databases_from_before_registration_types_migrate,
    concurrent_writers_do_not_fail_or_collide,
    create_get_and_lookups,
    duplicates_are_refused_whole,
    invalid_profile_reference_is_refused,
    update_keeps_state_sqn_and_credentials,
    list_pages_by_id,
    delete_removes_everything,
    concurrent_sqn_increments_never_repeat,
    sqn_resync_and_errors,
    registration_state_per_impu,
    aka_keys_are_encrypted_at_rest,
    plain_ha1_rows_are_sealed_when_the_store_opens,
    data_survives_reopening,
);

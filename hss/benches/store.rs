//! Store hot paths on a SQLite file: what a MAR costs in the database (credentials read
//! and SQN advance), and provisioning one subscriber.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use hss::secrets::StoreKey;
use hss::store::{AkaSecrets, PrivateIdentityData, PublicIdentity, Store, SubscriptionData};
use ims_sip::auth::{Algorithm, Ha1};

fn data(n: u64) -> SubscriptionData {
    let impi = format!("user{n}@ims.example.net");
    SubscriptionData {
        private_identities: vec![PrivateIdentityData {
            digest_ha1: Some(Ha1::compute(
                Algorithm::Md5,
                &impi,
                "ims.example.net",
                b"pw",
            )),
            impi,
            realm: "ims.example.net".into(),
            aka: Some(AkaSecrets {
                k: [1; 16],
                opc: [2; 16],
                amf: [0x80, 0],
                sqn: None,
            }),
        }],
        public_identities: vec![PublicIdentity {
            impu: format!("sip:user{n}@ims.example.net"),
            barred: false,
            implicit_set: None,
            service_profile: "default".into(),
        }],
        service_profiles: vec![hss::store::ServiceProfile {
            name: "default".into(),
            ifcs: vec![],
        }],
        ..SubscriptionData::default()
    }
}

fn store_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let key = StoreKey::from_hex(&"42".repeat(32), "bench").unwrap();
    let store = rt.block_on(Store::open(&url, 4, key)).unwrap();
    rt.block_on(store.create("s0", &data(0))).unwrap();

    c.bench_function("store_sqlite_mar_credentials_and_next_sqn", |b| {
        b.iter(|| {
            rt.block_on(async {
                let c = store.credentials("user0@ims.example.net").await.unwrap();
                assert!(c.is_some());
                store.next_sqn("user0@ims.example.net").await.unwrap()
            })
        })
    });
    let mut n = 1;
    c.bench_function("store_sqlite_create_subscriber", |b| {
        b.iter(|| {
            n += 1;
            rt.block_on(store.create(&format!("s{n}"), &data(n)))
                .unwrap()
        })
    });
}

criterion_group!(benches, store_benches);
criterion_main!(benches);

//! Cost of the `default` enforcer: parsing keystone 30.0.0's 204 default rules, and one
//! decision on its most involved rules.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use cloud_auth::oslo::{Credentials, RuleSet, Target};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use serde_json::Value;

const TABLE: &str = include_str!("../tests/oslo_crosscheck/table.json");

fn keystone_rules() -> Vec<(String, String)> {
    let table: Value = serde_json::from_str(TABLE).unwrap();
    table["sets"]["keystone"]["rules"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

fn bench(c: &mut Criterion) {
    let rules = keystone_rules();
    c.bench_function("oslo/parse keystone defaults (204 rules)", |b| {
        b.iter(|| RuleSet::parse(black_box(&rules).iter().map(|(k, v)| (k.as_str(), v))).unwrap())
    });

    let set = RuleSet::parse(rules.iter().map(|(k, v)| (k.as_str(), v))).unwrap();
    let mut creds = Credentials::new();
    for (k, v) in [
        ("user_id", "u-dm"),
        ("domain_id", "d-ims"),
        ("is_admin", "False"),
    ] {
        creds.insert(k, v);
    }
    creds.set_roles(vec!["manager".into(), "member".into(), "reader".into()]);
    let target: Target = [
        ("target.user.domain_id", "d-ims"),
        ("target.project.domain_id", "d-ims"),
        ("target.role.name", "member"),
        ("target.user.id", "u-bob"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for action in ["identity:get_user", "identity:create_grant"] {
        c.bench_function(&format!("oslo/enforce {action}"), |b| {
            b.iter(|| set.enforce(black_box(action), &creds, &target))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! The `default` enforcer against a table of real OpenStack rules (keystone 30.0.0's full
//! default policy, nova, cinder and neutron rules) with expected decisions, and the same
//! table against the real oslo.policy when a Python with it is at hand.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use cloud_auth::oslo::{Credentials, RuleSet, Target};
use serde_json::Value;

const TABLE: &str = include_str!("oslo_crosscheck/table.json");

fn credentials(persona: &Value) -> Credentials {
    let mut c = Credentials::new();
    for (key, value) in persona.as_object().unwrap() {
        match value {
            Value::String(s) => c.insert(key.as_str(), s.as_str()),
            Value::Array(items) => c.insert_list(
                key.as_str(),
                items
                    .iter()
                    .map(|i| i.as_str().unwrap().to_owned())
                    .collect(),
            ),
            other => panic!("persona value {other}"),
        }
    }
    c
}

#[test]
fn table_of_openstack_rules_gives_the_expected_decisions() {
    let table: Value = serde_json::from_str(TABLE).unwrap();
    let mut sets = HashMap::new();
    for (name, set) in table["sets"].as_object().unwrap() {
        let rules = set["rules"].as_object().unwrap();
        let parsed = RuleSet::parse(rules.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap())))
            .unwrap_or_else(|e| panic!("set {name}: {e}"));
        for rule in rules.keys() {
            assert!(parsed.contains(rule));
        }
        sets.insert(name.clone(), parsed);
    }
    // Every one of keystone's 204 default rules parses and resolves.
    assert_eq!(
        table["sets"]["keystone"]["rules"]
            .as_object()
            .unwrap()
            .len(),
        204
    );

    let personas = table["personas"].as_object().unwrap();
    let cases = table["cases"].as_array().unwrap();
    let mut wrong = Vec::new();
    let (mut allowed, mut denied) = (0, 0);
    for case in cases {
        let creds = credentials(&personas[case["creds"].as_str().unwrap()]);
        let target: Target = case["target"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        let set = &sets[case["set"].as_str().unwrap()];
        let got = set.enforce(case["action"].as_str().unwrap(), &creds, &target);
        let expect = case["expect"].as_bool().unwrap();
        if expect {
            allowed += 1;
        } else {
            denied += 1;
        }
        if got != expect {
            wrong.push(format!("{case}: got {got}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    // The table exercises both outcomes substantially.
    assert!(
        allowed >= 20 && denied >= 20,
        "{allowed} allowed, {denied} denied"
    );
}

/// A Python that can import oslo_policy: the Keystone test venv first, then `python3`.
fn python_with_oslo_policy() -> Result<PathBuf, String> {
    let data = std::env::var_os("IMS_KEYSTONE_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/ims-core/keystone"))
        });
    let mut candidates: Vec<PathBuf> = data
        .map(|d| d.join("venv/bin/python"))
        .into_iter()
        .collect();
    candidates.push(PathBuf::from("python3"));
    for python in &candidates {
        let ok = Command::new(python)
            .args(["-c", "import oslo_policy"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Ok(python.clone());
        }
    }
    Err(format!(
        "no Python with oslo_policy among {candidates:?} (run scripts/keystone/setup)"
    ))
}

#[test]
fn real_oslo_policy_agrees_with_the_table() {
    let python = match python_with_oslo_policy() {
        Ok(p) => p,
        Err(why) => {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oslo_crosscheck/crosscheck.py");
    let out = Command::new(&python).arg(&script).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "crosscheck failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cases = serde_json::from_str::<Value>(TABLE).unwrap()["cases"]
        .as_array()
        .unwrap()
        .len();
    assert!(
        stdout.contains(&format!("{cases} agree, 0 disagree")),
        "{stdout}"
    );
    eprintln!("{}", stdout.trim());
}

//! `imsctl subscriber add-ifc` / `remove-ifc`: a subscriber's initial filter criteria
//! (TS 29.228 Annex B) in one of its service profiles, through the provisioning API's
//! JSON. The trigger point an operator usually wants is one method and one session case
//! (CNF: both must hold), for a REGISTER trigger optionally the kinds of registration
//! (`RegistrationType`); more elaborate ones (regular expressions, SDP lines, negation)
//! go through the API directly.

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde_json::{json, Value};

/// The session cases of TS 29.228 Annex B.2.2 (`SessionCase`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SessionCaseArg {
    /// ORIGINATING_SESSION (0).
    Originating,
    /// TERMINATING_REGISTERED (1).
    TerminatingRegistered,
    /// TERMINATING_UNREGISTERED (2).
    TerminatingUnregistered,
    /// ORIGINATING_UNREGISTERED (3).
    OriginatingUnregistered,
    /// ORIGINATING_CDIV (4).
    OriginatingCdiv,
}

impl SessionCaseArg {
    fn api_name(self) -> &'static str {
        match self {
            SessionCaseArg::Originating => "ORIGINATING",
            SessionCaseArg::TerminatingRegistered => "TERMINATING_REGISTERED",
            SessionCaseArg::TerminatingUnregistered => "TERMINATING_UNREGISTERED",
            SessionCaseArg::OriginatingUnregistered => "ORIGINATING_UNREGISTERED",
            SessionCaseArg::OriginatingCdiv => "ORIGINATING_CDIV",
        }
    }
}

/// What the S-CSCF does when the application server fails or does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DefaultHandlingArg {
    /// SESSION_CONTINUED: skip the AS, go on with the next iFC.
    Continued,
    /// SESSION_TERMINATED: fail the request.
    Terminated,
}

/// Which registration state the iFC applies to (`ProfilePartIndicator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProfilePartArg {
    /// REGISTERED (0).
    Registered,
    /// UNREGISTERED (1).
    Unregistered,
}

/// The kinds of registration a REGISTER trigger fires on (`RegistrationType`,
/// TS 29.228 Annex B.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RegistrationTypeArg {
    /// INITIAL_REGISTRATION (0).
    Initial,
    /// RE_REGISTRATION (1).
    Re,
    /// DE_REGISTRATION (2).
    De,
}

impl RegistrationTypeArg {
    fn api_name(self) -> &'static str {
        match self {
            RegistrationTypeArg::Initial => "INITIAL_REGISTRATION",
            RegistrationTypeArg::Re => "RE_REGISTRATION",
            RegistrationTypeArg::De => "DE_REGISTRATION",
        }
    }
}

/// The iFC options of `add-ifc`.
#[derive(Debug, Clone, Args)]
pub struct IfcArgs {
    /// Priority: lower is evaluated first; unique within the service profile.
    #[arg(long)]
    pub priority: i64,
    /// The application server's SIP URI, e.g. sip:as1.ims.example.net or sip:10.0.0.5:5090.
    #[arg(long = "as")]
    pub server_name: String,
    /// The SIP method that triggers it, e.g. INVITE (any method when absent).
    #[arg(long)]
    pub method: Option<String>,
    /// With `--method REGISTER`: the registrations that trigger it (third-party
    /// REGISTER to the AS), e.g. `initial,de`; every registration when absent.
    #[arg(long = "registration-type", value_enum, value_delimiter = ',')]
    pub registration_types: Vec<RegistrationTypeArg>,
    /// The session case that triggers it (any when absent).
    #[arg(long, value_enum)]
    pub session_case: Option<SessionCaseArg>,
    /// When the AS fails or is silent.
    #[arg(long, value_enum, default_value = "continued")]
    pub default_handling: DefaultHandlingArg,
    /// Only in this registration state (both when absent).
    #[arg(long, value_enum)]
    pub profile_part: Option<ProfilePartArg>,
}

/// The provisioning API's JSON for the iFC `args` describe.
pub fn ifc_json(args: &IfcArgs) -> anyhow::Result<Value> {
    anyhow::ensure!(
        args.server_name.to_ascii_lowercase().starts_with("sip:")
            || args.server_name.to_ascii_lowercase().starts_with("sips:"),
        "--as must be a sip: or sips: URI"
    );
    let mut spts = Vec::new();
    if let Some(method) = &args.method {
        anyhow::ensure!(
            !method.is_empty() && method.chars().all(|c| c.is_ascii_alphabetic()),
            "--method must be a SIP method name"
        );
        let method = method.to_ascii_uppercase();
        let mut spt = json!({"group": 0, "type": "method", "method": method});
        if !args.registration_types.is_empty() {
            anyhow::ensure!(
                method == "REGISTER",
                "--registration-type needs --method REGISTER"
            );
            let types: Vec<&str> = args
                .registration_types
                .iter()
                .map(|t| t.api_name())
                .collect();
            spt["registration_type"] = json!(types);
        }
        spts.push(spt);
    }
    anyhow::ensure!(
        args.method.is_some() || args.registration_types.is_empty(),
        "--registration-type needs --method REGISTER"
    );
    if let Some(case) = args.session_case {
        let case = case.api_name();
        spts.push(json!({"group": 1, "type": "session_case", "session_case": case}));
    }
    let handling = match args.default_handling {
        DefaultHandlingArg::Continued => "SESSION_CONTINUED",
        DefaultHandlingArg::Terminated => "SESSION_TERMINATED",
    };
    let mut ifc = json!({
        "priority": args.priority,
        "application_server": {"server_name": args.server_name, "default_handling": handling},
    });
    if !spts.is_empty() {
        ifc["trigger_point"] = json!({"condition_type_cnf": true, "spts": spts});
    }
    if let Some(part) = args.profile_part {
        let part = match part {
            ProfilePartArg::Registered => "REGISTERED",
            ProfilePartArg::Unregistered => "UNREGISTERED",
        };
        ifc["profile_part_indicator"] = json!(part);
    }
    Ok(ifc)
}

/// The subscriber's service profiles (as `current` shows them) with `ifc` added to the
/// profile named `profile` (created when missing), iFCs kept in priority order. A
/// priority already used there is refused.
pub fn with_ifc(current: &Value, profile: &str, ifc: Value) -> anyhow::Result<Value> {
    let mut profiles = profiles_of(current);
    let index = match profiles.iter().position(|p| p["name"] == profile) {
        Some(i) => i,
        None => {
            profiles.push(json!({"name": profile, "ifcs": []}));
            profiles.len() - 1
        }
    };
    let ifcs = ifcs_of(&mut profiles[index])?;
    anyhow::ensure!(
        !ifcs.iter().any(|i| i["priority"] == ifc["priority"]),
        "profile {profile} already has an iFC of priority {}",
        ifc["priority"]
    );
    ifcs.push(ifc);
    ifcs.sort_by_key(|i| i["priority"].as_i64().unwrap_or(i64::MAX));
    Ok(Value::Array(profiles))
}

/// The subscriber's service profiles without the iFC of `priority` in `profile`.
pub fn without_ifc(current: &Value, profile: &str, priority: i64) -> anyhow::Result<Value> {
    let mut profiles = profiles_of(current);
    let found = profiles
        .iter_mut()
        .find(|p| p["name"] == profile)
        .with_context(|| format!("no service profile {profile}"))?;
    let ifcs = ifcs_of(found)?;
    let before = ifcs.len();
    ifcs.retain(|i| i["priority"] != priority);
    anyhow::ensure!(
        ifcs.len() < before,
        "profile {profile} has no iFC of priority {priority}"
    );
    Ok(Value::Array(profiles))
}

fn profiles_of(current: &Value) -> Vec<Value> {
    current["service_profiles"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn ifcs_of(profile: &mut Value) -> anyhow::Result<&mut Vec<Value>> {
    if profile["ifcs"].is_null() {
        profile["ifcs"] = json!([]);
    }
    profile["ifcs"]
        .as_array_mut()
        .context("service profile with unreadable ifcs")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> IfcArgs {
        IfcArgs {
            priority: 10,
            server_name: "sip:as1.ims.example.net".into(),
            method: Some("invite".into()),
            session_case: Some(SessionCaseArg::OriginatingCdiv),
            default_handling: DefaultHandlingArg::Terminated,
            profile_part: Some(ProfilePartArg::Unregistered),
            registration_types: Vec::new(),
        }
    }

    #[test]
    fn a_register_trigger_names_its_registration_types() {
        let register = IfcArgs {
            method: Some("register".into()),
            session_case: None,
            registration_types: vec![RegistrationTypeArg::Initial, RegistrationTypeArg::De],
            ..args()
        };
        let ifc = ifc_json(&register).unwrap();
        let spt = &ifc["trigger_point"]["spts"][0];
        assert_eq!(spt["method"], "REGISTER");
        assert_eq!(
            spt["registration_type"],
            json!(["INITIAL_REGISTRATION", "DE_REGISTRATION"])
        );
        // Without the option: no RegistrationType (every registration).
        let all = IfcArgs {
            registration_types: Vec::new(),
            ..register.clone()
        };
        assert!(ifc_json(&all).unwrap()["trigger_point"]["spts"][0]
            .get("registration_type")
            .is_none());
        // Only on a REGISTER trigger.
        for method in [Some("INVITE".to_string()), None] {
            let wrong = IfcArgs {
                method,
                ..register.clone()
            };
            let err = ifc_json(&wrong).unwrap_err().to_string();
            assert!(err.contains("--method REGISTER"), "{err}");
        }
    }

    #[test]
    fn an_ifc_is_a_method_and_a_session_case_in_cnf() {
        let ifc = ifc_json(&args()).unwrap();
        assert_eq!(ifc["priority"], 10);
        assert_eq!(ifc["trigger_point"]["condition_type_cnf"], true);
        assert_eq!(ifc["trigger_point"]["spts"][0]["method"], "INVITE");
        assert_eq!(
            ifc["trigger_point"]["spts"][1]["session_case"],
            "ORIGINATING_CDIV"
        );
        assert_eq!(
            ifc["application_server"]["default_handling"],
            "SESSION_TERMINATED"
        );
        assert_eq!(ifc["profile_part_indicator"], "UNREGISTERED");
        let always = IfcArgs {
            method: None,
            session_case: None,
            profile_part: None,
            ..args()
        };
        let ifc = ifc_json(&always).unwrap();
        assert!(ifc.get("trigger_point").is_none() && ifc.get("profile_part_indicator").is_none());
        let bad = IfcArgs {
            server_name: "http://as".into(),
            ..args()
        };
        assert!(ifc_json(&bad).is_err());
        let odd = IfcArgs {
            method: Some("IN VITE".into()),
            ..args()
        };
        assert!(ifc_json(&odd).is_err());
    }

    #[test]
    fn ifcs_are_added_in_priority_order_and_removed_by_priority() {
        let current = json!({"service_profiles": [{"name": "default", "ifcs": [
            {"priority": 20, "application_server": {"server_name": "sip:b"}}]}]});
        let ifc = ifc_json(&args()).unwrap();
        let profiles = with_ifc(&current, "default", ifc.clone()).unwrap();
        let priorities: Vec<i64> = profiles[0]["ifcs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["priority"].as_i64().unwrap())
            .collect();
        assert_eq!(priorities, [10, 20]);
        let again = json!({"service_profiles": profiles});
        assert!(
            with_ifc(&again, "default", ifc.clone()).is_err(),
            "same priority"
        );
        // A profile that does not exist yet is created.
        let other = with_ifc(&json!({}), "gold", ifc).unwrap();
        assert_eq!(other[0]["name"], "gold");
        let removed = without_ifc(&again, "default", 20).unwrap();
        assert_eq!(removed[0]["ifcs"].as_array().unwrap().len(), 1);
        assert!(without_ifc(&again, "default", 30).is_err());
        assert!(without_ifc(&again, "gold", 10).is_err());
    }
}

//! The OpenStack Heat template `deploy/openstack/ims-core.yaml` (and its nested
//! `node.yaml`): valid HOT as far as a parser can tell (known version, sections,
//! resource types and properties, every `get_param`/`get_resource`/`get_attr`/
//! `get_file`/`condition` naming something that exists), and security-group rules that
//! open exactly the ports the configurations of `imsctl config init` listen on, each to
//! exactly the roles that use it, nothing but the P-CSCF's SIP to 0.0.0.0/0, PostgreSQL
//! to the S-CSCFs and HSSs only. The bundles of `deploy/openstack/bundle` carry each
//! node its own files only, for a pooled core (two P-CSCFs, S-CSCFs, HSSs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use yaml_serde::{Mapping, Value};

const ROLES: [&str; 5] = ["pcscf", "icscf", "scscf", "hss", "policyd"];

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/openstack")
}

fn load(name: &str) -> Mapping {
    let text = std::fs::read_to_string(deploy().join(name)).unwrap();
    let v: Value = yaml_serde::from_str(&text).unwrap();
    v.as_mapping().unwrap().clone()
}

fn map<'a>(m: &'a Mapping, key: &str) -> &'a Mapping {
    m.get(key)
        .and_then(Value::as_mapping)
        .unwrap_or_else(|| panic!("no mapping {key}"))
}

fn keys(m: &Mapping) -> BTreeSet<String> {
    m.keys()
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect()
}

/// The properties each resource type of the templates may have (the Heat resource
/// reference, Rocky and later).
fn known_properties(ty: &str) -> Option<&'static [&'static str]> {
    Some(match ty {
        "OS::Neutron::Net" => &[
            "name",
            "admin_state_up",
            "shared",
            "port_security_enabled",
            "value_specs",
        ],
        "OS::Neutron::Subnet" => &[
            "network",
            "cidr",
            "ip_version",
            "dns_nameservers",
            "allocation_pools",
            "gateway_ip",
            "enable_dhcp",
            "name",
            "host_routes",
        ],
        "OS::Neutron::Router" => &["name", "external_gateway_info", "admin_state_up"],
        "OS::Neutron::RouterInterface" => &["router", "subnet", "port"],
        "OS::Neutron::SecurityGroup" => &["name", "description", "rules"],
        "OS::Neutron::SecurityGroupRule" => &[
            "security_group",
            "description",
            "direction",
            "ethertype",
            "port_range_min",
            "port_range_max",
            "protocol",
            "remote_group",
            "remote_ip_prefix",
        ],
        "OS::Neutron::Port" => &[
            "network",
            "fixed_ips",
            "security_groups",
            "name",
            "port_security_enabled",
        ],
        "OS::Neutron::FloatingIPAssociation" => &["floatingip_id", "port_id", "fixed_ip_address"],
        "OS::Nova::Server" => &[
            "name",
            "image",
            "flavor",
            "key_name",
            "networks",
            "user_data_format",
            "user_data",
            "config_drive",
            "metadata",
        ],
        "OS::Heat::ResourceGroup" => &["count", "resource_def", "index_var", "removal_policies"],
        "OS::Heat::Value" => &["value", "type"],
        _ => return None,
    })
}

/// Checks one template; `params_given` are the properties a parent passes (for a
/// nested template), checked against its parameters.
fn check_template(name: &str, t: &Mapping, errors: &mut Vec<String>) {
    let version = t.get("heat_template_version").and_then(Value::as_str);
    let known_versions = [
        "2016-10-14",
        "2017-02-24",
        "2017-09-01",
        "2018-03-02",
        "2018-08-31",
        "2021-04-16",
    ];
    if !version.is_some_and(|v| known_versions.contains(&v)) {
        errors.push(format!("{name}: heat_template_version {version:?}"));
    }
    let sections: BTreeSet<&str> = [
        "heat_template_version",
        "description",
        "parameter_groups",
        "parameters",
        "resources",
        "outputs",
        "conditions",
    ]
    .into();
    for k in keys(t) {
        if !sections.contains(k.as_str()) {
            errors.push(format!("{name}: unknown section {k}"));
        }
    }
    let params = keys(map(t, "parameters"));
    for (p, def) in map(t, "parameters") {
        let ty = def.get("type").and_then(Value::as_str);
        let ok = [
            "string",
            "number",
            "comma_delimited_list",
            "json",
            "boolean",
        ];
        if !ty.is_some_and(|ty| ok.contains(&ty)) {
            errors.push(format!(
                "{name}: parameters.{}: type {ty:?}",
                p.as_str().unwrap_or("?")
            ));
        }
    }
    if let Some(groups) = t.get("parameter_groups").and_then(Value::as_sequence) {
        for g in groups {
            for p in g
                .get("parameters")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
            {
                let p = p.as_str().unwrap_or("?");
                if !params.contains(p) {
                    errors.push(format!(
                        "{name}: parameter_groups names {p}, no such parameter"
                    ));
                }
            }
        }
    }
    let resources = map(t, "resources");
    let names = keys(resources);
    let conditions = t
        .get("conditions")
        .and_then(Value::as_mapping)
        .map(keys)
        .unwrap_or_default();
    let refs = Refs {
        name,
        params: &params,
        resources: &names,
        conditions: &conditions,
    };
    for (r, def) in resources {
        let r = r.as_str().unwrap();
        let def = def.as_mapping().unwrap();
        for k in keys(def) {
            if ![
                "type",
                "properties",
                "depends_on",
                "condition",
                "metadata",
                "update_policy",
                "deletion_policy",
            ]
            .contains(&k.as_str())
            {
                errors.push(format!("{name}: resources.{r}: unknown key {k}"));
            }
        }
        let ty = def.get("type").and_then(Value::as_str).unwrap_or("");
        check_type(name, r, ty, def.get("properties"), errors);
        if ty == "OS::Heat::ResourceGroup" {
            let rd = def
                .get("properties")
                .and_then(|p| p.get("resource_def"))
                .unwrap();
            let inner = rd.get("type").and_then(Value::as_str).unwrap_or("");
            check_type(
                name,
                &format!("{r}.resource_def"),
                inner,
                rd.get("properties"),
                errors,
            );
        }
        for dep in def.get("depends_on").into_iter().flat_map(|d| match d {
            Value::Sequence(s) => s.clone(),
            v => vec![v.clone()],
        }) {
            if !names.contains(dep.as_str().unwrap_or("")) {
                errors.push(format!(
                    "{name}: resources.{r}.depends_on: no resource {dep:?}"
                ));
            }
        }
        if let Some(c) = def.get("condition").and_then(Value::as_str) {
            if !conditions.contains(c) {
                errors.push(format!("{name}: resources.{r}.condition: no condition {c}"));
            }
        }
        refs.walk(
            &format!("resources.{r}"),
            &Value::Mapping(def.clone()),
            errors,
        );
    }
    for section in ["outputs", "conditions"] {
        if let Some(v) = t.get(section) {
            refs.walk(section, v, errors);
        }
    }
}

/// A resource's type is known (or a nested template that exists) and its properties
/// are that type's (or the nested template's parameters, all required ones given).
fn check_type(name: &str, r: &str, ty: &str, props: Option<&Value>, errors: &mut Vec<String>) {
    let given = props
        .and_then(Value::as_mapping)
        .map(keys)
        .unwrap_or_default();
    if let Some(known) = known_properties(ty) {
        for p in &given {
            if !known.contains(&p.as_str()) {
                errors.push(format!("{name}: resources.{r}: {ty} has no property {p}"));
            }
        }
    } else if ty.ends_with(".yaml") && deploy().join(ty).exists() {
        let nested = load(ty);
        let params = map(&nested, "parameters");
        for p in &given {
            if !params.contains_key(p.as_str()) {
                errors.push(format!("{name}: resources.{r}: {ty} has no parameter {p}"));
            }
        }
        for (p, def) in params {
            let p = p.as_str().unwrap();
            if def.get("default").is_none() && !given.contains(p) {
                errors.push(format!(
                    "{name}: resources.{r}: {ty}'s parameter {p} is not given"
                ));
            }
        }
    } else {
        errors.push(format!("{name}: resources.{r}: unknown type {ty:?}"));
    }
}

struct Refs<'a> {
    name: &'a str,
    params: &'a BTreeSet<String>,
    resources: &'a BTreeSet<String>,
    conditions: &'a BTreeSet<String>,
}

impl Refs<'_> {
    /// Every intrinsic function call below `v` names something that exists.
    fn walk(&self, at: &str, v: &Value, errors: &mut Vec<String>) {
        match v {
            Value::Mapping(m) => {
                for (k, arg) in m {
                    let k = k.as_str().unwrap_or("");
                    let first = match arg {
                        Value::Sequence(s) => s.first().and_then(Value::as_str),
                        v => v.as_str(),
                    };
                    let missing = match k {
                        "get_param" => {
                            first.filter(|p| !self.params.contains(*p) && !p.starts_with("OS::"))
                        }
                        "get_resource" | "get_attr" => {
                            first.filter(|r| !self.resources.contains(*r))
                        }
                        "get_file" => first.filter(|f| !deploy().join(f).exists()),
                        "condition" if at.starts_with("outputs") => {
                            first.filter(|c| !self.conditions.contains(*c))
                        }
                        _ => None,
                    };
                    if let Some(m) = missing {
                        errors.push(format!("{}: {at}: {k} {m}: no such one", self.name));
                    }
                    self.walk(&format!("{at}.{k}"), arg, errors);
                }
            }
            Value::Sequence(s) => s.iter().for_each(|x| self.walk(at, x, errors)),
            _ => {}
        }
    }
}

#[test]
fn the_templates_are_valid_hot() {
    let mut errors = Vec::new();
    for name in ["ims-core.yaml", "node.yaml"] {
        check_template(name, &load(name), &mut errors);
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    // Every placeholder of cloud-init.sh is filled in for every node, with its role.
    let text = std::fs::read_to_string(deploy().join("cloud-init.sh")).unwrap();
    let placeholders: BTreeSet<String> = text
        .split("__")
        .skip(1)
        .step_by(2)
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
        .map(|p| format!("__{p}__"))
        .collect();
    assert!(placeholders.contains("__BUNDLE__"), "{placeholders:?}");
    let t = load("ims-core.yaml");
    for role in ROLES {
        let def = &map(&t, "resources")[role];
        let props = def.get("properties").unwrap();
        let props = props
            .get("resource_def")
            .and_then(|d| d.get("properties"))
            .unwrap_or(props);
        let sr = props["user_data"]["str_replace"].as_mapping().unwrap();
        assert_eq!(
            sr["template"]["get_file"].as_str(),
            Some("cloud-init.sh"),
            "{role}"
        );
        let params = sr["params"].as_mapping().unwrap();
        // __BUNDLE__ is the node's own: node.yaml fills it in from `bundles`.
        let mut want = placeholders.clone();
        want.remove("__BUNDLE__");
        assert_eq!(keys(params), want, "{role}: str_replace params");
        assert_eq!(params["__ROLE__"].as_str(), Some(role));
        let bundles = &props["bundles"];
        let bundle = bundles
            .get("get_param")
            .or_else(|| bundles.get(0).and_then(|b| b.get("get_param")))
            .and_then(Value::as_str);
        assert_eq!(bundle, Some(format!("{role}_bundle").as_str()), "{role}");
    }
    let node = load("node.yaml");
    let server = &map(&node, "resources")["server"]["properties"]["user_data"]["str_replace"];
    assert_eq!(
        server["params"]["__BUNDLE__"]["get_param"][0].as_str(),
        Some("bundles")
    );
    let script = deploy().join("cloud-init.sh");
    for file in [
        script,
        deploy().join("bundle"),
        deploy().join("postgres-init.sh"),
    ] {
        let ok = std::process::Command::new("sh")
            .arg("-n")
            .arg(&file)
            .status()
            .unwrap();
        assert!(ok.success(), "{}: shell syntax", file.display());
    }
}

#[test]
fn a_broken_reference_is_caught() {
    // The checker itself: a template with each kind of mistake gives its error.
    let text = "heat_template_version: 2018-08-31\nparameters:\n  a: {type: string}\n\
                resources:\n  r:\n    type: OS::Neutron::SecurityGroupRule\n    depends_on: nope\n    \
                properties: {security_group: {get_resource: s}, remote_group_id: {get_param: b}}\n  \
                n:\n    type: OS::Nova::Serverr\n";
    let t: Value = yaml_serde::from_str(text).unwrap();
    let mut errors = Vec::new();
    check_template("t.yaml", t.as_mapping().unwrap(), &mut errors);
    let all = errors.join("\n");
    for e in [
        "has no property remote_group_id",
        "depends_on: no resource",
        "get_resource s: no such one",
        "get_param b: no such one",
        "unknown type \"OS::Nova::Serverr\"",
    ] {
        assert!(all.contains(e), "{e} not in:\n{all}");
    }
}

/// Who may reach a port: anyone, the management network, or a role's security group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum From {
    Anyone,
    Management,
    Role(String),
}

type Rule = (String, String, u16, From); // (role, protocol, port, from)

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

/// The rules the generated configurations need.
fn needed(dir: &Path) -> BTreeSet<Rule> {
    // Every node of a role (pcscf1.toml, pcscf2.toml, ...) has the role's rules.
    let nodes: Vec<(&str, toml::Value)> = ROLES
        .iter()
        .flat_map(|r| {
            let single = dir.join(format!("{r}.toml"));
            let files: Vec<PathBuf> = if single.exists() {
                vec![single]
            } else {
                (1..=8)
                    .map(|n| dir.join(format!("{r}{n}.toml")))
                    .take_while(|p| p.exists())
                    .collect()
            };
            assert!(!files.is_empty(), "no {r}.toml");
            files.into_iter().map(move |f| {
                let text = std::fs::read_to_string(f).unwrap();
                (*r, toml::from_str(&text).unwrap())
            })
        })
        .collect();
    let mut rules = BTreeSet::new();
    for i in 0..nodes.len() {
        let toml: BTreeMap<&str, toml::Value> = nodes
            .iter()
            .filter(|(r, _)| *r != nodes[i].0)
            .chain([&nodes[i]])
            .map(|(r, v)| (*r, v.clone()))
            .collect();
        rules.extend(node_rules(&toml));
    }
    rules
}

/// The rules of one node of each role (`toml`, by role).
fn node_rules(toml: &BTreeMap<&str, toml::Value>) -> BTreeSet<Rule> {
    let mut rules = BTreeSet::new();
    let mut add = |role: &str, proto: &str, port: u16, from: From| {
        rules.insert((role.to_string(), proto.to_string(), port, from));
    };
    let sip_listeners = |sip: &toml::Value| -> Vec<(&'static str, u16)> {
        let mut v = Vec::new();
        for (key, proto) in [("udp", "udp"), ("tcp", "tcp"), ("tls", "tcp")] {
            for a in sip
                .get(key)
                .and_then(|l| l.as_array())
                .into_iter()
                .flatten()
            {
                v.push((proto, port_of(a.as_str().unwrap())));
            }
        }
        v
    };
    let sip = |r: &str| toml[r].get("sip").unwrap().clone();
    // The P-CSCF: [sip] faces the UEs, [sip.core] the I- and S-CSCF.
    for (proto, port) in sip_listeners(&sip("pcscf")) {
        add("pcscf", proto, port, From::Anyone);
    }
    let core = sip("pcscf")
        .get("core")
        .cloned()
        .expect("[sip.core] with public=");
    for (proto, port) in sip_listeners(&core) {
        for from in ["icscf", "scscf"] {
            add("pcscf", proto, port, From::Role(from.into()));
        }
    }
    for (role, peers) in [("icscf", ["pcscf", "scscf"]), ("scscf", ["pcscf", "icscf"])] {
        for (proto, port) in sip_listeners(&sip(role)) {
            for from in peers {
                add(role, proto, port, From::Role(from.into()));
            }
        }
    }
    let diameter = toml["hss"].get("diameter").unwrap();
    for key in ["tcp", "tls"] {
        for a in diameter
            .get(key)
            .and_then(|l| l.as_array())
            .into_iter()
            .flatten()
        {
            for from in ["icscf", "scscf"] {
                add(
                    "hss",
                    "tcp",
                    port_of(a.as_str().unwrap()),
                    From::Role(from.into()),
                );
            }
        }
    }
    for role in ROLES {
        let http = toml[role].get("http").unwrap();
        for key in ["listen", "metrics_listen"] {
            if let Some(a) = http.get(key).and_then(|a| a.as_str()) {
                add(role, "tcp", port_of(a), From::Management);
            }
        }
        add(role, "tcp", 22, From::Management);
    }
    // policyd's API from every node with cloud authorization on.
    for (role, path) in [
        ("pcscf", "cloud_auth"),
        ("scscf", "cloud_auth"),
        ("hss", "provisioning"),
    ] {
        let mut section = toml[role].get(path).unwrap().clone();
        if role == "hss" {
            section = section.get("cloud_auth").cloned().unwrap();
        }
        let url = section.get("policy_url").and_then(|u| u.as_str()).unwrap();
        let port = url
            .rsplit(':')
            .next()
            .unwrap()
            .trim_end_matches('/')
            .parse()
            .unwrap();
        add("policyd", "tcp", port, From::Role(role.into()));
    }
    // The shared PostgreSQL store, from the S-CSCFs and HSSs that use it.
    for (role, section, key) in [("scscf", "registrar", "store"), ("hss", "store", "url")] {
        let url = toml[role][section][key].as_str().unwrap();
        if let Some(rest) = url.strip_prefix("postgres://") {
            let hostport = rest.split('@').nth(1).unwrap().split('/').next().unwrap();
            add(
                "postgres",
                "tcp",
                port_of(hostport),
                From::Role(role.into()),
            );
            add("postgres", "tcp", 22, From::Management);
        }
    }
    rules
}

/// The rules the template opens.
fn opened(t: &Mapping) -> BTreeSet<Rule> {
    let sg_role = |v: &Value| -> String {
        let sg = v.get("get_resource").and_then(Value::as_str).unwrap();
        sg.strip_prefix("sg_").unwrap().to_string()
    };
    let mut rules = BTreeSet::new();
    for (name, def) in map(t, "resources") {
        let ty = def.get("type").and_then(Value::as_str).unwrap();
        if ty == "OS::Neutron::SecurityGroup" {
            assert!(
                def.get("properties").and_then(|p| p.get("rules")).is_none(),
                "inline rules in {name:?}"
            );
        }
        if ty != "OS::Neutron::SecurityGroupRule" {
            continue;
        }
        let p = def.get("properties").unwrap();
        assert_eq!(
            p.get("direction").and_then(Value::as_str),
            Some("ingress"),
            "{name:?}"
        );
        let min = p.get("port_range_min").and_then(Value::as_u64).unwrap();
        let max = p.get("port_range_max").and_then(Value::as_u64).unwrap();
        assert_eq!(min, max, "{name:?}: one port per rule");
        let from = match (p.get("remote_ip_prefix"), p.get("remote_group")) {
            (Some(Value::String(s)), None) if s == "0.0.0.0/0" => From::Anyone,
            (Some(v), None)
                if v.get("get_param").and_then(Value::as_str) == Some("management_cidr") =>
            {
                From::Management
            }
            (None, Some(g)) => From::Role(sg_role(g)),
            other => panic!("{name:?}: remote {other:?}"),
        };
        rules.insert((
            sg_role(p.get("security_group").unwrap()),
            p.get("protocol")
                .and_then(Value::as_str)
                .unwrap()
                .to_string(),
            u16::try_from(min).unwrap(),
            from,
        ));
    }
    rules
}

/// `imsctl config init` of a pooled core (two P-CSCFs with floating IPs, two S-CSCFs,
/// two HSSs on the PostgreSQL VM) with the template's default addresses first.
fn generate(dir: &Path, t: &Mapping) {
    let params = map(t, "parameters");
    let default = |p: &str| params[p]["default"].as_str().unwrap().to_string();
    let password = dir.with_extension("password");
    std::fs::write(&password, "db-secret\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_imsctl"))
        .args(["config", "init", "--domain", &default("domain")])
        .arg(format!(
            "--pcscf={},public=203.0.113.10",
            default("pcscf_addresses")
        ))
        .arg("--pcscf=10.10.0.21,public=203.0.113.11")
        .arg(format!("--icscf={}", default("icscf_address")))
        .arg(format!("--scscf={}", default("scscf_addresses")))
        .arg("--scscf=10.10.0.23")
        .arg(format!("--hss={}", default("hss_addresses")))
        .arg("--hss=10.10.0.24")
        .arg(format!("--policyd={}", default("policyd_address")))
        .arg(format!(
            "--db-url=postgres://ims@{}:5432",
            default("postgres_address")
        ))
        .arg(format!("--db-password-file={}", password.display()))
        .args([
            "--keystone",
            "https://keystone.example.net:5000/v3",
            "--out",
        ])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn security_groups_open_exactly_what_the_configs_use() {
    let t = load("ims-core.yaml");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("core");
    generate(&dir, &t);
    let need = needed(&dir);
    let open = opened(&t);
    let missing: Vec<_> = need.difference(&open).collect();
    let extra: Vec<_> = open.difference(&need).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "not opened: {missing:#?}\nopened, not needed: {extra:#?}"
    );
    let to_anyone: BTreeSet<(String, u16)> = open
        .iter()
        .filter(|r| r.3 == From::Anyone)
        .map(|r| (r.0.clone(), r.2))
        .collect();
    assert_eq!(
        to_anyone,
        [("pcscf".to_string(), 5060), ("pcscf".to_string(), 5061)].into(),
        "only the P-CSCF's SIP is open to 0.0.0.0/0"
    );
    // Each node's port carries its own role's security group.
    for role in ROLES {
        let def = &map(&t, "resources")[role];
        let props = def.get("properties").unwrap();
        let props = props
            .get("resource_def")
            .and_then(|d| d.get("properties"))
            .unwrap_or(props);
        let sg = props
            .get("security_group")
            .and_then(|s| s.get("get_resource"))
            .and_then(Value::as_str);
        assert_eq!(sg, Some(format!("sg_{role}").as_str()), "{role}");
    }
}

#[test]
fn each_bundle_carries_its_roles_files_only() {
    let t = load("ims-core.yaml");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("core");
    generate(&dir, &t);
    let env = tmp.path().join("env.yaml");
    let ok = std::process::Command::new(deploy().join("bundle"))
        .arg(&dir)
        .arg(&env)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&env).unwrap().permissions().mode() & 0o077,
        0
    );
    let env: Value = yaml_serde::from_str(&std::fs::read_to_string(&env).unwrap()).unwrap();
    let defaults = env
        .get("parameter_defaults")
        .and_then(Value::as_mapping)
        .unwrap();
    let params = map(&t, "parameters");
    for role in ROLES {
        let key = format!("{role}_bundle");
        assert!(
            params.contains_key(key.as_str()),
            "{key} is a template parameter"
        );
        assert_eq!(
            params[key.as_str()]["hidden"].as_bool(),
            Some(true),
            "{key} hidden"
        );
        let pool = role != "icscf" && role != "policyd";
        let all = defaults[key.as_str()].as_str().unwrap();
        let bundles: Vec<&str> = all.split(',').collect();
        assert_eq!(bundles.len(), if pool { 2 } else { 1 }, "{key}");
        if pool {
            let count = format!("{role}_count");
            assert_eq!(defaults[count.as_str()].as_u64(), Some(2), "{count}");
            assert!(params.contains_key(count.as_str()), "{count}");
        }
        for (n, b64) in bundles.iter().enumerate() {
            let id = if pool {
                format!("{role}{}", n + 1)
            } else {
                role.to_string()
            };
            let files = tar_list(b64);
            let mut want: BTreeSet<String> = [
                format!("{role}.toml"),
                "tls/ca.crt".into(),
                format!("tls/{id}.crt"),
                format!("tls/{id}.key"),
                "hosts".into(),
            ]
            .into();
            if role == "hss" {
                want.extend(["hss/store.key".to_string(), "hss/admin.token".to_string()]);
            }
            if role == "hss" || role == "scscf" {
                want.insert("db/pgpass".to_string());
            }
            assert_eq!(files, want, "{id}");
        }
    }
}

/// The file names in a base64 tar.gz.
fn tar_list(b64: &str) -> BTreeSet<String> {
    let list = std::process::Command::new("sh")
        .arg("-c")
        .arg("base64 -d | tar -tzf -")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b64.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8(list.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

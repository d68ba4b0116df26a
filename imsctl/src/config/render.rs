//! The TOML text of each node, written for a core of one VM per node (the layout in
//! `deploy/README.md`): listeners on the node's private address, certificates and keys
//! under `<paths-base>/tls/`, data under `${IMS_DATA_DIR}`.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::plan::{self, Keystone, Node, Plan};

/// Data files (SQLite stores, the P-CSCF's flow-token key) live here on the VMs; the
/// package's units set `IMS_DATA_DIR=/var/lib/ims-core`.
const DATA: &str = "${IMS_DATA_DIR:-/var/lib/ims-core}";

/// The configuration of `node` in `plan`.
pub fn node_toml(plan: &Plan, node: &Node) -> String {
    let mut out = header(plan, node);
    match node.role {
        "pcscf" => pcscf(plan, node, &mut out),
        "icscf" => icscf(plan, node, &mut out),
        "scscf" => scscf(plan, node, &mut out),
        "hss" => hss(plan, node, &mut out),
        _ => policyd(plan, &mut out),
    }
    out
}

fn header(plan: &Plan, node: &Node) -> String {
    let (role, id) = (node.role, &node.id);
    let base = plan.paths_base.display();
    let mut out = format!(
        "# {id} of {domain}, written by `imsctl config init` for a core of one VM per node\n\
         # (deploy/README.md). Install this directory as {base}/ (certificates in\n\
         # {base}/tls/); data goes to the directory of the environment variable\n\
         # IMS_DATA_DIR (/var/lib/ims-core, set by the package's units). Check the whole\n\
         # directory with `imsctl config check`.\n\n\
         [node]\nname = \"{id}\"\ndomain = \"{domain}\"\n\n",
        domain = plan.domain,
    );
    let _ = write!(
        out,
        "[http]\n\
         # /health (and the node's API) over HTTPS with the core CA, reached from the\n\
         # management network only (security groups); /metrics alone in plain HTTP.\n\
         listen = \"{}\"\nmetrics_listen = \"{}\"\n\n\
         [http.tls]\ncert = \"{}\"\nkey = \"{}\"\n\n",
        plan.bind(node, plan::http_port(role)),
        plan.bind(node, plan::metrics_port(role)),
        plan.path(&format!("tls/{id}.crt")),
        plan.path(&format!("tls/{id}.key")),
    );
    out
}

/// The loose-routing SIP URI of `node`'s listeners on `port`.
fn sip_uri(node: &Node, port: u16) -> String {
    format!("sip:{};lr", node.reach(port))
}

fn cidr(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(_) => format!("{ip}/32"),
        IpAddr::V6(_) => format!("{ip}/128"),
    }
}

/// `[zones] core`: the other CSCFs by address.
fn zones(out: &mut String, others: &[&Node]) {
    let core: Vec<String> = others
        .iter()
        .map(|n| format!("\"{}\"", cidr(n.addr)))
        .collect();
    let names: Vec<&str> = others.iter().map(|n| n.id.as_str()).collect();
    let _ = write!(
        out,
        "[zones]\n\
         # Trust zones (SECURITY.md, \"Trust zones\"): the other CSCFs ({}) by their\n\
         # private addresses, which port security keeps unspoofable. Everything else is\n\
         # trusted with nothing. Application servers and peer networks: add them here.\n\
         core = [{}]\napplication_servers = []\ninterconnect = []\n",
        names.join(", "),
        core.join(", ")
    );
}

fn sip_listeners(plan: &Plan, node: &Node, port: u16, out: &mut String) {
    let _ = write!(
        out,
        "udp = [\"{b}\"]\ntcp = [\"{b}\"]\n",
        b = plan.bind(node, port)
    );
}

fn tls_files(plan: &Plan, id: &str, out: &mut String) {
    let _ = write!(
        out,
        "[sip.tls_files]\ncert = \"{}\"\nkey = \"{}\"\nca = \"{}\"\n\n",
        plan.path(&format!("tls/{id}.crt")),
        plan.path(&format!("tls/{id}.key")),
        plan.path("tls/ca.crt"),
    );
}

fn keystone_keys(plan: &Plan, k: &Keystone, out: &mut String) {
    let _ = write!(
        out,
        "url = \"{}\"\nservice_user = \"{}\"\nservice_project = \"{}\"\n\
         # The service user's password: written by cloud-init from the stack's hidden\n\
         # parameter (deploy/openstack), mode 0600, owned by the nodes' user.\n\
         service_password_file = \"{}\"\n",
        k.url,
        k.user,
        k.project,
        plan.path("keystone-service.password"),
    );
}

/// `[cloud_auth]` of a CSCF (or, under `prefix`, the HSS's provisioning API).
fn cloud_auth(plan: &Plan, section: &str, out: &mut String) {
    let Some(k) = &plan.keystone else {
        let _ = write!(
            out,
            "[{section}]\n\
             # Cloud authorization is OFF: `imsctl config init` had no --keystone. Run it\n\
             # again with --keystone URL to turn it on in every node.\n\
             mode = \"off\"\n\n"
        );
        return;
    };
    let policyd = plan.node("policyd");
    let what = if section == "cloud_auth" {
        "Every request a UE starts needs a Keystone token allowed by policyd"
    } else {
        "Keystone tokens on the provisioning API, decided by policyd's `provision`"
    };
    let _ = write!(
        out,
        "[{section}]\n\
         # {what}\n\
         # (SECURITY.md, \"Cloud authorization\").\n\
         mode = \"on\"\npolicy_url = \"https://{}\"\npolicy_ca = \"{}\"\n\n[{section}.keystone]\n",
        policyd.reach(plan::http_port("policyd")),
        plan.path("tls/ca.crt"),
    );
    keystone_keys(plan, k, out);
    out.push('\n');
}

fn cx(plan: &Plan, me: &Node, out: &mut String) {
    let hsss = plan.members("hss");
    // Each CSCF prefers another HSS (the n-th CSCF of a role the n-th HSS), so the
    // load is shared while all run; the others are its failover, in order.
    let own = plan
        .members(me.role)
        .iter()
        .position(|n| n.id == me.id)
        .unwrap_or(0);
    let priority = |j: usize| 1 + (j + hsss.len() - own % hsss.len()) % hsss.len();
    let first = hsss
        .iter()
        .enumerate()
        .find(|(j, _)| priority(*j) == 1)
        .map_or(hsss[0], |(_, h)| *h);
    let list = if hsss.len() == 1 {
        format!("[\"{}\"]", first.reach(plan::DIAMETER_TLS))
    } else {
        let entries: Vec<String> = hsss
            .iter()
            .enumerate()
            .map(|(j, h)| {
                format!(
                    "\n  {{ address = \"{}\", origin_host = \"{}\", priority = {} }}",
                    h.reach(plan::DIAMETER_TLS),
                    h.name,
                    priority(j)
                )
            })
            .collect();
        format!(
            "[\n  # Every HSS of the realm; the lowest priority value is used while open.{}\n]",
            entries.join(",")
        )
    };
    let _ = write!(
        out,
        "[cx]\n\
         # Cx toward the HSS over mutual TLS: our certificate names origin_host, the HSS's\n\
         # names destination_host; both chain to the core CA.\n\
         hss = {list}\ntls_ca = \"{ca}\"\ntls_cert = \"{cert}\"\ntls_key = \"{key}\"\n\
         require_tls = true\norigin_host = \"{me}\"\norigin_realm = \"{realm}\"\n\
         destination_host = \"{hss_name}\"\ndestination_realm = \"{realm}\"\n\n",
        ca = plan.path("tls/ca.crt"),
        cert = plan.path(&format!("tls/{}.crt", me.id)),
        key = plan.path(&format!("tls/{}.key", me.id)),
        me = me.name,
        realm = plan.domain,
        hss_name = first.name,
    );
}

const BUDGET: &str = "[budget]\n\
# Production budgets (SECURITY.md, \"Budgets\"): the built-in defaults, not the dev\n\
# core's load-test rates. Raise unauthenticated_per_second only for sources that front\n\
# many UEs (a carrier-grade NAT).\n";

/// An S-CSCF's Server-Name (its Cx Origin-Host must be this URI's host).
fn scscf_server_name(node: &Node) -> String {
    format!("sip:{}:{}", node.name, plan::SCSCF_SIP)
}

/// The CSCFs of `plan` but `me`, P-CSCFs first: the peers of `me`'s `[zones] core`.
fn other_cscfs<'a>(plan: &'a Plan, me: &Node) -> Vec<&'a Node> {
    plan.nodes
        .iter()
        .filter(|n| matches!(n.role, "pcscf" | "icscf" | "scscf") && n.id != me.id)
        .filter(|n| !(me.role == "pcscf" && n.role == "pcscf"))
        .collect()
}

fn pcscf(plan: &Plan, me: &Node, out: &mut String) {
    let public = me.public.unwrap_or(me.addr);
    out.push_str("[sip]\n# Toward the UEs (security groups open these to anyone).\n");
    sip_listeners(plan, me, plan::PCSCF_SIP, out);
    let _ = write!(
        out,
        "tls = [\"{}\"]\n\
         # The host in Via, Record-Route and Path (each listener writes its own port).\n\
         advertise = \"{}\"\n\n",
        plan.bind(me, plan::PCSCF_SIPS),
        plan::host_port(public, plan::PCSCF_SIP),
    );
    tls_files(plan, &me.id, out);
    if me.public.is_some() {
        out.push_str(
            "[sip.core]\n\
             # Toward the core (I-CSCF, S-CSCF): the private address, which the floating IP\n\
             # of [sip] does not reach.\n",
        );
        sip_listeners(plan, me, plan::PCSCF_CORE, out);
        let _ = write!(out, "advertise = \"{}\"\n\n", me.reach(plan::PCSCF_CORE));
    }
    let _ = write!(
        out,
        "[pcscf]\nvisited_network_id = \"{d}\"\n\
         # Created with a random key (mode 0600) on first start; P-CSCFs sharing an\n\
         # address need the same key.\n\
         flow_token_key_file = \"{DATA}/pcscf/flow_token.key\"\n\
         # Registrations kept across restarts (SQLite, mode 0600).\n\
         store = \"sqlite://{DATA}/pcscf/registrations.db\"\n\n\
         [pcscf.home_networks]\n\"{d}\" = \"{icscf}\"\n\n",
        d = plan.domain,
        icscf = sip_uri(plan.node("icscf"), plan::ICSCF_SIP),
    );
    cloud_auth(plan, "cloud_auth", out);
    let _ = write!(
        out,
        "{BUDGET}unauthenticated_per_second = 20.0\nunauthenticated_burst = 50\n\
         failures_before_backoff = 5\nbackoff_base_secs = 1\nbackoff_max_secs = 300\n\n"
    );
    zones(out, &other_cscfs(plan, me));
}

fn icscf(plan: &Plan, me: &Node, out: &mut String) {
    out.push_str("[sip]\n# Toward the P-CSCF and the S-CSCF.\n");
    sip_listeners(plan, me, plan::ICSCF_SIP, out);
    let _ = write!(out, "advertise = \"{}\"\n\n", me.reach(plan::ICSCF_SIP));
    cx(plan, me, out);
    for scscf in plan.members("scscf") {
        let _ = write!(
            out,
            "[[scscf]]\n# Server-Name as the HSS knows it, and where to reach it.\n\
             name = \"{}\"\nuri = \"{}\"\ncapabilities = []\n\n",
            scscf_server_name(scscf),
            sip_uri(scscf, plan::SCSCF_SIP),
        );
    }
    let _ = write!(
        out,
        "{BUDGET}unknown_user_cache_secs = 30\nuar_per_second = 200.0\n\n"
    );
    zones(out, &other_cscfs(plan, me));
}

/// The store URL of `database` on the shared server, or the node's SQLite file.
fn store_url(plan: &Plan, database: &str, sqlite: &str) -> String {
    match &plan.db {
        Some(db) => format!("{db}/{database}"),
        None => format!("sqlite://{DATA}/{sqlite}"),
    }
}

fn scscf(plan: &Plan, me: &Node, out: &mut String) {
    out.push_str("[sip]\n# Toward the P-CSCF, the I-CSCF and application servers.\n");
    sip_listeners(plan, me, plan::SCSCF_SIP, out);
    // With its port: the S-CSCF's Service-Route is `sip:orig@<advertise>;lr`.
    let _ = write!(out, "advertise = \"{}\"\n\n", me.reach(plan::SCSCF_SIP));
    cx(plan, me, out);
    let pool = if plan.pooled("scscf") {
        "# One of a pool of S-CSCFs on the store above (docs/scale-out.md): users of a\n\
         # failed S-CSCF are taken over from it. The password: PGPASSFILE (db/pgpass).\n\
         pool = true\n"
    } else {
        ""
    };
    let _ = write!(
        out,
        "[registrar]\n# Server-Name in MAR/SAR; its host is our Cx origin_host.\n\
         server_name = \"{}\"\nstore = \"{}\"\n\
         # Temporary GRUUs (RFC 5627) are sealed with this key (generated, mode 0600).\n\
         gruu_key_file = \"{DATA}/scscf/gruu.key\"\n{pool}\n\
         [session]\n# Originating requests toward a home domain go to the I-CSCF.\n\
         icscf = \"{}\"\nhome_domains = [\"{}\"]\n\n",
        scscf_server_name(me),
        store_url(plan, "ims_scscf", "scscf/bindings.db"),
        sip_uri(plan.node("icscf"), plan::ICSCF_SIP),
        plan.domain,
    );
    cloud_auth(plan, "cloud_auth", out);
    let _ = write!(
        out,
        "{BUDGET}failures_before_backoff = 5\nbackoff_base_secs = 1\nbackoff_max_secs = 300\n\n"
    );
    zones(out, &other_cscfs(plan, me));
}

fn hss(plan: &Plan, me: &Node, out: &mut String) {
    let _ = write!(
        out,
        "[store]\nurl = \"{}\"\n\n\
         [provisioning]\n\
         # The static admin token (generated by config init) bootstraps the first\n\
         # subscribers; with cloud authorization on, set static_token = false once a\n\
         # cloud admin can log in (SECURITY.md).\n\
         static_token = true\nadmin_token_file = \"{}\"\n\n",
        store_url(plan, "ims_hss", "hss/hss.db"),
        plan.path("hss/admin.token"),
    );
    if plan.keystone.is_some() {
        cloud_auth(plan, "provisioning.cloud_auth", out);
    }
    let _ = write!(
        out,
        "[security]\n\
         # AES-256-GCM key of the secrets at rest, generated by config init: back it up,\n\
         # it is the only way to read the store{}.\n\
         key_file = \"{}\"\ngenerate_missing = false\n\n",
        if plan.pooled("hss") {
            " (every HSS of the database has this same key)"
        } else {
            ""
        },
        plan.path("hss/store.key"),
    );
    let _ = write!(
        out,
        "[diameter]\n\
         # Cx over mutual TLS only: each CSCF's certificate must name its Origin-Host.\n\
         origin_host = \"{me}\"\norigin_realm = \"{d}\"\ntls = [\"{bind}\"]\nrequire_tls = true\n\n\
         [diameter.tls_files]\ncert = \"{cert}\"\nkey = \"{key}\"\nclient_ca = \"{ca}\"\n\n",
        me = me.name,
        d = plan.domain,
        bind = plan.bind(me, plan::DIAMETER_TLS),
        cert = plan.path(&format!("tls/{}.crt", me.id)),
        key = plan.path(&format!("tls/{}.key", me.id)),
        ca = plan.path("tls/ca.crt"),
    );
    for (role, commands) in [("icscf", "\"UAR\", \"LIR\""), ("scscf", "\"MAR\", \"SAR\"")] {
        for peer in plan.members(role) {
            let _ = write!(
                out,
                "[[diameter.peer]]\nhost = \"{}\"\ncommands = [{commands}]\n\n",
                peer.name
            );
        }
    }
    let servers: Vec<String> = plan
        .members("scscf")
        .into_iter()
        .map(|s| format!("\"{}\"", scscf_server_name(s)))
        .collect();
    let _ = write!(
        out,
        "[diameter.capabilities]\nmandatory = []\noptional = []\nserver_names = [{}]\n",
        servers.join(", ")
    );
}

fn policyd(plan: &Plan, out: &mut String) {
    let _ = write!(
        out,
        "[store]\nurl = \"sqlite://{DATA}/policyd/policy.db\"\n\n"
    );
    match &plan.keystone {
        Some(k) => {
            out.push_str("[keystone]\n");
            keystone_keys(plan, k, out);
        }
        None => out.push_str(
            "# No [keystone]: cloud authorization is off and policyd refuses every API call\n\
             # (503). `imsctl config init --keystone URL` turns it on.\n",
        ),
    }
}

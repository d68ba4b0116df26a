//! `imsctl config init`: every node's TOML, the core CA and the nodes' certificates, and
//! the HSS's secrets, for a core of one VM per node; pools of P-CSCFs, S-CSCFs (on one
//! PostgreSQL store, `docs/scale-out.md`) and HSSs (on one database) when `--pcscf`,
//! `--scscf`, `--hss` are given more than once.
//!
//! Layout of the output directory (install everything but `ca/` as `/etc/ims-core/` on
//! the VMs; each VM needs its own `<id>.toml`, `tls/ca.crt` and `tls/<id>.*`, where
//! `<id>` is the role, or `<role><n>` for the n-th node of a pool: `scscf2.toml`):
//!
//! ```text
//! pcscf.toml icscf.toml scscf.toml hss.toml policyd.toml   (or pcscf1.toml, scscf1.toml, ...)
//! tls/ca.crt  tls/<id>.crt  tls/<id>.key (0600)
//! hosts (the nodes' host names, /etc/hosts lines: cloud-init appends them)
//! hss/store.key hss/admin.token (0600, the HSSs' only; the same for every HSS)
//! db/pgpass (0600, with --db-password-file: the S-CSCFs' and HSSs' PGPASSFILE)
//! ca/ca.key (0600; a generated CA's key: keep it off the VMs)
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use super::pki::Ca;
use super::plan::{self, NodeSpec, Plan};
use super::render;
use crate::devca;

/// `imsctl config init` arguments.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Home network domain, e.g. ims.example.net.
    #[arg(long)]
    domain: String,
    /// P-CSCF: ADDR[,public=ADDR][,name=HOST]; public= is the address UEs reach (an
    /// OpenStack floating IP): the P-CSCF then listens for the core on ADDR:5064.
    /// Repeat for several P-CSCFs (pcscf1.toml, pcscf2.toml, ...).
    #[arg(long, value_parser = plan::parse_spec, required = true)]
    pcscf: Vec<NodeSpec>,
    /// I-CSCF: ADDR[,name=HOST] (host name default icscf.<domain>).
    #[arg(long, value_parser = plan::parse_spec)]
    icscf: NodeSpec,
    /// S-CSCF: ADDR[,name=HOST]. Repeat for a pool of S-CSCFs on one PostgreSQL store
    /// (scscf1.toml, ...; needs --db-url).
    #[arg(long, value_parser = plan::parse_spec, required = true)]
    scscf: Vec<NodeSpec>,
    /// HSS: ADDR[,name=HOST]. Repeat for several HSSs on one database (hss1.toml, ...;
    /// needs --db-url); every CSCF lists them all with priorities.
    #[arg(long, value_parser = plan::parse_spec, required = true)]
    hss: Vec<NodeSpec>,
    /// The PostgreSQL server of the shared stores, postgres://USER@HOST[:PORT] (no
    /// password, no database): the S-CSCFs use database `ims_scscf`, the HSSs
    /// `ims_hss`. Needed with more than one S-CSCF or HSS.
    #[arg(long)]
    db_url: Option<String>,
    /// A file holding the database password: written into db/pgpass (0600), which
    /// the S-CSCFs' and HSSs' units name in PGPASSFILE. Without it, the password
    /// comes from the nodes' environment (PGPASSWORD) or the server trusts them.
    #[arg(long, requires = "db_url")]
    db_password_file: Option<PathBuf>,
    /// Policy service: ADDR[,name=HOST] (default: on the HSS's address).
    #[arg(long, value_parser = plan::parse_spec)]
    policyd: Option<NodeSpec>,
    /// Keystone identity API v3 URL: cloud authorization on in every node.
    #[arg(long)]
    keystone: Option<String>,
    /// Keystone service user validating tokens (role `service` on its project).
    #[arg(long, default_value = "ims-service")]
    keystone_user: String,
    /// The service user's project.
    #[arg(long, default_value = "service")]
    keystone_project: String,
    /// Listeners bind 0.0.0.0 (::) instead of the node's address.
    #[arg(long)]
    bind_any: bool,
    /// Where the generated directory is installed on the VMs; paths in the configs
    /// start with it.
    #[arg(long, default_value = "/etc/ims-core")]
    paths_base: PathBuf,
    /// The operator's CA certificate (PEM) to sign the nodes' certificates with,
    /// instead of a new CA.
    #[arg(long, requires = "ca_key")]
    ca_cert: Option<PathBuf>,
    /// The operator's CA private key (PEM); it is not copied.
    #[arg(long, requires = "ca_cert")]
    ca_key: Option<PathBuf>,
    /// Output directory (created; must be empty).
    #[arg(long)]
    out: PathBuf,
}

/// Writes the whole directory.
pub fn run(args: InitArgs) -> anyhow::Result<()> {
    let policyd = args.policyd.clone().unwrap_or(NodeSpec {
        addr: args.hss[0].addr,
        public: None,
        name: None,
    });
    let password = match &args.db_password_file {
        Some(p) => Some(read_password(p)?),
        None => None,
    };
    let plan = Plan::new(
        &args.domain,
        vec![
            ("pcscf", args.pcscf),
            ("icscf", vec![args.icscf]),
            ("scscf", args.scscf),
            ("hss", args.hss),
            ("policyd", vec![policyd]),
        ],
        args.db_url,
        plan::keystone(args.keystone, args.keystone_user, args.keystone_project),
        args.bind_any,
        args.paths_base,
    )?;
    let out = &args.out;
    plan::ensure_empty(out)?;
    for sub in ["tls", "hss"] {
        fs::create_dir_all(out.join(sub))
            .with_context(|| format!("creating {}", out.join(sub).display()))?;
    }
    let ca = match (&args.ca_cert, &args.ca_key) {
        (Some(cert), Some(key)) => Ca::load(cert, key)?,
        _ => {
            let dir = out.join("ca");
            fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            Ca::generate(&plan.domain, &dir.join("ca.key"))?
        }
    };
    write(&out.join("tls/ca.crt"), &ca.cert_pem)?;
    for node in &plan.nodes {
        ca.issue(node, &out.join("tls"))?;
    }
    for node in &plan.nodes {
        write(
            &out.join(format!("{}.toml", node.id)),
            &render::node_toml(&plan, node),
        )?;
    }
    write(&out.join("hosts"), &hosts(&plan))?;
    devca::write_secret(&out.join("hss/store.key"), &random_hex(32)?)?;
    devca::write_secret(&out.join("hss/admin.token"), &random_hex(24)?)?;
    if let (Some(db), Some(password)) = (&plan.db, &password) {
        fs::create_dir_all(out.join("db")).context("creating db/")?;
        devca::write_secret(&out.join("db/pgpass"), &pgpass(db, password)?)?;
    }
    println!(
        "wrote the configuration of {} to {} (install it as {}/; `imsctl config check {}`)",
        plan.domain,
        out.display(),
        plan.paths_base.display(),
        out.display()
    );
    if args.ca_cert.is_none() {
        println!(
            "the CA's private key is {}: keep it off the VMs",
            out.join("ca/ca.key").display()
        );
    }
    Ok(())
}

/// `/etc/hosts` lines naming every node (its certificate name, Diameter identity).
fn hosts(plan: &Plan) -> String {
    let mut text = format!(
        "# The host names of {}'s nodes (imsctl config init): appended to /etc/hosts.\n",
        plan.domain
    );
    for n in &plan.nodes {
        text.push_str(&format!("{} {}\n", n.addr, n.name));
    }
    text
}

/// The password in `path` (surrounding whitespace dropped; one line).
fn read_password(path: &Path) -> anyhow::Result<String> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let pw = text.trim();
    if pw.is_empty() || pw.contains(['\n', '\r']) {
        anyhow::bail!("{}: must hold the password on one line", path.display());
    }
    Ok(pw.to_string())
}

/// A PostgreSQL password file line (`host:port:database:user:password`, any database)
/// for `db` (`postgres://user@host[:port]`); `:` and `\` escaped.
fn pgpass(db: &str, password: &str) -> anyhow::Result<String> {
    let rest = db.split_once("://").map_or(db, |(_, r)| r);
    let (user, hostport) = rest.split_once('@').context("--db-url: no user")?;
    let ep = super::check::host_port(hostport, 5432).context("--db-url: no host")?;
    let esc = |s: &str| s.replace('\\', "\\\\").replace(':', "\\:");
    Ok(format!(
        "{}:{}:*:{}:{}\n",
        esc(&ep.host),
        ep.port,
        esc(user),
        esc(password)
    ))
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// `bytes` random bytes in hex, from the operating system's generator.
fn random_hex(bytes: usize) -> anyhow::Result<String> {
    let mut buf = vec![0u8; bytes];
    let mut f = fs::File::open("/dev/urandom").context("opening /dev/urandom")?;
    std::io::Read::read_exact(&mut f, &mut buf).context("reading /dev/urandom")?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect::<String>() + "\n")
}

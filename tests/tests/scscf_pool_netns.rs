#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Two S-CSCFs of one pool on one PostgreSQL database, and one of them killed under load
//! (issue 15 items 1 and 2, `docs/scale-out.md`), in a bed of network namespaces on one
//! bridge (10.214.0.0/24): the P-CSCF (.11), the I-CSCF (.12), S-CSCF 1 (.13), the HSS
//! (.14), S-CSCF 2 (.15), PostgreSQL (.16) and the UEs' host (.20).
//!
//! PostgreSQL is a private instance inside the bed (`initdb` and `postgres` of Debian's
//! `postgresql` package, run as the `postgres` user in the `pg` namespace, trust
//! authentication on the bed's network only), not the host's: the namespaces cannot
//! reach the host's loopback, and a route from the bed to the host would expose the
//! host's database to whatever runs in the bed. The configs are `imsctl config init`'s
//! for a pool (`--scscf` twice, `--db-url` naming the bed's PostgreSQL: both S-CSCFs
//! with `[registrar] pool = true` on database `ims_scscf`, the HSS on `ims_hss`, the
//! I-CSCF listing both, the HSS accepting both), checked by `imsctl config check`, with
//! the test's timings: `lease_secs = 3`, the I-CSCF's `scscf_silence_ms = 1000`, and the
//! HSS naming S-CSCF 1 alone in its `server_names` so that new users go to S-CSCF 1
//! while it runs (the scenario below; without it they are shared by hashing).
//!
//! Shown, with SIPp UEs on the UE host:
//!
//! 1. the callers register while S-CSCF 1 is down: the I-CSCF selects it (the first of
//!    equal capabilities), it stays silent, and the REGISTER goes to S-CSCF 2 (§5.3.1.3);
//!    then S-CSCF 1 starts and the callees register there; the shared store holds each
//!    registration once, owned by the S-CSCF that serves it;
//! 2. every caller calls its callee (through both S-CSCFs);
//! 3. under a load of calls (10 per second), S-CSCF 1 gets SIGKILL: the calls go on
//!    through the I-CSCF's restoration (LIR by capabilities, S-CSCF 2 takes each callee
//!    over from the store on demand) and S-CSCF 2's sweep, once S-CSCF 1's lease has
//!    ended (at most `lease_secs` + a third of it), takes over the rest; only calls in
//!    flight through S-CSCF 1 at the kill may fail;
//! 4. every callee re-registers (through S-CSCF 2, on the bindings S-CSCF 1 stored) and
//!    receives a call again; the store still holds every registration, all owned by
//!    S-CSCF 2: none lost (counted in the store and in SIPp's counts at the UEs).
//!
//! Needs root, `ip`, `nft`, SIPp and PostgreSQL's server binaries; runs only when
//! `IMS_TEST_POSTGRES_URL` is set (the PostgreSQL tests' gate, which CI sets), and, like
//! `deployment_netns.rs`, is skipped without network namespaces unless `IMS_TEST_NETNS=1`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ims_e2e::chain::{
    assert_all_passed, provision_digest_in, sipp_pairs_csv, users, workdir, DOMAIN,
};
use ims_e2e::netns::{self, Bed};
use ims_e2e::sipp::{self, SippResult, SippTransport};
use ims_e2e::{command, scratch_dir, wait_for};

const NET: &str = "10.214.0";
const PG_HOST: &str = "10.214.0.16";
const UE_HOST: &str = "10.214.0.20";
/// Callers and callees (each).
const USERS: usize = 20;
/// Calls of the load during which S-CSCF 1 is killed, and their rate per second.
const LOAD_CALLS: u32 = 60;
const LOAD_RATE: u32 = 10;
/// Calls in flight through S-CSCF 1 when it is killed, at most: a call lasts about
/// 0.5 s (the UAS answers after 200 ms, the UAC hangs up after 100 ms), so at 10 calls
/// per second about 5 have a dialog or a transaction there.
const IN_FLIGHT: u64 = 8;
/// `[registrar] lease_secs` of both S-CSCFs.
const LEASE_SECS: u64 = 3;

/// The bed's namespaces with their addresses; `scscf` is S-CSCF 1.
const HOSTS: [(&str, &str); 7] = [
    ("pcscf", "10.214.0.11"),
    ("icscf", "10.214.0.12"),
    ("scscf1", "10.214.0.13"),
    ("hss", "10.214.0.14"),
    ("scscf2", "10.214.0.15"),
    ("pg", PG_HOST),
    ("ue", UE_HOST),
];

const SCSCF1: &str = "sip:scscf1.ims.example.net:5080";
const SCSCF2: &str = "sip:scscf2.ims.example.net:5080";

fn address(name: &str) -> &'static str {
    netns::address_of(&HOSTS, name)
}

/// The directory of PostgreSQL's server binaries (`initdb`, `postgres`), if installed.
fn postgres_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists() && p.join("postgres").exists())
        .collect();
    found.sort();
    found.pop()
}

/// Skips (`None`) unless PostgreSQL tests are on and the bed can be built; fails when
/// `IMS_TEST_NETNS=1` and it cannot.
fn gate() -> Option<PathBuf> {
    if std::env::var("IMS_TEST_POSTGRES_URL").is_err() {
        eprintln!("skipped: IMS_TEST_POSTGRES_URL not set (PostgreSQL tests off)");
        return None;
    }
    let strict = std::env::var("IMS_TEST_NETNS").as_deref() == Ok("1");
    let missing = match (netns::available(), postgres_bin(), sipp::available()) {
        (Ok(()), Some(bin), true) => return Some(bin),
        (Err(e), _, _) => format!("network namespaces with nftables: {e}"),
        (_, None, _) => "PostgreSQL's server binaries (/usr/lib/postgresql/*/bin)".into(),
        (_, _, false) => "sipp".into(),
    };
    assert!(!strict, "IMS_TEST_NETNS=1 but this is missing: {missing}");
    eprintln!("skipped: needs {missing}");
    None
}

/// The bed: one bridge, every host on it.
fn build(bed: &mut Bed) -> Result<(), netns::NetnsError> {
    bed.bridge("core")?;
    for (name, addr) in HOSTS {
        bed.add(name)?;
        bed.attach(name, "eth0", "core", &format!("{addr}/24"))?;
    }
    Ok(())
}

/// Runs `program args` on the host as the `postgres` user.
fn as_postgres(program: &Path, args: &[&str]) {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(program)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program:?} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A private PostgreSQL in namespace `pg`, listening on [`PG_HOST`]:5432 with trust
/// authentication for the bed's network, its files in `dir/pg` (owned by `postgres`).
fn start_postgres(bed: &mut Bed, bin: &Path, dir: &Path) {
    let data = dir.join("pg");
    std::fs::create_dir_all(&data).unwrap();
    for d in [dir, dir.parent().unwrap()] {
        let _ = Command::new("chmod").arg("o+x").arg(d).status();
    }
    let ok = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(&data)
        .status()
        .unwrap();
    assert!(ok.success());
    let data_s = data.to_str().unwrap();
    as_postgres(
        &bin.join("initdb"),
        &["-D", data_s, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
    );
    std::fs::write(
        data.join("pg_hba.conf"),
        format!("local all all trust\nhost all all {NET}.0/24 trust\n"),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("pg.log")).unwrap();
    let mut c = bed.command("pg", Path::new("/usr/sbin/runuser"));
    c.args(["-u", "postgres", "--"])
        .arg(bin.join("postgres"))
        .args(["-D", data_s, "-h", PG_HOST, "-p", "5432", "-k", data_s])
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    bed.spawn(c).unwrap_or_else(|e| panic!("{e}"));
    let ready = wait_for(Duration::from_secs(30), || {
        psql(bed, "postgres", "SELECT 1").ok().filter(|o| o == "1")
    });
    assert!(
        ready.is_some(),
        "PostgreSQL never answered; its log:\n{}",
        std::fs::read_to_string(dir.join("pg.log")).unwrap_or_default()
    );
    // The databases of `imsctl config init --db-url`.
    for db in ["ims_scscf", "ims_hss"] {
        psql(bed, "postgres", &format!("CREATE DATABASE {db}")).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// `psql -tA -c sql` against database `db` of the bed's PostgreSQL, from its
/// namespace: the output.
fn psql(bed: &Bed, db: &str, sql: &str) -> Result<String, netns::NetnsError> {
    let url = format!("postgresql://postgres@{PG_HOST}:5432/{db}");
    let out = bed.exec("pg", "psql", &[&url, "-tA", "-c", sql])?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The registrations in the shared store: (owner, count), by owner.
fn owners(bed: &Bed) -> Vec<(String, usize)> {
    let out = psql(
        bed,
        "ims_scscf",
        "SELECT owner, count(*) FROM registration GROUP BY owner ORDER BY owner",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    out.lines()
        .filter_map(|l| l.split_once('|'))
        .map(|(o, n)| (o.to_string(), n.parse().unwrap()))
        .collect()
}

/// `imsctl config init` of the pool for the bed (checked by `imsctl config check`),
/// then the test's timings and S-CSCF 1 as the HSS's named S-CSCF.
fn generate(dir: &Path) -> PathBuf {
    let core = dir.join("core");
    let core_s = core.to_str().unwrap();
    let node = |role: &str, ns: &str| format!("--{role}={}", address(ns));
    let out = command("imsctl")
        .args(["config", "init", "--domain", DOMAIN])
        .args([
            node("pcscf", "pcscf"),
            node("icscf", "icscf"),
            node("scscf", "scscf1"),
            node("scscf", "scscf2"),
            node("hss", "hss"),
        ])
        .arg(format!("--db-url=postgresql://postgres@{PG_HOST}:5432"))
        .args(["--paths-base", core_s, "--out", core_s])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = command("imsctl")
        .args(["config", "check", core_s, "--paths-base", core_s])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let edit = |file: &str, f: &dyn Fn(String) -> String| {
        let path = core.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("pool = true") || !file.starts_with("scscf"),
            "{text}"
        );
        std::fs::write(&path, f(text)).unwrap();
    };
    for file in ["scscf1.toml", "scscf2.toml"] {
        edit(file, &|text| {
            text.replace(
                "pool = true\n",
                &format!("pool = true\nlease_secs = {LEASE_SECS}\n"),
            )
        });
    }
    edit("hss.toml", &|text| {
        let both = format!("server_names = [\"{SCSCF1}\", \"{SCSCF2}\"]");
        assert!(text.contains(&both), "{text}");
        text.replace(&both, &format!("server_names = [\"{SCSCF1}\"]"))
    });
    edit("icscf.toml", &|text| {
        assert!(!text.contains("[registration]"), "{text}");
        text + "\n[registration]\nscscf_silence_ms = 1000\n"
    });
    core
}

/// Starts node `role` with config `<ns>.toml` in namespace `ns` ([`Bed::start_node`]).
fn start(bed: &mut Bed, dir: &Path, core: &Path, role: &str, ns: &str) -> usize {
    bed.start_node(dir, core, role, ns, address(ns).parse().unwrap())
}

/// Runs `scenario` once per line of `csv` from `local` at `rate` per second toward the
/// P-CSCF, bounded by `timeout_secs`.
fn uac(dir: &Path, scenario: &str, csv: &Path, local: u16, rate: u32) -> SippResult {
    let calls = u32::try_from(USERS).unwrap();
    uac_calls(dir, scenario, csv, local, calls, rate, 60)
}

fn uac_calls(
    dir: &Path,
    scenario: &str,
    csv: &Path,
    local: u16,
    calls: u32,
    rate: u32,
    timeout_secs: u32,
) -> SippResult {
    sipp::run_uac_inf(
        &sipp::scenario(scenario),
        netns::sock(address("pcscf"), 5060),
        None,
        Some(csv),
        netns::sock(UE_HOST, local),
        SippTransport::Udp,
        calls,
        rate,
        timeout_secs,
        &workdir(dir),
    )
    .expect("sipp runs")
}

/// The callees' UE: SIPp answering `calls` calls on their registered port.
fn answer_calls(dir: &Path, calls: u32, timeout_secs: u32) -> sipp::Background {
    sipp::Background::uas(
        &sipp::scenario("session/uas_answer.xml"),
        netns::sock(UE_HOST, CALLEES_PORT),
        calls,
        timeout_secs,
        &workdir(dir),
        false,
    )
    .expect("sipp UAS starts")
}

const CALLERS_PORT: u16 = 5100;
const CALLEES_PORT: u16 = 5200;

#[test]
fn killing_one_of_two_pooled_s_cscfs_loses_no_registration_and_no_incoming_call() {
    let Some(pg_bin) = gate() else {
        return;
    };
    let dir = scratch_dir("scscf-pool");
    let core = generate(&dir);
    let mut bed = Bed::new(&format!("pool{}", std::process::id())).unwrap();
    build(&mut bed).unwrap_or_else(|e| panic!("building the bed: {e}"));
    start_postgres(&mut bed, &pg_bin, &dir);
    start(&mut bed, &dir, &core, "hss", "hss");
    start(&mut bed, &dir, &core, "scscf", "scscf2");
    start(&mut bed, &dir, &core, "icscf", "icscf");
    start(&mut bed, &dir, &core, "pcscf", "pcscf");

    let callers = users("caller", USERS);
    let callees = users("callee", USERS);
    let all: Vec<String> = callers.iter().chain(&callees).cloned().collect();
    provision_digest_in(&bed, "ue", &core, &dir, &all);
    let callers_csv = sipp_pairs_csv(&dir, "callers.csv", &callers, &callees);
    let callees_csv = sipp_pairs_csv(&dir, "callees.csv", &callees, &callers);
    sipp::run_in_netns(Some(&bed.ns("ue")));

    // 1. The callers register with S-CSCF 1 down (its REGISTERs fall back to S-CSCF 2),
    // then the callees with S-CSCF 1 up.
    let reg = uac(&dir, "session/register.xml", &callers_csv, CALLERS_PORT, 50);
    assert_all_passed(&reg, USERS);
    let scscf1 = start(&mut bed, &dir, &core, "scscf", "scscf1");
    let reg = uac(&dir, "session/register.xml", &callees_csv, CALLEES_PORT, 50);
    assert_all_passed(&reg, USERS);
    assert_eq!(
        owners(&bed),
        [(SCSCF1.to_string(), USERS), (SCSCF2.to_string(), USERS)],
        "callees at S-CSCF 1, callers at S-CSCF 2, each once"
    );

    // 2. Every caller calls its callee.
    let calls = u32::try_from(USERS).unwrap();
    let uas = answer_calls(&dir, calls, 60);
    assert_all_passed(
        &uac(&dir, "session/uac_call.xml", &callers_csv, CALLERS_PORT, 10),
        USERS,
    );
    assert_all_passed(&uas.finish(), USERS);

    // 3. A load of calls; S-CSCF 1 killed two seconds in.
    let uas = answer_calls(&dir, LOAD_CALLS, 30);
    let load = {
        let (dir, csv) = (dir.clone(), callers_csv.clone());
        let ns = bed.ns("ue");
        std::thread::spawn(move || {
            sipp::run_in_netns(Some(&ns));
            let scenario = "session/uac_call.xml";
            uac_calls(
                &dir,
                scenario,
                &csv,
                CALLERS_PORT,
                LOAD_CALLS,
                LOAD_RATE,
                30,
            )
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    bed.signal(scscf1, "KILL");
    let killed = Instant::now();
    let taken_over = wait_for(Duration::from_secs(30), || {
        (owners(&bed) == [(SCSCF2.to_string(), 2 * USERS)]).then(|| killed.elapsed())
    });
    eprintln!("every registration owned by S-CSCF 2 {taken_over:?} after the kill");
    assert!(
        taken_over.is_some(),
        "S-CSCF 2 took over: {:?}",
        owners(&bed)
    );
    let load = load.join().unwrap();
    eprintln!("calls under the kill: {load:?}");
    drop(uas);
    // A call in flight through S-CSCF 1 hangs (its 200 is lost there) until SIPp's
    // timeout: counted neither successful nor failed. Every other call succeeds.
    assert!(
        load.successful + IN_FLIGHT >= u64::from(LOAD_CALLS),
        "only calls in flight through S-CSCF 1 fail: {load:?}"
    );

    // 4. The callees re-register (S-CSCF 2, on the stored bindings) and get calls again.
    let reg = uac(&dir, "session/register.xml", &callees_csv, CALLEES_PORT, 50);
    assert_all_passed(&reg, USERS);
    let uas = answer_calls(&dir, calls, 60);
    assert_all_passed(
        &uac(&dir, "session/uac_call.xml", &callers_csv, CALLERS_PORT, 10),
        USERS,
    );
    assert_all_passed(&uas.finish(), USERS);
    sipp::run_in_netns(None);
    assert_eq!(
        owners(&bed),
        [(SCSCF2.to_string(), 2 * USERS)],
        "no registration lost"
    );
    eprintln!("S-CSCF pool test took {:?}", killed.elapsed());
}

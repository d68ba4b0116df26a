#!/usr/bin/env python3
"""Registration load through the chain with one S-CSCF or a pool of two on one
PostgreSQL database (issue 15, docs/scale-out.md): the same SIPp scenario, users and
rates as `register_load.py --warm` (whose functions this reuses), in three
configurations, alternated, each run from scratch:

* `sqlite`: one S-CSCF on SQLite, `[registrar] pool = false` (the dev default);
* `pg1`: one S-CSCF on PostgreSQL, `pool = true` (a pool of one): against `sqlite`, the
  store's cost;
* `pg2`: two S-CSCFs on the same PostgreSQL database, `pool = true`, both listed in the
  I-CSCF's `[[scscf]]` and the HSS's `server_names` (equally capable: new users are
  shared by rendezvous hashing of the public identity, `icscf/src/selection.rs`):
  against `pg1`, the pool's effect.

`imsctl up` starts the chain with the run's configs (config/dev with the edits above);
the second S-CSCF is started by this script beside it: its own SIP port (5081) and HTTP
port (9113), Server-Name `sip:scscf2.ims.example.net:5081` and Cx Origin-Host
`scscf2.ims.example.net`, on the first one's dev certificate (the HSS's peer entry for it
says `tls_name`), one tokio worker like every node `imsctl up` starts on 2 cores.

PostgreSQL is a private instance (Debian's `initdb` and `postgres`, newest version in
/usr/lib/postgresql, default settings: fsync and synchronous_commit on), started by this
script as the `postgres` user on 127.0.0.1:5432 inside the script's private network
namespace, not the host's server: a fresh namespace cannot reach the host's loopback, and
the CPU of a private instance is the benchmark's alone (the postmaster's and its
children's utime+stime, reaped ones included). Each run gets a database of its own,
dropped after the run; the cluster is removed at the end.

Reported per run and rate (markdown on stdout, and `--out FILE`): offered and done
rate, failures, p99, CPU seconds and µs per registration of each process (each S-CSCF
separately, PostgreSQL's server processes summed), the load average before and after the
run, the highest clean rate, the registrations in the store per owner after the rates
(how the users split), each S-CSCF's store changes and transactions, and the WARN/ERROR
lines the S-CSCFs and the I-CSCF logged. Every SIPp run is bounded in calls and time.

    cargo build --release --bins -p pcscf -p icscf -p scscf -p hss -p cloud-auth -p imsctl
    python3 bench/pool_load.py [--rates 1000,2000,3000] [--seconds 5] [--users 4000]
                               [--configs sqlite,pg1,pg2] [--repeat 2] [--out FILE]

As root, it re-executes itself under `unshare -n` (no need to wrap it).
"""
import argparse
import datetime
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kamailio_compare as kc  # noqa: E402
import register_load as rl  # noqa: E402

NETNS_MARK = "POOL_LOAD_NETNS"
PG_PORT = 5432
SCSCF1 = "sip:scscf.ims.example.net:5080"
SCSCF2 = "sip:scscf2.ims.example.net:5081"
SCSCF2_HTTP = 9113
# Configuration name -> (S-CSCFs, on PostgreSQL).
CONFIGS = {"sqlite": (1, False), "pg1": (1, True), "pg2": (2, True)}


# --- the private PostgreSQL -------------------------------------------------------------

def postgres_bin():
    found = sorted(p for p in glob.glob("/usr/lib/postgresql/*/bin")
                   if os.path.exists(os.path.join(p, "initdb")) and os.path.exists(os.path.join(p, "postgres")))
    if not found:
        sys.exit("needs PostgreSQL's server binaries (apt-get install postgresql)")
    return found[-1]


def psql(sql, db="postgres"):
    """`psql -tA -c sql` as the superuser against the private server: its output."""
    out = subprocess.run(["psql", f"postgresql://postgres@127.0.0.1:{PG_PORT}/{db}", "-tA", "-c", sql],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"psql {sql!r}: {out.stderr.strip()}")
    return out.stdout.strip()


def start_postgres(work):
    """initdb and postgres (as the `postgres` user) in work/pg, listening on 127.0.0.1 of
    this namespace; returns (process, postmaster pid) once it answers (at most 30 s)."""
    bin_dir = postgres_bin()
    data = os.path.join(work, "pg")
    os.makedirs(data)
    os.chmod(work, 0o711)
    shutil.chown(data, "postgres", "postgres")
    subprocess.run(["runuser", "-u", "postgres", "--", os.path.join(bin_dir, "initdb"), "-D", data,
                    "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    log = open(os.path.join(work, "pg.log"), "w")
    pg = subprocess.Popen(["runuser", "-u", "postgres", "--", os.path.join(bin_dir, "postgres"), "-D", data,
                           "-h", "127.0.0.1", "-p", str(PG_PORT), "-k", data],
                          stdout=log, stderr=log, start_new_session=True)
    log.close()
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if psql("SELECT 1") == "1":
                with open(os.path.join(data, "postmaster.pid")) as f:
                    return pg, int(f.readline())
        except (RuntimeError, OSError, ValueError):
            pass
        time.sleep(0.5)
    stop_postgres(pg)
    sys.exit(f"PostgreSQL did not answer; see {os.path.join(work, 'pg.log')}")


def stop_postgres(pg):
    """SIGTERM to the server's process group (a smart shutdown), SIGKILL after 30 s."""
    os.killpg(pg.pid, 15)
    try:
        pg.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(pg.pid, 9)


def postgres_cpu(postmaster):
    """CPU seconds of the whole server: the postmaster's own and its reaped children's
    (cutime, cstime) plus each live child's utime+stime."""
    with open(f"/proc/{postmaster}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = sum(int(x) for x in fields[11:15])
    total = ticks / os.sysconf("SC_CLK_TCK")
    children = [p for p in kc.process_tree(postmaster) if p != postmaster]
    for pid in children:
        try:
            total += rl.cpu_seconds(pid)
        except OSError:  # exited meanwhile: counted in cutime/cstime from now on
            pass
    return total


# --- configurations ---------------------------------------------------------------------

def edit(path, old, new):
    with open(path) as f:
        text = f.read()
    if old not in text:
        sys.exit(f"{path}: expected {old!r}")
    with open(path, "w") as f:
        f.write(text.replace(old, new))


def write_configs(work, name, db_url):
    """config/dev copied to work/config-<name> with the configuration's edits; returns
    the directory."""
    scscfs, postgres = CONFIGS[name]
    cfg = os.path.join(work, f"config-{name}")
    shutil.copytree(os.path.join(rl.ROOT, "config", "dev"), cfg)
    scscf = os.path.join(cfg, "scscf.toml")
    if postgres:
        edit(scscf, 'store = "sqlite://${IMS_DATA_DIR:-data}/scscf/bindings.db"', f'store = "{db_url}"')
        edit(scscf, "pool = false", "pool = true")
    if scscfs == 2:
        second = os.path.join(cfg, "scscf2.toml")
        shutil.copy(scscf, second)
        edit(second, "127.0.0.1:5080", "127.0.0.1:5081")
        edit(second, "127.0.0.1:9103", f"127.0.0.1:{SCSCF2_HTTP}")
        edit(second, f'server_name = "{SCSCF1}"', f'server_name = "{SCSCF2}"')
        edit(second, 'origin_host = "scscf.ims.example.net"', 'origin_host = "scscf2.ims.example.net"')
        with open(os.path.join(cfg, "icscf.toml"), "a") as f:
            f.write(f'\n[[scscf]]\nname = "{SCSCF2}"\nuri = "sip:127.0.0.1:5081;lr"\ncapabilities = []\n')
        hss = os.path.join(cfg, "hss.toml")
        edit(hss, f'server_names = ["{SCSCF1}"]', f'server_names = ["{SCSCF1}", "{SCSCF2}"]')
        with open(hss, "a") as f:
            f.write('\n[[diameter.peer]]\nhost = "scscf2.ims.example.net"\n'
                    'tls_name = "scscf.ims.example.net"\ncommands = ["MAR", "SAR"]\n')
    return cfg


def start_scscf2(bin_dir, cfg, env, work):
    """The second S-CSCF (one tokio worker); returns its process once its /health
    answers (at most 60 s)."""
    log = open(os.path.join(work, "scscf2.log"), "w")
    p = subprocess.Popen([os.path.join(bin_dir, "scscf"), "--config", os.path.join(cfg, "scscf2.toml")],
                         env={**env, "TOKIO_WORKER_THREADS": str(max(1, os.cpu_count() // 5))},
                         stdout=log, stderr=log, start_new_session=True)
    log.close()
    deadline = time.time() + 60
    while time.time() < deadline:
        if p.poll() is not None:
            sys.exit(f"scscf2 exited ({p.returncode}); see {os.path.join(work, 'scscf2.log')}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{SCSCF2_HTTP}/health", timeout=2).close()
            return p
        except OSError:
            time.sleep(0.3)
    p.kill()
    sys.exit("scscf2 did not answer on /health")


def stop_process(p):
    p.terminate()
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()


def owners(db):
    """Registrations in the store per owner: {owner: count}."""
    rows = psql("SELECT owner, count(*) FROM registration GROUP BY owner ORDER BY owner", db)
    return {o: int(n) for o, n in (line.split("|") for line in rows.splitlines() if "|" in line)}


def logged_problems(logs):
    """(count, first lines) of the WARN and ERROR lines in `logs` (name -> path)."""
    found = []
    for name, path in logs.items():
        try:
            with open(path, errors="replace") as f:
                found += [f"{name}: {line.strip()}" for line in f if " WARN " in line or " ERROR " in line]
        except OSError:
            pass
    return len(found), found[:5]


# --- one run ----------------------------------------------------------------------------

def one_rate(rate, args, users_csv, work, pids, postmaster, health_ports):
    """register_load.run_rate plus PostgreSQL's CPU over it and each S-CSCF's store
    changes and transactions (name -> (changes, transactions))."""
    time.sleep(1.5)  # /health's counters are refreshed every second
    before = {n: rl.scscf_store_counters(port) for n, port in health_ports.items()}
    pg0 = postgres_cpu(postmaster) if postmaster else None
    r = rl.run_rate(rate, args.seconds, users_csv, work, pids)
    if postmaster:
        r["cpu_s"]["postgres"] = postgres_cpu(postmaster) - pg0
        r["cpu"]["postgres"] = 100.0 * r["cpu_s"]["postgres"] / r["wall"]
    time.sleep(1.5)
    r["store"] = {}
    for n, port in health_ports.items():
        after = rl.scscf_store_counters(port)
        if before[n] and after:
            r["store"][n] = (after[0] - before[n][0], after[1] - before[n][1])
    return r


def run_config(name, run, args, bin_dir, work, postmaster):
    """One run of configuration `name` from scratch; returns its summary."""
    scscfs, postgres = CONFIGS[name]
    db = f"bench_{name}_{run}"
    db_url = f"postgres://postgres@127.0.0.1:{PG_PORT}/{db}"
    if postgres:
        psql(f"CREATE DATABASE {db}")
    run_dir = os.path.join(work, f"{name}-{run}")
    os.makedirs(run_dir)
    cfg = write_configs(run_dir, name, db_url)
    data = os.path.join(run_dir, "data")
    env = {**os.environ, "IMS_DATA_DIR": data, "RUST_LOG": "warn"}
    env.pop("CARGO", None)
    imsctl = os.path.join(bin_dir, "imsctl")
    load0 = os.getloadavg()
    up = rl.start_core(imsctl, data, env, cfg)
    second = None
    try:
        imp, users_csv = rl.write_users(run_dir, args.users)
        rl.import_users(imsctl, env, imp)
        pids = rl.node_pids(bin_dir)  # before the second S-CSCF: "scscf" is the first
        health = {"scscf": 9103}
        if scscfs == 2:
            second = start_scscf2(bin_dir, cfg, env, run_dir)
            pids["scscf2"] = second.pid
            health["scscf2"] = SCSCF2_HTTP
        rl.warm_up(args.users, users_csv, run_dir, pids)
        results = kc.run_rates(args.rates, False, lambda rate: one_rate(
            rate, args, users_csv, run_dir, pids, postmaster if postgres else None, health))
        split = owners(db) if postgres else None
    finally:
        if second:
            stop_process(second)
        rl.stop_core(up)
        if postgres:
            psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    logs = {n: os.path.join(data, "logs", f"{n}.log") for n in ["scscf", "icscf", "pcscf", "hss"]}
    if scscfs == 2:
        logs["scscf2"] = os.path.join(run_dir, "scscf2.log")
    nodes = ["pcscf", "icscf", "scscf"] + (["scscf2"] if scscfs == 2 else []) + ["hss"] \
        + (["postgres"] if postgres else [])
    return {"name": name, "run": run, "results": results, "split": split, "nodes": nodes,
            "load": (load0, os.getloadavg()), "problems": logged_problems(logs)}


# --- report -----------------------------------------------------------------------------

def run_section(s):
    l0, l1 = s["load"]
    lines = [f"### {s['name']}, run {s['run']} (load average {l0[0]:.2f} before, {l1[0]:.2f} after)", ""]
    lines += kc.rate_table(s["results"], s["nodes"], "reg")
    for r in s["results"]:
        if r["store"]:
            lines.append(f"- {r['rate']}/s store writes: " + ", ".join(
                f"{kc.LABEL[n]} {c} changes in {t} transactions" for n, (c, t) in r["store"].items()))
    if s["split"] is not None:
        lines.append("- registrations in the store per owner after the rates: "
                     + ", ".join(f"`{o or '(none)'}` {n}" for o, n in s["split"].items()))
    count, first = s["problems"]
    lines.append(f"- WARN/ERROR lines logged: {count}" + "".join(f"\n  - `{x[:200]}`" for x in first))
    return lines + [""]


def summary(sections):
    """One row per run: the highest clean rate and the figures there."""
    head = ["config", "run", "load1 before/after", "highest clean/s", "done/s", "p99 ms",
            "µs/reg per process", "total µs/reg", "split (S-CSCF 1 / 2)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in sections:
        b = kc.best(s["results"])
        l0, l1 = s["load"]
        split = s["split"]
        split = " / ".join(str(split.get(o, 0)) for o in (SCSCF1, SCSCF2)) if split else "-"
        if b:
            per = ", ".join(f"{kc.LABEL[n]} {kc.fmt(kc.us_per(b, n))}" for n in s["nodes"])
            total = kc.fmt(sum(kc.us_per(b, n) for n in s["nodes"]))
            cells = [kc.fmt(b["rate"]), kc.fmt(b["ok"] / b["wall"]), kc.fmt(b["pct"][99]), per, total]
        else:
            cells = ["none", "-", "-", "-", "-"]
        lines.append("| " + " | ".join([s["name"], str(s["run"]), f"{l0[0]:.2f} / {l1[0]:.2f}"]
                                       + cells + [split]) + " |")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rates", default="1000,2000,3000", help="registrations/s, comma-separated")
    ap.add_argument("--seconds", type=int, default=5, help="seconds per rate")
    ap.add_argument("--users", type=int, default=4000)
    ap.add_argument("--configs", default="sqlite,pg1,pg2", help=f"of {', '.join(CONFIGS)}, in this order")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each configuration, alternated")
    ap.add_argument("--out", default=None, help="also write the markdown report to this file")
    args = ap.parse_args()
    args.rates = [int(r) for r in args.rates.split(",")]
    configs = args.configs.split(",")
    if any(c not in CONFIGS for c in configs):
        sys.exit(f"--configs: of {', '.join(CONFIGS)}")
    if os.environ.get(NETNS_MARK) != "1":
        sys.exit(kc.reexec_in_netns(__file__, NETNS_MARK))
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=30)

    bin_dir = rl.release_dir()
    m = kc.machine()
    started = datetime.datetime.now(datetime.timezone.utc)
    work = tempfile.mkdtemp(prefix="pool-load-")
    pg = postmaster = None
    sections = []
    try:
        if any(CONFIGS[c][1] for c in configs):
            pg, postmaster = start_postgres(work)
            version = psql("SHOW server_version")
            print(f"PostgreSQL {version}: postmaster {postmaster}", flush=True)
        for run in range(1, args.repeat + 1):
            for name in configs:
                print(f"== {name}, run {run}", flush=True)
                sections.append(run_config(name, run, args, bin_dir, work, postmaster))
    finally:
        if pg:
            stop_postgres(pg)
        shutil.rmtree(work, ignore_errors=True)

    out = [f"# S-CSCF pool: 2 vs 1 ({started:%Y-%m-%d %H:%M} UTC)", "",
           f"- machine: {m['nproc']} x {m['model']}, {m['mem']}, kernel {m['kernel']}",
           f"- commit: {m['commit']}; binaries: {bin_dir}; {m['sipp']}",
           f"- {args.seconds} s per rate, {args.users} users (warm), UDP on loopback in a private network "
           "namespace, PostgreSQL private in it", "",
           "## Summary (each run at its highest clean rate)", ""]
    out += summary(sections) + ["", "## Runs", ""]
    for s in sections:
        out += run_section(s)
    kc.report(out, args.out)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Side by side with Kamailio (issue 12): the same SIPp scenarios at the same rates,
one system after the other in the same run, on loopback in a private network namespace.

1. Registration: REGISTER, 401, REGISTER (digest MD5), 200 over UDP
   (sipp-scenarios/register/digest.xml, warm users: every user registered once first)
   against Kamailio's registrar (bench/kamailio/registrar.cfg: auth + auth_db on SQLite,
   usrloc in memory), then against our chain as `imsctl up` starts it (P-CSCF, I-CSCF
   with UAR, S-CSCF with MAR, SAR and the binding committed, HSS), with the same users
   and passwords.
2. Calls: INVITE/180/200/ACK/BYE/200 through one stateful proxy, SIPp UAC and UAS
   (sipp-scenarios/proxy/), Kamailio tm + rr (bench/kamailio/proxy.cfg) against our
   `sip-proxy` (the ims-sip proxy engine alone); with `--chain-calls` also calls through
   our four CSCF hops (bench/session_load.py), each CSCF's CPU per traversal against
   Kamailio's per call.

Kamailio runs with one UDP worker per core, the tlsf memory manager (Debian's default,
qm, is its debugging allocator) and 2 GB of shared memory (options to change them); any
ERROR it logs during a rate is reported with the rate.

For each system and rate: offered rate, done rate, failed, p99 (SIPp -trace_rtt, 1 ms
resolution), CPU seconds of each server process (utime+stime from /proc; Kamailio: all
its processes summed) and CPU microseconds per registration or call; the highest clean
rate (no failure, every call done, at least 90 % of the offered rate per second); the
ratio ours/Kamailio of CPU per registration (whole chain and each node) and per call.
Output is markdown (stdout, and `--out FILE`), naming the machine and the commit.

    cargo build --release --bins -p pcscf -p icscf -p scscf -p hss -p cloud-auth -p imsctl -p ims-e2e
    python3 bench/kamailio_compare.py [--quick] [--rates 500,1000,2000] [--seconds 10] [--out FILE]

It installs what is missing from Debian's packages (kamailio, kamailio-sqlite-modules,
sip-tester; with sudo when not root) without starting the packaged kamailio service,
then re-executes itself under `unshare -n` (as root; `unshare -r -n` otherwise) and runs
Kamailio in the foreground itself. Every SIPp run is bounded in calls (-m) and time
(-timeout, and a subprocess timeout); each system stops at its first unclean rate
unless `--all-rates`.
"""
import argparse
import datetime
import hashlib
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import proxy_load as pl  # noqa: E402
import register_load as rl  # noqa: E402
import session_load as sl  # noqa: E402

ROOT = rl.ROOT
KAM_DIR = os.path.join(ROOT, "bench", "kamailio")
KAM_MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules"
KAM_SCHEMA = "/usr/share/kamailio/db_sqlite"
DOMAIN = "ims.example.net"
NETNS_MARK = "KAMAILIO_COMPARE_NETNS"
# Proxy traversals of one call through the chain (session_load.py): alice's P-CSCF and
# S-CSCF, the I-CSCF, bob's S-CSCF and P-CSCF.
TRAVERSALS = {"pcscf": 2, "icscf": 1, "scscf": 2}
LABEL = {"pcscf": "P-CSCF", "icscf": "I-CSCF", "scscf": "S-CSCF", "hss": "HSS",
         "kamailio": "Kamailio", "proxy": "sip-proxy", "sipp": "SIPp",
         "scscf2": "S-CSCF 2", "postgres": "PostgreSQL"}


# --- installation (outside the namespace: it needs the network) ---------------------

def missing_packages():
    need = []
    if not shutil.which("kamailio", path=os.environ.get("PATH", "") + ":/usr/sbin"):
        need.append("kamailio")
    if not os.path.exists(os.path.join(KAM_MODULES, "db_sqlite.so")):
        need.append("kamailio-sqlite-modules")
    if not shutil.which("sipp"):
        need.append("sip-tester")
    if not shutil.which("ip"):
        need.append("iproute2")
    if not shutil.which("unshare"):
        need.append("util-linux")
    return need


def ensure_installed():
    """Installs the missing Debian packages, idempotently, with a policy-rc.d that keeps
    the packaged kamailio service from starting; then disables that service."""
    need = missing_packages()
    if not need:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    policy = "/usr/sbin/policy-rc.d"
    made_policy = not os.path.exists(policy)
    if made_policy:
        subprocess.run(sudo + ["sh", "-c", f"printf '#!/bin/sh\\nexit 101\\n' > {policy} && chmod 755 {policy}"],
                       check=True, timeout=30)
    try:
        install = sudo + ["apt-get", "install", "-y", "--no-install-recommends", *need]
        print(f"installing {' '.join(need)} ...", flush=True)
        if subprocess.run(install, env=env, stdout=subprocess.DEVNULL, timeout=900).returncode != 0:
            subprocess.run(sudo + ["apt-get", "update"], env=env, stdout=subprocess.DEVNULL,
                           check=True, timeout=600)
            subprocess.run(install, env=env, stdout=subprocess.DEVNULL, check=True, timeout=900)
    finally:
        if made_policy:
            subprocess.run(sudo + ["rm", "-f", policy], timeout=30)
    if "kamailio" in need and shutil.which("systemctl"):
        # The benchmark runs its own kamailio; the packaged service stays off.
        subprocess.run(sudo + ["systemctl", "disable", "kamailio"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)
        if os.path.isdir("/run/systemd/system"):
            subprocess.run(sudo + ["systemctl", "stop", "kamailio"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=60)
    still = missing_packages()
    if still:
        sys.exit(f"still missing after apt-get install: {still}")


def reexec_in_netns(script=__file__, mark=NETNS_MARK):
    """Runs `script` (this one by default) again with this process's arguments in a
    private network namespace, with `mark` set to 1 in its environment; returns its exit
    status. The script brings lo up itself."""
    unshare = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-r", "-n"]
    env = {**os.environ, mark: "1"}
    return subprocess.run(unshare + [sys.executable, os.path.abspath(script), *sys.argv[1:]],
                          env=env).returncode


# --- Kamailio -------------------------------------------------------------------------

def kamailio_bin():
    return shutil.which("kamailio", path=os.environ.get("PATH", "") + ":/usr/sbin")


def process_tree(root):
    """`root` and all its descendants (by /proc/<pid>/stat's parent pid)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    tree, grew = {root}, True
    while grew:
        more = {p for p, pp in parents.items() if pp in tree} - tree
        tree |= more
        grew = bool(more)
    return sorted(tree)


def start_kamailio(cfg, port, work, args, defines=()):
    """Kamailio in the foreground (-DD -E) with `cfg` listening on UDP 127.0.0.1:`port`,
    with the UDP workers, memory manager and shared memory of `args`; returns (process,
    all its pids, its log file) once it listens and its children are up."""
    children, memory = args.kamailio_children, args.kamailio_memory
    # 4 MiB receive buffers at most, as our nodes ask for (sip transport limits).
    args = [kamailio_bin(), "-f", cfg, "-DD", "-E", "-n", str(children), "-m", str(args.kamailio_shm),
            "-M", "16", "-x", memory, "-X", memory, "-b", str(4 << 20), "-l", f"udp:127.0.0.1:{port}",
            "-Y", work]
    for d in defines:
        args += ["-A", d]
    log = open(os.path.join(work, f"kamailio-{os.path.basename(cfg)}.log"), "a")
    kam = subprocess.Popen(args, cwd=work, stdout=log, stderr=log, start_new_session=True)
    log.close()
    pl.wait_udp_bound(port)
    deadline = time.time() + 10
    pids = process_tree(kam.pid)
    while time.time() < deadline:  # main + UDP children + timers etc.: wait until stable
        time.sleep(0.3)
        now = process_tree(kam.pid)
        if now == pids and len(now) > children:
            break
        pids = now
    if kam.poll() is not None:
        sys.exit(f"kamailio exited ({kam.returncode}); see {log.name}")
    return kam, pids, log.name


def logged_errors(log, since):
    """(count, first) of the ERROR lines Kamailio wrote to `log` after byte `since`."""
    with open(log, errors="replace") as f:
        f.seek(since)
        errors = [line.strip() for line in f if "ERROR:" in line]
    return len(errors), errors[0] if errors else ""


def with_errors(log, run):
    """`run()`'s result with the errors Kamailio logged meanwhile ("errors")."""
    since = os.path.getsize(log)
    r = run()
    r["errors"] = logged_errors(log, since)
    return r


def write_subscriber_db(path, count):
    """Kamailio's subscriber table (its own SQLite schema) with the users of
    register_load.write_users: HA1 over the whole digest username, in `ha1b` (which a
    username with a domain is checked against) and `ha1`."""
    db = sqlite3.connect(path)
    for part in ("standard", "auth_db"):
        with open(os.path.join(KAM_SCHEMA, f"{part}-create.sql")) as f:
            db.executescript(f.read())
    rows = []
    for i in range(count):
        ha1 = hashlib.md5(f"load{i}@{DOMAIN}:{DOMAIN}:pw{i}".encode()).hexdigest()
        rows.append((f"load{i}", DOMAIN, ha1, ha1))
    db.executemany("INSERT INTO subscriber (username, domain, ha1, ha1b) VALUES (?, ?, ?, ?)", rows)
    db.commit()
    db.close()


# --- the runs -------------------------------------------------------------------------

def run_rates(rates, all_rates, one):
    """`one(rate)` for each rate, stopping after the first unclean one unless `all_rates`."""
    results = []
    for rate in rates:
        r = one(rate)
        results.append(r)
        errors = r.get("errors", (0, ""))[0]
        print(f"  {rate}/s: {r['ok']} ok, {r['failed']} failed, {r['ok'] / r['wall']:.0f}/s done, "
              f"load {r['load']:.2f}" + (f"; Kamailio logged {errors} errors" if errors else ""), flush=True)
        if not rl.clean(r) and not all_rates:
            break
    return results


def register_kamailio(args, work, users_csv):
    db = os.path.join(work, "subscribers.db")
    write_subscriber_db(db, args.users)
    kam, pids, log = start_kamailio(os.path.join(KAM_DIR, "registrar.cfg"), 5060, work, args,
                                    [f'DBURL="sqlite://{db}"'])
    try:
        print(f"Kamailio registrar: {len(pids)} processes", flush=True)
        rl.warm_up(args.users, users_csv, work, {"kamailio": pids})
        return run_rates(args.rates, args.all_rates, lambda rate: with_errors(
            log, lambda: rl.run_rate(rate, args.seconds, users_csv, work, {"kamailio": pids})))
    finally:
        pl.stop(kam)


def register_ours(args, work, imp, users_csv, bin_dir):
    imsctl = os.path.join(bin_dir, "imsctl")
    data = os.path.join(work, "data")
    env = {**os.environ, "IMS_DATA_DIR": data, "RUST_LOG": "warn"}
    env.pop("CARGO", None)
    up = rl.start_core(imsctl, data, env)
    try:
        rl.import_users(imsctl, env, imp)
        pids = rl.node_pids(bin_dir)
        rl.warm_up(args.users, users_csv, work, pids)
        return run_rates(args.rates, args.all_rates,
                         lambda rate: rl.run_rate(rate, args.seconds, users_csv, work, pids))
    finally:
        rl.stop_core(up)


def call_kamailio_rate(args, work, rate):
    port = pl.free_port()
    kam, pids, log = start_kamailio(os.path.join(KAM_DIR, "proxy.cfg"), port, work, args)
    try:
        return with_errors(log, lambda: pl.run_calls(rate, args.seconds, work, port, {"kamailio": pids}))
    finally:
        pl.stop(kam)


def call_ours_rate(args, work, rate, proxy_bin):
    port = pl.free_port()
    proxy = subprocess.Popen([proxy_bin, "--udp", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "warn"})
    try:
        pl.wait_udp_bound(port)
        return pl.run_calls(rate, args.seconds, work, port, {"proxy": proxy.pid})
    finally:
        pl.stop(proxy)


def calls_chain(args, work, bin_dir):
    """Calls alice -> bob through our whole chain (bench/session_load.py: four
    record-routing hops, one LIR), each rate after the transactions of the previous one
    ended (35 s; 5 s with --quick)."""
    imsctl = os.path.join(bin_dir, "imsctl")
    data = os.path.join(work, "chain-data")
    env = {**os.environ, "IMS_DATA_DIR": data, "RUST_LOG": "warn"}
    env.pop("CARGO", None)
    up = rl.start_core(imsctl, data, env)
    try:
        for user in ["alice", "bob"]:
            subprocess.run([imsctl, "subscriber", "add", "--impi", f"{user}@{DOMAIN}",
                            "--impu", f"sip:{user}@{DOMAIN}", "--password", "secret"],
                           cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=60)
        sl.register("bob", sl.BOB, work)
        sl.register("alice", sl.ALICE, work)
        pids = rl.node_pids(bin_dir)

        def one(rate):
            load = os.getloadavg()[0]
            r = sl.run_rate(rate, args.seconds, work, pids)
            cpu_s = r["cpu"]
            # Bob rings 200 ms, alice hangs up 100 ms after the ACK (the "tail" of rl.clean).
            return {**r, "load": load, "cpu_s": cpu_s, "tail": (sl.RING_MS + 100) / 1000,
                    "cpu": {n: 100.0 * c / r["wall"] for n, c in cpu_s.items()}}

        results = []
        for i, rate in enumerate(args.call_rates):
            if i:
                time.sleep(5 if args.quick else 35)
            results += run_rates([rate], args.all_rates, one)
            if not rl.clean(results[-1]) and not args.all_rates:
                break
        return results
    finally:
        rl.stop_core(up)


# --- report ---------------------------------------------------------------------------

def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=ROOT).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_gib = int(f.readline().split()[1]) / 1024 / 1024
    commit = sh(["git", "rev-parse", "--short", "HEAD"]) or "unknown"
    if sh(["git", "status", "--porcelain", "--untracked-files=no"]):
        commit += " (with local changes)"
    kam = sh([kamailio_bin() or "kamailio", "-v"]).splitlines()
    sipp = [line for line in sh(["sipp", "-v"]).splitlines() if "SIPp" in line]
    return {"nproc": os.cpu_count(), "model": model, "mem": f"{mem_gib:.0f} GiB",
            "kernel": platform.release(), "commit": commit,
            "kamailio": kam[0].replace("version: ", "") if kam else "?",
            "sipp": sipp[0].strip() if sipp else "?"}


def us_per(r, name):
    return 1e6 * r["cpu_s"][name] / r["ok"] if r["ok"] else float("nan")


def best(results):
    clean = [r for r in results if rl.clean(r)]
    return max(clean, key=lambda r: r["rate"]) if clean else None


def report(lines, path=None):
    """Prints the markdown `lines`, and writes them to `path` when given."""
    text = "\n".join(lines)
    print(text)
    if path:
        with open(path, "w") as f:
            f.write(text + "\n")


def fmt(x, digits=0):
    return "-" if x != x else f"{x:,.{digits}f}".replace(",", " ")


def rate_table(results, names, unit):
    head = (["offered/s", "done/s", "ok", "failed", "p99 ms"]
            + [f"{LABEL[n]} CPU s" for n in names]
            + [f"{LABEL[n]} µs/{unit}" for n in names]
            + ([f"total µs/{unit}"] if len(names) > 1 else [])
            + ["SIPp CPU %", "clean", "load1"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        cells = [fmt(r["rate"]), fmt(r["ok"] / r["wall"]), fmt(r["ok"]), fmt(r["failed"]),
                 fmt(r["pct"][99])]
        cells += [fmt(r["cpu_s"][n], 2) for n in names]
        cells += [fmt(us_per(r, n)) for n in names]
        if len(names) > 1:
            cells.append(fmt(sum(us_per(r, n) for n in names)))
        cells += [fmt(r["cpu"]["sipp"], 1) if "sipp" in r["cpu"] else "-",
                  "yes" if rl.clean(r) else "**no**", fmt(r["load"], 2)]
        lines.append("| " + " | ".join(cells) + " |")
    b = best(results)
    lines.append("")
    lines.append(f"Highest clean rate: **{fmt(b['rate']) if b else 'none'}/s**"
                 + (f" (CPU per {unit} there: "
                    + ", ".join(f"{LABEL[n]} {fmt(us_per(b, n))} µs" for n in names)
                    + (f", total {fmt(sum(us_per(b, n) for n in names))} µs" if len(names) > 1 else "")
                    + ")" if b else ""))
    for r in results:
        count, first = r.get("errors", (0, ""))
        if count:
            lines += ["", f"At {fmt(r['rate'])}/s Kamailio logged {count} errors, the first: `{first[:160]}`"]
    return lines


def ratio_table(kam, ours, names, unit):
    """Ours/Kamailio CPU per unit at each rate that both ran clean, and at the highest
    of them; at every common rate when none was clean for both."""
    by_rate = {r["rate"]: r for r in kam}
    pairs = [(by_rate[r["rate"]], r) for r in ours if r["rate"] in by_rate]
    common = [(k, o) for k, o in pairs if rl.clean(k) and rl.clean(o)]
    note = ""
    if not common:
        common, note = pairs, " (no rate was clean for both: every common rate shown)"
    cols = ([f"ours total / Kamailio"] if len(names) > 1 else []) + [f"{LABEL[n]} / Kamailio" for n in names]
    lines = [f"Ratio of CPU per {unit}, ours / Kamailio{note}:", "",
             "| rate/s | Kamailio µs | ours µs | " + " | ".join(cols) + " |", "|" + "---|" * (3 + len(cols))]
    for k, o in common:
        kus = us_per(k, "kamailio")
        total = sum(us_per(o, n) for n in names)
        cells = [fmt(k["rate"]), fmt(kus), fmt(total)]
        if len(names) > 1:
            cells.append(f"{total / kus:.2f}x")
        cells += [f"{us_per(o, n) / kus:.2f}x" for n in names]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def traversal_table(kam, chain):
    """Each CSCF's CPU per proxy traversal of a call against Kamailio's per call (one
    traversal of its tm + rr proxy), at the rates both ran clean."""
    by_rate = {r["rate"]: r for r in kam if rl.clean(r)}
    rows = [(by_rate[r["rate"]], r) for r in chain if rl.clean(r) and r["rate"] in by_rate]
    if not rows:
        return ["No call rate was clean both through Kamailio and through our chain."]
    cols = [f"{LABEL[n]} µs/traversal (x{t})" for n, t in TRAVERSALS.items()]
    lines = ["Each CSCF per proxy traversal of a call, against Kamailio tm + rr per call:", "",
             "| rate/s | Kamailio µs/call | " + " | ".join(cols) + " |", "|" + "---|" * (2 + len(cols))]
    for k, c in rows:
        kus = us_per(k, "kamailio")
        cells = [fmt(k["rate"]), fmt(kus)]
        cells += [f"{fmt(us_per(c, n) / t)} ({us_per(c, n) / t / kus:.2f}x)" for n, t in TRAVERSALS.items()]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rates", default="500,1000,2000,3500,5000,7000",
                    help="registrations/s and calls/s, comma-separated")
    ap.add_argument("--call-rates", default=None, help="calls/s (default: --rates)")
    ap.add_argument("--seconds", type=int, default=10, help="seconds per rate")
    ap.add_argument("--users", type=int, default=4000)
    ap.add_argument("--kamailio-children", type=int, default=os.cpu_count(),
                    help="Kamailio UDP worker processes (-n; default: one per core)")
    ap.add_argument("--kamailio-memory", choices=["tlsf", "fm", "qm"], default="tlsf",
                    help="Kamailio's memory manager (-x/-X). Debian's build defaults to qm, its debugging "
                         "allocator, whose first-fit search took 57 %% of a tm proxy's CPU in a profile "
                         "(~4x the CPU per call of tlsf or fm); tlsf is the fair bar")
    ap.add_argument("--kamailio-shm", type=int, default=2048,
                    help="Kamailio's shared memory in MB (-m). tm keeps ~13 KB per transaction in its "
                         "5 s wait state: 256 MB ran out at 2 000 calls/s")
    ap.add_argument("--only", choices=["register", "call"], default=None)
    ap.add_argument("--all-rates", action="store_true", help="do not stop at the first unclean rate")
    ap.add_argument("--chain-calls", action="store_true",
                    help="also calls through our whole chain (session_load.py's four hops; 35 s between "
                         "rates), each CSCF's CPU per traversal against Kamailio's per call")
    ap.add_argument("--quick", action="store_true", help="smoke run: rates 200,500, 3 s each, 400 users")
    ap.add_argument("--out", default=None, help="also write the markdown report to this file")
    args = ap.parse_args()
    if args.quick:
        args.rates, args.call_rates, args.seconds, args.users = "200,500", None, 3, 400
    args.call_rates = [int(r) for r in (args.call_rates or args.rates).split(",")]
    args.rates = [int(r) for r in args.rates.split(",")]

    if os.environ.get(NETNS_MARK) != "1":
        ensure_installed()
        sys.exit(reexec_in_netns())
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=30)

    bin_dir = rl.release_dir()
    proxy_bin = os.path.join(bin_dir, "sip-proxy")
    if args.only != "register" and not os.path.exists(proxy_bin):
        sys.exit(f"needs {proxy_bin} (cargo build --release -p ims-e2e --bin sip-proxy)")
    m = machine()
    started = datetime.datetime.now(datetime.timezone.utc)
    load0 = os.getloadavg()
    work = tempfile.mkdtemp(prefix="kamailio-compare-")
    reg_k = reg_o = call_k = call_o = chain = None
    try:
        imp, users_csv = rl.write_users(work, args.users)
        if args.only != "call":
            print("== registration: Kamailio registrar", flush=True)
            reg_k = register_kamailio(args, work, users_csv)
            print("== registration: our chain (imsctl up)", flush=True)
            reg_o = register_ours(args, work, imp, users_csv, bin_dir)
        if args.only != "register":
            print("== calls: Kamailio tm + rr", flush=True)
            call_k = run_rates(args.call_rates, args.all_rates, lambda r: call_kamailio_rate(args, work, r))
            print("== calls: our sip-proxy", flush=True)
            call_o = run_rates(args.call_rates, args.all_rates, lambda r: call_ours_rate(args, work, r, proxy_bin))
            if args.chain_calls:
                print("== calls: our chain (P-CSCF, S-CSCF, I-CSCF, S-CSCF, P-CSCF)", flush=True)
                chain = calls_chain(args, work, bin_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load1 = os.getloadavg()

    out = [f"# Kamailio side by side ({started:%Y-%m-%d %H:%M} UTC)", "",
           f"- machine: {m['nproc']} x {m['model']}, {m['mem']}, kernel {m['kernel']}",
           f"- commit: {m['commit']}; binaries: {bin_dir}",
           f"- {m['kamailio'].strip()}, {args.kamailio_children} UDP children, memory manager "
           f"{args.kamailio_memory} (-x/-X), {args.kamailio_shm} MB shared memory; {m['sipp']}",
           f"- {args.seconds} s per rate, {args.users} users (warm), UDP on loopback in a private network namespace",
           f"- load average at the start {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}, "
           f"at the end {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}"
           + (" (other work on the machine: absolute figures are noisy)" if max(load0[0], load1[0]) > 1 else ""),
           ""]
    if reg_k is not None:
        nodes = rl.NODES
        out += ["## Registration (REGISTER, 401, REGISTER digest MD5, 200)", "",
                "Kamailio registrar (auth_db on SQLite, usrloc in memory):", ""]
        out += rate_table(reg_k, ["kamailio"], "reg") + [""]
        out += ["Our chain (`imsctl up`: P-CSCF, I-CSCF, S-CSCF, HSS):", ""]
        out += rate_table(reg_o, nodes, "reg") + [""]
        out += ratio_table(reg_k, reg_o, nodes, "registration") + [""]
    if call_k is not None:
        out += ["## Calls through one stateful proxy (INVITE, 180, 200, ACK, BYE, 200)", "",
                "Kamailio tm + rr:", ""]
        out += rate_table(call_k, ["kamailio"], "call") + [""]
        out += ["Our `sip-proxy`:", ""]
        out += rate_table(call_o, ["proxy"], "call") + [""]
        out += ratio_table(call_k, call_o, ["proxy"], "call") + [""]
    if chain is not None:
        out += ["Our chain (alice -> P-CSCF -> S-CSCF -> I-CSCF (LIR) -> S-CSCF -> P-CSCF -> bob; bob "
                "rings 200 ms; p99 is setup time minus the ringing):", ""]
        out += rate_table(chain, rl.NODES, "call") + [""]
        out += traversal_table(call_k, chain) + [""]
    print()
    report(out, args.out)


if __name__ == "__main__":
    main()

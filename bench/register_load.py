#!/usr/bin/env python3
"""Load benchmark of IMS registration through the whole chain started by `imsctl up`:
SIPp UEs -> P-CSCF -> I-CSCF (UAR) -> S-CSCF (MAR, 401, SAR) -> 200, digest MD5, over
UDP, at rising rates. One "call" is REGISTER, 401, REGISTER, 200 (three SIP hops and
four Diameter exchanges). Every step is bounded in count and time; loopback only.

For each rate it reports successful/failed registrations, the REGISTER->200 time
percentiles of whole cycles (SIPp -trace_rtt, 1 ms resolution) and each node's CPU
(utime+stime from /proc, % of one core), SIPp's too, and the load average; then the
S-CSCF's store changes and SQL transactions over the rate (group commit, from its
/health), and per registration the UARs the I-CSCF sent (its /metrics) and each
process's CPU in µs. The result
is the highest rate with zero failed registrations while the chain keeps up (at least
90 % of the offered rate completed per second).

    cargo build --release --workspace --bins
    python3 bench/register_load.py [--rates 100,200,400] [--seconds 10] [--users 2000] [--warm] [--perf DIR] [--syscalls]

With `--syscalls`, each node's system calls over each rate are counted with `perf stat`
of the kernel's syscall tracepoints (no ptrace: the nodes run at full speed) and printed
per registration, by family (recv, send, epoll, futex, other).

With `--perf DIR`, `perf record -g` samples each node during each rate (99 Hz, or
`--perf-hz`; call graphs) into DIR/<rate>-<node>.data, and the shares (kernel, allocation and copies, tokio,
the rest) and top symbols of each are printed after the rate's row (`session_load.py`'s
summary).

With `--rss SECONDS`, each node's resident memory (VmRSS) is sampled that often during
each rate and printed as a series per node: a soak is `--warm --rates 800 --seconds 300
--rss 30` (issue 12's memory check: flat from the first minute, under ~150 MB per proxy).

Each UE sends from an address of its own (127.1.x.y, SIPp `-t ui`), so each is a flow
of its own at the P-CSCF, as phones are: its refreshes are refreshes of its own
registration, and the reg event NOTIFY of each refresh reaches the P-CSCF's subscription
for it. `--shared-flow` sends all UEs from one socket instead (one flow at the P-CSCF for
every UE, as the figures before 2026-12-07's session 11 were taken).

Run it in a network namespace of its own (the dev ports are fixed):
    unshare -n bash -c 'ip link set lo up && python3 bench/register_load.py --warm'
"""
import argparse
import csv
import glob
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NODES = ["pcscf", "icscf", "scscf", "hss"]


def cpu_seconds(pid):
    """utime+stime of a process, or the sum over a list of processes (a multi-process
    server such as Kamailio), in seconds."""
    if isinstance(pid, (list, tuple)):
        return sum(cpu_seconds(p) for p in pid)
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def node_pids(bin_dir, nodes=None):
    """The pid of each node binary started from bin_dir (by /proc/<pid>/exe)."""
    nodes = nodes or NODES
    pids = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            exe = os.readlink(f"/proc/{entry}/exe")
        except OSError:
            continue
        for node in nodes:
            if exe == os.path.join(bin_dir, node):
                pids[node] = int(entry)
    missing = [n for n in nodes if n not in pids]
    if missing:
        sys.exit(f"node processes not found: {missing}")
    return pids


def rss_mib(pid):
    """Resident memory of a process (VmRSS), in MiB; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


class RssSampler:
    """Samples each node's resident memory every `every` seconds on a thread of its own,
    until stopped (bounded by `limit` samples)."""

    def __init__(self, pids, every=10.0, limit=1000):
        self.pids, self.every, self.limit = pids, every, limit
        self.samples = []
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        t0 = time.time()
        while len(self.samples) < self.limit and not self.stop_event.wait(self.every):
            self.samples.append((time.time() - t0, {n: rss_mib(p) for n, p in self.pids.items()}))

    def stop(self):
        """Stops sampling and returns the samples: (seconds since the start, {node: MiB})."""
        self.stop_event.set()
        self.thread.join(timeout=self.every + 5)
        return self.samples


def print_rss(samples, nodes):
    """Each node's RSS over the run, one line per node (MiB at each sample)."""
    if not samples:
        return
    print("      RSS MiB every " + f"{samples[1][0] - samples[0][0]:.0f} s" if len(samples) > 1 else "      RSS MiB", flush=True)
    for n in nodes:
        print(f"        {n:<6} " + " ".join(str(s[n]) for _, s in samples), flush=True)


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def wait_until_up(up, seconds):
    """Reads `imsctl up`'s output until it says the core is up, for at most `seconds`."""
    ready = threading.Event()

    def read():
        for line in up.stdout:
            if "IMS core is up" in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(seconds):
        sys.exit("the core did not come up")


def percentiles(values, ps):
    if not values:
        return {p: float("nan") for p in ps}
    values = sorted(values)
    return {p: values[min(len(values) - 1, int(len(values) * p / 100))] for p in ps}


def sipp_results(work, offset_ms=0.0):
    """Successful and failed calls of the SIPp run in `work` (its `-stf stat.csv`) and
    its round-trip times in ms (`-trace_rtt`) minus `offset_ms`; both files are removed."""
    with open(os.path.join(work, "stat.csv")) as f:
        rows = list(csv.reader(f, delimiter=";"))
    head, last = rows[0], rows[-1]
    ok = int(last[head.index("SuccessfulCall(C)")])
    failed = int(last[head.index("FailedCall(C)")])
    rtts = []
    for path in glob.glob(os.path.join(work, "*_rtt.csv")):
        with open(path) as f:
            for row in csv.reader(f, delimiter=";"):
                try:
                    rtts.append(float(row[1]) - offset_ms)
                except (ValueError, IndexError):
                    pass
        os.remove(path)
    os.remove(os.path.join(work, "stat.csv"))
    return ok, failed, rtts


# System calls counted by `--syscalls` (kernel tracepoints, no ptrace), by family.
SYSCALL_FAMILIES = {
    "recv": ["recvfrom", "recvmmsg", "recvmsg"],
    "send": ["sendto", "sendmmsg", "sendmsg"],
    "epoll": ["epoll_wait", "epoll_pwait", "epoll_pwait2"],
    "futex": ["futex"],
}


def start_syscall_count(pids):
    """`perf stat` of the system calls of each of `pids` (name -> pid) until stopped."""
    events = ["raw_syscalls:sys_enter"] + [f"syscalls:sys_enter_{c}"
                                           for calls in SYSCALL_FAMILIES.values() for c in calls]
    counters = {}
    for n, p in pids.items():
        ids = ",".join(str(i) for i in (p if isinstance(p, list) else [p]))
        out = tempfile.NamedTemporaryFile(mode="w+", prefix=f"syscalls-{n}-", delete=False)
        counters[n] = (subprocess.Popen(["perf", "stat", "-x", ",", "-e", ",".join(events),
                                         "-p", ids], stdout=subprocess.DEVNULL, stderr=out), out)
    return counters


def stop_syscall_count(counters):
    """Stops the counts of `start_syscall_count`: name -> {"total", family..., "other"}."""
    counts = {}
    for n, (proc, out) in counters.items():
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        out.seek(0)
        by_event = {}
        for line in out.read().splitlines():
            fields = line.split(",")
            if len(fields) > 2 and fields[0].strip().isdigit():
                by_event[fields[2].split(":")[-1].replace("sys_enter_", "")] = int(fields[0])
        out.close()
        os.unlink(out.name)
        c = {"total": by_event.get("sys_enter", 0)}
        for family, calls in SYSCALL_FAMILIES.items():
            c[family] = sum(by_event.get(call, 0) for call in calls)
            for call in calls:
                c[call] = by_event.get(call, 0)
        c["other"] = c["total"] - sum(c[f] for f in SYSCALL_FAMILIES)
        counts[n] = c
    return counts


def syscalls_per_registration(r):
    """Lines of each node's system calls per successful registration (`--syscalls`)."""
    ok = max(r["ok"], 1)
    lines = []
    for n, c in r["syscalls"].items():
        detail = ", ".join(f"{call} {c[call] / ok:.2f}" for calls in SYSCALL_FAMILIES.values()
                           for call in calls if c[call])
        lines.append(f"      syscalls per registration, {n}: {c['total'] / ok:.1f} "
                     f"(recv {c['recv'] / ok:.2f}, send {c['send'] / ok:.2f}, epoll {c['epoll'] / ok:.2f}, "
                     f"futex {c['futex'] / ok:.2f}, other {c['other'] / ok:.2f}; {detail})")
    return "\n".join(lines)


UE_PORT = 25062


def flows(shared):
    """SIPp's transport options: one socket for every UE (`shared`) or one per UE address."""
    if shared:
        return ["-t", "u1"]
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return ["-t", "ui", "-ip_field", "3", "-max_socket", str(max(limit - 64, 64))]


def scenario_file(scenario, work, shared):
    """The scenario to run: as it is with one shared socket; with one address per UE, a
    copy in `work` whose Via and Contact name the UE's own address (field3) and port.
    SIPp's `[local_ip]` stays the `-i` address with `-t ui`, and its `[local_port]` is 0
    in the first message of each new socket, which would make every UE's contact change
    between its first and second registration."""
    path = os.path.join(ROOT, scenario)
    if shared:
        return path
    with open(path) as f:
        text = f.read()
    text = text.replace("[local_ip]:[local_port]", f"[field3]:{UE_PORT}")
    own = os.path.join(work, "per-ue-" + os.path.basename(scenario))
    with open(own, "w") as f:
        f.write(text)
    return own


def run_rate(rate, seconds, users_csv, work, pids, scenario="sipp-scenarios/register/digest.xml",
             target="127.0.0.1:5060", perf_dir=None, syscalls=False, rss_every=None, perf_hz=99,
             perf_graph="fp", shared_flow=False):
    """One SIPp run of `scenario` against `target` at `rate` calls/s for `seconds`; CPU of
    each of `pids` (name -> pid or list of pids) over the run: "cpu" in % of one core,
    "cpu_s" in seconds. With `perf_dir`, each node is `perf record`ed into it; with
    `syscalls`, its system calls over the run are counted ("syscalls"); with `rss_every`
    (seconds), each node's resident memory is sampled that often ("rss").

    Each UE sends from its own address (the injection file's field3, SIPp `-t ui`), so
    each is its own flow at the P-CSCF, as phones are; `shared_flow` sends every UE's
    messages from one socket (`-t u1`: one flow for all, the figures before 2026-12-07's
    session 11)."""
    calls = rate * seconds
    load = os.getloadavg()[0]
    cpu0 = {n: cpu_seconds(p) for n, p in pids.items()}
    perfs = []
    if perf_dir:
        for n, p in pids.items():
            out = os.path.join(perf_dir, f"{rate}-{n}.data")
            ids = ",".join(str(i) for i in (p if isinstance(p, list) else [p]))
            perfs.append(subprocess.Popen(["perf", "record", "-F", str(perf_hz), "--call-graph", perf_graph, "-p", ids, "-o", out,
                                           "--", "sleep", str(seconds)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    counters = start_syscall_count(pids) if syscalls else None
    sampler = RssSampler(pids, rss_every) if rss_every else None
    sipp0 = children_cpu()
    t0 = time.time()
    sipp = subprocess.run(
        ["sipp", target, "-sf", scenario_file(scenario, work, shared_flow),
         "-inf", users_csv, "-i", "127.0.0.1", "-p", str(UE_PORT), *flows(shared_flow), "-nd",
         "-m", str(calls), "-r", str(rate), "-l", str(rate * 4),
         "-timeout", f"{seconds * 3 + 20}s", "-timeout_error", "-buff_size", "4194304",
         "-trace_stat", "-fd", "1", "-stf", "stat.csv", "-trace_rtt", "-rtt_freq", "1"],
        cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=seconds * 3 + 60)
    wall = time.time() - t0
    cpu_s = {n: cpu_seconds(p) - cpu0[n] for n, p in pids.items()}
    cpu_s["sipp"] = children_cpu() - sipp0
    counts = stop_syscall_count(counters) if counters else None
    rss = sampler.stop() if sampler else None
    cpu = {n: 100.0 * c / wall for n, c in cpu_s.items()}
    for p in perfs:
        try:
            p.wait(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            p.kill()
    ok, failed, rtts = sipp_results(work)
    return {"rate": rate, "calls": calls, "ok": ok, "failed": failed, "exit": sipp.returncode,
            "pct": percentiles(rtts, [50, 95, 99]), "cpu": cpu, "cpu_s": cpu_s, "wall": wall,
            "load": load, "syscalls": counts, "rss": rss}


def scscf_store_counters(port=9103):
    """(changes, transactions) of the S-CSCF's store writer from its /health (on HTTP
    `port`, the dev one by default; refreshed every second), or None when it does not
    show them."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
            health = json.load(r)
        return health["store_changes"], health["store_transactions"]
    except (OSError, ValueError, KeyError):
        return None


def icscf_uars():
    """UARs the I-CSCF sent so far (its /metrics on the dev port), or None."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:9102/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith('budget_events_total{event="icscf_uar_sent"}'):
            return float(line.split()[-1])
    return 0.0


def per_registration(r, uars):
    """UARs and each process's CPU per successful registration (µs)."""
    ok = max(r["ok"], 1)
    cpu = "  ".join(f"{n} {r['cpu'][n] * r['wall'] / 100 / ok * 1e6:.0f}" for n in r["cpu"])
    u = f"{uars / ok:.2f}" if uars is not None else "?"
    return f"      per registration: {u} UAR; CPU µs: {cpu}"


def release_dir():
    """Where the release binaries are; exits when they or sipp are missing."""
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    bin_dir = os.path.join(target, "release")
    if not all(os.path.exists(os.path.join(bin_dir, n)) for n in NODES + ["imsctl"]) or not shutil.which("sipp"):
        sys.exit(f"needs release binaries in {bin_dir} (cargo build --release --workspace --bins) and sipp")
    return bin_dir


def print_header(nodes, extra=None):
    cols = nodes + ["sipp"]
    print((f"{extra:<14} " if extra else "")
          + f"{'rate':>5} {'regs':>6} {'ok':>6} {'failed':>6} {'done/s':>6} {'p50ms':>6} {'p95ms':>6} "
          f"{'p99ms':>6}  " + " ".join(f"{n + ' CPU%':>10}" for n in cols) + f" {'load1':>6}")


def print_row(r, nodes):
    cols = nodes + ["sipp"]
    p = r["pct"]
    print((f"{r['mode']:<14} " if "mode" in r else "")
          + f"{r['rate']:>5} {r['calls']:>6} {r['ok']:>6} {r['failed']:>6} {r['ok'] / r['wall']:>6.0f} "
          f"{p[50]:>6.0f} {p[95]:>6.0f} {p[99]:>6.0f}  "
          + " ".join(f"{r['cpu'].get(n, 0):>10.1f}" for n in cols) + f" {r['load']:>6.2f}", flush=True)


def clean(r):
    """Every registration succeeded and the chain kept up with the offered rate (an
    overloaded chain finishes every call too, seconds late). A result's "tail" (seconds,
    0 when absent) is the scenario's own length after the last call starts (ringing,
    pauses), which a keeping-up chain takes too."""
    wall = max(r["wall"] - r.get("tail", 0.0), 1e-3)
    return r["failed"] == 0 and r["ok"] == r["calls"] and r["ok"] / wall >= 0.9 * r["rate"]


def start_core(imsctl, data, env, config_dir=None):
    """Starts `imsctl up --no-cloud --data-dir data` (with the configs of `config_dir`, the
    dev ones when None; the load runs without Bearer tokens, and a config with cloud
    authorization says `mode = "on"` itself) in its own process group and waits (at most
    60 s) until it reports the core up; returns the process."""
    configs = ["--config-dir", config_dir] if config_dir else []
    up = subprocess.Popen([imsctl, *configs, "up", "--no-cloud", "--data-dir", data],
                          cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                          start_new_session=True)
    try:
        wait_until_up(up, 60)
    except SystemExit:
        stop_core(up)
        raise
    return up


def stop_core(up):
    """Ctrl-C to `imsctl up`, SIGKILL to its group after 30 s."""
    os.killpg(up.pid, signal.SIGINT)
    try:
        up.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(up.pid, signal.SIGKILL)


def ue_address(i):
    """The loopback address UE `i` sends from with per-UE flows: 127.1.x.y, one per UE
    (up to 64 000 UEs)."""
    return f"127.1.{i // 250}.{i % 250 + 1}"


def write_users(work, count):
    """Writes `count` digest users load<i>@ims.example.net (password pw<i>) as an
    `imsctl subscriber import` file and the matching SIPp injection file into `work`
    (field3: the UE's own address, [`ue_address`]); returns (import file, SIPp file)."""
    if count > 64000:
        sys.exit("at most 64 000 users (one loopback address each)")
    imp = os.path.join(work, "import.csv")
    users_csv = os.path.join(work, "users.csv")
    with open(imp, "w") as f, open(users_csv, "w") as g:
        f.write("impi,impus,password\n")
        g.write("SEQUENTIAL\n")
        for i in range(count):
            f.write(f"load{i}@ims.example.net,sip:load{i}@ims.example.net,pw{i}\n")
            g.write(f"load{i};ims.example.net;[authentication username=load{i}@ims.example.net password=pw{i}];"
                    f"{ue_address(i)}\n")
    return imp, users_csv


def import_users(imsctl, env, imp):
    """Imports the users of `imp` into the running HSS (at most 10 minutes)."""
    subprocess.run([imsctl, "subscriber", "import", imp], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)


def warm_up(users, users_csv, work, pids, target="127.0.0.1:5060", shared_flow=False):
    """Registers every user once at 400/s (not reported), so that the rates measure
    re-registrations of known users."""
    w = run_rate(400, -(-users // 400), users_csv, work, pids, target=target,
                 shared_flow=shared_flow)
    print(f"warm-up: {w['ok']} registered, {w['failed']} failed", flush=True)
    return w


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="100,200,400,600,800,1000")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--config-dir", default=None,
                    help="node configs for `imsctl up --config-dir` (default: config/dev)")
    ap.add_argument("--perf", metavar="DIR", help="perf record each node into DIR")
    ap.add_argument("--perf-hz", type=int, default=99,
                    help="sampling frequency of --perf (default 99 Hz; more samples per node at 499)")
    ap.add_argument("--perf-callgraph", default="fp",
                    help="perf's --call-graph mode for --perf (default fp; `dwarf` gives callers "
                    "in release builds without frame pointers, at the cost of large files)")
    ap.add_argument("--syscalls", action="store_true",
                    help="count each node's system calls over each rate (perf stat of the "
                         "syscall tracepoints) and print them per registration")
    ap.add_argument("--rss", type=float, metavar="SECONDS",
                    help="sample each node's resident memory (VmRSS) every SECONDS during each "
                         "rate and print the series (a soak: --rates 800 --seconds 300 --rss 30)")
    ap.add_argument("--shared-flow", action="store_true",
                    help="send every UE's messages from one SIPp socket (one flow at the P-CSCF "
                    "for all UEs, as before session 11) instead of one address per UE")
    ap.add_argument("--warm", action="store_true",
                    help="register every user once (at 400/s, not reported) before the rates, so that "
                         "they measure re-registrations of known users rather than first registrations")
    args = ap.parse_args()
    if args.perf:
        os.makedirs(args.perf, exist_ok=True)
    bin_dir = release_dir()
    imsctl = os.path.join(bin_dir, "imsctl")
    work = tempfile.mkdtemp(prefix="register-load-")
    data = os.path.join(work, "data")
    env = {**os.environ, "IMS_DATA_DIR": data, "RUST_LOG": "warn"}
    env.pop("CARGO", None)
    up = start_core(imsctl, data, env, args.config_dir)
    try:
        # Users: imported into the HSS, and the matching SIPp injection file.
        imp, users_csv = write_users(work, args.users)
        import_users(imsctl, env, imp)
        pids = node_pids(bin_dir)
        if args.warm:
            warm_up(args.users, users_csv, work, pids, shared_flow=args.shared_flow)
        best = None
        print(f"machine: {os.cpu_count()} CPUs; load average before the run: "
              + " ".join(f"{x:.2f}" for x in os.getloadavg()))
        print_header(NODES)
        for rate in [int(r) for r in args.rates.split(",")]:
            time.sleep(1.5)  # /health's counters are refreshed every second
            before = scscf_store_counters()
            uars0 = icscf_uars()
            r = run_rate(rate, args.seconds, users_csv, work, pids, perf_dir=args.perf,
                         syscalls=args.syscalls, rss_every=args.rss, perf_hz=args.perf_hz,
                         perf_graph=args.perf_callgraph, shared_flow=args.shared_flow)
            uars1 = icscf_uars()
            print_row(r, NODES)
            sent = uars1 - uars0 if uars0 is not None and uars1 is not None else None
            print(per_registration(r, sent), flush=True)
            if args.syscalls:
                print(syscalls_per_registration(r), flush=True)
            if args.rss:
                print_rss(r["rss"], NODES)
            if args.perf:
                from session_load import print_perf
                print_perf(args.perf, rate, pids)
            time.sleep(1.5)
            after = scscf_store_counters()
            if before and after and after[1] > before[1]:
                changes, transactions = after[0] - before[0], after[1] - before[1]
                print(f"      S-CSCF store: {changes} changes in {transactions} transactions "
                      f"({changes / transactions:.1f} per transaction)", flush=True)
            if clean(r):
                best = r
            else:
                break
        print(f"highest rate with zero failed registrations: {best['rate'] if best else 'none'}/s")
    finally:
        stop_core(up)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Load benchmark of sessions through the whole chain started by `imsctl up`: a SIPp UE
(alice) calls a SIPp UE (bob), INVITE/180/200/ACK/BYE/200 over UDP, through P-CSCF,
S-CSCF (originating), I-CSCF (LIR to the HSS), S-CSCF (terminating), P-CSCF: four
record-routing proxy hops and one Diameter exchange per call. Bob rings 200 ms before
answering (sipp-scenarios/session/uas_answer.xml); alice hangs up 100 ms after the ACK.
Every step is bounded in count and time; loopback only.

For each rate it reports successful/failed calls, the call setup time (INVITE to 200,
SIPp -trace_rtt, minus bob's 200 ms of ringing), each node's CPU (utime+stime from
/proc, % of one core and ms per call), and each CSCF's resident memory after the rate
(the proxies keep no dialog state: what they hold is transactions in their wait states,
Timers J/K/L, 32 s over UDP). The result is the highest rate with zero failed calls.

    cargo build --release --workspace --bins
    python3 bench/session_load.py [--rates 100,200,400] [--seconds 15] [--perf DIR]

With `--perf DIR`, `perf record -g` samples each node during each rate (99 Hz, call
graphs) into `DIR/<rate>-<node>.data`, and the script prints each node's share of
samples in the kernel, in its SIP/Diameter code and in the allocator, and its top
symbols (`perf report --no-children`), to show where the time goes.
"""
import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from register_load import (NODES, ROOT, cpu_seconds, node_pids, percentiles, sipp_results,  # noqa: E402
                           start_core, stop_core)

SCEN = os.path.join(ROOT, "sipp-scenarios", "session")
ALICE, BOB = "26060", "26070"
RING_MS = 200


def sipp(args, work, timeout):
    return subprocess.run(["sipp", *args, "-i", "127.0.0.1", "-t", "u1", "-nd", "-buff_size", "4194304"],
                          cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def register(user, port, work):
    r = sipp(["127.0.0.1:5060", "-sf", os.path.join(SCEN, "register.xml"),
              "-inf", os.path.join(SCEN, f"{user}.csv"), "-p", port, "-m", "1", "-timeout", "20s",
              "-timeout_error"], work, 40)
    if r.returncode != 0:
        sys.exit(f"{user} did not register")


def run_rate(rate, seconds, work, pids, perf_dir=None):
    calls = rate * seconds
    budget = seconds * 3 + 30
    bob = subprocess.Popen(["sipp", "-sf", os.path.join(SCEN, "uas_answer.xml"), "-i", "127.0.0.1",
                            "-t", "u1", "-nd", "-p", BOB, "-s", "bob", "-m", str(calls),
                            "-timeout", f"{budget}s", "-buff_size", "4194304"],
                           cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    cpu0 = {n: cpu_seconds(p) for n, p in pids.items()}
    perfs = []
    if perf_dir:
        for n, p in pids.items():
            out = os.path.join(perf_dir, f"{rate}-{n}.data")
            perfs.append(subprocess.Popen(["perf", "record", "-F", "99", "-g", "-p", str(p), "-o", out,
                                           "--", "sleep", str(seconds)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    t0 = time.time()
    alice = sipp(["127.0.0.1:5060", "-sf", os.path.join(SCEN, "uac_call.xml"),
                  "-inf", os.path.join(SCEN, "alice.csv"), "-p", ALICE, "-m", str(calls),
                  "-r", str(rate), "-l", str(rate * 4), "-timeout", f"{budget}s", "-timeout_error",
                  "-trace_stat", "-fd", "1", "-stf", "stat.csv", "-trace_rtt", "-rtt_freq", "1"],
                 work, budget + 30)
    wall = time.time() - t0
    cpu = {n: cpu_seconds(p) - cpu0[n] for n, p in pids.items()}
    for p in perfs:
        try:
            p.wait(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            p.kill()
    rss = {n: rss_kib(p) // 1024 for n, p in pids.items() if n != "hss"}
    try:
        bob.wait(timeout=budget + 30)
    except subprocess.TimeoutExpired:
        bob.kill()
    ok, failed, rtts = sipp_results(work, RING_MS)
    return {"rate": rate, "calls": calls, "ok": ok, "failed": failed, "exit": alice.returncode,
            "pct": percentiles(rtts, [50, 95, 99]), "cpu": cpu, "wall": wall, "rss": rss}


def print_perf(perf_dir, rate, pids):
    """Prints the perf summary of each node's `perf record` at `rate` (files in `perf_dir`)."""
    for n in pids:
        groups, rows = perf_summary(os.path.join(perf_dir, f"{rate}-{n}.data"))
        print(f"  {n}: " + ", ".join(f"{g} {v:.0f}%" for g, v in groups.most_common()))
        for pct, dso, sym in rows:
            print(f"    {pct:5.1f}%  {dso:<20} {sym[:90]}")


def perf_summary(path, top=12):
    """Shares of a node's samples (the kernel's scheduler switching threads in, the rest
    of the kernel, allocator, tokio, the rest) and its top symbols, from `perf report`."""
    rep = subprocess.run(["perf", "report", "-i", path, "--no-children", "--sort", "dso,sym",
                          "--stdio", "-g", "none", "--percent-limit", "0.3"],
                         capture_output=True, text=True, timeout=300).stdout
    groups = collections.Counter()
    rows = []
    for line in rep.splitlines():
        parts = line.split()
        if len(parts) < 4 or not parts[0].endswith("%"):
            continue
        pct = float(parts[0].rstrip("%"))
        dso, sym = parts[1], " ".join(parts[3:])
        if "kernel" in dso and any(k in sym for k in ("finish_task_switch", "__schedule", "try_to_wake_up")):
            group = "scheduler"
        elif "kernel" in dso:
            group = "kernel"
        elif any(k in sym for k in ("malloc", "free", "realloc", "memmove", "memcpy", "cfree")):
            group = "alloc/copy"
        elif "tokio" in sym or "mio" in sym or "parking_lot" in sym:
            group = "tokio"
        else:
            group = "other"
        groups[group] += pct
        rows.append((pct, dso, sym))
    return groups, rows[:top]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="100,200,400,600,800")
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--perf", metavar="DIR", help="perf record each node into DIR")
    args = ap.parse_args()
    if args.perf:
        os.makedirs(args.perf, exist_ok=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    bin_dir = os.path.join(target, "release")
    imsctl = os.path.join(bin_dir, "imsctl")
    if not all(os.path.exists(os.path.join(bin_dir, n)) for n in NODES + ["imsctl"]) or not shutil.which("sipp"):
        sys.exit(f"needs release binaries in {bin_dir} (cargo build --release --workspace --bins) and sipp")
    work = tempfile.mkdtemp(prefix="session-load-")
    data = os.path.join(work, "data")
    env = {**os.environ, "IMS_DATA_DIR": data, "RUST_LOG": "warn"}
    env.pop("CARGO", None)
    up = start_core(imsctl, data, env)
    try:
        for user in ["alice", "bob"]:
            subprocess.run([imsctl, "subscriber", "add", "--impi", f"{user}@ims.example.net",
                            "--impu", f"sip:{user}@ims.example.net", "--password", "secret"],
                           cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=60)
        register("bob", BOB, work)
        register("alice", ALICE, work)
        pids = node_pids(bin_dir)
        best = None
        print(f"{'rate':>5} {'calls':>6} {'ok':>6} {'failed':>6} {'p50ms':>6} {'p95ms':>6} {'p99ms':>6}  "
              + " ".join(f"{n + ' CPU% (ms/call)':>22}" for n in NODES) + "  RSS MiB P/I/S")
        for rate in [int(r) for r in args.rates.split(",")]:
            r = run_rate(rate, args.seconds, work, pids, args.perf)
            p = r["pct"]
            cells = " ".join(f"{100.0 * r['cpu'].get(n, 0) / r['wall']:>13.1f} ({1000.0 * r['cpu'].get(n, 0) / max(r['ok'], 1):>5.2f})"
                             for n in NODES)
            rss = "/".join(str(r["rss"].get(n, 0)) for n in ["pcscf", "icscf", "scscf"])
            print(f"{r['rate']:>5} {r['calls']:>6} {r['ok']:>6} {r['failed']:>6} {p[50]:>6.0f} {p[95]:>6.0f} "
                  f"{p[99]:>6.0f}  {cells}  {rss}", flush=True)
            if args.perf:
                print_perf(args.perf, rate, pids)
            if r["failed"] == 0 and r["ok"] == r["calls"]:
                best = r
            else:
                break
            # Let the transactions of this rate end (Timers J/L: 32 s) before the next.
            time.sleep(35)
        print(f"highest rate with zero failed calls: {best['rate'] if best else 'none'}/s")
    finally:
        stop_core(up)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

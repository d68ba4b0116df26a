#!/usr/bin/env python3
"""Load benchmark of the stateful proxy engine (the `sip-proxy` binary built only from
ims-sip): SIPp UAC -> sip-proxy -> SIPp UAS, INVITE/180/200/ACK/BYE/200 over UDP, at
rising call rates. Every step is bounded in calls and time and uses loopback only.

For each rate it reports successful/failed calls, response-time percentiles (INVITE to
200, from SIPp's -trace_rtt) and the proxy's CPU use (utime+stime from /proc). The
result is the highest rate with zero failed calls.

    cargo build --release -p ims-e2e --bin sip-proxy
    python3 bench/proxy_load.py [--rates 200,500,1000] [--seconds 10]

`--workers 1,2` runs each rate once per number of proxy shards (`sip-proxy --workers`),
one after the other, and goes on to the next rate while any of them was clean. With
`--many-ports` the SIPp UAC sends each call from a socket of its own (`-t un`): a
sharded proxy's kernel spreads datagrams over its sockets by source port, so with one
UAC socket (`-t u1`, the default) every request reaches the same shard. The last
column is the responses the proxy handed from one shard to another (its exit line).
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from register_load import ROOT, cpu_seconds, percentiles, sipp_results  # noqa: E402

SCEN = os.path.join(ROOT, "sipp-scenarios", "proxy")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_udp_bound(port, seconds=10.0):
    """Waits (at most `seconds`) until something listens on UDP 127.0.0.1:`port` in this
    network namespace (/proc/net/udp)."""
    local = f"0100007F:{port:04X}"
    deadline = time.time() + seconds
    while time.time() < deadline:
        with open("/proc/net/udp") as f:
            if any(line.split()[1] == local for line in list(f)[1:]):
                return
        time.sleep(0.05)
    sys.exit(f"nothing listens on UDP 127.0.0.1:{port} after {seconds} s")


def stop(process, seconds=10):
    """SIGTERM, then SIGKILL after `seconds`."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_calls(rate, seconds, work, proxy_port, pids, uac_transport="u1"):
    """SIPp UAC -> the proxy listening on UDP 127.0.0.1:`proxy_port` -> SIPp UAS, `rate`
    calls/s for `seconds`; CPU of each of `pids` (name -> pid or list of pids, see
    register_load.cpu_seconds) over the run, in % of one core ("cpu") and seconds
    ("cpu_s"), with the keys of register_load.run_rate's result."""
    calls = rate * seconds
    uas_port, uac_port = free_port(), free_port()
    uas = subprocess.Popen(
        ["sipp", "-sf", os.path.join(SCEN, "uas_invite.xml"), "-i", "127.0.0.1",
         "-p", str(uas_port), "-t", "u1", "-nd", "-m", str(calls),
         "-timeout", f"{seconds * 3 + 30}s", "-buff_size", "4194304"],
        cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        load = os.getloadavg()[0]
        cpu0, t0 = {n: cpu_seconds(p) for n, p in pids.items()}, time.time()
        uac = subprocess.run(
            ["sipp", "-sf", os.path.join(SCEN, "uac_invite.xml"), f"127.0.0.1:{uas_port}",
             "-rsa", f"127.0.0.1:{proxy_port}", "-i", "127.0.0.1", "-p", str(uac_port),
             "-t", uac_transport, "-nd", "-m", str(calls), "-r", str(rate), "-l", str(rate * 4),
             "-timeout", f"{seconds * 3 + 20}s", "-timeout_error", "-buff_size", "4194304",
             "-trace_stat", "-fd", "1", "-stf", "stat.csv", "-trace_rtt", "-rtt_freq", "1"]
            # A socket per call, up to 1 000 (then SIPp spreads calls over those).
            + (["-max_socket", "1000"] if uac_transport == "un" else []),
            cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            timeout=seconds * 3 + 60,
        )
        wall = time.time() - t0
        cpu_s = {n: cpu_seconds(p) - cpu0[n] for n, p in pids.items()}
    finally:
        stop(uas)
    ok, failed, rtts = sipp_results(work)
    return {"rate": rate, "calls": calls, "ok": ok, "failed": failed, "exit": uac.returncode,
            "pct": percentiles(rtts, [50, 95, 99]), "wall": wall, "load": load, "cpu_s": cpu_s,
            "cpu": {n: 100.0 * c / wall if wall > 0 else 0.0 for n, c in cpu_s.items()}}


def context_switches(pid):
    """Voluntary and involuntary context switches of every thread of `pid` so far."""
    total = 0
    task_dir = f"/proc/{pid}/task"
    for tid in os.listdir(task_dir):
        try:
            with open(os.path.join(task_dir, tid, "status")) as f:
                total += sum(int(line.split()[1]) for line in f
                             if line.startswith(("voluntary_ctxt_switches",
                                                 "nonvoluntary_ctxt_switches")))
        except OSError:
            continue
    return total


def handovers(log_path):
    """The response handovers sip-proxy reported on its way out (its last stderr line
    `sip-proxy: handovers N responses M ...`), or None."""
    with open(log_path) as f:
        for line in f:
            words = line.split()
            if len(words) >= 5 and words[:2] == ["sip-proxy:", "handovers"]:
                return int(words[4])
    return None


def run_rate(proxy_bin, rate, seconds, work, workers=1, uac_transport="u1"):
    proxy_port = free_port()
    log_path = os.path.join(work, "sip-proxy.log")
    with open(log_path, "w") as log:
        proxy = subprocess.Popen(
            [proxy_bin, "--udp", f"127.0.0.1:{proxy_port}", "--workers", str(workers)],
            stdout=subprocess.DEVNULL, stderr=log,
            env={**os.environ, "RUST_LOG": "warn"},
        )
    try:
        wait_udp_bound(proxy_port)
        switches = context_switches(proxy.pid)
        r = run_calls(rate, seconds, work, proxy_port, {"proxy": proxy.pid}, uac_transport)
        switches = context_switches(proxy.pid) - switches
    finally:
        stop(proxy)
    pct = r["pct"]
    return {**r, "p50_ms": pct[50], "p95_ms": pct[95], "p99_ms": pct[99],
            "proxy_cpu_pct": r["cpu"]["proxy"],
            "cpu_us_per_call": 1e6 * r["cpu_s"]["proxy"] / r["ok"] if r["ok"] else 0.0,
            "switches_per_call": switches / r["ok"] if r["ok"] else 0.0,
            "response_handovers": handovers(log_path)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="200,500,1000,1500,2000,3000")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--proxy", default=None, help="sip-proxy binary (default: release build)")
    ap.add_argument("--workers", default="1",
                    help="comma-separated proxy shard counts, each run at every rate")
    ap.add_argument("--many-ports", action="store_true",
                    help="SIPp UAC sends each call from its own socket (-t un)")
    args = ap.parse_args()
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    proxy_bin = args.proxy or os.path.join(target, "release", "sip-proxy")
    if not os.path.exists(proxy_bin) or not shutil.which("sipp"):
        sys.exit(f"needs {proxy_bin} (cargo build --release -p ims-e2e --bin sip-proxy) and sipp")
    work = tempfile.mkdtemp(prefix="proxy-load-")
    workers = [int(w) for w in args.workers.split(",")]
    uac_transport = "un" if args.many_ports else "u1"
    best = {w: None for w in workers}
    print(f"{'workers':>7} {'rate':>6} {'calls':>7} {'ok':>7} {'failed':>6} {'p50ms':>7} "
          f"{'p95ms':>7} {'p99ms':>7} {'proxy CPU%':>10} {'us/call':>7} {'csw/call':>8} "
          f"{'load':>5} {'resp handovers':>14}")
    for rate in [int(r) for r in args.rates.split(",")]:
        clean = False
        for w in workers:
            r = run_rate(proxy_bin, rate, args.seconds, work, w, uac_transport)
            print(f"{w:>7} {r['rate']:>6} {r['calls']:>7} {r['ok']:>7} {r['failed']:>6} "
                  f"{r['p50_ms']:>7.2f} {r['p95_ms']:>7.2f} {r['p99_ms']:>7.2f} "
                  f"{r['proxy_cpu_pct']:>10.1f} {r['cpu_us_per_call']:>7.0f} "
                  f"{r['switches_per_call']:>8.2f} {r['load']:>5.1f} "
                  f"{r['response_handovers'] if r['response_handovers'] is not None else '-':>14}",
                  flush=True)
            if r["failed"] == 0 and r["ok"] == r["calls"]:
                best[w] = r
                clean = True
        if not clean:
            break
    shutil.rmtree(work, ignore_errors=True)
    for w in workers:
        print(f"workers {w}: highest rate with zero failures: "
              f"{best[w]['rate'] if best[w] else 'none'} calls/s")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Load benchmark of IMS registration through the whole chain started by `imsctl up`:
SIPp UEs -> P-CSCF -> I-CSCF (UAR) -> S-CSCF (MAR, 401, SAR) -> 200, digest MD5, over
UDP, at rising rates. One "call" is REGISTER, 401, REGISTER, 200 (three SIP hops and
four Diameter exchanges). Every step is bounded in count and time; loopback only.

For each rate it reports successful/failed registrations, the REGISTER->200 time
percentiles of whole cycles (SIPp -trace_rtt, 1 ms resolution) and each node's CPU
(utime+stime from /proc, % of one core). The result is the highest rate with zero
failed registrations.

    cargo build --release --workspace --bins
    python3 bench/register_load.py [--rates 100,200,400] [--seconds 10] [--users 2000]
"""
import argparse
import csv
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NODES = ["pcscf", "icscf", "scscf", "hss"]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def node_pids(bin_dir):
    pids = {}
    for node in NODES:
        exe = os.path.join(bin_dir, node)
        out = subprocess.run(["pgrep", "-x", "-f", f"{exe} --config config/dev/{node}.toml"],
                             capture_output=True, text=True).stdout.split()
        if out:
            pids[node] = int(out[0])
    return pids


def percentiles(values, ps):
    if not values:
        return {p: float("nan") for p in ps}
    values = sorted(values)
    return {p: values[min(len(values) - 1, int(len(values) * p / 100))] for p in ps}


def run_rate(rate, seconds, users_csv, work, pids):
    calls = rate * seconds
    cpu0 = {n: cpu_seconds(p) for n, p in pids.items()}
    t0 = time.time()
    sipp = subprocess.run(
        ["sipp", "127.0.0.1:5060", "-sf", os.path.join(ROOT, "sipp-scenarios/register/digest.xml"),
         "-inf", users_csv, "-i", "127.0.0.1", "-p", "25062", "-t", "u1", "-nd",
         "-m", str(calls), "-r", str(rate), "-l", str(rate * 4),
         "-timeout", f"{seconds * 3 + 20}s", "-timeout_error", "-buff_size", "4194304",
         "-trace_stat", "-fd", "1", "-stf", "stat.csv", "-trace_rtt", "-rtt_freq", "1"],
        cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=seconds * 3 + 60)
    wall = time.time() - t0
    cpu = {n: 100.0 * (cpu_seconds(p) - cpu0[n]) / wall for n, p in pids.items()}
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
                    rtts.append(float(row[1]))
                except (ValueError, IndexError):
                    pass
        os.remove(path)
    os.remove(os.path.join(work, "stat.csv"))
    return {"rate": rate, "calls": calls, "ok": ok, "failed": failed, "exit": sipp.returncode,
            "pct": percentiles(rtts, [50, 95, 99]), "cpu": cpu}


def start_core(imsctl, data, env):
    """Starts `imsctl up --data-dir data` in its own process group and waits (at most
    60 s) until it reports the core up; returns the process."""
    up = subprocess.Popen([imsctl, "up", "--data-dir", data], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                          start_new_session=True)
    deadline = time.time() + 60
    for line in up.stdout:
        if "IMS core is up" in line:
            return up
        if time.time() > deadline:
            break
    stop_core(up)
    sys.exit("the core did not come up")


def stop_core(up):
    """Ctrl-C to `imsctl up`, SIGKILL to its group after 30 s."""
    os.killpg(up.pid, signal.SIGINT)
    try:
        up.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(up.pid, signal.SIGKILL)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="100,200,400,600,800,1000")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--users", type=int, default=2000)
    args = ap.parse_args()
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    bin_dir = os.path.join(target, "release")
    imsctl = os.path.join(bin_dir, "imsctl")
    if not all(os.path.exists(os.path.join(bin_dir, n)) for n in NODES + ["imsctl"]) or not shutil.which("sipp"):
        sys.exit(f"needs release binaries in {bin_dir} (cargo build --release --workspace --bins) and sipp")
    work = tempfile.mkdtemp(prefix="register-load-")
    data = os.path.join(work, "data")
    env = {**os.environ, "IMS_DATA_DIR": data, "RUST_LOG": "warn"}
    env.pop("CARGO", None)
    up = start_core(imsctl, data, env)
    try:
        # Users: imported into the HSS, and the matching SIPp injection file.
        imp = os.path.join(work, "import.csv")
        users_csv = os.path.join(work, "users.csv")
        with open(imp, "w") as f, open(users_csv, "w") as g:
            f.write("impi,impus,password\n")
            g.write("SEQUENTIAL\n")
            for i in range(args.users):
                f.write(f"load{i}@ims.example.net,sip:load{i}@ims.example.net,pw{i}\n")
                g.write(f"load{i};ims.example.net;[authentication username=load{i}@ims.example.net password=pw{i}]\n")
        subprocess.run([imsctl, "subscriber", "import", imp], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
        pids = node_pids(bin_dir)
        best = None
        print(f"{'rate':>5} {'regs':>6} {'ok':>6} {'failed':>6} {'p50ms':>6} {'p95ms':>6} {'p99ms':>6}  "
              + " ".join(f"{n + ' CPU%':>10}" for n in NODES))
        for rate in [int(r) for r in args.rates.split(",")]:
            r = run_rate(rate, args.seconds, users_csv, work, pids)
            p = r["pct"]
            print(f"{r['rate']:>5} {r['calls']:>6} {r['ok']:>6} {r['failed']:>6} {p[50]:>6.0f} {p[95]:>6.0f} "
                  f"{p[99]:>6.0f}  " + " ".join(f"{r['cpu'].get(n, 0):>10.1f}" for n in NODES), flush=True)
            if r["failed"] == 0 and r["ok"] == r["calls"]:
                best = r
            else:
                break
        print(f"highest rate with zero failed registrations: {best['rate'] if best else 'none'}/s")
    finally:
        stop_core(up)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Cost of cloud authorization on registration, in the style of MultiPol's Table 2:
REGISTER throughput through the whole chain (`imsctl up`, release binaries) with the
request filter off, on with its decision cache, and on without it (every decision asked
of `policyd`), all else equal. The UEs carry a real Keystone token (Bearer) beside their
Digest credentials (`sipp-scenarios/cloud/register_bearer.xml`), so with the filter on
the P-CSCF validates it (Keystone, cached) and the S-CSCF asks `policyd` whether the
token may register the subscriber's identity of its tenant.

For each mode and offered rate it reports completed registrations per second, latency
percentiles and each node's CPU; then, per mode, the highest clean rate and the CPU
seconds a registration costs over all nodes, and the overhead against "off" for both.
Keystone runs from `scripts/keystone/` (set up here if needed) on 127.0.0.1. Bounded in
count and time; loopback only.

    cargo build --release --workspace --bins
    python3 bench/cloud_auth_load.py [--rates 200,400,600] [--seconds 10] [--users 1000]
"""
import argparse
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import register_load as rl  # noqa: E402

ROOT = rl.ROOT
KS = os.path.join(ROOT, "scripts", "keystone")
NODES = rl.NODES + ["policyd"]
SERVICE = ("ims-bench-service", "bench-service-pw")
MODES = [("off", None), ("on, cache", 100000), ("on, no cache", 0)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(method, url, token=None, body=None, want=(200, 201, 204), ca=None):
    """One JSON call; `ca`: the CA file an HTTPS server's certificate must chain to."""
    req = urllib.request.Request(url, method=method,
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    context = ssl.create_default_context(cafile=ca) if ca else None
    with urllib.request.urlopen(req, timeout=30, context=context) as r:
        if r.status not in want:
            sys.exit(f"{method} {url}: {r.status}")
        text = r.read()
        return r.headers.get("X-Subject-Token"), (json.loads(text) if text else None)


def login(ks, user, password, project=None, domain="default"):
    scope = {"project": {"name": project, "domain": {"id": domain}}} if project else None
    auth = {"identity": {"methods": ["password"], "password": {
        "user": {"name": user, "domain": {"id": domain}, "password": password}}}}
    if scope:
        auth["scope"] = scope
    token, _ = call("POST", f"{ks}/auth/tokens?nocatalog", body={"auth": auth})
    return token


def fixtures(ks):
    """A tenant `bench` with a member and an admin, and the service user; returns
    (tenant id, member token, admin token)."""
    admin = login(ks, "admin", "ims-test-admin", project="admin")
    roles = {r["name"]: r["id"] for r in call("GET", f"{ks}/roles", admin)[1]["roles"]}
    for name in ["member", "service"]:
        if name not in roles:
            roles[name] = call("POST", f"{ks}/roles", admin, {"role": {"name": name}})[1]["role"]["id"]
    projects = {}
    for name in ["bench", "service"]:
        found = call("GET", f"{ks}/projects?name={name}", admin)[1]["projects"]
        projects[name] = found[0]["id"] if found else call(
            "POST", f"{ks}/projects", admin,
            {"project": {"name": name, "domain_id": "default"}})[1]["project"]["id"]
    for user, pw, project, role in [("bench-user", "pw", "bench", "member"),
                                    ("bench-admin", "pw", "bench", "admin"),
                                    (SERVICE[0], SERVICE[1], "service", "service")]:
        uid = call("POST", f"{ks}/users", admin,
                   {"user": {"name": user, "password": pw, "domain_id": "default"}})[1]["user"]["id"]
        call("PUT", f"{ks}/projects/{projects[project]}/users/{uid}/roles/{roles[role]}", admin)
    return (projects["bench"], login(ks, "bench-user", "pw", "bench"),
            login(ks, "bench-admin", "pw", "bench"))


def configs(out, ks, cache):
    """The dev configs pointed at Keystone `ks` and the bench's service user: policyd's
    cloud auth on, the CSCFs' `[cloud_auth]` on (decision cache `cache`) unless None
    (`imsctl up --no-cloud` leaves what says `${IMS_CLOUD_AUTH:-off}` off)."""
    os.makedirs(out, exist_ok=True)
    for node in ["hss", "icscf", "pcscf", "scscf", "policyd"]:
        with open(os.path.join(ROOT, "config", "dev", f"{node}.toml")) as f:
            text = f.read()
        if node == "policyd" or (node in ("pcscf", "scscf") and cache is not None):
            on = 'mode = "on"' if node == "policyd" else f'mode = "on"\ndecision_cache = {cache}'
            for old, new in [
                ('mode = "${IMS_CLOUD_AUTH:-off}"', on),
                ("${IMS_KEYSTONE_URL:-http://127.0.0.1:5000/v3}", ks),
                ('service_user = "ims-service"', f'service_user = "{SERVICE[0]}"'),
                ('service_password_file = "${IMS_DATA_DIR:-data}/keystone/service.password"',
                 f'service_password = "{SERVICE[1]}"'),
            ]:
                assert old in text, f"{node}.toml: {old}"
                text = text.replace(old, new)
        with open(os.path.join(out, f"{node}.toml"), "w") as f:
            f.write(text)


def run_mode(name, cache, args, bin_dir, ks, tenant, token, admin_token, work):
    cfg = os.path.join(work, "config")
    data = os.path.join(work, "data")
    configs(cfg, ks, cache)
    imsctl = os.path.join(bin_dir, "imsctl")
    env = {**os.environ, "IMS_DATA_DIR": data, "RUST_LOG": "warn"}
    env.pop("CARGO", None)
    up = rl.start_core(imsctl, data, env, config_dir=cfg)
    results = []
    try:
        # policyd serves HTTPS with the dev CA `imsctl up` generated in the data dir.
        call("PUT", f"https://127.0.0.1:9105/v1/policies/root?tenant={tenant}", admin_token,
             {"enforcer": "default", "rules": {"REGISTER": "role:member", "INVITE": "role:member"}},
             ca=os.path.join(data, "tls", "ca.crt"))
        imp = os.path.join(work, "import.csv")
        users_csv = os.path.join(work, "users.csv")
        with open(imp, "w") as f, open(users_csv, "w") as g:
            f.write("impi,impus,password,project_id\n")
            g.write("SEQUENTIAL\n")
            for i in range(args.users):
                f.write(f"cl{i}@ims.example.net,sip:cl{i}@ims.example.net,pw{i},{tenant}\n")
                g.write(f"cl{i};ims.example.net;[authentication username=cl{i}@ims.example.net "
                        f"password=pw{i}];-;{token}\n")
        subprocess.run([imsctl, "--config-dir", cfg, "subscriber", "import", imp], cwd=ROOT,
                       env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=600)
        pids = rl.node_pids(bin_dir, NODES)
        for rate in [int(r) for r in args.rates.split(",")]:
            r = rl.run_rate(rate, args.seconds, users_csv, work, pids,
                            scenario="sipp-scenarios/cloud/register_bearer.xml")
            r["mode"] = name
            rl.print_row(r, NODES)
            results.append(r)
            if not rl.clean(r):
                break
    finally:
        rl.stop_core(up)
    return results


def cpu_per_registration(results):
    """CPU seconds of all nodes per completed registration, over the clean runs."""
    cpu = sum(sum(v for k, v in r["cpu"].items() if k != "sipp") / 100.0 * r["wall"]
              for r in results if rl.clean(r))
    done = sum(r["ok"] for r in results if rl.clean(r))
    return cpu / done if done else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="200,400,600,800,1000")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--users", type=int, default=1000)
    args = ap.parse_args()
    bin_dir = rl.release_dir()
    subprocess.run([os.path.join(KS, "setup")], check=True, stdout=subprocess.DEVNULL)
    ks_dir = tempfile.mkdtemp(prefix="bench-keystone-")
    port = free_port()
    subprocess.run([os.path.join(KS, "start"), str(port), ks_dir], check=True,
                   stdout=subprocess.DEVNULL)
    ks = f"http://127.0.0.1:{port}/v3"
    summary = []
    try:
        tenant, token, admin_token = fixtures(ks)
        print(f"machine: {os.cpu_count()} CPUs; load average before the run: "
              + " ".join(f"{x:.2f}" for x in os.getloadavg()))
        rl.print_header(NODES, extra="mode")
        for name, cache in MODES:
            work = tempfile.mkdtemp(prefix="cloud-auth-load-")
            try:
                results = run_mode(name, cache, args, bin_dir, ks, tenant, token, admin_token, work)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            best = max((r["rate"] for r in results if rl.clean(r)), default=0)
            summary.append((name, best, cpu_per_registration(results)))
        base_rate, base_cpu = summary[0][1], summary[0][2]
        print("\nmode            highest clean rate   overhead   CPU ms/registration   overhead")
        for name, best, cpu in summary:
            rate_over = (1 - best / base_rate) * 100 if base_rate else float("nan")
            cpu_over = (cpu / base_cpu - 1) * 100 if base_cpu == base_cpu and base_cpu else float("nan")
            print(f"{name:<15} {best:>18}/s   {rate_over:>7.1f}%   {cpu * 1000:>19.3f}   {cpu_over:>7.1f}%")
    finally:
        subprocess.run([os.path.join(KS, "stop"), ks_dir], stdout=subprocess.DEVNULL)
        shutil.rmtree(ks_dir, ignore_errors=True)


if __name__ == "__main__":
    main()

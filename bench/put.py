#!/usr/bin/env python3
"""Write benchmark: PUT latency as one agent's registrations grow to thousands, on loopback.

One `beacon agent` (TOML config with a write token and a state directory, so every PUT is also
saved) polls a `beacon fake-master` serving a generated Mesos state (`gen_state.py`, 2,000 tasks
by default). The script PUTs registrations one after another, over one keep-alive connection,
up to 4,000. At 1, 1,000, 2,000 and 4,000 registrations it measures a window of PUTs that
replace an existing registration with a new address (the count stays put), each followed at
once by a DNS query for that name over UDP: the answer must already hold the new address
(read-your-write: the API acknowledges a PUT only once this node serves it). It prints p50, p99
and max per window, the DNS check, and the mean PUT time of each stretch of the fill.

    python3 bench/put.py                       # 2,000 tasks, up to 4,000 registrations
    python3 bench/put.py --quick               # 200 tasks, checkpoints 1/100/200/400
    BEACON_BIN=... python3 bench/put.py --window 200

Bounded: at most `--max-seconds` in all (default 900) and only the processes it starts, which
it stops by PID on exit; every address is 127.0.0.1; the temporary directory is removed unless
KEEP_TMP=1.
"""

import argparse
import hashlib
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnsbench  # noqa: E402  (the house helpers: free ports, DNS queries, percentiles)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_LOG = "info,hickory_server=warn,hickory_proto=warn,hickory_net=warn"
TOKEN = "bcn_put-bench"
TOKENS = f"""[[api.tokens]]
name = "bench"
secret_sha256 = "{hashlib.sha256(TOKEN.encode()).hexdigest()}"
frameworks = ["*"]
backend_cidrs = ["0.0.0.0/0", "::/0"]
max_registrations = 1000000
"""


binary = dnsbench.beacon_binary


def body(i, version):
    """Registration i; `version` changes its address, so a replacing PUT changes its records."""
    ip = f"10.{200 + version % 50}.{i // 256 % 256}.{i % 256}"
    return json.dumps({"name": f"reg{i}", "framework": "bench", "ips": [ip],
                       "ports": [{"number": 8080, "protocol": "tcp", "name": "http"}]}).encode(), ip


class Run:
    def __init__(self, args):
        self.args = args
        self.bin = binary()
        self.tmp = tempfile.mkdtemp(prefix="beacon-put-bench-")
        self.procs = []
        self.deadline = time.monotonic() + args.max_seconds

    def start(self, name, argv):
        log = open(os.path.join(self.tmp, f"{name}.log"), "w")
        p = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
        if os.environ.get("KEEP_TMP") == "1":
            print(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def check_time(self):
        if time.monotonic() > self.deadline:
            sys.exit(f"over --max-seconds {self.args.max_seconds}; stopping (logs in {self.tmp})")

    def serve(self):
        master_port, self.dns_port, self.http_port = (dnsbench.free_port() for _ in range(3))
        state = os.path.join(self.tmp, "state.json")
        subprocess.run([sys.executable, os.path.join(ROOT, "bench/gen_state.py"),
                        "--tasks", str(self.args.tasks), "--agents", "50",
                        "--leader-port", str(master_port), "-o", state], check=True)
        self.start("master", [self.bin, "fake-master", "--state", state,
                              "--listen", f"127.0.0.1:{master_port}"])
        config = os.path.join(self.tmp, "agent.toml")
        with open(config, "w") as f:
            f.write(f"""[mesos_dns]
masters = ["127.0.0.1:{master_port}"]
refresh_seconds = 3600
listener = "127.0.0.1"
port = {self.dns_port}
http_listener = "127.0.0.1"
http_port = {self.http_port}
external_on = false

[node]
name = "bench"
state_dir = "{os.path.join(self.tmp, 'state')}"

{TOKENS}""")
        self.agent = self.start("agent", [self.bin, "agent", "--config", config,
                                          "--log", DEFAULT_LOG])
        dnsbench.wait_http(f"http://127.0.0.1:{self.http_port}/readyz", 60, self.agent.pid)
        self.conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=30)

    def put(self, i, version):
        data, ip = body(i, version)
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        t0 = time.perf_counter()
        self.conn.request("PUT", f"/v1/registrations/reg{i}", body=data, headers=headers)
        r = self.conn.getresponse()
        r.read()
        took = time.perf_counter() - t0
        if r.status not in (200, 201):
            sys.exit(f"PUT reg{i}: HTTP {r.status}; logs in {self.tmp}")
        return took, ip

    def dns_sees(self, i, ip):
        r = dnsbench.ask(self.dns_port, f"reg{i}.bench.mesos.", "A", timeout=1.0, tries=2)
        return r is not None and r["rcode"] == "NOERROR" and \
            any(v == ip for (_, t, v) in r["answers"] if t == "A")

    def window(self, count):
        """`--window` replacing PUTs over the first `count` registrations, each checked by DNS."""
        times, misses = [], 0
        for k in range(self.args.window):
            self.check_time()
            i = (k * 7919) % count
            took, ip = self.put(i, k + 1)
            times.append(took * 1000)
            misses += not self.dns_sees(i, ip)
        times.sort()
        return times, misses


def run(args):
    r = Run(args)
    try:
        if not os.path.exists(r.bin):
            print(f"building {r.bin}", file=sys.stderr)
            subprocess.run(["cargo", "build", "--release"], cwd=ROOT, check=True)
        r.serve()
        checkpoints = [1] + [c * args.registrations // 4 for c in (1, 2, 4)]
        print(f"beacon {r.bin} (built {time.ctime(os.path.getmtime(r.bin))}), "
              f"{args.tasks} Mesos tasks, window {args.window} PUTs")
        print(f"{'registrations':>13} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
              f"{'DNS ok':>8} {'fill ms/PUT':>12}")
        have, rows = 0, []
        for target in checkpoints:
            t0 = time.perf_counter()
            while have < target:
                r.check_time()
                r.put(have, 0)
                have += 1
            filled = target - (rows[-1][0] if rows else 0)
            fill = (time.perf_counter() - t0) * 1000 / max(filled, 1)
            times, misses = r.window(target)
            p50 = dnsbench.percentile(times, 50)
            p99 = dnsbench.percentile(times, 99)
            rows.append((target, p50, p99))
            print(f"{target:>13} {p50:>8.2f} {p99:>8.2f} {times[-1]:>8.2f} "
                  f"{args.window - misses:>4}/{args.window:<3} {fill:>12.2f}", flush=True)
        first, last = rows[0], rows[-1]
        print(f"p50 at {last[0]} / at {first[0]}: {last[1] / first[1]:.2f}x "
              f"(goal: within 2x); p99: {last[2] / first[2]:.2f}x")
        print(f"agent VmRSS at the end: {dnsbench.status_kb(r.agent.pid, 'VmRSS') / 1024:.0f} MB")
    finally:
        r.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", type=int, default=2000, help="Mesos tasks in the fake master")
    p.add_argument("--registrations", type=int, default=4000, help="last checkpoint")
    p.add_argument("--window", type=int, default=100, help="measured PUTs per checkpoint")
    p.add_argument("--max-seconds", type=int, default=900, help="stop the run after this")
    p.add_argument("--quick", action="store_true", help="200 tasks, up to 400 registrations")
    args = p.parse_args()
    if args.quick:
        args.tasks, args.registrations, args.window = 200, 400, 30
    run(args)


if __name__ == "__main__":
    main()

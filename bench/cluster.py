#!/usr/bin/env python3
"""Cluster benchmark: agents holding a 10,000-service catalog, on loopback.

N real `beacon agent` processes gossip over QUIC with mutual TLS. Each node's own Mesos agent (a
`beacon fake-master` serving an agent `/state`) runs services/N tasks, so the catalog is built
the way a real cluster builds it: every node publishes its own tasks, gossip carries them to
every other node. Then it measures, per agent:

* the bulk load: time from start until every node answers a name from every node's fragment;
* memory (VmRSS) and CPU (utime + stime from /proc) while idle, and while one registration
  changes per second somewhere in the cluster (a PUT to a rotating node);
* gossip traffic out per node (beacon_gossip_bytes_total), idle and under churn;
* change convergence: for each PUT, the time until every other node answers the new name over
  HTTP (polled every 10 ms), with the agent's own beacon_gossip_convergence_lag_seconds beside.

Side by side, in the same run: one agent alone (no cluster) serving the same 10,000 tasks from a
fake master, the Mesos-DNS shape of the deployment. The ratio is the cost of the cluster.

Every address is loopback; processes this script starts are stopped by PID at the end.

    python3 bench/cluster.py               # 5 nodes, 10,000 services, ~2 min
    python3 bench/cluster.py --quick       # 3 nodes, 20 s phases
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import hashlib
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The write token the bench's agents take (the agents hold only its SHA-256).
TOKEN = "bcn_cluster-bench"
TOKENS = f"""[[api.tokens]]
name = "bench"
secret_sha256 = "{hashlib.sha256(TOKEN.encode()).hexdigest()}"
frameworks = ["*"]
backend_cidrs = ["0.0.0.0/0", "::/0"]
max_registrations = 100000
"""


def http(addr, path, method="GET", body=None, timeout=5):
    headers = {"Authorization": f"Bearer {TOKEN}"} if method != "GET" else {}
    req = urllib.request.Request(f"http://{addr}{path}", data=body, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read()


def answers(addr, host, ip=None):
    """Whether the agent at `addr` has an A record for `host` (with `ip`, when given)."""
    try:
        rows = json.loads(http(addr, f"/v1/hosts/{host}"))
    except Exception:
        return False
    return any(r.get("ip") and (ip is None or r["ip"] == ip) for r in rows)


def metric(addr, name):
    text = http(addr, "/metrics").decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def proc_cpu(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime, seconds


def proc_rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def agent_state(node, count, first):
    """A Mesos agent's /state running `count` services, svc{first}..; addresses are data only."""
    ip = f"10.0.{node}.1"
    tasks = []
    for j in range(first, first + count):
        port = 31000 + j % 1000
        tasks.append({
            "id": f"svc{j}.{node:04d}-{j:08d}",
            "name": f"svc{j}",
            "state": "TASK_RUNNING",
            "resources": {"ports": f"[{port}-{port}]"},
            "statuses": [{"state": "TASK_RUNNING", "timestamp": 1.0}],
            "discovery": {"name": f"svc{j}", "ports": {"ports": [
                {"number": port, "protocol": "tcp", "name": "http",
                 "labels": {"labels": [{"key": "VIP_0", "value": f"/svc{j}:80"}]}}]}},
        })
    return {"id": f"agent-{node}", "hostname": ip, "pid": f"slave(1)@{ip}:5051",
            "frameworks": [{"id": "fw-1", "name": "marathon",
                            "executors": [{"id": "e", "tasks": tasks}]}]}


def master_state(nodes, per_node, master_port):
    """The same tasks as one master's /master/state, for the single-agent baseline."""
    state = {"leader": f"master@127.0.0.1:{master_port}", "slaves": [], "frameworks": []}
    tasks = []
    for n in range(nodes):
        a = agent_state(n + 1, per_node, n * per_node)
        state["slaves"].append({"id": a["id"], "hostname": a["hostname"], "pid": a["pid"]})
        for t in a["frameworks"][0]["executors"][0]["tasks"]:
            tasks.append(dict(t, slave_id=a["id"]))
    state["frameworks"].append({"name": "marathon", "tasks": tasks})
    return state


class Bench:
    def __init__(self, args):
        self.args = args
        self.bin = os.path.join(ROOT, "target/release/beacon")
        self.tmp = tempfile.mkdtemp(prefix="beacon-cluster-bench-")
        self.procs = []

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
        shutil.rmtree(self.tmp, ignore_errors=True)

    def wait(self, what, ok, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ok():
                return
            time.sleep(0.05)
        sys.exit(f"timed out waiting for {what}; logs in {self.tmp}")

    def fake(self, name, doc):
        path = os.path.join(self.tmp, f"{name}.json")
        with open(path, "w") as f:
            json.dump(doc, f)
        port = free_port()
        self.start(name, [self.bin, "fake-master", "--state", path,
                          "--listen", f"127.0.0.1:{port}"])
        addr = f"127.0.0.1:{port}"
        self.wait(f"{name} up", lambda: self.ok(addr, "/state"), 10)
        return addr, os.path.getsize(path)

    @staticmethod
    def ok(addr, path):
        try:
            http(addr, path)
            return True
        except Exception:
            return False

    def agent(self, name, toml):
        path = os.path.join(self.tmp, f"{name}.toml")
        with open(path, "w") as f:
            f.write(toml)
        return self.start(name, [self.bin, "agent", "--config", path])


def usage(procs, seconds, http_addrs):
    """CPU % and gossip bytes/s per process over `seconds`, and RSS at the end."""
    cpu0 = [proc_cpu(p.pid) for p in procs]
    out0 = [metric(a, 'beacon_gossip_bytes_total{direction="out"}') for a in http_addrs]
    time.sleep(seconds)
    cpu = [(proc_cpu(p.pid) - c) / seconds * 100 for p, c in zip(procs, cpu0)]
    out = [(metric(a, 'beacon_gossip_bytes_total{direction="out"}') - o) / seconds / 1000
           for a, o in zip(http_addrs, out0)]
    rss = [proc_rss_mb(p.pid) for p in procs]
    return cpu, out, rss


def summary(values, unit, fmt="%.1f"):
    return ("mean " + fmt + " / max " + fmt + " %s") % (statistics.mean(values), max(values), unit)


def run(args):
    b = Bench(args)
    try:
        if not os.path.exists(b.bin):
            print("building target/release/beacon", flush=True)
            subprocess.run(["cargo", "build", "--release"], cwd=ROOT, check=True)
        n, per = args.nodes, args.services // args.nodes
        tls = os.path.join(b.tmp, "tls")
        subprocess.run([b.bin, "tls", "ca", "--dir", tls], check=True, capture_output=True)
        names = [f"n{i + 1}" for i in range(n)]
        for name in names:
            subprocess.run([b.bin, "tls", "node", "--name", name, "--role", "master-poller", "--dir", tls],
                           check=True, capture_output=True)
        print(f"cluster: {n} agents, {per * n} services ({per} per node, each from its own "
              f"Mesos agent), loopback, mTLS QUIC", flush=True)

        # The single-agent baseline first, alone on the machine.
        master_port = free_port()
        path = os.path.join(b.tmp, "master.json")
        with open(path, "w") as f:
            json.dump(master_state(n, per, master_port), f)
        b.start("master", [b.bin, "fake-master", "--state", path,
                           "--listen", f"127.0.0.1:{master_port}"])
        b.wait("fake master", lambda: b.ok(f"127.0.0.1:{master_port}", "/master/state"), 10)
        solo_http = f"127.0.0.1:{free_port()}"
        solo = b.agent("solo", f"""[mesos_dns]
masters = ["127.0.0.1:{master_port}"]
refresh_seconds = 60
listener = "127.0.0.1"
port = {free_port()}
http_listener = "127.0.0.1"
http_port = {solo_http.split(':')[1]}
external_on = false
""")
        b.wait("single agent ready", lambda: answers(solo_http, f"svc{per * n - 1}.marathon.mesos"),
               60)
        time.sleep(2)
        solo_cpu, _, solo_rss = usage([solo], args.idle, [])
        os.kill(solo.pid, signal.SIGTERM)
        solo.wait()

        # The cluster.
        gossip = [free_port() for _ in names]
        https = [f"127.0.0.1:{free_port()}" for _ in names]
        agents, fragment = [], 0
        started = time.monotonic()
        for i, name in enumerate(names):
            mesos, size = b.fake(f"mesos-{name}", agent_state(i + 1, per, i * per))
            fragment = max(fragment, size)
            seeds = "" if i == 0 else f'"n1@127.0.0.1:{gossip[0]}"'
            agents.append(b.agent(name, f"""[mesos_dns]
listener = "127.0.0.1"
port = {free_port()}
http_listener = "127.0.0.1"
http_port = {https[i].split(':')[1]}
external_on = false
[mesos_agent]
address = "{mesos}"
refresh_seconds = 2
[node]
name = "{name}"
[cluster]
listen = "127.0.0.1:{gossip[i]}"
seeds = [{seeds}]
tls_dir = "{tls}"
{TOKENS}"""))
        last = [f"svc{(i + 1) * per - 1}.marathon.mesos" for i in range(n)]
        b.wait("every node serves every node's services",
               lambda: all(answers(h, s) for h in https for s in last), 120)
        load = time.monotonic() - started
        time.sleep(3)
        idle_cpu, idle_out, idle_rss = usage(agents, args.idle, https)

        # Churn: one registration per second on a rotating node; each one timed to every node.
        lags, cpu0 = [], [proc_cpu(p.pid) for p in agents]
        out0 = [metric(a, 'beacon_gossip_bytes_total{direction="out"}') for a in https]
        t0 = time.monotonic()
        k = 0
        while time.monotonic() - t0 < args.churn:
            tick = time.monotonic()
            src = k % n
            ip = f"10.77.{k // 250}.{k % 250 + 1}"
            body = json.dumps({"name": f"probe{k}", "framework": "shop", "ips": [ip]}).encode()
            put = time.monotonic()
            http(https[src], f"/v1/registrations/probe{k}", "PUT", body)
            pending = {i for i in range(n) if i != src}
            while pending and time.monotonic() - put < 10:
                pending = {i for i in pending if not answers(https[i], f"probe{k}.shop.mesos", ip)}
                time.sleep(0.01)
            lags.append(time.monotonic() - put if not pending else float("inf"))
            k += 1
            time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
        wall = time.monotonic() - t0
        churn_cpu = [(proc_cpu(p.pid) - c) / wall * 100 for p, c in zip(agents, cpu0)]
        churn_out = [(metric(a, 'beacon_gossip_bytes_total{direction="out"}') - o) / wall / 1000
                     for a, o in zip(https, out0)]
        churn_rss = [proc_rss_mb(p.pid) for p in agents]
        lag_sum = [metric(a, "beacon_gossip_convergence_lag_seconds_sum") for a in https]
        lag_count = [metric(a, "beacon_gossip_convergence_lag_seconds_count") for a in https]

        lags.sort()
        finite = [x for x in lags if x != float("inf")]
        print()
        print(f"catalog: {per * n} services; largest node fragment (agent /state) "
              f"{fragment / 1e6:.2f} MB")
        print(f"bulk load: every node serves all {per * n} services {load:.2f} s after start")
        print(f"single agent, no cluster, same {per * n} tasks from a master: "
              f"RSS {solo_rss[0]:.0f} MB, idle CPU {solo_cpu[0]:.2f} %")
        print(f"cluster agent, idle ({args.idle} s): RSS {summary(idle_rss, 'MB', '%.0f')}, "
              f"CPU {summary(idle_cpu, '%', '%.2f')}, gossip out {summary(idle_out, 'kB/s', '%.2f')}")
        print(f"cluster agent, 1 change/s ({wall:.0f} s): RSS {summary(churn_rss, 'MB', '%.0f')}, "
              f"CPU {summary(churn_cpu, '%', '%.1f')}, gossip out {summary(churn_out, 'kB/s', '%.1f')}")
        print(f"ratio cluster/single agent: RSS {statistics.mean(idle_rss) / solo_rss[0]:.2f}x "
              f"idle; CPU at idle {statistics.mean(idle_cpu):.2f} % vs {solo_cpu[0]:.2f} %")
        if finite:
            p = lambda q: finite[min(len(finite) - 1, int(q * len(finite)))]
            print(f"change convergence (PUT on one node until every other node answers it, "
                  f"{len(lags)} changes): p50 {p(0.5) * 1000:.0f} ms, p99 {p(0.99) * 1000:.0f} ms, "
                  f"max {finite[-1] * 1000:.0f} ms, not converged in 10 s: {len(lags) - len(finite)}")
        mean_lag = sum(lag_sum) / max(1.0, sum(lag_count))
        print(f"beacon_gossip_convergence_lag_seconds (all nodes): {int(sum(lag_count))} changes, "
              f"mean {mean_lag * 1000:.0f} ms")
    finally:
        b.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--idle", type=float, default=20, help="seconds of idle measurement")
    ap.add_argument("--churn", type=float, default=30, help="seconds of one change per second")
    ap.add_argument("--quick", action="store_true", help="3 nodes, 10 s phases")
    args = ap.parse_args()
    if args.quick:
        args.nodes, args.idle, args.churn = 3, 10, 10
    run(args)


if __name__ == "__main__":
    main()
